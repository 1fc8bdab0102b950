"""HopSkipJump: success, convergence, exact query counts, determinism, masks, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attack_fixtures import eager_progress, one_thread  # noqa: F401 (fixtures)
from skelrobust.attacks import HopSkipJump, QueryOracle, create_attack, list_attacks
from skelrobust.errors import ConfigError

N = 6  # attacked clips


@pytest.fixture(scope="module")
def batch(v):
    return v.x[:N], v.y[:N]


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.double() - b.double()).flatten(1).norm(dim=1)


def _pred(v, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return v.classifier(x).argmax(1)


def linear_victim(shape: tuple[int, ...], seed: int = 0, bias: float = 0.0):
    """Two classes split by a hyperplane ``w·x + b = 0``; returns ``(fn, w)``."""
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).numpy()

    def fn(a: np.ndarray) -> np.ndarray:
        return ((a * w).reshape(len(a), -1).sum(1) + bias > 0).astype(np.int64)

    return fn, w


class Counting:
    """A labels-only victim around a classifier that counts the motions it is asked about."""

    def __init__(self, classifier) -> None:
        self.classifier, self.rows, self.calls = classifier, 0, 0

    def __call__(self, a: np.ndarray) -> np.ndarray:
        self.rows += len(a)
        self.calls += 1
        with torch.no_grad():
            return self.classifier(torch.as_tensor(a)).argmax(1).numpy()


# ---------------------------------------------------------------------- success
@pytest.mark.parametrize("goal,with_pool", [("ab", False), ("ab", True), ("sa", True)])
def test_success_within_a_modest_budget(v, batch, pool, goal, with_pool):
    x, y = batch
    kw = {"pool": pool} if with_pool else {}
    atk = HopSkipJump(v.classifier, goal=goal, target_mode="random", max_queries=400,
                      report=False, **kw)
    x0 = x.clone()
    res = atk.attack(x, y)
    assert torch.equal(x, x0)  # input not mutated
    assert bool(res.success.all()), res.success
    assert res.info["found_adversarial"] == N and "victim_error" not in res.info
    pred = _pred(v, res.x_adv)  # the returned motions are adversarial when asked again
    assert torch.equal(pred, res.target if goal == "sa" else pred) and bool((pred != y).all())
    assert torch.equal(pred, res.adv_pred)
    assert bool((res.queries <= 400).all()) and bool((res.iterations >= 1).all())
    assert bool((_dist(res.x_adv, x) > 0).all())


def test_more_queries_never_farther(v, batch):
    x, y = batch
    d = [_dist(HopSkipJump(v.classifier, max_queries=q, report=False).attack(x, y).x_adv, x)
         for q in (150, 500, 1500)]
    assert bool((d[1] <= d[0]).all()) and bool((d[2] <= d[1]).all()), d
    assert float(d[2].mean()) < 0.8 * float(d[0].mean())  # and it does get closer


def test_converges_to_the_minimal_distance_on_a_linear_victim():
    # the closest point of the other class is at |w·x + b| / ‖w‖ from x
    shape = (3, 8, 25, 1)
    fn, w = linear_victim(shape)
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(1)) * 0.3
    y = torch.as_tensor(fn(x.numpy()))
    optimum = np.abs((x.numpy() * w).reshape(4, -1).sum(1)) / np.linalg.norm(w)
    oracle = QueryOracle.from_callable(fn, num_classes=2)
    res = HopSkipJump(oracle, max_queries=6000, report=False).attack(x, y)
    ratio = _dist(res.x_adv, x).numpy() / optimum
    assert bool(res.success.all())
    assert np.all(ratio >= 1 - 1e-6) and np.all(ratio < 1.15), ratio


# ---------------------------------------------------------------------- queries
def test_query_counts_are_exact_and_within_budget(v, batch):
    x, y = batch
    count = Counting(v.classifier)
    oracle = QueryOracle.from_callable(count, num_classes=v.classifier.num_classes,
                                       skeleton=v.classifier.skeleton)
    res = HopSkipJump(oracle, max_queries=300, report=False).attack(x, y)
    assert res.info["bookkeeping_queries"] == 2.0  # clean and final evaluations
    assert count.rows == int(res.queries.sum()) + 2 * N
    assert bool((res.queries <= 300).all())
    assert bool((res.queries >= 300 - 20).all())  # it spends its budget (all but a reserve)
    # a budget of the victim's own, below the attack's, is respected without an error
    capped = QueryOracle.from_callable(Counting(v.classifier), budget=120,
                                        num_classes=v.classifier.num_classes,
                                       skeleton=v.classifier.skeleton)
    res = HopSkipJump(capped, max_queries=1000, report=False).attack(x, y)
    assert bool((res.queries <= 120).all()) and "victim_error" not in res.info
    assert res.info["query_budget"] == 120


def test_clean_misclassified_samples_cost_nothing():
    shape = (3, 6, 25, 1)
    fn, _ = linear_victim(shape)
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(2))
    y = torch.as_tensor(fn(x.numpy()))
    y[1] = 1 - y[1]  # the victim already gets sample 1 wrong
    res = HopSkipJump(QueryOracle.from_callable(fn, num_classes=2), max_queries=200,
                      report=False).attack(x, y)
    assert int(res.queries[1]) == 0 and torch.equal(res.x_adv[1], x[1])
    assert bool(res.success.all()) and bool((res.queries[[0, 2]] > 0).all())


def test_too_small_a_budget_finds_nothing_and_never_overspends(v, batch):
    x, y = batch
    res = HopSkipJump(v.classifier, max_queries=1, report=False).attack(x, y)
    assert bool((res.queries <= 1).all()) and "victim_error" not in res.info
    lost = ~res.success
    assert torch.equal(res.x_adv[lost], x[lost])


# ---------------------------------------------------------------------- determinism, masks
def test_alone_and_in_a_batch_give_the_same_result(v, batch, pool):
    x, y = batch
    for kw in ({}, {"goal": "sa", "target_mode": "random", "pool": pool}):
        atk = HopSkipJump(v.classifier, max_queries=250, report=False, **kw)
        res = atk.attack(x, y)
        for i in (0, N - 1):
            one = atk.attack(x[i:i + 1], y[i:i + 1])
            assert torch.equal(one.x_adv[0], res.x_adv[i])
            assert int(one.queries[0]) == int(res.queries[i])
            assert int(one.iterations[0]) == int(res.iterations[i])
        again = atk.attack(x, y)
        assert torch.equal(again.x_adv, res.x_adv)  # deterministic under its seed
    other = HopSkipJump(v.classifier, max_queries=250, report=False, seed=1).attack(x, y)
    assert not torch.equal(other.x_adv, res.x_adv)


def test_padding_frames_never_move(v, batch):
    x, y = batch
    lengths = torch.tensor([20, 32, 25, 32, 12, 30])
    res = HopSkipJump(v.classifier, max_queries=200, report=False).attack(x, y,
                                                                          lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        assert torch.equal(res.x_adv[i, :, n:], x[i, :, n:])
    assert bool(res.success.any())


def test_absent_bodies_never_move():
    shape = (3, 6, 25, 2)
    fn, _ = linear_victim(shape, seed=3)
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(4))
    x[0, :, :, :, 1] = 0  # one body only
    x[1, :, 3:, :, 1] = 0  # the second body leaves after 3 frames
    y = torch.as_tensor(fn(x.numpy()))
    res = HopSkipJump(QueryOracle.from_callable(fn, num_classes=2), max_queries=300,
                      report=False).attack(x, y)
    assert bool(res.success.all())
    assert bool((res.x_adv[0, :, :, :, 1] == 0).all())
    assert bool((res.x_adv[1, :, 3:, :, 1] == 0).all())
    assert bool((res.x_adv[1, :, :3, :, 1] != x[1, :, :3, :, 1]).any())


# ---------------------------------------------------------------------- options
def test_registry_and_options(v):
    assert {"hsja", "hopskipjump"} <= set(list_attacks())
    atk = create_attack("hopskipjump", v.classifier, max_queries=50, init_evals=20, gamma=2.0)
    assert isinstance(atk, HopSkipJump) and atk.max_queries == 50 and atk.init_evals == 20
    for bad in ({"init_evals": 0}, {"max_evals": 10, "init_evals": 20}, {"gamma": 0},
                {"boundary_tol": 1.5}, {"init_delta": -1}, {"max_iterations": 0},
                {"max_evals": True}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            HopSkipJump(v.classifier, **bad)
    with pytest.raises(ConfigError, match="pool"):
        HopSkipJump(v.classifier, goal="sa")  # a targeted start needs clips of the target


def test_max_iterations_and_boundary_tol_save_queries(v, batch):
    x, y = batch
    res = HopSkipJump(v.classifier, max_queries=2000, max_iterations=2,
                      report=False).attack(x, y)
    assert bool((res.iterations == 2).all()) and bool((res.queries < 2000).all())
    coarse = HopSkipJump(v.classifier, max_queries=2000, max_iterations=2, boundary_tol=1e-2,
                         report=False).attack(x, y)
    assert bool((coarse.queries < res.queries).all()) and bool(coarse.success.all())


def test_progress_bar(v, batch, capsys, eager_progress):  # noqa: F811
    atk = HopSkipJump(v.classifier, max_queries=60, report=False)
    atk.progress = True
    atk.attack(*batch)
    assert "hsja queries" in capsys.readouterr().err
