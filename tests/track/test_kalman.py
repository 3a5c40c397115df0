"""The Kalman motion model: batched equations equal filterpy's, noise scales with time and size."""

from __future__ import annotations

import numpy as np
from filterpy.kalman import predict as fp_predict
from filterpy.kalman import update as fp_update

from prelabel.track import kalman


def test_batched_predict_and_update_equal_filterpy() -> None:
    rng = np.random.default_rng(0)
    xs = np.c_[rng.uniform(50, 500, (3, 2)), rng.uniform(20, 80, (3, 2)), rng.normal(0, 30, (3, 4))]
    ps = np.stack([np.diag(rng.uniform(1, 20, 8)) for _ in range(3)])
    xb, pb = kalman.predict_batch(xs, ps, 0.04, 1.0, 0.5)
    zs = xb[:, :4] + rng.normal(0, 2, (3, 4))
    rs = kalman.measurement_noise_batch(xb[:, 3], np.array([0.9, 0.5, 0.2]), 0.1, 2.0)
    xu, pu = kalman.update_batch(xb, pb, zs, rs)
    for i in range(3):
        x1, p1 = fp_predict(xs[i], ps[i], kalman.transition(0.04), kalman.process_noise(0.04, xs[i, 3], 1.0, 0.5))
        np.testing.assert_allclose(xb[i], x1, rtol=1e-9)
        np.testing.assert_allclose(pb[i], p1, rtol=1e-9)
        x2, p2 = fp_update(x1, p1, zs[i], rs[i], kalman.H_MEAS)
        np.testing.assert_allclose(xu[i], x2, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(pu[i], p2, rtol=1e-7, atol=1e-7)


def test_noise_scales_with_time_size_and_score() -> None:
    q_small = kalman.process_noise(0.1, 50.0, 1.0, 0.5)
    q_big = kalman.process_noise(0.1, 100.0, 1.0, 0.5)
    np.testing.assert_allclose(q_big, 4.0 * q_small)
    # Two half steps carry the same velocity variance as one full step (time-based, not frame-based).
    assert kalman.process_noise(0.2, 50.0, 1.0, 0.5)[4, 4] == np.float64(2.0 * q_small[4, 4])
    r_conf = kalman.measurement_noise(100.0, 1.0, 0.1, 2.0)
    r_weak = kalman.measurement_noise(100.0, 0.5, 0.1, 2.0)
    assert r_weak[0, 0] == 4.0 * r_conf[0, 0]


def test_box_conversions_round_trip() -> None:
    b = np.array([[10.0, 20.0, 50.0, 120.0]])
    np.testing.assert_allclose(kalman.cxcywh_to_xyxy(kalman.xyxy_to_cxcywh(b)), b)
