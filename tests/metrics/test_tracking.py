"""TrackEval-backed tracking metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.metrics.tracking import box_iou, evaluate_tracks
from prelabel.types import Track, TrackedBox


def _track(tid: int, xs: list[float], frames: range) -> Track:
    boxes = [TrackedBox(f, np.array([x, 0, x + 10, 10], np.float32), 1.0) for f, x in zip(frames, xs, strict=True)]
    return Track(tid, boxes)


def _two_static(n: int = 10) -> list[Track]:
    return [_track(1, [0.0] * n, range(n)), _track(2, [100.0] * n, range(n))]


def test_perfect_tracking_scores_one() -> None:
    gt = _two_static()
    s = evaluate_tracks(gt, gt)
    assert s.hota == pytest.approx(1.0)
    assert s.deta == pytest.approx(1.0) and s.assa == pytest.approx(1.0) and s.loca == pytest.approx(1.0)
    assert s.idf1 == pytest.approx(1.0) and s.mota == pytest.approx(1.0)
    assert s.id_switches == 0


def test_id_swap_halfway_halves_idf1() -> None:
    gt = _two_static()
    # Both predicted tracks swap objects after frame 4: every box is right, half the identities are wrong.
    a = Track(1, [TrackedBox(f, [0 if f < 5 else 100, 0, (0 if f < 5 else 100) + 10, 10], 1.0) for f in range(10)])
    b = Track(2, [TrackedBox(f, [100 if f < 5 else 0, 0, (100 if f < 5 else 0) + 10, 10], 1.0) for f in range(10)])
    s = evaluate_tracks(gt, [a, b])
    assert s.idf1 == pytest.approx(0.5)  # IDTP = 5 + 5 of 20
    assert s.deta == pytest.approx(1.0)
    assert s.assa == pytest.approx(1.0 / 3.0)  # per TP: TPA 5, FNA 5, FPA 5
    assert s.hota == pytest.approx(math.sqrt(1.0 / 3.0))
    assert s.id_switches == 2
    assert s.mota == pytest.approx(1.0 - 2 / 20)


def test_missing_half_the_boxes() -> None:
    gt = _two_static()
    pred = [_track(1, [0.0] * 5, range(5)), _track(2, [100.0] * 10, range(10))]
    s = evaluate_tracks(gt, pred)
    assert s.idr == pytest.approx(15 / 20)
    assert s.idp == pytest.approx(1.0)
    assert s.mota == pytest.approx(15 / 20)


def test_box_iou_matches_hand_values() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_duplicate_ids_are_rejected() -> None:
    gt = _two_static()
    with pytest.raises(InvalidInputError, match="track 1"):
        evaluate_tracks(gt, [gt[0], gt[0]])
