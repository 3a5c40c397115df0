"""Constant-velocity Kalman motion model of a box, with noise scaled by box size, detection score and elapsed time.

State ``x`` (8,) float64: ``cx, cy, w, h`` (pixels) and their velocities ``vcx, vcy, vw, vh`` (pixels/s).
Measurement ``z`` (4,): ``cx, cy, w, h`` of a detection.

Motion (elapsed time ``dt`` seconds, from real timestamps)::

    x_k = F(dt) x_{k-1} + w,   F(dt) = [[I4, dt I4], [0, I4]]

with ``w`` white acceleration noise: per coordinate ``Q = q [[dt³/3, dt²/2], [dt²/2, dt]]`` and
``q = (accel_std · h)²`` (centre) or ``(size_accel_std · h)²`` (size), so the model is the same at 5 or 60 fps and a
large (near) box may move more pixels than a small (far) one. Measurement noise: ``R = diag(σ²)`` with
``σ = meas_std · h · (1 + gain · (1 − score))`` — confident detections pull the state harder (NSA-Kalman's idea).

Prediction and update are filterpy's (``filterpy.kalman.predict`` / ``update``); the offline pass smooths with
filterpy's Rauch–Tung–Striebel smoother.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from filterpy.kalman import KalmanFilter
from filterpy.kalman import predict as kf_predict
from filterpy.kalman import update as kf_update

F64 = npt.NDArray[np.float64]

H_MEAS: F64 = np.hstack([np.eye(4), np.zeros((4, 4))])
"""(4, 8) measurement matrix: the box part of the state."""


def xyxy_to_cxcywh(xyxy: npt.ArrayLike) -> F64:
    """(..., 4) ``xyxy`` -> (..., 4) ``cxcywh`` float64."""
    b = np.asarray(xyxy, np.float64)
    wh = b[..., 2:] - b[..., :2]
    return np.concatenate([b[..., :2] + wh / 2.0, wh], axis=-1)


def cxcywh_to_xyxy(cxcywh: npt.ArrayLike) -> F64:
    """(..., 4) ``cxcywh`` -> (..., 4) ``xyxy`` float64 (negative sizes clamped to 0)."""
    b = np.asarray(cxcywh, np.float64)
    half = np.clip(b[..., 2:4], 0.0, None) / 2.0
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def transition(dt: float) -> F64:
    """(8, 8) constant-velocity transition over ``dt`` seconds."""
    f = np.eye(8)
    f[0, 4] = f[1, 5] = f[2, 6] = f[3, 7] = dt
    return f


_EYE4 = np.eye(4)
_EYE4.flags.writeable = False
_POS_POS = np.kron([[1.0, 0.0], [0.0, 0.0]], np.eye(4))
_POS_VEL = np.kron([[0.0, 1.0], [1.0, 0.0]], np.eye(4))
_VEL_VEL = np.kron([[0.0, 0.0], [0.0, 1.0]], np.eye(4))
for _m in (_POS_POS, _POS_VEL, _VEL_VEL):
    _m.flags.writeable = False


def _noise_template(dt: float) -> F64:
    """(8, 8) white-acceleration noise pattern over ``dt`` for unit intensity in every coordinate."""
    return _POS_POS * (dt**3 / 3.0) + _POS_VEL * (dt**2 / 2.0) + _VEL_VEL * dt


def process_noise(dt: float, height: float, accel_std: float, size_accel_std: float) -> F64:
    """(8, 8) white-acceleration process noise over ``dt`` seconds for a box ``height`` pixels tall."""
    h = max(float(height), 1.0)
    q = np.array([accel_std, accel_std, size_accel_std, size_accel_std] * 2) ** 2 * h * h
    # Every non-zero of row i belongs to coordinate i mod 4, so scaling rows applies each coordinate's intensity.
    return _noise_template(dt) * q[:, None]


def measurement_noise(height: float, score: float, meas_std: float, gain: float) -> F64:
    """(4, 4) measurement noise of a detection ``height`` pixels tall with confidence ``score``."""
    sigma = meas_std * max(float(height), 1.0) * (1.0 + gain * (1.0 - min(max(float(score), 0.0), 1.0)))
    return np.eye(4) * sigma * sigma


def measurement_noise_batch(heights: F64, scores: F64, meas_std: float, gain: float) -> F64:
    """:func:`measurement_noise` for N detections: (N,) heights and scores -> (N, 4, 4)."""
    sigma = meas_std * np.maximum(heights, 1.0) * (1.0 + gain * (1.0 - np.clip(scores, 0.0, 1.0)))
    return _EYE4[None, :, :] * (sigma * sigma)[:, None, None]


def initial_state(z: npt.ArrayLike, meas_std: float, vel_std: float = 1.5) -> tuple[F64, F64]:
    """State and covariance for a track born from measurement ``z`` (4,) ``cxcywh``.

    ``vel_std`` is the prior velocity spread in box heights per second (people walk about one height per second).
    """
    zz = np.asarray(z, np.float64).reshape(4)
    x = np.concatenate([zz, np.zeros(4)])
    h = max(zz[3], 1.0)
    pos = (2.0 * meas_std * h) ** 2
    vel = (vel_std * h) ** 2
    p = np.diag([pos, pos, pos, pos, vel, vel, vel / 4.0, vel / 4.0])
    return x, p


def predict(x: F64, p: F64, dt: float, accel_std: float, size_accel_std: float) -> tuple[F64, F64]:
    """Kalman prediction over ``dt`` seconds (filterpy)."""
    if dt <= 0.0:
        return x, p
    q = process_noise(dt, x[3], accel_std, size_accel_std)
    xp, pp = kf_predict(x, p, transition(dt), q)
    xp[2:4] = np.maximum(xp[2:4], 1e-3)
    return xp, pp


def update(x: F64, p: F64, z: F64, r: F64) -> tuple[F64, F64]:
    """Kalman update with measurement ``z`` (4,) ``cxcywh`` and noise ``r`` (4, 4) (filterpy)."""
    xu, pu = kf_update(x, p, z, r, H_MEAS)
    return xu, pu


def predict_batch(xs: F64, ps: F64, dt: float, accel_std: float, size_accel_std: float) -> tuple[F64, F64]:
    """:func:`predict` for N tracks at once: ``xs`` (N, 8), ``ps`` (N, 8, 8) -> the same, predicted ``dt`` ahead.

    The equations are filterpy's (``x = F x``, ``P = F P Fᵀ + Q``), vectorised over tracks for speed.
    """
    if dt <= 0.0 or not len(xs):
        return xs, ps
    f = transition(dt)
    h = np.maximum(xs[:, 3], 1.0)
    q = np.array([accel_std, accel_std, size_accel_std, size_accel_std] * 2) ** 2
    qs = _noise_template(dt)[None, :, :] * (q[None, :] * (h * h)[:, None])[:, :, None]
    xn = xs @ f.T
    xn[:, 2:4] = np.maximum(xn[:, 2:4], 1e-3)
    return xn, f @ ps @ f.T + qs


def update_batch(xs: F64, ps: F64, zs: F64, rs: F64) -> tuple[F64, F64]:
    """:func:`update` for N tracks at once: ``xs`` (N, 8), ``ps`` (N, 8, 8), ``zs`` (N, 4), ``rs`` (N, 4, 4).

    filterpy's gain ``K = P Hᵀ S⁻¹`` with ``S = H P Hᵀ + R``, vectorised over tracks; the covariance update is the
    symmetric form ``P − K S Kᵀ`` (equal to filterpy's Joseph form for the optimal gain).
    """
    if not len(xs):
        return xs, ps
    s = ps[:, :4, :4] + rs
    k = ps[:, :, :4] @ np.linalg.inv(s)
    y = zs - xs[:, :4]
    xn = xs + (k @ y[:, :, None])[:, :, 0]
    pn = ps - k @ s @ k.transpose(0, 2, 1)
    return xn, pn


def rts_smooth(xs: F64, ps: F64, fs: F64, qs: F64) -> F64:
    """Rauch–Tung–Striebel smoothing of a forward pass (filterpy).

    Args:
        xs: (T, 8) filtered states; ps: (T, 8, 8) their covariances.
        fs: (T, 8, 8) transition into each step (``fs[k]`` maps step k-1 to k, filterpy's convention; ``fs[0]`` is
            not used); qs: (T, 8, 8) its noise.

    Returns:
        (T, 8) smoothed states.
    """
    kf = KalmanFilter(dim_x=8, dim_z=4)
    smoothed, _, _, _ = kf.rts_smoother(xs, ps, fs, qs)
    return np.asarray(smoothed, np.float64)
