"""Keyframes in and out of dense tracks, with the semantics annotation tools share.

Export side: which observed frames of a track a tool file keeps as keyframes (a reducer's choice, plus the first and
last frame of every visible run, plus frames a format needs, such as segment boundaries).

Import side: a tool's keyframes back to a dense :class:`~prelabel.types.Track`, the way CVAT and Label Studio render
them: linear between consecutive keyframes, nothing from an ``outside`` keyframe until the next keyframe, and the last
visible keyframe held to the end of the video.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.formats.model import KeyframeTrack, frame_runs
from prelabel.types import Keyframe, Skeleton, Source, Track, TrackedBox

logger = logging.getLogger(__name__)

KeyframeReducer = Callable[[Track], list[int]]
"""Returns the frames of a track worth keeping as keyframes (a subset of its observed frames)."""

AUTO = "auto"
"""Reducer choice meaning: prelabel's keyframe compression when it is available, else every observed frame."""


def _interpolate_function(name: str) -> Callable[..., Any] | None:
    """A function of :mod:`prelabel.interpolate`, or None when that package is not available."""
    try:
        module = importlib.import_module("prelabel.interpolate")
    except ImportError:
        return None
    return getattr(module, name, None)


def compression_reducer(
    min_iou: float = 0.9, pinned: Mapping[int, Iterable[int]] | None = None
) -> KeyframeReducer | None:
    """A reducer from :func:`prelabel.interpolate.compress_track` (fewest keyframes that linear interpolation turns
    back into the track's boxes within ``min_iou``), or None when that function is not available.

    ``pinned``: per track id, frames that stay keyframes (an annotator's own): the track is compressed piece by piece
    between them (``compress_track``'s ``keep``), so each pinned frame is written as it is and every piece keeps the
    tolerance.
    """
    compress = _interpolate_function("compress_track")
    if compress is None:
        return None

    def reduce(track: Track) -> list[int]:
        keep = (pinned or {}).get(track.track_id, ())
        kfs = compress(track, min_iou=min_iou, max_keypoint_error=None, keep=keep)
        return [int(k.frame_idx) for k in kfs if not k.outside]

    return reduce


def skeleton_compression_reducer(max_keypoint_error: float = 0.05) -> KeyframeReducer | None:
    """A reducer for a skeleton kept in a track of its own (CVAT's skeleton tracks), from
    :func:`prelabel.interpolate.compress_skeletons` (fewest keyframes that linear interpolation turns back into the
    track's skeletons, every keypoint within ``max_keypoint_error`` times the box's longer side), or None when that
    function is not available.
    """
    compress = _interpolate_function("compress_skeletons")
    if compress is None:
        return None

    def reduce(track: Track) -> list[int]:
        return [int(f) for f in compress(track, max_keypoint_error)]

    return reduce


def resolve_reducer(reducer: KeyframeReducer | str | None, min_iou: float = 0.9) -> KeyframeReducer | None:
    """``"auto"`` -> :func:`compression_reducer` within ``min_iou`` (None when unavailable); a callable or None is
    returned as is.

    Raises:
        InvalidInputError: any other string.
    """
    if isinstance(reducer, str):
        if reducer != AUTO:
            raise InvalidInputError(f"keyframe reducer: expected a callable, None or {AUTO!r}, got {reducer!r}")
        return compression_reducer(min_iou)
    return reducer


def keyframe_frames(track: Track, reducer: KeyframeReducer | None = None, required: Iterable[int] = ()) -> list[int]:
    """Observed frames of ``track`` to write as keyframes, sorted.

    Args:
        track: the dense track.
        reducer: picks keyframes; None keeps every observed frame.
        required: frames that must be keyframes when the track is observed there (others are ignored).

    Returns:
        The reducer's frames that the track has, plus the first and last frame of each visible run (a tool needs
        them to start and end the run where it really starts and ends), plus ``required`` observed frames.
    """
    observed = {int(f) for f in track.frames}
    if reducer is None:
        return sorted(observed)
    picked = {int(f) for f in reducer(track)}
    extra = picked - observed
    if extra:
        logger.warning(
            "track %d: reducer returned %d frames where the track has no box; ignored", track.track_id, len(extra)
        )
    picked &= observed
    for a, b in frame_runs(track.frames):
        picked.update((a, b))
    picked.update(int(f) for f in required if int(f) in observed)
    return sorted(picked)


