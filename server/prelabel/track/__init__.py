"""Multi-object tracking: an online tracker (Kalman + IoU/direction association, ByteTrack low-score pass, OC-SORT
recovery, camera-motion compensation) and an offline refinement (link, fill, RTS-smooth) for pre-labeling.

Entry points: :func:`track_detections` (a whole video's detections), :class:`OnlineTracker` (frame by frame),
:func:`refine` (the offline pass), all configured by one :class:`TrackerConfig`.
"""

from __future__ import annotations

from prelabel.track.api import track_detections
from prelabel.track.config import TrackerConfig
from prelabel.track.offline import refine
from prelabel.track.online import OnlineTracker, TrackedObject

__all__ = ["OnlineTracker", "TrackedObject", "TrackerConfig", "refine", "track_detections"]
