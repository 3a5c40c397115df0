"""Frame sources for interpolation: frames held in memory, or a video file read with OpenCV."""

from __future__ import annotations

import bisect
import logging
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError

logger = logging.getLogger(__name__)


def _capture(path: Path, mirrored_rotation: float | None = None) -> Any:
    """An OpenCV reader that turns frames upright by the stream's rotation metadata (its FFmpeg default, made
    explicit): the same frames as :mod:`prelabel.video.decode`, in the coordinates annotators see. OpenCV reads a
    mirroring display matrix as a half turn; for such a file (``mirrored_rotation``: the rotation besides the
    mirroring) the frames are turned and mirrored here instead, as the decoder does."""
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0 if mirrored_rotation is not None else 1)
    return cap if mirrored_rotation is None else _Mirrored(cap, mirrored_rotation)


class _Mirrored:
    """An OpenCV reader of raw frames that turns and mirrors each as its display matrix says."""

    def __init__(self, cap: cv2.VideoCapture, rotation: float) -> None:
        self._cap = cap
        self._rotation = rotation

    def _show(self, ok: bool, img: Any) -> tuple[bool, Any]:
        from prelabel.video.decode import _upright

        return ok, (_upright(np.asarray(img, np.uint8), self._rotation, True) if ok else img)

    def read(self) -> tuple[bool, Any]:
        return self._show(*self._cap.read())

    def retrieve(self) -> tuple[bool, Any]:
        return self._show(*self._cap.retrieve())

    def grab(self) -> bool:
        return bool(self._cap.grab())

    def get(self, prop: int) -> float:
        return float(self._cap.get(prop))

    def set(self, prop: int, value: float) -> bool:
        return bool(self._cap.set(prop, value))

    def release(self) -> None:
        self._cap.release()


