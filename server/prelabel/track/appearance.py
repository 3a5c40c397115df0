"""A cheap appearance descriptor for linking tracklets when frames are available: a hue-saturation histogram."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

HIST_DIM = 64
"""Length of :func:`colour_histogram`'s vector (8 hue x 8 saturation bins)."""


def colour_histogram(image: npt.NDArray[np.uint8], xyxy: npt.ArrayLike) -> F32:
    """L2-normalised (64,) float32 hue-saturation histogram of the central part of a box in a BGR image.

    The central 60 % of the width and 80 % of the height are used so that background at the box edges counts less.
    A box outside the image gives a zero vector.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in np.asarray(xyxy).reshape(4))
    bw, bh = x2 - x1, y2 - y1
    cx1, cx2 = int(max(0, x1 + 0.2 * bw)), int(min(w, x2 - 0.2 * bw))
    cy1, cy2 = int(max(0, y1 + 0.1 * bh)), int(min(h, y2 - 0.1 * bh))
    if cx2 - cx1 < 2 or cy2 - cy1 < 2:
        return np.zeros(HIST_DIM, np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(image[cy1:cy2, cx1:cx2]), cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [8, 8], [0, 180, 0, 256]).reshape(-1).astype(np.float32)
    n = float(np.linalg.norm(hist))
    return hist / n if n > 0 else hist


def appearance_distance(a: F32, b: F32) -> float:
    """Cosine distance in [0, 1] between two histograms (1 when either is empty)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0
    return float(1.0 - np.dot(a, b) / (na * nb))
