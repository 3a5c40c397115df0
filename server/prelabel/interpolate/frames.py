"""Frame sources for interpolation: frames held in memory, or a video file read with OpenCV."""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError

logger = logging.getLogger(__name__)


class ArrayFrames:
    """Frames already decoded: (T, H, W, 3) BGR or (T, H, W) grey uint8."""

    def __init__(self, frames: npt.NDArray[np.uint8]) -> None:
        arr = np.asarray(frames)
        if arr.ndim not in (3, 4) or arr.dtype != np.uint8:
            raise InvalidInputError(f"frames: expected (T, H, W[, 3]) uint8, got {arr.shape} {arr.dtype}")
        self._frames = arr

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return int(self._frames.shape[0])

    def read(self, frame_idx: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_idx``."""
        if not 0 <= frame_idx < self.num_frames:
            raise InvalidInputError(f"frame {frame_idx}: outside the video (expected 0 <= frame < {self.num_frames})")
        return np.asarray(self._frames[frame_idx])


class VideoFileFrames:
    """A video file decoded with OpenCV; sequential reads are cheap, a backward jump reopens the file.

    Frames are counted by decoding (not from the container header), so ``num_frames`` is exact.
    """

    def __init__(self, path: Path, cache_frames: int = 64) -> None:
        self._path = Path(path)
        if not self._path.is_file():
            raise InvalidInputError(f"video {self._path.name}: file not found")
        self._cap: cv2.VideoCapture | None = None
        self._next = 0
        self._cache: OrderedDict[int, npt.NDArray[np.uint8]] = OrderedDict()
        self._cache_frames = cache_frames
        self._num_frames: int | None = None

    @property
    def num_frames(self) -> int:
        """Number of decodable frames (counted once, by grabbing every frame)."""
        if self._num_frames is None:
            cap = cv2.VideoCapture(str(self._path))
            n = 0
            while cap.grab():
                n += 1
            cap.release()
            self._num_frames = n
        return self._num_frames

    def read(self, frame_idx: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_idx`` as (H, W, 3) uint8 BGR."""
        hit = self._cache.get(frame_idx)
        if hit is not None:
            return hit
        if self._cap is None or frame_idx < self._next:
            if self._cap is not None:
                self._cap.release()
            self._cap = cv2.VideoCapture(str(self._path))
            self._next = 0
        while self._next < frame_idx:
            if not self._cap.grab():
                break
            self._next += 1
        ok, img = self._cap.read()
        if not ok:
            raise InvalidInputError(f"frame {frame_idx}: could not be decoded from {self._path.name}")
        self._next = frame_idx + 1
        frame = np.asarray(img, dtype=np.uint8)
        self._cache[frame_idx] = frame
        if len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
        return frame
