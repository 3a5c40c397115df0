"""Loads models by registry name on first use and keeps one batching front per model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from prelabel.detect.base import Detector
from prelabel.detect.batching import BatchingDetector
from prelabel.errors import NotFoundError
from prelabel.registry import ModelRegistry, ModelSpec

log = logging.getLogger(__name__)

BackendFactory = Callable[[ModelSpec, str], Detector]


def ultralytics_factory(spec: ModelSpec, device: str) -> Detector:
    """Default backend: an Ultralytics YOLO model (imported lazily: torch is heavy)."""
    from prelabel.detect.ultralytics import UltralyticsDetector

    return UltralyticsDetector(spec, device=device)


def runtime_factory(
    runtime: str = "auto", cache_dir: Path | None = None, threads: int = 0, precision: str = "auto"
) -> BackendFactory:
    """A factory that runs each model on ``runtime`` (see :func:`prelabel.detect.runtime.create_detector`)."""
    from prelabel.detect.runtime import validate_runtime

    validate_runtime(runtime)

    def factory(spec: ModelSpec, device: str) -> Detector:
        from prelabel.detect.runtime import create_detector

        return create_detector(spec, device, runtime, cache_dir, threads, precision)

    return factory


class ModelManager:
    """Owns loaded detectors (detect and pose tasks).

    Args:
        registry: where names resolve.
        device: "auto", "cpu", "cuda[:N]".
        max_batch, max_delay_ms: cross-request batching parameters.
        factory: builds a backend from a spec (tests may swap it); None uses :func:`runtime_factory`.
        runtime: "auto" (per device: PyTorch FP16 on CUDA, the fastest exported runtime on a CPU), "torch",
            "onnx" or "openvino"; used when ``factory`` is None.
        cache_dir: where exported models are kept (None: next to the weights); used when ``factory`` is None.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        device: str = "auto",
        max_batch: int = 8,
        max_delay_ms: float = 5.0,
        factory: BackendFactory | None = None,
        runtime: str = "auto",
        cache_dir: Path | None = None,
        precision: str = "f32",
    ) -> None:
        self.registry = registry
        self.device = device
        self.max_batch = max_batch
        self.max_delay_ms = max_delay_ms
        self.runtime = runtime
        self._factory = factory if factory is not None else runtime_factory(runtime, cache_dir, precision=precision)
        self._loaded: dict[str, BatchingDetector] = {}
        self._lock = threading.Lock()

    def get(self, name: str, task: str) -> BatchingDetector:
        """The loaded model ``name`` (or the task's default when empty), loading it on first use.

        Raises:
            NotFoundError: unknown model, or a model of another task.
            FailedPreconditionError: weights missing or unloadable.
        """
        spec = self.registry.resolve(name, task)
        if spec.task not in ("detect", "pose"):
            raise NotFoundError(f"model {spec.name!r} is not a detect or pose model")
        with self._lock:
            det = self._loaded.get(spec.name)
            if det is None:
                backend = self._factory(spec, self.device)
                det = BatchingDetector(backend, self.max_batch, self.max_delay_ms)
                self._loaded[spec.name] = det
            return det

    def preload(self, names: list[str]) -> None:
        """Load and warm ``names`` (registry names; each resolves to its own task)."""
        for name in names:
            spec = self.registry.get(name)
            det = self.get(spec.name, spec.task)
            det.warmup()
            log.info("model %s ready on %s", spec.name, det.device)

    def loaded(self) -> list[str]:
        """Names of the models loaded so far."""
        with self._lock:
            return sorted(self._loaded)

    def close(self) -> None:
        """Stop every batching worker."""
        with self._lock:
            dets = list(self._loaded.values())
            self._loaded.clear()
        for det in dets:
            det.close()
