"""Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019, "Certified Adversarial
Robustness via Randomized Smoothing"), for skeleton motion.

The *smoothed* classifier of a base classifier ``f`` answers the class ``f`` is most
likely to give under isotropic Gaussian noise on the joint coordinates::

    g(x) = argmax_c P(f(x + ε) = c),    ε ~ N(0, σ² I)

If the top class ``c_A`` has probability at least ``p_A`` and every other class at
most ``p_B`` (Cohen et al., Theorem 1), ``g`` is constant within the ℓ2 ball of radius
``R = σ/2 · (Φ⁻¹(p_A) − Φ⁻¹(p_B))`` around ``x``; with the bound ``p_B ≤ 1 − p_A``
this is ``R = σ Φ⁻¹(p_A)`` (their eq. 4), the radius :meth:`RandomizedSmoothing.certify`
reports. Here ``x`` is motion ``(N, 3, T, V, M)`` in metres and ``σ`` is given in
millimetres (``sigma_mm``); the radius is in millimetres of ℓ2 norm over the whole
clip (every coordinate of every present joint and frame). Noise is added only where
the motion exists (frames inside each clip, bodies present:
:func:`skelrobust.attacks.base.motion_mask`), so zero padding stays zero and the
ball lives in the space of the clip's own coordinates.

- :meth:`RandomizedSmoothing.predict_smoothed` is Cohen's PREDICT: ``n`` draws, the
  top two counts ``n_A, n_B``, a two-sided binomial test of ``n_A`` out of
  ``n_A + n_B`` against ½; abstain (``-1``) unless its p-value is ≤ ``alpha``.
- :meth:`RandomizedSmoothing.certify` is Cohen's CERTIFY: guess ``ĉ_A`` from ``n0``
  draws, count it in ``n`` fresh draws, take the one-sided ``(1 − alpha)``
  Clopper–Pearson lower bound ``p_A`` of its probability and certify
  ``R = σ Φ⁻¹(p_A)``; abstain when ``p_A < ½``.
- ``forward`` (``defended_logits``) is ``f`` on ONE noisy draw ``x + ε``, differentiable
  in ``x``: the classifier is ``stochastic``, so gradient attacks on it average
  ``eot_samples`` draws (EOT, :func:`skelrobust.attacks.oracle.as_oracle`).
- :class:`GaussianNoiseLoss` is Cohen's training with Gaussian data augmentation,
  a loss for :func:`skelrobust.training.fit`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch.nn import functional as F

from skelrobust.attacks.base import motion_mask
from skelrobust.classifier import Classifier
from skelrobust.data.dataset import check_motion
from skelrobust.defenses.base import DefendedClassifier, register_defense
from skelrobust.errors import ConfigError
from skelrobust.progress import progress_bar
from skelrobust.validation import OPEN_UNIT, POSITIVE, POSITIVE_INT, check_option

__all__ = ["ABSTAIN", "CertifyResult", "GaussianNoiseLoss", "RandomizedSmoothing",
           "binomial_pvalue", "certified_accuracy", "certified_radius",
           "clopper_pearson_lower", "gaussian_noise"]

ABSTAIN = -1
DEFAULT_RADII_MM = (0.0, 10.0, 20.0, 50.0)


# ---------------------------------------------------------------------- statistics
def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def clopper_pearson_lower(k: Any, n: int, alpha: float) -> torch.Tensor:
    """One-sided ``(1 − alpha)`` Clopper–Pearson lower bound on a binomial proportion.

    ``p_lower = B⁻¹(alpha; k, n − k + 1)`` (the ``alpha`` quantile of a Beta
    distribution), 0 where ``k = 0``; the bound CERTIFY uses (Cohen et al., 2019,
    ``LowerConfBound``). ``k``: successes (any shape), ``n``: trials.
    """
    k = _as_array(k)
    with np.errstate(invalid="ignore"):
        low = stats.beta.ppf(alpha, np.maximum(k, 1.0), n - k + 1.0)
    return torch.from_numpy(np.where(k > 0, low, 0.0))


def binomial_pvalue(k: Any, n: Any) -> torch.Tensor:
    """Two-sided p-value of ``k`` successes in ``n`` trials against ``p = ½``, elementwise.

    For ``p = ½`` the distribution is symmetric, so the two-sided test PREDICT uses
    (Cohen et al., 2019) is ``min(1, 2·P(Bin(n, ½) ≤ min(k, n − k)))``, the same
    value as ``scipy.stats.binomtest(k, n, 0.5).pvalue``, vectorised.
    """
    k, n = _as_array(k), _as_array(n)
    tail = stats.binom.cdf(np.minimum(k, n - k), n, 0.5)
    return torch.from_numpy(np.minimum(1.0, 2.0 * tail))


def certified_radius(p_lower: Any, sigma_mm: float) -> torch.Tensor:
    """Certified ℓ2 radius in mm, ``R = σ Φ⁻¹(p_A)`` (Cohen et al., 2019, eq. 4).

    The radius of Theorem 1 with ``p_B ≤ 1 − p_A``; 0 where ``p_A ≤ ½`` (no
    certificate: CERTIFY abstains below ½). Grows with ``σ`` and with ``p_A``.
    """
    p = _as_array(p_lower)
    radius = float(sigma_mm) * stats.norm.ppf(np.clip(p, 0.5, 1.0))
    return torch.from_numpy(np.asarray(radius, dtype=np.float64))


@dataclass
class CertifyResult:
    """What :meth:`RandomizedSmoothing.certify` returns, one entry per clip.

    ``label``: the certified class, ``-1`` where CERTIFY abstains; ``radius_mm``: the
    certified ℓ2 radius ``σ Φ⁻¹(p_A)`` (0 on abstention); ``p_lower``: the lower
    confidence bound ``p_A``; ``counts``: ``(N, K)`` class counts of the ``n``
    estimation draws.
    """

    label: torch.Tensor
    radius_mm: torch.Tensor
    p_lower: torch.Tensor
    counts: torch.Tensor
    sigma_mm: float = 0.0
    n0: int = 0
    n: int = 0
    alpha: float = 0.0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def abstained(self) -> torch.Tensor:
        """``(N,)`` bool: CERTIFY abstained."""
        return self.label == ABSTAIN

    @property
    def abstain_rate(self) -> float:
        """Percent of clips abstained on."""
        return 100.0 * float(self.abstained.float().mean()) if len(self) else math.nan

    @property
    def mean_radius_mm(self) -> float:
        """Mean certified radius (mm) over the clips not abstained on (NaN if none)."""
        kept = self.radius_mm[~self.abstained]
        return float(kept.mean()) if len(kept) else math.nan

    def certified_accuracy(self, y: Any, radii_mm: Sequence[float] = DEFAULT_RADII_MM,
                           ) -> dict[float, float]:
        """See :func:`certified_accuracy`."""
        return certified_accuracy(self, y, radii_mm)


def certified_accuracy(result: CertifyResult, y: Any,
                       radii_mm: Sequence[float] = DEFAULT_RADII_MM) -> dict[float, float]:
    """Certified accuracy (%) at each radius: clips whose certified label is ``y`` and whose
    radius is ≥ ``r`` (Cohen et al., 2019, Sec. 4); abstentions count as wrong."""
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long().cpu()
    if y.shape != result.label.shape:
        raise ConfigError(f"certified_accuracy: {tuple(y.shape)} labels for "
                          f"{len(result)} certified clips")
    right = result.label.cpu() == y
    radius = result.radius_mm.cpu()
    return {float(r): (100.0 * float((right & (radius >= float(r))).float().mean())
                       if len(y) else math.nan) for r in radii_mm}


# ---------------------------------------------------------------------- noise
def gaussian_noise(x: torch.Tensor, sigma_mm: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``ε ~ N(0, (σ/1000)² I)`` in metres, shaped like ``x``, zero where the motion is absent
    (padded frames, absent bodies: :func:`~skelrobust.attacks.base.motion_mask`)."""
    mask = motion_mask(x.detach())
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return eps * (float(sigma_mm) / 1000.0) * mask


