"""Side-by-side animations of clean and adversarial motion (GIF or MP4, headless).

Each panel draws the skeleton's bones in 3-D (z up, metres) with the true
label and the classifier's prediction in the title; the adversarial panel can
overlay the clean skeleton in grey so the perturbation is visible. Uses
matplotlib's ``Agg`` backend and ``FuncAnimation``: GIFs through Pillow, MP4
through ffmpeg when it is installed (the ``viz`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skelrobust.errors import ConfigError, ShapeError
from skelrobust.skeleton import Skeleton, get_skeleton

__all__ = ["render_comparison"]


def _as_clip(x: object, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 5 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 4 or arr.shape[0] != 3:
        raise ShapeError(f"render: {name} must be one clip (3, T, V, M) or (1, 3, T, V, M), "
                         f"got {arr.shape}")
    return arr


def render_comparison(clean: object, adversarial: object, skeleton: Skeleton | str,
                      path: str | Path, titles: Sequence[str] = ("clean", "adversarial"),
                      labels: Sequence[str] = ("", ""), length: int | None = None,
                      fps: float = 30.0, overlay: bool = True, dpi: int = 80,
                      elev: float = 15.0, azim: float = -70.0) -> Path:
    """Write an animation of ``clean`` beside ``adversarial`` to ``path`` (.gif or .mp4).

    ``labels`` are shown under each title (e.g. ``"true: wave  pred: wave"``);
    ``length`` limits the frames to the clip's real length (padding is not drawn).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import animation

    skel = get_skeleton(skeleton)
    a, b = _as_clip(clean, "clean"), _as_clip(adversarial, "adversarial")
    if a.shape != b.shape or a.shape[2] != skel.num_joints:
        raise ShapeError(f"render: clips must match each other and layout {skel.name!r} "
                         f"({skel.num_joints} joints), got {a.shape} and {b.shape}")
    path = Path(path)
    if path.suffix.lower() not in (".gif", ".mp4"):
        raise ConfigError(f"render: output must end in .gif or .mp4, got {path.name!r}")
    t = a.shape[1] if length is None else max(1, min(int(length), a.shape[1]))
    present = np.abs(a).sum(axis=(0, 2)) > 0  # (T, M)
    pts = np.concatenate([a[:, :t], b[:, :t]], axis=2).reshape(3, -1)
    pts = pts[:, np.abs(pts).sum(0) > 0]
    lo, hi = pts.min(1), pts.max(1)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.1)

    fig = plt.figure(figsize=(8, 4.2), dpi=dpi)
    axes = [fig.add_subplot(1, 2, k + 1, projection="3d") for k in range(2)]
    bones = skel.bones  # (B, 2) child, parent
    lines = []
    for ax, title, label in zip(axes, titles, labels):
        ax.set_title(f"{title}\n{label}", fontsize=9)
        ax.view_init(elev=elev, azim=azim)
        for dim, setter in enumerate((ax.set_xlim, ax.set_ylim, ax.set_zlim)):
            setter(centre[dim] - half, centre[dim] + half)
        ax.set_box_aspect((1, 1, 1))
        ax.set_xticklabels([]), ax.set_yticklabels([]), ax.set_zticklabels([])
    m = a.shape[3]
    ghost = [axes[1].plot([], [], [], color="0.75", lw=1.5)[0] for _ in range(len(bones) * m)]
    for k, ax in enumerate(axes):
        color = "tab:blue" if k == 0 else "tab:red"
        lines.append([ax.plot([], [], [], color=color, lw=2)[0] for _ in range(len(bones) * m)])

    def draw(frame: int) -> list:
        artists = []
        for clip, segs in ((a, lines[0]), (b, lines[1])) + (((a, ghost),) if overlay else ()):
            for body in range(m):
                show = bool(present[frame, body])
                for i, (c, p) in enumerate(bones):
                    seg = segs[body * len(bones) + i]
                    xyz = clip[:, frame, [c, p], body] if show else np.zeros((3, 0))
                    seg.set_data(xyz[0], xyz[1])
                    seg.set_3d_properties(xyz[2])
                    artists.append(seg)
        return artists

    anim = animation.FuncAnimation(fig, draw, frames=t, interval=1000.0 / fps, blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.suffix.lower() == ".gif":
            anim.save(str(path), writer=animation.PillowWriter(fps=fps))
        else:
            if not animation.FFMpegWriter.isAvailable():
                raise ConfigError("render: MP4 needs ffmpeg on the PATH; write a .gif instead")
            anim.save(str(path), writer=animation.FFMpegWriter(fps=fps))
    finally:
        plt.close(fig)
    return path
