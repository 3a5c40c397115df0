"""COCO instances and person-keypoints JSON for video: one image per frame, track id and frame index per annotation.

Standard COCO fields (``images``, ``annotations`` with ``bbox`` = ``[x, y, w, h]`` pixels, ``categories`` with
1-based ids; ``keypoints`` = 17 ``x, y, v`` triples with ``v`` 2 for a labelled keypoint and 0 for a missing one,
``num_keypoints``; the person category carries ``keypoints`` names and the 1-based ``skeleton`` edges) are kept, so
pycocotools reads the file. Video fields follow the CocoVID convention used by video COCO variants: ``videos``,
``images[].video_id`` and ``frame_id`` (0-based), ``annotations[].instance_id``; plus ``track_id``, ``frame_idx``,
``score``, ``keypoint_scores`` (17 confidences) and ``images[].ts_ms``. Action segments go in an extra top-level
``action_segments`` list, which COCO readers ignore.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.formats.model import Annotations, labelled_run
from prelabel.types import COCO17_EDGES, COCO17_KEYPOINTS, NUM_KEYPOINTS, Segment, Skeleton, Source, Track, TrackedBox
from prelabel.types import VideoInfo as _VideoInfo

logger = logging.getLogger(__name__)


def _skeleton_fields(skel: Skeleton) -> dict[str, Any]:
    kp: list[float] = []
    for (x, y, _), present in zip(skel.keypoints, skel.present, strict=True):
        kp += [float(x), float(y), 2] if present else [0.0, 0.0, 0]
    scores = [float(c) if p else 0.0 for c, p in zip(skel.keypoints[:, 2], skel.present, strict=True)]
    return {"keypoints": kp, "num_keypoints": int(skel.present.sum()), "keypoint_scores": scores}


def write_coco(annotations: Annotations, path: Path) -> Path:
    """Write ``annotations`` as one COCO JSON with an image per labelled frame (``0..num_frames-1``, or
    :attr:`Annotations.labelled`'s range).

    Args:
        annotations: tracks (boxes, optional skeletons) and segments.
        path: the .json file to write; parent folders are created.

    Returns:
        ``path``.
    """
    ann = annotations
    n = ann.num_frames
    labels = ann.all_labels()
    has_kp = {ann.class_name(t) for t in ann.tracks if any(b.skeleton is not None for b in t.boxes)}
    categories = []
    for i, name in enumerate(labels):
        cat: dict[str, Any] = {"id": i + 1, "name": name, "supercategory": name}
        if name in has_kp or name == "person":
            cat["keypoints"] = list(COCO17_KEYPOINTS)
            cat["skeleton"] = [[a + 1, b + 1] for a, b in COCO17_EDGES]
        categories.append(cat)
    images = [
        {
            "id": f + 1,
            "file_name": f"{ann.name}/frame_{f:06d}.jpg",
            "width": ann.info.width,
            "height": ann.info.height,
            "video_id": 1,
            "frame_id": f,
            "ts_ms": ann.frame_ts_ms(f),
        }
        for f in ann.labelled_frames
    ]
    rows = []
    for t in sorted(ann.tracks, key=lambda t: t.track_id):
        cid = labels.index(ann.class_name(t)) + 1
        for b in t.boxes:
            x1, y1, x2, y2 = (float(v) for v in b.xyxy)
            row: dict[str, Any] = {
                "image_id": b.frame_idx + 1,
                "category_id": cid,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
                "score": float(b.score),
                "track_id": t.track_id,
                "instance_id": t.track_id,
                "frame_idx": b.frame_idx,
                "source": b.source.name.lower(),
            }
            if b.skeleton is not None:
                row.update(_skeleton_fields(b.skeleton))
            rows.append(row)
    rows.sort(key=lambda r: (r["frame_idx"], r["track_id"]))
    for i, row in enumerate(rows):
        row["id"] = i + 1
    segments = [
        {
            "track_id": s.track_id,
            "label": s.label,
            "start_frame": s.start_frame,
            "end_frame": s.end_frame,
            "start_ts_ms": s.start_ts_ms,
            "end_ts_ms": s.end_ts_ms,
            "confidence": s.confidence,
            "source": s.source.name.lower(),
            "method": s.method,
        }
        for s in ann.segments
    ]
    doc = {
        "info": {"description": f"prelabel export of {ann.name}", "version": "1.0"},
        "licenses": [],
        "videos": [
            {
                "id": 1,
                "name": ann.name,
                "width": ann.info.width,
                "height": ann.info.height,
                "fps": ann.info.fps,
                "num_frames": n,
            }
        ],
        "images": images,
        "annotations": rows,
        "categories": categories,
        "action_segments": segments,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    logger.info("wrote COCO JSON with %d images and %d annotations to %s", len(images), len(rows), path)
    return path


def _source(name: Any) -> Source:
    try:
        return Source[str(name).upper()]
    except KeyError:
        return Source.UNSPECIFIED


def read_coco(path: Path, info: _VideoInfo | None = None) -> Annotations:
    """Read a COCO JSON written by :func:`write_coco` or any COCO video variant with track ids.

    Frames come from ``annotations[].frame_idx``, else the image's ``frame_id``/``frame_idx``, else the image's
    position when images are sorted by id. Track ids come from ``track_id`` or ``instance_id``; an annotation with
    neither becomes its own one-box track (with a warning).

    Raises:
        InvalidInputError: bad JSON, an annotation naming an unknown image or category, a malformed bbox, two boxes of
            one track on one frame.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path.name}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or "annotations" not in doc or "images" not in doc:
        raise InvalidInputError(f"{path.name}: expected a COCO object with 'images' and 'annotations'")
    images = sorted(doc["images"], key=lambda im: im["id"])
    frame_of: dict[Any, int] = {}
    ts: dict[int, float] = {}
    by_position = [im.get("file_name", "") for im in images if "frame_id" not in im and "frame_idx" not in im]
    if by_position:
        logger.warning(
            "%s: %d images have no frame_id or frame_idx (e.g. %r): numbered by their position among the images, "
            "which is the video's frame number only when every frame is listed",
            path.name,
            len(by_position),
            by_position[0],
        )
    for pos, im in enumerate(images):
        f = int(im.get("frame_id", im.get("frame_idx", pos)))
        frame_of[im["id"]] = f
        if "ts_ms" in im:
            ts[f] = float(im["ts_ms"])
    cats = {c["id"]: c for c in doc.get("categories", [])}
    labels = [c["name"] for c in sorted(cats.values(), key=lambda c: c["id"])]
    if info is None:
        video = (doc.get("videos") or [{}])[0]
        width = int(video.get("width") or (images[0].get("width", 0) if images else 0))
        height = int(video.get("height") or (images[0].get("height", 0) if images else 0))
        info = _VideoInfo(width, height, int(video.get("num_frames") or len(images)), float(video.get("fps") or 0.0))
    per_track: dict[int, list[TrackedBox]] = {}
    cls_of: dict[int, int] = {}
    untracked = 0
    next_free = 1 + max((int(a.get("track_id", a.get("instance_id", 0)) or 0) for a in doc["annotations"]), default=0)
    for a in doc["annotations"]:
        where = f"{path.name}: annotation {a.get('id', '?')}"
        if a.get("image_id") not in frame_of:
            raise InvalidInputError(f"{where}: image_id {a.get('image_id')!r} is not in images")
        if a.get("category_id") not in cats:
            raise InvalidInputError(f"{where}: category_id {a.get('category_id')!r} is not in categories")
        f = int(a.get("frame_idx", frame_of[a["image_id"]]))
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise InvalidInputError(f"{where}: bbox {bbox!r}, expected [x, y, w, h]")
        x, y, w, h = (float(v) for v in bbox)
        tid = int(a.get("track_id", a.get("instance_id", 0)) or 0)
        if tid <= 0:
            tid, next_free, untracked = next_free, next_free + 1, untracked + 1
        skel = None
        if a.get("keypoints") and int(a.get("num_keypoints", 1)) > 0:
            kp = np.asarray(a["keypoints"], np.float32).reshape(-1, 3)
            if kp.shape[0] != NUM_KEYPOINTS:
                raise InvalidInputError(f"{where}: {kp.shape[0]} keypoints, expected {NUM_KEYPOINTS}")
            present = kp[:, 2] > 0
            conf = np.asarray(a.get("keypoint_scores", present.astype(np.float32)), np.float32).reshape(-1)
            arr = np.stack([kp[:, 0], kp[:, 1], np.where(present, conf, 0.0)], axis=1)
            skel = Skeleton(arr, present, float(conf[present].mean()) if present.any() else 0.0)
        box = TrackedBox(f, np.array([x, y, x + w, y + h]), float(a.get("score", 1.0)), _source(a.get("source")),
                         ts.get(f, 0.0), skel)  # fmt: skip
        per_track.setdefault(tid, []).append(box)
        cls_of[tid] = labels.index(cats[a["category_id"]]["name"])
    if untracked:
        logger.warning("%s: %d annotations had no track id and became one-box tracks", path.name, untracked)
    tracks = []
    for tid in sorted(per_track):
        boxes = sorted(per_track[tid], key=lambda b: b.frame_idx)
        for p, q in itertools.pairwise(boxes):
            if p.frame_idx == q.frame_idx:
                raise InvalidInputError(f"{path.name}: track {tid} has two boxes on frame {p.frame_idx}")
        tracks.append(Track(tid, boxes, cls_of[tid], labels[cls_of[tid]]))
    segments = [
        Segment(
            int(s["track_id"]),
            str(s["label"]),
            int(s["start_frame"]),
            int(s["end_frame"]),
            float(s.get("start_ts_ms", 0.0)),
            float(s.get("end_ts_ms", 0.0)),
            float(s.get("confidence", 1.0)),
            source=_source(s.get("source", "rule")),
            method=str(s.get("method", "")),
        )
        for s in doc.get("action_segments", [])
    ]
    ts_arr = None
    if info.num_frames > 0 and len(ts) == info.num_frames:
        ts_arr = np.array([ts[f] for f in range(info.num_frames)], np.float64)
    name = str((doc.get("videos") or [{}])[0].get("name", path.stem))
    labelled = labelled_run(frame_of.values(), info.num_frames)  # an export of a run over part of the video
    return Annotations(info=info, tracks=tracks, segments=segments, ts_ms=ts_arr, labels=tuple(labels),
                       action_labels=tuple(dict.fromkeys(s.label for s in segments)), name=name,
                       labelled=labelled)  # fmt: skip
