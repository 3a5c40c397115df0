"""Colour appearance of a box, for telling apart detections of different objects on a detection path.

A box's appearance is the normalised hue-saturation-value histogram (8 x 4 x 4 bins: value tells black clothes from
white, whose hue is noise; 16 grey levels for grey frames) of its inner part (the central 60% of its width and 70% of
its height, mostly the object rather than the background around it). Two boxes differ by the Bhattacharyya distance of
their histograms, 0 for the same colours and 1 for none in common. People in differently coloured clothes are told apart
where their boxes' motion is alike (one running past another), which the path's geometric costs cannot do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.interpolate.base import Float64Array, FrameSource

Histogram = npt.NDArray[np.float32]

INNER_X = 0.2  # share of the width left out on each side
INNER_Y = 0.15  # share of the height left out at the top and bottom


def box_histogram(image: npt.NDArray[np.uint8], xyxy: npt.ArrayLike) -> Histogram | None:
    """The L1-normalised histogram of the inner part of ``xyxy`` in ``image`` (BGR (H, W, 3) or grey (H, W)); None
    when that part has fewer than 2 x 2 pixels inside the image or a coordinate is not finite."""
    box = np.asarray(xyxy, np.float64).reshape(4)
    if not np.isfinite(box).all():
        return None
    h, w = image.shape[:2]
    dx, dy = INNER_X * (box[2] - box[0]), INNER_Y * (box[3] - box[1])
    xa, ya = max(int(np.floor(box[0] + dx)), 0), max(int(np.floor(box[1] + dy)), 0)
    xb, yb = min(int(np.ceil(box[2] - dx)), w), min(int(np.ceil(box[3] - dy)), h)
    if xb - xa < 2 or yb - ya < 2:
        return None
    patch = np.ascontiguousarray(image[ya:yb, xa:xb])
    if patch.ndim == 3 and patch.shape[2] == 3:
        hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
    else:
        grey = patch if patch.ndim == 2 else np.ascontiguousarray(patch[..., 0])
        hist = cv2.calcHist([grey], [0], None, [16], [0, 256])
    cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
    return np.asarray(hist, np.float32)


def keyframe_histograms(
    video: FrameSource, key_frames: Sequence[int], key_xyxy: Float64Array, use: Sequence[bool]
) -> list[Histogram | None]:
    """:func:`box_histogram` of each keyframe box whose ``use`` flag is set (None for the others)."""
    boxes = np.asarray(key_xyxy, np.float64).reshape(-1, 4)
    return [
        box_histogram(np.asarray(video.read(int(f))), box) if u else None
        for f, box, u in zip(key_frames, boxes, use, strict=True)
    ]


def appearance_cost(
    video: FrameSource, refs: Sequence[Histogram | None], weight: float
) -> Callable[[int, Float64Array], Float64Array] | None:
    """A node cost for :func:`~prelabel.interpolate.detpath.detection_path`: ``cost(frame, boxes)`` gives (N,)
    ``weight`` times the smallest distance of each of (N, 4) ``xyxy`` boxes in ``frame`` to the reference
    histograms (e.g. the gap's keyframes', :func:`keyframe_histograms`; 0 for a box too small to measure). None when
    no reference is given (Nones are skipped)."""
    hists = [r for r in refs if r is not None]
    if not hists:
        return None

    def cost(frame: int, xyxy: Float64Array) -> Float64Array:
        image = np.asarray(video.read(int(frame)))
        out = np.zeros(len(xyxy))
        for i, box in enumerate(xyxy):
            hist = box_histogram(image, box)
            if hist is not None:
                out[i] = weight * min(cv2.compareHist(r, hist, cv2.HISTCMP_BHATTACHARYYA) for r in hists)
        return out

    return cost
