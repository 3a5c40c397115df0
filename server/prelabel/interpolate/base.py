"""Interpolation extension point: the frame-source and method protocols, and the result types.

A method interpolates boxes over one *run*: a sequence of consecutive visible keyframes (no outside keyframe inside
it). The public entry point (:func:`prelabel.interpolate.interpolate_track`) splits a track into runs, applies the
method, handles outside spans the way CVAT does, and ranks suggested keyframes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from prelabel.types import BoolArray, Detections, FloatArray, IntArray, Skeleton, Source, Track, TrackedBox

Float64Array = npt.NDArray[np.float64]


@runtime_checkable
class FrameSource(Protocol):
    """Random access to a video's decoded frames.

    Attributes:
        num_frames: number of frames; valid indices are ``0 .. num_frames - 1``.
    """

    @property
    def num_frames(self) -> int:
        """Number of frames in the video."""
        ...

    def read(self, frame_idx: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_idx`` as (H, W, 3) uint8 BGR or (H, W) uint8 grey."""
        ...


@dataclass(frozen=True)
class RunInput:
    """What a method sees of one run of visible keyframes.

    Attributes:
        track_id: the track, for error messages.
        key_frames: (K,) int64 strictly increasing keyframe indices, K >= 1.
        key_xyxy: (K, 4) float64 keyframe boxes in pixels.
        video: frames, when the caller gave a video.
        detections: per-frame detector output near the track, when given (any class; the method filters).
    """

    track_id: int
    key_frames: IntArray
    key_xyxy: Float64Array
    video: FrameSource | None = None
    detections: Mapping[int, Detections] | None = None

    @property
    def frames(self) -> IntArray:
        """(T,) int64 every frame from the first to the last keyframe."""
        return np.arange(int(self.key_frames[0]), int(self.key_frames[-1]) + 1, dtype=np.int64)


@dataclass
class RunEstimate:
    """A method's answer for one run: one box per frame from the first to the last keyframe.

    Attributes:
        xyxy: (T, 4) float64 boxes in pixels; rows at keyframes equal the keyframe boxes exactly.
        confidence: (T,) float64 in [0, 1]; 1 at keyframes.
        uncertainty: (T,) float64 >= 0, the method's own disagreement/uncertainty in pixels (0 at keyframes); used to
            rank suggested keyframes.
        method: (T,) names of the method that produced each frame.
        reason: short text explaining what the uncertainty measures (used in suggestions).
        support: (T,) float64 in [0, 1], how much of each frame the frames themselves support (visual methods);
            None for methods that do not look at frames.
    """

    xyxy: Float64Array
    confidence: Float64Array
    uncertainty: Float64Array
    method: list[str]
    reason: str = "distance from keyframes"
    support: Float64Array | None = None


@runtime_checkable
class InterpolationMethod(Protocol):
    """One way of filling boxes between keyframes.

    Attributes:
        name: registry name (``"linear"``, ``"spline"``, ...).
        needs_video: True when the method cannot run without frames.
    """

    name: str
    needs_video: bool

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """Boxes for every frame of ``run`` (see :class:`RunEstimate`)."""
        ...


@dataclass(frozen=True)
class SuggestedKeyframe:
    """A frame where one more keyframe is worth placing.

    Attributes:
        frame_idx: 0-based frame.
        score: higher means more worth a keyframe (the method's uncertainty there, in [0, 1]).
        reason: what makes the frame uncertain.
    """

    frame_idx: int
    score: float
    reason: str


@dataclass
class InterpolationResult:
    """Dense boxes/skeletons for every frame from a track's first to its last keyframe.

    Attributes:
        track_id: the track.
        method: the method requested (``"auto"`` included); per-frame methods are in :attr:`frame_methods`.
        frames: (T,) int64 consecutive frame indices.
        xyxy: (T, 4) float32 boxes in pixels; NaN where :attr:`has_box` is False.
        has_box: (T,) bool, False where outside or where the keyframes carry no box.
        outside: (T,) bool, True where the object is out of view (CVAT "outside").
        is_keyframe: (T,) bool.
        confidence: (T,) float32 in [0, 1]; 1 at keyframes, 0 where outside.
        frame_methods: (T,) the method that produced each frame (``"keyframe"`` at keyframes, ``""`` outside).
        keypoints: (T, 17, 3) float32 ``x, y, confidence`` when any keyframe has a skeleton, else None.
        keypoints_present: (T, 17) bool, False for missing keypoints (and on frames without a skeleton).
        has_skeleton: (T,) bool.
        suggestions: ranked suggested keyframes, best first.
    """

    track_id: int
    method: str
    frames: IntArray
    xyxy: FloatArray
    has_box: BoolArray
    outside: BoolArray
    is_keyframe: BoolArray
    confidence: FloatArray
    frame_methods: list[str]
    keypoints: FloatArray | None = None
    keypoints_present: BoolArray | None = None
    has_skeleton: BoolArray = field(default_factory=lambda: np.zeros(0, bool))
    skeleton_scores: FloatArray | None = None  # (T,) a keyframe skeleton's own score; NaN elsewhere
    suggestions: list[SuggestedKeyframe] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def skeleton_at(self, i: int) -> Skeleton | None:
        """The skeleton at row ``i`` (not frame index), or None."""
        if self.keypoints is None or self.keypoints_present is None or not self.has_skeleton[i]:
            return None
        present = self.keypoints_present[i]
        keyed = self.skeleton_scores is not None and bool(np.isfinite(self.skeleton_scores[i]))
        if keyed:  # an annotator's keyframe comes back as it was sent
            conf = float(self.skeleton_scores[i])  # type: ignore[index]
        else:
            conf = float(self.keypoints[i, present, 2].mean()) if present.any() else 0.0
        return Skeleton(self.keypoints[i], present, conf)

    def to_track(self, skeleton_boxes: bool = False) -> Track:
        """The visible frames with a box as a :class:`Track` (keyframes as ``Source.KEYFRAME``, others
        ``INTERPOLATED``); with ``skeleton_boxes``, also the frames with a skeleton and no box (a skeleton-only
        track), boxed by their present keypoints (a skeleton with none present is left out)."""
        boxes: list[TrackedBox] = []
        for i, f in enumerate(self.frames.tolist()):
            if self.outside[i]:
                continue
            skeleton = self.skeleton_at(i)
            xyxy = self.xyxy[i] if self.has_box[i] else None
            if xyxy is None and skeleton_boxes and skeleton is not None:
                xyxy = skeleton.box()
            if xyxy is None:
                continue
            src = Source.KEYFRAME if self.is_keyframe[i] else Source.INTERPOLATED
            boxes.append(TrackedBox(f, xyxy, float(self.confidence[i]), src, skeleton=skeleton))
        return Track(self.track_id, boxes)
