"""Training pipeline pieces: YOLO label export and the derivation of the shipped detector and pose model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from prelabel.errors import InvalidInputError
from prelabel.synthetic import generate
from prelabel.training.dataset import (
    COCO17_FLIP_IDX,
    DatasetSpec,
    export_yolo_dataset,
    frame_labels,
    preset_for_seed,
    write_data_yaml,
)
from prelabel.training.train import _save, derive_models
from prelabel.types import COCO17_KEYPOINTS


def test_flip_idx_swaps_left_and_right() -> None:
    for i, j in enumerate(COCO17_FLIP_IDX):
        a, b = COCO17_KEYPOINTS[i], COCO17_KEYPOINTS[j]
        assert a.replace("left", "right") == b or a.replace("right", "left") == b or a == b == "nose"


def test_frame_labels_match_ground_truth() -> None:
    scene = generate("ball", 4, num_frames=20, render=False)
    f = next(b.frame_idx for t in scene.tracks if t.class_name == "ball" for b in t.boxes if b.score > 0.5)
    lines = frame_labels(scene, f, 0.2, 4.0, pose=True)
    expected = [
        t for t in scene.tracks if (b := t.at(f)) is not None and b.score >= 0.2 and min(b.xyxy[2:] - b.xyxy[:2]) >= 4
    ]
    assert len(lines) == len(expected) and lines
    w, h = scene.info.width, scene.info.height
    for line, t in zip(lines, expected, strict=True):
        vals = [float(v) for v in line.split()]
        assert len(vals) == 5 + 17 * 3 and int(vals[0]) == t.class_id
        box = t.at(f)
        assert box is not None
        cx, cy = (box.xyxy[0] + box.xyxy[2]) / 2 / w, (box.xyxy[1] + box.xyxy[3]) / 2 / h
        assert vals[1] == pytest.approx(cx, abs=1e-5) and vals[2] == pytest.approx(cy, abs=1e-5)
        kp = np.array(vals[5:]).reshape(17, 3)
        if t.class_name == "ball":
            assert not kp.any()
        else:
            assert box.skeleton is not None
            assert np.array_equal(kp[:, 2] == 2, box.skeleton.present)
    det_lines = frame_labels(scene, f, 0.2, 4.0, pose=False, person_only=True)
    assert all(len(line.split()) == 5 and line.startswith("0 ") for line in det_lines)


def test_export_writes_images_labels_and_yaml(tmp_path: Path) -> None:
    spec = DatasetSpec((3, 4), frames_per_scene=2, scene_frames=12)
    n = export_yolo_dataset(spec, tmp_path, "train", pose=True)
    assert n == 4
    imgs = sorted((tmp_path / "images" / "train").glob("*.jpg"))
    labels = sorted((tmp_path / "labels" / "train").glob("*.txt"))
    assert [p.stem for p in imgs] == [p.stem for p in labels] and len(imgs) == 4
    assert all(p.stem.startswith(preset_for_seed(int(p.stem.split("_")[-2]), spec.mix)) for p in imgs)
    data = yaml.safe_load(write_data_yaml(tmp_path, pose=True).read_text())
    assert data["kpt_shape"] == [17, 3] and data["names"] == {0: "person", 1: "ball"}
    # A resumed export reuses the files instead of regenerating them.
    before = imgs[0].stat().st_mtime_ns
    assert export_yolo_dataset(spec, tmp_path, "train", pose=True) == 4
    assert imgs[0].stat().st_mtime_ns == before
    with pytest.raises(InvalidInputError, match="frames_per_scene"):
        DatasetSpec((1,), frames_per_scene=20, scene_frames=10)


def test_parallel_export_writes_the_same_files(tmp_path: Path) -> None:
    spec = DatasetSpec((5, 6, 7), frames_per_scene=2, scene_frames=10)
    assert export_yolo_dataset(spec, tmp_path / "one", "train", pose=True) == 6
    assert export_yolo_dataset(spec, tmp_path / "two", "train", pose=True, jobs=2) == 6
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.*"))
    assert one == two and len(one) == 12
    assert all((tmp_path / "one" / r).read_bytes() == (tmp_path / "two" / r).read_bytes() for r in one)
    with pytest.raises(InvalidInputError, match="jobs"):
        export_yolo_dataset(spec, tmp_path / "three", "train", pose=True, jobs=0)


def test_training_device_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    from prelabel.errors import FailedPreconditionError
    from prelabel.training.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(FailedPreconditionError, match="no CUDA device"):
        resolve_device("0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "0" and resolve_device("1") == "1"


def test_derived_models_reproduce_the_trained_network(tmp_path: Path) -> None:
    from ultralytics import YOLO
    from ultralytics.nn.tasks import PoseModel

    torch.manual_seed(0)
    net = PoseModel("yolo11n-pose.yaml", nc=2, data_kpt_shape=(17, 3), verbose=False)
    net.names = {0: "person", 1: "ball"}
    trained = tmp_path / "trained.pt"
    _save(net, trained, {"task": "pose"})
    det_path, pose_path = tmp_path / "det.pt", tmp_path / "pose.pt"
    derive_models(trained, det_path, pose_path, 320)
    det, pose, ref = (YOLO(str(p)) for p in (det_path, pose_path, trained))
    assert det.task == "detect" and det.names == {0: "person", 1: "ball"}
    assert pose.task == "pose" and pose.names == {0: "person"}
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        y_ref = ref.model.float().eval()(x)[0]  # type: ignore[union-attr,operator]
        y_det = det.model.float().eval()(x)[0]  # type: ignore[union-attr,operator]
        y_pose = pose.model.float().eval()(x)[0]  # type: ignore[union-attr,operator]
    assert y_det.shape[1] == 4 + 2 and y_pose.shape[1] == 4 + 1 + 17 * 3
    assert torch.allclose(y_det, y_ref[:, :6], atol=1e-4)
    assert torch.allclose(y_pose[:, :5], y_ref[:, :5], atol=1e-4)
    assert torch.allclose(y_pose[:, 5:], y_ref[:, 6:], atol=1e-3)
    for p in (det_path, pose_path):
        assert p.stat().st_size < 10_000_000


def test_pose_labels_read_back_the_exported_persons(tmp_path: Path) -> None:
    from prelabel.training.evaluate import _pose_labels

    scene = generate("default", 3, num_frames=10, render=False)
    w, h = scene.info.width, scene.info.height
    lines = frame_labels(scene, 5, 0.2, 4.0, pose=True, person_only=True)
    (tmp_path / "f.txt").write_text("".join(line + "\n" for line in lines))
    got = _pose_labels(tmp_path / "f.txt", w, h)
    persons = [b for t in scene.tracks if t.class_name == "person" and (b := t.at(5)) is not None]
    assert len(got) == len(lines) >= 1
    for xyxy, kp in got:  # each read-back person is one of the scene's, box and visible keypoints to the pixel
        match = min(persons, key=lambda b: float(np.abs(b.xyxy - xyxy).max()))
        assert np.abs(match.xyxy - xyxy).max() < 0.01 * w
        assert match.skeleton is not None
        vis = kp[:, 2] > 0
        np.testing.assert_array_equal(vis, match.skeleton.present)
        np.testing.assert_allclose(kp[vis, :2], match.skeleton.keypoints[vis, :2], atol=0.01)


def test_init_checkpoint_weights_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Continuing a run (``init``) must train from the checkpoint's weights; Ultralytics drops them with
    ``pretrained=False``."""
    import ultralytics

    from prelabel.training.recipe import TrainRecipe
    from prelabel.training.train import train_network

    calls: list[dict[str, object]] = []

    class FakeYOLO:
        def __init__(self, model: str) -> None:
            self.model = model

        def train(self, **kwargs: object) -> None:
            calls.append({"model": self.model, **kwargs})
            weights = Path(str(kwargs["project"])) / str(kwargs["name"]) / "weights"
            weights.mkdir(parents=True, exist_ok=True)
            (weights / "last.pt").write_bytes(b"")

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    train_network(TrainRecipe(init="run-a-last.pt"), tmp_path / "data.yaml", tmp_path)
    train_network(TrainRecipe(), tmp_path / "data.yaml", tmp_path)
    assert (calls[0]["model"], calls[0]["pretrained"]) == ("run-a-last.pt", True)
    assert (calls[1]["model"], calls[1]["pretrained"]) == ("yolo11n-pose.yaml", False)
    assert calls[0]["device"] in ("0", "cpu")  # device "auto": a CUDA GPU when there is one


