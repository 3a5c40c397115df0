"""Rauch-Tung-Striebel smoothing with keyframes as near-exact position measurements, vectorised over frames.

Each box coordinate follows an independent linear-Gaussian motion model with state ``s``:

- constant velocity (``"cv"``): ``s = [p, v]``, ``F(dt) = [[1, dt], [0, 1]]``,
  ``Q(dt) = q [[dt^3/3, dt^2/2], [dt^2/2, dt]]`` (white-noise acceleration);
- constant acceleration (``"ca"``): ``s = [p, v, a]``, ``F(dt) = [[1, dt, dt^2/2], [0, 1, dt], [0, 0, 1]]``,
  ``Q(dt) = q [[dt^5/20, dt^4/8, dt^3/6], [dt^4/8, dt^3/3, dt^2/2], [dt^3/6, dt^2/2, dt]]`` (white-noise jerk).

Only keyframes carry measurements (``z = p + e``, ``e ~ N(0, r)``, ``r`` tiny). The forward filter therefore steps
from keyframe to keyframe with ``F(t_{k+1} - t_k)``, the backward RTS pass runs over keyframes, and every frame ``t``
strictly between keyframes ``k`` and ``k+1`` gets its smoothed state in closed form (no measurement in between)::

    x_t|k = F(t - t_k) x_k|k,           P_t|k = F P_k|k F^T + Q(t - t_k)
    J_t   = P_t|k F(t_{k+1} - t)^T P_{k+1|k}^-1
    x_t   = x_t|k + J_t (x_{k+1}^s - x_{k+1|k}),   P_t = P_t|k + J_t (P_{k+1}^s - P_{k+1|k}) J_t^T

which is exactly what the per-frame RTS recursion composes to, but evaluated for all frames at once with batched
matrix products. Since the noise parameters are shared by the coordinates, covariances are computed once and the
means of all coordinates ride along as columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError

Float64Array = npt.NDArray[np.float64]


def transition(dt: Float64Array, order: int) -> Float64Array:
    """State transition matrices ``F(dt)``, shape (n, order, order), for ``order`` 2 (cv) or 3 (ca)."""
    n = dt.shape[0]
    f = np.zeros((n, order, order))
    idx = np.arange(order)
    f[:, idx, idx] = 1.0
    f[:, 0, 1] = dt
    if order == 3:
        f[:, 1, 2] = dt
        f[:, 0, 2] = dt * dt / 2.0
    return f


def process_noise(dt: Float64Array, order: int, q: float) -> Float64Array:
    """Process noise ``Q(dt)``, shape (n, order, order), white-noise acceleration (order 2) or jerk (order 3)."""
    n = dt.shape[0]
    out = np.empty((n, order, order))
    if order == 2:
        out[:, 0, 0] = dt**3 / 3.0
        out[:, 0, 1] = out[:, 1, 0] = dt**2 / 2.0
        out[:, 1, 1] = dt
    else:
        out[:, 0, 0] = dt**5 / 20.0
        out[:, 0, 1] = out[:, 1, 0] = dt**4 / 8.0
        out[:, 0, 2] = out[:, 2, 0] = dt**3 / 6.0
        out[:, 1, 1] = dt**3 / 3.0
        out[:, 1, 2] = out[:, 2, 1] = dt**2 / 2.0
        out[:, 2, 2] = dt
    return out * q


@dataclass(frozen=True)
class SmootherParams:
    """Noise parameters, in pixels and frames.

    Attributes:
        model: ``"cv"`` or ``"ca"``.
        q: process noise spectral density (px^2 / frame^3 for cv, px^2 / frame^5 for ca).
        r: keyframe measurement variance in px^2 (tiny: keyframes are near-exact).
        prior_var: initial variance of the velocity (and acceleration) state, large (diffuse).
    """

    model: str = "cv"
    q: float = 1.0
    r: float = 1e-4
    prior_var: float = 1e4

    def __post_init__(self) -> None:
        if self.model not in ("cv", "ca"):
            raise InvalidInputError(f"kalman model must be 'cv' or 'ca', got {self.model!r}")
        if self.q <= 0 or self.r <= 0 or self.prior_var <= 0:
            raise InvalidInputError(
                f"kalman q, r, prior_var must be positive, got {self.q}, {self.r}, {self.prior_var}"
            )


def rts_smooth(
    key_frames: npt.NDArray[np.int64], key_values: Float64Array, params: SmootherParams
) -> tuple[Float64Array, Float64Array]:
    """Smooth ``D`` independent coordinates through keyframes, returning every frame from first to last keyframe.

    Args:
        key_frames: (K,) int64 strictly increasing frame indices, K >= 1.
        key_values: (K, D) float64 measured positions (pixels).
        params: motion model and noise.

    Returns:
        ``(mean, std)``: (T, D) float64 smoothed positions and (T,) float64 posterior position std in pixels, with
        ``T = key_frames[-1] - key_frames[0] + 1``.
    """
    order = 2 if params.model == "cv" else 3
    kf = np.asarray(key_frames, dtype=np.int64)
    z = np.asarray(key_values, dtype=np.float64)
    n_key, dims = z.shape
    t0 = int(kf[0])
    total = int(kf[-1]) - t0 + 1
    mean = np.empty((total, dims))
    std = np.zeros(total)
    mean[kf - t0] = z
    if n_key == 1:
        return mean, std

    # Forward filter over keyframes only. x: (order, D); covariances shared by all coordinates.
    dts = np.diff(kf).astype(np.float64)
    f_all = transition(dts, order)
    q_all = process_noise(dts, order, params.q)
    xf = np.zeros((n_key, order, dims))
    pf = np.zeros((n_key, order, order))
    xp = np.zeros((n_key, order, dims))
    pp = np.zeros((n_key, order, order))
    xf[0, 0] = z[0]
    pf[0] = np.diag([params.r] + [params.prior_var] * (order - 1))
    for k in range(1, n_key):
        f = f_all[k - 1]
        xp[k] = f @ xf[k - 1]
        pp[k] = f @ pf[k - 1] @ f.T + q_all[k - 1]
        s = pp[k, 0, 0] + params.r
        gain = pp[k, :, 0] / s
        xf[k] = xp[k] + np.outer(gain, z[k] - xp[k, 0])
        pf[k] = pp[k] - np.outer(gain, pp[k, 0, :])

    # Backward RTS pass over keyframes.
    xs = xf.copy()
    ps = pf.copy()
    pp_inv = np.zeros_like(pp)
    pp_inv[1:] = np.linalg.inv(pp[1:])
    for k in range(n_key - 2, -1, -1):
        j = pf[k] @ f_all[k].T @ pp_inv[k + 1]
        xs[k] = xf[k] + j @ (xs[k + 1] - xp[k + 1])
        ps[k] = pf[k] + j @ (ps[k + 1] - pp[k + 1]) @ j.T
    std[kf - t0] = np.sqrt(np.maximum(ps[:, 0, 0], 0.0))

    # Closed-form smoothed states for all in-between frames at once.
    frames = np.arange(t0, t0 + total)
    seg = np.searchsorted(kf, frames, side="right") - 1  # keyframe at or before each frame
    inner = frames != kf[np.minimum(seg, n_key - 1)]
    t_in = frames[inner]
    k_in = seg[inner]
    if t_in.size:
        dt1 = (t_in - kf[k_in]).astype(np.float64)
        dt2 = (kf[k_in + 1] - t_in).astype(np.float64)
        f1 = transition(dt1, order)
        f2t = np.swapaxes(transition(dt2, order), 1, 2)
        x_pred = f1 @ xf[k_in]  # (n, order, D)
        p_pred = f1 @ pf[k_in] @ np.swapaxes(f1, 1, 2) + process_noise(dt1, order, params.q)
        j = p_pred @ f2t @ pp_inv[k_in + 1]
        x_s = x_pred + j @ (xs[k_in + 1] - xp[k_in + 1])
        p_s00 = p_pred[:, 0, 0] + np.einsum("ni,nij,nj->n", j[:, 0, :], ps[k_in + 1] - pp[k_in + 1], j[:, 0, :])
        mean[t_in - t0] = x_s[:, 0, :]
        std[t_in - t0] = np.sqrt(np.maximum(p_s00, 0.0))
    mean[kf - t0] = z  # keyframes are exact, not merely near-exact
    return mean, std
