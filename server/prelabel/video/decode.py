"""Decode video frames with their container timestamps (PyAV / FFmpeg).

``ts_ms`` is each frame's presentation time from the container (``pts * time_base``), relative to the stream's
first frame, so variable-frame-rate videos keep their real timing. ``frame_idx`` counts decoded frames from 0.
Frames come upright, as players and annotation tools show them: a stream's rotation metadata (a phone's portrait
video is stored landscape with a display matrix), mirroring included, is applied, so boxes are in the coordinates
annotators see, and the same as the interpolation's OpenCV reader (which applies it too).
Unreadable or empty files raise :class:`InvalidInputError`; a missing file raises :class:`NotFoundError`; a file
that names other files to read (a playlist, a manifest) is refused, and FFmpeg opens local files only.

Awkward but intact files: AVI stores no presentation times, so its frames are timed by their counters in the order
shown; timestamps that go back by more than two usual steps (recordings joined end to end) are bridged one step on,
while a frame stamped a little early keeps the time before it; frames at another picture size than the first are
scaled to it. :class:`~prelabel.types.VideoInfo` counts each.

Damaged packets: where a packet does not decode (a disk or transfer error in a long recording), the frames the
decoder could not give are kept in their place, marked ``damaged``, with the last good frame's image standing in (as
FFmpeg fills a constant-rate output from such a file). Every frame keeps its own index and timestamp, so labels stay
on the time line players and annotation tools show. A file where more than ``MAX_DAMAGED_FRACTION`` of the frames
(and more than ``MIN_DAMAGED_TO_FAIL``) are damaged is refused as corrupt. A file without decoding errors is read
exactly as FFmpeg's plain decoding loop reads it.
"""

from __future__ import annotations

import collections
import heapq
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


class NotAVideoError(InvalidInputError):
    """The file is not footage at all: text (FFmpeg renders any text file as ANSI art) or a playlist or manifest that
    names other files. Readers that fall back to another decoder refuse it too."""


# FFmpeg's text-as-video demuxers and codecs (ANSI art, binary text): a .txt file opens as a 640x400 "video".
_TEXT_DEMUXERS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})
# Demuxers whose file names other files or addresses to read (playlists, manifests, concatenation lists, session
# descriptions): a 100-byte HLS playlist uploaded to the server had it label a video outside the allowed roots.
_REFERENCING_DEMUXERS = frozenset(
    {
        "hls",
        "applehttp",
        "dash",
        "concat",
        "imf",
        "webm_dash_manifest",
        "sdp",
        "rtp",
        "rtsp",
        "mpegdash",
        "smoothstreaming",
    }
)
# How such files begin, refused before FFmpeg opens them (and anything they name).
_REFERENCING_MAGIC = (b"#EXTM3U", b"ffconcat version", b"v=0\r\n", b"v=0\n")
# A file is refused as corrupt when more than this fraction of its frames so far, and more than MIN_DAMAGED_TO_FAIL
# frames, did not decode.
MAX_DAMAGED_FRACTION = 0.1
MIN_DAMAGED_TO_FAIL = 10
# Consecutive demuxer errors after which the rest of a file is given up (it ends there, as a truncated file does).
_MAX_DEMUX_ERRORS = 32


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is (H, W, 3) uint8 BGR; ``damaged``: the frame did not decode and ``image`` is the
    last good frame's (black before any)."""

    frame_idx: int
    ts_ms: float
    image: npt.NDArray[np.uint8]
    damaged: bool = False