def _lerp_skeleton(a: Skeleton, b: Skeleton | None, t: float) -> Skeleton:
    """Keypoints present in both move linearly; present only in ``a`` hold; missing in ``a`` stay missing."""
    if b is None:
        return Skeleton(a.keypoints.copy(), a.present.copy(), a.score)
    both = a.present & b.present
    kp = a.keypoints.copy()
    kp[both] = (1.0 - t) * a.keypoints[both] + t * b.keypoints[both]
    return Skeleton(kp.astype(np.float32), a.present.copy(), float((1.0 - t) * a.score + t * b.score))


def _keyframe_box(k: Keyframe) -> np.ndarray | None:
    if k.xyxy is not None:
        return np.asarray(k.xyxy, np.float32)
    return k.skeleton.box() if k.skeleton is not None else None


def densify(
    kt: KeyframeTrack,
    end_frame: int,
    class_id: int = 0,
    ts_ms: Callable[[int], float] | None = None,
    max_frames: int | None = None,
) -> Track:
    """Render an annotator's keyframes into a dense track, frame by frame.

    Between a visible keyframe and the next keyframe, boxes (and keypoints present at both ends) move linearly towards
    the next keyframe's geometry (an ``outside`` keyframe's geometry counts when it has one, as in CVAT); from an
    ``outside`` keyframe nothing is drawn until the next keyframe; the last visible keyframe holds until
    ``end_frame``. From a keyframe with only a skeleton, boxes are the boxes around the rendered present keypoints.

    Args:
        kt: the keyframes.
        end_frame: last frame (inclusive) the final visible keyframe extends to; values below it are raised to it.
        class_id: class id given to the track.
        ts_ms: frame -> timestamp in ms for the boxes; None leaves 0.
        max_frames: most frames the track may be drawn on (readers of a file that states no length give
            :data:`~prelabel.types.MAX_TRACK_FRAMES`: nothing else bounds a keyframe number off by digits); None: no
            limit.

    Returns:
        The dense track; keyframes have ``Source.KEYFRAME``, frames in between ``Source.INTERPOLATED``.

    Raises:
        InvalidInputError: the track would be drawn on more than ``max_frames`` frames.
    """
    boxes: list[TrackedBox] = []
    ks = kt.keyframes
    if max_frames is not None:
        drawn = sum(
            (ks[i + 1].frame_idx if i + 1 < len(ks) else max(end_frame, k.frame_idx) + 1) - k.frame_idx
            for i, k in enumerate(ks)
            if not k.outside
        )
        if drawn > max_frames:
            raise InvalidInputError(
                f"{kt.source or f'track {kt.track_id}'}: its keyframes would be drawn on {drawn} frames, at most "
                f"{max_frames} where the file states no length (a frame number off by digits?)"
            )
    for i, k in enumerate(ks):
        if k.outside:
            continue
        box0 = _keyframe_box(k)
        if box0 is None:
            continue
        nxt = ks[i + 1] if i + 1 < len(ks) else None
        stop = nxt.frame_idx - 1 if nxt is not None else max(end_frame, k.frame_idx)
        box1 = _keyframe_box(nxt) if nxt is not None else None
        skel1 = nxt.skeleton if nxt is not None else None
        span = (nxt.frame_idx - k.frame_idx) if nxt is not None else 1
        for f in range(k.frame_idx, stop + 1):
            t = (f - k.frame_idx) / span
            xyxy = box0 if box1 is None or f == k.frame_idx else (1.0 - t) * box0 + t * box1
            skel = None
            if k.skeleton is not None and k.skeleton.present.any():
                skel = _lerp_skeleton(k.skeleton, skel1, t) if f != k.frame_idx else k.skeleton
                if k.xyxy is None:  # no box drawn: the box follows the rendered keypoints
                    around = skel.box()
                    xyxy = around if around is not None else xyxy
            boxes.append(
                TrackedBox(
                    frame_idx=f,
                    xyxy=np.asarray(xyxy, np.float32),
                    score=1.0,
                    source=Source.KEYFRAME if f == k.frame_idx else Source.INTERPOLATED,
                    ts_ms=ts_ms(f) if ts_ms is not None else 0.0,
                    skeleton=skel,
                )
            )
    return Track(track_id=kt.track_id, boxes=boxes, class_id=class_id, class_name=kt.label)
