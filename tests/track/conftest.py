"""Small generated scenes (ground truth + noisy detections) shared by the tracking tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prelabel.track.simulate import DetectorNoise, noisy_detections, toy_scene
from prelabel.types import Detections, Track

FPS = 25.0
W, H = 960, 540

SceneFn = Callable[..., tuple[list[Track], list[tuple[int, float, Detections]]]]


def _scene(
    kind: str, seed: int, num_frames: int = 150, noise: DetectorNoise | None = None
) -> tuple[list[Track], list[tuple[int, float, Detections]]]:
    gt = toy_scene(kind, seed, num_frames=num_frames, fps=FPS, width=W, height=H)
    dets = noisy_detections(gt, num_frames, W, H, FPS, seed=seed + 7, noise=noise)
    return gt, [(f, f * 1000.0 / FPS, d) for f, d in enumerate(dets)]


@pytest.fixture
def make_scene() -> SceneFn:
    """``make_scene(kind, seed, num_frames=150, noise=None)`` -> ground truth, ``(frame_idx, ts_ms, detections)``."""
    return _scene
