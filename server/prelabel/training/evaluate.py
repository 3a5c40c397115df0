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

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.synthetic import generate
from prelabel.training.dataset import DatasetSpec, export_yolo_dataset, write_data_yaml
from prelabel.training.recipe import TrainRecipe
from prelabel.types import NUM_KEYPOINTS

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


BOX_AREA_TO_OBJECT_AREA = 0.53
"""Object area (OKS ``s^2``) of a box-only ground truth as a fraction of its box area (Ultralytics' convention)."""


def _pose_labels(label_file: Path, width: int, height: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(xyxy (4,), keypoints (17, 3) with visibility) per person (class 0) of one YOLO pose label file, in pixels.

    Raises:
        InvalidInputError: a line without ``1 + 4 + 17 * 3`` values (names the file and line).
    """
    out = []
    for n, line in enumerate(label_file.read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 5 + 3 * NUM_KEYPOINTS:
            raise InvalidInputError(
                f"{label_file.name} line {n}: expected {5 + 3 * NUM_KEYPOINTS} values (pose label), got {len(fields)}"
            )
        if int(float(fields[0])) != 0:
            continue
        v = np.array(fields[1:], np.float64)
        cx, cy, w, h = v[:4] * [width, height, width, height]
        kp = v[4:].reshape(-1, 3) * [width, height, 1.0]
        out.append((np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), kp))
    return out


def pose_ap_by_size(pose_path: Path, root: Path, imgsz: int) -> dict[str, float | int]:
    """COCO keypoint AP of the pose model on the held-out pose images, overall and by COCO size range.

    Runs ``pose_path`` on ``root/images/val`` (confidence 0.001, at most 20 persons per image, as COCO) and scores
    with pycocotools (:func:`prelabel.metrics.pose.oks_ap`), object area = 0.53 x box area. COCO's ``medium`` is an
    object area of 32^2-96^2 px^2 and ``large`` above 96^2 (in the 640x360 source frames).

    Returns:
        ``ap``, ``ap50``, ``ap_medium``, ``ap_large`` and the counts ``n_small``, ``n_medium``, ``n_large`` of
        ground-truth persons with at least one visible keypoint (the ones COCO scores).
    """
    import cv2
    from ultralytics import YOLO

    from prelabel.metrics.pose import PoseInstance, oks_ap
    from prelabel.types import Skeleton

    model = YOLO(str(pose_path))
    gts: list[PoseInstance] = []
    dts: list[PoseInstance] = []
    images = sorted((root / "images" / "val").glob("*.jpg"))
    for image_id, img_path in enumerate(images):
        img = cv2.imread(str(img_path))
        if img is None:
            raise NotFoundError(f"held-out image unreadable: {img_path}")
        h, w = img.shape[:2]
        for xyxy, kp in _pose_labels(root / "labels" / "val" / f"{img_path.stem}.txt", w, h):
            area = BOX_AREA_TO_OBJECT_AREA * float((xyxy[2] - xyxy[0]) * (xyxy[3] - xyxy[1]))
            sk = Skeleton(np.c_[kp[:, :2], np.ones(len(kp))], kp[:, 2] > 0)
            gts.append(PoseInstance(image_id, sk, xyxy.astype(np.float32), area=area))
        preds: Any = model.predict(img, imgsz=imgsz, conf=0.001, max_det=20, device="cpu", verbose=False)
        res = preds[0]
        if res.keypoints is None or res.boxes is None:
            continue
        kps = res.keypoints.data.cpu().numpy()
        for xyxy, score, kp in zip(res.boxes.xyxy.cpu().numpy(), res.boxes.conf.cpu().numpy(), kps, strict=True):
            dts.append(PoseInstance(image_id, Skeleton(kp, np.ones(len(kp), bool)), xyxy, float(score)))
    r = oks_ap(gts, dts)
    areas = np.array([g.object_area for g in gts if g.skeleton.present.any()])  # COCO ignores the others
    return {
        "ap": round(r.ap, 4),
        "ap50": round(r.ap50, 4),
        "ap_medium": round(r.ap_medium, 4),
        "ap_large": round(r.ap_large, 4),
        "n_small": int((areas < 32**2).sum()),
        "n_medium": int(((areas >= 32**2) & (areas < 96**2)).sum()),
        "n_large": int((areas >= 96**2).sum()),
    }


def _det_ap50(result: Any) -> dict[str, float]:
    """Box AP at IoU 0.5 of an Ultralytics detection validation, per class (person 0, ball 1), rounded."""
    ap50 = dict(zip([int(c) for c in result.ap_class_index], np.asarray(result.box.ap50).tolist(), strict=True))
    return {"det_map50_person": round(float(ap50.get(0, 0.0)), 4), "det_map50_ball": round(float(ap50.get(1, 0.0)), 4)}


def evaluate_models(
    det_path: Path,
    pose_path: Path,
    recipe: TrainRecipe,
    root: Path,
    det_sizes: tuple[int, ...] = (416, 480),
) -> dict[str, Any]:
    """Measure the detector and pose model on held-out generated scenes.

    Returns:
        ``{"metrics": {...}, "heldout": {...}}`` with ``det_map50_person``, ``det_map50_ball``, ``pose_oks_ap``
        (AP over OKS 0.50:0.95), ``pose_oks_ap50``, ``pose_coco`` (:func:`pose_ap_by_size`), and CPU ms per frame
        of each model, all at the training size; ``det_by_imgsz`` and ``pose_by_imgsz``: the detector's mAP50 per
        class, the pose model's OKS AP and AP50, and the CPU ms per frame of each, at each inference size of
        ``det_sizes`` too (small objects and far people gain from a larger input).

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
    pm = YOLO(str(pose_path)).val(data=str(pose_yaml), project=str(root / "runs"), name="pose", exist_ok=True, **common)
    metrics = {
        **_det_ap50(dm),
        "det_map50_95": round(float(dm.box.map), 4),
        "pose_oks_ap": round(float(pm.pose.map), 4),
        "pose_oks_ap50": round(float(pm.pose.map50), 4),
        "pose_box_map50": round(float(pm.box.map50), 4),
        "pose_coco": pose_ap_by_size(pose_path, root / "pose", recipe.imgsz),
        "det_cpu_ms_per_frame": round(cpu_ms_per_frame(det_path, recipe.imgsz), 1),
        "pose_cpu_ms_per_frame": round(cpu_ms_per_frame(pose_path, recipe.imgsz), 1),
    }
    by_size, pose_by_size = {}, {}
    for size in det_sizes:
        sized = common | {"imgsz": size, "project": str(root / "runs"), "exist_ok": True}
        r = YOLO(str(det_path)).val(data=str(det_yaml), name=f"det{size}", **sized)
        by_size[str(size)] = {
            **_det_ap50(r),
            "det_cpu_ms_per_frame": round(cpu_ms_per_frame(det_path, size), 1),
        }
        rp = YOLO(str(pose_path)).val(data=str(pose_yaml), name=f"pose{size}", **sized)
        pose_by_size[str(size)] = {
            "pose_oks_ap": round(float(rp.pose.map), 4),
            "pose_oks_ap50": round(float(rp.pose.map50), 4),
            "pose_cpu_ms_per_frame": round(cpu_ms_per_frame(pose_path, size), 1),
        }
    metrics["det_by_imgsz"] = by_size
    metrics["pose_by_imgsz"] = pose_by_size
    n_images = len(list((root / "det" / "images" / "val").glob("*.jpg")))
    heldout = {"seeds": list(recipe.heldout_seeds), "images": n_images, "imgsz": recipe.imgsz, "cpu_threads": 1}
    logger.info("held-out metrics: %s", metrics)
    return {"metrics": metrics, "heldout": heldout}
