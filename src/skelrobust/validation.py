"""One mechanism to validate every option, wherever it comes from (CLI flag, YAML, Python).

Each option has a *rule* in :data:`RULES`, keyed ``section.field``: a function
that returns the value converted to its type or raises :class:`ConfigError`
naming the option and the valid range. The CLI builds its ``argparse`` types
from the same rules (:func:`arg_type`) and the YAML experiment loader checks
every key through :func:`check`, so ``--epochs 0``, ``epochs: 0`` and
``TrainConfig(epochs=0)`` are refused with the same message. Numbers must be
finite: NaN and infinity are refused everywhere.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable
from typing import Any

from skelrobust.errors import ConfigError

__all__ = ["COUNT", "NON_NEGATIVE", "OPEN_UNIT", "POSITIVE", "POSITIVE_INT", "RULES", "UNIT",
            "arg_type", "boolean", "check", "check_option", "check_section", "choice",
           "integer", "optional", "real"]

Rule = Callable[[Any], Any]


class _Invalid(ValueError):
    """A value outside its rule; the message says what was expected."""


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    """Whole numbers in ``[lo, hi]`` (``True``/``False`` and ``2.5`` are refused)."""
    def rule(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
            raise _Invalid(f"must be an integer, got {value!r}")
        try:
            number = int(value) if isinstance(value, numbers.Integral) else float(value)
        except ValueError:
            raise _Invalid(f"must be an integer, got {value!r}") from None
        if isinstance(number, float) and (not math.isfinite(number) or number != int(number)):
            raise _Invalid(f"must be an integer, got {value!r}")
        number = int(number)
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise _Invalid(f"must be {_range(lo, hi, False, False)}, got {number}")
        return number
    return rule


def real(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False) -> Rule:
    """Finite numbers in the interval (bounds open or closed)."""
    def rule(value: Any) -> float:
        if isinstance(value, bool):
            raise _Invalid(f"must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _Invalid(f"must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise _Invalid(f"must be a finite number, got {value!r}")
        low_bad = lo is not None and (number <= lo if lo_open else number < lo)
        high_bad = hi is not None and (number >= hi if hi_open else number > hi)
        if low_bad or high_bad:
            raise _Invalid(f"must be {_range(lo, hi, lo_open, hi_open)}, got {number:g}")
        return number
    return rule


def boolean() -> Rule:
    def rule(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise _Invalid(f"must be true or false, got {value!r}")
    return rule


def choice(*allowed: Any) -> Rule:
    """One of ``allowed`` (compared with ``==``)."""
    def rule(value: Any) -> Any:
        if value not in allowed:
            raise _Invalid(f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    return rule


def optional(inner: Rule) -> Rule:
    """``None`` (YAML ``null``) or a value of ``inner``."""
    def rule(value: Any) -> Any:
        return None if value is None else inner(value)
    return rule


def _range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'<' if hi_open else '<='} {hi:g}"


#: Rules library objects share (with :func:`check_option`).
COUNT = integer(0)
POSITIVE_INT = integer(1)
POSITIVE = real(0.0, lo_open=True)
NON_NEGATIVE = real(0.0)
UNIT = real(0.0, 1.0)
OPEN_UNIT = real(0.0, 1.0, lo_open=True, hi_open=True)

_SEED = integer(0, 2**32 - 1)
_THREADS = integer(1, 1024)

#: Every validated option, ``section.field`` → rule.
RULES: dict[str, Rule] = {
    "data.frames": integer(2, 100_000),
    "data.clips": integer(20, 10_000_000),
    "data.val_fraction": real(0.0, 1.0, lo_open=True, hi_open=True),
    "train.epochs": integer(1, 100_000),
    "train.batch_size": integer(1, 1_000_000),
    "train.lr": real(0.0, 100.0, lo_open=True),
    "train.momentum": real(0.0, 1.0, hi_open=True),
    "train.nesterov": boolean(),
    "train.weight_decay": real(0.0, 1.0),
    "train.gamma": real(0.0, 1.0, lo_open=True),
    "train.warmup_epochs": integer(0, 100_000),
    "train.grad_clip": optional(real(0.0, lo_open=True)),
    "train.label_smoothing": real(0.0, 1.0, hi_open=True),
    "train.augment_yaw_deg": real(0.0, 180.0),
    "train.augment_scale": real(0.0, 1.0, hi_open=True),
    "train.seed": _SEED,
    "train.num_threads": optional(_THREADS),
    "train.eval_batch_size": integer(1, 1_000_000),
    "train.progress": boolean(),
    "run.threads": _THREADS,
    "run.batch_size": integer(1, 1_000_000),
    "attack.clips": integer(1, 10_000_000),
    "attack.steps": integer(1, 10_000_000),
    "attack.queries": integer(1, 10_000_000),
    "attack.budget_mm": real(0.0, 10_000.0, lo_open=True),
    "attack.top_n": integer(1, 100_000),
    "attack.target": integer(0, 100_000),
    "attack.seed": _SEED,
    "render.index": integer(0, 10_000_000),
    "render.fps": real(0.0, 1000.0, lo_open=True),
}


def check(key: str, value: Any, where: str | None = None) -> Any:
    """``value`` converted by the rule of ``key`` (unchanged when ``key`` has none)."""
    rule = RULES.get(key)
    if rule is None:
        return value
    try:
        return rule(value)
    except _Invalid as err:
        raise ConfigError(f"{where or key}: {err}") from None


def check_option(who: str, option: str, value: Any, rule: Rule) -> Any:
    """``value`` converted by ``rule``, else ``ConfigError("{who}: {option} must be …")``.

    The options of a library object (an attack's, a defense's) go through the same rules as
    the CLI's and the YAML's, with the message naming the object and the option.
    """
    try:
        return rule(value)
    except _Invalid as err:
        raise ConfigError(f"{who}: {option} {err}") from None


def check_section(section: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Every key of a config section through its rule (``where`` prefixes the message)."""
    return {k: check(f"{section}.{k}", v, f"{where}: {k}") for k, v in values.items()}


def arg_type(key: str) -> Callable[[str], Any]:
    """An ``argparse`` ``type=`` for option ``key`` (its error becomes one line on stderr)."""
    rule = RULES[key]

    def parse(text: str) -> Any:
        try:
            return rule(text)
        except _Invalid as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = key.rpartition(".")[2]  # argparse names the type in some messages
    return parse
