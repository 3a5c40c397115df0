"""Interpolation metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.metrics.interpolation import box_iou, box_speed, centre_error, oks, pck, summarize_boxes


def test_box_iou_and_centre_error() -> None:
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou(pred, gt), [1.0, 50 / 150, 0.0])
    np.testing.assert_allclose(centre_error(pred, gt), [0.0, 5 / np.hypot(10, 10), 20 * np.sqrt(2) / np.hypot(10, 10)])
    with pytest.raises(InvalidInputError):
        box_iou(pred[:, :3], gt[:, :3])


def test_summary_percentile_and_speed() -> None:
    s = summarize_boxes(np.linspace(0, 1, 11), np.zeros(11))
    assert (
        s.mean_iou == pytest.approx(0.5) and s.p10_iou == pytest.approx(0.1) and s.frac_iou_08 == pytest.approx(3 / 11)
    )
    boxes = np.array([[0, 0, 3, 4], [3, 0, 6, 4], [6, 0, 9, 4]], float)
    np.testing.assert_allclose(box_speed(boxes), [3 / 5] * 3)


def test_pck_and_oks() -> None:
    gt = np.zeros((1, 17, 2))
    box = np.array([[0, 0, 100, 50]], float)
    pred = gt.copy()
    pred[0, :8, 0] = 4.0  # within 5 px
    pred[0, 8:, 0] = 6.0  # beyond 0.05 * 100
    vis = np.ones((1, 17), bool)
    vis[0, 16] = False
    p = pck(pred, gt, vis, box, 0.05)
    assert np.nansum(p) == 8 and np.isnan(p[0, 16])
    assert oks(gt, gt, vis, box)[0] == pytest.approx(1.0)
    assert 0.0 < oks(pred, gt, vis, box)[0] < 1.0
