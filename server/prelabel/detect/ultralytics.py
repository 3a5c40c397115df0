"""Ultralytics YOLO backend for the :class:`~prelabel.detect.base.Detector` protocol (detect and pose models).

Device: CUDA when present (half precision there), else CPU; ``device`` in the settings overrides. Inference runs on
whole batches: every call passes all its images to one ``predict`` call. This class is not thread-safe; the
:class:`~prelabel.detect.batching.BatchingDetector` in front of it is the only caller in the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from prelabel.detect.base import DetectOptions, Image
from prelabel.errors import FailedPreconditionError
from prelabel.images import check_images
from prelabel.registry import ModelSpec
from prelabel.types import NUM_KEYPOINTS, Detections

log = logging.getLogger(__name__)


def select_device(requested: str = "auto") -> str:
    """``"cuda:0"`` when requested is auto and CUDA is present, ``"cpu"`` otherwise; explicit values pass through.

    Raises:
        FailedPreconditionError: CUDA was requested but is not available.
    """
    import torch

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise FailedPreconditionError(f"device {requested!r} requested but CUDA is not available")
    return requested


class UltralyticsDetector:
    """A YOLO detect or pose model loaded from local weights (or built from an architecture config).

    Args:
        spec: the registry entry; its weights must exist locally (nothing downloads).
        device: "auto", "cpu", "cuda", "cuda:N".
        half: use FP16; None means "on GPU only" (FP16 on CPU is slower and less accurate).

    Raises:
        FailedPreconditionError: weights missing (the message names the file and how to get it), or the file is
            not a loadable model.
    """

    def __init__(self, spec: ModelSpec, device: str = "auto", half: bool | None = None) -> None:
        spec.require_available()
        from ultralytics import YOLO

        self.name = spec.name
        self.task = spec.task
        self.runtime = "torch"
        self.device = select_device(device)
        self.half = self.device.startswith("cuda") if half is None else half
        self.imgsz = spec.imgsz
        source = str(spec.weights) if spec.weights is not None else str(spec.arch)
        try:
            self._model = YOLO(source, task=spec.task)
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise FailedPreconditionError(f"model {spec.name!r}: cannot load {source}: {exc}") from exc
        if self._model.task != spec.task:
            raise FailedPreconditionError(
                f"model {spec.name!r}: registry says task {spec.task!r} but {source} is a {self._model.task!r} model"
            )
        names = self._model.names
        self.class_names: Sequence[str] = tuple(names[i] for i in sorted(names)) if isinstance(names, dict) else ()
        log.info("loaded model %s (%s) from %s on %s half=%s", spec.name, spec.task, source, self.device, self.half)

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        """Detect in BGR uint8 images of shape (H, W, 3); one :class:`Detections` per image, in order.

        Raises:
            InvalidInputError: an image has the wrong shape or dtype.
        """
        opts = options or DetectOptions()
        if not images:
            return []
        check_images(images)
        kwargs: dict[str, Any] = {
            "conf": opts.conf,
            "iou": opts.iou,
            "imgsz": opts.imgsz or self.imgsz,
            "max_det": opts.max_det,
            "device": self.device,
            # Ultralytics' precision argument: 16 = FP16, None = FP32 (the default on CPU).
            "quantize": 16 if self.half else None,
            "verbose": False,
            "batch": len(images),
        }
        if opts.classes:
            kwargs["classes"] = list(opts.classes)
        results = self._model.predict(list(images), **kwargs)
        return [self._to_detections(r) for r in results]

    def _to_detections(self, result: Any) -> Detections:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty(self.class_names) if self.task != "pose" else _empty_pose(self.class_names)
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
        scores = boxes.conf.cpu().numpy().astype(np.float32)
        cls = boxes.cls.cpu().numpy().astype(np.int64)
        kpts = None
        if self.task == "pose" and result.keypoints is not None:
            data = result.keypoints.data.cpu().numpy().astype(np.float32)
            if data.shape[-1] == 2:  # models without keypoint visibility: confidence unknown -> 1
                data = np.concatenate([data, np.ones((*data.shape[:-1], 1), np.float32)], axis=-1)
            if data.shape[1:] == (NUM_KEYPOINTS, 3):
                kpts = data
        return Detections(xyxy, scores, cls, self.class_names, kpts)

    def warmup(self) -> None:
        """One inference on a blank image, so lazy initialisation is not paid by the first request."""
        t0 = time.perf_counter()
        size = self.imgsz
        self.detect([np.zeros((size, size, 3), np.uint8)])
        log.info("warmed up %s in %.2f s", self.name, time.perf_counter() - t0)


def _empty_pose(class_names: Sequence[str]) -> Detections:
    empty = Detections.empty(class_names)
    empty.keypoints = np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
    return empty
