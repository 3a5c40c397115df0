"""Training the offline default models (detector: person + ball; pose: person, COCO-17) on synthetic scenes."""

from __future__ import annotations

from prelabel.training.dataset import DatasetSpec, export_yolo_dataset
from prelabel.training.recipe import TrainRecipe

__all__ = ["DatasetSpec", "TrainRecipe", "export_yolo_dataset"]
