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

import hashlib
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

    The detections are split once per frame for all tracks (:meth:`detections_for` keeps the split of each detections
    object it saw): one IoU matrix per frame where two tracks of a label are shown, so a request of many
    tracks over a long video costs about one pass over its frames, not one per track.

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
        label = {t: labels.get(t, "").strip().lower() for t in keyframes}
        shown: dict[int, list[tuple[Any, np.ndarray]]] = {}
        for t, kfs in keyframes.items():
            try:
                res = interpolate_track(list(kfs), method="linear", num_suggestions=0)
            except InvalidInputError:
                continue
            for i in np.flatnonzero(res.has_box):
                shown.setdefault(int(res.frames[i]), []).append((t, res.xyxy[i].astype(np.float64)))
        # Per frame, per label shown there by two tracks or more: the tracks and their boxes.
        self._contested: dict[int, list[tuple[list[Any], np.ndarray]]] = {}
        for f, items in shown.items():
            groups: dict[str, list[tuple[Any, np.ndarray]]] = {}
            for t, box in items:
                groups.setdefault(label[t], []).append((t, box))
            pairs = [([t for t, _ in g], np.stack([b for _, b in g])) for g in groups.values() if len(g) > 1]
            if pairs:
                self._contested[f] = pairs
        # Per detections object (held, so its id stays its own): the split.
        self._splits: dict[int, tuple[Mapping[int, Detections], dict[Any, dict[int, np.ndarray]]]] = {}

    def detections_for(
        self, track: Any, detections: Mapping[int, Detections]
    ) -> tuple[Mapping[int, Detections], bytes]:
        """``detections`` without those another track of ``track``'s label claims on the frames ``track`` is shown
        (read frame by frame as asked), and a digest of which were left out (empty where none: the same digest, the
        same detections; a cache key)."""
        keep = self._keep(detections).get(track)
        if not keep:
            return detections, b""
        logger.debug("track %s: detections left to other tracks on %d frames", track, len(keep))
        digest = hashlib.sha256()
        for f in sorted(keep):
            digest.update(f.to_bytes(8, "little", signed=True) + np.packbits(keep[f]).tobytes() + b";")
        return _Overlay(keep, detections), digest.digest()

    def left_to_others(self, track: Any, detections: Mapping[int, Detections]) -> list[tuple[int, int]]:
        """The ``(frame, index)`` of the detections :meth:`detections_for` leaves out for ``track``, in order."""
        keep = self._keep(detections).get(track, {})
        return [(f, int(i)) for f in sorted(keep) for i in np.flatnonzero(~keep[f])]

    def _keep(self, detections: Mapping[int, Detections]) -> dict[Any, dict[int, np.ndarray]]:
        """Per track, per frame where another track claims some of ``detections``: which to keep."""
        hit = self._splits.get(id(detections))
        if hit is not None and hit[0] is detections:
            return hit[1]
        out: dict[Any, dict[int, np.ndarray]] = {}
        for f, pairs in self._contested.items():
            d = detections.get(f)
            if d is None or len(d) == 0:
                continue
            xyxy = d.xyxy.astype(np.float64)
            for tracks, boxes in pairs:
                iou = box_iou(xyxy, boxes)  # (detections, tracks)
                # The best other track per detection and track: the best overall, or the second where that is it.
                order = np.argsort(iou, axis=1)
                rows = np.arange(len(iou))
                first, second = iou[rows, order[:, -1]], iou[rows, order[:, -2]]
                theirs = np.where(order[:, -1:] == np.arange(len(tracks))[None, :], second[:, None], first[:, None])
                drop = (theirs >= self.min_iou) & (theirs > iou + self.margin)
                for j in np.flatnonzero(drop.any(axis=0)):
                    out.setdefault(tracks[j], {})[f] = ~drop[:, j]
        self._splits[id(detections)] = (detections, out)
        return out


class _Overlay(Mapping[int, Detections]):
    """``base`` with the detections of the frames in ``keep`` narrowed to its mask (built on first read)."""

    def __init__(self, keep: dict[int, np.ndarray], base: Mapping[int, Detections]) -> None:
        self._keep, self._base = keep, base
        self._done: dict[int, Detections] = {}

    def __getitem__(self, frame: int) -> Detections:
        d = self._base[frame]
        mask = self._keep.get(frame)
        if mask is None:
            return d
        hit = self._done.get(frame)
        if hit is None:
            kp = None if d.keypoints is None else d.keypoints[mask]
            hit = self._done[frame] = Detections(d.xyxy[mask], d.scores[mask], d.class_ids[mask], d.class_names, kp)
        return hit

    def __iter__(self) -> Iterator[int]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)
