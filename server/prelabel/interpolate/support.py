"""Detector support for guided interpolation: detectors run on the frames a request spans, their outputs merged per
frame, and a track's own class kept.

``guided`` and ``auto`` take detections per frame index (:func:`prelabel.interpolate.interpolate_track`); a caller
holding a video but no detections (the ``Interpolate`` RPC with ``detector_models``) gets them here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.detect.base import DetectOptions, Detector
from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import FrameSource
from prelabel.types import NUM_KEYPOINTS, Detections

logger = logging.getLogger(__name__)


def merge_detections(parts: Sequence[Detections]) -> Detections:
    """One frame's detections from several models as one :class:`Detections`.

    Class names are united in order of first appearance and class ids renumbered into them; keypoints are kept when
    any part has them (zero, i.e. absent, for the boxes of models without keypoints).
    """
    names: list[str] = []
    for d in parts:
        for name in d.class_names:
            if name not in names:
                names.append(name)
    xyxy, scores, ids, kps = [], [], [], []
    with_kp = any(d.keypoints is not None for d in parts)
    for d in parts:
        if len(d) == 0:
            continue
        if d.class_names:
            remap = np.array([names.index(n) for n in d.class_names], np.int64)
            ids.append(remap[np.clip(d.class_ids, 0, len(remap) - 1)])
        else:
            ids.append(d.class_ids)
        xyxy.append(d.xyxy)
        scores.append(d.scores)
        if with_kp:
            kps.append(d.keypoints if d.keypoints is not None else np.zeros((len(d), NUM_KEYPOINTS, 3), np.float32))
    if not xyxy:
        return Detections.empty(tuple(names))
    return Detections(
        np.concatenate(xyxy),
        np.concatenate(scores),
        np.concatenate(ids),
        tuple(names),
        np.concatenate(kps) if with_kp else None,
    )


def _bgr(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A frame as (H, W, 3) BGR: grey frames become three equal channels."""
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)) if frame.ndim == 2 else frame


def detect_frames(
    detectors: Sequence[Detector],
    video: FrameSource,
    frames: Iterable[int],
    options: DetectOptions | None = None,
    batch: int = 16,
) -> dict[int, Detections]:
    """Run every detector on ``frames`` of ``video`` (read in increasing order, in batches) and merge per frame.

    Grey frames are given to the detectors as three equal channels.

    Raises:
        InvalidInputError: a frame outside the video or not decodable (from the frame source).
    """
    order = sorted(set(int(f) for f in frames))
    out: dict[int, Detections] = {}
    for i0 in range(0, len(order), batch):
        idx = order[i0 : i0 + batch]
        images = [_bgr(video.read(f)) for f in idx]
        per_model = [det.detect(images, options) for det in detectors]
        for j, f in enumerate(idx):
            out[f] = merge_detections([res[j] for res in per_model])
    logger.debug("detector support: %d frames, %d models", len(order), len(detectors))
    return out


def span_frames(ranges: Iterable[tuple[int, int]], max_frames: int | None = None) -> list[int]:
    """Every frame of the union of inclusive ``(first, last)`` ranges (negative frames dropped), sorted.

    Raises:
        InvalidInputError: the union holds more than ``max_frames`` frames (counted before any frame is listed).
    """
    merged: list[list[int]] = []
    for first, last in sorted((max(int(a), 0), int(b)) for a, b in ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        elif first <= last:
            merged.append([first, last])
    total = sum(last - first + 1 for first, last in merged)
    if max_frames is not None and total > max_frames:
        raise InvalidInputError(
            f"the tracks span {total} frames; detectors run on at most {max_frames} per request (split the request)"
        )
    return [f for first, last in merged for f in range(first, last + 1)]


def for_label(detections: Mapping[int, Detections], label: str) -> Mapping[int, Detections]:
    """Only the detections of class ``label`` (case-insensitive), when the detectors know that class.

    A track labelled ``ball`` then never follows a person's boxes. With an empty label, or a label no detection's
    model names (a label of the annotation project's own), every detection is kept: the size gate of the guided
    methods tells objects apart.
    """
    want = label.strip().lower()
    if not want:
        return detections
    known = False
    out: dict[int, Detections] = {}
    for f, d in detections.items():
        names = [n.lower() for n in d.class_names]
        if want not in names:
            out[f] = d
            continue
        known = True
        keep = d.class_ids == names.index(want)
        out[f] = Detections(
            d.xyxy[keep],
            d.scores[keep],
            d.class_ids[keep],
            d.class_names,
            None if d.keypoints is None else d.keypoints[keep],
        )
    if not known:
        logger.debug("no detector knows class %r: all detections kept", label)
        return detections
    return out
