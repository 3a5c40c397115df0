"""Import and export of the file formats annotation tools read: CVAT for video, Label Studio, COCO, MOT, YOLO.

Every exporter reads one :class:`Annotations`; every importer returns one. The keyframe formats (CVAT, Label Studio)
also give the annotator's keyframes per track (:class:`KeyframeTrack`) for interpolation requests.
"""

from __future__ import annotations

from prelabel.formats.keyframes import KeyframeReducer
from prelabel.formats.model import Annotations, KeyframeTrack
from prelabel.formats.registry import EXPORTERS, IMPORTERS, export, load

__all__ = ["EXPORTERS", "IMPORTERS", "Annotations", "KeyframeReducer", "KeyframeTrack", "export", "load"]
