"""Camera-motion compensation: a 2x3 affine between consecutive frames from sparse optical flow (OpenCV)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]


def identity_affine() -> F64:
    """(2, 3) identity warp."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@dataclass
class SparseFlowCMC:
    """Estimates how the camera moved between consecutive frames.

    Corners (``cv2.goodFeaturesToTrack``) of the previous frame are followed by pyramidal Lucas–Kanade flow and a
    similarity transform is fitted with RANSAC (``cv2.estimateAffinePartial2D``); moving people are outliers. Frames
    are downscaled to ``max_side`` pixels first, the warp is returned in full-resolution pixels.

    Attributes:
        max_side: longest side of the frame used for the flow, pixels.
        max_corners: corners tracked per frame.
    """

    max_side: int = 480
    max_corners: int = 300
    _prev: npt.NDArray[np.uint8] | None = field(default=None, init=False, repr=False)
    _scale: float = field(default=1.0, init=False, repr=False)

    def _gray(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        if image.ndim == 3:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif image.ndim == 2:
            gray = image
        else:
            raise InvalidInputError(f"frame: expected an (H, W, 3) or (H, W) image, got shape {image.shape}")
        h, w = gray.shape
        self._scale = min(1.0, self.max_side / max(h, w))
        if self._scale < 1.0:
            gray = cv2.resize(gray, (round(w * self._scale), round(h * self._scale)), interpolation=cv2.INTER_AREA)
        return np.asarray(gray, np.uint8)

    def estimate(self, image: npt.NDArray[np.uint8]) -> F64:
        """Warp (2, 3) mapping pixel coordinates of the previous frame to this ``image``; identity on the first."""
        cur = self._gray(np.asarray(image))
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            return identity_affine()
        pts = cv2.goodFeaturesToTrack(prev, maxCorners=self.max_corners, qualityLevel=0.01, minDistance=8)
        if pts is None or len(pts) < 8:
            return identity_affine()
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None)  # type: ignore[call-overload]
        ok = status.reshape(-1) == 1
        if ok.sum() < 8:
            return identity_affine()
        m, _ = cv2.estimateAffinePartial2D(pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0)
        if m is None:
            return identity_affine()
        warp = np.asarray(m, np.float64)
        warp[:, 2] /= self._scale  # translation back to full-resolution pixels; the linear part is scale-free
        return warp


def warp_state(x: F64, p: F64, warp: F64) -> tuple[F64, F64]:
    """Apply a (2, 3) camera warp to a Kalman state (8,) and covariance (8, 8) (centre, size and velocities)."""
    a = warp[:, :2]
    s = float(np.sqrt(abs(np.linalg.det(a))))
    t = np.eye(8)
    t[0:2, 0:2] = a
    t[4:6, 4:6] = a
    t[2, 2] = t[3, 3] = t[6, 6] = t[7, 7] = s
    xn = t @ x
    xn[0:2] += warp[:, 2]
    return xn, t @ p @ t.T


def warp_xyxy(xyxy: F64, warp: F64) -> F64:
    """Apply a (2, 3) warp to (..., 4) ``xyxy`` boxes (corners mapped, axis-aligned hull kept)."""
    b = np.asarray(xyxy, np.float64)
    p1 = b[..., :2] @ warp[:, :2].T + warp[:, 2]
    p2 = b[..., 2:] @ warp[:, :2].T + warp[:, 2]
    return np.concatenate([np.minimum(p1, p2), np.maximum(p1, p2)], axis=-1)
