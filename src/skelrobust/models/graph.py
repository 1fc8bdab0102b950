"""Adjacency matrices and partition strategies shared by the graph convolutional models.

Every matrix is derived from a :class:`~skelrobust.skeleton.Skeleton` (its
``adjacency``, ``hop_distance`` and ``center``), so every GCN runs on every
layout. Arrays are ``float32``.

**Convention.** ``A[j, i]`` is the weight with which joint ``j`` (the neighbour)
contributes to joint ``i`` (the root of the neighbourhood), i.e. *columns index
the receiving joint* and a graph convolution aggregates features
``X`` of shape ``(..., V)`` as ``X' = X · A``; this is ST-GCN's
``einsum('nkctv,kvw->nctw')`` and 2s-AGCN's ``matmul(x, A)``. A stack of
partitions has shape ``(K, V, V)`` and the graph convolution is
``X' = Σ_k W_k X A_k`` (Yan et al., AAAI 2018, eq. 10).
"""

from __future__ import annotations

import numpy as np

from skelrobust.errors import ConfigError, unknown_name
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = [
    "CENTRIFUGAL",
    "CENTRIPETAL",
    "ROOT",
    "STRATEGIES",
    "distance_partition",
    "get_partition",
    "hop_adjacency",
    "inward_outward_partition",
    "k_adjacency",
    "multiscale_adjacency",
    "normalize_digraph",
    "normalize_undigraph",
    "spatial_partition",
    "uniform_partition",
]

#: Index of each subset in :func:`spatial_partition` (for ``max_hop=1``).
ROOT, CENTRIPETAL, CENTRIFUGAL = 0, 1, 2

STRATEGIES = ("uniform", "distance", "spatial")


def _skel(skeleton: Skeleton | str) -> Skeleton:
    return get_skeleton(skeleton)


def _valid_hops(max_hop: int, dilation: int) -> np.ndarray:
    if max_hop < 0 or dilation < 1:
        raise ConfigError(f"max_hop must be >= 0 and dilation >= 1, got {max_hop}, {dilation}")
    return np.arange(0, max_hop + 1, dilation)


def normalize_digraph(a: np.ndarray) -> np.ndarray:
    """Column-normalise: ``Λ = A · D⁻¹`` with ``D_ii = Σ_j A_ji`` (in-degree of column ``i``).

    Each non-empty column then sums to 1, so ``X · Λ`` averages the neighbours
    of every joint (ST-GCN's ``normalize_digraph``; Yan et al., AAAI 2018,
    eq. 9). Empty columns stay zero.
    """
    a = np.asarray(a, dtype=np.float32)
    deg = a.sum(axis=-2, keepdims=True)
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return a * inv


def normalize_undigraph(a: np.ndarray) -> np.ndarray:
    """Symmetric normalisation ``D^{-1/2} · A · D^{-1/2}`` (Kipf & Welling, ICLR 2017, eq. 2).

    ``D`` is the column sum of ``A`` as in ST-GCN's ``normalize_undigraph``;
    for the symmetric adjacency matrices used here rows and columns agree.
    """
    a = np.asarray(a, dtype=np.float32)
    deg = a.sum(axis=-2)
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    return inv[..., :, None] * a * inv[..., None, :]


def hop_adjacency(skeleton: Skeleton | str, max_hop: int = 1, dilation: int = 1) -> np.ndarray:
    """Binary ``(V, V)`` matrix of joint pairs whose hop distance is in ``0, d, 2d, ..., max_hop``.

    With ``max_hop=1`` this is ``A + I``, the adjacency with self-loops.
    """
    hop = _skel(skeleton).hop_distance
    return np.isin(hop, _valid_hops(max_hop, dilation)).astype(np.float32)


def uniform_partition(skeleton: Skeleton | str, max_hop: int = 1,
                      dilation: int = 1) -> np.ndarray:
    """Uniform labelling (ST-GCN, Sec. 3.4): the single subset ``normalize_digraph(A+I)``."""
    return normalize_digraph(hop_adjacency(skeleton, max_hop, dilation))[None]


def distance_partition(skeleton: Skeleton | str, max_hop: int = 1,
                       dilation: int = 1) -> np.ndarray:
    """Distance partitioning (ST-GCN, Sec. 3.4): one subset per hop distance ``d``.

    ``A_d = Λ ⊙ [hop = d]`` with ``Λ = normalize_digraph(A+I)``; for
    ``max_hop=1``, ``A_0`` is the (normalised) self-loop and ``A_1`` the
    neighbours. Shape ``(len(hops), V, V)``.
    """
    skel = _skel(skeleton)
    hops = _valid_hops(max_hop, dilation)
    norm = normalize_digraph(hop_adjacency(skel, max_hop, dilation))
    mask = skel.hop_distance[None] == hops[:, None, None]
    return (norm[None] * mask).astype(np.float32)


