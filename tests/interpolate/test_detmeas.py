"""Detections as measurements: the offset correction inverts the measured offset exactly, and the keyframe residual
estimate reads keyframe times."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.interpolate.detmeas import (
    correct_detections,
    detection_offset,
    interp_residual_rms,
    interp_residuals,
    residual_rms,
)
from prelabel.types import Detections


def test_correct_detections_inverts_the_keyframe_offset() -> None:
    """Correcting the detection that defined the offset gives back the annotator's box, one box or many."""
    key = np.array([100.0, 80.0, 20.0, 50.0])
    det_xyxy = np.array([[86.0, 59.0, 110.0, 109.0]])
    off = detection_offset(Detections(det_xyxy, np.array([0.9], np.float32), np.array([0])), key, 0.3)
    assert off is not None
    det_c = np.array([98.0, 84.0, 24.0, 50.0])  # the same box in cx, cy, w, h
    np.testing.assert_allclose(correct_detections(det_c, off), key, atol=1e-9)
    many = np.stack([det_c, det_c + np.array([10.0, -4.0, 0.0, 0.0])])
    out = correct_detections(many, off)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out[1], key + np.array([10.0, -4.0, 0.0, 0.0]), atol=1e-9)
    np.testing.assert_allclose(correct_detections(det_c, np.zeros(4)), det_c)


def test_residual_reads_uneven_keyframe_times() -> None:
    """A linear drift at unevenly spaced keyframes leaves no residual (the even-spacing prediction would see noise),
    independent noise is estimated at its standard deviation, and bad times are refused."""
    times = np.array([0, 3, 20, 24, 50, 90, 97])
    drift = np.stack([0.4 * times, -0.1 * times + 2.0], axis=1).astype(np.float64)
    rms = interp_residual_rms(drift, times)
    assert rms is not None and rms < 1e-9
    even = interp_residual_rms(drift, np.arange(len(times)))
    assert even is not None and even > 1.0  # the same offsets read as evenly spaced look noisy
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.integers(1, 40, size=4001))
    noisy = 0.3 * t[:, None] + rng.normal(0.0, 2.0, size=(len(t), 1))
    est = interp_residual_rms(noisy, t)
    assert est is not None and abs(est - 2.0) < 0.1, est
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        interp_residual_rms(drift, times[::-1])
    with pytest.raises(InvalidInputError, match="shape"):
        interp_residual_rms(drift, times[:-1])


def test_residuals_per_triple_combine_across_estimators() -> None:
    """Per-triple squared residuals are NaN where a triple touches a missing row, and triples taken from different
    estimators combine into one estimate (as guided does for slow and fast gaps)."""
    times = np.array([0, 10, 15, 40, 41])
    vals = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [np.nan, 0.0], [1.0, 1.0]])
    sq = interp_residuals(vals, times)
    assert sq.shape == (3,) and np.isnan(sq[1:]).all()
    s = 10 / 15
    assert abs(sq[0] - 25.0 / (1 + s**2 + (1 - s) ** 2)) < 1e-12
    assert residual_rms(np.array([4.0, np.nan])) is None
    assert residual_rms(np.array([4.0, np.nan, 16.0])) == pytest.approx(np.sqrt(10.0))
    assert interp_residuals(vals[:2], times[:2]).shape == (0,)
