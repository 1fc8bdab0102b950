"""Choosing the clips to attack: correct for every model, seeded, reproducible."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skelrobust.attacks import PGD, batched_logits, choose_clips, correct_mask
from skelrobust.errors import ConfigError


class Fixed(nn.Module):
    """Predicts, per clip, the class written in x-coordinate of joint ``joint`` of frame 0."""

    def __init__(self, joint: int = 0, num_classes: int = 4) -> None:
        super().__init__()
        self.joint, self.num_classes = joint, num_classes
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = x[:, 0, 0, self.joint, 0].round().long()
        return nn.functional.one_hot(label, self.num_classes).float() * self.scale


def _clips(*labels: list[int]) -> torch.Tensor:
    """Clips whose joint ``k`` carries ``labels[k]`` (what model ``Fixed(k)`` predicts)."""
    x = torch.zeros(len(labels[0]), 3, 2, 5, 1)
    for joint, values in enumerate(labels):
        x[:, 0, 0, joint, 0] = torch.tensor(values, dtype=torch.float)
    return x


def test_correct_mask_is_the_intersection_over_models():
    y = torch.tensor([0, 1, 2, 3, 0])
    x = _clips([0, 1, 2, 0, 0], [0, 2, 2, 3, 0])
    assert correct_mask(Fixed(0), x, y).tolist() == [True, True, True, False, True]
    assert correct_mask(Fixed(1), x, y).tolist() == [True, False, True, True, True]
    assert correct_mask([Fixed(0), Fixed(1)], x, y).tolist() == [True, False, True, False, True]
    with pytest.raises(ConfigError, match="at least one"):
        correct_mask([], x, y)


def test_batched_logits_match_one_pass_and_restore_training_mode():
    m = Fixed().train()
    x = _clips([0, 1, 2, 3, 1, 2, 0])
    out = batched_logits(m, x, batch_size=3)
    torch.testing.assert_close(out, m(x))
    assert m.training


def test_choose_clips_is_seeded_sorted_and_only_picks_correct_ones():
    mask = torch.tensor([True, False, True, True, False, True, True, False, True, True])
    a, b = choose_clips(mask, 4, seed=3), choose_clips(mask, 4, seed=3)
    assert torch.equal(a, b) and len(a) == 4
    assert torch.equal(a, a.sort().values) and bool(mask[a].all())
    picks = {tuple(choose_clips(mask, 4, seed=s).tolist()) for s in range(10)}
    assert len(picks) > 1  # the seed matters
    assert choose_clips(mask, 100).tolist() == torch.nonzero(mask).flatten().tolist()
    with pytest.raises(ConfigError, match="no clip"):
        choose_clips(torch.zeros(3, dtype=torch.bool), 2)
    with pytest.raises(ConfigError, match="n must be"):
        choose_clips(mask, 0)


def test_success_rate_on_clean_correct_clips_ignores_free_successes():
    from attack_fixtures import victim

    v = victim()
    x, y = v.x[:6], v.y[:6].clone()
    wrong = (y[:2] + 1) % v.classifier.num_classes
    y[:2] = wrong  # two clips now misclassified when clean: "fooled" for free
    res = PGD(v.classifier, budget_mm=0.001, steps=1, report=False).attack(x, y)
    assert bool(res.success[:2].all()) and not bool(res.success[2:].any())
    assert res.success_rate == pytest.approx(100 * 2 / 6)
    assert res.success_rate_clean_correct == 0.0
    assert res.summary()["success_rate_clean_correct"] == 0.0
