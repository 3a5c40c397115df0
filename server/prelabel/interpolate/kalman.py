"""Rauch-Tung-Striebel smoothing with keyframes as near-exact position measurements, vectorised over frames.

Each box coordinate follows an independent linear-Gaussian motion model with state ``s``:

- constant velocity (``"cv"``): ``s = [p, v]``, ``F(dt) = [[1, dt], [0, 1]]``,
  ``Q(dt) = q [[dt^3/3, dt^2/2], [dt^2/2, dt]]`` (white-noise acceleration);
- constant acceleration (``"ca"``): ``s = [p, v, a]``, ``F(dt) = [[1, dt, dt^2/2], [0, 1, dt], [0, 0, 1]]``,
  ``Q(dt) = q [[dt^5/20, dt^4/8, dt^3/6], [dt^4/8, dt^3/3, dt^2/2], [dt^3/6, dt^2/2, dt]]`` (white-noise jerk).

Only keyframes carry measurements (``z = p + e``, ``e ~ N(0, r)``, ``r`` tiny), so the smoother works in two steps:

1. Smoothed states at the keyframes. The RTS smoother's means are the minimiser of the negative log posterior

       (x_0 - m_0)^T P_0^-1 (x_0 - m_0) + sum_k (z_k - p_k)^2 / r
           + sum_k (x_{k+1} - F_k x_k)^T Q_k^-1 (x_{k+1} - F_k x_k),

   whose normal equations are block-tridiagonal (blocks of the state size). They are solved at once as one
   symmetric banded system (``scipy.linalg.solveh_banded``), every coordinate a right-hand side: no Python loop over
   keyframes. ``m_0 = [z_0, 0, ...]`` and ``P_0 = diag(r, prior_var, ...)`` (diffuse velocity/acceleration).
2. Every frame ``t`` strictly between keyframes ``k`` and ``k+1`` (``d1 = t - t_k``, ``d2 = t_{k+1} - t``,
   ``L = d1 + d2``) is the Gaussian bridge between the smoothed neighbouring states (Markov property; the smoothed
   mean is linear in them)::

       x_t = F(d1) x_k + G (x_{k+1} - F(L) x_k),   G = Q(d1) F(d2)^T Q(L)^-1
       Var(x_t | x_k, x_{k+1}) = Q(d1) - G F(d2) Q(d1)

   The coefficients depend on ``(d1, L)`` only, so they are computed once per distinct pair (a handful with regular
   keyframe spacing) and applied to all frames with one gather.

With near-exact keyframes, step 1 gives the natural cubic spline through them (cv), which reads a 2 px nudge on the
frame after a keyframe as 2 px a frame of speed. :func:`likely_keyframe_states` instead takes the velocities from a
smoother that allows for the annotator's placement noise, averaged over the process noise as the keyframes make it
likely; step 2 then bridges between the keyframes' exact positions with those velocities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.linalg import solveh_banded
from scipy.linalg.lapack import dpbtrf, dpbtrs, dtbtrs

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


def _motion_blocks(key_frames: npt.NDArray[np.int64], order: int) -> tuple[Float64Array, Float64Array, Float64Array]:
    """The motion model's part of the normal equations over the keyframes at ``q = 1`` (it scales as ``1 / q``):
    ``(Qi, D, U)``: ``Q_k^-1`` (K-1, s, s), the diagonal blocks ``D`` (K, s, s) (``F_k^T Q_k^-1 F_k`` plus
    ``Q_{k-1}^-1``, ``F_k`` the transitions) and the upper off-diagonal blocks ``U_k = -F_k^T Q_k^-1`` (K-1, s, s)."""
    dts = np.diff(key_frames).astype(np.float64)
    f = transition(dts, order)
    qi = np.asarray(np.linalg.inv(process_noise(dts, order, 1.0)), np.float64)
    qif = qi @ f  # Q_k^-1 F_k
    diag = np.zeros((len(key_frames), order, order))
    diag[:-1] += np.swapaxes(f, 1, 2) @ qif
    diag[1:] += qi
    return qi, diag, -np.swapaxes(qif, 1, 2)


def _diffuse_prior(qi1: Float64Array, q: float, prior_var: float) -> Float64Array:
    """Precision (s - 1,) of the prior on the first velocity (and acceleration), given ``Q_k^-1`` at ``q = 1``.

    The diffuse prior must stay weaker than what the keyframes say of them: over a gap L frames long that precision
    falls like 1 / (q L^3) for velocity, and a fixed prior variance outweighed it on gaps of a thousand frames (with
    ``ca``) and bent a straight path. The weakest gap bounds it: a short first gap ties the first state to the next,
    and through it to the long gaps after."""
    prior_prec = np.full(qi1.shape[1] - 1, 1.0 / prior_var)
    if len(qi1):
        prior_prec = np.minimum(prior_prec, 1e-8 * np.diagonal(qi1, axis1=1, axis2=2)[:, 1:].min(axis=0) / q)
    return prior_prec


def _upper_banded(diag: Float64Array, upper: Float64Array) -> Float64Array:
    """Upper banded storage ``ab[u + i - j, j] = A[i, j]`` (``u = 2 s - 1``) of the symmetric block-tridiagonal
    matrix with diagonal blocks ``diag`` (K, s, s) and upper off-diagonal blocks ``upper`` (K-1, s, s)."""
    n_key, order = diag.shape[:2]
    u = 2 * order - 1
    ab = np.zeros((u + 1, n_key * order))
    base = (np.arange(n_key) * order)[:, None]
    ii, jj = np.triu_indices(order)
    ab[u + ii - jj, base + jj] = diag[:, ii, jj]
    if n_key > 1:
        pi, pj = np.meshgrid(np.arange(order), np.arange(order), indexing="ij")
        ab[u + (pi - pj - order).ravel(), base[:-1] + order + pj.ravel()] = upper.reshape(n_key - 1, -1)
    return ab


def keyframe_states(
    key_frames: npt.NDArray[np.int64],
    key_values: Float64Array,
    params: SmootherParams,
    meas_var: Float64Array | None = None,
) -> Float64Array:
    """Smoothed states at the measured frames: (K, order, D) float64 (position, velocity[, acceleration]).

    Args:
        key_frames: (K,) int64 strictly increasing, K >= 2.
        key_values: (K, D) float64 measured positions (pixels); ignored where ``meas_var`` is infinite.
        params: motion model and noise.
        meas_var: (K,) measurement variance per frame in px^2 (``inf``: no measurement); ``params.r`` for all when
            None. The first measurement must be finite (it anchors the prior).
    """
    order = 2 if params.model == "cv" else 3
    kf = np.asarray(key_frames, dtype=np.int64)
    z = np.asarray(key_values, dtype=np.float64)
    n_key, dims = z.shape
    qi1, diag1, upper1 = _motion_blocks(kf, order)
    diag = diag1 / params.q
    prec = np.full(n_key, 1.0 / params.r) if meas_var is None else 1.0 / np.asarray(meas_var, np.float64)
    diag[:, 0, 0] += prec
    diag[0] += np.diag(np.concatenate([[0.0], _diffuse_prior(qi1, params.q, params.prior_var)]))
    rhs = np.zeros((n_key, order, dims))
    # The prior mean m_0 = [z_0, 0, ...] contributes z_0 / r like a measurement.
    rhs[:, 0, :] = np.where(np.isfinite(prec)[:, None] & (prec[:, None] > 0), z, 0.0) * prec[:, None]
    ab = _upper_banded(diag, upper1 / params.q)
    sol = solveh_banded(ab, rhs.reshape(n_key * order, dims), check_finite=False)
    return np.asarray(sol, np.float64).reshape(n_key, order, dims)


#: Process noise densities weighed by :func:`likely_keyframe_states`, in decades of the model's own (``params.q``).
Q_GRID_DECADES = np.arange(-8.0, 5.0)
#: Weights under this fraction of a coordinate's largest are left out (the rest renormalised).
WEIGHT_FLOOR = 1e-4
#: Added to the floor's cut-off (in -2 log likelihood) before process noises go unweighed for their bound (rounding).
_BOUND_MARGIN = 1.0
#: Fewer keyframes than this: every process noise is weighed (the bound's bookkeeping costs more than the
#: factorisations it spares).
_BOUND_MIN_KEYS = 64


def cholesky_banded(ab: Float64Array) -> Float64Array:
    """Upper Cholesky factor of a symmetric positive definite matrix in upper banded storage (LAPACK ``dpbtrf``,
    without scipy's checks around it: they took four times the factorisation on a short track).

    Raises:
        np.linalg.LinAlgError: the matrix is not positive definite.
    """
    chol, info = dpbtrf(ab, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"banded Cholesky factorisation failed (LAPACK info {info})")
    return np.asarray(chol, np.float64)


def likely_keyframe_states(
    key_frames: npt.NDArray[np.int64], key_values: Float64Array, params: SmootherParams, jitter_var: float
) -> tuple[Float64Array, Float64Array]:
    """Keyframe states for keyframes placed with jitter: the positions are the keyframes', the velocities (and
    accelerations) those of a smoother that takes each keyframe as a measurement with variance ``jitter_var`` (px^2),
    averaged over the process noise as likely as each makes the keyframes, coordinate by coordinate.

    A constant-velocity path through keyframes one frame apart takes their difference as the object's velocity. An
    annotator's 2 px nudge on the next frame then carries the box 20 px away over a long gap that ends where it began
    (the natural cubic spline through the keyframes overshoots). With the keyframes' placement noise in the model,
    velocities come from what all keyframes say: a 2 px step in a frame is noise where the keyframes around it move
    slowly (small process noise makes them likely), and motion where they move fast and bend (large process noise).
    A constant-acceleration model fits three keyframes exactly whatever the noise: it takes four for the noise to
    count.

    Each coordinate (box centre x and y, width, height) weighs its own: a width that only jitters does not damp a
    turn that consecutive keyframes pin. Three keyframes tell a coordinate's noise from its motion poorly, so the
    states are not those of the likeliest process noise but their average over ``params.q * 10^e`` for the ``e`` of
    :data:`Q_GRID_DECADES`, each weighted by the keyframes' marginal likelihood under it (a prior uniform in ``e``):
    where the keyframes cannot tell, a nudge is held back half way. A process noise whose normal equations are too
    ill-conditioned to factor (tiny boxes keyed a frame apart) gets no weight; where none factors, the keyframes are
    taken as exact (:func:`keyframe_states`).

    The normal equations are linear in ``1 / q`` but for the measurements and the prior, so each ``q`` costs one
    banded Cholesky factorisation over the keyframes and one triangular solve, shared by all coordinates; the states
    are solved only where a weight counts (weights under :data:`WEIGHT_FLOOR` are left out, the rest renormalised).
    Process noises whose weight a bound from their neighbours on the grid already puts under that floor are not
    factored at all (the same result; about half the factorisations on a long track).

    Returns:
        ``(states, weights)``: (K, order, D) float64 with ``states[:, 0] == key_values``, and (len(Q_GRID_DECADES),
        D) the posterior weight of each process noise per coordinate (all zero where none factored).
    """
    order = 2 if params.model == "cv" else 3
    kf = np.asarray(key_frames, dtype=np.int64)
    z_raw = np.asarray(key_values, dtype=np.float64)
    n_key, dims = z_raw.shape
    z = z_raw - z_raw.mean(axis=0)  # centred: the solve loses no precision to large image coordinates
    qi1, diag1, upper1 = _motion_blocks(kf, order)
    logdet_q1 = -float(np.linalg.slogdet(qi1)[1].sum())
    prec = 1.0 / jitter_var
    # A(q) = A1 / q + A0 in upper banded storage: A1 the motion model's blocks at q = 1, A0 the keyframes' precision
    # and one diffuse prior for every q (the weakest gap's bound at the largest q weighed), so the likelihoods compare.
    a1 = _upper_banded(diag1, upper1)
    a0_diag = np.zeros_like(diag1)
    a0_diag[:, 0, 0] = prec
    a0_diag[0] += np.diag(
        np.concatenate([[0.0], _diffuse_prior(qi1, params.q * 10.0 ** float(Q_GRID_DECADES[-1]), params.prior_var)])
    )
    a0 = _upper_banded(a0_diag, np.zeros_like(upper1))
    rhs_blocks = np.zeros((n_key, order, dims))
    rhs_blocks[:, 0, :] = z * prec
    rhs = rhs_blocks.reshape(n_key * order, dims)
    z_sq = (z * z).sum(axis=0) * prec

    # -2 log p(keyframes | q) per coordinate, up to a constant: the misfit of the best states plus log det A +
    # sum_k log det Q_k + K log r. The misfit is z^T R^-1 z - b^T A^-1 b (b the right-hand side), b^T A^-1 b being
    # |y|^2 with U^T y = b for A = U^T U: one triangular solve, no states.
    n_grid = len(Q_GRID_DECADES)
    factors: dict[int, Float64Array] = {}
    misfit = np.full((n_grid, dims), np.inf)
    logdet = np.full(n_grid, np.nan)
    nll = np.full((n_grid, dims), np.inf)

    def weigh(g: int) -> None:
        q = params.q * 10.0 ** float(Q_GRID_DECADES[g])
        try:
            chol = cholesky_banded(a1 / q + a0)
        except np.linalg.LinAlgError:
            return
        y, _ = dtbtrs(chol, rhs, uplo="U", trans="T")
        fit = z_sq - (np.asarray(y) ** 2).sum(axis=0)
        if (fit < -1.0).any():
            # The misfit is a sum of squares: a unit or more below zero, the difference lost it to ill-conditioning
            # (the extreme process noises, with keyframes far apart in value or time) and the likelihood means
            # nothing: no weight. Weighted, such a noise took all of it.
            return
        factors[g] = chol
        misfit[g] = fit
        logdet[g] = (
            2.0 * float(np.log(chol[-1]).sum())
            + logdet_q1
            + (n_key - 1) * order * np.log(q)
            + n_key * np.log(jitter_var)
        )
        nll[g] = misfit[g] + logdet[g]

    # The misfit falls as q grows and the log-determinant (that of the keyframes' covariance, q S + r I) rises, so
    # between two weighed process noises i < j no q scores below misfit(j) + logdet(i). Where that bound already
    # leaves every coordinate's weight under the floor, the noises between are not factored: the same states and
    # weights as weighing every one, for fewer factorisations.
    cut = -2.0 * np.log(WEIGHT_FLOOR) + _BOUND_MARGIN

    def margin(i: int, j: int) -> float:
        """How far above the cut-off, for the coordinate nearest it, the bound keeps the noises between i and j."""
        if i not in factors or j not in factors:
            return -np.inf
        return float(np.min(misfit[j] + logdet[i] - nll.min(axis=0))) - cut

    weigh(0)
    weigh(n_grid - 1)
    spans = [(0, n_grid - 1)]
    if n_key < _BOUND_MIN_KEYS:
        for g in range(1, n_grid - 1):
            weigh(g)
        spans = []
    while spans:  # the span nearest to counting first: a lower minimum found early spares the others
        i, j = min(spans, key=lambda ij: margin(*ij))
        spans.remove((i, j))
        if j - i < 2 or margin(i, j) > 0.0:
            continue
        mid = (i + j) // 2
        weigh(mid)
        spans += [(i, mid), (mid, j)]
    if not factors:
        return keyframe_states(kf, z_raw, params), np.zeros((len(Q_GRID_DECADES), dims))
    weights = np.exp(-0.5 * (nll - nll.min(axis=0)))
    weights[weights < WEIGHT_FLOOR * weights.max(axis=0)] = 0.0
    weights /= weights.sum(axis=0)
    xs = np.zeros((n_key, order, dims))
    for g in np.flatnonzero(weights.max(axis=1) > 0).tolist():
        sol, _ = dpbtrs(factors[g], rhs, lower=0)
        xs += sol.reshape(n_key, order, dims) * weights[g]
    xs[:, 0, :] = z_raw
    return xs, weights


def bridge_coefficients(
    d1: Float64Array, length: Float64Array, order: int, q: float
) -> tuple[Float64Array, Float64Array, Float64Array]:
    """Position row of the bridge between two states: ``p_t = a . x_k + b . x_{k+1}``, and its conditional variance.

    Args:
        d1: (n,) frames since the left keyframe, ``0 < d1 < length``.
        length: (n,) gap lengths in frames.
        order: 2 (cv) or 3 (ca).
        q: process noise density.

    Returns:
        ``(a, b, var)``: (n, order), (n, order), (n,) float64.
    """
    d2 = length - d1
    f1 = transition(d1, order)
    f2 = transition(d2, order)
    fl = transition(length, order)
    q1 = process_noise(d1, order, q)
    g = q1 @ np.swapaxes(f2, 1, 2) @ np.linalg.inv(process_noise(length, order, q))
    a = (f1 - g @ fl)[:, 0, :]
    var = (q1 - g @ f2 @ q1)[:, 0, 0]
    return a, g[:, 0, :], np.maximum(var, 0.0)


def rest_velocities(
    key_frames: npt.NDArray[np.int64], key_values: Float64Array, vel: Float64Array, rest_speed: float
) -> Float64Array:
    """Velocities at the keyframes, limited at the ends of gaps where the object is at rest.

    A constant-velocity smoother carries velocity across keyframes: an object keyed at the same place at both ends of
    a gap and moving off fast after it drifts toward where it goes next before it leaves (on a generated clip, 28 px
    on a 70 px wide person, 20 frames before the new keyframe that revealed the move). Over a gap where no coordinate
    moves faster than ``rest_speed`` (its move between the keyframes over their distance in frames, so that a nudge
    of a few pixels between keyframes a frame apart is no rest), each end's velocity is clipped to ``[0, 3 d]``
    (the sign of ``d``, the gap's secant slope): the cubic between them (the bridge's mean) then stays between their
    values (Fritsch and Carlson's condition). Elsewhere velocities are left as they are: smooth motion keeps its
    curves.

    Args:
        key_frames: (K,) int64 strictly increasing.
        key_values: (K, D) positions at them.
        vel: (K, D) velocities (per frame).
        rest_speed: the fastest move a frame, in every coordinate, that counts as at rest (pixels a frame).

    Returns:
        (K, D) float64 velocities.
    """
    kf = np.asarray(key_frames, np.int64)
    z = np.asarray(key_values, np.float64)
    v = np.asarray(vel, np.float64).copy()
    move = np.diff(z, axis=0)
    sec = move / np.diff(kf).astype(np.float64)[:, None]  # (K-1, D)
    rest = (np.abs(sec).max(axis=1) <= rest_speed)[:, None]
    lo = np.where(rest, np.minimum(0.0, 3.0 * sec), -np.inf)
    hi = np.where(rest, np.maximum(0.0, 3.0 * sec), np.inf)
    for end in (0, 1):  # the left and the right keyframe of each gap
        rows = np.arange(len(sec)) + end
        v[rows] = np.clip(v[rows], lo, hi)
    return v


def rts_smooth(
    key_frames: npt.NDArray[np.int64],
    key_values: Float64Array,
    params: SmootherParams,
    jitter_var: float | None = None,
    rest_speed: float | None = None,
) -> tuple[Float64Array, Float64Array]:
    """Smooth ``D`` independent coordinates through keyframes, returning every frame from first to last keyframe.

    Args:
        key_frames: (K,) int64 strictly increasing frame indices, K >= 1.
        key_values: (K, D) float64 measured positions (pixels).
        params: motion model and noise.
        jitter_var: the keyframes' placement noise (px^2): with three keyframes or more, the velocities at the
            keyframes come from :func:`likely_keyframe_states` (the path still passes through every keyframe; with
            ``ca``, three keyframes fit a parabola whatever the noise). None: keyframes are near-exact (``params.r``)
            for the velocities too.
        rest_speed: (``cv``) a gap over which no coordinate moves faster than this (pixels a frame) holds the object
            at rest: the velocities at its ends are limited (:func:`rest_velocities`) so the path there stays between
            its keyframes' values. None: no limit.

    Returns:
        ``(mean, std)``: (T, D) float64 smoothed positions (exactly the keyframe values at keyframes) and (T,)
        float64 position std in pixels of the bridge between the neighbouring smoothed states (0 at keyframes),
        with ``T = key_frames[-1] - key_frames[0] + 1``.
    """
    order = 2 if params.model == "cv" else 3
    kf = np.asarray(key_frames, dtype=np.int64)
    z = np.asarray(key_values, dtype=np.float64)
    t0 = int(kf[0])
    total = int(kf[-1]) - t0 + 1
    mean = np.empty((total, z.shape[1]))
    std = np.zeros(total)
    mean[kf - t0] = z
    if len(kf) == 1:
        return mean, std
    if jitter_var is not None and len(kf) >= 3:
        xs, _ = likely_keyframe_states(kf, z, params, jitter_var)
    else:
        xs = keyframe_states(kf, z, params)
    if rest_speed is not None and order == 2:
        xs[:, 1, :] = rest_velocities(kf, z, xs[:, 1, :], rest_speed)

    # Frames t0 .. t_last - 1 by segment: d1 = 0 at the left keyframe (where the bridge is the state itself).
    # Segments of equal length share their coefficients: one small matrix product per distinct length.
    gaps = np.diff(kf)
    gap_vals, gap_id = np.unique(gaps, return_inverse=True)
    if len(gap_vals) <= 64:
        for g_idx, g in enumerate(gap_vals.tolist()):
            segs = np.flatnonzero(gap_id == g_idx)
            a, b, var = bridge_coefficients(np.arange(g, dtype=np.float64), np.full(g, float(g)), order, params.q)
            ends = np.concatenate([xs[segs], xs[segs + 1]], axis=1)  # (k, 2 order, D)
            block = np.hstack([a, b]) @ ends.transpose(1, 0, 2).reshape(2 * order, -1)  # (g, k D), one BLAS call
            rows = (kf[segs] - t0)[:, None] + np.arange(g)[None, :]
            mean[rows] = block.reshape(g, len(segs), -1).transpose(1, 0, 2)
            std[rows] = np.sqrt(var)[None, :]
    else:
        table_start = np.concatenate([[0], np.cumsum(gap_vals)[:-1]])
        d1_tab = np.concatenate([np.arange(g, dtype=np.float64) for g in gap_vals.tolist()])
        a, b, var = bridge_coefficients(d1_tab, np.repeat(gap_vals.astype(np.float64), gap_vals), order, params.q)
        seg_start = np.repeat(kf[:-1] - t0, gaps)
        idx = np.repeat(table_start[gap_id], gaps) + (np.arange(total - 1) - seg_start)
        left = np.repeat(xs[:-1], gaps, axis=0)  # (T-1, order, D)
        right = np.repeat(xs[1:], gaps, axis=0)
        acc = np.zeros((total - 1, z.shape[1]))
        for s in range(order):
            acc += a[idx, s, None] * left[:, s] + b[idx, s, None] * right[:, s]
        mean[:-1] = acc
        std[:-1] = np.sqrt(var)[idx]
    mean[kf - t0] = z  # keyframes are exact, not merely near-exact
    return mean, std
