"""MOTChallenge text files: tracker results / detections and ground truth.

Rows are comma-separated, frames 1-based, boxes ``tlwh`` pixels:

- results (and MOT15 ground truth): ``frame, id, x, y, w, h, conf, wx, wy, wz`` (``-1`` for the unused world
  coordinates; in ground truth ``conf`` is a flag, 0 meaning "ignore in evaluation");
- MOT16+ ground truth: ``frame, id, x, y, w, h, flag, class, visibility``;
- detections: results with ``id = -1`` (read with :func:`read_mot_detections`).

``seqinfo.ini`` next to the file (or one folder up, as in ``<seq>/gt/gt.txt``) supplies the frame size, length and
rate when the caller gives no :class:`~prelabel.types.VideoInfo`.
"""

from __future__ import annotations

import configparser
import itertools
import logging
from pathlib import Path

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.formats.model import Annotations
from prelabel.types import Detections, Source, Track, TrackedBox, VideoInfo

logger = logging.getLogger(__name__)

# MOT16/17/20 ground-truth classes (1-based).
MOT_CLASSES: dict[int, str] = {
    1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike", 6: "non_motorized_vehicle",
    7: "static_person", 8: "distractor", 9: "occluder", 10: "occluder_on_ground", 11: "occluder_full",
    12: "reflection", 13: "crowd",
}  # fmt: skip
# Our class names that mean a MOT class (COCO's "person" is MOT's "pedestrian").
_ALIASES = {"person": 1}


def mot_class_id(name: str) -> int:
    """MOT class id of a class name ("person" and "pedestrian" -> 1); 0 when MOT has no such class."""
    if name in _ALIASES:
        return _ALIASES[name]
    return next((k for k, v in MOT_CLASSES.items() if v == name), 0)


def write_mot(annotations: Annotations, path: Path, gt: bool = False) -> Path:
    """Write tracks as a MOTChallenge text file, rows sorted by frame then id.

    Args:
        annotations: the tracks.
        path: the .txt file to write; parent folders are created.
        gt: write the MOT16+ ground-truth layout (flag 1, MOT class, visibility 1) instead of results with scores.

    Returns:
        ``path``.

    Raises:
        InvalidInputError: ``gt`` and a class MOT does not know.
    """
    rows: list[tuple[int, int, str]] = []
    for t in annotations.tracks:
        cls = mot_class_id(annotations.class_name(t)) if gt else 0
        if gt and cls == 0:
            raise InvalidInputError(
                f"MOT ground truth: track {t.track_id} has class {annotations.class_name(t)!r}, expected one of "
                f"{sorted([*MOT_CLASSES.values(), *_ALIASES])}"
            )
        for b in t.boxes:
            x1, y1, x2, y2 = (float(v) for v in b.xyxy)
            head = f"{b.frame_idx + 1},{t.track_id},{x1:.3f},{y1:.3f},{x2 - x1:.3f},{y2 - y1:.3f}"
            tail = f",1,{cls},1" if gt else f",{b.score:.5f},-1,-1,-1"
            rows.append((b.frame_idx, t.track_id, head + tail))
    rows.sort()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r[2] + "\n" for r in rows))
    logger.info("wrote %d MOT rows to %s", len(rows), path)
    return path


def read_seqinfo(path: Path) -> VideoInfo | None:
    """VideoInfo from a MOTChallenge ``seqinfo.ini`` (``[Sequence]`` imWidth, imHeight, seqLength, frameRate)."""
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
        seq = parser["Sequence"]
        return VideoInfo(
            width=int(seq.get("imWidth", "0")),
            height=int(seq.get("imHeight", "0")),
            num_frames=int(seq.get("seqLength", "0")),
            fps=float(seq.get("frameRate", "0")),
        )
    except (KeyError, ValueError, configparser.Error):
        logger.warning("%s: not a usable seqinfo.ini", path)
        return None


def seqinfo_path(path: Path) -> Path | None:
    """The ``seqinfo.ini`` beside a MOTChallenge file or one folder up (``<seq>/gt/gt.txt``), or None."""
    return next((d / "seqinfo.ini" for d in (path.parent, path.parent.parent) if (d / "seqinfo.ini").is_file()), None)


def find_seqinfo(path: Path) -> VideoInfo | None:
    """The :func:`read_seqinfo` of :func:`seqinfo_path`; None where there is none, or none usable."""
    ini = seqinfo_path(path)
    return None if ini is None else read_seqinfo(ini)


def _rows(path: Path) -> list[tuple[int, list[float]]]:
    """(line number, values) of each non-empty row."""
    out = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            vals = [float(v) for v in line.replace(" ", "").split(",")]
        except ValueError as exc:
            raise InvalidInputError(f"{Path(path).name} row {lineno}: not comma-separated numbers: {line!r}") from exc
        if len(vals) < 7:
            raise InvalidInputError(f"{Path(path).name} row {lineno}: {len(vals)} columns, expected at least 7")
        if not np.all(np.isfinite(vals[:7])):
            raise InvalidInputError(f"{Path(path).name} row {lineno}: non-finite value in {line!r}")
        if not (vals[0].is_integer() and vals[1].is_integer()):
            raise InvalidInputError(
                f"{Path(path).name} row {lineno}: frame {vals[0]:g} and id {vals[1]:g}, expected whole numbers"
            )
        out.append((lineno, vals))
    return out


