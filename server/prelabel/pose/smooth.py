"""Temporal smoothing of skeleton keypoints per track: a One-Euro filter, run forward and backward.

One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), per keypoint, with ``dt`` the time step in seconds::

    alpha(fc) = 1 / (1 + tau / dt),   tau = 1 / (2 pi fc)
    v_hat  <- v_hat + alpha(d_cutoff) * ((x - x_hat_prev) / dt - v_hat)   # smoothed speed, px/s
    fc      = min_cutoff + beta * |v_hat| / scale                          # scale: person height, px
    x_hat  <- x_hat + alpha(fc) * (x - x_hat)

A still keypoint sees a low cutoff (strong smoothing of jitter); a fast one a high cutoff (little lag). Speed is
measured in person heights per second, so ``beta`` does not depend on image resolution or distance to the camera, and
all parameters are in seconds / hertz, so they hold at 10 to 60 fps and under variable frame rate.

A causal filter still lags a little; pre-labeling sees the whole track, so the filter also runs backward in time and
the two passes are averaged, which cancels their (opposite) lags to first order.

Missing keypoints (``present=False``) are never filled: they pass through unchanged and do not feed the filter. A
keypoint missing for longer than ``max_gap_s`` restarts its filter at the next observation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.types import Skeleton, Track, TrackedBox

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmoothConfig:
    """One-Euro parameters, in time units.

    Attributes:
        min_cutoff_hz: cutoff for a still keypoint (lower: smoother, more lag on slow motion).
        beta: cutoff increase per unit speed, in Hz per (person height / s) (higher: less lag on fast limbs).
        d_cutoff_hz: cutoff of the speed estimate.
        max_gap_s: a keypoint missing longer than this restarts its filter.
        fps: frame rate used for time when the track's boxes carry no increasing ``ts_ms``.
        bidirectional: average a forward and a backward pass (zero lag to first order); False is causal.
        body_compensation: filter the body centre and the keypoints relative to it separately, so a fast-moving
            person (whole-body speed) does not open the cutoff for limbs that are still relative to the body.
    """

    min_cutoff_hz: float = 1.0
    beta: float = 6.0
    d_cutoff_hz: float = 1.0
    max_gap_s: float = 0.5
    fps: float = 30.0
    bidirectional: bool = True
    body_compensation: bool = True

    def __post_init__(self) -> None:
        for name in ("min_cutoff_hz", "d_cutoff_hz", "fps"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("beta", "max_gap_s"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0, got {getattr(self, name)}")


def _alpha(cutoff_hz: npt.NDArray[np.float64], dt_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    tau = 1.0 / (2.0 * np.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


def _one_euro_pass(
    xy: npt.NDArray[np.float64],
    present: npt.NDArray[np.bool_],
    t_s: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    cfg: SmoothConfig,
) -> npt.NDArray[np.float64]:
    """Causal One-Euro over (T, K, 2) with increasing ``t_s``; returns filtered positions (input where missing)."""
    out = xy.copy()
    k = xy.shape[1]
    x_hat = np.zeros((k, 2))
    v_hat = np.zeros((k, 2))
    t_last = np.full(k, -np.inf)
    fresh = np.zeros(k, bool)  # one sample seen since (re)start: the next speed is taken as is
    for i in range(len(xy)):
        m = present[i]
        if not m.any():
            continue
        gap = t_s[i] - t_last
        new = m & ~(gap <= cfg.max_gap_s)
        x_hat[new] = xy[i, new]
        v_hat[new] = 0.0
        upd = m & ~new
        if upd.any():
            dt = np.maximum(gap[upd], 1e-6)
            v = (xy[i, upd] - x_hat[upd]) / dt[:, None]
            # Starting the speed estimate at 0 would read a fast limb as still for the first frames (and lag it).
            a_d = np.where(fresh[upd], 1.0, _alpha(np.full(dt.shape, cfg.d_cutoff_hz), dt))
            v_hat[upd] += a_d[:, None] * (v - v_hat[upd])
            speed = np.linalg.norm(v_hat[upd], axis=1) / max(scale[i], 1.0)
            fc = cfg.min_cutoff_hz + cfg.beta * speed
            x_hat[upd] += _alpha(fc, dt)[:, None] * (xy[i, upd] - x_hat[upd])
        fresh[upd] = False
        fresh[new] = True
        t_last[m] = t_s[i]
        out[i, m] = x_hat[m]
    return out


def one_euro_smooth(
    xy: npt.ArrayLike,
    present: npt.ArrayLike,
    t_s: npt.ArrayLike,
    scale: npt.ArrayLike,
    config: SmoothConfig | None = None,
) -> npt.NDArray[np.float32]:
    """Smooth keypoint trajectories of one person.

    Args:
        xy: (T, K, 2) positions in px.
        present: (T, K) bool; missing entries are neither used nor changed.
        t_s: (T,) strictly increasing times in seconds.
        scale: (T,) person height in px (speed normaliser for ``beta``).
        config: filter parameters.

    Returns:
        (T, K, 2) float32 smoothed positions (input values where missing).

    Raises:
        InvalidInputError: on mismatched shapes or times that do not increase.
    """
    cfg = config or SmoothConfig()
    x = np.asarray(xy, dtype=np.float64)
    p = np.asarray(present, dtype=bool)
    t = np.asarray(t_s, dtype=np.float64).reshape(-1)
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if x.ndim != 3 or x.shape[2] != 2 or p.shape != x.shape[:2] or t.shape != (len(x),) or s.shape != (len(x),):
        raise InvalidInputError(
            f"one_euro_smooth: expected xy (T, K, 2), present (T, K), t_s (T,), scale (T,); got {x.shape}, "
            f"{p.shape}, {t.shape}, {s.shape}"
        )
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        bad = int(np.argmax(np.diff(t) <= 0)) + 1
        raise InvalidInputError(f"one_euro_smooth: times must increase, row {bad} has {t[bad]} after {t[bad - 1]}")
    if not cfg.body_compensation or x.shape[1] < 2:
        return _filter(x, p, t, s, cfg).astype(np.float32)
    centre, has = body_centre(x, p)
    centre_s = np.zeros_like(centre)
    if has.any():
        centre_s[has] = _filter(centre[has][:, None, :], np.ones((int(has.sum()), 1), bool), t[has], s[has], cfg)[:, 0]
    rel = _filter(x - centre[:, None, :], p, t, s, cfg)
    return np.where(p[..., None], centre_s[:, None, :] + rel, x).astype(np.float32)


def _filter(
    x: npt.NDArray[np.float64],
    p: npt.NDArray[np.bool_],
    t: npt.NDArray[np.float64],
    s: npt.NDArray[np.float64],
    cfg: SmoothConfig,
) -> npt.NDArray[np.float64]:
    """One-Euro over (T, K, 2): causal, or the mean of a forward and a backward pass."""
    fwd = _one_euro_pass(x, p, t, s, cfg)
    if cfg.bidirectional:
        bwd = _one_euro_pass(x[::-1], p[::-1], -t[::-1], s[::-1], cfg)[::-1]
        fwd = np.where(p[..., None], 0.5 * (fwd + bwd), x)
    return fwd


def body_centre(
    xy: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Per-frame body centre that does not jump when keypoints appear or vanish.

    Model ``x_k(t) = c(t) + o_k``: each keypoint's typical offset ``o_k`` is its median of ``x_k(t) - c(t)`` over the
    track, and ``c(t) = mean over present k of (x_k(t) - o_k)``, alternated from ``c`` = the mean of the present
    keypoints. A keypoint dropping out removes its own offset with it, so the centre does not jump.

    Args:
        xy: (T, K, 2) positions, px.
        present: (T, K) bool.

    Returns:
        (T, 2) centres (0 where nothing is present) and (T,) bool where a centre exists.
    """
    has: npt.NDArray[np.bool_] = np.asarray(present.any(axis=1), dtype=bool)
    n = np.maximum(present.sum(axis=1), 1)[:, None]
    seen = present.any(axis=0)
    offset = np.zeros((xy.shape[1], 2))
    centre = np.where(present[..., None], xy, 0.0).sum(axis=1) / n
    # x_k(t) = c(t) + o_k, solved by alternating the two estimates (a few rounds converge for a near-rigid body)
    for _ in range(3):
        if seen.any():
            dev = np.where(present[..., None], xy - centre[:, None, :], np.nan)
            offset[seen] = np.nanmedian(dev[:, seen], axis=0)
        centre = np.where(present[..., None], xy - offset[None], 0.0).sum(axis=1) / n
    out: npt.NDArray[np.float64] = np.where(has[:, None], centre, 0.0)
    return out, has


