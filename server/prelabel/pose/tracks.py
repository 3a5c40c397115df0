"""Skeleton tracks: pose detections attached to person tracks, then smoothed per track (the pipeline's pose step)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from prelabel.pose.attach import AttachConfig, attach_skeletons
from prelabel.pose.smooth import SmoothConfig, smooth_skeleton_tracks
from prelabel.types import Detections, Track

logger = logging.getLogger(__name__)


def skeleton_tracks(
    tracks: Sequence[Track],
    poses: Mapping[int, Detections],
    attach: AttachConfig | None = None,
    smooth: SmoothConfig | None = None,
) -> list[Track]:
    """Attach each frame's pose detections to the tracks, then smooth every track's keypoints over time.

    Args:
        tracks: person tracks (e.g. from ``prelabel.track.api.track_detections``); box ``ts_ms`` gives time.
        poses: per frame index, a pose model's detections with ``keypoints`` (N, 17, 3). When the same pose model
            was the tracker's detector, pass the same per-frame detections here.
        attach: matching gates and weights; None uses :class:`AttachConfig` defaults.
        smooth: One-Euro parameters; None uses :class:`SmoothConfig` defaults.

    Returns:
        New tracks, same order and IDs, ``TrackedBox.skeleton`` set where a pose detection was matched.

    Raises:
        InvalidInputError: pose detections without keypoints, or duplicate track IDs (the message names them).
    """
    attached = attach_skeletons(tracks, poses, attach)
    return smooth_skeleton_tracks(attached, smooth)
