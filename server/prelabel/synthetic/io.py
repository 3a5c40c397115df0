"""Writing scenes to disk and reading their ground truth back.

Layout of a scene folder::

    video.mp4         frames (MPEG-4 part 2, as OpenCV's mp4v; a variable-frame-rate scene's frames carry their
                      real times as presentation timestamps, to the millisecond; timestamps.json has them exactly)
    gt/gt.txt         MOTChallenge: frame (1-based), id, left, top, width, height, 1, class, visibility
                      (class: 1 person, 2 ball; visibility: visible fraction in [0, 1])
    seqinfo.ini       MOTChallenge sequence info (name, frame rate, length, size)
    keypoints.json    COCO keypoints: one image per frame, one annotation per visible person per frame
                      (``keypoints`` x, y, v with v=2 visible and 0, 0, 0 missing; ``track_id``, ``frame_idx``)
    segments.json     action segments per person track (inclusive frame bounds and timestamps)
    timestamps.json   ``{"ts_ms": [...]}`` per frame, milliseconds
    scene.json        preset, seed, video info, class names
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.synthetic.scene import CLASS_NAMES, GT_METHOD, Scene
from prelabel.types import (
    COCO17_EDGES,
    COCO17_KEYPOINTS,
    NUM_KEYPOINTS,
    Segment,
    Skeleton,
    Source,
    Track,
    TrackedBox,
    VideoInfo,
)

logger = logging.getLogger(__name__)


def write_video(frames: np.ndarray, path: Path, fps: float, ts_ms: np.ndarray | None = None) -> None:
    """Write (T, H, W, 3) uint8 BGR frames to ``path`` with OpenCV's mp4v codec, or, when ``ts_ms`` (per-frame
    times) is not evenly spaced, with PyAV's MPEG-4 encoder and each frame's time as its presentation timestamp (a
    decoder then sees the variable frame rate; OpenCV's writer knows one rate only). Frames of an odd width or
    height go through PyAV too (OpenCV's writer drops the odd row or column).

    Raises:
        InvalidInputError: the frames have the wrong shape, ``ts_ms`` the wrong length or order, or the writer
            cannot be opened.
    """
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise InvalidInputError(f"frames: expected (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    h, w = frames.shape[1:3]
    if ts_ms is not None:
        ts = np.asarray(ts_ms, np.float64)
        if ts.shape != (len(frames),) or np.any(np.diff(np.round(ts)) <= 0):
            raise InvalidInputError(f"ts_ms: expected {len(frames)} increasing times (1 ms apart at least)")
        steps = np.diff(ts)
        if len(steps) and float(np.ptp(steps)) > 0.5:  # more than rounding: a variable frame rate
            _write_pyav(frames, path, fps, ts)
            return
    if w % 2 or h % 2:  # OpenCV's writer drops an odd row or column; the ground truth is of the whole frame
        _write_pyav(frames, path, fps, None)
        return
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise InvalidInputError(f"cannot open a video writer for {path}")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()


def _write_pyav(frames: np.ndarray, path: Path, fps: float, ts_ms: np.ndarray | None) -> None:
    """MPEG-4 part 2 in MP4 at about OpenCV's mp4v quality: per-frame presentation times in milliseconds, or
    (``ts_ms`` None) the constant rate ``fps`` exactly."""
    import av

    h, w = frames.shape[1:3]
    rate = Fraction(fps).limit_denominator(1001)
    tb = Fraction(1, 1000) if ts_ms is not None else 1 / rate
    pts = [round(t) for t in ts_ms.tolist()] if ts_ms is not None else list(range(len(frames)))
    try:
        with av.open(str(path), "w") as out:
            stream = out.add_stream("mpeg4", rate=rate if ts_ms is None else max(1, round(fps)))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = stream.codec_context.time_base = tb
            stream.bit_rate = int(0.22 * w * h * max(fps, 1.0))
            for frame, t in zip(frames, pts, strict=True):
                vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
                vf.pts, vf.time_base = t, tb
                out.mux(stream.encode(vf))
            out.mux(stream.encode())
    except av.FFmpegError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc}") from exc


def _coco(scene: Scene) -> dict[str, Any]:
    images = [
        {"id": f + 1, "frame_idx": f, "file_name": f"{f:06d}.jpg", "width": scene.info.width,
         "height": scene.info.height, "ts_ms": float(scene.ts_ms[f])}
        for f in range(scene.info.num_frames)
    ]  # fmt: skip
    anns: list[dict[str, Any]] = []
    for t in scene.tracks:
        if t.class_name != "person":
            continue
        for b in t.boxes:
            if b.skeleton is None:
                continue
            kp = b.skeleton.keypoints
            flat: list[float] = []
            for j in range(NUM_KEYPOINTS):
                if b.skeleton.present[j]:
                    flat += [float(kp[j, 0]), float(kp[j, 1]), 2]
                else:
                    flat += [0, 0, 0]
            x1, y1, x2, y2 = (float(v) for v in b.xyxy)
            anns.append(
                {"id": len(anns) + 1, "image_id": b.frame_idx + 1, "frame_idx": b.frame_idx, "category_id": 1,
                 "track_id": t.track_id, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                 "iscrowd": 0, "keypoints": flat, "num_keypoints": int(b.skeleton.present.sum()),
                 "visibility": b.score}
            )  # fmt: skip
    cats = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17_KEYPOINTS),
             "skeleton": [[a + 1, b + 1] for a, b in COCO17_EDGES]}]  # fmt: skip
    return {"images": images, "annotations": anns, "categories": cats}


def write_scene(scene: Scene, out_dir: Path) -> dict[str, Path]:
    """Write a scene's video (when rendered) and ground truth files into ``out_dir`` (created if missing).

    Returns:
        Paths by name: ``video`` (only when frames exist), ``gt``, ``seqinfo``, ``keypoints``, ``segments``,
        ``timestamps``, ``scene``.
    """
    out_dir = Path(out_dir)
    (out_dir / "gt").mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if scene.frames is not None:
        paths["video"] = out_dir / "video.mp4"
        write_video(scene.frames, paths["video"], scene.info.fps, scene.ts_ms)
    paths["gt"] = out_dir / "gt" / "gt.txt"
    rows = []
    for t in scene.tracks:
        for b in t.boxes:
            x1, y1, x2, y2 = (float(v) for v in b.xyxy)
            rows.append((b.frame_idx + 1, t.track_id, x1, y1, x2 - x1, y2 - y1, t.class_id + 1, b.score))
    rows.sort(key=lambda r: (r[0], r[1]))
    paths["gt"].write_text(
        "".join(f"{r[0]},{r[1]},{r[2]:g},{r[3]:g},{r[4]:g},{r[5]:g},1,{r[6]},{r[7]:.4f}\n" for r in rows)
    )
    paths["seqinfo"] = out_dir / "seqinfo.ini"
    paths["seqinfo"].write_text(
        f"[Sequence]\nname={scene.preset}-{scene.seed}\nimDir=img1\nframeRate={scene.info.fps:g}\n"
        f"seqLength={scene.info.num_frames}\nimWidth={scene.info.width}\nimHeight={scene.info.height}\nimExt=.jpg\n"
    )
    paths["keypoints"] = out_dir / "keypoints.json"
    paths["keypoints"].write_text(json.dumps(_coco(scene)))
    paths["segments"] = out_dir / "segments.json"
    segs = [
        {"track_id": s.track_id, "label": s.label, "start_frame": s.start_frame, "end_frame": s.end_frame,
         "start_ts_ms": s.start_ts_ms, "end_ts_ms": s.end_ts_ms}
        for s in scene.segments
    ]  # fmt: skip
    paths["segments"].write_text(json.dumps({"segments": segs}, indent=1))
    paths["timestamps"] = out_dir / "timestamps.json"
    paths["timestamps"].write_text(json.dumps({"ts_ms": [float(v) for v in scene.ts_ms]}))
    paths["scene"] = out_dir / "scene.json"
    i = scene.info
    meta = {"preset": scene.preset, "seed": scene.seed, "width": i.width, "height": i.height,
            "num_frames": i.num_frames, "fps": i.fps, "variable_frame_rate": i.variable_frame_rate,
            "duration_ms": i.duration_ms, "class_names": list(CLASS_NAMES)}  # fmt: skip
    paths["scene"].write_text(json.dumps(meta, indent=1))
    logger.info("wrote scene %s seed %d to %s", scene.preset, scene.seed, out_dir)
    return paths


def load_scene(out_dir: Path) -> Scene:
    """Read a scene's ground truth back from a folder written by :func:`write_scene` (``frames`` is None).

    Raises:
        NotFoundError: a ground truth file is missing.
        InvalidInputError: a file is malformed (names the file and row).
    """
    out_dir = Path(out_dir)
    need = {"scene": out_dir / "scene.json", "gt": out_dir / "gt" / "gt.txt", "keypoints": out_dir / "keypoints.json",
            "segments": out_dir / "segments.json", "timestamps": out_dir / "timestamps.json"}  # fmt: skip
    for name, p in need.items():
        if not p.exists():
            raise NotFoundError(f"scene {name} file missing: expected {p}")
    meta = json.loads(need["scene"].read_text())
    info = VideoInfo(int(meta["width"]), int(meta["height"]), int(meta["num_frames"]), float(meta["fps"]),
                     bool(meta["variable_frame_rate"]), float(meta["duration_ms"]))  # fmt: skip
    ts = np.asarray(json.loads(need["timestamps"].read_text())["ts_ms"], np.float64)
    if ts.shape != (info.num_frames,):
        raise InvalidInputError(f"{need['timestamps']}: expected {info.num_frames} timestamps, got {ts.shape[0]}")
    skeletons: dict[tuple[int, int], Skeleton] = {}
    for ann in json.loads(need["keypoints"].read_text())["annotations"]:
        kp = np.asarray(ann["keypoints"], np.float32).reshape(NUM_KEYPOINTS, 3)
        present = kp[:, 2] > 0
        arr = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        arr[present, :2] = kp[present, :2]
        arr[present, 2] = 1.0
        skeletons[(int(ann["track_id"]), int(ann["frame_idx"]))] = Skeleton(arr, present, 1.0)
    per_track: dict[int, list[TrackedBox]] = {}
    classes: dict[int, int] = {}
    for line_no, line in enumerate(need["gt"].read_text().splitlines(), start=1):
        parts = line.split(",")
        if len(parts) != 9:
            raise InvalidInputError(f"{need['gt']} row {line_no}: expected 9 fields, got {len(parts)}")
        f, tid = int(parts[0]) - 1, int(parts[1])
        x, y, bw, bh = (float(v) for v in parts[2:6])
        cls = int(parts[7]) - 1
        classes[tid] = cls
        tb = TrackedBox(f, np.array([x, y, x + bw, y + bh], np.float32), float(parts[8]), Source.UNSPECIFIED,
                        float(ts[f]), skeletons.get((tid, f)))  # fmt: skip
        per_track.setdefault(tid, []).append(tb)
    tracks = []
    for tid in sorted(per_track):
        bl = sorted(per_track[tid], key=lambda b: b.frame_idx)
        tracks.append(Track(tid, bl, classes[tid], CLASS_NAMES[classes[tid]]))
    segments = [
        Segment(int(s["track_id"]), str(s["label"]), int(s["start_frame"]), int(s["end_frame"]),
                float(s["start_ts_ms"]), float(s["end_ts_ms"]), 1.0, 0, 0, Source.UNSPECIFIED, GT_METHOD)
        for s in json.loads(need["segments"].read_text())["segments"]
    ]  # fmt: skip
    vis = {}
    for t in tracks:
        v = np.zeros(info.num_frames)
        for b in t.boxes:
            v[b.frame_idx] = b.score
        vis[t.track_id] = v
    return Scene(str(meta["preset"]), int(meta["seed"]), info, ts, tracks, segments, None, vis)