# ---------------------------------------------------------------------- the defense

def _certify_options(who: str, n0: Any, n: Any, alpha: Any) -> tuple[int, int, float]:
    """CERTIFY's draw counts and level, checked: ``n0, n >= 1``, ``n >= n0``, ``0 < α < 1``."""
    n0 = check_option(who, "n0", n0, POSITIVE_INT)
    n = check_option(who, "n", n, POSITIVE_INT)
    if n < n0:
        raise ConfigError(f"{who}: n (estimation draws, {n}) must be >= n0 (selection "
                          f"draws, {n0})")
    return n0, n, check_option(who, "alpha", alpha, OPEN_UNIT)

@register_defense("smoothing", "randomized-smoothing")
class RandomizedSmoothing(DefendedClassifier):
    """Randomized smoothing (Cohen et al., ICML 2019): certified ℓ2 robustness under Gaussian noise.

    ``g(x) = argmax_c P(f(x + ε) = c)``, ``ε ~ N(0, σ² I)`` on the present joints; certified
    radius ``R = σ Φ⁻¹(p_A)`` (module doc). ``sigma_mm``: noise σ in mm; ``n0``/``n``:
    selection and estimation draws of CERTIFY (``n`` also PREDICT's); ``alpha``: the
    failure probability of a certificate or prediction; ``batch_size``: noisy copies
    per forward call; ``eot_samples``: draws gradient attacks average (EOT).

    Calling it (``forward``) gives the base's logits on one noisy draw, with the
    global RNG: reproducible under ``torch.manual_seed``. ``predict``/``evaluate``
    therefore report single-draw answers; the smoothed ones are
    :meth:`predict_smoothed` and :meth:`certify`.
    """

    freezes_base = True

    def __init__(self, base: Classifier, sigma_mm: float = 10.0, n0: int = 100,
                 n: int = 10000, alpha: float = 0.001, batch_size: int = 1000,
                 eot_samples: int = 8) -> None:
        who = "smoothing"
        sigma_mm = check_option(who, "sigma_mm", sigma_mm, POSITIVE)
        n0, n, alpha = _certify_options(who, n0, n, alpha)
        batch_size = check_option(who, "batch_size", batch_size, POSITIVE_INT)
        eot_samples = check_option(who, "eot_samples", eot_samples, POSITIVE_INT)
        super().__init__(base, {"sigma_mm": sigma_mm, "n0": n0, "n": n, "alpha": alpha,
                                "batch_size": batch_size, "eot_samples": eot_samples})
        self.sigma_mm, self.n0, self.n, self.alpha = sigma_mm, n0, n, alpha
        self.batch_size, self.eot_samples = batch_size, eot_samples
        self.stochastic = True
        self.progress = False  # a progress bar over the noise batches of certify/predict

    def noise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw of the masked Gaussian noise for ``x`` (metres; see :func:`gaussian_noise`)."""
        return gaussian_noise(x, self.sigma_mm, generator)

    def defended_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Base logits ``f(x + ε)`` on one noisy draw (global RNG), differentiable in ``x``."""
        return self.base(x + self.noise(x))

    def _motion(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        x = x.to(device=self.mean.device, dtype=self.mean.dtype)
        check_motion(x, "x", self.skeleton)
        return x

    @torch.no_grad()
    def sample_counts(self, x: Any, num: int, batch_size: int | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """``(N, K)`` counts of the base's labels over ``num`` noisy draws of each clip.

        Draws of all clips are laid end to end and run ``batch_size`` rows per forward
        call (several clips share a call); labels are tallied with one ``bincount`` per
        call. The draws come from ``generator`` (or the global RNG) in that order, so a
        seeded generator and the same ``batch_size`` repeat the counts exactly.
        """
        x = self._motion(x)
        num = check_option("smoothing", "the number of draws", num, POSITIVE_INT)
        size = check_option("smoothing", "batch_size", batch_size or self.batch_size,
                            POSITIVE_INT)
        clips, k = len(x), self.num_classes
        mask = motion_mask(x) * (self.sigma_mm / 1000.0)
        counts = torch.zeros(clips * k, dtype=torch.long, device=x.device)
        total = clips * num
        starts = progress_bar(range(0, total, size), desc=f"smoothing ({num} draws per clip)",
                              enabled=self.progress, unit="batch")
        for start in starts:
            rows = torch.arange(start, min(start + size, total), device=x.device) // num
            xb = x[rows]
            eps = torch.randn(xb.shape, generator=generator, device=x.device, dtype=x.dtype)
            labels = self.base(xb + eps * mask[rows]).argmax(1)
            counts += torch.bincount(rows * k + labels, minlength=clips * k)
        return counts.view(clips, k)

    def majority_vote(self, x: Any, votes: int, batch_size: int | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """``(N,)`` the base's most frequent label over ``votes`` noisy draws (no abstention)."""
        return self.sample_counts(x, votes, batch_size, generator).argmax(1)

    def vote_oracle(self, votes: int = 100, budget: int | None = None) -> Any:
        """A label oracle answering the smoothed classifier's majority vote over ``votes``
        draws (what a deployed smoothed model answers; no abstention), one query per motion.

        Label-only attacks given this oracle attack ``g`` itself; given the classifier
        they see one noisy draw of ``f`` per query.
        """
        from skelrobust.attacks.oracle import QueryOracle

        votes = check_option("smoothing", "votes", votes, POSITIVE_INT)
        return QueryOracle(lambda x: self.majority_vote(x, votes),
                           num_classes=self.num_classes, skeleton=self.skeleton,
                           class_names=self.class_names, access="label", budget=budget,
                           answers="labels", stochastic=True,
                           name=f"smoothing(sigma={self.args['sigma_mm']} mm, {votes} votes)")

    def predict_smoothed(self, x: Any, n: int | None = None, batch_size: int | None = None,
                         generator: torch.Generator | None = None,
                         alpha: float | None = None) -> torch.Tensor:
        """Cohen's PREDICT: ``(N,)`` labels of ``g``, ``-1`` (abstain) where unsure.

        From ``n`` noisy draws (default the defense's), the two most frequent labels
        ``c_A, c_B`` with counts ``n_A ≥ n_B``; ``c_A`` is returned when the two-sided
        binomial test of ``n_A`` out of ``n_A + n_B`` against ½ has p-value ≤ ``alpha``,
        else abstain. It answers a wrong label with probability at most ``alpha``.
        """
        n = check_option("smoothing", "n", self.n if n is None else n, POSITIVE_INT)
        alpha = check_option("smoothing", "alpha", self.alpha if alpha is None else alpha,
                             OPEN_UNIT)
        counts = self.sample_counts(x, n, batch_size, generator)
        top = counts.topk(min(2, counts.shape[1]), dim=1)
        n_a, c_a = top.values[:, 0], top.indices[:, 0]
        n_b = top.values[:, 1] if counts.shape[1] > 1 else torch.zeros_like(n_a)
        pvalue = binomial_pvalue(n_a.cpu(), (n_a + n_b).cpu()).to(counts.device)
        return torch.where(pvalue <= alpha, c_a, torch.full_like(c_a, ABSTAIN))

    def certify(self, x: Any, n0: int | None = None, n: int | None = None,
                alpha: float | None = None, generator: torch.Generator | None = None,
                batch_size: int | None = None) -> CertifyResult:
        """Cohen's CERTIFY for every clip of ``x``: label ``ĉ_A`` and radius ``σ Φ⁻¹(p_A)``.

        ``ĉ_A`` is the most frequent label of ``n0`` draws; ``p_A`` the one-sided
        ``(1 − alpha)`` Clopper–Pearson lower bound of its count in ``n`` fresh draws
        (:func:`clopper_pearson_lower`); abstain (label ``-1``, radius 0) when
        ``p_A < ½``. With probability ≥ ``1 − alpha`` per clip, a certified ``g`` is
        constant on the ℓ2 ball of that radius (mm) around the clip.
        """
        who = "smoothing"
        n0, n, alpha = _certify_options(who, self.n0 if n0 is None else n0,
                                        self.n if n is None else n,
                                        self.alpha if alpha is None else alpha)
        t0 = time.perf_counter()
        guess = self.majority_vote(x, n0, batch_size, generator)
        counts = self.sample_counts(x, n, batch_size, generator)
        n_a = counts.gather(1, guess[:, None])[:, 0].cpu()
        p_lower = clopper_pearson_lower(n_a, n, alpha)
        abstain = p_lower < 0.5
        label = torch.where(abstain, torch.full_like(guess.cpu(), ABSTAIN), guess.cpu())
        radius = torch.where(abstain, torch.zeros_like(p_lower),
                             certified_radius(p_lower, self.sigma_mm))
        return CertifyResult(label=label, radius_mm=radius, p_lower=p_lower,
                             counts=counts.cpu(), sigma_mm=self.sigma_mm, n0=n0, n=n,
                             alpha=alpha, seconds=time.perf_counter() - t0,
                             settings={**self.args, "n0": n0, "n": n, "alpha": alpha})

    certified_accuracy = staticmethod(certified_accuracy)


# ---------------------------------------------------------------------- training
class GaussianNoiseLoss:
    """Training with Gaussian data augmentation (Cohen et al., 2019, Sec. 3.2), a loss for ``fit``.

    ``loss(net, x, y) -> (cross-entropy of net(x + ε), those logits)`` with
    ``ε ~ N(0, σ² I)`` on the present joints (padding stays zero), so the base learns
    to classify noisy motion and its smoothed classifier certifies larger radii. Use
    the σ the classifier will be smoothed with. The logits returned are those of the
    noisy input (the train accuracy ``fit`` reports is accuracy under noise).
    Draws use the global RNG (``fit`` saves and restores it on resume).
    """

    def __init__(self, sigma_mm: float = 10.0) -> None:
        self.sigma_mm = check_option("gaussian noise loss", "sigma_mm", sigma_mm, POSITIVE)

    def __call__(self, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = net(x + gaussian_noise(x, self.sigma_mm))
        return F.cross_entropy(logits, y), logits

    def __repr__(self) -> str:
        return f"GaussianNoiseLoss(sigma_mm={self.sigma_mm:g})"
