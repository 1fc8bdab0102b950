"""BASAR: label-only access, exact query counts, on-manifold results, batching, failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attack_fixtures import one_thread, victim  # noqa: F401 (fixtures)
from skelrobust.attacks import BASAR, QueryOracle, create_attack, list_attacks, motion_mask
from skelrobust.attacks.basar import normal_draws
from skelrobust.attacks.joint_limits import JointLimits, angle_validity
from skelrobust.attacks.manifold import ManifoldProjection
from skelrobust.attacks.projection import realign_bone_lengths
from skelrobust.attacks.registry import describe_attack
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.skeleton import get_skeleton

SKEL = get_skeleton("ntu25")
POOL_FROM = 12  # clips 0..11 are attacked, the rest is the attacker's pool
FAST = {"max_queries": 200, "seed": 0}


@pytest.fixture(scope="module")
def v():
    return victim()


@pytest.fixture(scope="module")
def pool(v):
    return v.x[POOL_FROM:], v.y[POOL_FROM:]


def _run(v, pool, goal, rows):
    atk = BASAR(v.classifier, pool=pool, goal=goal, target_mode="random", **FAST)
    x, y = v.x[rows].clone(), v.y[rows].clone()
    x0 = x.clone()
    return atk, atk.attack(x, y), x, x0


@pytest.fixture(scope="module")
def ab(v, pool):
    return _run(v, pool, "ab", slice(0, 6))


@pytest.fixture(scope="module")
def sa(v, pool):
    return _run(v, pool, "sa", slice(6, 12))


def _limits_hold(atk, x_adv, x, tol=1e-5):
    mask = motion_mask(x)
    lo, hi = atk.limits.for_clips(x, SKEL, mask, math.radians(atk.limit_margin_deg))
    ang = SKEL.joint_angles(x_adv.double(), eps=0.0)
    valid = angle_validity(x, SKEL, mask)
    return bool((((ang >= lo - tol) & (ang <= hi + tol)) | ~valid).all())


def _bone_error(x_adv, x):
    clean = SKEL.bone_lengths(x)
    real = clean > 1e-6
    return float(((SKEL.bone_lengths(x_adv) - clean).abs() / clean.clamp_min(1e-6))[real].max())


# ---------------------------------------------------------------------- threat model
def test_sees_labels_only(ab):
    atk, _, x, _ = ab
    assert atk.victim.access == "label" and not hasattr(atk.victim, "module")
    with pytest.raises(AttributeError):
        _ = atk.classifier
    assert not any(isinstance(val, torch.nn.Module) for obj in (atk, atk.victim)
                   for val in vars(obj).values())
    with atk.victim.bookkeeping():
        out = atk.victim.label(x)
    assert out.dtype == torch.long and out.dim() == 1 and not out.requires_grad
    with pytest.raises(ConfigError, match="labels only"):
        atk.victim.scores(x)
    assert describe_attack("basar")["access"] == "label" and "basar" in list_attacks()
    assert isinstance(create_attack("basar", atk.victim, pool=atk.pool[:2], max_queries=9),
                      BASAR)


# ---------------------------------------------------------------------- outcome
def test_successful_motions_are_adversarial_when_asked_again(v, ab, sa):
    for (_, res, _, _), goal in ((ab, "ab"), (sa, "sa")):
        with torch.no_grad():
            pred = v.classifier(res.x_adv).argmax(1)
        want = (pred == res.target) if goal == "sa" else (pred != res.y)
        assert bool(want[res.success].all())
        assert torch.equal(res.adv_pred, pred)
    assert ab[1].success.float().mean() >= 5 / 6
    assert sa[1].success.float().mean() >= 3 / 6


def test_returned_motion_keeps_bone_lengths_and_joint_limits(ab, sa):
    for atk, res, x, _ in (ab, sa):
        assert _bone_error(res.x_adv, x) < 5e-3
        assert float(np.nanmax(res.report.per_sample["bone_pct_max"])) < 0.5
        assert _limits_hold(atk, res.x_adv, x)
        moved = (res.x_adv - x).flatten(1).norm(dim=1) > 0
        assert torch.equal(moved, res.success)  # every success moved (clean was correct)


def test_best_distance_never_increases_and_is_the_returned_one(ab):
    atk, res, x, _ = ab
    history = torch.stack(atk.history)
    assert len(history) > 3
    assert bool((history[1:] <= history[:-1]).all())
    d = (res.x_adv.double() - x.double()).flatten(1).norm(dim=1)
    found = torch.isfinite(atk.best_distance)
    assert torch.allclose(d[found], atk.best_distance[found])
    assert bool((atk.steps_taken[found] > 0).all())


def test_input_not_mutated(ab):
    _, _, x, x0 = ab
    assert torch.equal(x, x0)


# ---------------------------------------------------------------------- queries and batches
def _counting_victim(classifier, calls, raise_after=None):
    """Labels of ``classifier``; the sample is read from a padding frame, never moved."""
    def predict(motion):
        calls["n"] += 1
        if raise_after is not None and calls["n"] > raise_after:
            raise RuntimeError("the service is down")
        ids = np.rint(motion[:, 0, -1, 0, 0]).astype(int) - 100
        np.add.at(calls["per_sample"], ids, 1)
        clean = torch.as_tensor(motion).clone()
        clean[:, :, -1] = 0
        with torch.no_grad():
            return classifier(clean).argmax(1).numpy()
    return QueryOracle.from_callable(predict, num_classes=classifier.num_classes,
                                     skeleton="ntu25")


def _tagged(v, rows):
    x = v.x[rows].clone()
    x[:, :, -1] = 0  # a padding frame (lengths below) that carries the sample's id
    x[:, 0, -1, 0, 0] = 100 + torch.arange(len(x)).float()
    lengths = torch.full((len(x),), x.shape[2] - 1)
    return x, lengths


def test_query_counts_are_exact_and_within_budget(v, pool):
    x, lengths = _tagged(v, slice(0, 3))
    calls = {"n": 0, "per_sample": np.zeros(3, dtype=int)}
    px = pool[0].clone()
    px[:, :, -1] = 0
    atk = BASAR(_counting_victim(v.classifier, calls), pool=(px, pool[1]), max_queries=80,
                seed=1)
    with torch.no_grad():
        clean = v.classifier(torch.where(torch.arange(x.shape[2]).view(1, 1, -1, 1, 1)
                                         == x.shape[2] - 1, 0.0, x)).argmax(1)
    res = atk.attack(x, clean, lengths=lengths)
    spent = torch.as_tensor(calls["per_sample"])
    assert torch.equal(spent, res.queries + 2)  # + the clean and the final evaluation
    assert res.info["bookkeeping_queries"] == 2
    assert bool((res.queries <= 80).all()) and int(res.queries.min()) > 60
    assert torch.equal(res.x_adv[:, :, -1], x[:, :, -1])  # padding frames never move


def test_a_sample_alone_and_in_a_batch_give_the_same_result(v, pool):
    x, y = v.x[:3], v.y[:3]
    batch = BASAR(v.classifier, pool=pool, max_queries=120, seed=3).attack(x, y)
    alone = BASAR(v.classifier, pool=pool, max_queries=120, seed=3).attack(x[1:2], y[1:2])
    assert torch.equal(batch.x_adv[1:2], alone.x_adv)
    assert torch.equal(batch.queries[1:2], alone.queries)
    assert torch.equal(batch.success[1:2], alone.success)
    other = BASAR(v.classifier, pool=pool, max_queries=120, seed=4).attack(x[1:2], y[1:2])
    assert not torch.equal(other.x_adv, alone.x_adv)


def test_two_bodies_and_absent_frames(v):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((3 * 32 * 25 * 2, 3)).astype(np.float32)

    def predict(motion):
        return motion.reshape(len(motion), -1) @ weights

    oracle = QueryOracle.from_callable(predict, num_classes=3, skeleton="ntu25",
                                       answers="logits")
    second = v.x[20:40] + torch.tensor([0.8, 0.0, 0.0]).view(1, 3, 1, 1, 1)
    second[:, :, 20:] = 0  # the second person leaves after 20 frames
    motion = torch.cat([v.x[:20], second], dim=4)
    labels = torch.as_tensor(predict(motion.numpy()).argmax(1))
    atk = BASAR(oracle, pool=(motion[4:], labels[4:]), max_queries=150, seed=0)
    res = atk.attack(motion[:4], labels[:4])
    x = motion[:4]
    assert res.success.float().mean() >= 0.5
    assert torch.equal(res.x_adv[:, :, 20:, :, 1], x[:, :, 20:, :, 1])  # absent: untouched
    assert bool((res.x_adv[:, :, :20, :, 1] != x[:, :, :20, :, 1]).any())
    assert _bone_error(res.x_adv, x) < 5e-3 and _limits_hold(atk, res.x_adv, x)


def test_victim_failure_keeps_what_was_found(v, pool):
    x, lengths = _tagged(v, slice(0, 3))
    calls = {"n": 0, "per_sample": np.zeros(3, dtype=int)}
    px = pool[0].clone()
    px[:, :, -1] = 0
    atk = BASAR(_counting_victim(v.classifier, calls, raise_after=30), pool=(px, pool[1]),
                max_queries=500, seed=0)
    res = atk.attack(x, v.y[:3], lengths=lengths)
    assert "the service is down" in res.info["victim_error"]
    assert bool(atk.found.any())
    assert torch.equal(res.x_adv, atk.best) and torch.equal(res.success, atk.found)
    assert _bone_error(res.x_adv, x) < 5e-3


def test_stochastic_victim_every_query_counts(v, pool):
    rng = np.random.default_rng(0)

    def predict(motion):  # the classifier's label, replaced by a random one 1 time in 10
        with torch.no_grad():
            label = v.classifier(torch.as_tensor(motion)).argmax(1).numpy()
        flip = rng.random(len(label)) < 0.1
        return np.where(flip, rng.integers(0, 19, len(label)), label)

    oracle = QueryOracle.from_callable(predict, num_classes=19, skeleton="ntu25",
                                       stochastic=True)
    atk = BASAR(oracle, pool=pool, max_queries=60, seed=0)
    res = atk.attack(v.x[:3], v.y[:3])
    assert res.info["stochastic_victim"] and bool((res.queries <= 60).all())
    assert _bone_error(res.x_adv, v.x[:3]) < 5e-3 and _limits_hold(atk, res.x_adv, v.x[:3])


# ---------------------------------------------------------------------- bad input
def test_bad_input_is_refused(v, pool):
    def predict(motion):
        return np.zeros(len(motion), dtype=int)

    blind = QueryOracle.from_callable(predict, num_classes=19)
    with pytest.raises(ConfigError, match="skeleton"):
        BASAR(blind, pool=pool)
    with pytest.raises(ConfigError, match="pool"):
        BASAR(v.classifier)
    with pytest.raises(ConfigError, match="max_queries"):
        BASAR(v.classifier, pool=pool, max_queries=0)
    with pytest.raises(ConfigError, match="anything-but-N"):
        BASAR(v.classifier, pool=pool, goal="abn")
    for bad in ({"explore_trials": 0}, {"spherical_step": 1.5}, {"joint_weights": [1.0] * 3},
                {"limits": "strict"}, {"projection_interval": 0}):
        with pytest.raises(ConfigError):
            BASAR(v.classifier, pool=pool, **bad)
    lonely = (pool[0][pool[1] != 3], pool[1][pool[1] != 3])
    atk = BASAR(v.classifier, pool=lonely, goal="sa", max_queries=10)
    with pytest.raises(ConfigError, match="no clip of class 3"):
        atk.attack(v.x[:1], v.y[:1], target=torch.tensor([3]))


# ---------------------------------------------------------------------- the pieces
def test_joint_limits_from_clips(v):
    clips = v.x[:40]
    limits = JointLimits.from_clips(clips, SKEL)
    ang = SKEL.joint_angles(clips.double(), eps=0.0)
    valid = angle_validity(clips, SKEL)
    lo, hi = limits.lower.view(1, 1, -1, 1), limits.upper.view(1, 1, -1, 1)
    assert bool((((ang >= lo) & (ang <= hi)) | ~valid).all())
    robust = JointLimits.from_clips(clips, SKEL, quantile=0.1)
    assert bool((robust.lower >= limits.lower - 1e-9).all() and (robust.upper <= limits.upper
                                                                 + 1e-9).all())
    lo_n, hi_n = robust.for_clips(v.x[50:53], SKEL)  # other clips' own angles are inside
    ang = SKEL.joint_angles(v.x[50:53].double(), eps=0.0)
    assert bool((((ang >= lo_n) & (ang <= hi_n)) | ~angle_validity(v.x[50:53], SKEL)).all())
    again = JointLimits.from_degrees("ntu25", *limits.degrees())
    assert torch.allclose(again.lower, limits.lower) and torch.allclose(again.upper,
                                                                         limits.upper)
    with pytest.raises(ShapeError):
        JointLimits.from_degrees("ntu25", [0.0] * 3, [1.0] * 3)
    with pytest.raises(ConfigError):
        JointLimits.from_clips(clips, SKEL, quantile=0.7)


def test_manifold_projection_is_on_the_skeleton_and_per_sample(v):
    x = v.x[:4].clone()
    x[2, :, 28:] = 0  # a shorter clip: padding frames
    mask = motion_mask(x)
    limits = JointLimits.from_clips(v.x[20:], SKEL)
    lo, hi = limits.for_clips(x, SKEL, mask)
    proj = ManifoldProjection(x, SKEL, lo, hi, mask)
    rows = torch.arange(4)
    noisy = x + 0.03 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * mask
    assert torch.allclose(proj.fk(noisy, rows), realign_bone_lengths(noisy, x, SKEL) * mask
                          + x * (1 - mask), atol=1e-6)
    out, free = proj.project(noisy, rows)
    assert _bone_error(out, x) < 1e-4 and torch.equal(out[2, :, 28:], x[2, :, 28:])
    ang = SKEL.joint_angles(out.double(), eps=0.0)
    inside = ((ang >= lo - 1e-6) & (ang <= hi + 1e-6)) | ~angle_validity(x, SKEL, mask)
    assert bool(inside.all())
    assert proj.energy(out, noisy, rows).sum() < proj.energy(proj.fk(noisy, rows), noisy,
                                                             rows).sum()
    part, _ = proj.project(noisy[1:3], rows[1:3])  # a subset: the same projections
    assert torch.equal(part, out[1:3])
    back = proj.path(free, noisy, torch.tensor([0.0, 0.5, 1.0, 1.0]), rows, ref=out)
    assert _bone_error(back, x) < 1e-4


def test_normal_draws_are_per_row_and_standard():
    keys, counters = torch.tensor([5, 9, 11]), torch.tensor([0, 3, 3])
    z = normal_draws(keys, counters, 100_001)
    assert z.shape == (3, 100_001)
    assert torch.equal(normal_draws(keys[1:2], counters[1:2], 100_001)[0], z[1])
    assert not torch.equal(normal_draws(keys[1:2], counters[1:2] + 1, 100_001)[0], z[1])
    assert bool((z.mean(1).abs() < 0.02).all() and ((z.std(1) - 1).abs() < 0.02).all())
