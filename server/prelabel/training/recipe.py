"""The training recipe of the shipped synthetic models, as data (recorded in the model card)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from prelabel.training.dataset import DEFAULT_MIX


@dataclass(frozen=True)
class TrainRecipe:
    """Everything that decides the shipped weights.

    One YOLO11n-pose network is trained on ``person`` (17 keypoints) and ``ball`` (no keypoints); the shipped
    detector is its box/class branch (pose head dropped) and the shipped pose model is the same network with the ball
    class removed, so both come from one training run.

    Attributes:
        train_seeds: (first, count) of training scene seeds.
        heldout_seeds: (first, count) of held-out scene seeds (never used in training).
        frames_per_scene: images sampled per scene.
        scene_frames: frames generated per scene.
        arch: Ultralytics architecture config.
        imgsz: training and inference size (pixels, longest side).
        epochs: maximum epochs.
        time_hours: wall-clock budget in hours (Ultralytics ``time``; 0 = use ``epochs``).
        batch: images per batch.
        nbs: nominal batch size (Ultralytics accumulates gradients up to it; equal to ``batch`` = a step per batch,
            which matters for short CPU runs).
        warmup_epochs: learning-rate warm-up epochs.
        workers: dataloader workers (Ultralytics caps them at the machine's cores).
        device: ``auto`` (the first CUDA GPU when there is one, else the CPU), ``cpu``, or a CUDA index such as
            ``0``. Speed only: the recipe's data and schedule are the same on either.
        seed: training seed.
        init: a person+ball pose checkpoint to continue from (e.g. a previous run's ``last.pt``); empty trains
            ``arch`` from scratch.
        mix: scene preset mixture.
    """

    train_seeds: tuple[int, int] = (0, 200)
    heldout_seeds: tuple[int, int] = (1_000_000, 40)
    frames_per_scene: int = 6
    scene_frames: int = 60
    arch: str = "yolo11n-pose.yaml"
    imgsz: int = 320
    epochs: int = 40
    time_hours: float = 0.65
    batch: int = 8
    nbs: int = 8
    warmup_epochs: float = 1.0
    workers: int = 2
    device: str = "auto"
    seed: int = 0
    init: str = ""
    mix: tuple[tuple[str, float], ...] = field(default=DEFAULT_MIX)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)
