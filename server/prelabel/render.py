"""Overlay a result on its video (boxes, track IDs, skeletons, action labels) to look at it: MP4 or GIF.

Text uses OpenCV's built-in Hershey fonts, so nothing is fetched.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.types import COCO17_EDGES
from prelabel.video.decode import read_frames

log = logging.getLogger(__name__)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track ID (golden-ratio hue walk)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 200, 255]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _index(doc: dict[str, Any]) -> tuple[dict[int, list[dict[str, Any]]], dict[tuple[int, int], list[str]]]:
    boxes: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for track in doc.get("tracks", []):
        for b in track["boxes"]:
            boxes[int(b["frame"])].append({**b, "track_id": track["track_id"], "class_name": track["class_name"]})
    actions: dict[tuple[int, int], list[str]] = defaultdict(list)
    for s in doc.get("segments", []):
        for f in range(int(s["start_frame"]), int(s["end_frame"]) + 1):
            actions[(f, int(s["track_id"]))].append(s["label"])
    return boxes, actions


def draw_frame(image: np.ndarray, items: list[dict[str, Any]], actions: dict[tuple[int, int], list[str]],
               frame_idx: int) -> np.ndarray:  # fmt: skip
    """Draw one frame's boxes, IDs, skeletons and action labels (returns a copy)."""
    out = image.copy()
    scale = max(out.shape[0] / 720.0, 0.4)
    for it in items:
        colour = track_colour(int(it["track_id"]))
        x1, y1, x2, y2 = (round(v) for v in it["xyxy"])
        dashed = it.get("source") == "filled"
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1 if dashed else 2)
        label = f"{it['track_id']} {it['class_name']}"
        acts = actions.get((frame_idx, int(it["track_id"])))
        if acts:
            label += " " + "+".join(acts)
        cv2.putText(out, label, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, colour, 1, cv2.LINE_AA)
        kps = it.get("keypoints")
        if kps is not None:
            pts = np.asarray(kps, np.float32)
            present = np.asarray(it.get("keypoints_present", [True] * len(pts)), bool)
            for a, b in COCO17_EDGES:
                if present[a] and present[b]:
                    pa = (int(pts[a, 0]), int(pts[a, 1]))
                    pb = (int(pts[b, 0]), int(pts[b, 1]))
                    cv2.line(out, pa, pb, colour, 2, cv2.LINE_AA)
            for (x, y, _), p in zip(pts, present, strict=True):
                if p:
                    cv2.circle(out, (int(x), int(y)), 2, (255, 255, 255), -1)
    cv2.putText(out, f"frame {frame_idx}", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, (255, 255, 255), 1)
    return out


def _check_match(doc: dict[str, Any], shape: tuple[int, ...], name: str) -> None:
    """Warn when a result's frame size is not its video's (a result drawn over another video)."""
    info = doc.get("info", {})
    w, h = int(info.get("width") or 0), int(info.get("height") or 0)
    if w and h and (w, h) != (shape[1], shape[0]):
        log.warning("render: the result is of a %dx%d video, %s is %dx%d", w, h, name, shape[1], shape[0])


def render_overlay(video: Path, result: Path | dict[str, Any], out: Path, *, max_frames: int = 0, every: int = 1,
                   max_side: int = 0) -> Path:  # fmt: skip
    """Write ``video`` with ``result`` drawn over it to ``out`` (``.mp4``/``.avi`` video, or ``.gif``).

    Args:
        video: the source video.
        result: prelabel's ``result.json`` (path or parsed document).
        out: output path; its suffix picks the format.
        max_frames: stop after this many source frames (0: all).
        every: keep every N-th frame (GIFs get large).
        max_side: downscale so the longest side is at most this (0: keep the size).

    Raises:
        InvalidInputError: unknown output suffix or unreadable inputs.
    """
    doc = json.loads(Path(result).read_text()) if isinstance(result, Path) else result
    boxes, actions = _index(doc)
    suffix = out.suffix.lower()
    if suffix not in (".mp4", ".avi", ".gif"):
        raise InvalidInputError(f"render: unsupported output {out.name}; use .mp4, .avi or .gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    frames: list[np.ndarray] = []
    stamps: list[float] = []  # each GIF frame's container time: a variable-frame-rate video keeps its timing
    writer: cv2.VideoWriter | None = None
    fps = float(doc.get("info", {}).get("fps") or 25.0) / max(every, 1)
    seen = 0
    for frame in read_frames(video, 0, max_frames or None):
        if seen == 0:
            _check_match(doc, frame.image.shape, Path(video).name)
        seen += 1
        if frame.frame_idx % max(every, 1):
            continue
        img = draw_frame(frame.image, boxes.get(frame.frame_idx, []), actions, frame.frame_idx)
        if max_side and max(img.shape[:2]) > max_side:
            s = max_side / max(img.shape[:2])
            img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        if suffix == ".gif":
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            stamps.append(frame.ts_ms)
            continue
        if writer is None:
            fourcc = cv2.VideoWriter.fourcc(*("mp4v" if suffix == ".mp4" else "MJPG"))
            writer = cv2.VideoWriter(str(out), fourcc, fps, (img.shape[1], img.shape[0]))
        writer.write(img)
    if writer is not None:
        writer.release()
    expected = int(doc.get("info", {}).get("num_frames") or 0)
    if not max_frames and expected and seen != expected:
        log.warning("render: the result is of a %d-frame video, %s has %d frames", expected, Path(video).name, seen)
    if suffix == ".gif":
        from PIL import Image

        if not frames:
            raise InvalidInputError(f"render: no frames read from {video.name}")
        pil = [Image.fromarray(f) for f in frames]
        step = 1000.0 / max(fps, 1e-3)
        gaps = np.diff(stamps) if len(stamps) > 1 else np.array([step])
        durations = [max(1, round(float(d))) for d in [*gaps, float(np.median(gaps))]]
        pil[0].save(out, save_all=True, append_images=pil[1:], duration=durations, loop=0)
    log.info("rendered %s", out)
    return out
