"""YOLO text labels, one file per frame, as Ultralytics writes tracked results with ``save_txt`` and ``save_conf``.

Each line is ``class cx cy w h [x y conf]*17 conf track_id``, coordinates normalised to [0, 1] by the frame size
(``cxcywh`` boxes; keypoints only for pose rows, missing ones ``0 0 0``). Every frame ``0..num_frames-1`` (of a run over
part of the video, every frame it labelled) gets a file ``frame_{idx:06d}.txt`` (empty when nothing is in view), and
``data.yaml`` lists the class names (``names``, plus ``kpt_shape`` when there are skeletons), the frame size the
coordinates are normalised by and, for a run over part of the video, ``labelled_frames`` ``[start, end)``.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from prelabel.errors import InvalidInputError
from prelabel.formats.model import Annotations, labelled_run
from prelabel.types import NUM_KEYPOINTS, Skeleton, Source, Track, TrackedBox, VideoInfo

logger = logging.getLogger(__name__)

_FRAME_FILE = re.compile(r"^frame_(\d+)\.txt$")
BOX_COLUMNS = 7  # class cx cy w h conf id
POSE_COLUMNS = 5 + 3 * NUM_KEYPOINTS + 2
MAX_ZIP_BYTES = 1 << 30  # uncompressed; label text is small, more than this is not a label archive


def write_yolo(annotations: Annotations, path: Path) -> Path:
    """Write one YOLO label file per frame into the folder ``path``, plus ``data.yaml``.

    Raises:
        InvalidInputError: frame size unknown.
    """
    ann = annotations
    w, h = ann.info.width, ann.info.height
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"YOLO export: frame size must be known, got {w}x{h}")
    labels = ann.all_labels()
    pose = any(b.skeleton is not None for t in ann.tracks for b in t.boxes)
    lines: dict[int, list[str]] = {f: [] for f in ann.labelled_frames}  # a file says "no object" where empty
    for t in sorted(ann.tracks, key=lambda t: t.track_id):
        cls = labels.index(ann.class_name(t))
        for b in t.boxes:
            x1, y1, x2, y2 = (float(v) for v in b.xyxy)
            vals: list[float] = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
            if pose:
                kp = np.zeros((NUM_KEYPOINTS, 3), np.float64)
                if b.skeleton is not None:
                    p = b.skeleton.present
                    kp[p] = b.skeleton.keypoints[p] / [w, h, 1.0]
                vals += kp.reshape(-1).tolist()
            vals.append(float(b.score))
            lines.setdefault(b.frame_idx, []).append(f"{cls} " + " ".join(f"{v:.8g}" for v in vals) + f" {t.track_id}")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for f, rows in lines.items():
        (folder / f"frame_{f:06d}.txt").write_text("".join(r + "\n" for r in rows))
    meta: dict[str, Any] = {
        "names": dict(enumerate(labels)),
        "video": {"name": ann.name, "width": w, "height": h, "num_frames": ann.num_frames, "fps": ann.info.fps},
    }
    if ann.labelled is not None:
        meta["labelled_frames"] = [ann.labelled_frames.start, ann.labelled_frames.stop]
    if pose:
        meta["kpt_shape"] = [NUM_KEYPOINTS, 3]
    (folder / "data.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    logger.info("wrote %d YOLO label files to %s", len(lines), folder)
    return folder


def _frame_of(name: str) -> int:
    m = _FRAME_FILE.match(name)
    assert m is not None
    return int(m.group(1))


def _label_texts(path: Path) -> tuple[str | None, Iterator[tuple[str, int, str]]]:
    """``(data.yaml text or None, (file name, frame, text) per label file in name order)`` of a folder or of a zip
    (prelabel's ``yolo.zip``, or such a folder zipped: the label files may sit in one folder inside it).

    Raises:
        InvalidInputError: not a zip, label files in several folders of one zip, or too large unpacked.
    """
    if path.is_dir():
        meta = path / "data.yaml"
        files = sorted(f for f in path.glob("frame_*.txt") if _FRAME_FILE.match(f.name))
        return (meta.read_text() if meta.is_file() else None), (
            (f.name, _frame_of(f.name), f.read_text()) for f in files
        )
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(f"{path.name}: not a folder or a zip of YOLO label files ({exc})") from exc
    with zf:
        entries = [i for i in zf.infolist() if not i.is_dir()]
        if sum(i.file_size for i in entries) > MAX_ZIP_BYTES:
            raise InvalidInputError(f"{path.name}: more than {MAX_ZIP_BYTES >> 20} MiB unpacked; not a label archive")
        frames = [(PurePosixPath(i.filename), i) for i in entries if _FRAME_FILE.match(PurePosixPath(i.filename).name)]
        parents = sorted({str(p.parent) for p, _ in frames})
        if len(parents) > 1:
            raise InvalidInputError(
                f"{path.name}: label files in {len(parents)} folders ({', '.join(parents[:3])}); expected one video's"
            )
        parent = PurePosixPath(parents[0]) if parents else PurePosixPath(".")
        names = {PurePosixPath(i.filename): i for i in entries}
        meta_info = names.get(parent / "data.yaml") or names.get(PurePosixPath("data.yaml"))
        meta_text = zf.read(meta_info).decode() if meta_info is not None else None
        texts = [(p.name, _frame_of(p.name), zf.read(i).decode()) for p, i in sorted(frames, key=lambda pi: pi[0].name)]
    return meta_text, iter(texts)


def read_yolo(path: Path, info: VideoInfo | None = None, ts_ms: np.ndarray | None = None) -> Annotations:
    """Read a folder of per-frame YOLO label files with track ids (as :func:`write_yolo` writes them), or a zip of one
    (the ``yolo.zip`` of ``prelabel run`` and job downloads).

    Args:
        path: the folder (or zip) holding ``frame_XXXXXX.txt`` files and, optionally, ``data.yaml``.
        info: the video's info; None takes it from ``data.yaml``.
        ts_ms: optional (num_frames,) timestamps in ms.

    Raises:
        InvalidInputError: frame size unknown, a line with a column count other than 7 (box) or 58 (pose), or
            non-numeric values, naming file and line; one id twice on one frame; a zip that is not one.
    """
    folder = Path(path)
    meta_text, label_files = _label_texts(folder)
    meta: dict[str, Any] = (yaml.safe_load(meta_text) or {}) if meta_text is not None else {}
    names_raw = meta.get("names") or {}
    names = dict(enumerate(names_raw)) if isinstance(names_raw, list) else {int(k): v for k, v in names_raw.items()}
    if info is None:
        v = meta.get("video") or {}
        info = VideoInfo(int(v.get("width", 0)), int(v.get("height", 0)), int(v.get("num_frames", 0)),
                         float(v.get("fps", 0.0)))  # fmt: skip
    if info.width <= 0 or info.height <= 0:
        raise InvalidInputError(
            f"{folder.name}: frame size unknown (YOLO coordinates are normalised): no data.yaml with the video's size; "
            "give the video (prelabel convert --video)"
        )
    scale = np.array([info.width, info.height, info.width, info.height], np.float64)
    tmp = Annotations(info=VideoInfo(info.width, info.height, 0, info.fps), ts_ms=ts_ms)
    per_track: dict[int, dict[int, TrackedBox]] = {}
    cls_of: dict[int, int] = {}
    for file_name, f, text in label_files:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{file_name} line {lineno}"
            try:
                vals = [float(x) for x in line.split()]
            except ValueError as exc:
                raise InvalidInputError(f"{where}: not numbers: {line!r}") from exc
            if len(vals) not in (BOX_COLUMNS, POSE_COLUMNS):
                raise InvalidInputError(
                    f"{where}: {len(vals)} columns, expected {BOX_COLUMNS} (class cx cy w h conf id) or "
                    f"{POSE_COLUMNS} (with 17 keypoints)"
                )
            cls, tid = int(vals[0]), int(vals[-1])
            cx, cy, bw, bh = vals[1:5]
            xyxy = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) * scale
            skel = None
            if len(vals) == POSE_COLUMNS:
                kp = np.asarray(vals[5:-2], np.float64).reshape(NUM_KEYPOINTS, 3)
                present = kp[:, 2] > 0
                # A training label's third value is visibility (1 hidden, 2 visible), not a confidence: at most 1.
                kp[:, 2] = np.minimum(kp[:, 2], 1.0)
                if present.any():
                    kp[:, :2] *= [info.width, info.height]
                    kp[~present] = 0.0
                    skel = Skeleton(kp.astype(np.float32), present, float(kp[present, 2].mean()))
            if tid < 1:
                raise InvalidInputError(f"{where}: track id {tid}, expected >= 1")
            if f in per_track.get(tid, {}):
                raise InvalidInputError(f"{where}: track {tid} already has a box on frame {f}")
            box = TrackedBox(f, xyxy.astype(np.float32), vals[-2], Source.DETECTOR, tmp.frame_ts_ms(f), skel)
            per_track.setdefault(tid, {})[f] = box
            cls_of.setdefault(tid, cls)
    labels = [names[k] for k in sorted(names)]
    tracks = []
    for tid in sorted(per_track):
        cls = cls_of[tid]
        name = names.get(cls, str(cls))
        tracks.append(Track(tid, [per_track[tid][f] for f in sorted(per_track[tid])], cls, name))
    video_name = str((meta.get("video") or {}).get("name", folder.stem if folder.is_file() else folder.name))
    stated = meta.get("labelled_frames")  # a run over part of the video: the frames it labelled
    if isinstance(stated, list) and len(stated) == 2 and all(isinstance(v, int) for v in stated):
        labelled: tuple[int, int] | None = (stated[0], stated[1])
    else:
        labelled = labelled_run((f for _, f, _ in label_files), info.num_frames)
    return Annotations(info=info, tracks=tracks, labels=tuple(labels), ts_ms=ts_ms, name=video_name, labelled=labelled)
