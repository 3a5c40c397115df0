"""Motion blobs: candidate boxes of fast small objects (a thrown ball) that a detector misses.

A ball moving several times its own size per frame is a faint motion-blurred streak: detectors trained on sharp
objects rarely fire on it, and the grey-level foreground of :mod:`foreground` barely sees it (a pink streak on green
grass has almost the grass's grey level). On a static camera its colour still differs from the background: the
largest per-channel difference to a colour median background, smoothed and thresholded, leaves a blob per moving
object. Blobs of a plausible area (from a fraction of the keyframe box to a streak many boxes long) become candidate
boxes centred on the blob, with the size interpolated between the keyframes; the detection path
(:mod:`detpath`) then picks the chain of candidates that joins the keyframes, exactly as it does with a detector's
boxes.

Only fast objects use them (their keyframes or candidates move at least ``min_speed`` box diagonals per frame),
and where the detector sees the object in most frames, only if the blobs fit its keyframes better than the
detector's boxes do: a slow object is followed better by the foreground and appearance measurements of
:mod:`guided`, a well-detected one by its detections, a blurred ball boxed with its streak by its blobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import Float64Array
from prelabel.interpolate.detpath import DetPathParams

Float32Array = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class MotionParams:
    """Motion blob settings.

    The defaults were chosen on generated ``fast-motion`` scenes, seeds 0 to 5 (checked on 10 to 15).

    Attributes:
        threshold: least smoothed colour difference (largest over the channels, grey levels) of a moving pixel.
        blur: Gaussian smoothing of the difference image (odd kernel side in pixels; 1 = none): a streak's faint
            pixels join up, single noisy pixels fall under the threshold.
        min_area: least blob area, as a fraction of the keyframe box area.
        max_area: largest blob area, in keyframe box areas (a streak many sizes long; keeps people out).
        max_blobs: blobs kept per frame (the largest contrast mass first); a frame with more is a crowd of
            movers, where blobs say little.
        score: the score a blob candidate carries on the detection path.
        min_speed: least speed (keyframe box diagonals per frame) for an object to use them: the larger of its
            keyframes' (the chord over the frames between them, median over the gaps) and its candidates'
            (:func:`detpath.detection_speed`, with ``fastest_step``).
        line_reach: the detection path's ``line_reach`` when its candidates are blobs (a fast ball strays far
            from the straight line between its keyframes).
        fastest_step: the detection path's ``fastest_step`` when its candidates are blobs (the blobs of other
            movers would pull the scale of travel down to theirs).
        max_coverage: where more than this share of the frames between keyframes has a detection of the object's
            size (median over the gaps), the detector sees the object and blobs are used only if they fit its
            keyframes better (by ``fit_margin`` in mean IoU) than the detections do: a person the detector sees
            follows its boxes, a blurred ball whose detections take in its streak follows its blobs.
        fit_margin: see ``max_coverage``.
        miss_cost: the detection path's ``miss_cost`` when its candidates are blobs: a moving object makes a blob
            in nearly every frame, so a chain of the right size that keeps moving beats skipping frames towards a
            slower mover's blobs (a ball thrown and coming back between its keyframes).
        own_velocity: the detection path's ``own_velocity`` when its candidates are blobs: a thrown ball keeps its
            velocity from frame to frame, so a chain of blobs that does (and turns once where the ball bounces)
            beats a slower mover's that stays nearer the keyframes' line.
    """

    threshold: float = 20.0
    blur: int = 5
    min_area: float = 0.3
    max_area: float = 12.0
    max_blobs: int = 12
    score: float = 0.5
    min_speed: float = 0.5
    line_reach: float = 1.0
    fastest_step: bool = True
    max_coverage: float = 0.8
    fit_margin: float = 0.05
    miss_cost: float = 3.0
    own_velocity: float = 0.5

    def __post_init__(self) -> None:
        if self.blur < 1 or self.blur % 2 == 0:
            raise InvalidInputError(f"motion blur: expected an odd kernel side >= 1, got {self.blur}")
        if not 0.0 < self.min_area < self.max_area:
            raise InvalidInputError(
                f"motion blob areas: expected 0 < min_area < max_area, got {self.min_area}, {self.max_area}"
            )
        if not 0.0 <= self.own_velocity <= 1.0:
            raise InvalidInputError(f"motion own_velocity: expected a share in [0, 1], got {self.own_velocity}")

    def blob_path(self, path: DetPathParams) -> DetPathParams:
        """``path``'s costs for a path through motion blobs: this ``line_reach``, ``fastest_step``, ``miss_cost`` and
        ``own_velocity`` in place of its own."""
        return replace(
            path,
            line_reach=self.line_reach,
            fastest_step=self.fastest_step,
            miss_cost=self.miss_cost,
            own_velocity=self.own_velocity,
        )


def colour_background(read: Callable[[int], Image], frames: npt.ArrayLike) -> Float32Array:
    """Per-channel median (H, W, C) float32 of the frames ``frames`` read with ``read`` (BGR or grey images)."""
    idx = np.asarray(frames, np.int64).reshape(-1)
    if len(idx) == 0:
        raise InvalidInputError("colour background: expected at least one frame")
    stack = np.stack([np.asarray(read(int(i))) for i in idx.tolist()])
    if stack.ndim == 3:
        stack = stack[..., None]
    return np.median(stack, axis=0).astype(np.float32)


BlobComponents = tuple[Float64Array, Float64Array, Float64Array]


def blob_components(image: Image, background: Float32Array, params: MotionParams) -> BlobComponents:
    """Every blob of ``image`` that differs from ``background``, before any size limit: ``(centres, masses,
    areas)``, (N, 2) float64 ``x, y`` centres of their bounding boxes, (N,) contrast masses and (N,) areas in pixels,
    the largest mass first. The costly part of :func:`motion_blobs` (a whole frame), so callers may keep it per frame.

    Raises:
        InvalidInputError: image and background differ in shape.
    """
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape != background.shape:
        raise InvalidInputError(f"motion blobs: image {img.shape} and background {background.shape} differ in shape")
    diff = np.abs(img - background).max(axis=2)
    if params.blur > 1:
        diff = cv2.GaussianBlur(diff, (params.blur, params.blur), 0)
    mask = (diff > params.threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0)
    w = np.where(mask > 0, diff - params.threshold, 0.0).astype(np.float64)
    mass = np.bincount(labels.reshape(-1), weights=w.reshape(-1), minlength=n)
    keep = np.arange(1, n)
    keep = keep[mass[keep] > 0]
    order = keep[np.argsort(-mass[keep], kind="stable")]
    # The centre of the blob's bounding box: a streak is as long on either side of the object's mid-exposure
    # position, while the contrast varies with the background under it. Pixel (i, j) covers [i, i + 1) x [j, j + 1)
    # of the image plane (the boxes' coordinates).
    x0, y0 = stats[order, cv2.CC_STAT_LEFT], stats[order, cv2.CC_STAT_TOP]
    bw, bh = stats[order, cv2.CC_STAT_WIDTH], stats[order, cv2.CC_STAT_HEIGHT]
    centres = np.stack([x0 + bw / 2, y0 + bh / 2], axis=1).astype(np.float64)
    return centres, mass[order].astype(np.float64), stats[order, cv2.CC_STAT_AREA].astype(np.float64)


def sized_blobs(
    components: BlobComponents, params: MotionParams, min_area_px: float, max_area_px: float
) -> tuple[Float64Array, Float64Array]:
    """The blobs of :func:`blob_components` whose area lies in ``[min_area_px, max_area_px]``: ``(centres,
    masses)``, at most ``params.max_blobs``, the largest mass first."""
    centres, masses, areas = components
    keep = np.flatnonzero((areas >= min_area_px) & (areas <= max_area_px))[: params.max_blobs]
    return centres[keep], masses[keep]


def motion_blobs(
    image: Image, background: Float32Array, params: MotionParams, min_area_px: float, max_area_px: float
) -> tuple[Float64Array, Float64Array]:
    """Blobs of ``image`` that differ from ``background``: ``(centres, masses)``, (N, 2) float64 ``x, y`` centres of
    their bounding boxes and (N,) contrast masses, at most ``params.max_blobs``, the largest mass first.

    Raises:
        InvalidInputError: image and background differ in shape.
    """
    return sized_blobs(blob_components(image, background, params), params, min_area_px, max_area_px)


def whole_sizes(key_xyxy: Float64Array, cut: npt.ArrayLike) -> Float64Array:
    """(K, 2) width and height of the whole object at each keyframe: a box cut by the image border (``cut`` (K,)
    True) shows part of it, so it takes the nearest uncut keyframe's size, or with none the square of the longest
    side of any keyframe (a ball entering at one border and leaving at another)."""
    keys = np.asarray(key_xyxy, np.float64).reshape(-1, 4)
    wh = keys[:, 2:] - keys[:, :2]
    cut = np.asarray(cut, bool).reshape(-1)
    out = wh.copy()
    whole = np.flatnonzero(~cut)
    for i in np.flatnonzero(cut):
        if len(whole):
            out[i] = wh[whole[np.argmin(np.abs(whole - i))]]
        else:
            out[i] = max(float(wh.max()), 1.0)
    return out


def blob_boxes(
    read: Callable[[int], Image],
    background: Float32Array,
    key_frames: npt.ArrayLike,
    key_wh: Float64Array,
    params: MotionParams,
    components: Callable[[int], BlobComponents] | None = None,
) -> Mapping[int, Float64Array]:
    """Candidate ``xyxy`` boxes per frame strictly between consecutive keyframes: each blob's centre with the
    object's size (``key_wh`` (K, 2) at the keyframes, e.g. :func:`whole_sizes`) interpolated linearly in time; blob
    areas are judged against the smaller of the two keyframes' sizes. ``components``: a frame's
    :func:`blob_components` (e.g. kept from an earlier call); computed from ``read`` when None."""
    kf = np.asarray(key_frames, np.int64).reshape(-1)
    wh = np.asarray(key_wh, np.float64).reshape(-1, 2)
    of = components or (lambda f: blob_components(read(f), background, params))
    out: dict[int, Float64Array] = {}
    for k in range(len(kf) - 1):
        a, b = int(kf[k]), int(kf[k + 1])
        area = float(max(1.0, min(wh[k].prod(), wh[k + 1].prod())))
        for f in range(a + 1, b):
            centres, _ = sized_blobs(of(f), params, params.min_area * area, params.max_area * area)
            s = (f - a) / (b - a)
            size = (1.0 - s) * wh[k] + s * wh[k + 1]
            out[f] = np.concatenate([centres - size / 2, centres + size / 2], axis=1)
    return out
