"""The shipped synthetic models load offline and find the people in held-out generated clips.

The detector check is the issue's: person recall >= 0.9 at IoU 0.5 (the shipped detector measures 0.981, 106/108,
pooled over these clips at conf 0.25 and the registry's inference size; see models/prelabel-synth.md). The pose
check's threshold is what the shipped pose model reaches with margin.
An untrained or broken model scores near 0 on both checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from prelabel.geometry import box_iou
from prelabel.synthetic import Scene, generate
from prelabel.types import COCO17_SIGMAS, TrackedBox

MODELS = Path(__file__).resolve().parents[2] / "models"
DET = MODELS / "prelabel-synth-det.pt"
POSE = MODELS / "prelabel-synth-pose.pt"
HELDOUT_SEEDS = (3_000_017, 3_000_018, 3_000_019)  # never used for training (seeds 0..2999) nor evaluation (1_000_000+)
FRAMES = 24
MIN_RECALL = 0.9  # measured 0.981 (106/108) at the registry's 320 px; the target
MIN_MEAN_OKS = 0.72  # measured 0.885 at the registry's 320 px (71 of 73 people matched)


@pytest.fixture(scope="module")
def clips() -> list[Scene]:
    return [generate("default", seed, num_frames=FRAMES) for seed in HELDOUT_SEEDS]


def _people(scene: Scene, f: int) -> list[TrackedBox]:
    out = []
    for t in scene.tracks:
        b = t.at(f)
        if t.class_name == "person" and b is not None and b.score >= 0.5 and min(b.xyxy[2:] - b.xyxy[:2]) >= 8:
            out.append(b)
    return out


def test_registry_defaults_are_the_shipped_models() -> None:
    reg = yaml.safe_load((MODELS / "registry.yaml").read_text())
    by_name = {m["name"]: m for m in reg["models"]}
    assert reg["default_detector"] == "prelabel-synth-det" and reg["default_pose"] == "prelabel-synth-pose"
    for name, path in (("prelabel-synth-det", DET), ("prelabel-synth-pose", POSE)):
        assert (MODELS / by_name[name]["weights"]).resolve() == path.resolve()
        assert path.stat().st_size < 10_000_000
    assert "yolo11n.pt" in {m.get("weights") for m in reg["models"]}


def _registry_imgsz(name: str) -> int:
    """The inference size the registry gives a model (what the service runs it at)."""
    reg = yaml.safe_load((MODELS / "registry.yaml").read_text())
    return int(next(m for m in reg["models"] if m["name"] == name)["imgsz"])


def test_detector_finds_the_people(clips: list[Scene]) -> None:
    from ultralytics import YOLO

    torch.set_num_threads(1)
    imgsz = _registry_imgsz("prelabel-synth-det")
    model = YOLO(str(DET))
    assert model.task == "detect" and list(model.names.values()) == ["person", "ball"]
    found = total = 0
    for clip in clips:
        assert clip.frames is not None
        for f in range(0, FRAMES, 2):
            gt = _people(clip, f)
            if not gt:
                continue
            r = model.predict(clip.frames[f], imgsz=imgsz, conf=0.25, device="cpu", verbose=False)[0]
            boxes = r.boxes.xyxy.numpy()[r.boxes.cls.numpy() == 0]
            total += len(gt)
            if len(boxes):
                found += int((box_iou(np.stack([b.xyxy for b in gt]), boxes).max(axis=1) >= 0.5).sum())
    assert total >= 60
    recall = found / total
    assert recall >= MIN_RECALL, (
        f"person recall at IoU 0.5: expected >= {MIN_RECALL}, got {recall:.3f} ({found}/{total})"
    )


def test_pose_model_finds_people_and_keypoints(clips: list[Scene]) -> None:
    from ultralytics import YOLO

    torch.set_num_threads(1)
    model = YOLO(str(POSE))
    imgsz = _registry_imgsz("prelabel-synth-pose")
    assert model.task == "pose" and list(model.names.values()) == ["person"]
    sig = np.array(COCO17_SIGMAS)
    found = total = 0
    oks_all: list[float] = []
    for clip in clips:
        assert clip.frames is not None
        for f in range(0, FRAMES, 3):
            gt = _people(clip, f)
            if not gt:
                continue
            r = model.predict(clip.frames[f], imgsz=imgsz, conf=0.25, device="cpu", verbose=False)[0]
            boxes = r.boxes.xyxy.numpy()
            kps = r.keypoints.xy.numpy() if r.keypoints is not None else np.zeros((0, 17, 2))
            total += len(gt)
            if not len(boxes):
                continue
            iou = box_iou(np.stack([b.xyxy for b in gt]), boxes)
            for i, b in enumerate(gt):
                j = int(iou[i].argmax())
                if iou[i, j] < 0.5:
                    continue
                found += 1
                assert b.skeleton is not None
                vis = b.skeleton.present
                # OKS as in COCO (sigmas doubled as variances' scale, area from the box as Ultralytics does).
                area = float(np.prod(b.xyxy[2:] - b.xyxy[:2])) * 0.53
                d2 = ((kps[j] - b.skeleton.keypoints[:, :2]) ** 2).sum(axis=1)
                oks_all.append(float(np.exp(-d2 / (2 * area * (2 * sig) ** 2 + 1e-9))[vis].mean()))
    assert total >= 30 and found / total >= MIN_RECALL, f"pose-model person recall: got {found}/{total}"
    mean_oks = float(np.mean(oks_all))
    assert mean_oks >= MIN_MEAN_OKS, f"mean OKS of matched people: expected >= {MIN_MEAN_OKS}, got {mean_oks:.3f}"
