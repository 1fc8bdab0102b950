"""Transfer attacks: the ensemble surrogate and the surrogate x victim success matrix."""

from __future__ import annotations

import pytest
import torch

from attack_fixtures import one_thread, victim  # noqa: F401 (autouse fixture)
from skelrobust.attacks import PGD
from skelrobust.attacks.transfer import Ensemble, transfer_matrix
from skelrobust.errors import ConfigError


@pytest.fixture(scope="module")
def models():
    a, b = victim(), victim(seed=1)
    return a, b


def test_ensemble_averages_logits_and_checks_members(models):
    a, b = (v.classifier for v in models)
    x = models[0].x[:5]
    ens = Ensemble([a, b], weights=[3, 1]).eval()
    with torch.no_grad():
        torch.testing.assert_close(ens(x), 0.75 * a(x) + 0.25 * b(x))
    assert ens.num_classes == a.num_classes and ens.skeleton.name == a.skeleton.name
    with pytest.raises(ConfigError, match="class names"):
        Ensemble([a, torch.nn.Linear(2, 2)])
    with pytest.raises(ConfigError, match="weights"):
        Ensemble([a, b], weights=[1, -1])
    with pytest.raises(ConfigError, match="at least one"):
        Ensemble([])


def test_matrix_rows_columns_and_white_box_diagonal(models):
    va, vb = models
    x, y = va.x[:24], va.y[:24]
    clfs = {"a": va.classifier, "b": vb.classifier}
    res = transfer_matrix(lambda c: PGD(c, budget_mm=60.0, steps=8, report=False), clfs, clfs,
                          x, y)
    assert set(res.matrix) == {"a", "b"} and all(set(r) == {"a", "b"} for r in res.matrix.values())
    assert res.counts["a"]["a"] == 24  # the fixture's clips are all correct on their own model
    assert res.matrix["a"]["a"] == pytest.approx(res.white_box["a"])
    with torch.no_grad():
        b_ok = int((vb.classifier(x).argmax(1) == y).sum())
    assert res.counts["a"]["b"] == b_ok
    for row in res.matrix.values():
        assert all(0.0 <= v <= 100.0 for v in row.values())
    # a strong attack on one MLP transfers to an MLP trained from another seed
    assert res.matrix["a"]["b"] > 0.0
    assert res.rows()[0]["surrogate"] == "a" and res.goal == "ab"


def test_ensemble_surrogate_transfers_to_both_members(models):
    va, vb = models
    x, y = va.x[:16], va.y[:16]
    ens = Ensemble([va.classifier, vb.classifier])
    res = transfer_matrix(lambda c: PGD(c, budget_mm=60.0, steps=8, report=False),
                          {"ens": ens}, {"a": va.classifier, "b": vb.classifier}, x, y)
    assert min(res.matrix["ens"].values()) > 0.0


def test_needs_surrogates_and_victims(models):
    with pytest.raises(ConfigError):
        transfer_matrix(lambda c: PGD(c), {}, {"a": models[0].classifier},
                        models[0].x[:2], models[0].y[:2])
