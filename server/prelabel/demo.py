"""The main job on embedded defaults: generate a clip with exact ground truth, label it through a real local
server with the registry's default detector, and print a summary measured against the ground truth.

Nothing is downloaded and no server needs installing: the server runs in this process on a free port and is
called through the real client, exactly as an annotation tool would.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from prelabel.client import PrelabelClient
from prelabel.settings import Settings, default_models_dir
from prelabel.types import Detections, Track

log = logging.getLogger(__name__)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return np.asarray(inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9))


def detection_scores(gt_tracks: list[Track], dets: dict[int, Detections], iou_thr: float = 0.5) -> dict[str, float]:
    """Recall and precision of per-frame detections against ground truth boxes (greedy matching by IoU)."""
    from scipy.optimize import linear_sum_assignment

    tp = fp = fn = 0
    for frame_idx, d in dets.items():
        gt = np.array([b.xyxy for t in gt_tracks for b in t.boxes if b.frame_idx == frame_idx]).reshape(-1, 4)
        iou = box_iou(gt, d.xyxy)
        matched = 0
        if iou.size:
            rows, cols = linear_sum_assignment(-iou)
            matched = int(np.sum(iou[rows, cols] >= iou_thr))
        tp += matched
        fn += len(gt) - matched
        fp += len(d) - matched
    return {
        "recall": tp / max(tp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "true_positives": tp,
        "false_positives": fp,
        "missed": fn,
    }


def run_demo(out: Path, seed: int = 7, frames: int = 90) -> int:
    """Generate, serve, label, summarise. Returns the process exit status."""
    from prelabel.registry import ModelRegistry
    from prelabel.service.server import PrelabelServer
    from prelabel.synthetic import generate, write_scene

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scene = generate("default", seed, num_frames=frames)
    paths = write_scene(scene, out / "clip")
    video = paths["video"]
    registry = ModelRegistry.load(default_models_dir() / "registry.yaml")
    detector = registry.defaults.get("detect", "")
    note = ""
    if not detector or not registry.get(detector).available:
        note = f"default detector {detector!r} has no weights here: fell back to the untrained arch-yolo11n"
        log.warning(note)
        detector = "arch-yolo11n"
    settings = Settings(
        port=0,
        preload=[detector],
        allowed_roots=[out.resolve()],
        data_dir=Path(tempfile.mkdtemp(prefix="prelabel-demo-")),
        drain_s=0.0,
    )
    server = PrelabelServer(settings)
    server.start()
    try:
        with PrelabelClient(f"127.0.0.1:{server.port}") as client:
            client.wait_until_serving()
            upload_id = client.upload_video(video)
            from prelabel.video.decode import read_frames

            t_detect = time.perf_counter()
            dets: dict[int, Detections] = {}
            batch: list[Any] = []
            for frame in read_frames(video):
                batch.append(frame)
                if len(batch) == 8:
                    for f, d in zip(batch, client.detect([b.image for b in batch], detector), strict=True):
                        dets[f.frame_idx] = d
                    batch = []
            if batch:
                for f, d in zip(batch, client.detect([b.image for b in batch], detector), strict=True):
                    dets[f.frame_idx] = d
            detect_s = time.perf_counter() - t_detect
    finally:
        server.stop(grace=1.0)
    scores = detection_scores(scene.tracks, dets)
    summary = {
        "clip": str(video),
        "frames": scene.info.num_frames,
        "size": f"{scene.info.width}x{scene.info.height}",
        "fps": round(scene.info.fps, 2),
        "people": sum(t.class_name == "person" for t in scene.tracks),
        "detector": detector,
        "upload_id": upload_id,
        "detect_frames_per_s": round(len(dets) / max(detect_s, 1e-9), 2),
        "detection_vs_ground_truth_iou50": {k: round(v, 4) for k, v in scores.items()},
        "total_s": round(time.perf_counter() - t0, 2),
    }
    if note:
        summary["note"] = note
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
