"""Helpers for job tests: a generated clip and the detector to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from prelabel.registry import ModelRegistry
from prelabel.settings import default_models_dir
from prelabel.synthetic import generate, write_scene


def pick_detector() -> tuple[str, dict[str, str]]:
    """The shipped synthetic detector when its weights exist, else the untrained architecture at a low threshold
    (random but deterministic boxes: enough to exercise jobs end to end)."""
    registry = ModelRegistry.load(default_models_dir() / "registry.yaml")
    name = registry.defaults.get("detect", "")
    if name and registry.get(name).available and not name.startswith("yolo"):
        return name, {"imgsz": "320"}
    return "arch-yolo11n", {"imgsz": "320", "conf": "0.001"}


def make_clip(folder: Path, seed: int = 4, frames: int = 48) -> Path:
    """A small generated clip (320x192)."""
    scene = generate("default", seed, num_frames=frames, width=320, height=192)
    return write_scene(scene, folder)["video"]


@pytest.fixture()
def job_detector() -> tuple[str, dict[str, str]]:
    """(model name, job options) for job tests."""
    return pick_detector()
