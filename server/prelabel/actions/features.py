"""Per-frame motion and posture features of one person's skeleton track.

Everything is measured in *torso lengths* (distance from the hip centre to the shoulder centre, a rolling median
over the track) so that features do not depend on the person's size in pixels, and in seconds from real
timestamps (``ts_ms``) so that they do not depend on the frame rate. Image ``y`` points down; features call "up"
positive.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d

from prelabel.errors import InvalidInputError
from prelabel.types import NUM_KEYPOINTS, Track

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

NOSE, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, L_HIP, R_HIP, L_KN, R_KN, L_AN, R_AN = (
    0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
)  # fmt: skip

MOTION_FEATURES: tuple[str, ...] = (
    "speed_x",  # |horizontal hip velocity|, torso lengths / s, over +-0.25 s
    "vel_up",  # upward hip velocity, torso lengths / s, over +-0.1 s
    "vel_up_slow",  # upward hip velocity over +-0.25 s
    "hip_above_ground",  # hip height above the local ground (lowest ankle within +-1 s)
    "hip_drop",  # hip height relative to the track's typical (median) height; negative when lower
    "feet_lift",  # height of the lower ankle above the local ground
    "torso_cos",  # cos of torso angle from vertical (1 upright, 0 horizontal, <0 upside down)
    "torso_sin",  # |sin| of the same angle
    "knee_cos",  # mean cos of the hip-knee-ankle angle (-1 straight, toward 1 deeply bent)
    "hip_cos",  # mean cos of the shoulder-hip-knee angle
    "wrist_up",  # highest wrist above its shoulder
    "wrist_wiggle",  # std of the raised wrist's horizontal offset to its shoulder over +-0.4 s
    "head_above_hip",  # nose (or shoulders) above the hip centre
    "height",  # vertical extent of the keypoints
    "aspect",  # width / height of the keypoints' extent
    "present",  # fraction of keypoints observed in this frame (0 in filled gaps)
)
POSE_FEATURES: tuple[str, ...] = tuple(f"{name}_{k}" for k in range(NUM_KEYPOINTS) for name in ("x", "y"))
FEATURE_NAMES: tuple[str, ...] = MOTION_FEATURES + POSE_FEATURES
NUM_FEATURES = len(FEATURE_NAMES)


@dataclass
class SkeletonSequence:
    """A contiguous stretch of one person's track, gaps filled by interpolation.

    Attributes:
        track_id: the track's ID.
        frames: (T,) int64 consecutive frame indices.
        ts_ms: (T,) float64 timestamps in ms (interpolated in filled gaps).
        xy: (T, 17, 2) float64 pixel coordinates, NaN where the keypoint was not observed.
        observed: (T,) bool, False for frames inside a filled gap.
    """

    track_id: int
    frames: npt.NDArray[np.int64]
    ts_ms: F64
    xy: F64
    observed: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.frames)


def track_to_sequences(
    track: Track,
    *,
    fps: float,
    ts_ms: Sequence[float] | npt.ArrayLike | None = None,
    max_gap_frames: int | None = None,
) -> list[SkeletonSequence]:
    """Cut a skeleton track into contiguous sequences: gaps up to ``max_gap_frames`` are bridged, longer ones split.

    Args:
        track: boxes with COCO-17 skeletons (boxes without a skeleton count as unobserved).
        fps: nominal frame rate, used for timestamps the track does not carry and the default gap length.
        ts_ms: optional (N,) per-frame timestamps of the whole video, indexed by ``frame_idx``; otherwise each
            box's ``ts_ms`` is used when they increase, else ``frame_idx * 1000 / fps``.
        max_gap_frames: longest gap to bridge; default half a second.

    Returns:
        Sequences in frame order.

    Raises:
        InvalidInputError: the track is empty or has no skeleton, or ``fps`` is not positive.
    """
    if fps <= 0 or not np.isfinite(fps):
        raise InvalidInputError(f"fps must be positive, got {fps}")
    boxes = [b for b in track.boxes if b.skeleton is not None and b.skeleton.present.any()]
    if not boxes:
        raise InvalidInputError(
            f"track {track.track_id}: expected skeletons (COCO-17) in its boxes, got none in {len(track.boxes)} boxes"
        )
    gap = max(1, round(0.5 * fps)) if max_gap_frames is None else max_gap_frames
    frames = np.array([b.frame_idx for b in boxes], dtype=np.int64)
    box_ts = np.array([b.ts_ms for b in boxes], dtype=np.float64)
    xy = np.full((len(boxes), NUM_KEYPOINTS, 2), np.nan)
    for i, b in enumerate(boxes):
        sk = b.skeleton
        assert sk is not None
        xy[i, sk.present] = sk.keypoints[sk.present, :2]
    if ts_ms is not None:
        video_ts = np.asarray(ts_ms, dtype=np.float64).reshape(-1)
        if frames[-1] >= len(video_ts):
            raise InvalidInputError(
                f"track {track.track_id}: frame {int(frames[-1])} has no timestamp; ts_ms has {len(video_ts)} entries"
            )
        box_ts = video_ts[frames]
    elif len(box_ts) < 2 or np.any(np.diff(box_ts) <= 0):
        box_ts = (frames * (1000.0 / fps)).astype(np.float64)
    cuts = np.flatnonzero(np.diff(frames) > gap + 1) + 1
    out = []
    for part in np.split(np.arange(len(frames)), cuts):
        f = frames[part]
        full = np.arange(f[0], f[-1] + 1, dtype=np.int64)
        pos = full - f[0]
        seq_xy = np.full((len(full), NUM_KEYPOINTS, 2), np.nan)
        seq_xy[f - f[0]] = xy[part]
        observed = np.zeros(len(full), dtype=bool)
        observed[f - f[0]] = True
        ts = np.interp(pos, f - f[0], box_ts[part]).astype(np.float64) if len(f) > 1 else box_ts[part][:1].copy()
        out.append(SkeletonSequence(track.track_id, full, ts, seq_xy, observed))
    return out


def _fill_nan(values: F64) -> F64:
    """Linear interpolation over NaNs along axis 0 for each column; all-NaN columns stay NaN."""
    out = values.copy()
    flat = out.reshape(len(out), -1)
    idx = np.arange(len(out))
    for c in range(flat.shape[1]):
        ok = np.isfinite(flat[:, c])
        if ok.any() and not ok.all():
            flat[:, c] = np.interp(idx, idx[ok], flat[ok, c])
    return out


def _mean_pts(a: F64, b: F64) -> F64:
    """Midpoint of two (T, 2) point arrays, falling back to whichever exists."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(a) & np.isfinite(b), (a + b) / 2, np.where(np.isfinite(a), a, b))


