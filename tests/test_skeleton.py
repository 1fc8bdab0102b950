"""Skeleton layouts: tree structure, geometry helpers and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelrobust.errors import LayoutError, ShapeError, UnknownNameError
from skelrobust.skeleton import BodyFrame, Skeleton, get_skeleton, list_skeletons

REQUIRED = {"ntu25": 25, "kinect20": 20, "hdm05_31": 31, "sbu15": 15, "openpose18": 18,
            "coco17": 17}


def test_required_layouts_registered():
    names = list_skeletons()
    for name, v in REQUIRED.items():
        assert name in names
        assert get_skeleton(name).num_joints == v


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_layout_is_tree_rooted_at_centre(name):
    s = get_skeleton(name)
    v = s.num_joints
    assert s.parents[s.center] == -1
    assert sum(p == -1 for p in s.parents) == 1
    assert s.num_bones == v - 1
    # every joint reaches the centre by following parents, in depth(j) steps
    for j in range(v):
        k, steps = j, 0
        while s.parents[k] != -1:
            k = s.parents[k]
            steps += 1
            assert steps <= v
        assert k == s.center and steps == s.depths[j]
    # connected, symmetric adjacency; hop distance from the centre equals the depth
    a = s.adjacency
    assert np.array_equal(a, a.T) and a.trace() == 0 and a.sum() == 2 * (v - 1)
    assert np.array_equal(s.hop_distance[s.center], s.depths)
    assert (s.hop_distance < v).all()
    # the parent always precedes its child in topological order
    pos = np.empty(v, dtype=int)
    pos[s.topological_order] = np.arange(v)
    assert all(pos[p] < pos[c] for c, p in s.bones)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_left_right_pairs_mirror(name):
    s = get_skeleton(name)
    assert len(s.left_right) >= 4
    perm = s.mirror_permutation
    assert np.array_equal(perm[perm], np.arange(s.num_joints))
    for left, right in s.left_right:
        assert s.joint_names[left] != s.joint_names[right]
    for part in ("left_arm", "right_arm", "left_leg", "right_leg", "torso"):
        assert s.part_mask(part).any()


def test_ntu25_structure_matches_published_graph():
    s = get_skeleton("ntu25")
    # ST-GCN / 2s-AGCN NTU graph, 1-based (child, parent) pairs towards joint 21
    edges = {(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21),
             (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1),
             (18, 17), (19, 18), (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)}
    assert {(c + 1, p + 1) for c, p in s.bones} == edges
    assert s.joint_names[s.center] == "spine_shoulder"


def test_bone_lengths_and_angles_on_known_pose():
    s = get_skeleton("kinect20")
    x = np.zeros((1, 3, 2, 20, 1), dtype=np.float32)
    names = s.joint_names
    # put every joint at distinct known positions along chains: unit steps
    for j in s.topological_order:
        p = s.parents[j]
        if p >= 0:
            x[0, :, :, j, 0] = x[0, :, :, p, 0] + np.array([0.0, 0.0, 0.1 * (j + 1)])[:, None]
    lengths = s.bone_lengths(x)
    assert lengths.shape == (1, 2, 19, 1)
    expected = 0.1 * (s.bones[:, 0] + 1)
    np.testing.assert_allclose(lengths[0, 0, :, 0], expected, rtol=1e-5)
    # a right angle at the left elbow: upper arm along -z, forearm along +x
    e, sh, w = (names.index(n) for n in ("left_elbow", "left_shoulder", "left_wrist"))
    x[0, :, :, sh, 0] = np.array([0.0, 0.0, 0.3])[:, None]
    x[0, :, :, e, 0] = 0.0
    x[0, :, :, w, 0] = np.array([0.25, 0.0, 0.0])[:, None]
    ang = s.joint_angles(x, degrees=True)
    idx = [i for i, (a, j, b) in enumerate(s.angle_triplets) if j == e and {a, b} == {sh, w}]
    assert len(idx) == 1
    np.testing.assert_allclose(ang[0, :, idx[0], 0], 90.0, atol=1e-3)
    t_ang = s.joint_angles(torch.from_numpy(x), degrees=True)
    np.testing.assert_allclose(t_ang.numpy(), ang, atol=1e-3)


def test_joint_angles_have_finite_gradient_when_straight():
    s = get_skeleton("sbu15")
    x = torch.zeros(1, 3, 1, 15, 1)
    x[0, 2, 0, :, 0] = torch.arange(15.0)  # everything on a line: angles 0 or 180 degrees
    x.requires_grad_(True)
    s.joint_angles(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_errors():
    with pytest.raises(UnknownNameError, match="ntu25"):
        get_skeleton("nope")
    frame = BodyFrame((0,), (1,), (2,), (3,))
    with pytest.raises(LayoutError, match="one root"):
        Skeleton("bad", ("a", "b", "c", "d"), (-1, -1, 0, 0), frame)
    with pytest.raises(LayoutError, match="cycle"):
        Skeleton("cyc", ("a", "b", "c", "d"), (-1, 2, 3, 1), frame)
    with pytest.raises(LayoutError, match="parents"):
        Skeleton("len", ("a", "b"), (-1,), frame)
    s = get_skeleton("ntu25")
    with pytest.raises(LayoutError, match="25 joints"):
        s.bone_lengths(np.zeros((1, 3, 4, 20, 1)))
    with pytest.raises(ShapeError, match="3 coordinates"):
        s.bone_lengths(np.zeros((1, 2, 4, 25, 1)))
    with pytest.raises(ShapeError):
        s.bone_lengths(np.zeros((3, 25)))
