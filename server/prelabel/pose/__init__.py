"""Human pose: a pose backend over a pose detector, skeletons attached to track IDs, and temporal smoothing.

Entry points: :func:`estimate_pose` (images -> skeletons), :func:`attach_skeletons` (tracks + per-frame pose
detections -> tracks with a skeleton per box), :func:`smooth_skeleton_tracks` (One-Euro smoothing per track), and
:func:`skeleton_tracks` (both, the pipeline's pose step).
"""

from __future__ import annotations

from prelabel.images import decode_image
from prelabel.pose.attach import AttachConfig, attach_skeletons, match_skeletons
from prelabel.pose.backend import PersonPose, PoseOptions, estimate_pose, poses_from_detections
from prelabel.pose.smooth import SmoothConfig, smooth_skeleton_track, smooth_skeleton_tracks
from prelabel.pose.tracks import skeleton_tracks

__all__ = [
    "AttachConfig",
    "PersonPose",
    "PoseOptions",
    "SmoothConfig",
    "attach_skeletons",
    "decode_image",
    "estimate_pose",
    "match_skeletons",
    "poses_from_detections",
    "skeleton_tracks",
    "smooth_skeleton_track",
    "smooth_skeleton_tracks",
]