def test_cli_records_the_training_recipe_and_eval_only_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--no-eval`` writes the recipe beside the weights; a later ``--eval-only`` measures them and keeps the
    recipe of the run that trained them, not its own arguments."""
    import json

    import prelabel.training.evaluate as evaluate
    import prelabel.training.train as train
    from prelabel.training.cli import EVAL_NAME, train_synthetic_main

    init = tmp_path / "init.pt"
    init.write_bytes(b"")
    monkeypatch.setattr(train, "build_train_dataset", lambda recipe, root, jobs=1: root / "data.yaml")
    monkeypatch.setattr(train, "train_network", lambda recipe, data, project: project / "last.pt")
    monkeypatch.setattr(train, "derive_models", lambda trained, det, pose, imgsz: None)
    monkeypatch.setattr(evaluate, "evaluate_models", lambda det, pose, recipe, root: {"metrics": {"m": 1.0}})
    models = tmp_path / "models"
    models.mkdir()
    common = ["--models-dir", str(models), "--work", str(tmp_path / "work")]
    args = ["--no-eval", "--init", str(init), "--batch", "32", "--train-scenes", "30", "--jobs", "1"]
    assert train_synthetic_main(common + args) == 0
    recorded = json.loads((models / EVAL_NAME).read_text())
    assert "metrics" not in recorded
    assert (recorded["recipe"]["batch"], recorded["recipe"]["train_seeds"]) == (32, [0, 30])
    assert train_synthetic_main([*common, "--eval-only"]) == 0
    measured = json.loads((models / EVAL_NAME).read_text())
    assert measured["metrics"] == {"m": 1.0} and measured["recipe"] == recorded["recipe"]
    with pytest.raises(InvalidInputError, match="exclude"):
        train_synthetic_main([*common, "--eval-only", "--no-eval"])


def test_pose_ap_by_size_scores_the_shipped_pose_model(tmp_path: Path) -> None:
    from prelabel.training.evaluate import pose_ap_by_size

    weights = Path(__file__).resolve().parents[2] / "models" / "prelabel-synth-pose.pt"
    if not weights.exists():
        pytest.skip("shipped pose model absent")
    export_yolo_dataset(DatasetSpec((1_000_000,), 3, 30), tmp_path, "val", pose=True, person_only=True)
    n_gt = sum(
        any(float(v) > 0 for v in line.split()[7::3])
        for f in (tmp_path / "labels" / "val").glob("*.txt")
        for line in f.read_text().splitlines()
    )
    r = pose_ap_by_size(weights, tmp_path, 320)
    assert r["n_small"] + r["n_medium"] + r["n_large"] == n_gt > 0
    assert 0.05 < r["ap"] <= r["ap50"] <= 1.0  # a trained model on held-out scenes: far above chance, below perfect
