"""Formats by name: ``export(annotations, fmt, path)`` and ``load(fmt, path)`` for the service, jobs and CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prelabel.errors import InvalidInputError
from prelabel.formats.coco import read_coco, write_coco
from prelabel.formats.cvat import CvatOptions, read_cvat, write_cvat
from prelabel.formats.keyframes import AUTO, KeyframeReducer
from prelabel.formats.label_studio import LabelStudioOptions, read_label_studio, write_label_studio
from prelabel.formats.model import Annotations
from prelabel.formats.mot import read_mot, write_mot
from prelabel.formats.result_json import read_result_json
from prelabel.formats.yolo import read_yolo, write_yolo
from prelabel.types import VideoInfo

Exporter = Callable[[Annotations, Path], Path]
Importer = Callable[[Path, VideoInfo | None], Annotations]


def _mot_gt(annotations: Annotations, path: Path) -> Path:
    return write_mot(annotations, path, gt=True)


def _read_mot_gt(path: Path, info: VideoInfo | None) -> Annotations:
    return read_mot(path, info, gt=True)


EXPORTERS: dict[str, Exporter] = {
    "cvat": write_cvat,
    "label_studio": write_label_studio,
    "coco": write_coco,
    "mot": write_mot,
    "mot_gt": _mot_gt,
    "yolo": write_yolo,
}
"""Exporter by format name; each writes with its default options (keyframes by prelabel's compression)."""

IMPORTERS: dict[str, Importer] = {
    "json": read_result_json,
    "cvat": read_cvat,
    "label_studio": read_label_studio,
    "coco": read_coco,
    "mot": read_mot,
    "mot_gt": _read_mot_gt,
    "yolo": read_yolo,
}
"""Importer by format name; ``info`` may be None where the file says the frame size."""

# File name each format is written to inside a result folder (YOLO writes a folder).
DEFAULT_FILE_NAMES: dict[str, str] = {
    "cvat": "annotations.xml",
    "label_studio": "tasks.json",
    "coco": "coco.json",
    "mot": "mot.txt",
    "mot_gt": "gt.txt",
    "yolo": "yolo",
}


def _check(fmt: str, table: dict[str, Exporter] | dict[str, Importer]) -> None:
    if fmt not in table:
        raise InvalidInputError(f"unknown format {fmt!r}, expected one of {sorted(table)}")


def export(
    annotations: Annotations,
    fmt: str,
    path: Path,
    keyframe_reducer: KeyframeReducer | str | None = AUTO,
    min_iou: float = 0.9,
    max_keypoint_error: float = 0.05,
) -> Path:
    """Write ``annotations`` in format ``fmt`` to ``path`` (a file; a folder for ``"yolo"``).

    Args:
        annotations: what to write.
        fmt: a key of :data:`EXPORTERS`.
        path: destination.
        keyframe_reducer: for the keyframe formats (CVAT, Label Studio): a reducer, None for every observed frame,
            or ``"auto"`` for prelabel's keyframe compression; ignored by the dense formats.
        min_iou, max_keypoint_error: the compression's tolerances (boxes; CVAT's skeletons), with ``"auto"``.

    Returns:
        The path written.

    Raises:
        InvalidInputError: unknown format, or what the exporter raises.
    """
    _check(fmt, EXPORTERS)
    if fmt == "cvat":
        options = CvatOptions(keyframe_reducer, min_iou=min_iou, max_keypoint_error=max_keypoint_error)
        return write_cvat(annotations, Path(path), options)
    if fmt == "label_studio":
        return write_label_studio(annotations, Path(path), LabelStudioOptions(keyframe_reducer, min_iou=min_iou))
    return EXPORTERS[fmt](annotations, Path(path))


def load(fmt: str, path: Path, info: VideoInfo | None = None) -> Annotations:
    """Read ``path`` in format ``fmt``.

    Raises:
        InvalidInputError: unknown format, or what the importer raises.
    """
    _check(fmt, IMPORTERS)
    return IMPORTERS[fmt](Path(path), info)
