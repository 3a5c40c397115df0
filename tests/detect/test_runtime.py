"""Exported CPU runtimes (ONNX Runtime, OpenVINO) against the PyTorch backend on the same weights.

Tolerance in FP32 (ONNX Runtime, OpenVINO f32): every PyTorch detection is matched by an exported-runtime detection
of the same class with IoU >= 0.95 and a score within 0.02, and the raw network outputs agree to 0.01 px (boxes) and
1e-4 (scores). OpenVINO in bf16 (its default on CPUs with native bf16): at least 93% of PyTorch's detections matched
at IoU >= 0.95 and 95% of those within 0.02 in score, every detection matched at IoU >= 0.5, counts within 5%.

Weights: the shipped ``prelabel-synth-det`` model when present, else YOLO11n built from its architecture config and
saved to a file (untrained: near-constant scores, so detections use conf 0.0001 there; the input pipeline is then
checked pixel for pixel against Ultralytics' predictor).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from prelabel.detect.base import DetectOptions
from prelabel.detect.runtime import (
    ExportedDetector,
    choose_runtime,
    create_detector,
    export_key,
    letterbox_batch,
    missing_modules,
)
from prelabel.detect.ultralytics import UltralyticsDetector
from prelabel.errors import InvalidInputError
from prelabel.registry import ModelSpec
from prelabel.settings import default_models_dir
from prelabel.types import Detections

IMGSZ = 320
IOU_MIN = 0.95
SCORE_TOL = 0.02

needs_onnx = pytest.mark.skipif(bool(missing_modules("onnx")), reason="onnx / onnxruntime not installed")
needs_openvino = pytest.mark.skipif(bool(missing_modules("openvino")), reason="onnx / openvino not installed")


def _arch_weights(folder: Path, arch: str) -> Path:
    from ultralytics import YOLO

    torch.manual_seed(0)
    path = folder / f"{Path(arch).stem}.pt"
    YOLO(arch).save(str(path))
    return path


@pytest.fixture(scope="module")
def det_spec(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelSpec, float]:
    """(spec, conf) of a detect model with a local .pt file."""
    shipped = default_models_dir() / "prelabel-synth-det.pt"
    if shipped.is_file():
        return ModelSpec(name="synth-det", task="detect", weights=shipped, imgsz=IMGSZ), 0.25
    weights = _arch_weights(tmp_path_factory.mktemp("weights"), "yolo11n.yaml")
    return ModelSpec(name="yolo11n-untrained", task="detect", weights=weights, imgsz=IMGSZ), 0.0001


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime-cache")


def _frames(n: int = 4, h: int = 240, w: int = 320, seed: int = 0) -> list[np.ndarray]:
    """``n`` generated frames of a crowd scene (people and a ball), BGR uint8 (H, W, 3)."""
    from prelabel.synthetic import generate

    scene = generate("crowd", seed, num_frames=3 * n, width=w, height=h)
    assert scene.frames is not None
    return [np.ascontiguousarray(f) for f in scene.frames[::3]]


def _assert_match(
    ref: list[Detections],
    got: list[Detections],
    min_frac: float = 1.0,
    score_frac: float = 1.0,
    conf: float | None = None,
) -> int:
    """Compare detections frame by frame; returns the number of reference detections.

    At least ``min_frac`` of the reference detections have a same-class partner with IoU >= 0.95, at least
    ``score_frac`` of those partners score within 0.02, every reference detection has a partner with IoU >= 0.5
    (with a threshold ``conf``: except those scoring within 0.02 of it, whose exported score may fall just under),
    and the counts agree within 5% (+-1).
    """
    from ultralytics.utils.metrics import box_iou

    n_ref = n_got = n_ok = 0
    n_score_ok = 0
    for frame, (r, g) in enumerate(zip(ref, got, strict=True)):
        n_ref, n_got = n_ref + len(r), n_got + len(g)
        if len(r) == 0 or len(g) == 0:
            continue
        iou = box_iou(torch.from_numpy(r.xyxy), torch.from_numpy(g.xyxy)).numpy()
        iou[r.class_ids[:, None] != g.class_ids[None, :]] = 0.0
        best = iou.argmax(axis=1)
        best_iou = iou[np.arange(len(r)), best]
        clear = r.scores >= conf + SCORE_TOL if conf is not None else np.ones(len(r), bool)
        worst = float(best_iou[clear].min()) if clear.any() else 1.0
        assert worst >= 0.5, f"frame {frame}: a detection has no partner (best IoU {worst:.3f})"
        ok = best_iou >= IOU_MIN
        n_ok += int(ok.sum())
        n_score_ok += int((np.abs(r.scores - g.scores[best])[ok] <= SCORE_TOL).sum())
    assert abs(n_ref - n_got) <= max(1, n_ref // 20), f"{n_ref} PyTorch vs {n_got} exported detections"
    assert n_ok >= min_frac * n_ref, f"{n_ok} of {n_ref} detections matched at IoU >= {IOU_MIN}"
    assert n_score_ok >= score_frac * n_ok, f"{n_score_ok} of {n_ok} matched scores within {SCORE_TOL}"
    return n_ref


def _raw_torch(weights: Path, batch: np.ndarray) -> np.ndarray:
    from ultralytics import YOLO

    model = YOLO(str(weights)).model.fuse().eval()  # type: ignore[union-attr]
    with torch.no_grad():
        out = model(torch.from_numpy(batch))
    return (out[0] if isinstance(out, list | tuple) else out).numpy()


@pytest.mark.parametrize(
    "runtime", [pytest.param("openvino", marks=needs_openvino), pytest.param("onnx", marks=needs_onnx)]
)
def test_exported_matches_pytorch(runtime: str, det_spec: tuple[ModelSpec, float], cache_dir: Path) -> None:
    spec, conf = det_spec
    frames = _frames()
    exported = ExportedDetector(spec, runtime, cache_dir, precision="f32")
    assert exported.precision == "f32"
    assert exported.class_names == UltralyticsDetector(spec, "cpu").class_names

    batch = letterbox_batch(frames, IMGSZ, 32)
    assert batch.shape == (4, 3, 256, 320) and batch.dtype == np.float32  # rect letterbox, as the torch predictor
    torch_det = UltralyticsDetector(spec, "cpu")
    torch_det.detect(frames, DetectOptions(conf=conf))  # sets up Ultralytics' predictor
    expected = torch_det._model.predictor.preprocess(list(frames)).numpy()  # type: ignore[union-attr]
    np.testing.assert_array_equal(batch, expected)  # same pixels into both networks
    assert spec.weights is not None
    ref_raw, got_raw = _raw_torch(spec.weights, batch), exported._session(batch)
    assert got_raw.shape == ref_raw.shape
    assert np.abs(got_raw[:, :4] - ref_raw[:, :4]).max() < 0.01  # pixels of the network input
    assert np.abs(got_raw[:, 4:] - ref_raw[:, 4:]).max() < 1e-4

    opts = DetectOptions(conf=conf, max_det=100)
    ref = UltralyticsDetector(spec, "cpu").detect(frames, opts)
    got = exported.detect(frames, opts)
    assert _assert_match(ref, got) >= 4  # something was compared
    # Single images and mixed sizes (square letterbox) go through the same path.
    mixed = [frames[0], cv2.resize(frames[1], (200, 300))]
    _assert_match(UltralyticsDetector(spec, "cpu").detect(mixed, opts), exported.detect(mixed, opts))


@needs_openvino
def test_openvino_batches_larger_than_its_request_pool_keep_their_order(
    det_spec: tuple[ModelSpec, float], cache_dir: Path
) -> None:
    """A batch runs on a pool of requests, round after round, each output copied on the caller's thread (no
    completion callbacks on OpenVINO's threads): the same outputs, in order, as one image at a time."""
    spec, _ = det_spec
    session = ExportedDetector(spec, "openvino", cache_dir, precision="f32")._session
    pool = len(session._plan(256, 320, "THROUGHPUT"))
    batch = letterbox_batch(_frames(n=2 * pool + 1, seed=3), IMGSZ, 32)  # three rounds, the last one short
    assert batch.shape[2:] == (256, 320)
    together = session(batch)
    alone = np.concatenate([session(batch[i : i + 1]) for i in range(len(batch))])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)


