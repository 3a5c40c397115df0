"""Decode video frames with their container timestamps (PyAV / FFmpeg).

``ts_ms`` is each frame's presentation time from the container (``pts * time_base``), relative to the stream's
first frame, so variable-frame-rate videos keep their real timing. ``frame_idx`` counts decoded frames from 0.
Frames come upright, as players and annotation tools show them: a stream's rotation metadata (a phone's portrait
video is stored landscape with a display matrix) is applied, so boxes are in the coordinates annotators see, and the
same as the interpolation's OpenCV reader (which applies it too).
Unreadable, corrupt or empty files raise :class:`InvalidInputError`; a missing file raises :class:`NotFoundError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.types import VideoInfo

log = logging.getLogger(__name__)

# Relative spread of frame intervals above which a stream counts as variable frame rate.
_VFR_TOLERANCE = 0.02
# The container's rate is taken where the timestamps' mean rate agrees with it within this fraction.
_RATE_AGREEMENT = 1e-3
# FFmpeg's text-as-video demuxers and codecs (ANSI art, binary text): a .txt file opens as a 640x400 "video".
_TEXT_DEMUXERS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is (H, W, 3) uint8 BGR."""

    frame_idx: int
    ts_ms: float
    image: npt.NDArray[np.uint8]


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise NotFoundError(f"video {path.name} does not exist")
    if not path.is_file():
        raise InvalidInputError(f"video {path.name} is not a file")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"video {path.name} is empty")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        why = str(exc).replace(f": '{path}'", "").replace(str(path), path.name)  # FFmpeg's message names the path
        raise InvalidInputError(f"video {path.name} cannot be read: {why}") from exc
    if not container.streams.video:
        container.close()
        raise InvalidInputError(f"video {path.name} has no video stream")
    codec = container.streams.video[0].codec_context.name
    if container.format.name in _TEXT_DEMUXERS or codec in _TEXT_CODECS:
        container.close()  # FFmpeg renders any text file as "video" (its ANSI art demuxer): not footage
        raise InvalidInputError(f"video {path.name} is text ({container.format.name}, {codec}), not a video")
    return container


def _video_duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """The video stream's own duration in seconds (0 when unknown): its header's, else the DURATION tag Matroska
    muxers write, else the container's where the video is its only stream (an audio track may run longer)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = next((v for k, v in (stream.metadata or {}).items() if k.upper() == "DURATION"), "")
    if m := re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip()):
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    if len(container.streams) == 1 and container.duration:
        return float(container.duration / av.time_base)
    return 0.0


def _quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) of a display rotation in degrees; 0 for angles off a multiple of 90."""
    turns = round(rotation / 90.0)
    return turns % 4 if abs(rotation - 90.0 * turns) <= 1.0 else 0


def _upright(image: npt.NDArray[np.uint8], rotation: float) -> npt.NDArray[np.uint8]:
    """``image`` turned by its display rotation (degrees counter-clockwise)."""
    turns = _quarter_turns(rotation)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


