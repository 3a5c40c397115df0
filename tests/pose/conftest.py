"""Hand-built pose scenes for the pose tests: people walking with swinging arms, and noisy pose detections of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from prelabel.types import NUM_KEYPOINTS, Detections, Skeleton, Track, TrackedBox

# Standing person, keypoints relative to the top-centre of the body, in units of body height (y down).
TEMPLATE = np.array(
    [
        [0.0, 0.06], [-0.02, 0.045], [0.02, 0.045], [-0.04, 0.05], [0.04, 0.05], [-0.1, 0.18], [0.1, 0.18],
        [-0.13, 0.33], [0.13, 0.33], [-0.14, 0.46], [0.14, 0.46], [-0.07, 0.52], [0.07, 0.52], [-0.08, 0.74],
        [0.08, 0.74], [-0.08, 0.96], [0.08, 0.96],
    ],
    dtype=np.float64,
)  # fmt: skip
ELBOWS, WRISTS = (7, 8), (9, 10)
KNEES, ANKLES = (13, 14), (15, 16)
LR_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


@dataclass
class PoseScene:
    """Ground truth of a hand-built scene: per person (T, 17, 2) keypoints, (T, 4) boxes; frame times in ms."""

    keypoints: list[np.ndarray]
    boxes: list[np.ndarray]
    ts_ms: np.ndarray
    height: float

    def tracks(self, rng: np.random.Generator | None = None, box_noise: float = 0.0) -> list[Track]:
        """Tracks (IDs 1..P) with ground-truth skeletons and timestamps; boxes jittered by ``box_noise`` x height
        (like a tracker's imperfect boxes) when ``rng`` is given."""
        out = []
        for p, (kp, bx) in enumerate(zip(self.keypoints, self.boxes, strict=True)):
            if rng is not None and box_noise > 0:
                bx = bx + rng.normal(0.0, box_noise * self.height, bx.shape).astype(np.float32)
                bx[:, 2:] = np.maximum(bx[:, 2:], bx[:, :2] + 1.0)
            boxes = [
                TrackedBox(
                    t,
                    bx[t],
                    1.0,
                    ts_ms=float(self.ts_ms[t]),
                    skeleton=Skeleton(np.concatenate([kp[t], np.ones((NUM_KEYPOINTS, 1))], 1), np.ones(17, bool)),
                )
                for t in range(len(kp))
            ]
            out.append(Track(p + 1, boxes, 0, "person"))
        return out


def person_keypoints(cx: float, top: float, h: float, swing: float) -> np.ndarray:
    """(17, 2) keypoints of a person of height ``h`` px with arms and legs swung by ``swing`` (in [-1, 1])."""
    kp = TEMPLATE.copy()
    for side, sign in ((0, 1.0), (1, -1.0)):
        kp[ELBOWS[side], 0] += sign * 0.08 * swing
        kp[WRISTS[side], 0] += sign * 0.2 * swing
        kp[WRISTS[side], 1] -= 0.06 * abs(swing)
        kp[KNEES[side], 0] -= sign * 0.05 * swing
        kp[ANKLES[side], 0] -= sign * 0.1 * swing
    return np.stack([cx + kp[:, 0] * h, top + kp[:, 1] * h], axis=1)


def box_of(kp: np.ndarray, h: float) -> np.ndarray:
    """A box around keypoints with a margin of 4% of the height."""
    m = 0.04 * h
    return np.array([kp[:, 0].min() - m, kp[:, 1].min() - m, kp[:, 0].max() + m, kp[:, 1].max() + m], np.float32)


def crossing_scene(num_frames: int = 90, fps: float = 30.0, h: float = 200.0, swing_hz: float = 1.5) -> PoseScene:
    """Two people walking towards each other on the same line, crossing mid-clip, arms swinging at ``swing_hz``."""
    t = np.arange(num_frames) / fps
    dur = num_frames / fps
    people = [(100.0, 540.0, 0.0), (540.0, 100.0, 1.3)]  # start x, end x, swing phase
    kps, boxes = [], []
    for x0, x1, phase in people:
        cx = x0 + (x1 - x0) * t / dur
        kp = np.stack(
            [person_keypoints(cx[i], 60.0, h, np.sin(2 * np.pi * swing_hz * t[i] + phase)) for i in range(num_frames)]
        )
        kps.append(kp)
        boxes.append(np.stack([box_of(k, h) for k in kp]))
    return PoseScene(kps, boxes, t * 1000.0, h)


@dataclass
class SimulatedPoses:
    """Noisy pose detections of a scene: per frame Detections, and per frame which person each row is (-1: false)."""

    poses: dict[int, Detections]
    owner: dict[int, np.ndarray]


def simulate_poses(
    scene: PoseScene,
    rng: np.random.Generator,
    noise: float = 0.015,
    p_drop_kpt: float = 0.05,
    p_swap: float = 0.02,
    p_false: float = 0.05,
    p_miss: float = 0.02,
) -> SimulatedPoses:
    """Pose-model-like detections: keypoint jitter (``noise`` x height, px), dropped keypoints (low confidence),
    left/right swaps, missed persons and false persons; rows shuffled per frame."""
    poses: dict[int, Detections] = {}
    owner: dict[int, np.ndarray] = {}
    h = scene.height
    num_frames = len(scene.ts_ms)
    for f in range(num_frames):
        rows, who = [], []
        for p, kp in enumerate(scene.keypoints):
            if rng.random() < p_miss:
                continue
            k = kp[f] + rng.normal(0.0, noise * h, (NUM_KEYPOINTS, 2))
            if rng.random() < p_swap:
                a, b = LR_PAIRS[rng.integers(len(LR_PAIRS))]
                k[[a, b]] = k[[b, a]]
            conf = rng.uniform(0.6, 1.0, NUM_KEYPOINTS)
            conf[rng.random(NUM_KEYPOINTS) < p_drop_kpt] = 0.05
            rows.append(np.concatenate([k, conf[:, None]], axis=1))
            who.append(p)
        if rng.random() < p_false:
            k = person_keypoints(rng.uniform(50, 600), 300.0, h * 0.5, 0.0) + rng.normal(0, 3, (NUM_KEYPOINTS, 2))
            rows.append(np.concatenate([k, np.full((NUM_KEYPOINTS, 1), 0.7)], axis=1))
            who.append(-1)
        order = rng.permutation(len(rows))
        kpts = np.stack(rows)[order] if rows else np.zeros((0, NUM_KEYPOINTS, 3))
        xyxy = np.stack([box_of(r[:, :2], h) for r in kpts]) if rows else np.zeros((0, 4))
        poses[f] = Detections(
            xyxy, rng.uniform(0.5, 0.95, len(rows)), np.zeros(len(rows), np.int64), ("person",), kpts.astype(np.float32)
        )
        owner[f] = np.asarray(who, np.int64)[order] if rows else np.zeros(0, np.int64)
    return SimulatedPoses(poses, owner)


@pytest.fixture
def make_crossing_scene() -> Callable[..., PoseScene]:
    """Factory for :func:`crossing_scene`."""
    return crossing_scene


@pytest.fixture
def make_poses() -> Callable[..., SimulatedPoses]:
    """Factory for :func:`simulate_poses`."""
    return simulate_poses