def refuse_referencing_file(path: Path) -> None:
    """Refuse a playlist, manifest, concatenation list or session description: a file that names other files or
    addresses for a decoder to read (it would read outside the folders a server allows).

    Raises:
        InvalidInputError: ``path`` begins as such a file.
    """
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(_REFERENCING_MAGIC) or (b"<MPD" in head and b"urn:mpeg:dash" in head):
        raise NotAVideoError(
            f"video {path.name} is a playlist or manifest that names other files, not a video: give the video itself"
        )


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise NotFoundError(f"video {path.name} does not exist")
    if not path.is_file():
        raise InvalidInputError(f"video {path.name} is not a file")
    if path.stat().st_size == 0:
        raise InvalidInputError(f"video {path.name} is empty")
    refuse_referencing_file(path)
    try:
        # Local files only: no network address is opened whatever the file names; "file:" keeps a name with a colon
        # in it ("cam:2.mp4") from being read as a protocol.
        container = av.open(f"file:{path.absolute()}", mode="r", options={"protocol_whitelist": "file"})
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        url = f"file:{path.absolute()}"
        why = str(exc).replace(f": '{url}'", "").replace(url, path.name)  # FFmpeg's message names the file
        raise InvalidInputError(f"video {path.name} cannot be read: {why}") from exc
    if not container.streams.video:
        container.close()
        raise InvalidInputError(f"video {path.name} has no video stream")
    if set(container.format.name.split(",")) & _REFERENCING_DEMUXERS:  # e.g. "hls" or "mov,mp4,m4a,3gp,3g2,mj2"
        name = container.format.name
        container.close()
        raise NotAVideoError(f"video {path.name} is a {name} file that names other files, not a video")
    codec = container.streams.video[0].codec_context.name
    if container.format.name in _TEXT_DEMUXERS or codec in _TEXT_CODECS:
        container.close()  # FFmpeg renders any text file as "video" (its ANSI art demuxer): not footage
        raise NotAVideoError(f"video {path.name} is text ({container.format.name}, {codec}), not a video")
    return container


def _video_duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """The video stream's own length in seconds (0 when unknown): its header's, else the DURATION tag Matroska
    muxers write (where the stream ends: its start time is taken off), else the container's where the video is its
    only stream (an audio track may run longer)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = next((v for k, v in (stream.metadata or {}).items() if k.upper() == "DURATION"), "")
    if m := re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip()):
        end = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        return max(0.0, end - start) if start > 0 else end
    if len(container.streams) == 1 and container.duration:
        return float(container.duration / av.time_base)
    return 0.0


def _quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) of a display rotation in degrees; 0 for angles off a multiple of 90."""
    turns = round(rotation / 90.0)
    return turns % 4 if abs(rotation - 90.0 * turns) <= 1.0 else 0


def _upright(image: npt.NDArray[np.uint8], rotation: float, mirrored: bool = False) -> npt.NDArray[np.uint8]:
    """``image`` turned by its display rotation (degrees counter-clockwise), then flipped left to right where the
    display matrix mirrors it."""
    turns = _quarter_turns(rotation)
    if turns:
        image = np.rot90(image, turns)
    if mirrored:
        image = image[:, ::-1]
    return np.ascontiguousarray(image) if turns or mirrored else image


def _display(frame: av.VideoFrame) -> tuple[float, bool]:
    """``(rotation, mirrored)`` of a frame's display matrix: the rotation in degrees counter-clockwise, as FFmpeg's
    ``av_display_rotation_get`` gives it, and whether the matrix also mirrors the picture (a negative determinant, as
    QuickTime's "Flip Horizontal" writes). A mirrored matrix shows the picture turned by the rest of the matrix,
    then flipped left to right; its rotation is that rest's (FFmpeg's rotation of the whole matrix reads a flip as
    a half turn)."""
    rotation = float(getattr(frame, "rotation", 0.0) or 0.0)
    for data in getattr(frame, "side_data", ()):
        if "DISPLAYMATRIX" not in str(data.type).upper():
            continue
        m = np.frombuffer(bytes(data), "<i4")[:9].astype(np.float64) / 65536.0
        a, b, c, d = m[0], m[1], m[3], m[4]
        if a * d - b * c >= 0:
            return rotation, False
        a, c = -a, -c  # undo the flip: the matrix times diag(-1, 1, 1)
        ra, rb = np.hypot(a, c), np.hypot(b, d)
        if ra == 0 or rb == 0:
            return rotation, False
        return float(-np.degrees(np.arctan2(b / rb, a / ra))), True
    return rotation, False


