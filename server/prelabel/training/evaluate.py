"""Held-out evaluation of the shipped synthetic models: detector mAP50 per class, pose OKS AP, CPU ms per frame.

Held-out scenes use seeds that training never sees (``TrainRecipe.heldout_seeds``), sampled with the same preset
mixture and labelling rule as training. Metrics come from Ultralytics' validator: box AP at IoU 0.5 per class, and
pose AP averaged over OKS thresholds 0.50:0.95 (COCO sigmas, area from the box).
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prelabel.errors import NotFoundError
from prelabel.synthetic import generate
from prelabel.training.dataset import DatasetSpec, export_yolo_dataset, write_data_yaml
from prelabel.training.recipe import TrainRecipe

logger = logging.getLogger(__name__)


def _heldout(recipe: TrainRecipe, root: Path, *, pose: bool) -> Path:
    seeds = tuple(range(recipe.heldout_seeds[0], recipe.heldout_seeds[0] + recipe.heldout_seeds[1]))
    spec = DatasetSpec(seeds, frames_per_scene=5, scene_frames=recipe.scene_frames, mix=recipe.mix)
    if not (root / "images" / "val").exists():
        export_yolo_dataset(spec, root, "val", pose=pose, person_only=pose)
    yaml_path = write_data_yaml(root, pose=pose, person_only=pose)
    # Validation-only dataset: point "train" at the same images (never trained on).
    text = yaml_path.read_text().replace("train: images/train", "train: images/val")
    yaml_path.write_text(text)
    return yaml_path


def cpu_ms_per_frame(weights: Path, imgsz: int, frames: int = 30, threads: int = 1) -> float:
    """Median CPU milliseconds per frame of ``YOLO(weights).predict`` on held-out 640x360 frames (batch 1)."""
    from ultralytics import YOLO

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = YOLO(str(weights))
        scene = generate("default", 2_000_000, num_frames=frames)
        assert scene.frames is not None
        model.predict(scene.frames[0], imgsz=imgsz, device="cpu", verbose=False)
        times = []
        for frame in scene.frames:
            t0 = time.perf_counter()
            model.predict(frame, imgsz=imgsz, device="cpu", verbose=False)
            times.append((time.perf_counter() - t0) * 1000.0)
        return float(statistics.median(times))
    finally:
        torch.set_num_threads(old)


def evaluate_models(det_path: Path, pose_path: Path, recipe: TrainRecipe, root: Path) -> dict[str, Any]:
    """Measure the detector and pose model on held-out generated scenes.

    Returns:
        ``{"metrics": {...}, "heldout": {...}}`` with ``det_map50_person``, ``det_map50_ball``, ``pose_oks_ap``
        (AP over OKS 0.50:0.95), ``pose_oks_ap50``, and CPU ms per frame of each model.

    Raises:
        NotFoundError: a weights file is missing.
    """
    from ultralytics import YOLO

    for p in (det_path, pose_path):
        if not p.exists():
            raise NotFoundError(f"weights not found: {p} (run `prelabel train-synthetic` to make them)")
    det_yaml = _heldout(recipe, root / "det", pose=False)
    pose_yaml = _heldout(recipe, root / "pose", pose=True)
    common = dict(imgsz=recipe.imgsz, batch=16, device="cpu", plots=False, verbose=False, workers=0, split="val")
    dm = YOLO(str(det_path)).val(data=str(det_yaml), project=str(root / "runs"), name="det", exist_ok=True, **common)
    ap50 = dict(zip([int(c) for c in dm.ap_class_index], np.asarray(dm.box.ap50).tolist(), strict=True))
    pm = YOLO(str(pose_path)).val(data=str(pose_yaml), project=str(root / "runs"), name="pose", exist_ok=True, **common)
    metrics = {
        "det_map50_person": round(float(ap50.get(0, 0.0)), 4),
        "det_map50_ball": round(float(ap50.get(1, 0.0)), 4),
        "det_map50_95": round(float(dm.box.map), 4),
        "pose_oks_ap": round(float(pm.pose.map), 4),
        "pose_oks_ap50": round(float(pm.pose.map50), 4),
        "pose_box_map50": round(float(pm.box.map50), 4),
        "det_cpu_ms_per_frame": round(cpu_ms_per_frame(det_path, recipe.imgsz), 1),
        "pose_cpu_ms_per_frame": round(cpu_ms_per_frame(pose_path, recipe.imgsz), 1),
    }
    n_images = len(list((root / "det" / "images" / "val").glob("*.jpg")))
    heldout = {"seeds": list(recipe.heldout_seeds), "images": n_images, "imgsz": recipe.imgsz, "cpu_threads": 1}
    logger.info("held-out metrics: %s", metrics)
    return {"metrics": metrics, "heldout": heldout}