class VideoReader:
    """Sequential decoder over one video file.

    Use as a context manager; iterate :meth:`frames` for ``Frame`` objects in order.

    Raises:
        NotFoundError: the file does not exist.
        InvalidInputError: the file is not a decodable video, or decoding fails part-way.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._container = _open(self.path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        #: display rotation of the frames decoded so far (degrees counter-clockwise; 0 without metadata)
        self.rotation = 0.0

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._container.close()

    @property
    def nominal_fps(self) -> float:
        """The container's average frame rate (0 when unknown)."""
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) if rate else 0.0

    def frames(self, start: int = 0, end: int | None = None, decode_images: bool = True) -> Iterator[Frame]:
        """Frames ``start <= frame_idx < end`` in order, with container timestamps.

        Args:
            start: first frame index (0-based).
            end: one past the last frame index; None reads to the end.
            decode_images: False yields empty images (timestamps only; much faster).
        """
        if start < 0 or (end is not None and end < start):
            raise InvalidInputError(f"bad frame range [{start}, {end})")
        tb = self._stream.time_base or Fraction(1, 1000)
        first_pts: int | None = None
        idx = 0
        empty = np.zeros((0, 0, 3), np.uint8)
        try:
            for frame in self._container.decode(self._stream):
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:  # no timestamps at all: fall back to the nominal rate
                    ts_ms = idx * 1000.0 / (self.nominal_fps or 25.0)
                else:
                    if first_pts is None:
                        first_pts = pts
                    ts_ms = float((pts - first_pts) * tb * 1000)
                if idx == 0:
                    self.rotation = float(getattr(frame, "rotation", 0.0) or 0.0)
                if idx >= start:
                    if end is not None and idx >= end:
                        return
                    image = (
                        _upright(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8), self.rotation)
                        if decode_images
                        else empty
                    )
                    yield Frame(idx, ts_ms, image)
                idx += 1
        except av.error.FFmpegError as exc:
            raise InvalidInputError(f"video {self.path.name}: decoding failed at frame {idx}: {exc}") from exc
        if idx == 0:
            raise InvalidInputError(f"video {self.path.name} has no decodable frames")
        if start >= idx:
            raise InvalidInputError(f"video {self.path.name}: start frame {start} is past the last frame {idx - 1}")


def probe(path: Path | str) -> tuple[VideoInfo, npt.NDArray[np.float64]]:
    """Video info and every frame's ``ts_ms`` (decodes without converting pixels).

    Returns:
        (info, ts_ms) with ts_ms of shape (num_frames,) float64.

    Raises:
        NotFoundError, InvalidInputError: as :class:`VideoReader`.
    """
    with VideoReader(path) as reader:
        stream = reader._stream
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        ts = np.array([f.ts_ms for f in reader.frames(decode_images=False)], dtype=np.float64)
        fps = reader.nominal_fps
        declared = int(stream.frames or 0)  # what the container's index lists (0: unknown)
        if not declared and fps > 0:  # Matroska, WebM: no frame count, a duration
            declared = round(_video_duration_s(reader._container, stream) * fps)
        if _quarter_turns(reader.rotation) % 2 == 1:  # a quarter turn: the frames come upright (see the module)
            width, height = height, width
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"video {Path(path).name}: invalid frame size {width}x{height}")
    dts = np.diff(ts)
    vfr = bool(len(dts) > 1 and np.median(dts) > 0 and np.std(dts) / np.median(dts) > _VFR_TOLERANCE)
    if len(dts) and np.median(dts) > 0:  # the timestamps are the truth; the container's rate is a fallback
        # The mean step: millisecond timestamps store 30 fps as 33 and 34 ms steps, whose median is off; at a
        # variable rate, the one rate that keeps frames placed at it (as Label Studio places them) closest to their
        # own times over the whole video (the median step's rate drifted 10 frames in a 90-frame clip).
        step = float(ts[-1] - ts[0]) / (len(ts) - 1)
        measured = 1000.0 / step
        # The container's rate where the timestamps agree with it: exact (30, 30000/1001) where the timestamps'
        # rounding would make it 29.999999999999996.
        fps = fps if fps > 0 and abs(measured - fps) <= _RATE_AGREEMENT * fps else measured
    duration = float(ts[-1] + (np.median(dts) if len(dts) else 0.0)) if len(ts) else 0.0
    info = VideoInfo(width, height, len(ts), fps, vfr, duration, declared)
    if info.truncated:
        log.warning(
            "video %s: its container lists %d frames but %d decode (a truncated or damaged file?); labels cover the "
            "frames that decode",
            Path(path).name,
            declared,
            len(ts),
        )
    return info, ts


def read_frames(path: Path | str, start: int = 0, end: int | None = None) -> Iterator[Frame]:
    """Convenience generator: decoded frames ``[start, end)`` of the video at ``path``."""
    with VideoReader(path) as reader:
        yield from reader.frames(start, end)
