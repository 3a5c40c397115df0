"""Keyframe compression: the fewest keyframes from which linear interpolation (CVAT, Label Studio) rebuilds a track.

Each visible span of the track (frames without a gap) is covered greedily: from the current keyframe, the next one
is the farthest frame such that linear interpolation between the two reproduces every frame in between with
IoU >= ``min_iou``. Gaps become outside keyframes (the first frame of the gap), as CVAT exports them. Every chosen
segment is checked, so the round trip holds by construction; greedy farthest-reach is minimal whenever feasibility
is monotone in the segment end (it usually is on real tracks) and near-minimal otherwise.
"""

from __future__ import annotations

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import Float64Array
from prelabel.types import Keyframe, Track


def paired_iou(a: Float64Array, b: Float64Array) -> Float64Array:
    """Row-wise IoU of two (N, 4) ``xyxy`` arrays; two empty boxes at the same place count as 1."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    same = np.all(np.abs(a - b) < 1e-6, axis=1)
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), same.astype(np.float64)))


def _segment_ok(boxes: Float64Array, i: int, j: int, min_iou: float) -> bool:
    if j - i < 2:
        return True
    off = (np.arange(i + 1, j) - i)[:, None] / (j - i)
    lin = boxes[i] + (boxes[j] - boxes[i]) * off
    return bool(np.all(paired_iou(lin, boxes[i + 1 : j]) >= min_iou - 1e-9))


def _cover(boxes: Float64Array, min_iou: float, patience: int) -> list[int]:
    """Indices (into ``boxes``) of the keyframes for one contiguous span."""
    n = len(boxes)
    keys = [0]
    i = 0
    while i < n - 1:
        best = i + 1
        misses = 0
        j = i + 2
        while j < n and misses < patience:
            if _segment_ok(boxes, i, j, min_iou):
                best = j
                misses = 0
            else:
                misses += 1
            j += 1
        keys.append(best)
        i = best
    return keys


def compress_track(track: Track, min_iou: float = 0.9, patience: int = 8) -> list[Keyframe]:
    """Fewest keyframes such that linear interpolation reproduces ``track`` within ``min_iou`` on every frame.

    Args:
        track: a dense track (e.g. a tracker's), gaps meaning outside.
        min_iou: tolerance, IoU in (0, 1] between the rebuilt and the original box on every frame.
        patience: how many infeasible segment ends past the last feasible one are tried before settling.

    Returns:
        Keyframes in frame order: boxes (and skeletons when the track has them) at chosen frames, plus an outside
        keyframe at the first frame of each gap.

    Raises:
        InvalidInputError: empty track or ``min_iou`` outside (0, 1].
    """
    if not 0.0 < min_iou <= 1.0:
        raise InvalidInputError(f"track {track.track_id}: min_iou must be in (0, 1], got {min_iou}")
    if len(track) == 0:
        raise InvalidInputError(f"track {track.track_id}: empty track, nothing to compress")
    frames = track.frames
    boxes = track.xyxy.astype(np.float64)
    breaks = np.flatnonzero(np.diff(frames) > 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(frames)]])
    out: list[Keyframe] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        for k in _cover(boxes[s:e], min_iou, max(1, patience)):
            tb = track.boxes[s + k]
            out.append(Keyframe(int(tb.frame_idx), tb.xyxy.copy(), tb.skeleton))
        if e < len(frames):
            out.append(Keyframe(int(frames[e - 1]) + 1, None, None, outside=True))
    return out
