"""Keyframe interpolation: methods by name, uncertainty, suggested keyframes, keyframe compression.

Entry points: :func:`interpolate_track` (keyframes -> dense boxes/skeletons with confidence and suggestions) and
:func:`compress_track` (dense track -> fewest keyframes for linear interpolation; :func:`compress_skeletons` for a
skeleton kept in a track of its own).
"""

from __future__ import annotations

from prelabel.interpolate.api import interpolate_track, suggest_keyframes
from prelabel.interpolate.base import (
    FrameSource,
    InterpolationMethod,
    InterpolationResult,
    RunEstimate,
    RunInput,
    SuggestedKeyframe,
)
from prelabel.interpolate.compress import compress_skeletons, compress_track
from prelabel.interpolate.frames import ArrayFrames, VideoFileFrames
from prelabel.interpolate.registry import MethodRegistry, default_registry

__all__ = [
    "ArrayFrames",
    "FrameSource",
    "InterpolationMethod",
    "InterpolationResult",
    "MethodRegistry",
    "RunEstimate",
    "RunInput",
    "SuggestedKeyframe",
    "VideoFileFrames",
    "compress_skeletons",
    "compress_track",
    "default_registry",
    "interpolate_track",
    "suggest_keyframes",
]
