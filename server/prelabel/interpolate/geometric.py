"""Geometric interpolation methods: they use keyframe boxes only (no frames).

- ``linear``: CVAT's rule, each ``xyxy`` coordinate linear in the frame index between neighbouring keyframes (Label
  Studio does the same); the baseline.
- ``spline``: monotone piecewise-cubic Hermite (PCHIP, via scipy) through the keyframes, on box centre and size.
- ``kalman`` / ``kalman-ca``: RTS smoother (:mod:`prelabel.interpolate.kalman`) with constant velocity / constant
  acceleration through the keyframes, with the velocities (and accelerations) at the keyframes from a smoother that
  allows for the annotator's placement noise: a nudge on the frame after a keyframe is not a speed.

Confidence for all of them comes from the distance to the surrounding keyframes: a position uncertainty ``u(t)``
(pixels) from the constant-velocity model's Brownian-bridge variance, mapped to ``exp(-u / (0.3 * diag))``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import threadpoolctl
from scipy.interpolate import PchipInterpolator
from threadpoolctl import ThreadpoolController

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import Float64Array, RunEstimate, RunInput
from prelabel.interpolate.kalman import SmootherParams, rts_smooth

# Process noise relative to the squared box diagonal, per frame^3 (cv) or frame^5 (ca).
DEFAULT_Q_REL = 1e-3


@cache
def _threadpools() -> ThreadpoolController:
    """The process's BLAS libraries, found once: looking them up again for every call took 3 ms, half of what the
    kalman methods take on a short track. Made after scipy's linear algebra is loaded (above). BLAS only: a limit
    restored by another thread than the one that set it must not hand that thread an OpenMP runtime's count, which
    is kept per thread."""
    return ThreadpoolController().select(user_api="blas")


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None  # threadpoolctl's limiter (its class is private)


@cache
def _blas_per_thread() -> bool:
    """Whether every BLAS library here keeps a thread count per thread: OpenMP-threaded OpenBLAS does, and
    threadpoolctl sets it per thread from release 3.7 (before, it set OpenBLAS's own count, which is the process's)."""
    try:
        release = tuple(int(part) for part in threadpoolctl.__version__.split(".")[:2])
    except ValueError:
        return False
    libs = _threadpools().lib_controllers
    return release >= (3, 7) and bool(libs) and all(getattr(lib, "threading_layer", None) == "openmp" for lib in libs)


def _release_blas_control() -> None:
    """Let any thread set OpenBLAS's thread count next (recent threadpoolctl releases let only the thread that set it
    last do so until released; older releases have no such rule)."""
    release = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if release is not None:
        release(force=True)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS held to one thread while any caller is inside.

    Most BLAS builds keep one thread count for the whole process. With a limit per call, two interpolations that
    overlapped (the server's worker threads) broke it: the second saved the first's one thread as the count to give
    back, and gave it back last, leaving BLAS at one thread for the rest of the process; the first, leaving, gave the
    second's solves the process's threads back. Here the first caller in sets the limit and the last one out restores
    what the process had. Where each thread has its own count (:func:`_blas_per_thread`), each call limits its own."""
    global _blas_users, _blas_limiter
    if _blas_per_thread():
        with _threadpools().limit(limits=1):
            yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _release_blas_control()
            _blas_limiter = _threadpools().limit(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _release_blas_control()  # the last one out may not be the thread that set the limit
                _blas_limiter.restore_original_limits()
                _release_blas_control()
                _blas_limiter = None


def xyxy_to_cxcywh(xyxy: Float64Array) -> Float64Array:
    """(N, 4) ``xyxy`` -> (N, 4) ``cx, cy, w, h``."""
    out = np.empty_like(xyxy)
    out[:, 0] = (xyxy[:, 0] + xyxy[:, 2]) / 2.0
    out[:, 1] = (xyxy[:, 1] + xyxy[:, 3]) / 2.0
    out[:, 2] = xyxy[:, 2] - xyxy[:, 0]
    out[:, 3] = xyxy[:, 3] - xyxy[:, 1]
    return out


def cxcywh_to_xyxy(c: Float64Array) -> Float64Array:
    """(N, 4) ``cx, cy, w, h`` -> (N, 4) ``xyxy`` (negative sizes clamped to 0)."""
    w = np.maximum(c[:, 2], 0.0) / 2.0
    h = np.maximum(c[:, 3], 0.0) / 2.0
    return np.stack([c[:, 0] - w, c[:, 1] - h, c[:, 0] + w, c[:, 1] + h], axis=1)


def box_scale(key_xyxy: Float64Array) -> float:
    """Mean box diagonal of the keyframes in pixels (at least 1)."""
    d = np.hypot(key_xyxy[:, 2] - key_xyxy[:, 0], key_xyxy[:, 3] - key_xyxy[:, 1])
    return max(float(d.mean()), 1.0)


def bridge_uncertainty(key_frames: np.ndarray, scale: float, q_rel: float = DEFAULT_Q_REL) -> Float64Array:
    """Position std (pixels) of a constant-velocity bridge pinned at the keyframes, for every frame of the run.

    ``u(t) = scale * sqrt(q_rel / 3) * (d1 * d2 / L)^1.5`` with ``d1, d2`` the distances to the previous and next
    keyframe and ``L = d1 + d2``: zero at keyframes, largest mid-gap, growing with the gap length.
    """
    kf = np.asarray(key_frames, dtype=np.int64)
    if len(kf) == 1:
        return np.zeros(1)
    frames, seg = segment_index(kf)
    d1 = (frames - kf[seg]).astype(np.float64)
    d2 = (kf[seg + 1] - frames).astype(np.float64)
    return np.asarray(scale * np.sqrt(q_rel / 3.0) * (d1 * d2 / (d1 + d2)) ** 1.5)


def confidence_from_uncertainty(u: Float64Array, scale: float) -> Float64Array:
    """Map a pixel uncertainty to a confidence in [0, 1]: ``exp(-u / (0.3 * scale))``."""
    return np.asarray(np.exp(-np.asarray(u) / (0.3 * scale)))


def linear_boxes(key_frames: np.ndarray, key_xyxy: Float64Array) -> Float64Array:
    """CVAT's rule: every coordinate linear in the frame index between neighbouring keyframes.

    Args:
        key_frames: (K,) int64 strictly increasing.
        key_xyxy: (K, 4) float64.

    Returns:
        (T, 4) float64 for frames ``key_frames[0] .. key_frames[-1]``.
    """
    kf = np.asarray(key_frames, dtype=np.int64)
    key = np.asarray(key_xyxy, np.float64)
    if len(kf) == 1:
        return key.reshape(1, 4).copy()
    # offset = (frame - f0) / (f1 - f0); points = p0 + (p1 - p0) * offset, exactly as CVAT computes it (p1 - p0 once
    # per gap, the same numbers).
    frames, seg = segment_index(kf)
    off = (frames - kf[seg]) / np.diff(kf)[seg]
    out = np.diff(key, axis=0)[seg]
    out *= off[:, None]
    out += key[seg]
    return out


def segment_index(key_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every frame from the first keyframe to the last, and the gap each lies in: ``(frames, seg)``, (T,) int64
    each, ``seg`` the index of the keyframe at or before the frame (the last frame counts in the last gap).

    Args:
        key_frames: (K,) int64 strictly increasing, K >= 2.
    """
    kf = np.asarray(key_frames, dtype=np.int64)
    frames = np.arange(int(kf[0]), int(kf[-1]) + 1)
    seg = np.repeat(np.arange(len(kf) - 1), np.diff(kf))
    return frames, np.append(seg, len(kf) - 2)


def path_disagreement(a_xyxy: Float64Array, b_xyxy: Float64Array) -> Float64Array:
    """(T,) pixels between two box paths (T, 4) ``xyxy``: centre distance plus half the width and height differences."""
    d = np.asarray(a_xyxy, np.float64) - b_xyxy  # the centres differ by half the sums, the sizes by the differences
    dist = np.hypot((d[:, 0] + d[:, 2]) / 2.0, (d[:, 1] + d[:, 3]) / 2.0)
    dist += 0.5 * (np.abs(d[:, 2] - d[:, 0]) + np.abs(d[:, 3] - d[:, 1]))
    return dist


def pchip_boxes(key_frames: np.ndarray, key_xyxy: Float64Array) -> Float64Array:
    """Monotone cubic (PCHIP) on box centre and size through the keyframes; linear with fewer than 3 keyframes."""
    kf = np.asarray(key_frames, dtype=np.int64)
    if len(kf) < 3:
        return linear_boxes(kf, key_xyxy)
    frames = np.arange(int(kf[0]), int(kf[-1]) + 1)
    c = PchipInterpolator(kf.astype(np.float64), xyxy_to_cxcywh(key_xyxy), axis=0)(frames)
    return cxcywh_to_xyxy(np.asarray(c, np.float64))


def _estimate(
    run: RunInput, xyxy: Float64Array, u: Float64Array, name: str, other: Float64Array | None = None
) -> RunEstimate:
    """Pin the keyframes and derive confidence. ``other``: a second geometric path through the same keyframes;
    where the two disagree the motion bends between keyframes, which the uncertainty adds (pixels)."""
    scale = box_scale(run.key_xyxy)
    xyxy[run.key_frames - run.key_frames[0]] = run.key_xyxy
    reason = "distance from keyframes"
    if other is not None and len(run.key_frames) >= 3:
        u = u + path_disagreement(xyxy, other)
        reason += " and curvature of the keyframe path"
    conf = confidence_from_uncertainty(u, scale)
    return RunEstimate(xyxy, conf, u, [name] * len(xyxy), reason)


@dataclass
class LinearMethod:
    """CVAT / Label Studio linear interpolation (the baseline)."""

    name: str = "linear"
    needs_video: bool = False
    curvature: bool = True

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """Linear boxes; see :func:`linear_boxes`."""
        xyxy = linear_boxes(run.key_frames, run.key_xyxy)
        u = bridge_uncertainty(run.key_frames, box_scale(run.key_xyxy))
        other = pchip_boxes(run.key_frames, run.key_xyxy) if self.curvature else None
        return _estimate(run, xyxy, u, self.name, other)


@dataclass
class SplineMethod:
    """Monotone cubic (PCHIP) through the keyframes, on centre and size; linear with two keyframes."""

    name: str = "spline"
    needs_video: bool = False
    curvature: bool = True

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """PCHIP boxes."""
        kf = run.key_frames
        xyxy = pchip_boxes(kf, run.key_xyxy)
        u = bridge_uncertainty(kf, box_scale(run.key_xyxy))
        return _estimate(run, xyxy, u, self.name, linear_boxes(kf, run.key_xyxy) if self.curvature else None)


@dataclass
class KalmanMethod:
    """RTS smoother through the keyframes (constant velocity ``"cv"`` or constant acceleration ``"ca"``).

    Attributes:
        q_rel: process noise relative to the squared mean box diagonal: the uncertainty's, and the middle of the
            range of process noises the path weighs by how likely each makes the keyframes (see ``jitter_rel``).
        jitter_rel: how far an annotator's keyframe box may sit off the object (std, relative to the mean box
            diagonal): with three keyframes or more (four for ``ca``, which fits three exactly whatever the noise),
            the velocities at the keyframes are what all keyframes, placed with that noise, say of them
            (:func:`~prelabel.interpolate.kalman.likely_keyframe_states`), so a nudge on the frame after a keyframe
            is not taken for the object's speed over the next gap. None: the velocities follow the keyframes exactly
            (the natural cubic spline through them).
        jitter_min_px: the placement noise's floor in pixels: people place a small box no closer than a large one.
        rest_rel: (``cv``) a gap over which no coordinate of the box (centre, width, height) moves faster than this
            fraction of the mean box diagonal a frame holds the object at rest: the path stays between its keyframes
            there (:func:`~prelabel.interpolate.kalman.rest_velocities`), however fast it moves after. None: no
            limit. 0.0025 a frame is 5% of the diagonal over a 20-frame gap.
    """

    name: str = "kalman"
    needs_video: bool = False
    model: str = "cv"
    q_rel: float = DEFAULT_Q_REL
    jitter_rel: float | None = 0.01
    jitter_min_px: float = 1.0
    curvature: bool = True
    rest_rel: float | None = 0.0025

    def __post_init__(self) -> None:
        if self.rest_rel is not None and not (np.isfinite(self.rest_rel) and self.rest_rel >= 0):
            raise InvalidInputError(f"kalman rest_rel must be >= 0 or None, got {self.rest_rel}")
        if self.jitter_rel is not None and not (np.isfinite(self.jitter_rel) and self.jitter_rel > 0):
            raise InvalidInputError(f"kalman jitter_rel must be positive or None, got {self.jitter_rel}")
        if not (np.isfinite(self.jitter_min_px) and self.jitter_min_px >= 0):
            raise InvalidInputError(f"kalman jitter_min_px must be finite and >= 0, got {self.jitter_min_px}")

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """Smoothed boxes (on centre and size) with the posterior std as uncertainty."""
        scale = box_scale(run.key_xyxy)
        model = self.model if len(run.key_frames) >= 3 else "cv"  # two points do not determine an acceleration
        q = self.q_rel * scale * scale * (1.0 if model == "cv" else 1e-2)
        params = SmootherParams(model, q=q, r=1e-4, prior_var=1e4 * scale * scale)
        jitter = None if self.jitter_rel is None else max(self.jitter_rel * scale, self.jitter_min_px) ** 2
        rest = None if self.rest_rel is None else self.rest_rel * scale
        # One BLAS thread: the banded solves gain nothing from a second (same wall clock, twice the CPU time on two
        # cores: kalman-ca 1.76 M box-frames/s either way, 0.9 M per CPU second with two threads).
        with one_blas_thread():
            mean, std = rts_smooth(run.key_frames, xyxy_to_cxcywh(run.key_xyxy), params, jitter, rest)
        if model == "ca":  # the acceleration prior is diffuse; report the bridge uncertainty instead
            std = bridge_uncertainty(run.key_frames, scale, self.q_rel)
        other = linear_boxes(run.key_frames, run.key_xyxy) if self.curvature else None
        return _estimate(run, cxcywh_to_xyxy(mean), std, self.name, other)
