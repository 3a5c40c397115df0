"""Inference runtimes for YOLO models, chosen per device: PyTorch, ONNX Runtime or OpenVINO.

On CUDA the PyTorch model runs in FP16 (:class:`~prelabel.detect.ultralytics.UltralyticsDetector`). On a CPU an
exported graph is faster than eager PyTorch: the local ``.pt`` is exported once, offline, to ONNX with dynamic batch
and input size (Ultralytics' exporter; nothing downloads), cached under a folder keyed by the weights' SHA-256 and
the export size, and run by OpenVINO (preferred: fastest measured on x86 CPUs, see ``benchmarks/pipeline.py``) or by
ONNX Runtime. OpenVINO compiles static-shape plans per input size it meets (faster than the dynamic graph) and runs
a batch's images concurrently on its CPU streams. By default it computes in the CPU's native fast precision (bf16
where the CPU has it, e.g. AVX512-BF16/AMX; else f32); ``precision="f32"`` gives exact parity with PyTorch.

Pre- and post-processing are Ultralytics' own (``LetterBox``, ``non_max_suppression``, ``scale_boxes``,
``scale_coords``), so detections match the PyTorch backend's up to the runtimes' arithmetic: in f32 (ONNX Runtime,
OpenVINO f32) raw outputs agree to ~1e-3 px; in bf16 a few percent of boxes move (IoU to the PyTorch box below 0.95)
and some scores differ by more than 0.02. ``tests/detect/test_runtime.py`` states and checks both tolerances.

When an exported runtime cannot be used (export tools missing, a model built from an architecture config with no
weights file, an unwritable cache folder), :func:`create_detector` falls back to PyTorch and logs why.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prelabel.detect.base import DetectOptions, Detector, Image
from prelabel.errors import FailedPreconditionError, InvalidInputError
from prelabel.registry import ModelSpec
from prelabel.types import NUM_KEYPOINTS, Detections

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx", "openvino")
"""Values a caller may request; "auto" picks per device (see :func:`choose_runtime`)."""

CPU_PREFERENCE = ("openvino", "onnx")
"""Exported runtimes tried on a CPU, fastest first (measured by ``benchmarks/pipeline.py``)."""

PRECISIONS = ("auto", "f32", "bf16")
"""OpenVINO inference precision: "auto" is OpenVINO's default for the CPU (bf16 where the CPU has native bf16,
else f32); "f32" matches PyTorch to ~1e-3 px; bf16 ran about 1.6x the frames/s of f32 on a 2-core AVX512-BF16 CPU
but moves a few boxes (see ``tests/detect/test_runtime.py`` for the tolerances)."""

EXPORT_VERSION = 1
"""Bumped when the export recipe changes, so stale cache entries are not reused."""

_MODULES = {"onnx": ("onnx", "onnxruntime"), "openvino": ("onnx", "openvino")}


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime a model will run on, and why.

    Attributes:
        runtime: "torch", "onnx" or "openvino".
        reason: one line for the logs (why this runtime, or why a requested one was not used).
    """

    runtime: str
    reason: str


def validate_runtime(requested: str) -> str:
    """``requested`` when it is one of :data:`RUNTIMES`.

    Raises:
        InvalidInputError: any other value.
    """
    if requested not in RUNTIMES:
        raise InvalidInputError(f"runtime must be one of {list(RUNTIMES)}, got {requested!r}")
    return requested


def missing_modules(runtime: str) -> list[str]:
    """Python modules the exported ``runtime`` needs that are not installed (empty for "torch")."""
    return [m for m in _MODULES.get(runtime, ()) if importlib.util.find_spec(m) is None]