def track_times_s(boxes: Sequence[TrackedBox], fps: float) -> npt.NDArray[np.float64]:
    """(T,) seconds of each box: its ``ts_ms`` when those increase strictly, else ``frame_idx / fps``."""
    ts = np.array([b.ts_ms for b in boxes], dtype=np.float64)
    if len(ts) > 1 and np.all(np.diff(ts) > 0):
        return ts / 1000.0
    if len(ts) == 1:
        return ts / 1000.0
    return np.array([b.frame_idx for b in boxes], dtype=np.float64) / fps


def smooth_skeleton_track(track: Track, config: SmoothConfig | None = None) -> Track:
    """The track with each attached skeleton's present keypoints smoothed over time.

    Boxes without a skeleton and missing keypoints are unchanged; confidences and presence flags are kept. The input
    track is not modified.

    Args:
        track: one track whose boxes may carry skeletons (``ts_ms`` used for time when increasing).
        config: filter parameters.

    Returns:
        A new :class:`Track` with the same boxes and smoothed skeletons.
    """
    cfg = config or SmoothConfig()
    idx = [i for i, b in enumerate(track.boxes) if b.skeleton is not None]
    boxes = [replace(b) for b in track.boxes]
    if len(idx) < 2:
        return Track(track.track_id, boxes, track.class_id, track.class_name)
    sks: list[Skeleton] = [b.skeleton for b in (track.boxes[i] for i in idx) if b.skeleton is not None]
    xy = np.stack([sk.keypoints[:, :2] for sk in sks])
    present = np.stack([sk.present for sk in sks])
    t_s = track_times_s([track.boxes[i] for i in idx], cfg.fps)
    heights = np.array([track.boxes[i].xyxy[3] - track.boxes[i].xyxy[1] for i in idx], dtype=np.float64)
    smoothed = one_euro_smooth(xy, present, t_s, heights, cfg)
    for n, i in enumerate(idx):
        kp = sks[n].keypoints.copy()
        kp[:, :2] = np.where(present[n][:, None], smoothed[n], kp[:, :2])
        boxes[i] = replace(boxes[i], skeleton=Skeleton(kp, sks[n].present.copy(), sks[n].score))
    return Track(track.track_id, boxes, track.class_id, track.class_name)


def smooth_skeleton_tracks(tracks: Sequence[Track], config: SmoothConfig | None = None) -> list[Track]:
    """:func:`smooth_skeleton_track` on every track."""
    return [smooth_skeleton_track(t, config) for t in tracks]