@needs_openvino
def test_openvino_default_precision_within_tolerance(det_spec: tuple[ModelSpec, float], cache_dir: Path) -> None:
    spec, conf = det_spec
    frames = _frames(16, seed=5)
    exported = ExportedDetector(spec, "openvino", cache_dir)  # bf16 where the CPU has it natively, else f32
    assert exported.precision in ("f32", "bf16")
    opts = DetectOptions(conf=conf, max_det=100)
    ref = UltralyticsDetector(spec, "cpu").detect(frames, opts)
    assert _assert_match(ref, exported.detect(frames, opts), min_frac=0.93, score_frac=0.95, conf=conf) >= 16


@needs_openvino
def test_pose_model_matches_pytorch(tmp_path: Path, cache_dir: Path) -> None:
    weights = _arch_weights(tmp_path, "yolo11n-pose.yaml")
    spec = ModelSpec(name="pose-untrained", task="pose", weights=weights, imgsz=IMGSZ)
    frames = _frames(2, seed=3)
    opts = DetectOptions(conf=0.0001, max_det=20)
    ref = UltralyticsDetector(spec, "cpu").detect(frames, opts)
    got = ExportedDetector(spec, "openvino", cache_dir, precision="f32").detect(frames, opts)
    assert _assert_match(ref, got) >= 2
    for r, g in zip(ref, got, strict=True):
        assert r.keypoints is not None and g.keypoints is not None
        assert g.keypoints.shape == r.keypoints.shape
        np.testing.assert_allclose(g.keypoints, r.keypoints, atol=0.05)


