"""Pose metrics against hand-computed values: OKS, COCO keypoint AP, PCK, jitter and lag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.metrics.pose import PoseInstance, keypoint_jitter, oks, oks_ap, pck, trajectory_lag
from prelabel.types import COCO17_SIGMAS, Skeleton


def _sk(xy: np.ndarray, present: np.ndarray | None = None, score: float = 1.0) -> Skeleton:
    kp = np.concatenate([np.asarray(xy, np.float32), np.ones((17, 1), np.float32)], axis=1)
    return Skeleton(kp, np.ones(17, bool) if present is None else present, score)


GT_XY = np.stack([np.linspace(100, 180, 17), np.linspace(50, 250, 17)], axis=1)
GT_BOX = np.array([90, 40, 190, 260], np.float32)  # area 100 x 220 = 22000


def test_oks_matches_hand_computation() -> None:
    present = np.zeros(17, bool)
    present[[0, 9]] = True  # nose and left wrist visible
    gt = _sk(GT_XY, present)
    dt_xy = GT_XY.copy()
    dt_xy[0] += [3.0, 4.0]  # 5 px off
    dt_xy[9] += [6.0, 8.0]  # 10 px off
    dt_xy[3] += 500.0  # not visible in GT: ignored
    area = 22000.0
    k0, k9 = 2 * COCO17_SIGMAS[0], 2 * COCO17_SIGMAS[9]
    expected = (math.exp(-25 / (2 * area * k0**2)) + math.exp(-100 / (2 * area * k9**2))) / 2
    assert oks(gt, _sk(dt_xy), area) == pytest.approx(expected, rel=1e-9)
    assert oks(gt, gt, area) == pytest.approx(1.0)
    assert oks(_sk(GT_XY, np.zeros(17, bool)), gt, area) == 0.0


def _dt_with_oks(target: float, area: float) -> np.ndarray:
    """All keypoints offset by the same d so that mean exp(-d^2 / (2 area k_i^2)) == target (bisection)."""
    k2 = (2 * np.asarray(COCO17_SIGMAS)) ** 2
    lo, hi = 0.0, 200.0
    for _ in range(100):
        d = (lo + hi) / 2
        val = np.exp(-(d**2) / (2 * area * k2)).mean()
        lo, hi = (d, hi) if val > target else (lo, d)
    return GT_XY + np.array([lo, 0.0])


def test_oks_ap_follows_the_coco_definition() -> None:
    gt = PoseInstance(0, _sk(GT_XY), GT_BOX)
    area = gt.object_area
    dt_xy = _dt_with_oks(0.77, area)
    assert oks(gt.skeleton, _sk(dt_xy), area) == pytest.approx(0.77, abs=1e-6)
    # OKS 0.77 passes thresholds .50 ... .75 (6 of 10): AP = 0.6, AP50 = 1, AP75 = 1
    res = oks_ap([gt], [PoseInstance(0, _sk(dt_xy), GT_BOX, 0.9)])
    assert res.ap == pytest.approx(0.6) and res.ap50 == pytest.approx(1.0) and res.ap75 == pytest.approx(1.0)
    perfect = PoseInstance(0, _sk(GT_XY), GT_BOX, 0.9)
    assert oks_ap([gt], [perfect]).ap == pytest.approx(1.0)
    # a false positive ranked below the match changes nothing; ranked above, it halves precision at recall 1
    fp_low = PoseInstance(0, _sk(GT_XY + 400.0), GT_BOX, 0.1)
    fp_high = PoseInstance(0, _sk(GT_XY + 400.0), GT_BOX, 0.99)
    assert oks_ap([gt], [perfect, fp_low]).ap == pytest.approx(1.0)
    assert oks_ap([gt], [perfect, fp_high]).ap == pytest.approx(0.5)
    # a second image whose person is missed: recall 1/2 at every threshold
    gt2 = PoseInstance(1, _sk(GT_XY), GT_BOX)
    assert oks_ap([gt, gt2], [perfect]).ap == pytest.approx(0.5, abs=0.01)
    assert oks_ap([gt], []).ap == 0.0


def test_oks_ap_rejects_wrong_sigmas() -> None:
    with pytest.raises(InvalidInputError, match="17"):
        oks_ap([], [], sigmas=(0.1, 0.2))


def test_pck_counts_keypoints_within_alpha_of_reference() -> None:
    gt = _sk(GT_XY)
    dt_xy = GT_XY.copy()
    dt_xy[:5] += 30.0  # 42.4 px off: wrong at alpha 0.2 * 200 = 40 px
    dt_xy[5:8] += 20.0  # 28.3 px off: right
    present = np.ones(17, bool)
    present[16] = False  # a missing prediction is wrong
    assert pck([gt], [_sk(dt_xy, present)], [200.0], alpha=0.2) == pytest.approx(11 / 17)
    assert pck([gt, gt], [_sk(GT_XY), None], [200.0, 200.0]) == pytest.approx(0.5)
    with pytest.raises(InvalidInputError, match="equal lengths"):
        pck([gt], [], [1.0])


def test_jitter_is_acceleration_error_against_ground_truth() -> None:
    t = np.arange(20, dtype=np.float64)
    gt = np.zeros((20, 17, 2))
    gt[:, :, 0] = (0.5 * t**2)[:, None]  # real acceleration of 1 px/frame^2: not jitter
    present = np.ones((20, 17), bool)
    assert keypoint_jitter(gt, present, gt + 7.0, present).mean == pytest.approx(0.0)
    noisy = gt.copy()
    noisy[:, 9, 1] += 2.0 * (-1.0) ** t  # +-2 px alternating on the left wrist: |a| = 8 px/frame^2
    res = keypoint_jitter(gt, present, noisy, present)
    assert res.per_keypoint[9] == pytest.approx(8.0)
    assert res.per_keypoint[0] == pytest.approx(0.0)
    assert res.count[9] == 18
    missing = present.copy()
    missing[5, 9] = False  # three triples lose the wrist
    assert keypoint_jitter(gt, present, noisy, missing).count[9] == 15


def test_trajectory_lag_recovers_a_known_delay() -> None:
    t = np.arange(200)
    gt = np.stack([100 * np.sin(2 * np.pi * t / 37.0), 50 * np.cos(2 * np.pi * t / 23.0)], axis=1)
    delayed = np.roll(gt, 3, axis=0)  # prediction(t) = gt(t - 3)
    valid = np.ones(200, bool)
    valid[:3] = False
    assert trajectory_lag(gt, delayed, valid) == pytest.approx(3.0, abs=0.1)
    assert trajectory_lag(gt, gt) == pytest.approx(0.0, abs=0.05)
    assert trajectory_lag(delayed, gt, valid) == pytest.approx(-3.0, abs=0.1)
