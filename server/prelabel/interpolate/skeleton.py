"""Skeleton interpolation along the COCO-17 kinematic tree.

``linear`` (CVAT) moves every keypoint linearly in image coordinates, so a limb that swings through a large angle
shrinks mid-swing. ``kinematic`` instead interpolates, per bone, the angle (shortest arc, or monotone cubic over the
unwrapped angles with three or more keyframes) and the length (linear between the keyframes' lengths), and rebuilds
positions from the root outward. The root (mid-hip) follows the dense box path when one is given, keeping its offset
relative to the box as at the keyframes, so a guided box path also guides the skeleton.

Per-frame pose estimates (a pose model's keypoints matched to the box path) correct this prediction in
:mod:`prelabel.interpolate.posefusion`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.interpolate import PchipInterpolator

from prelabel.interpolate.base import Float64Array

BoolArray = npt.NDArray[np.bool_]

ROOT = 17  # virtual mid-hip
NECK = 18  # virtual mid-shoulder
NUM_NODES = 19
# Parent of each node (COCO-17 keypoints 0..16, then the virtual root and neck); -1 for the root.
PARENT: tuple[int, ...] = (
    NECK, 0, 0, 1, 2,  # nose, eyes, ears
    NECK, NECK, 5, 6, 7, 8,  # shoulders, elbows, wrists
    ROOT, ROOT, 11, 12, 13, 14,  # hips, knees, ankles
    -1, ROOT,  # root, neck
)  # fmt: skip


def _topological_order() -> list[int]:
    order: list[int] = [ROOT]
    while len(order) < NUM_NODES:
        for n in range(NUM_NODES):
            if n not in order and PARENT[n] in order:
                order.append(n)
    return order


ORDER: tuple[int, ...] = tuple(_topological_order())


def with_virtual_nodes(xy: Float64Array, present: BoolArray) -> tuple[Float64Array, BoolArray]:
    """Append the virtual root (mid-hip) and neck (mid-shoulder): (..., 17, 2) -> (..., 19, 2), presence likewise."""
    root = (xy[..., 11, :] + xy[..., 12, :]) / 2.0
    neck = (xy[..., 5, :] + xy[..., 6, :]) / 2.0
    xy19 = np.concatenate([xy, root[..., None, :], neck[..., None, :]], axis=-2)
    p_root = present[..., 11] & present[..., 12]
    p_neck = present[..., 5] & present[..., 6]
    pr19 = np.concatenate([present, p_root[..., None], p_neck[..., None]], axis=-1)
    return xy19, pr19


def chain_present(present19: BoolArray) -> BoolArray:
    """(..., 19) True where a node and all its ancestors are present."""
    out = np.zeros_like(present19)
    for n in ORDER:
        par = PARENT[n]
        out[..., n] = present19[..., n] if par < 0 else present19[..., n] & out[..., par]
    return out


def held_keypoints(key_frames: npt.NDArray[np.int64], key_present: BoolArray) -> BoolArray:
    """(T, 17) True on the frames strictly between a keyframe that has a keypoint and the next keyframe, which lacks
    it: CVAT keeps showing the keypoint there, held (frames ``key_frames[0] .. key_frames[-1]``; ``key_present``
    (K, 17))."""
    kf = np.asarray(key_frames, np.int64)
    frames = np.arange(int(kf[0]), int(kf[-1]) + 1)
    if len(kf) == 1:
        return np.zeros((len(frames), key_present.shape[1]), bool)
    seg = np.clip(np.searchsorted(kf, frames, side="right") - 1, 0, len(kf) - 2)
    between = (frames > kf[seg]) & (frames < kf[seg + 1])
    return np.asarray(key_present[seg] & ~key_present[seg + 1] & between[:, None])


def linear_skeletons(
    key_frames: npt.NDArray[np.int64], key_xy: Float64Array, key_present: BoolArray
) -> tuple[Float64Array, BoolArray]:
    """CVAT's rule for skeletons: every keypoint linear in image coordinates between neighbouring keyframes.

    Presence is CVAT's too (each element of a skeleton is a track of its own): a keypoint present at a keyframe stays
    present until the next keyframe, and one missing there is missing until a keyframe shows it again. Between a
    keyframe that has a keypoint and one that lacks it, the keypoint holds its position (CVAT moves it toward the
    position the hidden element was left at, which a missing keypoint does not carry).

    Args:
        key_frames: (K,) strictly increasing.
        key_xy: (K, 17, 2) pixels.
        key_present: (K, 17).

    Returns:
        (T, 17, 2) positions and (T, 17) presence for frames ``key_frames[0] .. key_frames[-1]``.
    """
    kf = np.asarray(key_frames, np.int64)
    frames = np.arange(int(kf[0]), int(kf[-1]) + 1)
    if len(kf) == 1:
        return key_xy.copy(), key_present.copy()
    seg = np.clip(np.searchsorted(kf, frames, side="right") - 1, 0, len(kf) - 2)
    off = ((frames - kf[seg]) / (kf[seg + 1] - kf[seg]))[:, None, None]
    xy = key_xy[seg] + (key_xy[seg + 1] - key_xy[seg]) * off
    present = key_present[seg].copy()
    held = held_keypoints(kf, key_present)
    xy[held] = key_xy[seg][held]
    at_last = frames == kf[-1]
    present[at_last] = key_present[-1]
    xy[at_last] = key_xy[-1]
    return np.asarray(xy), np.asarray(present)


def _interp_series(
    kf: npt.NDArray[np.int64],
    values: Float64Array,
    frames: npt.NDArray[np.int64],
    cubic: bool,
    valid: BoolArray | None = None,
) -> Float64Array:
    """Interpolate (K, N) keyframe values to (T, N): monotone cubic with >= 3 keyframes when ``cubic``, else linear.

    With ``valid`` (K, N), a column's cubic runs through its valid keyframes only (a keyframe missing the joint
    holds a placeholder that would bend the curve through its neighbours); segments touching an invalid keyframe
    are not meaningful and are left to the caller.
    """
    seg = np.clip(np.searchsorted(kf, frames, side="right") - 1, 0, len(kf) - 2)
    off = ((frames - kf[seg]) / (kf[seg + 1] - kf[seg]))[:, None]
    lin = np.asarray(values[seg] + (values[seg + 1] - values[seg]) * off)
    if len(kf) < 3 or not cubic:
        return lin
    t = kf.astype(np.float64)
    ok = np.ones(values.shape, bool) if valid is None else np.asarray(valid, bool)
    full = ok.all(axis=0)
    out = lin
    if full.any():
        out[:, full] = PchipInterpolator(t, values[:, full], axis=0)(frames)
    for c in np.flatnonzero(~full).tolist():
        v = ok[:, c]
        if v.sum() >= 3:
            out[:, c] = PchipInterpolator(t[v], values[v, c])(frames)
    return np.asarray(out)


def _unwrap_valid(ang: Float64Array, valid: BoolArray) -> Float64Array:
    """(K, N) angles unwrapped along keyframes per column over its ``valid`` (K, N) entries only (shortest arc)."""
    out = ang.copy()
    for c in range(ang.shape[1]):
        v = valid[:, c]
        if v.any():
            out[v, c] = np.unwrap(ang[v, c])
    return out


@dataclass(frozen=True)
class KinematicOptions:
    """Options of :func:`kinematic_skeletons`.

    Attributes:
        cubic: monotone cubic over unwrapped angles and root offsets with >= 3 keyframes (else linear).
    """

    cubic: bool = True


def kinematic_skeletons(
    key_frames: npt.NDArray[np.int64],
    key_xy: Float64Array,
    key_present: BoolArray,
    key_boxes: Float64Array | None = None,
    boxes: Float64Array | None = None,
    options: KinematicOptions | None = None,
    box_weight: Float64Array | None = None,
) -> tuple[Float64Array, BoolArray]:
    """Interpolate joint angles along the kinematic tree with bone lengths from the keyframes.

    Args:
        key_frames: (K,) int64 strictly increasing, K >= 1.
        key_xy: (K, 17, 2) float64 keyframe keypoints in pixels.
        key_present: (K, 17) bool.
        key_boxes: (K, 4) keyframe boxes ``xyxy`` (with ``boxes``: the root follows the box path).
        boxes: (T, 4) dense box path ``xyxy`` for every frame of the run.
        options: see :class:`KinematicOptions`.
        box_weight: (T,) in [0, 1], how far the root follows the box path rather than its own interpolation between
            the keyframes (e.g. the box path's confidence); 1 everywhere when None.

    Returns:
        (T, 17, 2) float64 positions and (T, 17) bool presence, exact at keyframes, present as
        :func:`linear_skeletons` says (CVAT's rule). A keypoint present in both neighbouring keyframes but whose
        chain to the root is broken keeps a linear offset from the root (linear in the image where the root is not
        known at both). One the next keyframe lacks keeps its offset from the root, or, where the root is not known
        at both, its place in the box path's box (held in the image without a box path).
    """
    opts = options or KinematicOptions()
    kf = np.asarray(key_frames, np.int64)
    frames = np.arange(int(kf[0]), int(kf[-1]) + 1)
    lin_xy, lin_present = linear_skeletons(kf, key_xy, key_present)
    if len(kf) == 1:
        return lin_xy, lin_present
    xy19, pr19 = with_virtual_nodes(key_xy, key_present)
    chain = chain_present(pr19)  # (K, 19)
    seg = np.clip(np.searchsorted(kf, frames, side="right") - 1, 0, len(kf) - 2)
    # Presence between keyframes: chain present at both ends (exact at keyframes handled below).
    chain_t = chain[seg] & chain[seg + 1]

    # Bone vectors at keyframes: angle and length per node (root has none).
    par = np.array([p if p >= 0 else ROOT for p in PARENT])
    vec = xy19 - xy19[:, par]  # (K, 19, 2)
    # Keyframes where a bone (or the root) is missing hold placeholders for it: cubics skip them.
    ang = _unwrap_valid(np.arctan2(vec[..., 1], vec[..., 0]), chain)
    length = np.hypot(vec[..., 0], vec[..., 1])
    ang_t = _interp_series(kf, ang, frames, opts.cubic, chain)
    len_t = _interp_series(kf, length, frames, False)

    # Root: relative to the box when a box path is given, else interpolated directly.
    root_ok = np.repeat(chain[:, ROOT, None], 2, axis=1)
    root_k = xy19[:, ROOT]
    root_t = _interp_series(kf, root_k, frames, opts.cubic, root_ok)
    if boxes is not None and key_boxes is not None:
        kc = (key_boxes[:, :2] + key_boxes[:, 2:]) / 2.0
        ks = np.maximum(key_boxes[:, 2:] - key_boxes[:, :2], 1.0)
        rel_t = _interp_series(kf, (root_k - kc) / ks, frames, opts.cubic, root_ok)
        c = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        s = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
        w = np.ones(len(frames)) if box_weight is None else np.clip(np.asarray(box_weight, np.float64), 0.0, 1.0)
        root_t = w[:, None] * (c + rel_t * s) + (1.0 - w[:, None]) * root_t

    pos = np.zeros((len(frames), NUM_NODES, 2))
    pos[:, ROOT] = root_t
    for n in ORDER[1:]:
        p = PARENT[n]
        pos[:, n] = pos[:, p] + len_t[:, n, None] * np.stack([np.cos(ang_t[:, n]), np.sin(ang_t[:, n])], axis=1)

    use_kin = chain_t[:, :17]
    out = np.where(use_kin[..., None], pos[:, :17], lin_xy)
    # A keypoint present at both keyframes whose chain to the root is broken (a shoulder hidden cuts the arm off)
    # moves with the root, its offset from it linear between the keyframes: linear in the image, it tore away from a
    # body whose root follows a curve.
    root_both = chain[seg, ROOT] & chain[seg + 1, ROOT]
    loose = ~use_kin & key_present[seg] & key_present[seg + 1] & root_both[:, None]
    if loose.any():
        s = ((frames - kf[seg]) / (kf[seg + 1] - kf[seg]))[:, None, None]
        off = key_xy - xy19[:, ROOT, None, :]  # (K, 17, 2) offsets from the root at the keyframes
        carried = pos[:, ROOT, None, :] + (1.0 - s) * off[seg] + s * off[seg + 1]
        out = np.where(loose[..., None], carried, out)
    # A keypoint the next keyframe lacks holds its place on the body (its offset from the root at the keyframe before)
    # where the root is known at both keyframes; linear_skeletons holds it in the image.
    held_all = held_keypoints(kf, key_present)
    held = held_all & chain[seg, ROOT, None] & chain_t[:, ROOT, None]
    body = pos[:, ROOT, None, :] + (key_xy[seg] - xy19[seg, ROOT, None, :])
    out = np.where(held[..., None], body, out)
    # Where the root is not known at both (the next keyframe hides the hips, or the whole skeleton), a held keypoint
    # keeps its place in the box path's box (its offset from the centre, in box sizes, at the keyframe before): held
    # in the image, it stayed behind while the box crossed the frame.
    by_box = held_all & ~held
    if boxes is not None and by_box.any():
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
        a = kf[seg] - kf[0]  # the keyframe before each frame, as a row of the box path
        moved = centre[:, None, :] + (key_xy[seg] - centre[a][:, None, :]) * (size / size[a])[:, None, :]
        out = np.where(by_box[..., None], moved, out)
    present = lin_present.copy()
    idx = kf - kf[0]
    out[idx] = key_xy
    present[idx] = key_present
    return np.asarray(out), present
