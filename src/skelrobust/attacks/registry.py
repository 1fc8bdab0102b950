"""Attacks by name, for the CLI and benchmark sweeps: ``create_attack("smart", clf, goal="ab")``."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from skelrobust.attacks.base import Attack
from skelrobust.attacks.ciasa import CIASA
from skelrobust.attacks.gradient import BIM, FGSM, MIFGSM, PGD
from skelrobust.attacks.smart import SMART
from skelrobust.errors import ConfigError, unknown_name

__all__ = ["ATTACKS", "create_attack", "list_attacks"]

ATTACKS: dict[str, type[Attack]] = {
    "smart": SMART, "ciasa": CIASA, "fgsm": FGSM, "bim": BIM, "ifgsm": BIM, "pgd": PGD,
    "mifgsm": MIFGSM,
}


def list_attacks() -> list[str]:
    return sorted(ATTACKS)


def create_attack(name: str, classifier: nn.Module, **kwargs: Any) -> Attack:
    """Build attack ``name``; keyword arguments the attack does not take are a ``ConfigError``.

    Arguments set to ``None`` are dropped, so a CLI can pass its unset flags through.
    """
    try:
        cls = ATTACKS[name]
    except KeyError:
        raise unknown_name("attack", name, list(ATTACKS)) from None
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "classifier"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(f"attack {name!r} takes no argument(s) {unknown}; it takes "
                          f"{sorted(accepted)}")
    return cls(classifier, **kwargs)