def choose_runtime(requested: str, device: str, spec: ModelSpec) -> RuntimeChoice:
    """Pick the runtime for ``spec`` on ``device`` (a resolved device: "cpu", "cuda:0", ...).

    "auto": PyTorch (FP16) on CUDA; on a CPU the first of :data:`CPU_PREFERENCE` whose modules are installed,
    else PyTorch. A forced exported runtime falls back to PyTorch when it cannot run (with the reason).
    Exported runtimes need a weights file: models built from an architecture config run on PyTorch.

    Raises:
        InvalidInputError: ``requested`` is not one of :data:`RUNTIMES`.
    """
    validate_runtime(requested)
    if requested == "torch":
        return RuntimeChoice("torch", "requested")
    if spec.weights is None:
        return RuntimeChoice("torch", f"model {spec.name!r} has no weights file to export (built from {spec.arch})")
    if spec.weights.suffix != ".pt":
        return RuntimeChoice("torch", f"model {spec.name!r}: only .pt weights are exported, got {spec.weights.name}")
    if device != "cpu":
        if requested == "auto":
            return RuntimeChoice("torch", f"device {device}: PyTorch FP16")
        return RuntimeChoice("torch", f"runtime {requested!r} runs on the CPU only, device is {device}")
    candidates = CPU_PREFERENCE if requested == "auto" else (requested,)
    reasons = []
    for name in candidates:
        missing = missing_modules(name)
        if not missing:
            return RuntimeChoice(name, "requested" if requested != "auto" else "fastest installed CPU runtime")
        reasons.append(f"{name} needs {', '.join(missing)} (not installed)")
    return RuntimeChoice("torch", "; ".join(reasons))


def weights_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex (64 characters)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_key(weights: Path, imgsz: int) -> str:
    """Cache folder name of an export: weights stem, first 16 hex of their SHA-256, export size, recipe version.

    The export has a dynamic batch and input size, so the batch is not part of the key.
    """
    return f"{weights.stem}-{weights_digest(weights)[:16]}-{imgsz}-dyn-v{EXPORT_VERSION}"


@contextlib.contextmanager
def _no_autoinstall() -> Iterator[None]:
    """Keep Ultralytics' requirement checks from pip-installing anything while exporting."""
    from unittest import mock

    with mock.patch("ultralytics.utils.checks.AUTOINSTALL", False):
        yield