def _window(fps: float, seconds: float) -> int:
    return max(1, round(seconds * fps))


def _central_velocity(x: F64, ts_s: F64, k: int) -> F64:
    """(x[t+k] - x[t-k]) / (ts[t+k] - ts[t-k]) with indices clipped at the ends."""
    n = len(x)
    hi = np.minimum(np.arange(n) + k, n - 1)
    lo = np.maximum(np.arange(n) - k, 0)
    dt = ts_s[hi] - ts_s[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (x[hi] - x[lo]) / dt
    return np.where(dt > 0, v, 0.0)


def _nanmean0(stacked: F64) -> F64:
    """Mean over axis 0 ignoring NaN; NaN where a column has no finite value (without warnings)."""
    ok = np.isfinite(stacked)
    count = ok.sum(axis=0)
    total = np.where(ok, stacked, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _cos_angle(a: F64, b: F64, c: F64) -> F64:
    """Cosine of the angle at ``b`` between ``b->a`` and ``b->c``; (T, 2) each."""
    u, v = a - b, c - b
    nu, nv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.sum(u * v, axis=1) / (nu * nv), -1.0, 1.0)


def compute_features(seq: SkeletonSequence) -> F32:
    """Per-frame features of a sequence.

    Returns:
        (T, :data:`NUM_FEATURES`) float32: :data:`MOTION_FEATURES` then the pose relative to the hip centre in
        torso lengths (:data:`POSE_FEATURES`). No NaN: quantities that cannot be measured are 0.
    """
    n = len(seq)
    present = np.isfinite(seq.xy[..., 0]).mean(axis=1)
    xy = _fill_nan(seq.xy)
    ts_s = seq.ts_ms / 1000.0
    dt = float(np.median(np.diff(ts_s))) if n > 1 else 1 / 25
    fps = 1.0 / dt if dt > 0 else 25.0
    hip = _mean_pts(xy[:, L_HIP], xy[:, R_HIP])
    sh = _mean_pts(xy[:, L_SH], xy[:, R_SH])
    torso = sh - hip
    torso_len = np.linalg.norm(torso, axis=1)
    ys, xs = xy[..., 1], xy[..., 0]
    with np.errstate(all="ignore"):
        height = np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1)
        width = np.nanmax(xs, axis=1) - np.nanmin(xs, axis=1)
    scale = _scale(torso_len, height, fps)
    hip = np.where(np.isfinite(hip), hip, np.nanmean(xy, axis=1))
    hip = _fill_nan(hip)
    ankle_y = np.fmax(xy[:, L_AN, 1], xy[:, R_AN, 1])  # the lower ankle (image y down)
    ankle_y = np.where(np.isfinite(ankle_y), ankle_y, np.nanmax(ys, axis=1))
    ground = maximum_filter1d(np.nan_to_num(ankle_y, nan=-1e9), size=2 * _window(fps, 1.0) + 1, mode="nearest")
    hip_above = (ground - hip[:, 1]) / scale
    with np.errstate(all="ignore"):
        hip_drop = hip_above - np.nanmedian(hip_above)
    feet_lift = (ground - ankle_y) / scale
    with np.errstate(invalid="ignore", divide="ignore"):
        tl = np.maximum(torso_len, 1e-6)
        torso_cos = -torso[:, 1] / tl
        torso_sin = np.abs(torso[:, 0]) / tl
    knee = _nanmean0(
        np.stack(
            [_cos_angle(xy[:, L_HIP], xy[:, L_KN], xy[:, L_AN]), _cos_angle(xy[:, R_HIP], xy[:, R_KN], xy[:, R_AN])]
        ),
    )
    hipang = _nanmean0(
        np.stack(
            [_cos_angle(xy[:, L_SH], xy[:, L_HIP], xy[:, L_KN]), _cos_angle(xy[:, R_SH], xy[:, R_HIP], xy[:, R_KN])]
        ),
    )
    wrist_up_lr = (
        np.stack([(xy[:, L_SH, 1] - xy[:, L_WR, 1]), (xy[:, R_SH, 1] - xy[:, R_WR, 1])], axis=1) / scale[:, None]
    )
    rel_x = np.stack([(xy[:, L_WR, 0] - xy[:, L_SH, 0]), (xy[:, R_WR, 0] - xy[:, R_SH, 0])], axis=1) / scale[:, None]
    w = 2 * _window(fps, 0.4) + 1
    rel_x0 = np.nan_to_num(rel_x)
    mean = uniform_filter1d(rel_x0, size=w, axis=0, mode="nearest")
    var = uniform_filter1d(rel_x0**2, size=w, axis=0, mode="nearest") - mean**2
    wiggle_lr = np.sqrt(np.maximum(var, 0.0))
    raised = np.nan_to_num(wrist_up_lr, nan=-10.0)
    side = np.argmax(raised, axis=1)
    wrist_up = raised[np.arange(n), side]
    wiggle = wiggle_lr[np.arange(n), side]
    head = np.where(np.isfinite(xy[:, NOSE, 1]), xy[:, NOSE, 1], sh[:, 1])
    head_above = (hip[:, 1] - head) / scale
    hx = hip[:, 0] / scale
    hy = -hip[:, 1] / scale
    speed_x = np.abs(_central_velocity(hx, ts_s, _window(fps, 0.25)))
    vel_up = _central_velocity(hy, ts_s, _window(fps, 0.1))
    vel_up_slow = _central_velocity(hy, ts_s, _window(fps, 0.25))
    with np.errstate(invalid="ignore", divide="ignore"):
        aspect = width / np.maximum(height, 1e-6)
    motion = np.stack(
        [
            speed_x,
            vel_up,
            vel_up_slow,
            hip_above,
            hip_drop,
            feet_lift,
            torso_cos,
            torso_sin,
            knee,
            hipang,
            wrist_up,
            wiggle,
            head_above,
            height / scale,
            aspect,
            present * seq.observed,
        ],
        axis=1,
    )
    pose = ((xy - hip[:, None, :]) / scale[:, None, None]).reshape(n, -1)
    feats = np.concatenate([motion, pose], axis=1)
    feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(feats, -50.0, 50.0).astype(np.float32)


def _scale(torso_len: F64, height: F64, fps: float) -> F64:
    """(T,) torso length in pixels: rolling median over +-3 s, from the keypoints' height where torsos are missing."""
    est = np.where(np.isfinite(torso_len) & (torso_len > 0), torso_len, height / 3.0)
    if not np.isfinite(est).any():
        return np.ones_like(est)
    est = _fill_nan(est)
    size = min(len(est), 2 * _window(fps, 3.0) + 1)
    if size > 2:
        est = median_filter(est, size=size, mode="nearest")
    return np.maximum(est, 1.0)
