"""Randomized smoothing (Cohen et al., ICML 2019): PREDICT, CERTIFY, radii, files, CLI."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from attack_fixtures import one_thread  # noqa: F401  (autouse: single-threaded module)
from cli_support import one_line_error, run
from skelrobust.attacks.oracle import ExpectationOracle, as_oracle
from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.defenses.base import create_defense, get_defense, list_defenses
from skelrobust.defenses.smoothing import (
    CertifyResult,
    GaussianNoiseLoss,
    RandomizedSmoothing,
    binomial_pvalue,
    certified_accuracy,
    certified_radius,
    clopper_pearson_lower,
    gaussian_noise,
)
from skelrobust.errors import ConfigError

PREP = {"num_frames": 16, "center_mode": "first", "normalize_view": True}
T, V = 16, 25


class Fixed(nn.Module):
    """Always answers class ``label`` (of 3), whatever the motion; keeps a gradient path."""

    def __init__(self, label: int = 0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.label = label

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), 3, dtype=x.dtype)
        logits[:, self.label] = 10.0
        return logits + 0.0 * self.scale * x.sum(dim=(1, 2, 3, 4))[:, None]


class SignOfNoise(nn.Module):
    """Class 0 if joint 1's x coordinate in frame 0 is above ``level`` metres, else class 1:
    on a clip exactly at the level, the noise splits the answers half and half."""

    def __init__(self, level: float = 0.5) -> None:
        super().__init__()
        self.level = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x[:, 0, 0, 1, 0] - self.level) * 1000.0
        return torch.stack([z, -z, torch.full_like(z, -1e4)], dim=1)


class Recorder(nn.Module):
    """Class 0 always; keeps the last motion it saw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.detach().clone()
        return torch.zeros(len(x), 3) + x.sum(dim=(1, 2, 3, 4))[:, None] * 0.0


def toy(module: nn.Module) -> Classifier:
    return Classifier.from_module(module, "ntu25", ["a", "b", "c"]).eval()