@contextlib.contextmanager
def _quiet_ultralytics() -> Iterator[None]:
    """Ultralytics' logger at WARNING for the duration (its import resets the level to INFO)."""
    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_onnx(weights: Path, imgsz: int, cache_dir: Path) -> Path:
    """The ONNX export of ``weights`` (dynamic batch, height and width), exporting on first use.

    The export lands in ``cache_dir/<export_key>/`` as ``model.onnx`` plus ``meta.json`` (task, class names,
    stride, keypoint shape, end-to-end flag). Concurrent exporters each write a private folder and the first to
    finish wins, so readers never see a half-written file.

    Args:
        weights: a local Ultralytics ``.pt`` file.
        imgsz: the size the graph is traced at, in pixels (the model's default inference size).
        cache_dir: folder of exports (created when missing).

    Raises:
        FailedPreconditionError: the ``onnx`` module is missing, the cache folder is not writable, or the export
            fails (the message names the weights file).
    """
    if importlib.util.find_spec("onnx") is None:
        raise FailedPreconditionError(f"cannot export {weights.name}: the onnx package is not installed")
    final = cache_dir / export_key(weights, imgsz)
    if (final / "meta.json").is_file():
        return final / "model.onnx"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    except OSError as exc:
        raise FailedPreconditionError(f"cannot export {weights.name}: cache folder {cache_dir}: {exc}") from exc
    try:
        t0 = time.perf_counter()
        meta = _export_into(weights, imgsz, work)
        (work / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            work.rename(final)
        except OSError:  # another process finished first; its export is equivalent
            if not (final / "meta.json").is_file():
                raise
        log.info("exported %s to ONNX in %.1f s: %s", weights.name, time.perf_counter() - t0, final)
    except FailedPreconditionError:
        raise
    except Exception as exc:  # the exporter raises many types
        raise FailedPreconditionError(f"cannot export {weights} to ONNX: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final / "model.onnx"


def _export_into(weights: Path, imgsz: int, work: Path) -> dict[str, Any]:
    from ultralytics import YOLO

    local = work / "model.pt"
    shutil.copyfile(weights, local)  # the exporter writes next to its input
    model = YOLO(str(local))
    head = model.model.model[-1] if hasattr(model.model, "model") else None  # type: ignore[union-attr]
    meta: dict[str, Any] = {
        "task": model.task,
        "names": [model.names[i] for i in sorted(model.names)],
        "stride": int(max(int(model.model.stride.max()), 32)),  # type: ignore[union-attr]
        "kpt_shape": list(getattr(head, "kpt_shape", None) or ()),
        "end2end": bool(getattr(head, "end2end", False)),
        "imgsz": imgsz,
        "weights_sha256": weights_digest(weights),
    }
    simplify = importlib.util.find_spec("onnxslim") is not None and importlib.util.find_spec("onnxruntime") is not None
    # The exporter reports on stdout (Ultralytics' logger, and prints), where the CLI writes JSON: keep it quiet.
    with _no_autoinstall(), _quiet_ultralytics(), contextlib.redirect_stdout(sys.stderr):
        out = model.export(
            format="onnx", imgsz=imgsz, dynamic=True, batch=1, simplify=simplify, device="cpu", verbose=False
        )
    Path(out).replace(work / "model.onnx")
    local.unlink()
    return meta


class _Session:
    """Runs a (B, 3, H, W) float32 batch through one exported graph; returns its first output as numpy."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _OrtSession(_Session):
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self._sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self._sess.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._sess.run(None, {self._input: batch})[0])


def import_openvino() -> Any:
    """The ``openvino`` module, imported without its usage telemetry.

    Importing OpenVINO's Python package sends a usage event to Google Analytics (its ``ovc`` tools, through the
    ``openvino_telemetry`` package, unless a consent file in the user's home says no; it skips only CI machines) and
    leaves a thread of its own behind, which a stopping server then waited on. Nothing here reaches the network at
    run time: the telemetry package is made unimportable in this process (where nothing has imported it yet), and
    OpenVINO falls back to its own no-op stub."""
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import now raises ImportError
    import openvino

    return openvino


class _OpenVinoSession(_Session):
    """Static-shape plans compiled per input size, most recent ``max_plans`` kept.

    A single image runs on a latency plan (all cores on one request). A batch runs image by image on a throughput
    plan through an async queue: OpenVINO splits the cores into streams that each take an image, which measured
    about 1.3x the frames/s of one batched latency request on a 2-core CPU.
    """

    def __init__(self, path: Path, threads: int, precision: str, max_plans: int = 8) -> None:
        ov = import_openvino()
        self._ov = ov
        self._core = ov.Core()
        self._model = self._core.read_model(str(path))
        self._config: dict[str, Any] = {}
        if precision != "auto":  # "auto": OpenVINO's choice for the device (bf16 where the CPU has it natively)
            self._config["INFERENCE_PRECISION_HINT"] = precision
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = threads
        self._plans: OrderedDict[tuple[int, int, str], Any] = OrderedDict()
        self._max_plans = max_plans

    def _plan(self, h: int, w: int, hint: str) -> Any:
        key = (h, w, hint)
        plan = self._plans.get(key)
        if plan is None:
            t0 = time.perf_counter()
            model = self._model.clone()
            model.reshape([1, 3, h, w])
            compiled = self._core.compile_model(model, "CPU", {**self._config, "PERFORMANCE_HINT": hint})
            if hint == "LATENCY":
                plan = compiled
            else:  # a pool of requests run side by side; their outputs are read on the caller's thread
                n = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
                plan = [compiled.create_infer_request() for _ in range(n)]
            log.debug("compiled OpenVINO %s plan for %dx%d in %.2f s", hint, h, w, time.perf_counter() - t0)
            self._plans[key] = plan
            while len(self._plans) > self._max_plans:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    @property
    def precision(self) -> str:
        """The precision OpenVINO runs in on this CPU ("f32", "bf16", ...)."""
        kind = self._config.get("INFERENCE_PRECISION_HINT") or self._core.get_property(
            "CPU", "INFERENCE_PRECISION_HINT"
        )
        return str(kind.get_type_name()) if hasattr(kind, "get_type_name") else str(kind)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        h, w = int(batch.shape[2]), int(batch.shape[3])
        if len(batch) == 1:
            return np.asarray(self._plan(h, w, "LATENCY")(batch)[0])
        requests = self._plan(h, w, "THROUGHPUT")
        outputs: list[np.ndarray] = []
        # No completion callbacks: those run on OpenVINO's threads, and two of them converting their first output
        # to NumPy at once could deadlock on the interpreter lock (seen on a first batch). Each round starts one
        # image per request, waits, and copies the outputs here (a request's buffer is reused by the next round).
        for lo in range(0, len(batch), len(requests)):
            chunk = batch[lo : lo + len(requests)]
            for request, image in zip(requests, chunk, strict=False):
                request.start_async({0: image[None]})
            for request in requests[: len(chunk)]:
                request.wait()
                outputs.append(np.array(request.get_output_tensor(0).data))
        return np.concatenate(outputs)


# A model's first run of each kind (one image, a batch) in a process happens under this lock. The runtimes' bindings
# initialise things once on first use (pybind11's NumPy table, C++ statics): two threads doing so at once (a detector
# and a pose model, each on its serving thread) could each wait on the other, one on the interpreter lock and one on
# a static's guard, and a run hung for good (2 of 20 fresh processes running both models' first batches at once).
_FIRST_RUN_LOCK = threading.Lock()


class ExportedDetector:
    """A YOLO detect or pose model run by ONNX Runtime or OpenVINO on the CPU.

    Args:
        spec: the registry entry; needs a local ``.pt`` weights file.
        runtime: "onnx" or "openvino".
        cache_dir: where exports are kept (see :func:`export_onnx`).
        threads: intra-op threads of the runtime; 0 lets it decide.
        precision: OpenVINO's inference precision, one of :data:`PRECISIONS` (ONNX Runtime runs FP32).

    Raises:
        FailedPreconditionError: weights missing, the runtime's modules missing, export failed, or the weights
            are a model of another task than the registry says.
        InvalidInputError: unknown runtime.
    """

    device = "cpu"

    def __init__(
        self, spec: ModelSpec, runtime: str, cache_dir: Path, threads: int = 0, precision: str = "auto"
    ) -> None:
        if runtime not in _MODULES:
            raise InvalidInputError(f"exported runtime must be one of {sorted(_MODULES)}, got {runtime!r}")
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        spec.require_available()
        if spec.weights is None:
            raise FailedPreconditionError(f"model {spec.name!r} has no weights file to export")
        missing = missing_modules(runtime)
        if missing:
            raise FailedPreconditionError(f"runtime {runtime!r} needs {', '.join(missing)} (not installed)")
        path = export_onnx(spec.weights, spec.imgsz, cache_dir)
        meta = json.loads((path.parent / "meta.json").read_text())
        if meta["task"] != spec.task:
            raise FailedPreconditionError(
                f"model {spec.name!r}: registry says task {spec.task!r} but {spec.weights} is a {meta['task']!r} model"
            )
        self.name = spec.name
        self.task = spec.task
        self.runtime = runtime
        self.imgsz = spec.imgsz
        self.class_names: Sequence[str] = tuple(meta["names"])
        self._stride = int(meta["stride"])
        self._kpt_shape = tuple(int(v) for v in meta["kpt_shape"])
        self._end2end = bool(meta["end2end"])
        self._session: _Session
        self._run_kinds: set[tuple[int, int, bool]] = set()  # (h, w, batched) run once already (_FIRST_RUN_LOCK)
        if runtime == "openvino":
            ov_session = _OpenVinoSession(path, threads, precision)
            self.precision = ov_session.precision
            self._session = ov_session
        else:
            self.precision = "f32"
            self._session = _OrtSession(path, threads)
        log.info("loaded model %s (%s) from %s with %s (%s)", spec.name, spec.task, path, runtime, self.precision)

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        """Detect in BGR uint8 images of shape (H, W, 3); one :class:`Detections` per image, in order.

        Raises:
            InvalidInputError: an image has the wrong shape or dtype.
        """
        opts = options or DetectOptions()
        if not images:
            return []
        for i, img in enumerate(images):
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                shape = getattr(img, "shape", None)
                raise InvalidInputError(f"image {i}: expected (H, W, 3) uint8 BGR, got {shape}")
        batch = letterbox_batch(images, opts.imgsz or self.imgsz, self._stride)
        kind = (int(batch.shape[2]), int(batch.shape[3]), len(batch) > 1)
        if kind in self._run_kinds:
            raw = self._session(batch)
        else:
            with _FIRST_RUN_LOCK:
                raw = self._session(batch)
            self._run_kinds.add(kind)
        return self._postprocess(raw, (int(batch.shape[2]), int(batch.shape[3])), images, opts)

    def _postprocess(
        self, raw: np.ndarray, input_hw: tuple[int, int], images: Sequence[Image], opts: DetectOptions
    ) -> list[Detections]:
        import torch
        from ultralytics.utils import ops
        from ultralytics.utils.nms import non_max_suppression

        preds = non_max_suppression(
            torch.from_numpy(raw),
            opts.conf,
            opts.iou,
            list(opts.classes) or None,
            False,
            max_det=opts.max_det,
            nc=0 if self.task == "detect" else len(self.class_names),
            end2end=self._end2end,
        )
        out = []
        for pred, img in zip(preds, images, strict=True):
            if len(pred) == 0:
                out.append(_empty(self.class_names, self.task))
                continue
            xyxy = np.asarray(ops.scale_boxes(input_hw, pred[:, :4].clone(), img.shape), np.float32)
            kpts = None
            if self.task == "pose" and self._kpt_shape:
                k = pred[:, 6:].reshape(len(pred), *self._kpt_shape)
                k = np.asarray(ops.scale_coords(input_hw, k.clone(), img.shape), np.float32)
                if k.shape[-1] == 2:  # no visibility channel: confidence unknown -> 1
                    k = np.concatenate([k, np.ones((*k.shape[:-1], 1), np.float32)], axis=-1)
                kpts = k if k.shape[1:] == (NUM_KEYPOINTS, 3) else None
            out.append(
                Detections(
                    xyxy,
                    pred[:, 4].numpy().astype(np.float32),
                    pred[:, 5].numpy().astype(np.int64),
                    self.class_names,
                    kpts,
                )
            )
        return out

    def warmup(self) -> None:
        """One inference on a blank image, so lazy initialisation is not paid by the first request."""
        t0 = time.perf_counter()
        self.detect([np.zeros((self.imgsz, self.imgsz, 3), np.uint8)])
        log.info("warmed up %s (%s) in %.2f s", self.name, self.runtime, time.perf_counter() - t0)


def letterbox_batch(images: Sequence[Image], imgsz: int, stride: int) -> np.ndarray:
    """Ultralytics' predictor input: letterboxed, RGB, CHW, float32 in [0, 1]; shape (B, 3, H, W).

    Images of one shape get the smallest stride-multiple rectangle around the resized frame (as the PyTorch
    predictor does); mixed shapes share the square ``imgsz`` x ``imgsz``.
    """
    from ultralytics.data.augment import LetterBox

    same = len({im.shape for im in images}) == 1
    box = LetterBox((imgsz, imgsz), auto=same, stride=stride)
    stacked = np.stack([np.asarray(box(image=im)) for im in images])  # (B, H, W, 3) BGR uint8
    batch = stacked[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255.0)


def _empty(class_names: Sequence[str], task: str) -> Detections:
    empty = Detections.empty(class_names)
    if task == "pose":
        empty.keypoints = np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
    return empty


def create_detector(
    spec: ModelSpec,
    device: str = "auto",
    runtime: str = "auto",
    cache_dir: Path | None = None,
    threads: int = 0,
    precision: str = "auto",
) -> Detector:
    """The detector for ``spec`` on the runtime :func:`choose_runtime` picks; the entry point of this module.

    Args:
        spec: registry entry (detect or pose).
        device: "auto", "cpu", "cuda", "cuda:N".
        runtime: one of :data:`RUNTIMES`.
        cache_dir: where exports are kept; None keeps them next to the weights, in ``.prelabel-export/``.
        threads: intra-op threads of an exported runtime; 0 lets it decide.
        precision: OpenVINO's inference precision (:data:`PRECISIONS`).

    Returns:
        An :class:`ExportedDetector`, or an :class:`~prelabel.detect.ultralytics.UltralyticsDetector` when PyTorch
        was chosen or the exported runtime could not be prepared (the reason is logged as a warning).

    Raises:
        InvalidInputError: unknown runtime.
        FailedPreconditionError: weights missing or unloadable, CUDA requested but absent.
    """
    from prelabel.detect.ultralytics import UltralyticsDetector, select_device

    validate_runtime(runtime)
    spec.require_available()
    resolved = select_device(device)
    choice = choose_runtime(runtime, resolved, spec)
    if choice.runtime != "torch":
        assert spec.weights is not None
        folder = cache_dir if cache_dir is not None else spec.weights.parent / ".prelabel-export"
        try:
            det = ExportedDetector(spec, choice.runtime, folder, threads, precision)
            log.info("model %s: runtime %s (%s)", spec.name, choice.runtime, choice.reason)
            return det
        except FailedPreconditionError as exc:
            choice = RuntimeChoice("torch", f"{choice.runtime} unavailable: {exc}")
            log.warning("model %s: falling back to PyTorch: %s", spec.name, choice.reason)
    else:
        level = logging.WARNING if runtime not in ("auto", "torch") else logging.INFO
        log.log(level, "model %s: runtime torch (%s)", spec.name, choice.reason)
    return UltralyticsDetector(spec, device=resolved)
