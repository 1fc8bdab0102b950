"""A motion discriminator on bone directions: CIASA's GAN regulariser.

Liu, Akhtar and Mian (TNNLS 2020, Sec. III-C) regularise the adversarial
skeletons with a discriminator ``D`` that separates natural from perturbed
skeletons; the attack adds the generator loss ``−log D(q̂)`` (Eq. 8 there),
whose gradient pulls the adversarial motion towards the natural manifold.

Here ``D`` sees, per frame, the unit bone vectors ``(q_c − q_p)/‖q_c − q_p‖``
of that frame and its two neighbours (so it judges posture *and* its change
over time, but not bone lengths, which the realignment fixes anyway), and
scores a clip by the mean logit over its real frames and present bodies.
It is trained before the attack, on clean motion ("real") against the same
motion with random per-joint jitter, realigned to the clean bone lengths
("fake"), and kept fixed while attacking: the paper alternates ``D`` and attack
updates, which would make a sample's result depend on the rest of its batch.

``members > 1`` holds an ensemble of independent discriminators, one per
sample (``train_discriminator(..., per_sample=True)``): each sees only its own
clip, so a sample attacked alone or in a batch meets the same ``D``.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn
from torch.nn import functional as F

from skelrobust.attacks.projection import realign_bone_lengths
from skelrobust.errors import ConfigError, ShapeError
from skelrobust.progress import progress_bar
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["BoneDirectionDiscriminator", "bone_direction_features", "train_discriminator"]


def bone_direction_features(x: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Unit bone vectors per frame: ``(N, 3, T, V, M)`` → ``(N, M, T, 3·B)``."""
    vec = skeleton.bone_vectors(x)  # (N, 3, T, B, M)
    unit = vec / vec.norm(dim=1, keepdim=True).clamp_min(1e-9)
    n, _, t, b, m = unit.shape
    return unit.permute(0, 4, 2, 3, 1).reshape(n, m, t, b * 3)


