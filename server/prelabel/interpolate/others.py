"""The other tracks of a request: detections another annotated object sits on are left to it.

``guided`` and ``auto`` follow a track's detections between its keyframes; where two objects of one class pass
close, the detection path of one can take the other's boxes (a person half out of frame passing behind another
followed that other's boxes for whole gaps). An annotation tool sends every track of a task, and the annotator's
keyframes say where each object is: a detection that overlaps another track's box, as the tool draws it between
that track's keyframes (CVAT's linear fill), clearly better than this track's own is not a candidate for this track.

On generated scenes with the shipped models, guided mean IoU (seeds 0-5, the benchmark's ``evaluate`` with and
without): people squatting and falling (``actions``) 0.918 -> 0.929 at k=5, 0.913 -> 0.921 at k=10, 0.906 -> 0.912
at k=20; ``fast-motion`` 0.880 -> 0.882 at k=10 and 0.878 -> 0.881 at k=20; PETS09-S2L1 (public detections) k=20
0.8897 -> 0.8898.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.geometry import box_iou
from prelabel.types import Detections, Keyframe

logger = logging.getLogger(__name__)

#: A detection is another track's when it overlaps that track's drawn box at least this much ...
MIN_IOU = 0.5
#: ... and by this much more than the track's own.
MARGIN = 0.1


class OtherTracks:
    """What the annotator's tool shows of each track of a request (CVAT's linear fill of its keyframes), to leave to
    each track's neighbours of its class the detections it sits on.

    Args:
        keyframes: per track (any hashable key), its keyframes; a track whose keyframes do not fill (invalid input,
            named by its own call later) claims nothing.
        labels: per track, its class name; detections are left only among tracks of one label (case-insensitive).
        min_iou: least IoU of a detection with another track's box for that track to claim it.
        margin: how much more than the track's own box the other's must overlap the detection.
    """

    def __init__(
        self,
        keyframes: Mapping[Any, Sequence[Keyframe]],
        labels: Mapping[Any, str],
        min_iou: float = MIN_IOU,
        margin: float = MARGIN,
    ) -> None:
        from prelabel.interpolate.api import interpolate_track

        self.min_iou, self.margin = min_iou, margin
        self._label = {t: labels.get(t, "").strip().lower() for t in keyframes}
        self._boxes: dict[object, dict[int, np.ndarray]] = {}
        self._by_frame: dict[int, list[tuple[object, np.ndarray]]] = {}
        for t, kfs in keyframes.items():
            try:
                res = interpolate_track(list(kfs), method="linear", num_suggestions=0)
            except InvalidInputError:
                continue
            shown = {int(f): res.xyxy[i] for i, f in enumerate(res.frames.tolist()) if res.has_box[i]}
            self._boxes[t] = shown
            for f, box in shown.items():
                self._by_frame.setdefault(f, []).append((t, box))

    def detections_for(
        self, track: object, detections: Mapping[int, Detections]
    ) -> tuple[Mapping[int, Detections], tuple[tuple[int, int], ...]]:
        """``detections`` without those another track of ``track``'s label claims on the frames ``track`` is shown,
        and which were left out: ``(frame, index)`` pairs (the same pairs, the same answer: a cache key)."""
        own = self._boxes.get(track)
        if not own:
            return detections, ()
        label = self._label[track]
        left: dict[int, Detections] = {}
        dropped: list[tuple[int, int]] = []
        for f, box in own.items():
            others = [b for t, b in self._by_frame.get(f, ()) if t != track and self._label[t] == label]
            d = detections.get(f)
            if not others or d is None or len(d) == 0:
                continue
            xyxy = d.xyxy.astype(np.float64)
            mine = box_iou(xyxy, box[None].astype(np.float64))[:, 0]
            theirs = box_iou(xyxy, np.stack(others).astype(np.float64)).max(axis=1)
            drop = (theirs >= self.min_iou) & (theirs > mine + self.margin)
            if drop.any():
                keep = ~drop
                left[f] = Detections(
                    d.xyxy[keep],
                    d.scores[keep],
                    d.class_ids[keep],
                    d.class_names,
                    None if d.keypoints is None else d.keypoints[keep],
                )
                dropped += [(f, int(i)) for i in np.flatnonzero(drop)]
        if not left:
            return detections, ()
        logger.debug("track %s: %d detections left to other tracks", track, len(dropped))
        return _Overlay(left, detections), tuple(dropped)


class _Overlay(Mapping[int, Detections]):
    """``base`` with the frames of ``top`` replaced (``top``'s frames are some of ``base``'s)."""

    def __init__(self, top: dict[int, Detections], base: Mapping[int, Detections]) -> None:
        self._top, self._base = top, base

    def __getitem__(self, frame: int) -> Detections:
        hit = self._top.get(frame)
        return hit if hit is not None else self._base[frame]

    def __iter__(self) -> Iterator[int]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)
