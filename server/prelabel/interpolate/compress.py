"""Keyframe compression: the fewest keyframes from which linear interpolation (CVAT, Label Studio) rebuilds a track.

Each visible span of the track (frames without a gap) is covered greedily: from the current keyframe, the next one
is the farthest frame found (:func:`_farthest`) such that linear interpolation between the two reproduces every
frame in between with IoU >= ``min_iou`` and, where the track has skeletons, every keypoint within
``max_keypoint_error`` times the box's longer side (the PCK convention). Gaps become outside keyframes (the first
frame of the gap), as CVAT exports them. Every chosen segment is checked, so the round trip holds by construction.
Farthest reach is minimal when every piece of a feasible segment is feasible from any of its frames (exactly linear
motion); on jittery tracks a later start can reach less, which the one-segment lookahead of :func:`_cover` allows
for (``benchmarks/compression.py`` measures the distance to the exact minimum: 0.2% on MOT ground truth).

Skeletons follow the rules annotation tools share: a keypoint present at both ends of a segment moves linearly, one
present only at its start holds until the next keyframe, and one absent stays absent until a keyframe shows it. A
segment is only taken where every frame inside it shows the keypoints its start shows, and where none of them hides
at its end (CVAT moves such a keypoint toward where its element was left rather than holding it): a keypoint that
appears or hides gets a keyframe on each side of the change. :func:`compress_skeletons` covers a skeleton on its own
(CVAT keeps it in a track of its own beside the box).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from prelabel.errors import CancelledError, InvalidInputError
from prelabel.interpolate.base import Float64Array
from prelabel.types import NUM_KEYPOINTS, Keyframe, Skeleton, Track, TrackedBox

BoolArray = npt.NDArray[np.bool_]


def paired_iou(a: Float64Array, b: Float64Array) -> Float64Array:
    """Row-wise IoU of two (N, 4) ``xyxy`` arrays; two empty boxes at the same place count as 1."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    same = np.all(np.abs(a - b) < 1e-6, axis=1)
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), same.astype(np.float64)))


SegmentCheck = Callable[[int, int], bool]
"""Whether linear interpolation between indices ``i`` and ``j`` of a span rebuilds every index in between."""


NEAR = 32
"""Segments up to this many frames long are checked a row at a time: every end within it from one start in one
vectorised pass (most segments of a jittery track are short, and one check each would cost a pass each)."""


def _rows(check_row: Callable[[int, int], BoolArray], check: SegmentCheck, n: int) -> SegmentCheck:
    """A segment check that answers ends within :data:`NEAR` frames of a start from that start's cached row
    (``check_row(i, m)``: feasibility of the ends ``i + 2 .. m``) and farther ends with ``check``."""
    cache: dict[int, BoolArray] = {}

    def ok(i: int, j: int) -> bool:
        if j - i < 2:
            return True
        if j - i > NEAR:
            return check(i, j)
        row = cache.get(i)
        if row is None:
            row = cache[i] = check_row(i, min(n - 1, i + NEAR))
        return bool(row[j - i - 2])

    return ok