def spatial_partition(skeleton: Skeleton | str, max_hop: int = 1,
                      dilation: int = 1) -> np.ndarray:
    """Spatial configuration partitioning (ST-GCN, Yan et al., AAAI 2018, Sec. 3.4, eq. 9).

    With ``r`` the hop distance to the centre joint, a neighbour ``j`` of the
    root joint ``i`` gets the label

    ``l_i(j) = 0 (root) if r_j = r_i;  1 (centripetal) if r_j < r_i;  2 (centrifugal) if r_j > r_i``

    and subset ``k`` is ``A_k = Λ ⊙ [l = k]`` with ``Λ = normalize_digraph(A+I)``
    (columns of ``Λ`` sum to 1, so each ``A_k``'s columns sum to at most 1 and
    ``Σ_k A_k = Λ``). ``K = 3`` for ``max_hop=1``; for larger ``max_hop`` every
    hop distance ``h > 0`` adds its own centripetal and centrifugal subsets
    (``K = 1 + 2·#{h > 0}``), while equal-distance pairs stay in the root subset.

    Differences from the published code (``net/utils/graph.py``), on purpose:
    subsets are in the paper's order (root, centripetal, centrifugal), where
    the code stores the centrifugal subset before the centripetal one; and
    ``r`` is the true hop distance, whereas the code caps it at ``max_hop``
    (``inf`` beyond), which puts every edge more than one hop from the centre
    into the root/centrifugal subset.
    """
    skel = _skel(skeleton)
    hops = _valid_hops(max_hop, dilation)
    hop = skel.hop_distance
    norm = normalize_digraph(hop_adjacency(skel, max_hop, dilation))
    r = hop[:, skel.center]
    r_nbr, r_root = r[:, None], r[None, :]  # [j, i]: r_j and r_i
    root = norm * ((r_nbr == r_root) & np.isin(hop, hops))
    subsets = [root]
    for h in hops[hops > 0]:
        at_h = hop == h
        subsets.append(norm * (at_h & (r_nbr < r_root)))  # centripetal
        subsets.append(norm * (at_h & (r_nbr > r_root)))  # centrifugal
    return np.stack(subsets).astype(np.float32)


def get_partition(skeleton: Skeleton | str, strategy: str = "spatial", max_hop: int = 1,
                  dilation: int = 1) -> np.ndarray:
    """The ``(K, V, V)`` partition of ST-GCN's ``strategy``: uniform, distance or spatial."""
    funcs = {"uniform": uniform_partition, "distance": distance_partition,
             "spatial": spatial_partition}
    if strategy not in funcs:
        raise unknown_name("partition strategy", strategy, list(funcs))
    return funcs[strategy](skeleton, max_hop=max_hop, dilation=dilation)


def k_adjacency(skeleton: Skeleton | str, k: int, with_self: bool = False,
                self_factor: float = 1.0) -> np.ndarray:
    """Binary ``(V, V)`` adjacency of joints exactly ``k`` hops apart (MS-G3D's ``Ã_(k)``).

    ``[Ã_(k)]_ij = 1 if d(v_i, v_j) = k`` (Liu et al., CVPR 2020, eq. 3), the
    disentangled multi-scale adjacency; ``k = 0`` is the identity.
    ``with_self`` adds ``self_factor · I`` for ``k > 0``.
    """
    if k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    skel = _skel(skeleton)
    a = (skel.hop_distance == k).astype(np.float32)
    if with_self and k > 0:
        a = a + np.float32(self_factor) * np.eye(skel.num_joints, dtype=np.float32)
    return a


def multiscale_adjacency(skeleton: Skeleton | str, num_scales: int) -> np.ndarray:
    """MS-G3D's disentangled multi-scale stack ``(num_scales, V, V)``.

    Scale ``k`` is ``D̃_(k)^{-1/2} (Ã_(k) + I) D̃_(k)^{-1/2}`` for ``k ≥ 1`` and
    ``I`` for ``k = 0`` (Liu et al., CVPR 2020, eq. 4).
    """
    if num_scales < 1:
        raise ConfigError(f"num_scales must be >= 1, got {num_scales}")
    return np.stack([normalize_undigraph(k_adjacency(skeleton, k, with_self=True))
                     for k in range(num_scales)])


def inward_outward_partition(skeleton: Skeleton | str) -> np.ndarray:
    """2s-AGCN / CTR-GCN's three subsets ``(3, V, V)``: self, inward, outward.

    With bones as ``(child, parent)`` pairs pointing towards the centre, the
    raw inward matrix is ``R[parent, child] = 1`` and (Shi et al., CVPR 2019,
    Sec. 3.2; Chen et al., ICCV 2021)

    ``A_self = I``,  ``A_in = normalize_digraph(R)``,  ``A_out = normalize_digraph(Rᵀ)``.

    Under ``X' = X · A`` the inward subset feeds each joint from its parent and
    the outward subset averages its children; every column of ``A_in`` sums to
    1 except the centre's, which is empty.
    """
    skel = _skel(skeleton)
    v = skel.num_joints
    raw = np.zeros((v, v), dtype=np.float32)
    bones = skel.bones
    raw[bones[:, 1], bones[:, 0]] = 1.0
    return np.stack([np.eye(v, dtype=np.float32), normalize_digraph(raw),
                     normalize_digraph(raw.T)])
