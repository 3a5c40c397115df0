"""The tracking entry point the service and the pipeline call: detections of a whole video in, tracks out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.track.config import TrackerConfig
from prelabel.track.offline import refine
from prelabel.track.online import OnlineTracker
from prelabel.types import Detections, Track, TrackedBox

logger = logging.getLogger(__name__)


def for_clip(config: TrackerConfig, span_s: float) -> TrackerConfig:
    """``config`` for a clip whose first and last frames lie ``span_s`` seconds apart: tracks shorter than
    ``min_track_s`` are left out, but a clip shorter than twice that keeps the tracks seen for half of it (a clip of
    0.4 s would otherwise come out with no tracks at all, whatever it shows). The online tracker still reports a
    track from its ``min_hits``-th sighting on, so a single frame gives none."""
    return replace(config, min_track_s=min(config.min_track_s, 0.5 * max(span_s, 0.0)))


def frame_times_ms(frames: Sequence[tuple[int, float, Detections]], fps: float) -> list[float]:
    """Timestamps (ms) of ``frames``: as given where any frame gives one (0 is then a time like any other: a clip cut
    from a longer video keeps its frame numbers and starts at 0 ms), else ``frame_idx / fps`` for every frame.

    Raises:
        InvalidInputError: ``fps`` not positive, or a time negative or not finite (naming the frame).
    """
    if not fps > 0:
        raise InvalidInputError(f"fps: expected a positive frame rate, got {fps}")
    for f, t, _ in frames:
        if not 0.0 <= t < float("inf"):
            raise InvalidInputError(f"frame {f}: ts_ms must be a finite time >= 0, got {t}")
    if any(t != 0.0 for _, t, _ in frames):
        return [float(t) for _, t, _ in frames]
    return [f * 1000.0 / fps for f, _, _ in frames]


def track_detections(
    frames: Sequence[tuple[int, float, Detections]],
    config: TrackerConfig | None = None,
    *,
    fps: float,
    images: Callable[[int], npt.NDArray[np.uint8]] | None = None,
    offline: bool = True,
    frame_size: tuple[int, int] | None = None,
    max_boxes: int | None = None,
) -> list[Track]:
    """Track the detections of a video.

    Args:
        frames: ``(frame_idx, ts_ms, detections)`` in strictly increasing ``frame_idx``; ``ts_ms`` in milliseconds,
            increasing with the frames (0 on every frame: derived as ``frame_idx / fps``). Frames without detections
            may be omitted or given empty.
        config: tracker parameters; defaults to :class:`TrackerConfig()`.
        fps: nominal frame rate, frames per second (> 0).
        images: optional ``frame_idx -> (H, W, 3) uint8 BGR`` frame; enables camera-motion compensation and
            appearance cues in linking.
        offline: True (pre-labeling): link, fill and smooth after the online pass; False: the online tracker's
            output only (observed boxes of confirmed tracks, ``Source.DETECTOR``).
        frame_size: ``(width, height)`` pixels when known; the offline pass clips boxes to it and fills no gap
            frame where the object would be mostly out of view.
        max_boxes: most boxes the offline pass may return, filled gaps included (None: no limit).

    Returns:
        Tracks ordered by ``track_id`` (1, 2, ...).

    Raises:
        InvalidInputError: ``fps`` not positive and finite, frames out of order, or a detection with NaN/inf, negative
            size or a score outside [0, 1] (the message names the frame and row).
        ResourceExhaustedError: more than ``max_boxes`` boxes.
    """
    cfg = config or TrackerConfig()
    if not 0 < fps < float("inf"):
        raise InvalidInputError(f"fps: expected a positive frame rate, got {fps}")
    tracker = OnlineTracker(cfg)
    online: dict[int, list[TrackedBox]] = {}
    classes: dict[int, tuple[int, str]] = {}
    times = frame_times_ms(frames, fps)
    for (frame_idx, _, dets), ts in zip(frames, times, strict=True):
        image = images(frame_idx) if images is not None else None
        for obj in tracker.update(frame_idx, ts, dets, image):
            online.setdefault(obj.track_id, []).append(obj.box)
            classes[obj.track_id] = (obj.class_id, obj.class_name)
    if offline:
        span_s = (times[-1] - times[0]) / 1000.0 if times else 0.0
        return refine(
            tracker.tracklets(),
            for_clip(cfg, span_s),
            fps,
            appearance=tracker.appearance(),
            frame_size=frame_size,
            max_boxes=max_boxes,
        )
    return [Track(tid, boxes, *classes[tid]) for tid, boxes in sorted(online.items())]