@needs_onnx
def test_export_is_cached_by_weights_hash(det_spec: tuple[ModelSpec, float], cache_dir: Path, tmp_path: Path) -> None:
    spec, _ = det_spec
    assert spec.weights is not None
    ExportedDetector(spec, "onnx", cache_dir)
    entries = sorted(p.name for p in cache_dir.iterdir())
    onnx_file = cache_dir / export_key(spec.weights, IMGSZ) / "model.onnx"
    mtime = onnx_file.stat().st_mtime_ns
    ExportedDetector(spec, "onnx", cache_dir)  # reuses the export
    assert sorted(p.name for p in cache_dir.iterdir()) == entries
    assert onnx_file.stat().st_mtime_ns == mtime
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".export-")]
    # Other bytes or another size give another key.
    changed = tmp_path / spec.weights.name
    changed.write_bytes(spec.weights.read_bytes() + b"\0")
    assert export_key(changed, IMGSZ) != export_key(spec.weights, IMGSZ)
    assert export_key(spec.weights, 640) != export_key(spec.weights, IMGSZ)


def test_choose_runtime_per_device(det_spec: tuple[ModelSpec, float]) -> None:
    spec, _ = det_spec
    arch = ModelSpec(name="arch", task="detect", arch="yolo11n.yaml")
    assert choose_runtime("auto", "cuda:0", spec).runtime == "torch"
    assert choose_runtime("openvino", "cuda:0", spec).runtime == "torch"
    assert choose_runtime("torch", "cpu", spec).runtime == "torch"
    assert choose_runtime("onnx", "cpu", arch).runtime == "torch"
    expected = "openvino" if not missing_modules("openvino") else "onnx" if not missing_modules("onnx") else "torch"
    assert choose_runtime("auto", "cpu", spec).runtime == expected
    with pytest.raises(InvalidInputError, match="runtime must be one of"):
        choose_runtime("tensorrt", "cpu", spec)


def test_missing_tools_fall_back_to_pytorch(
    det_spec: tuple[ModelSpec, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import prelabel.detect.runtime as rt

    spec, _ = det_spec
    monkeypatch.setattr(rt, "missing_modules", lambda name: ["openvino"] if name == "openvino" else ["onnxruntime"])
    with caplog.at_level(logging.INFO, logger="prelabel.detect.runtime"):
        det = create_detector(spec, "cpu", "openvino", tmp_path)
    assert isinstance(det, UltralyticsDetector)
    assert "openvino needs openvino (not installed)" in caplog.text


@needs_onnx
def test_unwritable_cache_falls_back_to_pytorch(
    det_spec: tuple[ModelSpec, float], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec, _ = det_spec
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="prelabel.detect.runtime"):
        det = create_detector(spec, "cpu", "onnx", blocker / "cache")
    assert isinstance(det, UltralyticsDetector)
    assert "falling back to PyTorch" in caplog.text and "cache folder" in caplog.text


def test_first_runs_of_models_do_not_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models' first batches at once (a detector and a pose model), each on its own thread: the runtimes' one-time
    initialisation deadlocked there (a run hung for good, 2 of 20 fresh processes). First runs of each kind now take
    turns; later runs overlap freely."""
    import threading
    import time

    running, most = 0, 0
    lock = threading.Lock()

    def session(batch: np.ndarray) -> np.ndarray:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return np.zeros((len(batch), 1))

    models = []
    for _ in range(3):
        m = ExportedDetector.__new__(ExportedDetector)
        m.imgsz, m._stride, m._session, m._run_kinds = 64, 32, session, set()
        monkeypatch.setattr(m, "_postprocess", lambda raw, hw, images, opts: [], raising=False)
        models.append(m)
    images = [np.zeros((48, 64, 3), np.uint8)] * 2

    def both_at_once() -> None:
        threads = [threading.Thread(target=m.detect, args=(images,)) for m in models]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)

    both_at_once()
    assert most == 1  # first runs one at a time
    both_at_once()
    assert most == 3  # then side by side


@needs_openvino
def test_openvino_is_imported_without_its_telemetry() -> None:
    """Importing OpenVINO sent a usage event to Google Analytics (through ``openvino_telemetry``) and left a
    ThreadPoolExecutor thread behind, which a stopping server then waited on and warned about ("1 call(s) or
    thread(s) still busy"). Checked in a fresh interpreter, where nothing has imported OpenVINO yet."""
    code = (
        "import threading\n"
        "from prelabel.detect.runtime import import_openvino\n"
        "ov = import_openvino()\n"
        "import openvino.tools.ovc.telemetry_utils as t\n"
        "print(t.tm.__name__)\n"
        "print(sorted(x.name for x in threading.enumerate() if x.name.startswith('ThreadPoolExecutor')))\n"
        "print(ov.Core is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert lines == ["openvino.tools.ovc.telemetry_stub", "[]", "True"], out.stdout + out.stderr