def read_mot(
    path: Path,
    info: VideoInfo | None = None,
    gt: bool = False,
    keep_ignored: bool = False,
    ts_ms: np.ndarray | None = None,
) -> Annotations:
    """Read a MOTChallenge results or ground-truth file into tracks.

    Args:
        path: the .txt file.
        info: the video's info; None reads ``seqinfo.ini`` beside the file or one folder up (else sizes unknown).
        gt: the file is ground truth: column 7 is a flag (score 1.0), and a 9-column row's class and visibility
            are read (class names from :data:`MOT_CLASSES`, "pedestrian" read as "person").
        keep_ignored: with ``gt``, keep rows whose flag is 0 (left out by default, as evaluation does).
        ts_ms: optional (num_frames,) timestamps in ms.

    Returns:
        Annotations with one track per id; frames 0-based, boxes ``xyxy``; ``Source.DETECTOR`` (results) or
        ``Source.KEYFRAME`` (ground truth).

    Raises:
        InvalidInputError: a malformed row, an id below 1 (detections: use :func:`read_mot_detections`), a frame
            below 1, or one id twice on one frame, naming the row.
    """
    path = Path(path)
    info = info or find_seqinfo(path) or VideoInfo(0, 0, 0, 0.0)
    per_track: dict[int, list[TrackedBox]] = {}
    cls_of: dict[int, str] = {}
    seen: dict[tuple[int, int], int] = {}
    dropped = 0
    tmp = Annotations(info=VideoInfo(info.width, info.height, 0, info.fps), ts_ms=ts_ms)
    for lineno, v in _rows(path):
        frame, tid = int(v[0]), int(v[1])
        where = f"{path.name} row {lineno}"
        if tid < 1:
            raise InvalidInputError(f"{where}: id {tid}, expected a track id >= 1 (a detection file has no tracks)")
        if frame < 1:
            raise InvalidInputError(f"{where}: frame {frame}, expected >= 1 (MOT frames are 1-based)")
        if 0 < info.num_frames < frame:
            raise InvalidInputError(
                f"{where}: frame {frame}, past the video's last frame {info.num_frames} (MOT frames are 1-based)"
            )
        if gt and v[6] == 0 and not keep_ignored:
            dropped += 1
            continue
        if (frame, tid) in seen:
            raise InvalidInputError(f"{where}: id {tid} already has a box on frame {frame} (row {seen[frame, tid]})")
        seen[frame, tid] = lineno
        x, y, w, h = v[2:6]
        f = frame - 1
        name = "person"
        if gt and len(v) == 9:
            name = MOT_CLASSES.get(int(v[7]), str(int(v[7])))
            name = "person" if name == "pedestrian" else name
        if not (w >= 0 and h >= 0):  # NaN fails too
            raise InvalidInputError(f"{where}: box width {w:g} and height {h:g}, expected both >= 0")
        box = TrackedBox(f, np.array([x, y, x + w, y + h]), 1.0 if gt else float(v[6]),
                         Source.KEYFRAME if gt else Source.DETECTOR, tmp.frame_ts_ms(f))  # fmt: skip
        per_track.setdefault(tid, []).append(box)
        cls_of.setdefault(tid, name)
    if dropped:
        logger.warning("%s: left out %d ground-truth rows flagged 0 (ignore)", path.name, dropped)
    labels = list(dict.fromkeys(cls_of[t] for t in sorted(cls_of)))
    tracks = [
        Track(tid, sorted(per_track[tid], key=lambda b: b.frame_idx), labels.index(cls_of[tid]), cls_of[tid])
        for tid in sorted(per_track)
    ]
    return Annotations(info=info, tracks=tracks, labels=tuple(labels), ts_ms=ts_ms, name=path.stem)


def read_mot_detections(path: Path, class_name: str = "person") -> dict[int, Detections]:
    """Read a MOTChallenge detection file (``frame, -1, x, y, w, h, score, ...``) into detections per frame.

    Returns:
        0-based frame index -> :class:`~prelabel.types.Detections` (class id 0 named ``class_name``), frames in order.

    Raises:
        InvalidInputError: a malformed row, naming it.
    """
    rows = _rows(Path(path))
    out: dict[int, Detections] = {}
    for frame, group in itertools.groupby(sorted(rows, key=lambda r: r[1][0]), key=lambda r: int(r[1][0])):
        vals = np.array([r[1][:7] for r in group], np.float64)
        xyxy = np.concatenate([vals[:, 2:4], vals[:, 2:4] + vals[:, 4:6]], axis=1)
        scores = vals[:, 6].astype(np.float32)
        out[frame - 1] = Detections(xyxy.astype(np.float32), scores, np.zeros(len(vals), np.int64), (class_name,))
    return out
