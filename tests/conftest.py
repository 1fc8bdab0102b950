"""Shared fixtures. Real-data tests use ``real_data_root`` (marked ``realdata``).

They skip when ``SKELROBUST_DATA`` is unset, and fail instead when
``SKELROBUST_REQUIRE_DATA=1`` (as in CI), so a missing dataset is never silent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


def _require() -> bool:
    return os.environ.get("SKELROBUST_REQUIRE_DATA", "") not in ("", "0")


@pytest.fixture(scope="session")
def real_data_root():
    """Return a function ``folder -> Path`` under ``$SKELROBUST_DATA``."""

    def get(folder: str) -> Path:
        env = os.environ.get("SKELROBUST_DATA")
        if not env:
            if _require():
                pytest.fail("SKELROBUST_REQUIRE_DATA=1 but SKELROBUST_DATA is unset")
            pytest.skip("SKELROBUST_DATA is unset")
        path = Path(env) / folder
        if not path.exists():
            if _require():
                pytest.fail(f"required dataset folder {path} is missing")
            pytest.skip(f"{path} is missing")
        return path

    return get


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep dataset caches of tests out of the user's home."""
    monkeypatch.setenv("SKELROBUST_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def v():
    """The cached small synthetic victim of the attack tests (``attack_fixtures.victim``).

    Modules that need another victim define their own ``v``.
    """
    from attack_fixtures import victim

    return victim()


@pytest.fixture(scope="module")
def pool(v):
    """Clips a label-only attacker holds (with labels), apart from the attacked first 20."""
    return v.x[20:], v.y[20:]