class _Sequential:
    """Frames of :mod:`prelabel.video.decode` in order, continuing where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._reader: Any = None
        self._frames: Any = None
        self._next = 0

    def from_frame(self, frame_idx: int, keep: int = 0) -> Any:
        """Frames from where the reader is (from the start again when it is past ``frame_idx``: the ``keep`` frames
        before it come with their images, those before them are decoded without being converted)."""
        from prelabel.video.decode import VideoReader

        if self._frames is None or frame_idx < self._next:
            self.close()
            self._reader = VideoReader(self._path)
            self._frames = self._reader.frames(start=max(0, frame_idx - keep))
            self._next = 0
        for frame in self._frames:
            self._next = frame.frame_idx + 1
            yield frame
            if frame.frame_idx >= frame_idx:
                return

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = self._frames = None
        self._next = 0


def _mirrored_rotation(path: Path) -> float | None:
    """The rotation besides the mirroring of a video whose display matrix mirrors it; None for any other video (or
    one the decoder cannot read: OpenCV then says why).

    Raises:
        NotAVideoError: text or a playlist (:func:`prelabel.video.decode.refuse_referencing_file`).
    """
    from prelabel.errors import PrelabelError
    from prelabel.video.decode import NotAVideoError, display_of

    try:
        rotation, mirrored = display_of(path)
    except NotAVideoError:
        raise  # text or a playlist: OpenCV would read it as a video
    except PrelabelError:
        return None
    return rotation if mirrored else None


class ArrayFrames:
    """Frames already decoded: (T, H, W, 3) BGR or (T, H, W) grey uint8 ((T, H, W, 1) is taken as grey, and the alpha
    of (T, H, W, 4) BGRA is left out)."""

    def __init__(self, frames: npt.NDArray[np.uint8]) -> None:
        arr = np.asarray(frames)
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        elif arr.ndim == 4 and arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] != 3) or arr.dtype != np.uint8:
            raise InvalidInputError(f"frames: expected (T, H, W[, 1 or 3 or 4]) uint8, got {arr.shape} {arr.dtype}")
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


@dataclass(frozen=True)
class FrameIndex:
    """What reading a video file taught: its frame count (None: not counted yet) and the fingerprints of frames
    decoded in order, by frame index (:class:`VideoFileFrames`)."""

    num_frames: int | None
    prints: dict[int, int]
    damaged: bool = False  # frames do not decode: read with the decoder (see VideoFileFrames)


class VideoFileFrames:
    """A video file decoded with OpenCV, read in any order with exact frame indices.

    Frames are counted by decoding (not from the container header), so ``num_frames`` is exact; counting also
    fingerprints every ``checkpoint``-th frame. Sequential reads are cheap. A jump (back, or far ahead) seeks to the
    nearest fingerprinted frame at or before the target and checks where it landed against the fingerprints
    recorded while decoding in order; only if no landing can be placed (variable frame rate, open GOPs, frames
    alike) is the file reopened and decoded from the start.

    Args:
        path: the video file.
        cache_frames: decoded frames kept (LRU).
        seek_ahead: forward jumps longer than this seek instead of decoding every frame in between.
        checkpoint: counting fingerprints every this many frames.
        index: what an earlier reader of the same file learnt (:meth:`index`): the frame count and fingerprints.

    Attributes:
        seeks: jumps served by a verified seek.
        reopens: jumps that decoded from the start of the file.
    """

    def __init__(
        self,
        path: Path,
        cache_frames: int = 64,
        seek_ahead: int = 64,
        checkpoint: int = 32,
        index: FrameIndex | None = None,
    ) -> None:
        self._path = Path(path)
        if self._path.is_dir():
            raise InvalidInputError(f"video {self._path.name}: a folder, not a video file")
        if not self._path.is_file():
            raise InvalidInputError(f"video {self._path.name}: file not found")
        from prelabel.video.decode import refuse_referencing_file

        refuse_referencing_file(self._path)
        self._cap: Any = None
        self._mirrored_rotation = _mirrored_rotation(self._path)
        # Where OpenCV stops at a damaged packet: the decoder's frames (decided when the frames are counted).
        self._decoder: _Sequential | None = _Sequential(self._path) if index is not None and index.damaged else None
        self._next = 0
        self._from_start = True  # the reader has decoded in order from frame 0 (no seek since it was opened)
        self._cache: OrderedDict[int, npt.NDArray[np.uint8]] = OrderedDict()
        self._cache_frames = cache_frames
        self._seek_ahead = seek_ahead
        self._seek_slack = 8
        self._checkpoint = max(1, checkpoint)
        self._num_frames: int | None = index.num_frames if index is not None else None
        # frame index -> fingerprint, recorded while decoding in order from the start (indices certain)
        self._prints: dict[int, int] = dict(index.prints) if index is not None else {}
        self._printed: list[int] = sorted(self._prints)  # the fingerprinted indices, sorted
        self.seeks = 0
        self.reopens = 0

    @property
    def num_frames(self) -> int:
        """Number of decodable frames (counted once, by decoding every frame; every ``checkpoint``-th is
        fingerprinted on the way). Raises :class:`InvalidInputError` when no frame decodes."""
        if self._num_frames is None:
            cap = _capture(self._path, self._mirrored_rotation)
            declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            n = 0
            while cap.grab():
                if n % self._checkpoint == 0 and n not in self._prints:
                    ok, img = cap.retrieve()
                    if ok:
                        self._remember(n, np.asarray(img, np.uint8))
                n += 1
            cap.release()
            if declared <= 0 or declared > n:  # OpenCV may have stopped early, at a damaged packet
                n = self._decoder_fallback(n)
            if n == 0:  # not a video, truncated before its first frame, or a codec OpenCV lacks
                raise InvalidInputError(f"video {self._path.name} cannot be read: no frame decodes")
            self._num_frames = n
        return self._num_frames

    def _decoder_fallback(self, counted: int) -> int:
        """The frame count, reading the file with :mod:`prelabel.video.decode` from now on where it has frames that
        do not decode: OpenCV stops at the first, while the labels keep every frame in its place (a damaged frame
        shows the last good one, as the decoder gives it)."""
        from prelabel.errors import PrelabelError
        from prelabel.video.decode import probe

        try:
            info, _ = probe(self._path)
        except PrelabelError:
            return counted
        if info.num_frames > counted and info.damaged_frames:
            logger.warning(
                "video %s: %d frames do not decode; reading it frame by frame past them (slower)",
                self._path.name,
                len(info.damaged_frames),
            )
            self._decoder = _Sequential(self._path)
            return info.num_frames
        return counted

    def release_frames(self) -> None:
        """Drop the decoded frames kept for repeated reads (the frame index stays)."""
        self._cache.clear()

    def close(self) -> None:
        """Release the decoder and the kept frames (a later read opens the file again)."""
        self._cache.clear()
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._decoder is not None:
            self._decoder.close()
        self._next = 0
        self._from_start = True

    def index(self) -> FrameIndex:
        """What this reader learnt about the file, to give a later reader of the same file (:class:`FrameIndex`)."""
        return FrameIndex(self._num_frames, dict(self._prints), self._decoder is not None)

    @staticmethod
    def _fingerprint(img: npt.NDArray[np.uint8]) -> int:
        return zlib.crc32(np.ascontiguousarray(img[::3, ::3]).tobytes())

    def _remember(self, frame_idx: int, frame: npt.NDArray[np.uint8]) -> None:
        """Record the fingerprint of a frame decoded in order from the start of the file (never one decoded after a
        seek, which a decoder may not give with the same pixels)."""
        if frame_idx not in self._prints and len(self._prints) < 1_000_000:
            self._prints[frame_idx] = self._fingerprint(frame)
            bisect.insort(self._printed, frame_idx)

    def _where(self, img: npt.NDArray[np.uint8], near: int) -> int | None:
        """The index of a decoded frame, from the fingerprints recorded within ``seek_slack`` of ``near`` (None:
        unknown, or several frames alike)."""
        fp = self._fingerprint(img)
        hits = [q for q in range(near - self._seek_slack, near + self._seek_slack + 1) if self._prints.get(q) == fp]
        return hits[0] if len(hits) == 1 else None

    def _seek(self, frame_idx: int) -> npt.NDArray[np.uint8] | None:
        """Frame ``frame_idx`` by seeking to the nearest fingerprinted frame at or before it, or None when no
        landing could be placed.

        Where a seek lands is read off the recorded fingerprints (a seek may land a few frames off); from there the
        reader decodes in order to ``frame_idx``, whose own fingerprint must match too where it is known.
        """
        if self._cap is None:
            self._cap = _capture(self._path, self._mirrored_rotation)
        pos = bisect.bisect_right(self._printed, frame_idx)
        tried = 0
        while pos > 0 and tried < 2:
            target = self._printed[pos - 1]
            if frame_idx - target > 4 * self._seek_ahead:
                return None
            tried += 1
            self._from_start = False
            if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, target):
                return None
            ok, img = self._cap.read()
            at = self._where(np.asarray(img, np.uint8), target) if ok else None
            if at is not None and at <= frame_idx:
                # Kept, once the target checks out, as the in-order path keeps them: a backward pass reads them next
                # (it sought once per frame, decoding up to a checkpoint's worth each time: 20 s for a 570-frame gap).
                passed: list[tuple[int, npt.NDArray[np.uint8]]] = []
                while ok and at < frame_idx:
                    passed.append((at, np.asarray(img, np.uint8)))
                    ok, img = self._cap.read()
                    at += 1
                if not ok:
                    return None
                frame = np.asarray(img, dtype=np.uint8)
                want = self._prints.get(frame_idx)
                if want is not None and self._fingerprint(frame) != want:
                    return None
                for idx, kept in passed:
                    self._keep(idx, kept)
                self.seeks += 1
                return frame
            # Landed off or somewhere unknown: try a fingerprinted frame well before the target.
            pos = bisect.bisect_right(self._printed, target - 2 * self._seek_slack - 1)
        return None

    def read(self, frame_idx: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_idx`` as (H, W, 3) uint8 BGR."""
        if frame_idx < 0:  # the reader would hand out frame 0 and then lose count of where it is
            raise InvalidInputError(f"frame {frame_idx}: outside the video (expected a frame >= 0)")
        hit = self._cache.get(frame_idx)
        if hit is not None:
            return hit
        if self._decoder is not None:
            return self._read_decoded(frame_idx)
        jump = self._cap is None or frame_idx < self._next or frame_idx - self._next > self._seek_ahead
        tried = jump and bool(self._printed) and self._printed[0] <= frame_idx
        frame = self._seek(frame_idx) if tried else None
        if frame is None:
            if self._cap is None or frame_idx < self._next or tried:  # a failed seek left the reader elsewhere
                if self._cap is not None:
                    self._cap.release()
                    self.reopens += 1
                self._cap = _capture(self._path, self._mirrored_rotation)
                self._next = 0
                self._from_start = True
            # In order from here (from the start, or from a checked seek): indices are certain. Frames skipped on the
            # way are decoded and kept near the target (where later reads tend to come back to), grabbed undecoded
            # farther away; fingerprints are recorded only while decoding from the start.
            while self._next < frame_idx:
                if frame_idx - self._next <= self._seek_ahead:
                    ok, img = self._cap.read()
                    if ok:
                        if self._from_start:
                            self._remember(self._next, np.asarray(img, np.uint8))
                        self._keep(self._next, np.asarray(img, np.uint8))
                else:
                    ok = self._cap.grab()
                if not ok:
                    break
                self._next += 1
            ok, img = self._cap.read()
            if not ok:  # the reader is past the frame it could not give: start afresh next time
                self._cap.release()
                self._cap = None
                raise InvalidInputError(f"frame {frame_idx}: could not be decoded from {self._path.name}")
            frame = np.asarray(img, dtype=np.uint8)
            if self._from_start:
                self._remember(frame_idx, frame)
        self._next = frame_idx + 1
        self._keep(frame_idx, frame)
        return frame

    def _read_decoded(self, frame_idx: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_idx`` from the decoder, in order (from the start again for an earlier frame); frames
        within ``seek_ahead`` before it are kept, as the OpenCV path keeps them."""
        assert self._decoder is not None
        for frame in self._decoder.from_frame(frame_idx, keep=self._seek_ahead):
            if frame_idx - frame.frame_idx <= self._seek_ahead:
                self._keep(frame.frame_idx, frame.image)
            if frame.frame_idx == frame_idx:
                return frame.image
        raise InvalidInputError(f"frame {frame_idx}: could not be decoded from {self._path.name}")

    def _keep(self, frame_idx: int, frame: npt.NDArray[np.uint8]) -> None:
        """Cache a decoded frame (LRU of ``cache_frames``)."""
        self._cache[frame_idx] = frame
        self._cache.move_to_end(frame_idx)
        if len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
