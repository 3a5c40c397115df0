"""The CUDA path (PyTorch FP16) against the CPU path on the same weights; skipped where there is no CUDA device.

These are the checks of what only a GPU runs: ``device="auto"`` resolving to CUDA in FP16, detections and
keypoints agreeing with the CPU's, and the server and the whole labeling job running there. The CPU paths they are
compared with are covered by the rest of the suite. Run them with ``./scripts/test -m gpu`` on a machine with a GPU.

Tolerance (FP16 against FP32): every CPU detection scoring at least 0.02 above the threshold has a same-class CUDA
detection with IoU >= 0.5; at least 95% of the CPU detections have one with IoU >= 0.9, and 95% of those score
within 0.03; counts agree within 5% (+-1). Keypoints of matched people: median distance under 1 px.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from prelabel.detect.base import DetectOptions
from prelabel.detect.runtime import create_detector
from prelabel.detect.ultralytics import UltralyticsDetector, select_device
from prelabel.registry import ModelRegistry, ModelSpec
from prelabel.settings import default_models_dir
from prelabel.types import Detections

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CONF = 0.25
IOU_MIN = 0.9
SCORE_TOL = 0.03


def _spec(name: str) -> ModelSpec:
    spec = ModelRegistry.load(default_models_dir() / "registry.yaml").get(name)
    if not spec.available:
        pytest.skip(f"{name} weights absent")
    return spec


def _frames(n: int = 8, seed: int = 1_000_001) -> list[np.ndarray]:
    """``n`` frames of a held-out generated crowd scene (people and balls), BGR uint8."""
    from prelabel.synthetic import generate

    scene = generate("crowd", seed, num_frames=3 * n)
    assert scene.frames is not None
    return [np.ascontiguousarray(f) for f in scene.frames[::3]]


def _match(cpu: list[Detections], gpu: list[Detections]) -> list[tuple[int, int, int]]:
    """(frame, cpu index, gpu index) of each CPU detection's best same-class CUDA partner; asserts the tolerances."""
    from ultralytics.utils.metrics import box_iou

    pairs: list[tuple[int, int, int]] = []
    n_cpu = n_gpu = n_close = n_score = 0
    for f, (c, g) in enumerate(zip(cpu, gpu, strict=True)):
        n_cpu, n_gpu = n_cpu + len(c), n_gpu + len(g)
        if len(c) == 0:
            continue
        assert len(g) > 0, f"frame {f}: CUDA found nothing where the CPU found {len(c)}"
        iou = box_iou(torch.from_numpy(c.xyxy), torch.from_numpy(g.xyxy)).numpy()
        iou[c.class_ids[:, None] != g.class_ids[None, :]] = 0.0
        best = iou.argmax(axis=1)
        best_iou = iou[np.arange(len(c)), best]
        clear = c.scores >= CONF + 0.02
        assert (best_iou[clear] >= 0.5).all(), f"frame {f}: a CPU detection has no CUDA partner"
        close = best_iou >= IOU_MIN
        n_close += int(close.sum())
        n_score += int((np.abs(c.scores - g.scores[best])[close] <= SCORE_TOL).sum())
        pairs += [(f, i, int(best[i])) for i in np.flatnonzero(close)]
    assert n_cpu > 10, f"too few detections to compare ({n_cpu})"
    assert abs(n_cpu - n_gpu) <= max(1, n_cpu // 20), f"{n_cpu} CPU vs {n_gpu} CUDA detections"
    assert n_close >= 0.95 * n_cpu, f"{n_close} of {n_cpu} CPU detections matched at IoU >= {IOU_MIN}"
    assert n_score >= 0.95 * n_close, f"{n_score} of {n_close} matched scores within {SCORE_TOL}"
    return pairs


def test_auto_device_is_cuda_in_fp16() -> None:
    spec = _spec("prelabel-synth-det")
    assert select_device("auto") == "cuda:0"
    det = create_detector(spec, "auto", "auto")
    assert isinstance(det, UltralyticsDetector)  # no exported runtime on CUDA
    assert det.device == "cuda:0" and det.half


def test_cuda_detector_matches_cpu() -> None:
    spec = _spec("prelabel-synth-det")
    frames = _frames()
    opts = DetectOptions(conf=CONF)
    cpu = UltralyticsDetector(spec, "cpu").detect(frames, opts)
    gpu = UltralyticsDetector(spec, "cuda:0").detect(frames, opts)
    _match(cpu, gpu)
    # Ball-sized inputs: the larger request size goes through the same path.
    big = DetectOptions(conf=CONF, imgsz=480)
    _match(
        UltralyticsDetector(spec, "cpu").detect(frames, big), UltralyticsDetector(spec, "cuda:0").detect(frames, big)
    )


def test_cuda_pose_matches_cpu() -> None:
    spec = _spec("prelabel-synth-pose")
    frames = _frames()
    cpu = UltralyticsDetector(spec, "cpu").detect(frames)
    gpu = UltralyticsDetector(spec, "cuda:0").detect(frames)
    dist = []
    for f, i, j in _match(cpu, gpu):
        kc, kg = cpu[f].keypoints, gpu[f].keypoints
        assert kc is not None and kg is not None
        both = (kc[i, :, 2] > 0.5) & (kg[j, :, 2] > 0.5)
        dist += list(np.linalg.norm(kc[i, both, :2] - kg[j, both, :2], axis=1))
    assert len(dist) > 50
    assert float(np.median(dist)) < 1.0, f"median keypoint distance {np.median(dist):.2f} px"


def test_labeling_job_on_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job with the server on CUDA (its default device there): people found and tracked."""
    from prelabel.demo import run_demo

    _spec("prelabel-synth-det")
    assert run_demo(tmp_path, seed=3, frames=48) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 48
    assert summary["detection_iou50"]["recall"] >= 0.9
    assert summary["tracking"]["idf1"] >= 0.8