class BoneDirectionDiscriminator(nn.Module):
    """MLP over a three-frame window of bone directions; ``forward`` gives clip logits ``(N,)``.

    Logit > 0 means "natural". With ``members = E > 1`` the module is an
    ensemble; ``forward(x, members=idx)`` scores sample ``i`` with member ``idx[i]``.
    """

    def __init__(self, skeleton: Skeleton | str, hidden: int = 64, members: int = 1,
                 seed: int = 0) -> None:
        super().__init__()
        self.skeleton = get_skeleton(skeleton)
        if members < 1 or hidden < 1:
            raise ConfigError(f"discriminator: members and hidden must be >= 1, got "
                              f"{members} and {hidden}")
        self.members, self.hidden = members, hidden
        width = 3 * 3 * self.skeleton.num_bones
        gen = torch.Generator().manual_seed(seed)
        sizes = [(width, hidden), (hidden, hidden), (hidden, 1)]
        # every member starts from the same weights, so a member does not depend on `members`
        self.weights = nn.ParameterList(
            nn.Parameter((torch.randn(1, i, o, generator=gen) * math.sqrt(2.0 / i))
                         .repeat(members, 1, 1)) for i, o in sizes)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, o)) for _, o in sizes)
        self.info: dict[str, float | int | bool] = {}

    def frame_logits(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Per-frame logits ``(N, M, T)``."""
        feats = bone_direction_features(x, self.skeleton)  # (N, M, T, F)
        n, m, t, f = feats.shape
        pad = F.pad(feats, (0, 0, 1, 1), mode="replicate" if t > 1 else "constant")
        window = torch.cat([pad[:, :, :-2], pad[:, :, 1:-1], pad[:, :, 2:]], dim=-1)
        h = window.reshape(n, m * t, 3 * f)
        idx = self._index(members, n, x.device)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b[idx], h, w[idx])
            if k < last:
                h = F.leaky_relu(h, 0.2)
        return h.reshape(n, m, t)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None,
                frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Clip logits ``(N,)``: mean frame logit over ``frame_mask`` ``(N, M, T)`` (or all)."""
        z = self.frame_logits(x, members)
        if frame_mask is None:
            frame_mask = (x.abs().sum(dim=(1, 3)) > 0).permute(0, 2, 1)  # (N, M, T)
        w = frame_mask.to(z.dtype)
        return (z * w).sum((1, 2)) / w.sum((1, 2)).clamp_min(1.0)

    def _index(self, members: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
        if members is not None:
            idx = torch.as_tensor(members, device=device).long()
            if idx.shape != (n,) or (idx < 0).any() or (idx >= self.members).any():
                raise ShapeError(f"discriminator: members must be ({n},) indices in "
                                 f"[0, {self.members}), got {tuple(idx.shape)}")
            return idx
        if self.members == 1:
            return torch.zeros(n, dtype=torch.long, device=device)
        if n != self.members:
            raise ShapeError(f"discriminator: an ensemble of {self.members} needs a batch of "
                             f"{self.members} (one member per sample) or explicit members, "
                             f"got {n} samples")
        return torch.arange(n, device=device)


def _generators(x: torch.Tensor, seed: int) -> list[torch.Generator]:
    """One generator per sample, seeded from ``seed`` and the sample's bytes."""
    gens = []
    for sample in x.detach().cpu().contiguous().numpy():
        digest = hashlib.blake2b(sample.tobytes(), digest_size=8, key=f"disc:{seed}".encode())
        gens.append(torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little") >> 1))
    return gens


def _fakes(x: torch.Tensor, noise: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Clean motion plus jitter, realigned onto the clean bone lengths; padding kept at zero."""
    present = (x.abs().sum(dim=(1, 3), keepdim=True) > 0)  # (N, 1, T, 1, M)
    return realign_bone_lengths(x + noise, x, skeleton, mask=present)


def train_discriminator(motions: torch.Tensor, steps: int = 200, seed: int = 0,
                        skeleton: Skeleton | str | None = None, per_sample: bool = False,
                        noise_mm: float = 20.0, batch_size: int = 32, lr: float = 1e-3,
                        hidden: int = 64,
                        discriminator: BoneDirectionDiscriminator | None = None,
                        progress: bool = False) -> BoneDirectionDiscriminator:
    """Train a :class:`BoneDirectionDiscriminator` on clean ``motions`` ``(N, 3, T, V, M)``.

    Real: the clean clips; fake: the same clips with per-coordinate Gaussian
    jitter of standard deviation ``noise_mm·U(0.1, 1)`` (per clip), realigned.
    Binary cross-entropy, Adam. ``per_sample``: one member per clip, trained on
    that clip only (its frames are the examples), with that clip's own random
    stream, so a member does not depend on the other clips. The returned
    module is in eval mode with gradients of its parameters disabled; its
    ``info`` dict records the loss before and after training. ``progress``: a bar
    over the steps on stderr.
    """
    x = torch.as_tensor(motions).detach().float()
    if x.dim() != 5 or x.shape[1] != 3 or len(x) == 0:
        raise ShapeError(f"train_discriminator: expected motions (N, 3, T, V, M), got "
                         f"{tuple(x.shape)}")
    if steps < 0 or noise_mm <= 0:
        raise ConfigError(f"train_discriminator: need steps >= 0 and noise_mm > 0, got {steps}, "
                          f"{noise_mm}")
    if skeleton is None:
        skeleton = "ntu25" if discriminator is None else discriminator.skeleton
    skel = get_skeleton(skeleton)
    skel.check_motion(x, "motions")
    n = len(x)
    members = n if per_sample else 1
    disc = discriminator or BoneDirectionDiscriminator(skel, hidden=hidden, members=members,
                                                       seed=seed)
    if disc.members != members:
        raise ConfigError(f"train_discriminator: the discriminator has {disc.members} members, "
                          f"expected {members}")
    disc.to(x.device).train()
    for p in disc.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(disc.parameters(), lr=lr)
    gens = _generators(x, seed) if per_sample else [torch.Generator().manual_seed(seed)]

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        if per_sample:
            scale = torch.stack([0.1 + 0.9 * torch.rand((), generator=g) for g in gens])
            noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])
            xb = x
        else:
            g = gens[0]
            idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
            xb = x[idx.to(x.device)]
            scale = 0.1 + 0.9 * torch.rand(len(idx), generator=g)
            noise = torch.randn(xb.shape, generator=g)
        noise = (noise * (scale * noise_mm * 1e-3).view(-1, 1, 1, 1, 1)).to(x.device)
        return xb, _fakes(xb, noise, skel)

    def loss_of(xb: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        members_idx = torch.arange(n, device=x.device) if per_sample else None
        real_z, fake_z = disc(xb, members_idx), disc(fake, members_idx)
        per = (F.binary_cross_entropy_with_logits(real_z, torch.ones_like(real_z),
                                                  reduction="none")
               + F.binary_cross_entropy_with_logits(fake_z, torch.zeros_like(fake_z),
                                                    reduction="none"))
        return per.sum() if per_sample else per.mean()  # members learn independently

    eval_batch = batch()
    with torch.no_grad():
        before = float(loss_of(eval_batch[0], eval_batch[1])) / (n if per_sample else 1)
    for _ in progress_bar(range(steps), desc="discriminator steps", unit="step",
                          enabled=progress, delay=0):
        xb, fake = batch()
        opt.zero_grad(set_to_none=True)
        loss_of(xb, fake).backward()
        opt.step()
    with torch.no_grad():
        after = float(loss_of(eval_batch[0], eval_batch[1])) / (n if per_sample else 1)
    disc.eval()
    for p in disc.parameters():
        p.requires_grad_(False)
    disc.info = {"loss_before": before, "loss_after": after, "steps": steps,
                 "per_sample": per_sample, "noise_mm": noise_mm}
    return disc
