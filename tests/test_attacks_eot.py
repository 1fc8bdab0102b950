"""EOT: averaged gradients of randomized classifiers, query counting, seeding, effectiveness."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from attack_fixtures import eager_progress, one_thread, victim  # noqa: F401 (fixtures)
from skelrobust.attacks import EOT, PGD, SMART, Attack
from skelrobust.attacks.white_box import GradientAttack
from skelrobust.errors import ConfigError


class InputNoise(nn.Module):
    """A noise defense: Gaussian noise of ``sigma`` metres on the motion inside the forward."""

    def __init__(self, classifier: nn.Module, sigma: float) -> None:
        super().__init__()
        self.inner, self.sigma = classifier, sigma
        self.skeleton, self.num_classes = classifier.skeleton, classifier.num_classes
        # In eval mode like any deployed defense: attacks restore their victim's mode on
        # exit, and a wrapper left in train mode would put the shared victim in train mode.
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + self.sigma * torch.randn_like(x))


class MCDropout(nn.Module):
    """Sampled weights: the classifier with dropout ``p`` left on at evaluation."""

    def __init__(self, classifier: nn.Module, p: float) -> None:
        super().__init__()
        self.inner = copy.deepcopy(classifier)
        self.skeleton, self.num_classes = classifier.skeleton, classifier.num_classes
        self.drops = [m for m in self.inner.modules() if isinstance(m, nn.Dropout)]
        for m in self.drops:
            m.p = p

    def train(self, mode: bool = True) -> MCDropout:
        super().train(mode)
        for m in self.drops:
            m.train(True)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def expected_pred(model: nn.Module, x: torch.Tensor, draws: int = 64) -> torch.Tensor:
    """The prediction of the randomized classifier in expectation (mean softmax of many draws)."""
    with torch.no_grad():
        return torch.stack([model(x) for _ in range(draws)]).softmax(-1).mean(0).argmax(1)


@pytest.fixture(scope="module")
def v():
    return victim()


@pytest.fixture(scope="module")
def batch(v):
    return v.x[:32], v.y[:32]


def test_gradient_variance_is_lower(v, batch):
    x, y = batch[0][:8], batch[1][:8]
    noisy = InputNoise(v.classifier, sigma=0.05).eval()
    plain = PGD(noisy, budget_mm=40.0, steps=1)
    eot = EOT(plain, samples=16)
    torch.manual_seed(0)
    single = torch.stack([plain.gradient(x, y, None)[2] for _ in range(12)])
    averaged = torch.stack([eot.inner.gradient(x, y, None)[2] for _ in range(12)])
    var_single = single.var(0).sum()
    var_eot = averaged.var(0).sum()
    assert float(var_eot) < float(var_single) / 6  # ≈ 1/16 in expectation
    # both estimate the same expected gradient
    cos = torch.nn.functional.cosine_similarity(single.mean(0).flatten(1),
                                                averaged.mean(0).flatten(1))
    assert float(cos.min()) > 0.8


def test_queries_counted_per_pass(v, batch):
    x, y = batch[0][:6], batch[1][:6]
    noisy = InputNoise(v.classifier, sigma=0.05)
    res = EOT(PGD(noisy, budget_mm=40.0, steps=5), samples=4).attack(x, y)
    # 5 steps x 4 passes; the clean and final checks (4 passes each) are bookkeeping
    assert torch.equal(res.queries, torch.full((6,), 20))
    assert res.info["bookkeeping_queries"] == 8
    assert res.info["eot_samples"] == 4 and res.info["attack"] == "eot-pgd"
    smart = EOT(SMART(noisy, steps=10, step_mm=2.0), samples=3).attack(x, y)
    stepped = smart.iterations + (smart.iterations < 10).long()
    assert torch.equal(smart.queries, 3 * stepped)


def test_beats_a_noise_defense_more_often_than_plain_pgd(v, batch):
    x, y = batch
    defended = MCDropout(v.classifier, p=0.7)
    assert float((expected_pred(defended, x) == y).float().mean()) >= 0.9
    torch.manual_seed(0)
    plain = PGD(defended, budget_mm=40.0, steps=5, report=False)(x, y)
    eot = EOT(PGD(defended, budget_mm=40.0, steps=5, report=False), samples=16)(x, y)
    rate_plain = float((expected_pred(defended, plain) != y).float().mean())
    rate_eot = float((expected_pred(defended, eot) != y).float().mean())
    assert rate_eot >= rate_plain + 0.15, (rate_plain, rate_eot)


def test_still_attacks_a_noisy_classifier(v, batch):
    x, y = batch
    noisy = InputNoise(v.classifier, sigma=0.05)
    res = EOT(PGD(noisy, budget_mm=100.0, steps=10), samples=4).attack(x, y)
    assert float((expected_pred(noisy, res.x_adv) != y).float().mean()) >= 0.85
    # the default budget bounds every joint's displacement, exactly
    assert float((res.x_adv.double() - x.double()).norm(dim=1).max()) <= 0.1
    assert (res.summary()["norm"], res.summary()["budget_mm"]) == ("joint", 100.0)


def test_deterministic_and_leaves_rng_and_attack_alone(v, batch):
    x, y = batch[0][:8], batch[1][:8]
    noisy = InputNoise(v.classifier, sigma=0.05)
    base = PGD(noisy, budget_mm=40.0, steps=3)
    x0 = x.clone()
    state = torch.random.get_rng_state()
    a = EOT(base, samples=3).attack(x, y)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    b = EOT(base, samples=3).attack(x, y)
    assert torch.equal(a.x_adv, b.x_adv)
    assert torch.equal(x, x0)
    c = EOT(PGD(noisy, budget_mm=40.0, steps=3, seed=1), samples=3).attack(x, y)
    assert not torch.equal(a.x_adv, c.x_adv)
    # the wrapped attack keeps its own single-pass victim
    eot = EOT(base)
    assert base.victim is not eot.victim and eot.inner.victim is eot.victim
    assert type(base.victim).__name__ == "GradientOracle"
    assert isinstance(eot, Attack)


def test_one_sample_is_the_plain_attack(v, batch):
    x, y = batch[0][:8], batch[1][:8]
    noisy = InputNoise(v.classifier, sigma=0.05)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        plain = PGD(noisy, budget_mm=40.0, steps=4)(x, y)
    wrapped = EOT(PGD(noisy, budget_mm=40.0, steps=4), samples=1)(x, y)
    assert torch.equal(plain, wrapped)


@pytest.mark.usefixtures("eager_progress")
def test_progress_reaches_the_wrapped_attack(v, batch, capsys):
    x, y = batch[0][:2], batch[1][:2]
    eot = EOT(PGD(InputNoise(v.classifier, sigma=0.05), budget_mm=40.0, steps=2), samples=2)
    eot(x, y)
    assert capsys.readouterr().err == ""
    eot.progress = True
    eot(x, y)
    assert "pgd steps" in capsys.readouterr().err


def test_bad_arguments(v):
    with pytest.raises(ConfigError):
        EOT(PGD(v.classifier), samples=0)

    class NotGradient(Attack):
        def perturb(self, x, y, target, mask):
            return x, torch.zeros(len(x), dtype=torch.long)

    with pytest.raises(ConfigError):
        EOT(NotGradient(v.classifier))
    assert issubclass(PGD, GradientAttack) and issubclass(SMART, GradientAttack)