def clips(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Motion ``(n, 3, T, V, 2)``: joint 1's x at 0.5 m in frame 0, frames past 10 padded,
    the second body absent."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 3, T, V, 2)
    x[..., 0] = 0.2 + torch.rand(n, 3, T, V, generator=g)
    x[:, 0, 0, 1, 0] = 0.5
    x[:, :, 10:] = 0.0
    return x


@pytest.fixture(scope="module")
def data():
    return load_prepared("synthetic", "test", preprocess_args=PREP, num_clips=20, seed=1)


@pytest.fixture(scope="module")
def mlp(data):
    torch.manual_seed(0)
    return Classifier.create("mlp", data, size="small", preprocess=PREP).eval()


# ---------------------------------------------------------------------- statistics
def test_radius_grows_with_sigma_and_p_lower():
    assert float(certified_radius(0.9, 10.0)) == pytest.approx(10.0 * NormalDist().inv_cdf(0.9))
    by_sigma = certified_radius(np.full(3, 0.9), 1.0) * torch.tensor([5.0, 10.0, 20.0],
                                                                      dtype=torch.float64)
    direct = torch.stack([certified_radius(0.9, s) for s in (5.0, 10.0, 20.0)])
    assert torch.allclose(by_sigma, direct) and bool((direct.diff() > 0).all())
    by_p = certified_radius(torch.tensor([0.6, 0.8, 0.95, 0.999]), 10.0)
    assert bool((by_p.diff() > 0).all())
    assert certified_radius(torch.tensor([0.2, 0.5]), 10.0).tolist() == [0.0, 0.0]


def test_clopper_pearson_and_binomial_test_match_scipy():
    k = np.array([0, 1, 50, 99, 100])
    low = clopper_pearson_lower(k, 100, 0.001).numpy()
    assert low[0] == 0.0 and low[-1] == pytest.approx(0.001 ** (1 / 100))
    for ki, li in zip(k[1:], low[1:], strict=True):
        assert li == pytest.approx(stats.beta.ppf(0.001, ki, 100 - ki + 1))
    assert bool((np.diff(low) > 0).all())
    ks, ns = np.array([0, 3, 10, 12, 25, 7]), np.array([10, 20, 20, 20, 50, 7])
    ours = binomial_pvalue(ks, ns).numpy()
    for ki, ni, p in zip(ks, ns, ours, strict=True):
        assert p == pytest.approx(stats.binomtest(int(ki), int(ni), 0.5).pvalue, rel=1e-9)


def test_certified_accuracy_counts_label_and_radius():
    res = CertifyResult(label=torch.tensor([0, 1, -1, 2]),
                        radius_mm=torch.tensor([5.0, 15.0, 0.0, 30.0], dtype=torch.float64),
                        p_lower=torch.zeros(4), counts=torch.zeros(4, 3))
    y = torch.tensor([0, 1, 1, 0])
    assert certified_accuracy(res, y, (0, 10, 20)) == {0.0: 50.0, 10.0: 25.0, 20.0: 0.0}
    assert RandomizedSmoothing.certified_accuracy(res, y.numpy(), (5,)) == {5.0: 50.0}
    assert res.abstain_rate == 25.0 and res.mean_radius_mm == pytest.approx(50 / 3)
    with pytest.raises(ConfigError, match="labels"):
        certified_accuracy(res, y[:3])


# ---------------------------------------------------------------------- the defense
def test_always_class_0_gives_the_closed_form_certificate():
    rs = RandomizedSmoothing(toy(Fixed(0)), sigma_mm=10.0, n0=10, n=100, alpha=0.001)
    res = rs.certify(clips(3), generator=torch.Generator().manual_seed(0))
    p = 0.001 ** (1 / 100)  # Clopper-Pearson lower bound for 100 successes in 100 draws
    assert res.label.tolist() == [0, 0, 0] and res.counts[:, 0].tolist() == [100] * 3
    assert res.p_lower.tolist() == pytest.approx([p] * 3)
    assert res.radius_mm.tolist() == pytest.approx([10.0 * NormalDist().inv_cdf(p)] * 3)
    assert 14.9 < float(res.radius_mm[0]) < 15.1
    wider = RandomizedSmoothing(toy(Fixed(0)), sigma_mm=20.0, n0=10, n=100).certify(clips(1))
    assert float(wider.radius_mm[0]) == pytest.approx(2 * float(res.radius_mm[0]))
    assert rs.predict_smoothed(clips(3), n=100).tolist() == [0, 0, 0]


def test_split_counts_abstain():
    rs = RandomizedSmoothing(toy(SignOfNoise()), sigma_mm=10.0, n0=20, n=400, batch_size=128)
    gen = torch.Generator().manual_seed(1)
    res = rs.certify(clips(3), generator=gen)
    assert res.label.tolist() == [-1, -1, -1] and res.radius_mm.tolist() == [0.0] * 3
    assert bool((res.p_lower < 0.5).all()) and res.abstain_rate == 100.0
    assert bool((res.counts[:, :2] > 120).all())  # both classes drawn often
    assert rs.predict_smoothed(clips(3), generator=gen).tolist() == [-1, -1, -1]


def test_padding_and_absent_bodies_stay_zero_under_noise():
    x = clips(2)
    eps = gaussian_noise(x, 50.0, torch.Generator().manual_seed(0))
    assert bool((eps[:, :, 10:] == 0).all()) and bool((eps[..., 1] == 0).all())
    assert bool((eps[:, :, :10, :, 0] != 0).all())
    assert float(eps[:, :, :10, :, 0].std()) == pytest.approx(0.05, rel=0.1)
    rec = Recorder()
    rs = RandomizedSmoothing(toy(rec), sigma_mm=50.0, n0=2, n=4)
    rs(x)
    assert bool((rec.seen[:, :, 10:] == 0).all()) and bool((rec.seen[..., 1] == 0).all())
    rs.sample_counts(x, 3)
    assert rec.seen.shape[0] == 6 and bool((rec.seen[:, :, 10:] == 0).all())


def test_certify_and_predict_repeat_with_a_generator():
    rs = RandomizedSmoothing(toy(SignOfNoise()), sigma_mm=10.0, n0=10, n=60, batch_size=25)
    x = clips(3)

    def once(seed: int) -> tuple[CertifyResult, torch.Tensor]:
        return (rs.certify(x, generator=torch.Generator().manual_seed(seed)),
                rs.sample_counts(x, 60, generator=torch.Generator().manual_seed(seed)))

    (a, ca), (b, cb), (_, cc) = once(3), once(3), once(4)
    assert torch.equal(a.counts, b.counts) and torch.equal(a.p_lower, b.p_lower)
    assert torch.equal(a.label, b.label) and torch.equal(ca, cb)
    assert not torch.equal(ca, cc)
    p1 = rs.predict_smoothed(x, generator=torch.Generator().manual_seed(5))
    p2 = rs.predict_smoothed(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(p1, p2)


def test_forward_is_one_differentiable_noisy_draw(mlp, data):
    rs = RandomizedSmoothing(mlp, sigma_mm=10.0)
    assert rs.stochastic and rs.freezes_base and not any(p.requires_grad
                                                         for p in mlp.parameters())
    x = torch.from_numpy(data.x[:3]).requires_grad_(True)
    torch.manual_seed(0)
    a = rs(x)
    a.sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)
    torch.manual_seed(0)
    assert torch.equal(a.detach(), rs(x).detach())
    assert not torch.equal(a.detach(), rs(x).detach())  # a fresh draw


def test_saves_and_reloads_with_identical_predictions(mlp, data, tmp_path):
    rs = RandomizedSmoothing(mlp, sigma_mm=15.0, n0=5, n=30, alpha=0.01, batch_size=40,
                             eot_samples=3)
    path = rs.save(tmp_path / "rs")
    back = Classifier.load(path)
    assert isinstance(back, RandomizedSmoothing) and back.args == rs.args
    assert back.stochastic and back.eot_samples == 3 and back.sigma_mm == 15.0
    x = torch.from_numpy(data.x[:5])
    torch.manual_seed(7)
    a = rs.predict_logits(x)
    torch.manual_seed(7)
    assert torch.equal(a, back.predict_logits(x))
    ra = rs.certify(x, generator=torch.Generator().manual_seed(2))
    rb = back.certify(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(ra.counts, rb.counts) and torch.equal(ra.label, rb.label)


def test_registered_and_created_by_name(mlp):
    assert "smoothing" in list_defenses()
    assert get_defense("randomized-smoothing") is RandomizedSmoothing
    rs = create_defense("smoothing", mlp, sigma_mm=5.0)
    assert isinstance(rs, RandomizedSmoothing) and json.dumps(rs.args)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"sigma_mm": 0.0}, "sigma_mm must be > 0"),
    ({"sigma_mm": -3.0}, "sigma_mm must be > 0"),
    ({"sigma_mm": float("nan")}, "sigma_mm"),
    ({"n0": 100, "n": 50}, "must be >= n0"),
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.0}, "alpha"),
    ({"n0": 0}, "n0"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"eot_samples": True}, "eot_samples"),
])
def test_bad_arguments_are_refused(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        RandomizedSmoothing(toy(Fixed()), **kwargs)


def test_bad_call_arguments_are_refused():
    rs = RandomizedSmoothing(toy(Fixed()), n0=5, n=10)
    with pytest.raises(ConfigError, match="must be >= n0"):
        rs.certify(clips(1), n0=20)
    with pytest.raises(ConfigError, match="alpha"):
        rs.predict_smoothed(clips(1), alpha=2.0)


def test_attacks_see_it_as_stochastic(mlp):
    rs = RandomizedSmoothing(mlp, sigma_mm=10.0, eot_samples=5)
    oracle = as_oracle(rs, "gradient")
    assert isinstance(oracle, ExpectationOracle) and oracle.samples == 5


# ---------------------------------------------------------------------- Gaussian augmentation
def test_gaussian_noise_loss():
    rec = Recorder()
    net = toy(rec)
    x, y = clips(4), torch.tensor([0, 1, 2, 0])
    loss_fn = GaussianNoiseLoss(sigma_mm=20.0)
    torch.manual_seed(0)
    loss, logits = loss_fn(net, x, y)
    assert loss.ndim == 0 and logits.shape == (4, 3)
    assert float(loss) == pytest.approx(math.log(3))
    assert bool((rec.seen[:, :, 10:] == 0).all()) and bool((rec.seen[..., 1] == 0).all())
    assert not torch.equal(rec.seen, x) and float((rec.seen - x).abs().max()) < 0.2
    first = rec.seen
    torch.manual_seed(0)
    loss_fn(net, x, y)
    assert torch.equal(first, rec.seen)
    fixed = Fixed(1)
    loss, _ = GaussianNoiseLoss(5.0)(toy(fixed), x, y)
    loss.backward()
    assert fixed.scale.grad is not None
    with pytest.raises(ConfigError, match="sigma_mm must be > 0"):
        GaussianNoiseLoss(0.0)


# ---------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def saved(mlp, tmp_path_factory):
    root = tmp_path_factory.mktemp("smooth")
    plain = mlp.save(root / "plain")
    smooth = RandomizedSmoothing(mlp, sigma_mm=7.0, n0=5, n=20, batch_size=64).save(
        root / "smooth")
    return plain, smooth


def test_cli_certify_prints_and_writes_json(capsys, saved):
    plain, smooth = saved
    flags = ["--data", "synthetic", "--split", "test", "-o", "num_clips=20", "-o", "seed=1",
             "--clips", "6"]
    code, out, err = run(capsys, "certify", str(plain), *flags, "--sigma-mm", "12",
                         "--n0", "5", "--n", "30", "--radii", "0", "5", "--json", "-q")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc["certified_accuracy"]) == ["0", "5"] and doc["clips"] == 6
    assert doc["smoothing"]["sigma_mm"] == 12.0 and not doc["smoothing"]["from_saved_defense"]
    assert doc["smoothing"]["n"] == 30 and len(doc["per_clip"]) == 6
    assert 0.0 <= doc["abstain_rate"] <= 100.0 and doc["seconds"] >= 0
    assert all(c["certified"] == -1 or c["radius_mm"] >= 0 for c in doc["per_clip"])
    again = json.loads(run(capsys, "certify", str(plain), *flags, "--sigma-mm", "12",
                           "--n0", "5", "--n", "30", "--radii", "0", "5", "--json", "-q")[1])
    assert again["per_clip"] == doc["per_clip"]  # seeded noise (--seed 0)
    code, out, err = run(capsys, "certify", str(smooth), *flags, "-q")
    assert code == 0, err
    assert "certified accuracy %" in out and "sigma 7 mm" in out and "abstained on" in out
    code, out, _ = run(capsys, "certify", str(smooth), *flags, "--sigma-mm", "3", "--json",
                       "-q")
    doc = json.loads(out)
    assert doc["smoothing"]["sigma_mm"] == 3.0 and doc["smoothing"]["n"] == 20
    assert doc["smoothing"]["from_saved_defense"]