def spans(frames: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of the runs of consecutive frames in a strictly increasing frame array."""
    cuts = np.flatnonzero(np.diff(frames) > 1) + 1
    return list(zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(frames)].tolist(), strict=True))


def worst_ious(boxes: Float64Array, i: int, m: int) -> Float64Array:
    """For each end ``j`` in ``i + 2 .. m``: the lowest IoU between the boxes strictly between ``i`` and ``j`` and
    their linear interpolation from ``i`` to ``j``."""
    ends, ts = np.arange(i + 2, m + 1), np.arange(i + 1, m)
    frac = (ts[None, :] - i) / (ends[:, None] - i)  # (ends, frames between)
    lin = boxes[i] + (boxes[ends][:, None, :] - boxes[i]) * frac[..., None]
    iou = paired_iou(lin.reshape(-1, 4), np.broadcast_to(boxes[ts], lin.shape).reshape(-1, 4))
    inside = ts[None, :] < ends[:, None]
    return np.asarray(np.where(inside, iou.reshape(frac.shape), 1.0).min(axis=1, initial=1.0))


def _box_check(boxes: Float64Array, min_iou: float) -> SegmentCheck:
    def check(i: int, j: int) -> bool:
        off = (np.arange(i + 1, j) - i)[:, None] / (j - i)
        lin = boxes[i] + (boxes[j] - boxes[i]) * off
        return bool(np.all(paired_iou(lin, boxes[i + 1 : j]) >= min_iou - 1e-9))

    def check_row(i: int, m: int) -> BoolArray:
        return np.asarray(worst_ious(boxes, i, m) >= min_iou - 1e-9)

    return _rows(check_row, check, len(boxes))


def _skeleton_check(kp: Float64Array, present: BoolArray, size: Float64Array, max_error: float) -> SegmentCheck:
    """``kp`` (N, 17, 2), ``present`` (N, 17), ``size`` (N,) the box's longer side per frame."""

    def check(i: int, j: int) -> bool:
        shown = present[i]
        if np.any(present[i + 1 : j] != shown) or np.any(shown & ~present[j]):
            return False
        off = ((np.arange(i + 1, j) - i) / (j - i))[:, None, None]
        lin = kp[i, shown] + (kp[j, shown] - kp[i, shown]) * off
        err = np.linalg.norm(lin - kp[i + 1 : j, shown], axis=-1)
        return bool(np.all(err <= max_error * size[i + 1 : j, None] + 1e-9))

    def check_row(i: int, m: int) -> BoolArray:
        shown = present[i]
        ends, ts = np.arange(i + 2, m + 1), np.arange(i + 1, m)
        same = np.all(present[ts] == shown, axis=1)  # the frames between show what the start shows
        steady = np.cumsum(~same) == 0  # ... every one of them up to this frame
        keeps = ~np.any(shown & ~present[ends], axis=1)  # no keypoint the start shows hides at the end
        frac = (ts[None, :] - i) / (ends[:, None] - i)
        a, b = kp[i, shown], kp[ends][:, shown]  # (S, 2), (ends, S, 2)
        lin = a + (b[:, None] - a) * frac[..., None, None]  # (ends, frames between, S, 2)
        err = np.linalg.norm(lin - kp[ts][:, shown][None], axis=-1)
        fits = np.all(err <= max_error * size[ts][None, :, None] + 1e-9, axis=2)
        inside = ts[None, :] < ends[:, None]
        fits_all = np.all(fits | ~inside, axis=1)
        # ends[k] = i + 2 + k has the frames ts[0 .. k] between: steady[k] says they all show what the start shows
        return np.asarray(steady & keeps & fits_all)

    return _rows(check_row, check, len(kp))


def _shifted(ok: SegmentCheck, start: int) -> SegmentCheck:
    """``ok`` on the piece of a span that begins at index ``start``."""
    return lambda i, j: ok(start + i, start + j)


def _farthest(i: int, n: int, ok: SegmentCheck, patience: int) -> int:
    """The farthest end ``j`` of a feasible segment from ``i``: galloping (ends 1, 2, 4, ... frames further while
    feasible), bisection between the last feasible end and the first infeasible one, then up to ``patience`` ends
    past it (feasibility is not always monotone), galloping on from any that is feasible. Checking a segment costs
    its length, so a segment of ``L`` frames costs ``O(L log L)``, not the ``O(L^2)`` of trying every end."""
    best = i + 1  # adjacent frames: always feasible
    while True:
        hi, step = n, 1  # hi: the nearest end known infeasible (n: none yet)
        while best + step < n:
            if not ok(i, best + step):
                hi = best + step
                break
            best += step
            step *= 2
        while hi - best > 1:
            mid = (best + hi) // 2
            if ok(i, mid):
                best = mid
            else:
                hi = mid
        further = next((j for j in range(hi + 1, min(n, hi + patience)) if ok(i, j)), None)
        if further is None:
            return best
        best = further


def _cover(
    n: int, ok: SegmentCheck, patience: int, lookahead: int = 8, stop: Callable[[], bool] | None = None
) -> list[int]:
    """Indices (into a contiguous span of ``n`` frames) of its keyframes.

    From each keyframe, the farthest feasible end is not always the best next keyframe: on jittery boxes it can land
    on a frame from which the following segment is short. Of the feasible ends among the ``lookahead`` frames before
    the farthest one, the one whose own farthest end reaches furthest is taken (the farthest on a tie). On the
    ground truth of PETS09-S2L1 and three MOT15 sequences at IoU 0.8/0.9/0.95 this gives 6443 keyframes where taking
    the farthest end found gave 6565; the exact minimum (a shortest path over every feasible segment, far costlier)
    is 6428. ``stop``: asked before each keyframe; True raises :class:`~prelabel.errors.CancelledError`.
    """
    keys = [0]
    reach: dict[int, int] = {}

    def farthest(i: int) -> int:
        if i not in reach:
            reach[i] = _farthest(i, n, ok, patience)
        return reach[i]

    while keys[-1] < n - 1:
        if stop is not None and stop():
            raise CancelledError("keyframe compression stopped: its caller has gone")
        i = keys[-1]
        best = farthest(i)
        if best < n - 1:
            candidates = [best, *(c for c in range(best - 1, max(i, best - lookahead - 1), -1) if ok(i, c))]
            best = max(candidates, key=lambda c: (farthest(c), c))
        keys.append(best)
    return keys


def _skeleton_arrays(boxes: Sequence[TrackedBox]) -> tuple[Float64Array, BoolArray, Float64Array]:
    """Keypoints (N, 17, 2), presence (N, 17) (none where a box has no skeleton) and the boxes' longer sides (N,)."""
    n = len(boxes)
    kp = np.zeros((n, NUM_KEYPOINTS, 2))
    present = np.zeros((n, NUM_KEYPOINTS), bool)
    for r, b in enumerate(boxes):
        if b.skeleton is not None:
            kp[r] = b.skeleton.keypoints[:, :2]
            present[r] = b.skeleton.present
    xyxy = np.array([b.xyxy for b in boxes], np.float64).reshape(n, 4)
    size = np.maximum(np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]), 1.0)
    return kp, present, size


