"""Domain types shared by every part of prelabel.

Conventions (DESIGN.md): boxes are ``xyxy`` float pixels in the source frame; ``frame_idx`` is 0-based in the decoded
stream; ``ts_ms`` comes from the container; track IDs are positive ints; skeletons are COCO-17 with an explicit
``present`` flag per keypoint. "Outside" (CVAT) / "enabled=false" (Label Studio) is modelled here once, as gaps in a
:class:`Track` (frames between its first and last frame where it has no box).
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

COCO17_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(COCO17_KEYPOINTS)
# Largest frame index a keyframe may hold: frame indices are 64-bit integers in the arrays that carry them.
MAX_FRAME_IDX = 2**62
# Most frames one track's keyframes may be filled over where no video bounds them: 2,000,000 frames are 18 hours at
# 30 frames per second, and their boxes, confidences and skeletons take about a GB while filled; a keyframe number off
# by a few digits would otherwise have the process allocate until it fails.
MAX_TRACK_FRAMES = 2_000_000

# Limb edges (0-based keypoint indices), as drawn by COCO tools.
COCO17_EDGES: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

# COCO keypoint sigmas (OKS), in COCO17 order.
COCO17_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087,
    0.089, 0.089,
)  # fmt: skip


class Source(enum.IntEnum):
    """Where a proposal came from; values match ``prelabel.v1.Source``."""

    UNSPECIFIED = 0
    DETECTOR = 1
    TRACKER = 2
    FILLED = 3
    SMOOTHED = 4
    KEYFRAME = 5
    INTERPOLATED = 6
    RULE = 7
    MODEL = 8


def _finite(name: str, arr: np.ndarray) -> None:
    if arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise InvalidInputError(f"{name}: row {bad} is not finite (NaN or inf)")


def validate_xyxy(xyxy: np.ndarray, name: str = "boxes") -> FloatArray:
    """Return ``xyxy`` as a float32 array of shape (N, 4) after checking shape, finiteness and x2>=x1, y2>=y1.

    Raises:
        InvalidInputError: naming the first offending row.
    """
    arr = np.asarray(xyxy, dtype=np.float32)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InvalidInputError(f"{name}: expected shape (N, 4) xyxy, got {arr.shape}")
    _finite(name, arr)
    neg = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if np.any(neg):
        bad = int(np.argmax(neg))
        raise InvalidInputError(f"{name}: row {bad} has negative width or height: {arr[bad].tolist()}")
    return arr


@dataclass(frozen=True)
class VideoInfo:
    """What a decoder knows of a video before reading its frames.

    ``fps`` is the container's rate where the frames' timestamps agree with it, else the timestamps' mean rate (at a
    variable rate, the one rate that keeps frames placed at it closest to their own times; each frame's own time is
    its ``ts_ms``).
    """

    width: int
    height: int
    num_frames: int
    fps: float
    variable_frame_rate: bool = False
    duration_ms: float = 0.0
    declared_frames: int = 0  # the frames the container lists (0: not known); more than decode: a truncated file
    damaged_frames: tuple[int, ...] = ()  # frames whose packets did not decode (kept in place; see video.decode)
    timestamp_resets: int = 0  # times the timestamps restarted (joined recordings): bridged, time keeps increasing
    rescaled_frames: int = 0  # frames at another picture size than the first, scaled to it
    declared_duration_ms: float = 0.0  # how long the container says the video is (0: not known)

    @property
    def truncated(self) -> bool:
        """Whether the container promises clearly more video than decodes (a file cut short or damaged): by duration
        where it states one (its frame count can include frames an edit list hides, or rest on a nominal rate
        above a variable one), else by frame count."""
        if self.declared_duration_ms > 0 and self.duration_ms > 0:
            step = self.duration_ms / max(1, self.num_frames)
            return self.declared_duration_ms > self.duration_ms + max(2.0 * step, 0.02 * self.declared_duration_ms)
        return self.declared_frames > self.num_frames + max(1, self.declared_frames // 50)


@dataclass
class Detections:
    """Detections in one image.

    Attributes:
        xyxy: (N, 4) float32 pixel boxes.
        scores: (N,) float32 in [0, 1].
        class_ids: (N,) int64.
        class_names: names indexed by class id (the model's names), may be empty.
        keypoints: optional (N, 17, 3) float32 ``x, y, confidence`` when the model is a pose model.
    """

    xyxy: FloatArray
    scores: FloatArray
    class_ids: IntArray
    class_names: Sequence[str] = ()
    keypoints: FloatArray | None = None

    def __post_init__(self) -> None:
        self.xyxy = validate_xyxy(self.xyxy, "detections.xyxy")
        n = len(self.xyxy)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if self.scores.shape != (n,):
            raise InvalidInputError(f"detections.scores: expected shape ({n},), got {self.scores.shape}")
        if self.class_ids.shape != (n,):
            raise InvalidInputError(f"detections.class_ids: expected shape ({n},), got {self.class_ids.shape}")
        _finite("detections.scores", self.scores)
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
            if self.keypoints.shape != (n, NUM_KEYPOINTS, 3):
                raise InvalidInputError(
                    f"detections.keypoints: expected shape ({n}, {NUM_KEYPOINTS}, 3), got {self.keypoints.shape}"
                )

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls, class_names: Sequence[str] = ()) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), class_names)

    def class_name(self, i: int) -> str:
        """Name of detection ``i``'s class, or its id as text when the names are unknown."""
        cid = int(self.class_ids[i])
        return self.class_names[cid] if 0 <= cid < len(self.class_names) else str(cid)

    def select(self, mask: npt.ArrayLike) -> Detections:
        """The detections where ``mask`` (bool or index array) selects."""
        idx = np.asarray(mask)
        kp = None if self.keypoints is None else self.keypoints[idx]
        return Detections(self.xyxy[idx], self.scores[idx], self.class_ids[idx], self.class_names, kp)


@dataclass
class Skeleton:
    """One person's COCO-17 skeleton.

    Attributes:
        keypoints: (17, 3) float32 ``x, y, confidence`` in pixels.
        present: (17,) bool; False marks a missing keypoint (its x, y are meaningless and never invented).
        score: overall confidence in [0, 1].
    """

    keypoints: FloatArray
    present: BoolArray
    score: float = 1.0

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.shape != (NUM_KEYPOINTS, 3):
            raise InvalidInputError(
                f"skeleton.keypoints: expected shape ({NUM_KEYPOINTS}, 3), got {self.keypoints.shape}"
            )
        self.present = np.asarray(self.present, dtype=bool).reshape(-1)
        if self.present.shape != (NUM_KEYPOINTS,):
            raise InvalidInputError(f"skeleton.present: expected shape ({NUM_KEYPOINTS},), got {self.present.shape}")
        if not np.all(np.isfinite(self.keypoints[self.present])):
            raise InvalidInputError("skeleton.keypoints: a present keypoint is not finite")
        unset = ~self.present[:, None] & ~np.isfinite(self.keypoints)
        if unset.any():  # a missing keypoint's values mean nothing; clients may send NaN there
            self.keypoints = np.where(unset, np.float32(0.0), self.keypoints).astype(np.float32)

    @classmethod
    def empty(cls) -> Skeleton:
        """A skeleton with no keypoint present (at a keyframe: no skeleton from here)."""
        return cls(np.zeros((NUM_KEYPOINTS, 3), np.float32), np.zeros(NUM_KEYPOINTS, bool), 0.0)

    def box(self) -> FloatArray | None:
        """(4,) float32 ``xyxy`` around the present keypoints, or None when none is present."""
        if not self.present.any():
            return None
        pts = self.keypoints[self.present, :2]
        return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], dtype=np.float32)

    @classmethod
    def from_array(cls, kpts: npt.ArrayLike, min_conf: float = 0.0, score: float | None = None) -> Skeleton:
        """Build from a (17, 3) array; keypoints with confidence <= ``min_conf`` or non-finite are missing."""
        arr = np.asarray(kpts, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
        present = np.isfinite(arr).all(axis=1) & (arr[:, 2] > min_conf)
        arr = np.where(present[:, None], arr, 0.0).astype(np.float32)
        s = float(arr[present, 2].mean()) if score is None and present.any() else float(score or 0.0)
        return cls(arr, present, s)


@dataclass
class TrackedBox:
    """One object in one frame of a track."""

    frame_idx: int
    xyxy: FloatArray
    score: float
    source: Source = Source.DETECTOR
    ts_ms: float = 0.0
    skeleton: Skeleton | None = None

    def __post_init__(self) -> None:
        self.xyxy = validate_xyxy(np.asarray(self.xyxy, dtype=np.float32).reshape(1, 4), "box")[0]


@dataclass
class Track:
    """One identity over time: boxes in increasing frame order, with gaps where the object is outside/unseen.

    Attributes:
        track_id: positive, stable for the whole video.
        boxes: per-frame entries, strictly increasing ``frame_idx``.
        class_id, class_name: the object's class.
    """

    track_id: int
    boxes: list[TrackedBox] = field(default_factory=list)
    class_id: int = 0
    class_name: str = ""

    def __post_init__(self) -> None:
        if self.track_id <= 0:
            raise InvalidInputError(f"track_id must be positive, got {self.track_id}")
        frames = [b.frame_idx for b in self.boxes]
        for prev, cur in itertools.pairwise(frames):
            if cur <= prev:
                raise InvalidInputError(
                    f"track {self.track_id} frame {cur}: frames must be strictly increasing (frame {prev} before it)"
                )

    @property
    def frames(self) -> IntArray:
        """(T,) int64 frame indices."""
        return np.array([b.frame_idx for b in self.boxes], dtype=np.int64)

    @property
    def xyxy(self) -> FloatArray:
        """(T, 4) float32 boxes."""
        if not self.boxes:
            return np.zeros((0, 4), np.float32)
        return np.stack([b.xyxy for b in self.boxes]).astype(np.float32)

    def gaps(self) -> list[tuple[int, int]]:
        """Inclusive frame ranges between the first and last box where the track has no box ("outside")."""
        f = self.frames
        out: list[tuple[int, int]] = []
        for a, b in itertools.pairwise(f.tolist()):
            if b - a > 1:
                out.append((int(a) + 1, int(b) - 1))
        return out

    def at(self, frame_idx: int) -> TrackedBox | None:
        """The box at ``frame_idx``, or None when the track is outside there (a binary search over the boxes)."""
        i = bisect.bisect_left(self.boxes, frame_idx, key=lambda b: b.frame_idx)
        return self.boxes[i] if i < len(self.boxes) and self.boxes[i].frame_idx == frame_idx else None

    def __iter__(self) -> Iterator[TrackedBox]:
        return iter(self.boxes)

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class Keyframe:
    """An annotator's keyframe: a box and/or a skeleton at one frame, or the start of an outside span."""

    frame_idx: int
    xyxy: FloatArray | None = None
    skeleton: Skeleton | None = None
    outside: bool = False

    def __post_init__(self) -> None:
        frame = self.frame_idx
        if isinstance(frame, float | np.floating) and float(frame).is_integer():
            self.frame_idx = frame = int(frame)
        if not isinstance(frame, int | np.integer) or isinstance(frame, bool):
            raise InvalidInputError(f"keyframe frame_idx must be a whole frame number, got {frame!r}")
        if frame < 0:
            raise InvalidInputError(f"keyframe frame_idx must be >= 0, got {frame}")
        if frame > MAX_FRAME_IDX:
            raise InvalidInputError(f"keyframe frame_idx must be at most {MAX_FRAME_IDX}, got {frame}")
        if self.xyxy is not None:
            box = np.asarray(self.xyxy, np.float32).reshape(-1)
            if box.shape != (4,):
                raise InvalidInputError(f"keyframe at frame {frame}: expected a box of 4 values, got {box.size}")
            if not np.isfinite(box).all():
                raise InvalidInputError(f"keyframe at frame {frame}: box {box.tolist()} holds NaN or inf")
            if box[2] < box[0] or box[3] < box[1]:
                raise InvalidInputError(
                    f"keyframe at frame {frame}: box {box.tolist()} has a negative width or height (x1, y1, x2, y2)"
                )
            self.xyxy = box
        if not self.outside and self.xyxy is None and self.skeleton is None:
            raise InvalidInputError(f"keyframe {self.frame_idx}: needs a box or a skeleton unless outside")


@dataclass
class Segment:
    """An action segment of one track: ``[start_frame, end_frame]`` inclusive."""

    track_id: int
    label: str
    start_frame: int
    end_frame: int
    start_ts_ms: float = 0.0
    end_ts_ms: float = 0.0
    confidence: float = 1.0
    start_uncertainty_frames: int = 0
    end_uncertainty_frames: int = 0
    source: Source = Source.RULE
    method: str = ""

    def __post_init__(self) -> None:
        if self.end_frame < self.start_frame:
            raise InvalidInputError(
                f"segment {self.label!r} of track {self.track_id}: end_frame {self.end_frame} < start_frame "
                f"{self.start_frame}"
            )

    @property
    def num_frames(self) -> int:
        """Length in frames (inclusive bounds)."""
        return self.end_frame - self.start_frame + 1
