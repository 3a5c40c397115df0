"""The neutral in-memory result that every exporter reads and every importer returns.

:class:`Annotations` holds one video's tracks (dense, with gaps where an object is outside), action segments and,
when it came from an annotation tool, the annotator's keyframes per track (:class:`KeyframeTrack`), which is what an
interpolation request takes. Frame indices are 0-based and boxes ``xyxy`` pixels, as everywhere in prelabel; each
format module converts at its own edge.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.types import Keyframe, Segment, Track, VideoInfo

Float64Array = npt.NDArray[np.float64]


@dataclass
class KeyframeTrack:
    """An annotator's keyframes for one object, ready for an interpolation request.

    Attributes:
        track_id: positive, the object's identity in the file it came from.
        label: the object's class name.
        keyframes: in strictly increasing ``frame_idx``; a keyframe with ``outside=True`` starts a span where the
            object is out of view, which lasts until the next keyframe.
        source: how the file names the object, for messages (``CVAT track id=4``, ``task 0 region 'aB3'``);
            ``track_id`` is prelabel's, which the file may not show.
        tool_ids: the file's own ids of the object, for reports a tool reads back (``{"cvat_track_ids": [4, 5]}``:
            its box track and its skeleton track; ``{"region_id": "aB3"}``); empty where the file has none.
    """

    track_id: int
    label: str
    keyframes: list[Keyframe] = field(default_factory=list)
    source: str = ""
    tool_ids: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.track_id <= 0:
            raise InvalidInputError(f"keyframe track: track_id must be positive, got {self.track_id}")
        frames = [k.frame_idx for k in self.keyframes]
        for a, b in itertools.pairwise(frames):
            if b <= a:
                raise InvalidInputError(
                    f"keyframe track {self.track_id}: frames must be strictly increasing, got {a} then {b}"
                )

    @property
    def frames(self) -> list[int]:
        """Frame indices of the keyframes, in order."""
        return [k.frame_idx for k in self.keyframes]


def labelled_run(frames: Iterable[int], num_frames: int) -> tuple[int, int] | None:
    """``(start, end)`` of ``frames`` when they are one run of consecutive frames short of a ``num_frames``-frame
    video (the frames a run over part of it labelled, as an export of it lists them), else None."""
    got = sorted(set(frames))
    if not got or num_frames <= 0 or got[-1] - got[0] + 1 != len(got) or len(got) >= num_frames:
        return None
    return got[0], got[-1] + 1


@dataclass
class Annotations:
    """Everything one video's labels say, independent of any file format.

    Attributes:
        info: the video's size, frame count and nominal frame rate.
        tracks: dense tracks (one box per frame where the object is in view; gaps are "outside").
        segments: action segments, each tied to a track id (0 when the file did not say which track).
        ts_ms: optional (num_frames,) float64 container timestamps in milliseconds, indexed by frame.
        labels: object class names in class-id order (``Track.class_id`` indexes it when it is in range).
        action_labels: action names used by ``segments`` (kept in this order by exporters that list them).
        keyframe_tracks: the annotator's keyframes per track, filled by importers of annotation-tool formats.
        name: the video's name (file name or task name), used where a format wants one.
        labelled: ``(start, end)``, end exclusive: the only frames that were labelled (a run over part of the
            video); None: every frame. Formats that list frames (COCO images, YOLO label files) list these only, so
            that a frame nobody looked at is not read as one without objects.
    """

    info: VideoInfo
    tracks: list[Track] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    ts_ms: Float64Array | None = None
    labels: tuple[str, ...] = ()
    action_labels: tuple[str, ...] = ()
    keyframe_tracks: list[KeyframeTrack] = field(default_factory=list)
    name: str = "video"
    labelled: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        self.action_labels = tuple(self.action_labels)
        ids = [t.track_id for t in self.tracks]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InvalidInputError(f"annotations: track {dup} appears more than once")
        n = self.info.num_frames
        if n > 0:
            for t in self.tracks:
                if t.boxes and (t.boxes[0].frame_idx < 0 or t.boxes[-1].frame_idx >= n):
                    raise InvalidInputError(
                        f"annotations: track {t.track_id} has frames {t.boxes[0].frame_idx}..{t.boxes[-1].frame_idx}"
                        f", expected within 0..{n - 1}"
                    )
        if self.ts_ms is not None:
            self.ts_ms = np.asarray(self.ts_ms, dtype=np.float64).reshape(-1)
            if n > 0 and self.ts_ms.shape != (n,):
                raise InvalidInputError(f"annotations.ts_ms: expected shape ({n},), got {self.ts_ms.shape}")

    @property
    def labelled_frames(self) -> range:
        """The frames that were labelled: ``labelled`` (within the video), else every frame."""
        if self.labelled is None:
            return range(self.num_frames)
        start, end = self.labelled
        return range(max(start, 0), min(end, self.info.num_frames) if self.info.num_frames > 0 else end)

    @property
    def num_frames(self) -> int:
        """Frames in the video: ``info.num_frames``, or one past the last labelled frame when that is unknown."""
        if self.info.num_frames > 0:
            return self.info.num_frames
        last = [t.boxes[-1].frame_idx for t in self.tracks if t.boxes]
        last += [s.end_frame for s in self.segments]
        last += [kt.keyframes[-1].frame_idx for kt in self.keyframe_tracks if kt.keyframes]
        return max(last) + 1 if last else 0

    def frame_ts_ms(self, frame_idx: int) -> float:
        """Timestamp of ``frame_idx`` in ms: from ``ts_ms`` when known, else ``frame_idx * 1000 / fps``, else 0."""
        if self.ts_ms is not None and 0 <= frame_idx < len(self.ts_ms):
            return float(self.ts_ms[frame_idx])
        return frame_idx * 1000.0 / self.info.fps if self.info.fps > 0 else 0.0

    def class_name(self, track: Track) -> str:
        """The track's class name, falling back to ``labels[class_id]`` and then to ``"object"``."""
        if track.class_name:
            return track.class_name
        if 0 <= track.class_id < len(self.labels):
            return self.labels[track.class_id]
        return "object"

    def all_labels(self) -> tuple[str, ...]:
        """``labels`` followed by any class name used by a track that ``labels`` lacks, in first-use order."""
        out = list(self.labels)
        for t in self.tracks:
            name = self.class_name(t)
            if name not in out:
                out.append(name)
        return tuple(out)

    def all_action_labels(self) -> tuple[str, ...]:
        """``action_labels`` followed by any segment label it lacks, in first-use order."""
        out = list(self.action_labels)
        for s in self.segments:
            if s.label not in out:
                out.append(s.label)
        return tuple(out)

    def track(self, track_id: int) -> Track:
        """The track with ``track_id``.

        Raises:
            InvalidInputError: when there is none.
        """
        for t in self.tracks:
            if t.track_id == track_id:
                return t
        raise InvalidInputError(f"annotations: no track {track_id}")

    def segments_of(self, track_id: int) -> list[Segment]:
        """Segments tied to ``track_id``, in start order."""
        return sorted((s for s in self.segments if s.track_id == track_id), key=lambda s: (s.start_frame, s.label))


def frame_runs(frames: Sequence[int] | npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` runs of consecutive frames in a strictly increasing frame list."""
    f = [int(x) for x in frames]
    if not f:
        return []
    runs: list[tuple[int, int]] = []
    start = prev = f[0]
    for x in f[1:]:
        if x != prev + 1:
            runs.append((start, prev))
            start = x
        prev = x
    runs.append((start, prev))
    return runs


def segment_runs(flags: npt.ArrayLike, offset: int = 0) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` frame ranges where a boolean per-frame array is True, shifted by ``offset``."""
    arr = np.asarray(flags, dtype=bool).reshape(-1)
    return [(a + offset, b + offset) for a, b in frame_runs(np.flatnonzero(arr))]