def display_of(path: Path | str) -> tuple[float, bool]:
    """``(rotation, mirrored)`` of a video's first decodable frame (see :func:`_display`); ``(0, False)`` when none
    decodes."""
    with VideoReader(path) as reader:
        for _ in reader.frames(decode_images=False):
            break
        return reader.rotation, reader.mirrored


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
        #: whether the display matrix also mirrors the frames (flipped left to right after the rotation)
        self.mirrored = False
        #: times the timestamps restarted (joined recordings), bridged so that time keeps increasing
        self.timestamp_resets = 0
        #: frames decoded at another picture size than the first (the stream changed size): scaled to the first's
        self.rescaled_frames = 0
        #: the first decoded picture's (width, height) as stored (before any rotation); None before decoding
        self.picture_size: tuple[int, int] | None = None
        self._last_pts: int | None = None
        self._delay: int | None = None
        self._demuxed = self._emitted = 0

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
        """Frames ``start <= frame_idx < end`` in order, with container timestamps (damaged ones marked, see the
        module).

        Args:
            start: first frame index (0-based).
            end: one past the last frame index; None reads to the end.
            decode_images: False yields empty images (timestamps only; much faster).

        Raises:
            InvalidInputError: no frame decodes, ``start`` is past the last frame, or too many frames are damaged.
        """
        if start < 0 or (end is not None and end < start):
            raise InvalidInputError(f"bad frame range [{start}, {end})")
        tb = self._stream.time_base or Fraction(1, 1000)
        nominal_step = round(1 / ((self.nominal_fps or 25.0) * tb)) if tb else 1
        first_pts: int | None = None
        prev: int | None = None  # the previous frame's timestamp (ticks), after any restart was bridged
        step = max(1, nominal_step)  # the last step between frames (ticks)
        offset = 0
        steps: collections.deque[int] = collections.deque(maxlen=15)
        idx = damaged = 0
        self.timestamp_resets = self.rescaled_frames = 0
        size: tuple[int, int] | None = None  # the first decoded picture's (width, height)
        empty = np.zeros((0, 0, 3), np.uint8)
        last_image: npt.NDArray[np.uint8] | None = None
        last_good: av.VideoFrame | None = None  # before ``start``: the last frame that decoded, not yet converted
        for pts, frame in self._presented():
            if pts is None:  # no timestamps at all: fall back to the nominal rate
                ts_ms = idx * 1000.0 / (self.nominal_fps or 25.0)
            else:
                if first_pts is None:
                    first_pts = pts
                cur = pts + offset
                if prev is not None and cur < prev:
                    # A frame stamped a little early (a muxer's jitter, a decoder filling its reorder buffer: at
                    # most two usual steps back) keeps the time before it; a larger jump back is a restart
                    # (recordings joined end to end), bridged one usual step on.
                    if prev - cur > 2 * step:
                        offset = prev + step - pts
                        self.timestamp_resets += 1
                        cur = prev + step
                    else:
                        cur = prev
                if prev is not None and cur > prev:
                    steps.append(cur - prev)
                    step = int(np.median(steps))  # the usual step of the last 15: a pause does not make it long
                prev = cur
                ts_ms = float((cur - first_pts) * tb * 1000)
            if frame is not None and size is None:
                self.rotation, self.mirrored = _display(frame)
                size = self.picture_size = (frame.width, frame.height)
            if frame is not None and size is not None and (frame.width, frame.height) != size:
                self.rescaled_frames += 1
                frame = frame.reformat(width=size[0], height=size[1])
            if frame is None:
                damaged += 1
            if idx >= start:
                if end is not None and idx >= end:
                    return
                if not decode_images:
                    image = empty
                elif frame is not None:
                    image = last_image = self._image(frame)
                else:
                    if last_image is None and last_good is not None:
                        last_image = self._image(last_good)
                    image = last_image.copy() if last_image is not None else self._black()
                yield Frame(idx, ts_ms, image, damaged=frame is None)
            elif frame is not None and decode_images:
                last_good = frame
            idx += 1
        if idx == damaged:
            raise InvalidInputError(f"video {self.path.name} has no decodable frames")
        self._check_damage(damaged, idx)
        if start >= idx:
            raise InvalidInputError(f"video {self.path.name}: start frame {start} is past the last frame {idx - 1}")

    def _image(self, frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
        """A decoded frame's picture, BGR and upright."""
        return _upright(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8), self.rotation, self.mirrored)

    def _black(self) -> npt.NDArray[np.uint8]:
        ctx = self._stream.codec_context
        black = np.zeros((max(1, int(ctx.height)), max(1, int(ctx.width)), 3), np.uint8)
        return _upright(black, self.rotation, self.mirrored)

    def _check_damage(self, damaged: int, total: int) -> None:
        if damaged > MIN_DAMAGED_TO_FAIL and damaged > MAX_DAMAGED_FRACTION * total:
            raise InvalidInputError(f"video {self.path.name} is corrupt: {damaged} of its {total} frames do not decode")

    def _presented(self) -> Iterator[tuple[int | None, av.VideoFrame | None]]:
        """``(pts, frame)`` in presentation order; ``frame`` None for a frame lost to a packet that did not decode.

        Every packet demuxed with a timestamp is one frame to present. Once a packet has failed to decode, a
        packet's timestamp that the decoder passes over without giving its frame is a lost frame; before any failure
        nothing is inferred (some codecs have packets that present no frame of their own). AVI stores no
        presentation times: its frames' pts are counters that decoding with B-frames scrambles, while their dts
        count the frames in the order they are shown, so there a frame's time is its dts, and a lost frame is a
        counter the decoded frames skip.
        """
        counters = self._container.format.name == "avi"
        waiting: list[int] = []  # timestamps of packets demuxed and not yet presented (a min-heap)
        failures = demux_errors = 0
        self._last_pts = None  # the latest time given
        packets = self._container.demux(self._stream)
        flushed = False
        first_key: int | None = None  # the first packet's timestamp
        self._delay = None  # AVI: how many counters a decoded frame's dts runs ahead of its own (the decoder's delay)
        self._demuxed = self._emitted = 0  # frames the packets hold, frames given (stand-ins included)
        while True:
            try:
                packet = next(packets)
                demux_errors = 0
            except StopIteration:
                flushed = True  # PyAV's demuxing ends with the packets that drain the decoder
                break
            except av.error.FFmpegError as exc:
                demux_errors += 1
                failures += 1
                log.debug("video %s: unreadable data after pts %s: %s", self.path.name, self._last_pts, exc)
                if demux_errors >= _MAX_DEMUX_ERRORS:
                    log.warning("video %s: %d read errors in a row; the rest is given up", self.path.name, demux_errors)
                    break
                packets = self._container.demux(self._stream)  # a generator that raised is spent: read on
                continue
            key = packet.dts if counters else packet.pts
            if packet.size and key is not None and not packet.is_discard:
                heapq.heappush(waiting, key)
                self._demuxed += 1
                if first_key is None:
                    first_key = key
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                failures += 1
                log.debug("video %s: a packet near pts %s does not decode: %s", self.path.name, packet.pts, exc)
                continue
            for frame in decoded:
                if counters and self._delay is None and frame.dts is not None and first_key is not None:
                    # Packets that failed before the first frame out are taken as the first frames (exact for an
                    # intra codec, which has no delay; with B-frames the stand-ins may sit a few frames off).
                    self._delay = max(0, frame.dts - first_key - failures)
                if counters and self._delay is None:
                    self._delay = 0
                yield from self._placed(frame, counters, failures, waiting)
        if not flushed:  # given up before the end: the frames the decoder holds are good ones
            try:
                for frame in self._stream.codec_context.decode(None):
                    yield from self._placed(frame, counters, failures, waiting)
            except av.error.FFmpegError as exc:
                log.debug("video %s: draining the decoder: %s", self.path.name, exc)
        if failures:  # frames after the last presented one whose packets did not decode
            last_pts = self._last_pts
            for lost in sorted(set(waiting)):
                if (last_pts is None or lost > last_pts) and (not counters or self._emitted < self._demuxed):
                    self._emitted += 1
                    yield lost, None

    def _placed(
        self, frame: av.VideoFrame, counters: bool, failures: int, waiting: list[int]
    ) -> Iterator[tuple[int | None, av.VideoFrame | None]]:
        """A decoded frame with its time, after the lost frames before it (see :meth:`_presented`); moves
        ``_last_pts`` on."""
        last_pts = self._last_pts
        pts: int | None
        if counters:  # a frame's own counter: its dts less the decoder's delay; the last ones out carry none
            if frame.dts is not None:
                pts = frame.dts - (self._delay or 0)
            else:
                pts = last_pts + 1 if last_pts is not None else None
            if pts is not None and last_pts is not None:
                pts = max(pts, last_pts + 1)
        else:
            pts = frame.pts if frame.pts is not None else frame.dts
        if pts is not None:
            while waiting and waiting[0] < pts:  # passed over
                lost = heapq.heappop(waiting)
                # In AVI no more stand-ins than packets left unmatched beyond the decoder's delay: a misjudged
                # delay must not add frames the file does not hold.
                room = not counters or self._demuxed - self._emitted - (self._delay or 0) > 1
                if failures and (last_pts is None or lost > last_pts) and room:
                    self._emitted += 1
                    yield lost, None
            if waiting and waiting[0] == pts:
                heapq.heappop(waiting)
            last_pts = pts if last_pts is None else max(last_pts, pts)
        self._last_pts = last_pts
        self._emitted += 1
        yield pts, frame


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
        frames = list(reader.frames(decode_images=False))
        ts = np.array([f.ts_ms for f in frames], dtype=np.float64)
        damaged = tuple(f.frame_idx for f in frames if f.damaged)
        if reader.picture_size is not None:  # what the frames come at (a header can say otherwise)
            width, height = reader.picture_size
        fps = reader.nominal_fps
        declared_s = _video_duration_s(reader._container, stream)
        declared = int(stream.frames or 0)  # what the container's index lists (0: unknown)
        if "avi" in (reader._container.format.name or "").split(",") and declared and fps > 0:
            # AVI's header counts the frame slots written (a dropped frame keeps an empty one); the duration FFmpeg
            # reports for a file whose index at the end is cut off comes from the packets that remain, so it always
            # agrees with what decodes. The slots at the stream's rate are the length the file promises.
            declared_s = declared / fps
        if not declared and fps > 0:  # Matroska, WebM: no frame count, a duration
            declared = round(declared_s * fps)
        tick_ms = float(stream.time_base * 1000) if stream.time_base else 0.0
        if _quarter_turns(reader.rotation) % 2 == 1:  # a quarter turn: the frames come upright (see the module)
            width, height = height, width
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"video {Path(path).name}: invalid frame size {width}x{height}")
    dts = np.diff(ts)
    vfr = bool(len(dts) > 1 and np.median(dts) > 0 and np.std(dts) / np.median(dts) > _VFR_TOLERANCE)
    if vfr:  # a constant rate whose timestamps round to the time base (60 fps in ms: 16 and 17 ms steps)?
        mean = float(ts[-1] - ts[0]) / (len(ts) - 1)
        drift = np.abs(ts - (ts[0] + mean * np.arange(len(ts)))).max()
        vfr = not (np.abs(dts - mean).max() <= tick_ms + 1e-6 and drift <= tick_ms + 1e-6)
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
    info = VideoInfo(
        width,
        height,
        len(ts),
        fps,
        vfr,
        duration,
        declared,
        damaged,
        reader.timestamp_resets,
        reader.rescaled_frames,
        declared_s * 1000.0,
    )
    if info.truncated:
        log.warning(
            "video %s: its container lists %d frames but %d decode (a truncated or damaged file?); labels cover the "
            "frames that decode",
            Path(path).name,
            declared,
            len(ts),
        )
    if damaged:
        log.warning(
            "video %s: %d frames do not decode (damaged packets), from frame %d: kept in place with no labels of "
            "their own",
            Path(path).name,
            len(damaged),
            damaged[0],
        )
    return info, ts


def read_frames(path: Path | str, start: int = 0, end: int | None = None) -> Iterator[Frame]:
    """Convenience generator: decoded frames ``[start, end)`` of the video at ``path``."""
    with VideoReader(path) as reader:
        yield from reader.frames(start, end)
