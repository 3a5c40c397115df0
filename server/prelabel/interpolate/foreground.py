"""Foreground measurements for guided interpolation on a static camera.

A static camera's background is the per-pixel median of frames sampled across the video; a moving object is where a
frame differs from it. For one box, the *foreground centroid* is the centroid of ``clip(|I - bg| - threshold, 0,
cap)`` inside the box: unlike a template match it is not pulled toward the background pixels a box always encloses,
and unlike optical flow it does not drift. The centroid of a person is not the centre of the annotator's box (shadow,
swinging limbs, box margins), so the offset between the two is measured at both keyframes and interpolated between
them. Mean shift (the window re-centred on its centroid a few times) finds the object from a prior position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import Float64Array, FrameSource

Gray = npt.NDArray[np.uint8]
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class BackgroundParams:
    """Background model settings.

    Attributes:
        sample_frames: frames sampled evenly for the median, across the video or the window around a run.
        window_frames: the median is taken over the frames of the run plus this many before and after it (0: the
            whole video). A long video is then never decoded end to end for one track, and the background is the
            one of the run's own time (lighting drifts).
        window_snap: the window's ends are widened outward to multiples of this many frames, so that runs differing
            by a few frames share a background (the window is still a function of the run alone).
        threshold: grey-level difference below which a pixel counts as background.
        cap: differences are clipped to ``threshold + cap`` (one strong edge must not dominate a centroid).
        max_foreground_fraction: the camera counts as static when, in the median sampled frame, at most this
            fraction of pixels differs from the background by more than ``threshold``.
        mean_shift_iters: re-centring steps from the prior position.
        min_mass: a window whose mean weight (in units of ``cap``) is below this gives no measurement.
        window: the precise centroid's window, width and height as fractions of the box: narrower than the box keeps
            a neighbour out but reaches less far (guided uses it for slow objects only).
        precise_iters: the last mean-shift steps that use the precise window; the steps before use the whole box,
            whose pull reaches an object anywhere in the box. At ``mean_shift_iters`` or more (the default) every
            step is precise; 0 makes every step use the whole box.
    """

    sample_frames: int = 48
    window_frames: int = 300
    window_snap: int = 100
    threshold: float = 15.0
    cap: float = 40.0
    max_foreground_fraction: float = 0.2
    mean_shift_iters: int = 4
    min_mass: float = 0.02
    window: tuple[float, float] = (0.8, 1.0)
    precise_iters: int = 4

    def __post_init__(self) -> None:
        if len(self.window) != 2 or not all(0.0 < float(v) <= 1.0 for v in self.window):
            raise InvalidInputError(f"background window: expected two fractions in (0, 1], got {self.window}")
        if self.precise_iters < 0:
            raise InvalidInputError(f"background precise_iters: expected >= 0, got {self.precise_iters}")
        if self.mean_shift_iters < 1:
            raise InvalidInputError(f"background mean_shift_iters: expected >= 1, got {self.mean_shift_iters}")
        if self.sample_frames < 1:
            raise InvalidInputError(f"background sample_frames: expected >= 1, got {self.sample_frames}")
        if self.cap <= 0.0 or self.threshold < 0.0:
            raise InvalidInputError(
                f"background threshold and cap: expected threshold >= 0 and cap > 0, got {self.threshold}, {self.cap}"
            )


def background_window(video: FrameSource, first: int, last: int, params: BackgroundParams) -> tuple[int, int]:
    """The frames ``(lo, hi)`` (inclusive) the background of a run from ``first`` to ``last`` is taken from: at least
    ``window_frames`` on each side, widened outward to multiples of ``window_snap`` (runs that differ by a few frames,
    as auto's checks of parts of a run do, share one background), within the video."""
    n = video.num_frames
    if params.window_frames <= 0:
        return 0, n - 1
    snap = max(1, params.window_snap)
    lo = (first - params.window_frames) // snap * snap
    hi = -(-(last + params.window_frames + 1) // snap) * snap - 1
    return max(0, lo), min(n - 1, hi)


def background_model(
    video: FrameSource, to_gray: object, params: BackgroundParams, window: tuple[int, int] | None = None
) -> Float32Array | None:
    """Median background (H, W) float32 of ``video``, or None when the camera does not look static.

    Args:
        video: the frames.
        to_gray: callable ``frame_idx -> (H, W) uint8`` grey frame (lets the caller share its frame cache).
        params: see :class:`BackgroundParams`.
        window: the frames ``(lo, hi)`` to sample (:func:`background_window`); None: the whole video.
    """
    lo, hi = window if window is not None else (0, video.num_frames - 1)
    n = hi - lo + 1
    if n < 8:
        return None
    idx = np.unique(np.linspace(lo, hi, min(params.sample_frames, n)).astype(np.int64))
    stack = np.stack([to_gray(int(i)) for i in idx.tolist()])  # type: ignore[operator]
    bg = np.median(stack, axis=0).astype(np.float32)
    frac = np.mean(np.abs(stack.astype(np.float32) - bg[None]) > params.threshold, axis=(1, 2))
    if float(np.median(frac)) > params.max_foreground_fraction:
        return None
    return bg


def foreground_centroid(
    gray: Gray,
    bg: Float32Array,
    centre: Float64Array,
    size: Float64Array,
    params: BackgroundParams,
    precise: bool = False,
) -> tuple[Float64Array | None, float]:
    """Centroid (x, y) in pixels of the foreground weight inside a box, and the box's mean weight in [0, 1].

    Args:
        gray: (H, W) uint8 frame.
        bg: (H, W) float32 background.
        centre: (2,) box centre in pixels.
        size: (2,) box width and height in pixels.
        params: see :class:`BackgroundParams`.
        precise: use the narrower ``params.window`` (else the whole box, which reaches farther).

    Returns:
        ``(centroid, mass)``; centroid None when the box is (nearly) outside the frame or holds no foreground.
    """
    h_img, w_img = gray.shape[:2]
    size = np.asarray(size, np.float64) * (np.asarray(params.window) if precise else 1.0)
    # The window's edges are exact (border pixels weigh by the fraction inside it): the centroid moves smoothly with
    # the window and its pixel centres average to ``centre``, so mean shift neither jumps nor creeps.
    ax, bx = max(0.0, float(centre[0] - size[0] / 2)), min(float(w_img), float(centre[0] + size[0] / 2))
    ay, by = max(0.0, float(centre[1] - size[1] / 2)), min(float(h_img), float(centre[1] + size[1] / 2))
    if bx - ax < 2 or by - ay < 2:
        return None, 0.0
    x0, x1 = int(np.floor(ax)), int(np.ceil(bx))
    y0, y1 = int(np.floor(ay)), int(np.ceil(by))
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)
    col = np.clip(np.minimum(xs + 1.0, bx) - np.maximum(xs, ax), 0.0, 1.0)
    row = np.clip(np.minimum(ys + 1.0, by) - np.maximum(ys, ay), 0.0, 1.0)
    diff = np.abs(gray[y0:y1, x0:x1].astype(np.float32) - bg[y0:y1, x0:x1])
    wgt = np.clip(diff - params.threshold, 0.0, params.cap) * row[:, None] * col[None, :]
    total = float(wgt.sum())
    mass = total / (params.cap * (bx - ax) * (by - ay))
    if mass < params.min_mass or total <= 0.0:
        return None, mass
    cx = float(wgt.sum(axis=0) @ xs) / total + 0.5
    cy = float(wgt.sum(axis=1) @ ys) / total + 0.5
    return np.array([cx, cy]), mass


def mean_shift(
    gray: Gray,
    bg: Float32Array,
    start: Float64Array,
    size: Float64Array,
    offset: Float64Array,
    params: BackgroundParams,
) -> tuple[Float64Array | None, float]:
    """Box centre found by mean shift on the foreground weight from ``start``.

    Args:
        gray, bg: frame and background.
        start: (2,) prior box centre.
        size: (2,) box width and height.
        offset: (2,) expected ``centroid - box centre`` (measured at keyframes).
        params: see :class:`BackgroundParams`.

    Returns:
        ``(centre, mass)``: the box centre (centroid minus offset), None where the window lost the foreground.
    """
    c = np.asarray(start, np.float64)
    mass = 0.0
    for it in range(params.mean_shift_iters):
        # The first ``mean_shift_iters - precise_iters`` steps (none with the defaults) use the whole box, whose
        # pull reaches an object anywhere in it; the rest use the precise window, so the fixed point is found with
        # the window the caller measured the keyframe offsets with (guided: precise for slow gaps, whole box with
        # ``precise_iters=0`` for fast ones).
        precise = it >= params.mean_shift_iters - params.precise_iters
        cen, mass = foreground_centroid(gray, bg, c + offset, size, params, precise)
        if cen is None:
            return None, mass
        c = cen - offset
    return c, mass
