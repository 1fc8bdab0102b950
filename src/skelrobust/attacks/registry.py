"""Attacks by name, for the CLI and benchmark sweeps: ``create_attack("smart", clf, goal="ab")``.

Attack classes register themselves where they are defined (``@register_attack("pgd")``),
as models do; :func:`create_attack` checks every keyword against the attack's own
arguments and the options every attack shares (:class:`~skelrobust.attacks.base.Attack`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from skelrobust.errors import ConfigError, unknown_name

__all__ = ["ATTACKS", "attack_arguments", "create_attack", "describe_attack", "list_attacks",
           "register_attack"]

ATTACKS: dict[str, type] = {}
_ALIASES: dict[str, str] = {}
T = TypeVar("T", bound=type)


def register_attack(name: str, *aliases: str) -> Callable[[T], T]:
    """Class decorator: make the attack creatable as ``name`` (and each alias)."""
    def add(cls: T) -> T:
        for key in (name, *aliases):
            if key in ATTACKS and ATTACKS[key] is not cls:
                raise ConfigError(f"attack name {key!r} is already registered to "
                                  f"{ATTACKS[key].__name__}")
            ATTACKS[key] = cls
        _ALIASES.update({a: name for a in aliases})
        return cls
    return add


def _loaded() -> dict[str, type]:
    import skelrobust.attacks  # noqa: F401  (importing the package registers every attack)

    return ATTACKS


def list_attacks(aliases: bool = True) -> list[str]:
    """Registered attack names (with ``aliases``, their other names too)."""
    return sorted(k for k in _loaded() if aliases or k not in _ALIASES)


def attack_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """Every keyword an attack class takes: its own and those it passes on through ``**options``.

    ``**options`` reach the bases that declare options (``declares_options = True``:
    :class:`~skelrobust.attacks.base.Attack` for the shared ones, and e.g. the query
    budget and pool of :class:`~skelrobust.attacks.label_only.LabelOnlyAttack`).
    """
    def own(klass: type) -> tuple[dict[str, inspect.Parameter], bool]:
        params = inspect.signature(klass.__init__).parameters
        kept = {k: p for k, p in params.items() if k not in ("self", "victim") and p.kind not in (
            p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        return kept, any(p.kind == p.VAR_KEYWORD for p in params.values())

    out, passes_on = own(cls)
    if passes_on:
        for klass in cls.__mro__[1:]:
            if klass.__dict__.get("declares_options"):
                for key, param in own(klass)[0].items():
                    out.setdefault(key, param)
    return out


def describe_attack(name: str) -> dict[str, Any]:
    """``{"name", "class", "access", "summary", "aliases"}`` of a registered attack."""
    cls = _lookup(name)
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return {"name": name, "class": cls.__name__, "access": getattr(cls, "access", "gradient"),
            "summary": doc[0] if doc else "",
            "aliases": sorted(a for a, n in _ALIASES.items() if n == name)}


def _lookup(name: str) -> type:
    try:
        return _loaded()[name]
    except KeyError:
        raise unknown_name("attack", name, list(ATTACKS)) from None


def create_attack(name: str, victim: Any, **kwargs: Any) -> Any:
    """Build attack ``name``; keyword arguments the attack does not take are a ``ConfigError``.

    Arguments set to ``None`` are dropped, so a CLI can pass its unset flags through.
    """
    cls = _lookup(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = set(attack_arguments(cls))
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(f"attack {name!r} takes no argument(s) {unknown}; it takes "
                          f"{sorted(accepted)}")
    return cls(victim, **kwargs)
