"""Skeleton noise and mirroring: make exact ground-truth skeletons look like a pose model's output, and augment."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import uniform_filter1d

from prelabel.types import Skeleton, Track, TrackedBox

# COCO-17 left/right pairs, swapped by a horizontal mirror.
_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)


@dataclass(frozen=True)
class KeypointNoise:
    """Pose-model-like errors, relative to the person's box height.

    Attributes:
        jitter: std of independent per-frame keypoint noise, as a fraction of box height (0.02 is 2 %).
        drift: std of a slowly varying per-keypoint offset (random walk smoothed over ~0.3 s), fraction of height.
        drop: probability that a keypoint is missing in a frame.
    """

    jitter: float = 0.02
    drift: float = 0.01
    drop: float = 0.05


def add_keypoint_noise(track: Track, noise: KeypointNoise, rng: np.random.Generator) -> Track:
    """A copy of ``track`` whose skeletons carry noise: jitter, slow drift and dropped keypoints.

    Args:
        track: boxes with skeletons (boxes without one are copied unchanged).
        noise: amounts.
        rng: the random source (owned by the caller, for reproducibility).
    """
    n = len(track.boxes)
    drift = np.cumsum(rng.normal(0.0, 1.0, size=(n, 17, 2)), axis=0)
    # Detrend the random walk so it stays bounded: subtract a moving average over ~9 frames, then normalise.
    smooth = uniform_filter1d(drift, size=9, axis=0, mode="nearest")
    drift = smooth - uniform_filter1d(smooth, size=31, axis=0, mode="nearest")
    drift /= max(float(drift.std()), 1e-6)
    boxes = []
    for i, b in enumerate(track.boxes):
        sk = b.skeleton
        if sk is None:
            boxes.append(b)
            continue
        h = float(max(b.xyxy[3] - b.xyxy[1], 1.0))
        kp = sk.keypoints.copy()
        kp[:, :2] += (rng.normal(0.0, noise.jitter, size=(17, 2)) + noise.drift * drift[i]) * h
        present = sk.present & (rng.random(17) >= noise.drop)
        kp[:, 2] = np.where(present, np.clip(rng.normal(0.8, 0.1, 17), 0.05, 1.0), 0.0)
        boxes.append(replace(b, skeleton=Skeleton(kp.astype(np.float32), present, sk.score)))
    return Track(track.track_id, boxes, track.class_id, track.class_name)


def mirror_track(track: Track, width: float) -> Track:
    """A horizontally mirrored copy (x -> width - x, left and right keypoints swapped)."""
    boxes = []
    for b in track.boxes:
        x1, y1, x2, y2 = (float(v) for v in b.xyxy)
        sk = b.skeleton
        new_sk = None
        if sk is not None:
            kp = sk.keypoints[list(_FLIP)].copy()
            kp[:, 0] = width - kp[:, 0]
            new_sk = Skeleton(kp, sk.present[list(_FLIP)], sk.score)
        boxes.append(
            TrackedBox(b.frame_idx, np.array([width - x2, y1, width - x1, y2]), b.score, b.source, b.ts_ms, new_sk)
        )
    return Track(track.track_id, boxes, track.class_id, track.class_name)