def _check_error(track: Track, max_keypoint_error: float | None) -> None:
    if max_keypoint_error is not None and not (np.isfinite(max_keypoint_error) and max_keypoint_error > 0):
        raise InvalidInputError(
            f"track {track.track_id}: max_keypoint_error must be a positive fraction of the box's longer side, "
            f"got {max_keypoint_error}"
        )


def compress_track(
    track: Track,
    min_iou: float = 0.9,
    patience: int = 8,
    max_keypoint_error: float | None = 0.05,
    keep: Iterable[int] = (),
    num_frames: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[Keyframe]:
    """Fewest keyframes such that linear interpolation reproduces ``track`` within ``min_iou`` on every frame.

    Args:
        track: a dense track (e.g. a tracker's), gaps meaning outside.
        min_iou: tolerance, IoU in (0, 1] between the rebuilt and the original box on every frame.
        patience: how many infeasible segment ends past the last feasible one are tried before settling.
        max_keypoint_error: where the track has skeletons, the tolerance on every present keypoint: distance from
            the original over the box's longer side (0.05: PCK@0.05 holds on every keypoint). None ignores skeletons
            (keyframes then carry the skeleton of their frame, and only the boxes are within tolerance).
        keep: frames that stay keyframes (an annotator's own): the track is compressed piece by piece between them
            (frames the track does not show are ignored: the outside keyframe of their gap covers them).
        num_frames: the video's frame count, when known: a track that ends before the video does gets an outside
            keyframe on the frame after its last box (annotation tools keep drawing the last keyframe otherwise).
        stop: asked before each keyframe (a server passes "has the caller gone?"); True ends the work with
            :class:`~prelabel.errors.CancelledError`.

    Returns:
        Keyframes in frame order: boxes (and skeletons when the track has them: a frame without one gets a skeleton
        with no keypoint, which hides it from there) at chosen frames, plus an outside keyframe at the first frame of
        each gap and, with ``num_frames``, after the last box; an outside keyframe carries the box the track was
        left at (a tool that draws outside shapes wants one; the keyframe before it is its neighbour, so nothing
        moves toward it).

    Raises:
        InvalidInputError: empty track, ``min_iou`` outside (0, 1], or ``max_keypoint_error`` not positive.
    """
    if not 0.0 < min_iou <= 1.0:
        raise InvalidInputError(f"track {track.track_id}: min_iou must be in (0, 1], got {min_iou}")
    _check_error(track, max_keypoint_error)
    if len(track) == 0:
        raise InvalidInputError(f"track {track.track_id}: empty track, nothing to compress")
    frames = track.frames
    boxes = track.xyxy.astype(np.float64)
    has_skeleton = any(b.skeleton is not None for b in track.boxes)
    pinned = np.isin(frames, np.fromiter((int(f) for f in keep), np.int64))
    out: list[Keyframe] = []
    for s, e in spans(frames):
        box_ok = _box_check(boxes[s:e], min_iou)
        ok = box_ok
        if has_skeleton and max_keypoint_error is not None:
            skel_ok = _skeleton_check(*_skeleton_arrays(track.boxes[s:e]), max_keypoint_error)

            def ok(i: int, j: int, box_ok: SegmentCheck = box_ok, skel_ok: SegmentCheck = skel_ok) -> bool:
                return box_ok(i, j) and skel_ok(i, j)

        cuts = sorted({0, e - s - 1, *np.flatnonzero(pinned[s:e]).tolist()})
        chosen = [0]
        for a, b in itertools.pairwise(cuts):
            chosen.extend(a + k for k in _cover(b - a + 1, _shifted(ok, a), max(1, patience), stop=stop)[1:])
        for k in chosen:
            tb = track.boxes[s + k]
            skeleton = tb.skeleton if tb.skeleton is not None or not has_skeleton else Skeleton.empty()
            out.append(Keyframe(int(tb.frame_idx), tb.xyxy.copy(), skeleton))
        if e < len(frames):
            out.append(Keyframe(int(frames[e - 1]) + 1, track.boxes[e - 1].xyxy.copy(), None, outside=True))
    if num_frames is not None and int(frames[-1]) + 1 < num_frames:
        out.append(Keyframe(int(frames[-1]) + 1, track.boxes[-1].xyxy.copy(), None, outside=True))
    return out


def compress_skeletons(track: Track, max_keypoint_error: float = 0.05, patience: int = 8) -> list[int]:
    """Frames of the fewest skeleton keyframes from which linear interpolation rebuilds ``track``'s skeletons, every
    present keypoint within ``max_keypoint_error`` times the box's longer side, for a tool that keeps a skeleton in a
    track of its own (CVAT's skeleton tracks).

    Each run of consecutive frames whose boxes carry a skeleton with a keypoint present is covered on its own, its
    first and last frame always among the keyframes; where a run ends, the tool needs its "no skeleton from here"
    keyframe, which is the writer's to add.

    Raises:
        InvalidInputError: ``max_keypoint_error`` not positive.
    """
    _check_error(track, max_keypoint_error)
    shown = [b for b in track.boxes if b.skeleton is not None and b.skeleton.present.any()]
    if not shown:
        return []
    frames = np.array([b.frame_idx for b in shown], np.int64)
    out: list[int] = []
    for s, e in spans(frames):
        ok = _skeleton_check(*_skeleton_arrays(shown[s:e]), max_keypoint_error)
        out.extend(int(frames[s + k]) for k in _cover(e - s, ok, max(1, patience)))
    return out
