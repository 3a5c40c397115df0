"""A finished job's result files: prelabel's own JSON plus the formats annotation tools import."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.pipeline import PipelineResult
from prelabel.types import Track

log = logging.getLogger(__name__)

# Download name -> (formats registry name or "json", file name, content type).
RESULT_FORMATS: dict[str, tuple[str, str, str]] = {
    "json": ("json", "result.json", "application/json"),
    "cvat": ("cvat", "annotations.xml", "application/xml"),
    "labelstudio": ("label_studio", "labelstudio.json", "application/json"),
    "coco": ("coco", "coco.json", "application/json"),
    "mot": ("mot", "mot.txt", "text/plain"),
    "yolo": ("yolo", "yolo.zip", "application/zip"),
}
ALIASES = {"label_studio": "labelstudio", "label-studio": "labelstudio", "cvat_video": "cvat"}


def canonical_format(name: str) -> str:
    """The download name for ``name`` (aliases accepted).

    Raises:
        InvalidInputError: unknown format (the message lists the known ones).
    """
    key = ALIASES.get(name.lower(), name.lower())
    if key not in RESULT_FORMATS:
        raise InvalidInputError(f"unknown result format {name!r}; known: {sorted(RESULT_FORMATS)}")
    return key


def _track_json(t: Track) -> dict[str, Any]:
    boxes = []
    for b in t.boxes:
        item: dict[str, Any] = {
            "frame": b.frame_idx,
            "ts_ms": float(b.ts_ms),
            "xyxy": [float(v) for v in b.xyxy],
            "score": float(b.score),
            "source": b.source.name.lower(),
        }
        if b.skeleton is not None:
            item["keypoints"] = b.skeleton.keypoints.astype(float).round(3).tolist()
            item["keypoints_present"] = b.skeleton.present.tolist()
        boxes.append(item)
    return {"track_id": t.track_id, "class_id": t.class_id, "class_name": t.class_name, "boxes": boxes}


def result_to_json(result: PipelineResult, video_name: str, video_sha256: str | None = None) -> dict[str, Any]:
    """prelabel's native result document (deterministic: same result, same bytes).

    ``video_sha256`` (when given) names the video's content: ``prelabel run`` tells by it whether a folder holds
    this video's results or another's of the same name. ``detections`` maps each frame index to its raw detections
    ``[x1, y1, x2, y2, score, class_id]``; ``tracks`` and ``segments`` are the refined proposals.
    """
    info = result.info
    return {
        "video": video_name,
        **({"video_sha256": video_sha256} if video_sha256 else {}),
        "info": {
            "width": info.width,
            "height": info.height,
            "num_frames": info.num_frames,
            "fps": info.fps,
            "variable_frame_rate": info.variable_frame_rate,
            "damaged_frames": list(info.damaged_frames),
        },
        **({"frames_processed": list(result.frame_range)} if result.frame_range is not None else {}),
        "models": dict(sorted(result.models.items())),
        "class_names": list(result.class_names),
        "ts_ms": [float(t) for t in result.ts_ms],
        "detections": {
            str(f): [[*(float(v) for v in d.xyxy[i]), float(d.scores[i]), int(d.class_ids[i])] for i in range(len(d))]
            for f, d in sorted(result.detections.items())
        },
        "tracks": [_track_json(t) for t in result.tracks],
        "segments": [{**asdict(s), "source": s.source.name.lower()} for s in result.segments],
        "warnings": result_warnings(result),
    }


def result_warnings(result: PipelineResult) -> list[str]:
    """What a user should know about these labels before trusting them (``result.json``'s and the job's
    ``warnings``)."""
    info = result.info
    out = []
    if result.frame_range is not None:
        start, end = result.frame_range
        out.append(
            f"only frames {start} to {end - 1} (0-based) of the video's {info.num_frames} were labelled: COCO and YOLO "
            "list those frames alone; in CVAT, Label Studio and MOT files the frames outside them hold no labels "
            "because nobody looked, not because nothing is there"
        )
    n_dets = sum(len(d) for d in result.detections.values())
    if n_dets and not result.tracks:
        out.append(
            f"{n_dets} detections but no track (a run without the 'track' stage, or objects seen too briefly): the "
            "export formats hold tracks and are empty; result.json's detections hold what the detector saw"
        )
    if info.truncated:
        out.append(
            f"the video's container lists {info.declared_frames} frames but {info.num_frames} decode (a truncated "
            "or damaged file?): the labels cover the frames that decode"
        )
    if info.timestamp_resets:
        out.append(
            f"the video's timestamps restart {info.timestamp_resets} time(s) (recordings joined end to end?): each "
            "restart is placed one frame after the frame before it, so time keeps increasing"
        )
    if info.rescaled_frames:
        out.append(
            f"{info.rescaled_frames} frames come at another picture size than the first frame's {info.width}x"
            f"{info.height} (the stream changes size): they were scaled to it, and so are their labels"
        )
    if info.damaged_frames:
        shown = ", ".join(str(f) for f in info.damaged_frames[:10])
        more = f" and {len(info.damaged_frames) - 10} more" if len(info.damaged_frames) > 10 else ""
        out.append(
            f"{len(info.damaged_frames)} frames do not decode (damaged packets): frames {shown}{more} (0-based). "
            "They keep their place and time; nothing was detected on them, and tracks are bridged across them: "
            "check the labels there"
        )
    return out


def write_results(
    result: PipelineResult,
    video_name: str,
    folder: Path,
    formats: Sequence[str] | None = None,
    video_sha256: str | None = None,
) -> list[str]:
    """Write result formats into ``folder`` (all when ``formats`` is None; ``json`` always); returns the names."""
    from prelabel.formats import Annotations, export

    folder.mkdir(parents=True, exist_ok=True)
    doc = result_to_json(result, video_name, video_sha256)
    (folder / "result.json").write_text(json.dumps(doc, indent=1))
    written = ["json"]
    labels = result.class_names or tuple(sorted({t.class_name for t in result.tracks}))
    ann = Annotations(
        info=result.info,
        tracks=result.tracks,
        segments=result.segments,
        ts_ms=result.ts_ms,
        labels=tuple(labels),
        action_labels=tuple(sorted({s.label for s in result.segments})),
        name=video_name,
        labelled=result.frame_range,
    )
    wanted = set(RESULT_FORMATS) if formats is None else {canonical_format(f) for f in formats}
    for key, (fmt, filename, _) in RESULT_FORMATS.items():
        if fmt == "json" or key not in wanted:
            continue
        target = folder / filename
        if fmt == "yolo":
            tmp_dir = folder / "yolo"
            export(ann, fmt, tmp_dir)
            zip_folder(tmp_dir, target)
            shutil.rmtree(tmp_dir)
        else:
            export(ann, fmt, target)
        written.append(key)
    return written


def result_file(folder: Path, fmt: str) -> tuple[Path, str]:
    """(path, content type) of a written result.

    Raises:
        InvalidInputError: unknown format. NotFoundError: not written.
    """
    key = canonical_format(fmt)
    _, filename, ctype = RESULT_FORMATS[key]
    path = folder / filename
    if not path.is_file():
        raise NotFoundError(f"result {key!r} is not available")
    return path, ctype


def zip_folder(folder: Path, target: Path) -> None:
    """``folder``'s files in a zip at ``target``, in name order with a fixed time stamp: the same labels give the
    same bytes (a re-run or a server's download compares equal)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
