"""HBRNN-L: hierarchical bidirectional RNN (Du, Wang & Wang, CVPR 2015).

The skeleton is split into five parts (two arms, trunk, two legs); each part's
joint coordinates feed a bidirectional RNN (layer ``bl1``), and the part
representations are fused level by level (Du et al., Sec. 3, Fig. 1)::

    bl1: BRNN(left arm), BRNN(right arm), BRNN(trunk), BRNN(left leg), BRNN(right leg)
    fl1: [left arm; trunk], [right arm; trunk], [trunk; left leg], [trunk; right leg]
    bl2: one BRNN per fused part                       (4 subnets)
    fl2: upper = [left arm-trunk; right arm-trunk], lower = [trunk-left leg; trunk-right leg]
    bl3: BRNN(upper), BRNN(lower)
    fl3: whole body = [upper; lower]
    bl4: bidirectional LSTM over the whole body
    O_t = W·h_t + b (fully connected at each frame);  p(C | x) = softmax(Σ_t O_t)

``bl1``-``bl3`` are tanh RNNs and ``bl4`` an LSTM, as in HBRNN-L. Each layer is a
packed/batched ``nn.RNN``/``nn.LSTM`` (no Python loop over frames); the five (four,
two) subnets of a level have different input sizes and are separate modules.

Body parts come from :func:`body_parts`: the layout's ``parts`` when its
``torso``/``left_arm``/``right_arm``/``left_leg``/``right_leg`` partition the
joints, else the naming rule of :func:`derive_body_parts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from skelrobust.errors import ConfigError
from skelrobust.models.blocks import check_motion, fold_bodies, plan_for
from skelrobust.models.registry import register_model
from skelrobust.skeleton import Skeleton

__all__ = ["HRNN", "PART_ORDER", "body_parts", "derive_body_parts", "valid_lengths"]

# Order of the five bl1 subnets.
PART_ORDER = ("left_arm", "right_arm", "torso", "left_leg", "right_leg")

# Per-direction hidden units of bl1, bl2, bl3 (tanh BRNNs) and bl4 (BLSTM).
PLANS: dict[str, tuple[int, int, int, int]] = {
    # NTU-scale widths doubling per level (the paper's per-dataset widths are for
    # smaller datasets): 1.92 M parameters (ntu25, 60 classes).
    "base": (32, 64, 128, 256),
    # 0.16 M parameters; ~220 samples/s forward+backward per CPU-thread-second
    # (batch 32, T=64, V=25).
    "small": (16, 32, 32, 64),
}

_LEG_WORDS = ("hip", "pelvis", "femur", "thigh", "knee", "tibia", "shin", "ankle", "foot",
              "feet", "toe", "heel", "leg")
_ARM_WORDS = ("clavicle", "collar", "shoulder", "humerus", "elbow", "radius", "forearm",
              "wrist", "hand", "finger", "thumb", "palm", "arm")


def valid_lengths(x: torch.Tensor) -> torch.Tensor:
    """Last frame with a non-zero coordinate, plus one, of each clip (at least 1).

    ``x`` is ``(N, C, T, ...)`` (time on dim 2); returns an ``int64`` tensor ``(N,)``.
    Zero frames after the clip are padding (the dataset convention); zero frames
    inside it count as frames.
    """
    n, t = x.shape[0], x.shape[2]
    present = x.detach().abs().transpose(1, 2).reshape(n, t, -1).sum(-1) > 0  # (N, T)
    frame = torch.arange(1, t + 1, device=x.device)
    return (present * frame).amax(dim=1).clamp(min=1)


def _is_partition(groups: Sequence[Sequence[int]], num_joints: int) -> bool:
    flat = [j for g in groups for j in g]
    return all(len(g) > 0 for g in groups) and sorted(flat) == list(range(num_joints))


def derive_body_parts(skeleton: Skeleton) -> dict[str, tuple[int, ...]]:
    """Five body parts from the joint names and left/right pairs of any layout.

    Rule: a joint is *sided* when it is in a ``left_right`` pair (or its name
    starts with ``left``/``right``); a sided joint whose name contains a leg
    word (hip, pelvis, femur, knee, tibia, ankle, foot, toe, ...) goes to that
    side's leg, one with an arm word (clavicle, shoulder, humerus, elbow,
    radius, wrist, hand, finger, thumb, ...) to that side's arm; every other
    joint (spine, neck, head, and sided face joints such as eyes and ears) to
    the trunk. Leg words are tested first (``lhipjoint`` is a leg joint). On
    every built-in layout this reproduces ``Skeleton.parts``.
    """
    side: dict[int, str] = {}
    for left, right in skeleton.left_right:
        side[left], side[right] = "left", "right"
    parts: dict[str, list[int]] = {p: [] for p in PART_ORDER}
    for j, name in enumerate(skeleton.joint_names):
        low = name.lower()
        s = side.get(j) or next((w for w in ("left", "right") if low.startswith(w)), None)
        if s is not None and any(w in low for w in _LEG_WORDS):
            parts[f"{s}_leg"].append(j)
        elif s is not None and any(w in low for w in _ARM_WORDS):
            parts[f"{s}_arm"].append(j)
        else:
            parts["torso"].append(j)
    return {p: tuple(js) for p, js in parts.items()}


def body_parts(skeleton: Skeleton) -> dict[str, tuple[int, ...]]:
    """The five parts of :data:`PART_ORDER` for ``skeleton`` (each joint in exactly one).

    The layout's own ``parts`` are used when they hold the five names and
    partition the joints; otherwise :func:`derive_body_parts`. An empty part
    raises :class:`ConfigError`.
    """
    own = skeleton.parts
    if all(p in own for p in PART_ORDER) and _is_partition([own[p] for p in PART_ORDER],
                                                           skeleton.num_joints):
        return {p: tuple(own[p]) for p in PART_ORDER}
    parts = derive_body_parts(skeleton)
    empty = [p for p in PART_ORDER if not parts[p]]
    if empty:
        raise ConfigError(f"hrnn: layout {skeleton.name!r} has no joints for body part(s) "
                          f"{empty}; give the layout explicit parts")
    return parts


def _with_data(seq: torch.Tensor | PackedSequence, data: torch.Tensor
               ) -> torch.Tensor | PackedSequence:
    """``data`` in the form of ``seq`` (a padded tensor, or a packed sequence's ``.data``)."""
    return seq._replace(data=data) if isinstance(seq, PackedSequence) else data


def _data(seq: torch.Tensor | PackedSequence) -> torch.Tensor:
    return seq.data if isinstance(seq, PackedSequence) else seq


_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _brnn(cell: str, in_features: int, hidden: int) -> nn.Module:
    kw = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    return _CELLS[cell](in_features, hidden, batch_first=True, bidirectional=True, **kw)


@register_model("hrnn", description="HBRNN-L, hierarchical bidirectional RNN over five body "
                                    "parts",
                paper="Du, Wang & Wang, Hierarchical Recurrent Neural Network for Skeleton "
                      "Based Action Recognition, CVPR 2015")
class HRNN(nn.Module):
    """HBRNN-L classifier: motion ``(N, C, T, V, M)`` → logits ``(N, num_classes)``.

    Bodies are folded into the batch after an input BatchNorm over the ``V·C``
    coordinates (the convention of this library's models; the paper feeds raw
    normalised coordinates) and their logits averaged. With
    ``ignore_padding`` (default) the frames after each body's last non-zero
    frame are padding: the RNNs run on packed sequences of the valid frames
    and the readout pools only them.

    ``time_pool="sum"`` is the published readout ``Σ_t O_t``; the default
    ``"mean"`` divides it by the number of frames, which only rescales the
    logits by ``1/T`` (same argmax) but keeps their scale independent of the
    clip length, so training is stable for long clips. ``cell`` ("rnn",
    "gru", "lstm") replaces the tanh units of bl1-bl3 (HBRNN-L: "rnn");
    ``dropout`` acts on the bl4 output before the readout (0 as published).

    **Features.** The readout is per frame, so no pooled vector reproduces its
    bits; :meth:`forward_features` is, for each body, the bl4 output averaged over
    the valid frames ``h̄ = 1/L Σ_t h_t`` (``time_pool="sum"``: followed by ``L``
    itself, as ``Σ_t O_t = L·(W·h̄ + b)``), the bodies' vectors concatenated:
    ``num_features = num_bodies·2·h4`` (``+ num_bodies`` for ``"sum"``).
    :meth:`forward_head` applies dropout and ``fc`` to each body's ``h̄`` (times
    ``L`` for ``"sum"``) and averages over bodies. As ``fc`` is affine this equals
    ``forward`` up to float rounding (about 1e-7 relative) in eval mode, where
    dropout is off; ``forward`` itself is unchanged (per-frame readout).
    """

    def __init__(self, skeleton: Skeleton, num_classes: int, size: str = "small",
                 in_channels: int = 3, num_bodies: int = 1, time_pool: str = "mean",
                 cell: str = "rnn", ignore_padding: bool = True, dropout: float = 0.0,
                 hidden: Sequence[int] | None = None) -> None:
        super().__init__()
        widths = tuple(hidden) if hidden is not None else plan_for("hrnn", size, PLANS)
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ConfigError(f"hrnn: hidden must be 4 positive widths (bl1..bl4), got {hidden}")
        if time_pool not in ("mean", "sum"):
            raise ConfigError(f"hrnn: time_pool must be 'mean' or 'sum', got {time_pool!r}")
        if cell not in _CELLS:
            raise ConfigError(f"hrnn: cell must be one of {tuple(_CELLS)}, got {cell!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"hrnn: dropout must be in [0, 1), got {dropout}")
        self.skeleton = skeleton
        self.num_joints = v = skeleton.num_joints
        self.in_channels = c = in_channels
        self.num_classes = num_classes
        self.num_bodies = num_bodies
        self.time_pool = time_pool
        self.ignore_padding = ignore_padding
        self.parts = body_parts(skeleton)
        h1, h2, h3, h4 = (int(w) for w in widths)
        for i, p in enumerate(PART_ORDER):  # feature columns of each part in (V·C) frames
            cols = torch.tensor([j * c + k for j in self.parts[p] for k in range(c)])
            self.register_buffer(f"cols{i}", cols, persistent=False)
        self.data_bn = nn.BatchNorm1d(c * v)
        self.bl1 = nn.ModuleList(_brnn(cell, c * len(self.parts[p]), h1) for p in PART_ORDER)
        self.bl2 = nn.ModuleList(_brnn(cell, 4 * h1, h2) for _ in range(4))
        self.bl3 = nn.ModuleList(_brnn(cell, 4 * h2, h3) for _ in range(2))
        self.bl4 = nn.LSTM(4 * h3, h4, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * h4, num_classes)
        self.body_features = 2 * h4 + (1 if time_pool == "sum" else 0)
        self.num_features = num_bodies * self.body_features

    def _bl4(self, x: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor | PackedSequence, torch.Tensor | None]:
        """bl4 outputs (the data of a packed sequence, or ``(N·M, T, 2·h4)``), the
        sequence they belong to, and the valid lengths (``None``: nothing padded)."""
        check_motion(x, "hrnn", self.skeleton, self.in_channels)
        n, c, t, v, m = x.shape
        lengths = None
        if self.ignore_padding:
            lengths = valid_lengths(x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v))
            if bool((lengths == t).all()):
                lengths = None  # nothing padded: plain batched tensors
        h = fold_bodies(x, self.data_bn, per_body=True)  # (N·M, C, T, V)
        h = h.permute(0, 2, 3, 1).reshape(n * m, t, v * c)
        seq: torch.Tensor | PackedSequence = h
        if lengths is not None:
            seq = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
        feats = _data(seq)

        def run(rnn: nn.Module, data: torch.Tensor) -> torch.Tensor:
            return _data(rnn(_with_data(seq, data))[0])

        la, ra, tr, ll, rl = (run(rnn, feats.index_select(-1, getattr(self, f"cols{i}")))
                              for i, rnn in enumerate(self.bl1))
        fl1 = (torch.cat([la, tr], -1), torch.cat([ra, tr], -1),
               torch.cat([tr, ll], -1), torch.cat([tr, rl], -1))
        o2 = [run(rnn, z) for rnn, z in zip(self.bl2, fl1)]
        fl2 = (torch.cat(o2[:2], -1), torch.cat(o2[2:], -1))
        o3 = [run(rnn, z) for rnn, z in zip(self.bl3, fl2)]
        return run(self.bl4, torch.cat(o3, -1)), seq, lengths

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per body ``h̄`` (and ``L`` for ``time_pool="sum"``), concatenated: ``(N, M·F)``."""
        h, seq, lengths = self._bl4(x)  # checks x
        n, t = x.shape[0], x.shape[2]
        if lengths is None:
            count = torch.full((h.shape[0], 1), t, dtype=h.dtype, device=h.device)
            mean = h.mean(dim=1)
        else:
            padded, _ = pad_packed_sequence(_with_data(seq, h), batch_first=True,
                                            total_length=t)  # zeros after each clip
            count = lengths.to(padded)[:, None]
            mean = padded.sum(dim=1) / count
        feats = torch.cat([mean, count], dim=1) if self.time_pool == "sum" else mean
        return feats.reshape(n, -1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``fc(Dropout(h̄))`` per body (times ``L`` for ``"sum"``), averaged over bodies."""
        n = features.shape[0]
        f = features.reshape(-1, self.body_features)
        if self.time_pool == "sum":
            logits = self.fc(self.drop(f[:, :-1])) * f[:, -1:]
        else:
            logits = self.fc(self.drop(f))
        return logits.view(n, -1, self.num_classes).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, seq, lengths = self._bl4(x)  # checks x
        n, t, m = x.shape[0], x.shape[2], x.shape[4]
        out = self.fc(self.drop(h))  # O_t per valid frame
        if lengths is None:
            logits = out.sum(dim=1)
            if self.time_pool == "mean":
                logits = logits / t
        else:
            padded, _ = pad_packed_sequence(_with_data(seq, out), batch_first=True,
                                            total_length=t)  # zeros after each clip
            logits = padded.sum(dim=1)
            if self.time_pool == "mean":
                logits = logits / lengths.to(logits)[:, None]
        return logits.view(n, m, -1).mean(dim=1)
