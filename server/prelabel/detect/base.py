"""The detector extension point: a small protocol every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from prelabel.errors import InvalidInputError
from prelabel.images import Image
from prelabel.types import Detections

#: The largest inference size accepted (pixels, longest side): 4K frames at full size. Memory grows with its
#: square; 8192 would take more than 10 GB for the smallest model.
MAX_IMGSZ = 4096


@dataclass(frozen=True)
class DetectOptions:
    """Per-call filters.

    Attributes:
        conf: minimum score in [0, 1].
        iou: NMS IoU threshold in (0, 1].
        classes: keep only these class ids; empty keeps all.
        imgsz: inference size in pixels (longest side), a multiple of 32 up to ``MAX_IMGSZ``; 0 uses the model's.
        max_det: most detections per image.
    """

    conf: float = 0.25
    iou: float = 0.7
    classes: tuple[int, ...] = field(default_factory=tuple)
    imgsz: int = 0
    max_det: int = 300

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0:
            raise InvalidInputError(f"conf must be in [0, 1], got {self.conf}")
        if not 0.0 < self.iou <= 1.0:
            raise InvalidInputError(f"iou must be in (0, 1], got {self.iou}")
        if self.imgsz < 0 or self.imgsz > MAX_IMGSZ or (self.imgsz and self.imgsz % 32):
            raise InvalidInputError(f"imgsz must be 0 or a multiple of 32 up to {MAX_IMGSZ}, got {self.imgsz}")
        if self.max_det <= 0:
            raise InvalidInputError(f"max_det must be positive, got {self.max_det}")
        if any(c < 0 for c in self.classes):
            raise InvalidInputError(f"classes must be class ids (>= 0), got {list(self.classes)}")

    def check_classes(self, class_names: Sequence[str]) -> None:
        """Refuse class ids the model does not have (a filter on them would silently keep nothing).

        Raises:
            InvalidInputError: naming the ids and the model's classes.
        """
        bad = [c for c in self.classes if class_names and c >= len(class_names)]
        if bad:
            known = ", ".join(f"{i} {name}" for i, name in enumerate(class_names))
            raise InvalidInputError(f"classes {bad} are not class ids of this model ({known})")

    @property
    def batch_key(self) -> tuple[float, float, tuple[int, ...], int, int]:
        """Requests with equal keys may share one batched forward pass."""
        return (self.conf, self.iou, self.classes, self.imgsz, self.max_det)


@runtime_checkable
class Detector(Protocol):
    """Finds objects in images.

    ``task`` is ``"detect"`` or ``"pose"``; a pose detector fills :attr:`Detections.keypoints`.
    """

    name: str
    task: str
    class_names: Sequence[str]
    device: str

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        """Detect in a batch of BGR uint8 images (H, W, 3); returns one :class:`Detections` per image, in order."""
        ...

    def warmup(self) -> None:
        """Run one inference so the first real request does not pay for lazy initialisation."""
        ...
