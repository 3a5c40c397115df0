"""The tracker on real footage: PETS09-S2L1 public detections (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prelabel.metrics.tracking import evaluate_tracks
from prelabel.track import track_detections
from prelabel.types import Detections, Track, TrackedBox

pytestmark = pytest.mark.shared_data


def _load(root: Path) -> tuple[list[tuple[int, float, Detections]], list[Track], int]:
    det = np.loadtxt(root / "det" / "det.txt", delimiter=",", ndmin=2)
    gt = np.loadtxt(root / "gt" / "gt.txt", delimiter=",", ndmin=2)
    gt = gt[gt[:, 6] != 0]
    n = int(max(det[:, 0].max(), gt[:, 0].max()))
    frames = []
    for f in range(n):
        r = det[det[:, 0] == f + 1]
        xyxy = np.c_[r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]]
        frames.append((f, f * 1000.0 / 7.0, Detections(xyxy, np.clip(r[:, 6], 0, 1), np.zeros(len(r)))))
    tracks = []
    for tid in np.unique(gt[:, 1]).astype(int):
        rows = gt[gt[:, 1] == tid]
        rows = rows[np.argsort(rows[:, 0])]
        tracks.append(
            Track(int(tid), [TrackedBox(int(f) - 1, [x, y, x + w, y + h], 1.0) for f, _, x, y, w, h in rows[:, :6]])
        )
    return frames, tracks, n


def test_pets09_public_detections_beat_the_reference_trackers(pets09_dir: Path) -> None:
    frames, gt, n = _load(pets09_dir)
    s = evaluate_tracks(gt, track_detections(frames, fps=7.0, frame_size=(768, 576)), n)
    # boxmot on the same detections (../shared/data/pets09-s2l1/README.md): best HOTA .378, best IDF1 .465.
    assert s.hota > 0.41
    assert s.idf1 > 0.55
