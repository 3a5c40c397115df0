"""Pose backend: skeletons from a pose detector, batched; bad input gives domain errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from prelabel.detect.base import DetectOptions, Image
from prelabel.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from prelabel.images import decode_image
from prelabel.pose.backend import PoseOptions, estimate_pose, poses_from_detections
from prelabel.types import Detections

MODELS = Path(__file__).resolve().parents[2] / "models" / "registry.yaml"


class FakePoseDetector:
    """Two persons per image, with known keypoints; records the batches it is called with."""

    name = "fake-pose"
    task = "pose"
    class_names: Sequence[str] = ("person",)
    device = "cpu"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        self.calls.append(len(images))
        kp = np.zeros((2, 17, 3), np.float32)
        kp[:, :, 0] = np.arange(17) + 10
        kp[:, :, 1] = 20
        kp[:, :, 2] = 0.9
        kp[1, 3, 2] = 0.1  # one unsure keypoint
        xyxy = [[0, 0, 40, 40], [50, 0, 90, 40]]
        return [Detections(xyxy, [0.8, 0.6], [0, 0], self.class_names, kp) for _ in images]

    def warmup(self) -> None:
        """Nothing to warm."""


def test_estimate_pose_one_batched_call_and_marks_unsure_keypoints() -> None:
    det = FakePoseDetector()
    images = [np.zeros((64, 96, 3), np.uint8) for _ in range(3)]
    out = estimate_pose(det, images, PoseOptions(min_kpt_conf=0.3))
    assert det.calls == [3]
    assert [len(p) for p in out] == [2, 2, 2]
    p = out[0][1]
    assert p.score == pytest.approx(0.6) and p.xyxy.tolist() == [50, 0, 90, 40]
    assert p.skeleton.present.sum() == 16 and not p.skeleton.present[3]
    assert p.skeleton.keypoints[3, 2] == pytest.approx(0.1)  # confidence kept, marked missing
    assert np.array_equal(out[0][0].skeleton.keypoints[:, 0], np.arange(17) + 10)


def test_bad_input_raises_domain_errors() -> None:
    det = FakePoseDetector()
    with pytest.raises(InvalidInputError, match="empty batch"):
        estimate_pose(det, [])
    with pytest.raises(InvalidInputError, match="image 1"):
        estimate_pose(det, [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)])
    with pytest.raises(InvalidInputError, match="image 0"):
        estimate_pose(det, [np.zeros((8, 8, 3), np.float32)])  # type: ignore[list-item]
    detector_only = FakePoseDetector()
    detector_only.task = "detect"  # type: ignore[misc]
    with pytest.raises(InvalidInputError, match="expected a pose model"):
        estimate_pose(detector_only, [np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(FailedPreconditionError, match="keypoints"):
        poses_from_detections(Detections([[0, 0, 1, 1]], [0.5], [0]))
    with pytest.raises(InvalidInputError, match="min_kpt_conf"):
        PoseOptions(min_kpt_conf=2.0)


def test_decode_image_round_trip_and_garbage() -> None:
    img = np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", img)
    assert ok
    assert np.array_equal(decode_image(png.tobytes()), img)
    with pytest.raises(InvalidInputError, match="image 4: 9 bytes do not decode"):
        decode_image(b"not a png", index=4)
    with pytest.raises(InvalidInputError, match="image 2: expected encoded image bytes"):
        decode_image(b"", index=2)


def test_ultralytics_pose_model_from_registry() -> None:
    """The real backend with the architecture-only pose model: batched, one (17, 3) skeleton per person box."""
    from prelabel.detect.ultralytics import UltralyticsDetector
    from prelabel.registry import ModelRegistry

    registry = ModelRegistry.load(MODELS)
    with pytest.raises(NotFoundError, match="unknown model"):
        registry.resolve("no-such-pose-model", "pose")
    spec = registry.resolve("arch-yolo11n-pose", "pose")
    detector = UltralyticsDetector(spec, device="cpu")
    images = [np.full((96, 128, 3), 127, np.uint8), np.zeros((64, 64, 3), np.uint8)]
    out = estimate_pose(detector, images, PoseOptions(detect=DetectOptions(conf=0.0, max_det=5, imgsz=128)))
    assert len(out) == 2
    for persons in out:
        assert 1 <= len(persons) <= 5  # conf 0 keeps the untrained model's best guesses
        for p in persons:
            assert p.skeleton.keypoints.shape == (17, 3) and p.xyxy.shape == (4,)
            assert np.array_equal(p.skeleton.present, p.skeleton.keypoints[:, 2] >= 0.3)