def test_cli_certify_errors_name_the_flag(capsys, saved):
    plain, smooth = saved
    code, _, err = run(capsys, "certify", str(plain), "--sigma-mm", "0")
    one_line_error(code, err, "--sigma-mm")
    code, _, err = run(capsys, "certify", str(plain), "--sigma-mm", "-1")
    one_line_error(code, err, "--sigma-mm")
    code, _, err = run(capsys, "certify", str(plain), "--sigma-mm", "5", "--n0", "10",
                       "--n", "5")
    one_line_error(code, err, "--n (5) must be >= --n0 (10)")
    code, _, err = run(capsys, "certify", str(smooth), "--n", "3")  # saved n0 is 5
    one_line_error(code, err, "--n0")
    code, _, err = run(capsys, "certify", str(plain))
    one_line_error(code, err, "--sigma-mm is required")


def test_vote_oracle_answers_the_majority_and_counts_queries():
    """BASAR and HopSkipJump given ``vote_oracle`` attack the smoothed classifier itself."""
    from skelrobust.attacks.oracle import QueryOracle

    torch.manual_seed(0)
    smooth = RandomizedSmoothing(toy(Fixed(2)), sigma_mm=5.0, n0=10, n=20)
    oracle = smooth.vote_oracle(votes=7, budget=3)
    assert isinstance(oracle, QueryOracle) and oracle.access == "label" and oracle.stochastic
    oracle.reset(2, 3)
    labels = oracle.label(clips(2), torch.arange(2))
    assert labels.tolist() == [2, 2] and oracle.queries.tolist() == [1, 1]
    with pytest.raises(ConfigError, match="votes"):
        smooth.vote_oracle(votes=0)
