"""Validation of an annotator's keyframes, with errors that name the track and the frame.

The checks run on arrays gathered in one pass over the keyframes, so validating a long track costs little more than
reading it; the arrays are handed back for the interpolation itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError, PrelabelError
from prelabel.interpolate.base import Float64Array, FrameSource
from prelabel.types import COCO17_KEYPOINTS, MAX_TRACK_FRAMES, BoolArray, IntArray, Keyframe


@dataclass(frozen=True)
class KeyframeArrays:
    """One track's keyframes as arrays (K keyframes).

    Attributes:
        frames: (K,) int64 frame indices, strictly increasing.
        outside: (K,) bool.
        has_box: (K,) bool, True where the keyframe carries a box.
        has_skeleton: (K,) bool.
        xyxy: (K, 4) float64 boxes in pixels, NaN rows where there is no box.
    """

    frames: IntArray
    outside: BoolArray
    has_box: BoolArray
    has_skeleton: BoolArray
    xyxy: Float64Array


class KeyframeError(InvalidInputError):
    """A keyframe breaks a rule of :func:`validate_keyframes`: which track, which frame (prelabel's, from 0), why.

    The message reads ``track 7, frame 12: <reason>``; a caller that names tracks and frames as another tool does (a
    CVAT id, Label Studio's frames from 1) builds its own from the attributes."""

    def __init__(self, track_id: int, frame: int, reason: str) -> None:
        super().__init__(f"track {track_id}, frame {frame}: {reason}")
        self.track_id = track_id
        self.frame = frame
        self.reason = reason


def keyframe_arrays(keyframes: Sequence[Keyframe]) -> KeyframeArrays:
    """Gather ``keyframes`` into :class:`KeyframeArrays` (no checks)."""
    n = len(keyframes)
    frames = np.fromiter((int(k.frame_idx) for k in keyframes), np.int64, n)
    outside = np.fromiter((bool(k.outside) for k in keyframes), bool, n)
    has_box = np.fromiter((k.xyxy is not None for k in keyframes), bool, n)
    has_skel = np.fromiter((k.skeleton is not None for k in keyframes), bool, n)
    xyxy = np.full((n, 4), np.nan)
    if has_box.all():
        xyxy[:] = np.array([k.xyxy for k in keyframes], dtype=np.float64).reshape(n, 4)
    elif has_box.any():
        idx = np.flatnonzero(has_box)
        xyxy[idx] = np.array([keyframes[i].xyxy for i in idx.tolist()], dtype=np.float64).reshape(-1, 4)
    return KeyframeArrays(frames, outside, has_box, has_skel, xyxy)


def boxes_far_outside(xyxy: npt.ArrayLike, width: float, height: float) -> BoolArray:
    """(N,) whether each of (N, 4) ``xyxy`` boxes lies outside a ``width`` x ``height`` frame by more than its own
    width or height (coordinates for another frame size or in other units; an object leaving the frame lies partly
    outside, or just past the edge)."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    w, h = np.maximum(b[:, 2] - b[:, 0], 0.0), np.maximum(b[:, 3] - b[:, 1], 0.0)
    return np.asarray((b[:, 2] < -w) | (b[:, 3] < -h) | (b[:, 0] > width + w) | (b[:, 1] > height + h))


def _boxes_off_the_frame(arr: KeyframeArrays, video: FrameSource) -> tuple[int, str] | None:
    """The first visible keyframe whose box lies outside the video's frame by more than its own size, with the
    message, or None.

    Such a box is a client's coordinates for another resolution (the original video's, say, against an uploaded
    proxy) or in other units; guided would follow whatever lies where the box falls. A box partly outside the frame,
    or just past its edge (an object leaving it, keyed by a tracker), is fine."""
    shown = np.flatnonzero(arr.has_box & ~arr.outside & (arr.frames >= 0) & (arr.frames < video.num_frames))
    if not shown.size:
        return None
    try:
        height, width = video.read(int(arr.frames[shown[0]])).shape[:2]
    except PrelabelError:  # a frame that does not decode: the method that reads it says so, not this check
        return None
    away = np.flatnonzero(boxes_far_outside(arr.xyxy[shown], width, height))
    if not away.size:
        return None
    i = int(shown[away[0]])
    return (
        i,
        f"box {arr.xyxy[i].tolist()} lies outside the {width}x{height} frame by more than its own size (boxes are in "
        "pixels of the video's frames; mark a keyframe outside where the object has left)",
    )


def validate_keyframes(
    keyframes: Sequence[Keyframe], track_id: int, video: FrameSource | None = None
) -> KeyframeArrays:
    """Check one track's keyframes before interpolating.

    Rules: at least one keyframe; frame indices >= 0 and strictly increasing (no duplicates); inside the video when
    one is given (at most :data:`MAX_TRACK_FRAMES` from the first keyframe to the last otherwise), and each visible
    keyframe's box within its own size of the frame (one frame is read for its size); finite boxes and skeletons;
    every visible keyframe has a box or a skeleton; among visible (non-outside) keyframes, either all or none carry a
    box.

    Returns:
        The keyframes as :class:`KeyframeArrays`.

    Raises:
        KeyframeError: naming the track and the offending frame (the first offending keyframe in order).
        InvalidInputError: no keyframes, or a track id that is not positive.
    """
    if track_id <= 0:
        raise InvalidInputError(f"track {track_id}: track_id must be positive")
    if len(keyframes) == 0:
        raise InvalidInputError(f"track {track_id}: no keyframes (expected at least one)")
    arr = keyframe_arrays(keyframes)
    f = arr.frames
    problems: list[tuple[int, str]] = []  # (keyframe position, message) of the first failure of each rule

    neg = np.flatnonzero(f < 0)
    if neg.size:
        problems.append((int(neg[0]), "frame index must be >= 0"))
    step = np.flatnonzero(np.diff(f) <= 0)
    if step.size:
        i = int(step[0]) + 1
        what = (
            "duplicate keyframe"
            if f[i] == f[i - 1]
            else f"keyframes not sorted (frame {int(f[i])} follows frame {int(f[i - 1])})"
        )
        problems.append((i, f"{what}; expected strictly increasing frame indices"))
    if video is not None:
        out = np.flatnonzero(f >= video.num_frames)
        if out.size:
            problems.append((int(out[0]), f"outside the video (expected 0 <= frame < {video.num_frames})"))
    elif len(f) and int(f.max()) - int(f[0]) + 1 > MAX_TRACK_FRAMES:  # within a video, its length bounds the span
        beyond = int(np.flatnonzero(f - f[0] + 1 > MAX_TRACK_FRAMES)[0])
        problems.append(
            (
                beyond,
                f"the track would span {int(f.max()) - int(f[0]) + 1} frames from frame {int(f[0])}; at most "
                f"{MAX_TRACK_FRAMES} without a video (a frame number off by digits? otherwise split the track)",
            )
        )
    bad_box = np.flatnonzero(arr.has_box & ~np.isfinite(arr.xyxy).all(axis=1))
    if bad_box.size:
        i = int(bad_box[0])
        problems.append((i, f"box is not finite (NaN or inf): {arr.xyxy[i].tolist()}"))
    elif video is not None:
        far = _boxes_off_the_frame(arr, video)
        if far is not None:
            problems.append(far)
    for i in np.flatnonzero(arr.has_skeleton).tolist():
        sk = keyframes[i].skeleton
        if sk is None:
            continue
        if not np.all(np.isfinite(sk.keypoints[sk.present])):
            problems.append((i, "a present skeleton keypoint is not finite"))
            break
        conf = sk.keypoints[:, 2]
        off = np.flatnonzero(sk.present & ((conf < 0.0) | (conf > 1.0)))
        if off.size:
            j = int(off[0])
            problems.append(
                (i, f"skeleton keypoint {j} ({COCO17_KEYPOINTS[j]}): confidence {float(conf[j]):g} outside [0, 1]")
            )
            break
        if not np.isnan(sk.score) and not 0.0 <= sk.score <= 1.0:  # NaN: unset (the keypoints' mean is reported)
            problems.append((i, f"skeleton score {sk.score:g} outside [0, 1]"))
            break
    empty = np.flatnonzero(~arr.outside & ~arr.has_box & ~arr.has_skeleton)
    if empty.size:
        problems.append((int(empty[0]), "a visible keyframe needs a box or a skeleton"))
    visible = ~arr.outside
    if arr.has_box[visible].any() and not arr.has_box[visible].all():
        i = int(np.flatnonzero(visible & ~arr.has_box)[0])
        problems.append(
            (
                i,
                "keyframe has no box while other keyframes of the track do "
                "(expected a box on every visible keyframe or on none)",
            )
        )
    if problems:
        i, msg = min(problems, key=lambda p: p[0])
        raise KeyframeError(track_id, int(f[i]), msg)
    return arr
