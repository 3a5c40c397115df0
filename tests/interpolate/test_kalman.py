"""The banded keyframe smoother equals a per-frame Kalman filter + RTS smoother (filterpy) run frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from prelabel.interpolate.kalman import SmootherParams, process_noise, rts_smooth, transition


def _reference(key_frames: np.ndarray, values: np.ndarray, params: SmootherParams) -> np.ndarray:
    """filterpy, one coordinate at a time, a step per frame, an update only at keyframes."""
    order = 2 if params.model == "cv" else 3
    t0, t1 = int(key_frames[0]), int(key_frames[-1])
    f = transition(np.array([1.0]), order)[0]
    q = process_noise(np.array([1.0]), order, params.q)[0]
    out = np.zeros((t1 - t0 + 1, values.shape[1]))
    for d in range(values.shape[1]):
        kf = KalmanFilter(dim_x=order, dim_z=1)
        kf.F, kf.Q = f, q
        kf.H = np.eye(1, order)
        kf.R = np.array([[params.r]])
        kf.x = np.zeros(order)
        kf.x[0] = values[0, d]
        kf.P = np.diag([params.r] + [params.prior_var] * (order - 1))
        zs = [None] * (t1 - t0 + 1)
        for k, v in zip(key_frames[1:], values[1:, d], strict=True):
            zs[int(k) - t0] = np.array([v])
        xs, ps = [kf.x.copy()], [kf.P.copy()]
        for z in zs[1:]:
            kf.predict()
            kf.update(z)
            xs.append(kf.x.copy())
            ps.append(kf.P.copy())
        sm, _, _, _ = kf.rts_smoother(np.array(xs), np.array(ps), [f] * len(xs), [q] * len(xs))
        out[:, d] = sm[:, 0]
    return out


@pytest.mark.parametrize("model", ["cv", "ca"])
def test_banded_smoother_matches_per_frame_rts(model: str) -> None:
    rng = np.random.default_rng(3)
    key_frames = np.array([0, 6, 13, 30, 34, 50], dtype=np.int64)
    values = rng.uniform(0, 300, (len(key_frames), 3))
    params = SmootherParams(model, q=4.0 if model == "cv" else 0.05, r=1e-3, prior_var=1e6)
    ours, std = rts_smooth(key_frames, values, params)
    ref = _reference(key_frames, values, params)
    np.testing.assert_allclose(ours, ref, atol=0.05)
    assert std[key_frames - key_frames[0]].max() == 0.0 and (std[1:6] > 0).all()


def test_irregular_gap_lengths_take_the_general_path() -> None:
    # More than 64 distinct gap lengths: the per-frame gather path, same answer as filterpy.
    key_frames = np.concatenate([[0], np.cumsum(np.arange(2, 72))]).astype(np.int64)
    values = (np.sin(key_frames / 40.0) * 100)[:, None]
    params = SmootherParams("cv", q=1.0, r=1e-3, prior_var=1e6)
    ours, _ = rts_smooth(key_frames, values, params)
    np.testing.assert_allclose(ours, _reference(key_frames, values, params), atol=0.05)


@pytest.mark.parametrize("model", ["cv", "ca"])
@pytest.mark.parametrize("gaps", [[20, 20, 20], [1000, 1000, 1000], [5000, 5000, 5000], [5, 5000, 5000], [20, 10000]])
def test_constant_velocity_stays_straight_across_long_gaps(model: str, gaps: list[int]) -> None:
    """Constant velocity is a special case of both models: keyframes thousands of frames apart (a person walking
    slowly, keyframed every few minutes) must give the straight path. The velocity prior used to outweigh what the
    keyframes said of the velocity: with ``ca`` the path bent by 3 px at gaps of 1000 frames, 400 px at 5000; after a
    first fix, still by 0.95 px where a short first gap came before gaps of 5000 (a reviewer's case)."""
    key_frames = np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)
    values = np.c_[100.0 + 0.5 * key_frames, 300.0 - 0.2 * key_frames]
    scale = 60.0
    params = SmootherParams(model, q=1e-3 * scale * scale * (1.0 if model == "cv" else 1e-2), prior_var=1e4 * scale**2)
    ours, _ = rts_smooth(key_frames, values, params)
    t = np.arange(key_frames[-1] + 1, dtype=np.float64)
    np.testing.assert_allclose(ours, np.c_[100.0 + 0.5 * t, 300.0 - 0.2 * t], atol=1e-2)
