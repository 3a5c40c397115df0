"""Fuse per-frame pose estimates into a keyframe-based skeleton interpolation, joint by joint along the kinematic tree.

The keyframe-based prediction (:func:`prelabel.interpolate.skeleton.kinematic_skeletons`) is exact at keyframes and
drifts away from the truth between them, fastest on swinging limbs; a pose model's per-frame estimates do not drift
but are noisy, sometimes confuse left and right, and sometimes miss a joint. The fusion:

1. **Left/right swap correction.** For the arm chain (shoulder, elbow, wrist) and the leg chain (hip, knee, ankle),
   the estimate's left and right sides are swapped when the swapped shoulders (hips) lie clearly closer to the
   prediction; the torso's prediction is reliable between keyframes, the swinging limbs' is not.
2. **The model's offset on still keypoints.** Pose models place some keypoints a steady few pixels off where an
   annotator does (a knee on a person lying down, say), and while the keypoint keeps still the offset stays. The
   offset at the keyframes on either side (:func:`keyframe_bias`) is taken off the estimates of keypoints that keep
   still over the gap, in full up to half ``still_move``/``still_speed``, fading to none at them: on moving limbs the
   model's error at a keyframe says little about its error a few frames on.
3. **Per-joint gating.** A joint's estimate is used only when its confidence is at least ``min_conf`` and it lies
   within a gate around the prediction; the gate (a fraction of the box size) widens with the distance from the
   nearest keyframe, where the prediction is least trusted.
4. **Corrections along the tree.** From the root outward, each accepted estimate gives a correction: for the root
   (mid-hip) a pixel offset, for every other node the angle between the predicted bone and the direction from the
   already fused parent to the estimate, and a length ratio clipped to ``length_ratio`` (2-D limbs foreshorten as
   they swing toward the camera). Positions are rebuilt parent to child, so the skeleton stays connected with
   bounded bone lengths on every frame.
5. **In time.** Corrections are zero at keyframes, shrunk toward zero next to them (``d / (d + prior_frames)`` of the
   measured correction at ``d`` frames from the nearest keyframe), and linearly interpolated over frames where a
   joint has no accepted estimate. The result passes exactly through the keyframes.
6. **Keypoints the keyframes leave out.** A keypoint absent in the keyframe before (hidden, or outside the image
   when the person enters) has no prediction until a keyframe shows it (CVAT's rule); a confident estimate inside
   the box path supplies it (and marks it present) where the frame shows it. One the next keyframe lacks is
   held up to then (on the body where the root is known at both keyframes, else in the image); the hold is a guess,
   not a prediction to correct, so a confident estimate inside the box path replaces it as it would fill a missing
   keypoint, and the held guess stays where none does. A keyframe with no keypoint at all (the skeleton hidden) is
   no exception: where the person shows again before the next keyframe, confident estimates propose it there (on
   generated fast-motion seeds 20-25, limb PCK@0.05 at k=10 was 0.820 with these proposals and 0.787 without). A
   keypoint the annotator hid at both neighbouring keyframes of a person shown at both is not proposed: they said
   it is out of sight over the gap (on a generated 30 fps clip, 28 of the 65 keypoint-frames shown where the truth
   has the keypoint out of sight, on one track, were such proposals; on the fast-motion seeds it costs limb
   PCK@0.05 at k=10 0.820 -> 0.814).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import Float64Array
from prelabel.interpolate.skeleton import ORDER, PARENT, ROOT, BoolArray, held_keypoints, with_virtual_nodes

# Chains swapped together when the estimate confused the person's left and right (COCO-17 indices).
ARM_SWAP: tuple[tuple[int, int], ...] = ((5, 6), (7, 8), (9, 10))
LEG_SWAP: tuple[tuple[int, int], ...] = ((11, 12), (13, 14), (15, 16))


@dataclass(frozen=True)
class PoseFusionOptions:
    """Options of :func:`fuse_pose_estimates`.

    Attributes:
        min_conf: estimates of keypoints the keyframes predict are used from this confidence on.
        gate_near: gate radius around the prediction, as a fraction of the box's longer side, next to a keyframe.
        gate_far: gate radius at the middle of a gap (linear in the relative position in between).
        prior_frames: the measured correction counts ``d / (d + prior_frames)`` at ``d`` frames from the nearest
            keyframe (>= 0; 0 takes accepted estimates as they are).
        swap_margin: swap a chain's left and right when the swapped shoulders' (hips') distance to the prediction
            is below this fraction of the unswapped one (0 disables the correction).
        length_ratio: bone lengths follow the estimates within this range of the keyframe-interpolated length
            (limbs foreshorten as they swing toward the camera); ``(1, 1)`` keeps the keyframes' lengths.
        fill_conf: keypoints absent in the keyframe before (so not predicted) are taken from estimates of at least
            this confidence; above 1 never.
        fill_margin: such estimates must lie inside the box path grown by this fraction of its longer side.
        fill_min_match: and come from a detection overlapping the box path by at least this IoU (``est_match``), so
            a neighbour's skeleton does not fill in keypoints.
        bias_max: the estimates' offset from the annotator's keypoints, measured at keyframes, is taken off the
            estimates of a still keypoint in between when it is at most this fraction of the box's longer side
            (larger offsets are a miss, not a bias); 0 disables the correction.
        still_move: the correction applies in full to a keypoint moving less than half this fraction of the box's
            longer side between the gap's keyframes, fading out linearly to none at it ...
        still_speed: ... and whose estimates move less than half this fraction a frame in between (likewise).
    """

    min_conf: float = 0.6
    gate_near: float = 0.3
    gate_far: float = 1.0
    prior_frames: float = 0.25
    swap_margin: float = 0.7
    length_ratio: tuple[float, float] = (0.5, 1.5)
    fill_conf: float = 0.3
    fill_margin: float = 0.1
    fill_min_match: float = 0.5
    bias_max: float = 0.15
    still_move: float = 0.2
    still_speed: float = 0.04

    def __post_init__(self) -> None:
        lo, hi = self.length_ratio
        checks = (
            ("gate_near <= gate_far, both >= 0", 0 <= self.gate_near <= self.gate_far, (self.gate_near, self.gate_far)),
            ("prior_frames >= 0", self.prior_frames >= 0, self.prior_frames),
            ("swap_margin in [0, 1]", 0 <= self.swap_margin <= 1, self.swap_margin),
            ("length_ratio with 0 < low <= 1 <= high", 0 < lo <= 1 <= hi, self.length_ratio),
            ("fill_margin >= 0", self.fill_margin >= 0, self.fill_margin),
            ("min_conf in [0, 1]", 0 <= self.min_conf <= 1, self.min_conf),
            ("fill_conf >= 0", self.fill_conf >= 0, self.fill_conf),
            ("fill_min_match in [0, 1]", 0 <= self.fill_min_match <= 1, self.fill_min_match),
            ("bias_max >= 0", self.bias_max >= 0, self.bias_max),
            (
                "still_move > 0 and still_speed > 0",
                self.still_move > 0 < self.still_speed,
                (self.still_move, self.still_speed),
            ),
        )
        for what, ok, got in checks:
            if not ok:
                raise InvalidInputError(f"PoseFusionOptions: expected {what}, got {got}")


def frames_from_keyframe(key_frames: npt.NDArray[np.int64]) -> tuple[Float64Array, Float64Array]:
    """Distance in frames to the nearest keyframe and the relative position in the gap, for every frame.

    Args:
        key_frames: (K,) int64 strictly increasing.

    Returns:
        ``(d, s)``: (T,) float64 frames to the nearest keyframe (0 at keyframes) and (T,) float64 ``2 d / gap``
        in [0, 1] (1 at the middle of a gap), for frames ``key_frames[0] .. key_frames[-1]``.
    """
    kf = np.asarray(key_frames, np.int64)
    frames = np.arange(int(kf[0]), int(kf[-1]) + 1)
    if len(kf) == 1:
        return np.zeros(len(frames)), np.zeros(len(frames))
    seg = np.clip(np.searchsorted(kf, frames, side="right") - 1, 0, len(kf) - 2)
    a, b = frames - kf[seg], kf[seg + 1] - frames
    d = np.minimum(a, b).astype(np.float64)
    return d, np.clip(2.0 * d / (kf[seg + 1] - kf[seg]), 0.0, 1.0)


def swap_left_right(
    pred_xy: Float64Array, est_xy: Float64Array, est_ok: BoolArray, margin: float
) -> tuple[npt.NDArray[np.intp], BoolArray]:
    """Per frame, which chains of the estimate to swap left/right to match the prediction.

    Args:
        pred_xy: (T, 17, 2) predicted keypoints.
        est_xy: (T, 17, 2) estimated keypoints.
        est_ok: (T, 17) where the estimate is usable (finite, confident).
        margin: swap when the swapped distance is below ``margin`` times the unswapped one.

    Returns:
        ``(index, swapped)``: (T, 17) int keypoint index into the estimate for each output keypoint, and (T, 2) bool,
        whether the arms / legs were swapped.
    """
    t = len(pred_xy)
    index = np.broadcast_to(np.arange(17), (t, 17)).copy()
    swapped = np.zeros((t, 2), bool)
    if margin <= 0:
        return index, swapped
    for c, pairs in enumerate((ARM_SWAP, LEG_SWAP)):
        left = [a for a, _ in pairs]
        right = [b for _, b in pairs]
        # Decide on the chain's base (shoulders / hips): the torso moves little between keyframes, so its
        # prediction is reliable where the swinging limbs' is not.
        a, b = pairs[0]
        both = est_ok[:, a] & est_ok[:, b]
        keep = np.linalg.norm(est_xy[:, a] - pred_xy[:, a], axis=-1) + np.linalg.norm(
            est_xy[:, b] - pred_xy[:, b], axis=-1
        )
        swap = np.linalg.norm(est_xy[:, b] - pred_xy[:, a], axis=-1) + np.linalg.norm(
            est_xy[:, a] - pred_xy[:, b], axis=-1
        )
        do = both & (swap < margin * keep)
        swapped[:, c] = do
        index[np.ix_(do, left)] = np.array(right)
        index[np.ix_(do, right)] = np.array(left)
    return index, swapped


def _fill_in_time(values: Float64Array, known: BoolArray) -> Float64Array:
    """(T, ...) values known on some frames (``known``: (T,), True at least at both ends) -> linear fill elsewhere."""
    t = np.arange(len(values), dtype=np.float64)
    flat = values.reshape(len(values), -1)
    out = np.empty_like(flat)
    for c in range(flat.shape[1]):
        out[:, c] = np.interp(t, t[known], flat[known, c])
    return out.reshape(values.shape)


def _fuse_tree(
    pred: Float64Array,
    pred_present: BoolArray,
    est: Float64Array,
    accept: BoolArray,
    shrink: Float64Array,
    anchor: BoolArray,
    length_ratio: tuple[float, float],
) -> Float64Array:
    """Corrections from the root outward (see the module docstring) -> (T, 19, 2) fused tree nodes.

    ``pred``/``est``: (T, 17, 2); ``pred_present``/``accept``: (T, 17); ``shrink``: (T,) factor on measured
    corrections; ``anchor``: (T,) frames where the correction is zero (keyframes and both ends).
    """
    pred19, pr19 = with_virtual_nodes(pred, pred_present)
    est19, acc19 = with_virtual_nodes(np.where(accept[..., None], est, pred), accept)
    par = np.array([p if p >= 0 else ROOT for p in PARENT])
    bone = pred19 - pred19[:, par]
    length = np.hypot(bone[..., 0], bone[..., 1])
    ang = np.arctan2(bone[..., 1], bone[..., 0])
    lo, hi = length_ratio
    fused = pred19.copy()
    for node in ORDER:
        ok = acc19[:, node] & pr19[:, node]
        # Offset mode (the root, and nodes whose parent is not predicted): a pixel offset toward the estimate.
        off = np.where(ok[:, None], (est19[:, node] - pred19[:, node]) * shrink[:, None], 0.0)
        by_offset = pred19[:, node] + _fill_in_time(off, anchor | ok)
        p = PARENT[node]
        if p < 0:
            fused[:, node] = by_offset
            continue
        # Angle mode: rotate the predicted bone toward the direction from the fused parent to the estimate, and
        # stretch it toward the estimate's length within ``length_ratio``.
        to_est = est19[:, node] - fused[:, p]
        dist = np.hypot(to_est[:, 0], to_est[:, 1])
        ok_a = ok & pr19[:, p] & (dist > 1e-6) & (length[:, node] > 1e-6)
        delta = np.angle(np.exp(1j * (np.arctan2(to_est[:, 1], to_est[:, 0]) - ang[:, node])))
        delta = np.where(ok_a, delta * shrink, 0.0)
        ratio = np.where(ok_a, np.clip(dist / np.maximum(length[:, node], 1e-6), lo, hi), 1.0)
        ratio = 1.0 + (ratio - 1.0) * shrink
        a = ang[:, node] + _fill_in_time(delta, anchor | ok_a)
        ln = length[:, node] * _fill_in_time(ratio, anchor | ok_a)
        by_angle = fused[:, p] + ln[:, None] * np.stack([np.cos(a), np.sin(a)], axis=1)
        fused[:, node] = np.where(pr19[:, p, None], by_angle, by_offset)
    return fused


def fuse_pose_estimates(
    key_frames: npt.NDArray[np.int64],
    pred_xy: Float64Array,
    pred_present: BoolArray,
    est_xy: Float64Array,
    est_conf: Float64Array,
    boxes: Float64Array,
    options: PoseFusionOptions | None = None,
    est_match: Float64Array | None = None,
) -> tuple[Float64Array, BoolArray]:
    """Correct a keyframe-based skeleton with per-frame pose estimates (see the module docstring).

    Args:
        key_frames: (K,) int64 strictly increasing; the run covers ``key_frames[0] .. key_frames[-1]``.
        pred_xy: (T, 17, 2) float64 predicted keypoints in pixels (exact at keyframes), e.g. from
            :func:`~prelabel.interpolate.skeleton.kinematic_skeletons`.
        pred_present: (T, 17) bool presence of the predicted keypoints.
        est_xy: (T, 17, 2) float64 estimated keypoints in pixels (NaN where no estimate).
        est_conf: (T, 17) float64 estimate confidences in [0, 1] (0 where no estimate).
        boxes: (T, 4) float64 ``xyxy`` box path (its longer side scales the gates); frames with a non-finite box
            take no estimate.
        options: see :class:`PoseFusionOptions`.
        est_match: (T,) float64 IoU of the detection each frame's estimate comes from with the box path; None
            counts every estimate as a full match.

    Returns:
        ``(xy, present)``: (T, 17, 2) float64 keypoints and (T, 17) bool presence. Both equal the prediction at
        keyframes; a keypoint the prediction leaves out is present where a confident estimate inside the box
        supplies it (at the estimate's position), unless both neighbouring keyframes show the person without it.

    Raises:
        InvalidInputError: arrays whose shapes disagree (the message names the array, expected vs actual).
    """
    opts = options or PoseFusionOptions()
    kf = np.asarray(key_frames, np.int64)
    pred = np.asarray(pred_xy, np.float64)
    pres = np.asarray(pred_present, bool)
    n = len(pred)
    _check_shapes(n, pred, pres, est_xy, est_conf, boxes)
    if len(kf) and n != int(kf[-1] - kf[0]) + 1:
        raise InvalidInputError(
            f"fuse_pose_estimates: expected {int(kf[-1] - kf[0]) + 1} frames (keyframes {int(kf[0])}..{int(kf[-1])}), "
            f"got {n}"
        )
    match = np.ones(n) if est_match is None else np.asarray(est_match, np.float64).reshape(-1)
    if match.shape != (n,):
        raise InvalidInputError(f"fuse_pose_estimates: est_match expected shape ({n},), got {match.shape}")
    if len(kf) < 2 or n < 3:
        return pred.copy(), pres.copy()
    d, s = frames_from_keyframe(kf)
    is_key = d == 0
    box = np.asarray(boxes, np.float64)
    size = np.max(box[:, 2:] - box[:, :2], axis=1)
    has_box = np.isfinite(size)
    size = np.where(has_box, np.maximum(size, 1.0), 0.0)
    raw = np.asarray(est_xy, np.float64)
    raw_conf = np.where(has_box[:, None] & np.isfinite(raw).all(-1), np.asarray(est_conf, np.float64), 0.0)
    conf = np.where(is_key[:, None], 0.0, raw_conf)

    # A keypoint the next keyframe lacks is only held up to it (:func:`linear_skeletons`): an estimate takes its
    # place as for a keypoint the keyframes leave out, and the held guess is kept only where none does.
    key_pres = pres[kf - kf[0]]
    known = pres & ~held_keypoints(kf, key_pres)
    # Left/right swap decided on keypoints both predicted and confidently estimated (at keyframes too, for the
    # offsets measured there).
    usable = (raw_conf >= opts.min_conf) & np.isfinite(raw).all(-1)
    index, _ = swap_left_right(pred, np.nan_to_num(raw), usable & known, opts.swap_margin)
    rows = np.arange(n)[:, None]
    est, conf = raw[rows, index], conf[rows, index]
    if opts.bias_max > 0:
        est = est - keyframe_bias(kf, pred, known, est, np.where(usable, raw_conf, -1.0)[rows, index], size, opts)
    gate = (opts.gate_near + (opts.gate_far - opts.gate_near) * s) * size
    dist = np.linalg.norm(np.nan_to_num(est) - pred, axis=-1)
    accept = known & (conf >= opts.min_conf) & (dist <= gate[:, None])

    shrink = d / (d + opts.prior_frames) if opts.prior_frames > 0 else np.ones(n)
    anchor = is_key.copy()
    anchor[[0, -1]] = True
    fused = _fuse_tree(pred, known, est, accept, shrink, anchor, opts.length_ratio)
    out = np.where(known[..., None], fused[:, :17], pred)

    # Keypoints the keyframes leave out: a confident estimate inside the (grown) box path.
    m = opts.fill_margin * size[:, None]
    ex, ey = est[..., 0], est[..., 1]
    with np.errstate(invalid="ignore"):
        inside = (ex >= box[:, 0:1] - m) & (ex <= box[:, 2:3] + m) & (ey >= box[:, 1:2] - m) & (ey <= box[:, 3:4] + m)
    # Not where the annotator hid the keypoint on a person they showed at both neighbouring keyframes: they said it is
    # not to be seen over the gap (a person entering or leaving, hidden at a keyframe as a whole, is still proposed).
    seg = np.clip(np.searchsorted(kf - kf[0], np.arange(n), side="right") - 1, 0, len(kf) - 2)
    shown = key_pres.any(axis=1)
    hidden_on_purpose = (shown[seg] & shown[seg + 1])[:, None] & ~key_pres[seg] & ~key_pres[seg + 1]
    fill = ~known & ~hidden_on_purpose & (conf >= opts.fill_conf) & inside & (match >= opts.fill_min_match)[:, None]
    out = np.where(fill[..., None], est, out)
    out[is_key] = pred[is_key]
    return np.asarray(out), pres | fill


def keyframe_bias(
    key_frames: npt.NDArray[np.int64],
    pred: Float64Array,
    known: BoolArray,
    est_xy: Float64Array,
    est_conf: Float64Array,
    size: Float64Array,
    opts: PoseFusionOptions,
) -> Float64Array:
    """The pose model's offset from the annotator's keypoints on still keypoints, to take off its estimates.

    At each keyframe the offset of a confident estimate from the annotator's keypoint is measured, where it is at
    most ``bias_max`` of the box's longer side. In a gap it is interpolated
    linearly between the two keyframes (held where only one has it), weighted by how still the keypoint is: 1 for a
    keypoint that moves less than half ``still_move`` of the box's longer side between the keyframes and whose
    estimates move less than half ``still_speed`` a frame, fading to 0 at either limit. Zero at keyframes, and over a
    gap with fewer than two confident estimates in between (how still the keypoint keeps is not known there).

    Args:
        key_frames: (K,) int64 strictly increasing; ``pred``'s rows run from ``key_frames[0]``.
        pred: (T, 17, 2) prediction, equal to the annotator's keypoints at keyframes.
        known: (T, 17) where the prediction holds a keypoint (not a guess).
        est_xy: (T, 17, 2) estimates (NaN where none), left and right already matched to the prediction
            (:func:`swap_left_right`).
        est_conf: (T, 17) their confidences, keyframes included (below 0 where unusable).
        size: (T,) the box path's longer side (0 where no box).
        opts: ``min_conf``, ``swap_margin``, ``bias_max``, ``still_move``, ``still_speed``.

    Returns:
        (T, 17, 2) float64 offsets, zero where none applies.
    """
    n = len(pred)
    out = np.zeros((n, 17, 2))
    rows = np.asarray(key_frames, np.int64) - int(key_frames[0])
    usable = (est_conf >= opts.min_conf) & known & np.isfinite(est_xy).all(-1)
    off = np.nan_to_num(est_xy[rows]) - pred[rows]
    near = np.hypot(off[..., 0], off[..., 1]) <= opts.bias_max * size[rows, None]
    ok = usable[rows] & near
    for g in range(len(rows) - 1):
        a, b = int(rows[g]), int(rows[g + 1])
        if b - a < 2:
            continue
        ok_a, ok_b = ok[g], ok[g + 1]
        scale = max(min(size[a], size[b]), 1.0)
        move = np.hypot(*(pred[b] - pred[a]).T) / scale
        # Per-frame movement of the estimates in between (confident frames only; a step over missing frames is
        # divided by the frames it spans).
        speed = np.full(17, np.inf)
        t = np.arange(a + 1, b)
        for j in np.flatnonzero((ok_a | ok_b) & known[a] & known[b]):
            seen = t[usable[a + 1 : b, j]]
            if len(seen) >= 2:
                step = np.hypot(*np.diff(est_xy[seen, j], axis=0).T) / np.diff(seen)
                speed[j] = float(np.mean(step)) / scale
        # Full below half the limits (estimates jitter), none at them.
        weight = np.clip(2.0 - 2.0 * move / opts.still_move, 0.0, 1.0) * np.clip(
            2.0 - 2.0 * speed / opts.still_speed, 0.0, 1.0
        )
        weight = np.where((ok_a | ok_b) & known[a] & known[b], weight, 0.0)
        start = np.where(ok_a[:, None], off[g], off[g + 1])
        end = np.where(ok_b[:, None], off[g + 1], off[g])
        u = ((t - a) / (b - a))[:, None, None]
        out[a + 1 : b] = weight[None, :, None] * ((1.0 - u) * start[None] + u * end[None])
    return out


def _check_shapes(
    n: int, pred: Float64Array, pres: BoolArray, est_xy: Float64Array, est_conf: Float64Array, boxes: Float64Array
) -> None:
    for name, arr, shape in (
        ("pred_xy", pred, (n, 17, 2)),
        ("pred_present", pres, (n, 17)),
        ("est_xy", est_xy, (n, 17, 2)),
        ("est_conf", est_conf, (n, 17)),
        ("boxes", boxes, (n, 4)),
    ):
        if np.shape(arr) != shape:
            raise InvalidInputError(f"fuse_pose_estimates: {name} expected shape {shape}, got {np.shape(arr)}")
