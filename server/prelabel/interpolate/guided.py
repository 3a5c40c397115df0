"""Guided interpolation: visual propagation between keyframes, fused with detector boxes near the path.

For each gap between keyframes ``a`` and ``b`` (``L = b - a`` frames):

1. Propagate the box forward from ``a`` to ``b`` and backward from ``b`` to ``a`` with pyramidal Lucas-Kanade optical
   flow (OpenCV) on corner features inside the box, with a forward-backward consistency check; the motion per step
   is the median displacement (and the median ratio of pairwise distances for scale). The initial flow guess is the
   keyframes' mean velocity, so fast motion stays within the pyramid's reach.
2. Remove drift so both passes go exactly through both keyframes: ``F'(t) = F(t) + (t - a) / L * (K_b - F(b))`` and
   ``B'(t) = B(t) + (b - t) / L * (K_a - B(a))``.
3. Blend ``F'`` and ``B'`` with weights ``c_F(t) * (b - t) / L`` and ``c_B(t) * (t - a) / L`` (``c`` is each pass's
   accumulated tracking confidence), plus a small weight on the geometric prior (RTS smoother).
4. Where a detection overlaps the blended box (IoU >= ``det_min_iou``), fuse it in after correcting the detector's
   systematic offset to this annotator's boxes, measured on the keyframes themselves.

The uncertainty (pixels) that ranks suggested keyframes is the forward/backward disagreement plus how far step 2
pulled the passes (passes that agree on something other than the object still miss the next keyframe), raised where
tracking confidence is low and lowered where a detection supports the box.

On a static camera the foreground path (:meth:`GuidedMethod._foreground_run`) replaces steps 1-4: foreground centroids,
detections corrected to the annotator's box convention at both keyframes (:mod:`detmeas`) and the keyframes' appearance
(:mod:`template`) are measurements for one smoother in which the keyframes are near-exact, and per gap the keyframes'
appearance picks the path that stayed on the object (the geometric prior where the measured path slid onto a neighbour).
With detections drawn like the annotator's boxes the detections on each gap's cheapest path
(:mod:`prelabel.interpolate.detpath`; a detection whose colours differ from the keyframes' costs more,
:mod:`prelabel.interpolate.appearance`) replace step 4; there a frame's uncertainty shrinks where its box sits on one
detection and grows where a second one overlaps it (objects the path could have swapped). On a static camera, a fast
object's motion blobs (:mod:`prelabel.interpolate.motion`: a thrown ball's blurred streak, which detectors miss or box
with its streak) replace the detections as that path's candidates when found (where the detector sees the object in most
frames, only if the blobs fit its keyframes better than its boxes do).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from prelabel.errors import InvalidInputError
from prelabel.geometry import box_iou
from prelabel.interpolate.appearance import appearance_cost, keyframe_histograms
from prelabel.interpolate.base import Float64Array, FrameSource, RunEstimate, RunInput
from prelabel.interpolate.detmeas import (
    correct_detections,
    detection_centres,
    detection_offset,
    interp_residual_rms,
    interp_residuals,
    residual_rms,
)
from prelabel.interpolate.detpath import (
    DetPathParams,
    cut_edges,
    detection_agreement,
    detection_coverage,
    detection_path,
    detection_speed,
    partial_keyframes,
)
from prelabel.interpolate.foreground import (
    BackgroundParams,
    Float32Array,
    Gray,
    background_model,
    background_window,
    foreground_centroid,
    mean_shift,
)
from prelabel.interpolate.geometric import (
    KalmanMethod,
    box_scale,
    bridge_uncertainty,
    confidence_from_uncertainty,
    cxcywh_to_xyxy,
    xyxy_to_cxcywh,
)
from prelabel.interpolate.kalman import SmootherParams, keyframe_states
from prelabel.interpolate.motion import (
    BlobComponents,
    MotionParams,
    blob_boxes,
    blob_components,
    colour_background,
    sized_blobs,
    whole_sizes,
)
from prelabel.interpolate.template import TemplateParams, cut_template, match_centre, path_cost
from prelabel.types import Detections

logger = logging.getLogger(__name__)

# Flow passes and motion blobs kept per object (each entry small: a box per frame, or a frame's blobs).
_MAX_CACHED_RESULTS = 4096
# Blobs kept in all (about 32 bytes each): a noisy video's frames can hold thousands (PETS09's about 35).
_MAX_CACHED_BLOBS = 1_000_000
# A detection overlapping a keyframe box at least this much is taken as the detector's box of the object there.
_KEY_MATCH_IOU = 0.3


@dataclass(frozen=True)
class FlowParams:
    """Lucas-Kanade propagation settings.

    Attributes:
        max_points: most corner features per step.
        win_size: LK window side in pixels.
        max_level: pyramid levels above the base.
        fb_max_px: forward-backward error above which a feature is dropped (pixels).
        inner: fraction of the box width/height (centred) where features are taken (keeps background out).
    """

    max_points: int = 48
    win_size: int = 15
    max_level: int = 3
    fb_max_px: float = 1.0
    inner: tuple[float, float] = (0.7, 0.85)


def _lk_step(
    prev: Gray, cur: Gray, cxcywh: Float64Array, guess: Float64Array, p: FlowParams
) -> tuple[Float64Array, float]:
    """Move one box (cx, cy, w, h) from ``prev`` to ``cur``; returns the new box and a step confidence in [0, 1]."""
    h_img, w_img = prev.shape[:2]
    cx, cy, w, h = (float(v) for v in cxcywh)
    moved = np.array([cx + guess[0], cy + guess[1], w, h])
    if w < 2 or h < 2:
        return moved, 0.0
    margin = 0.5 * max(w, h) + 8.0
    x0 = int(max(0, min(cx, cx + guess[0]) - w / 2 - margin))
    y0 = int(max(0, min(cy, cy + guess[1]) - h / 2 - margin))
    x1 = int(min(w_img, max(cx, cx + guess[0]) + w / 2 + margin))
    y1 = int(min(h_img, max(cy, cy + guess[1]) + h / 2 + margin))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return moved, 0.0
    a = prev[y0:y1, x0:x1]
    b = cur[y0:y1, x0:x1]
    mask = np.zeros_like(a)
    iw, ih = w * p.inner[0] / 2, h * p.inner[1] / 2
    mx0, my0 = int(max(0, cx - iw - x0)), int(max(0, cy - ih - y0))
    mx1, my1 = int(min(x1 - x0, cx + iw - x0 + 1)), int(min(y1 - y0, cy + ih - y0 + 1))
    if mx1 - mx0 < 2 or my1 - my0 < 2:
        return moved, 0.0
    mask[my0:my1, mx0:mx1] = 255
    pts = cv2.goodFeaturesToTrack(a, p.max_points, 0.01, 3, mask=mask, blockSize=5)
    if pts is None or len(pts) < 4:
        return moved, 0.0
    pts = pts.astype(np.float32)
    init = pts + np.asarray(guess, np.float32).reshape(1, 1, 2)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
    win = (p.win_size, p.win_size)
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(
        a, b, pts, init.copy(), winSize=win, maxLevel=p.max_level, criteria=crit, flags=cv2.OPTFLOW_USE_INITIAL_FLOW
    )
    back, st2, _ = cv2.calcOpticalFlowPyrLK(
        b, a, nxt, pts.copy(), winSize=win, maxLevel=p.max_level, criteria=crit, flags=cv2.OPTFLOW_USE_INITIAL_FLOW
    )
    fb = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    good = (st.reshape(-1) == 1) & (st2.reshape(-1) == 1) & (fb < p.fb_max_px)
    n_good = int(good.sum())
    if n_good < 3:
        return moved, 0.0
    p0 = pts.reshape(-1, 2)[good].astype(np.float64)
    p1 = nxt.reshape(-1, 2)[good].astype(np.float64)
    d = np.median(p1 - p0, axis=0)
    scale = 1.0
    if n_good >= 5:
        i, j = np.triu_indices(n_good, 1)
        d0 = np.linalg.norm(p0[i] - p0[j], axis=1)
        d1 = np.linalg.norm(p1[i] - p1[j], axis=1)
        ok = d0 > 2.0
        if ok.sum() >= 3:
            scale = float(np.clip(np.median(d1[ok] / d0[ok]), 0.85, 1.18))
    conf = (n_good / len(pts)) * float(np.exp(-np.median(fb[good])))
    return np.array([cx + d[0], cy + d[1], w * scale, h * scale]), float(np.clip(conf, 0.0, 1.0))


def _fuse(
    z: Float64Array, var: Float64Array, z2: Float64Array, var2: Float64Array
) -> tuple[Float64Array, Float64Array]:
    """Precision-weighted mean of two measurements per frame: (n, 2) positions (NaN / ``inf`` variance: none) and
    (n,) variances in px^2; returns the fused positions (0 where neither measures) and variances (``inf`` there)."""
    p1 = np.where(np.isfinite(var) & np.isfinite(z[:, 0]), 1.0 / np.maximum(var, 1e-12), 0.0)
    p2 = np.where(np.isfinite(var2) & np.isfinite(z2[:, 0]), 1.0 / np.maximum(var2, 1e-12), 0.0)
    prec = p1 + p2
    num = np.where(p1[:, None] > 0, z, 0.0) * p1[:, None] + np.where(p2[:, None] > 0, z2, 0.0) * p2[:, None]
    fused = num / np.where(prec > 0, prec, 1.0)[:, None]
    return fused, np.where(prec > 0, 1.0 / np.where(prec > 0, prec, 1.0), np.inf)


@dataclass
class GuidedMethod:
    """Optical-flow propagation from both keyframes plus detector support; passes exactly through the keyframes.

    The default constants were chosen on PETS09-S2L1 (with its public ``det.txt`` detections) and on scenes from
    :mod:`prelabel.synthetic`'s ``fast-motion`` preset, seeds 0 to 5 (with the shipped synthetic detection and pose
    models). ``benchmarks/interpolation.py`` reports on the same sequence and seeds, so its numbers for this method
    are not held out: expect smaller gains on footage these defaults never saw.

    Attributes:
        flow: Lucas-Kanade settings.
        prior: the geometric prior, Kalman through the keyframes taken as exact (``jitter_rel=None``): with the
            placement noise allowed for, as the ``kalman`` method does, guided's suggestions needed 327 keyframes
            instead of 274 on the first 6 spans of PETS09-S2L1 (the benchmark's simulated annotator).
        prior_weight: weight of the geometric prior in the blend (the passes weigh up to 1 each).
        det_min_iou: a detection supports a frame when its IoU with the blended box is at least this.
        det_weight: weight of a supporting detection (times its score and IoU).
        cache_frames: grey frames kept in memory (LRU).
        cache_backgrounds: background models kept, one per window of frames (LRU).
        det_path: with detections, follow the detections on each gap's cheapest path (:mod:`detpath`) and fill the
            frames between them visually; None fuses detections that overlap the visual path instead.
        det_path_min_iou: the detection path is used only when detections match the keyframes this well (mean
            IoU); otherwise detections are fused where they overlap the visual path.
        det_path_min_coverage: for a slow object, the detection path also needs a detection overlapping at least
            this share of the whole keyframes (:meth:`detections_fit`).
        det_fit_fast_speed: objects whose detections move at least this many box diagonals per frame
            (:func:`detection_speed`) count as fast (:meth:`detections_fit`).
        det_fast_min_iou: ``det_path_min_iou`` for fast objects.
        centres_speed: on the detection path of an object whose detections move at least this many box diagonals
            per frame (its motion blur is as long as the object: a thrown ball's box takes in its streak), or of one
            found by its motion blobs, the path gives the centres and the keyframes the size (None: never).
        det_sigma: uncertainty of a box taken from a detection on the path, in keyframe box diagonals.
        det_appearance: on the detection path (boxes, not centres only), a detection costs this times the smaller of
            its colour histogram's distances to the gap's keyframes showing the whole object (:mod:`appearance`), so
            a path does not change to another person running the same way; None or 0: no appearance cost.
        det_offset_share: the least share of the detector's offset to the annotator's boxes (measured at the gap's
            keyframes, :func:`detection_offset`) applied to detections: the detection path's, the foreground
            smoother's detection measurements and detections blended into a path (:meth:`_fuse_detections`). Per
            component the share applied is ``m^2 / (m^2 + v)`` for the mean ``m`` and variance ``v`` of the offsets
            at the run's keyframes: a convention (boxes drawn wider, or lower, at every keyframe alike) is applied
            whole, one keyframe detection's own error mostly not (applied whole it moves every detection of the gap
            by that error). Generated fast-motion persons, guided k=20 mean IoU, seeds 0-5 / 10-15: all of the
            offset 0.879 / 0.906; this rule 0.887 / 0.917; a fixed share of 0.25 0.889 / 0.921, but a detector
            drawing boxes 1.5 times too wide then keeps most of its error.
        det_agree_floor: on the detection path, the uncertainty of a frame whose box the path took from a detection
            is multiplied by ``f + (1 - f) * (1 - IoU)`` for this ``f`` and the IoU of its box with the frame's
            best-overlapping detection: a box sitting on a detection keeps this share of its uncertainty.
        det_ambiguity: ... and every frame's by ``1 + det_ambiguity * IoU`` with another detection (not a duplicate
            of the best one, :func:`detection_agreement`): an object the path could have switched to. These two rank
            suggestions and set the confidence; they move no box, but a skeleton's root follows its box as far as the
            box's confidence goes.
        miss_sigma: uncertainty, in box widths, of a frame where the foreground gives no usable measurement.
        agree_discount: share of the departure from the geometric prior that still counts as uncertainty where the
            forward and backward foreground passes agree (static cameras).
        det_measure: on a static camera, detections (corrected to the annotator's convention at the keyframes) are
            measurements for the foreground smoother; False fuses them where they overlap the path instead.
        det_sigma_ratio: a detection's standard deviation relative to a foreground measurement's where the keyframes
            are too few to measure it (fewer than two usable triples).
        det_match_iou: least IoU between the path box and a corrected detection for the detection to measure it.
        det_gate: detections farther than this from the foreground path (in box widths and heights) are dropped.
        template: appearance matching settings (static cameras); None turns appearance off.
        template_sigma_ratio: an appearance measurement's standard deviation relative to a foreground measurement's.
        template_max_cost: appearance matches above this normalised cost (about 1 is empty background) measure
            nothing, and a gap whose best candidate path costs more keeps the measured path.
        n_cands: candidate paths per gap for the appearance check, in order: measured, measured with appearance,
            geometric prior, halfway between the measured path and the prior.
        appearance_margin: mean cost by which a later candidate must beat the measured path to replace it.
        precise_max_speed: gaps whose keyframes move at most this many box widths per frame use the precise
            foreground centroid (``background.precise_iters``); faster ones the flat whole box (reach).
        motion: motion blob settings (static cameras, with ``det_path``); None turns motion blobs off.
        motion_key_speed: motion blobs are looked for only when some gap's keyframes are at least this many box
            diagonals per frame apart (a walking person is far below), or when the object's detections move at least
            ``motion.min_speed`` (a ball that comes back to where it was between its keyframes).
        axis_trust: on a static camera, each axis of the foreground path is pulled toward the geometric prior as far
            as the keyframes say the prior is the better guess there (:meth:`_axis_trust`); False: the path whole.
        axis_trust_floor_px: the least error (pixels) the prior is taken to have there: an annotator's keyframes are
            drawn to about a pixel.
        det_path_fg_ratio: on a static camera, the detection path is taken only where the detections predict the
            annotator's boxes at the run's inner keyframes at most this many times worse than the foreground centroid
            does (:meth:`_foreground_beats_detections`); where the foreground predicts them better it keeps the run
            (with ``det_measure``, the detections as its measurements). None: the detection path wherever the
            detections fit.
        min_key_side_px: a run whose keyframe boxes' longer sides are shorter than this (pixels; their median)
            follows the geometric prior: there is nothing in so small a box to follow.
        prior_lowpass: on a static camera, the geometric prior's share of the final path (what the axis trust,
            :meth:`_axis_trust`, leaves it: most of the vertical on PETS09-S2L1) is smoothed by a Gaussian of this
            standard deviation (frames), still through the keyframes (:func:`lowpass_through_keys`). The prior, which
            weighs its process noises by how likely they make the keyframes, turns sharply at keyframes where people
            walk unevenly. Guided mean IoU at k = 5, 10, 20, 40 on PETS09-S2L1: 0.9665, 0.9393, 0.8898, 0.8132
            unsmoothed, 0.9674, 0.9413, 0.8919, 0.8141 smoothed; fast-motion seeds 0-5 at k = 10 and 20 unchanged
            (0.8816, 0.8805). Smoothing the whole path gained more on PETS09-S2L1 (0.8943 at k=20), but it also rounds
            the turns the measurements see at a keyframe (a bounce keyed where it turns: 0.936 to 0.756). None: not
            smoothed.
    """

    name: str = "guided"
    needs_video: bool = True
    flow: FlowParams = field(default_factory=FlowParams)
    prior: KalmanMethod = field(default_factory=lambda: KalmanMethod(curvature=False, jitter_rel=None))
    prior_weight: float = 0.05
    det_min_iou: float = 0.5
    det_weight: float = 0.3
    cache_frames: int = 256
    cache_backgrounds: int = 8
    background: BackgroundParams = field(default_factory=BackgroundParams)
    use_background: bool = True
    meas_sigma: float = 0.5
    agree_sigma: float = 0.5
    meas_q_rel_steps: tuple[float, ...] = (1e-4, 1e-2, 1.0)
    max_median_residual: float = 0.5
    robust_k: float = 2.0
    agree_discount: float = 0.1
    miss_sigma: float = 0.25
    det_path: DetPathParams | None = field(default_factory=DetPathParams)
    det_sigma: float = 0.05
    det_appearance: float | None = 1.0
    det_offset_share: float = 0.25
    det_agree_floor: float = 0.1
    det_ambiguity: float = 5.0
    det_path_min_iou: float = 0.7
    det_path_min_coverage: float = 0.8
    det_fit_fast_speed: float = 0.5
    det_fast_min_iou: float = 0.5
    centres_speed: float | None = 2.0
    det_measure: bool = True
    template: TemplateParams | None = field(default_factory=TemplateParams)
    template_sigma_ratio: float = 1.0
    template_max_cost: float = 0.8
    n_cands: int = 3
    precise_max_speed: float = 0.3
    appearance_margin: float = 0.2
    det_sigma_ratio: float = 2.0
    det_match_iou: float = 0.5
    det_gate: float = 0.5
    motion: MotionParams | None = field(default_factory=MotionParams)
    motion_key_speed: float = 0.1
    axis_trust: bool = True
    axis_trust_floor_px: float = 1.0
    det_path_fg_ratio: float | None = 1.0
    min_key_side_px: float = 4.0
    prior_lowpass: float | None = 1.5
    # Caches belong to one video, held by reference and compared with ``is``: an ``id`` can be reused by the next
    # video once the previous one is freed, and would then serve the old video's frames.
    # Backgrounds per window of frames (:func:`background_window`), so that a run's answer never depends on which
    # runs came before it.
    _bgs: OrderedDict[tuple[int, int], Float32Array | None] = field(default_factory=OrderedDict, init=False, repr=False)
    _colour_bgs: OrderedDict[tuple[int, int], Float32Array] = field(default_factory=OrderedDict, init=False, repr=False)
    _bg_window: tuple[int, int] = field(default=(0, -1), init=False, repr=False)
    _gray: OrderedDict[int, Gray] = field(default_factory=OrderedDict, init=False, repr=False)
    _video: FrameSource | None = field(default=None, init=False, repr=False)
    _passes: OrderedDict[tuple[object, ...], tuple[Float64Array, Float64Array]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    # Motion blobs per (background window, frame), before any size limit: a repeat call (a keyframe added or nudged)
    # finds them again without going over whole frames.
    _blobs: OrderedDict[tuple[tuple[int, int], int], BlobComponents] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _blob_count: int = field(default=0, init=False, repr=False)  # blobs held in ``_blobs``

    def __post_init__(self) -> None:
        # Shares, overlaps and weights: outside these ranges they reward what they should cost, or divide by zero.
        shares = {
            "det_offset_share": self.det_offset_share,
            "det_agree_floor": self.det_agree_floor,
            "agree_discount": self.agree_discount,
            "det_min_iou": self.det_min_iou,
            "det_match_iou": self.det_match_iou,
            "det_path_min_iou": self.det_path_min_iou,
            "det_path_min_coverage": self.det_path_min_coverage,
            "det_fast_min_iou": self.det_fast_min_iou,
        }
        for name, value in shares.items():
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"guided {name}: expected a share in [0, 1], got {value}")
        weights = {
            "det_appearance": self.det_appearance or 0.0,
            "det_ambiguity": self.det_ambiguity,
            "prior_weight": self.prior_weight,
            "det_weight": self.det_weight,
            "cache_frames": self.cache_frames,
        }
        for name, value in weights.items():
            if not value >= 0.0:
                raise InvalidInputError(f"guided {name}: expected a weight >= 0, got {value}")
        if not 1 <= self.n_cands <= 4:
            raise InvalidInputError(f"guided n_cands: expected 1 to 4 candidate paths, got {self.n_cands}")
        if self.cache_backgrounds < 1:
            raise InvalidInputError(f"guided cache_backgrounds: expected >= 1, got {self.cache_backgrounds}")

    def _frame(self, video: FrameSource, idx: int) -> Gray:
        if video is not self._video:
            self._gray.clear()
            self._passes.clear()
            self._blobs.clear()
            self._blob_count = 0
            self._bgs.clear()
            self._colour_bgs.clear()
            self._bg_window = (0, -1)
            self._video = video
        hit = self._gray.get(idx)
        if hit is not None:
            self._gray.move_to_end(idx)
            return hit
        img = np.asarray(video.read(idx))
        g: Gray = np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img, dtype=np.uint8)
        self._gray[idx] = g
        if len(self._gray) > self.cache_frames:
            self._gray.popitem(last=False)
        return g

    def _propagate(
        self, video: FrameSource, start: int, stop: int, box: Float64Array, velocity: Float64Array
    ) -> tuple[Float64Array, Float64Array]:
        """Boxes (cxcywh) and accumulated confidences from ``start`` to ``stop`` inclusive (either direction)."""
        key = (start, stop, *np.round(box, 3).tolist(), *np.round(velocity, 3).tolist())
        hit = self._passes.get(key)
        if hit is not None:
            self._passes.move_to_end(key)
            return hit
        step = 1 if stop > start else -1
        n = abs(stop - start) + 1
        boxes = np.empty((n, 4))
        conf = np.empty(n)
        boxes[0] = box
        conf[0] = 1.0
        guess = velocity  # signed: per-step motion in the direction of travel
        prev = self._frame(video, start)
        for i in range(1, n):
            cur = self._frame(video, start + i * step)
            boxes[i], c = _lk_step(prev, cur, boxes[i - 1], guess, self.flow)
            conf[i] = conf[i - 1] * (0.6 + 0.4 * c)
            prev = cur
        self._passes[key] = (boxes, conf)
        while len(self._passes) > _MAX_CACHED_RESULTS:
            self._passes.popitem(last=False)
        return boxes, conf

    def _blob_components(
        self, video: FrameSource, colour_bg: Float32Array, window: tuple[int, int], idx: int
    ) -> BlobComponents:
        """:func:`blob_components` of frame ``idx`` against the colour background of ``window``, kept for later calls
        (the last ``_MAX_CACHED_RESULTS`` frames, at most ``_MAX_CACHED_BLOBS`` blobs in all)."""
        key = (window, idx)
        hit = self._blobs.get(key)
        if hit is not None:
            self._blobs.move_to_end(key)
            return hit
        assert self.motion is not None
        comp = blob_components(np.asarray(video.read(idx)), colour_bg, self.motion)
        self._blobs[key] = comp
        self._blob_count += len(comp[0])
        while len(self._blobs) > 1 and (len(self._blobs) > _MAX_CACHED_RESULTS or self._blob_count > _MAX_CACHED_BLOBS):
            self._blob_count -= len(self._blobs.popitem(last=False)[1][0])
        return comp

    def _background(self, video: FrameSource, first: int, last: int) -> Float32Array | None:
        """The static background around frames ``first`` to ``last`` (None: the camera moves); kept for later runs
        with the same window (:func:`background_window`), the last ``cache_backgrounds`` windows."""
        self._frame(video, first)  # resets the caches when the video changed
        window = background_window(video, first, last, self.background)
        self._bg_window = window
        if window in self._bgs:
            self._bgs.move_to_end(window)
            return self._bgs[window]
        bg = background_model(video, lambda i: self._frame(video, i), self.background, window)
        logger.debug("guided: static background %s", "found" if bg is not None else "not found")
        self._bgs[window] = bg
        while len(self._bgs) > self.cache_backgrounds:
            self._bgs.popitem(last=False)
        return bg

    def release_frames(self) -> None:
        """Drop the decoded frames this object keeps (backgrounds, passes and other results stay)."""
        self._gray.clear()

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """Guided boxes for one run; falls back to the prior where the video is missing.

        On a static camera (a median background explains most pixels) the box centres come from foreground
        measurements smoothed through the keyframes (:meth:`_foreground_run`); otherwise from optical flow passes
        (:meth:`_flow_run`).
        """
        prior = self.prior.interpolate_run(run)
        if run.video is None or len(run.key_frames) < 2:
            return prior
        sides = np.maximum(run.key_xyxy[:, 2] - run.key_xyxy[:, 0], run.key_xyxy[:, 3] - run.key_xyxy[:, 1])
        if float(np.median(sides)) < self.min_key_side_px:
            # Boxes of a pixel or two hold nothing to follow: the passes and the foreground wandered off to anything
            # nearby (a user's 0-px keyframes 20 px apart came back 340 px away between them).
            return prior
        if self.det_path is not None:
            # An object found by its motion blobs follows them alone (where the detector sees it in most frames,
            # only if they fit its keyframes better than the detector's boxes: :meth:`_motion_detections`).
            # Blobs need no keyframe-fit check: they were chosen by their fit, and their boxes (between keyframes
            # only, of the keyframes' size) have nothing at the keyframes to compare.
            blobs = self._motion_detections(run)
            candidates = run.detections if blobs is None else blobs
            if (
                candidates is not None
                and (blobs is not None or self.detections_fit(run, candidates))
                and (blobs is not None or not self._foreground_beats_detections(run, candidates))
            ):
                # Detections as a path of their own (fast motion): the visual estimate fills the frames between
                # them. A blob-borne object may stray far from the keyframes' line (a ball dropped and bouncing).
                path = self.det_path
                if blobs is not None and self.motion is not None:
                    path = self.motion.blob_path(path)
                # A fast object (a ball's detections take in its blurred streak) or one found by its motion blobs:
                # the path gives the centres, the keyframes the size.
                centres_only = self.centres_speed is not None and (
                    blobs is not None or self._speed(run, candidates) >= self.centres_speed
                )
                base = self._visual_run(replace(run, detections=None), prior)
                est = self._with_detection_path(run, base, candidates, path, centres_only=centres_only)
                return est if blobs is None else self._blob_path_check(run, est, base)
        return self._visual_run(run, prior)

    def _blob_path_check(self, run: RunInput, blob_est: RunEstimate, base: RunEstimate) -> RunEstimate:
        """Per gap whose keyframes move slower than ``motion.min_speed``, the foreground path ``base`` in place of
        the path through motion blobs ``blob_est`` where the keyframes' appearance matches it better
        (:meth:`_appearance_check`, blobs first): the object's blob speed may have been another mover's (the fastest
        blob of a frame), and that mover's blobs then make the path. A gap of fast keyframes keeps its blobs; so
        does one whose keyframes give no template (cut by the border) or whose appearance matches neither path."""
        assert run.video is not None and self.motion is not None
        step = _key_steps(run)
        if self.template is None or not (step < self.motion.min_speed).any():
            return blob_est
        kf = run.key_frames
        bg = self._background(run.video, int(kf[0]), int(kf[-1]))
        if bg is None:
            return blob_est
        key_c = xyxy_to_cxcywh(run.key_xyxy)
        cands = [xyxy_to_cxcywh(e.xyxy)[:, :2] for e in (blob_est, base)]
        slow = np.flatnonzero(step < self.motion.min_speed).tolist()
        keep = self._appearance_check(run.video, bg, kf, key_c, cands, gaps=slow) == 1
        if not keep.any():
            return blob_est
        logger.debug(
            "guided: track %d keeps its foreground path on %d frames over motion blobs", run.track_id, keep.sum()
        )
        support = blob_est.support if blob_est.support is not None else np.ones(len(keep))
        base_support = base.support if base.support is not None else np.zeros(len(keep))
        est = RunEstimate(
            np.where(keep[:, None], base.xyxy, blob_est.xyxy),
            np.where(keep, base.confidence, blob_est.confidence),
            np.where(keep, base.uncertainty, blob_est.uncertainty),
            [b if k else a for a, b, k in zip(blob_est.method, base.method, keep.tolist(), strict=True)],
            blob_est.reason,
        )
        est.support = np.where(keep, base_support, support)
        return est

    def _visual_run(self, run: RunInput, prior: RunEstimate) -> RunEstimate:
        """The foreground path on a static camera, optical flow otherwise (``run.video`` is set)."""
        assert run.video is not None
        first, last = int(run.key_frames[0]), int(run.key_frames[-1])
        bg = self._background(run.video, first, last) if self.use_background else None
        if bg is not None:
            return self._foreground_run(run, prior, bg)
        return self._flow_run(run, prior)

    def _motion_detections(self, run: RunInput) -> dict[int, Detections] | None:
        """Motion blob candidates (:mod:`motion`) between the run's keyframes, or None: motion blobs off, keyframes
        too slow (``motion_key_speed``) and detections, if any, too, a moving camera, no blob found, an object slower
        than ``motion.min_speed`` (the larger of its keyframes' chord speed and its blobs' speed), or detections in
        most frames (``motion.max_coverage``) that fit the keyframes about as well as the blobs do or better
        (:meth:`_blob_key_fit`, ``motion.fit_margin``; a fit of 0 where no detection overlaps a whole keyframe): a
        person the detector sees follows its boxes, a blurred ball its blobs."""
        if self.motion is None or self.det_path is None or not self.use_background or run.video is None:
            return None
        kf, keys = run.key_frames, run.key_xyxy
        step = _key_steps(run)
        if len(step) == 0:
            return None
        if float(step.max()) < self.motion_key_speed:  # the cheapest test first: most objects are slow
            # Keyframes that barely move: a slow object, or a fast one that went out and came back between them (a
            # ball falling and bouncing back up); its detections, where there are any, tell.
            seen = None if run.detections is None else self._median_speed(run, run.detections)
            if seen is None or seen < self.motion.min_speed:
                return None
        image_wh = self._image_wh(run)
        gaps = _gaps(run)
        covered, det_fit = False, None
        if run.detections is not None and gaps:
            cover = [detection_coverage(run.detections, *g, self.det_path, image_wh) for g in gaps]
            covered = float(np.median(cover)) > self.motion.max_coverage
            if covered:
                det_fit = self._key_fit(run, run.detections)
                if (det_fit or 0.0) + self.motion.fit_margin >= 1.0:
                    return None  # no blob can fit better (IoU <= 1): the background is not worth building
        video = run.video
        first, last = int(kf[0]), int(kf[-1])
        if self._background(video, first, last) is None:
            return None  # a moving camera: every pixel differs from any background
        window = self._bg_window
        colour_bg = self._colour_bgs.get(window)
        if colour_bg is None:
            lo, hi = window
            frames = np.unique(np.linspace(lo, hi, min(self.background.sample_frames, hi - lo + 1)).astype(np.int64))
            colour_bg = colour_background(lambda i: np.asarray(video.read(i)), frames)
            self._colour_bgs[window] = colour_bg
            while len(self._colour_bgs) > self.cache_backgrounds:
                self._colour_bgs.popitem(last=False)
        if covered and (det_fit or 0.0) + self.motion.fit_margin >= self._blob_key_fit(run, colour_bg, window):
            return None
        cut = cut_edges(keys, image_wh, self.det_path.border_px).any(axis=1)
        sizes = whole_sizes(keys, cut)
        boxes = blob_boxes(
            lambda i: np.asarray(video.read(i)),
            colour_bg,
            kf,
            sizes,
            self.motion,
            components=lambda i: self._blob_components(video, colour_bg, window, i),
        )
        found = {
            f: Detections(b.astype(np.float32), np.full(len(b), self.motion.score), np.zeros(len(b), np.int64))
            for f, b in boxes.items()
            if len(b)
        }
        if not found:
            return None
        # The object's speed: its keyframes' (a lower bound: the chord over the frames between them) or its blobs'
        # (the median over frames of the fastest blob's step, :attr:`MotionParams.fastest_step`).
        speed = max(self._median_speed(run, found, self.motion.blob_path(self.det_path)) or 0.0, float(np.median(step)))
        if speed < self.motion.min_speed:
            return None
        return found

    def _blob_key_fit(self, run: RunInput, colour_bg: Float32Array, window: tuple[int, int]) -> float:
        """How well motion blobs find the object at its keyframes: mean over the keyframes showing the whole object
        (:meth:`_key_cut`) of the best IoU between the keyframe box and a box of its size on a blob's centre (0 where
        no blob is found; 0 without such keyframes). A ball's blob is the ball; a person's are limbs and fragments."""
        assert run.video is not None and self.motion is not None
        cut = self._key_cut(run)
        ious = []
        for f, box, c in zip(run.key_frames.tolist(), run.key_xyxy, cut, strict=True):
            if c:
                continue
            wh = box[2:] - box[:2]
            area = float(max(1.0, wh.prod()))
            centres, _ = sized_blobs(
                self._blob_components(run.video, colour_bg, window, int(f)),
                self.motion,
                self.motion.min_area * area,
                self.motion.max_area * area,
            )
            if len(centres) == 0:
                ious.append(0.0)
                continue
            blobs = np.concatenate([centres - wh / 2, centres + wh / 2], axis=1)
            ious.append(float(box_iou(box[None], blobs).max()))
        return float(np.mean(ious)) if ious else 0.0

    def detections_fit(self, run: RunInput, detections: Mapping[int, Detections]) -> bool:
        """Whether detections are drawn like this annotator's boxes, and see the object.

        At each keyframe the best overlapping detection (IoU >= 0.3) is scored by its IoU with the keyframe box; the
        mean must reach ``det_path_min_iou``, or ``det_fast_min_iou`` for a fast object (detections moving at least
        ``det_fit_fast_speed`` box diagonals per frame), which the frames alone cannot follow: there even loosely
        drawn detections (a motion-blurred ball) beat none. A slow object must also be found at
        ``det_path_min_coverage`` of its keyframes: a detector that sees it at a few (a model trained on other
        footage) draws a path that jumps to other objects in between. Where no detection overlaps any keyframe, only
        a fast object (by its detections or its keyframes) takes them: a blurred ball is missed exactly there.
        Keyframes showing part of the object (:meth:`_key_cut`) are left out; with none left there is nothing to
        compare, and the detections are taken.
        """
        whole = ~self._key_cut(run)
        if not whole.any():
            return True
        best = self._key_best_iou(run, detections)
        fit = _mean_fit(best, whole)
        steps = _key_steps(run)
        fast_keys = len(steps) > 0 and float(np.median(steps)) >= self.det_fit_fast_speed
        if fit is None:
            return fast_keys or self._fast_detections(run, detections)
        if fit >= self.det_path_min_iou:
            covered = float(np.mean(best[whole] >= _KEY_MATCH_IOU))
            if covered >= self.det_path_min_coverage or fast_keys:
                return True
        # The detections' speed (the costlier test) decides the rest.
        return fit >= min(self.det_path_min_iou, self.det_fast_min_iou) and self._fast_detections(run, detections)

    def _foreground_beats_detections(self, run: RunInput, detections: Mapping[int, Detections]) -> bool:
        """Whether, on a static camera, the foreground centroid predicts the annotator's boxes at the run's inner
        keyframes better than the detections do, by more than ``det_path_fg_ratio`` (:meth:`_keyframe_rms`): then the
        foreground keeps the run (with ``det_measure``, the detections are its measurements). On PETS09-S2L1 (public
        detections) the detections' error is about 1.2 times the foreground's, on generated fast motion 0.05 to 0.3
        times. False on a moving camera, or where the keyframes are too few to tell (fewer than two usable triples)."""
        if self.det_path_fg_ratio is None or run.video is None or len(run.key_frames) < 4 or not self.use_background:
            return False
        kf = run.key_frames
        bg = self._background(run.video, int(kf[0]), int(kf[-1]))
        if bg is None:
            return False
        det_off = self._key_detection_offsets(run, detections, self._key_cut(run))
        rms_det, rms_fg = self._keyframe_rms(run, run.video, bg, det_off)
        return rms_det is not None and rms_fg is not None and rms_det > self.det_path_fg_ratio * rms_fg

    def _keyframe_rms(
        self,
        run: RunInput,
        video: FrameSource,
        bg: Float32Array,
        det_off: Sequence[Float64Array | None],
        fg_sq: Float64Array | None = None,
    ) -> tuple[float | None, float | None]:
        """How well the detections and the foreground centroid each predict the annotator's box centre at an inner
        keyframe from its neighbours: the error's standard deviation in pixels (:func:`interp_residual_rms`) of the
        detector's offsets ``det_off`` (:meth:`_key_detection_offsets`) and of the foreground offsets (``fg_sq``:
        :meth:`_key_foreground_residuals` when the caller has them); None with fewer than two usable triples."""
        kf = run.key_frames
        key_c = xyxy_to_cxcywh(run.key_xyxy)
        det_px = np.full((len(kf), 2), np.nan)
        for r, (kc, o) in enumerate(zip(key_c, det_off, strict=True)):
            if o is not None:
                det_px[r] = o[:2] * kc[2:] / np.exp(o[2:])
        if fg_sq is None:
            fg_sq = self._key_foreground_residuals(video, bg, kf, key_c)
        return interp_residual_rms(det_px, kf), residual_rms(fg_sq.sum(axis=1))

    def _key_best_iou(self, run: RunInput, detections: Mapping[int, Detections]) -> Float64Array:
        """(K,) IoU of each keyframe box with its best detection (0 where none)."""
        best = np.zeros(len(run.key_frames))
        for r, (f, box) in enumerate(zip(run.key_frames.tolist(), run.key_xyxy, strict=True)):
            d = detections.get(int(f))
            if d is not None and len(d):
                best[r] = float(box_iou(box[None], d.xyxy.astype(np.float64)).max())
        return best

    def _key_fit(self, run: RunInput, detections: Mapping[int, Detections]) -> float | None:
        """Mean IoU of the keyframe boxes with their best overlapping detection (IoU >= 0.3), keyframes showing part
        of the object left out (a box cut by the image border says nothing about how the annotator draws whole
        objects); None when no detection overlaps a whole keyframe."""
        return _mean_fit(self._key_best_iou(run, detections), ~self._key_cut(run))

    def _fast_detections(self, run: RunInput, detections: Mapping[int, Detections]) -> bool:
        """Whether the detections of the object's size move at least ``det_fit_fast_speed`` box diagonals per frame
        (median over the run's gaps)."""
        speed = self._median_speed(run, detections)
        return speed is not None and speed >= self.det_fit_fast_speed

    def _speed(self, run: RunInput, detections: Mapping[int, Detections]) -> float:
        """The object's speed in box diagonals per frame: the larger of its detections' (:meth:`_median_speed`, 0
        when they do not tell) and its keyframes' chord speed (median over the gaps)."""
        return max(self._median_speed(run, detections) or 0.0, float(np.median(_key_steps(run))))

    def _median_speed(
        self, run: RunInput, detections: Mapping[int, Detections], path: DetPathParams | None = None
    ) -> float | None:
        """Median over the run's gaps of :func:`detection_speed` (None: no gap tells; ``path`` replaces
        ``det_path``)."""
        image_wh = self._image_wh(run)
        speeds = [detection_speed(detections, *g, path or self.det_path, image_wh) for g in _gaps(run)]
        known = [v for v in speeds if v is not None]
        return float(np.median(known)) if known else None

    def _image_wh(self, run: RunInput) -> tuple[int, int] | None:
        """(width, height) of the run's frames in pixels, or None without a video."""
        if run.video is None:
            return None
        g = self._frame(run.video, int(run.key_frames[0]))
        return int(g.shape[1]), int(g.shape[0])

    def _key_cut(self, run: RunInput) -> npt.NDArray[np.bool_]:
        """(K,) whether each keyframe box shows part of the object only: cut by the image border, or much smaller
        than a neighbouring keyframe (:func:`partial_keyframes`); its extent says nothing about the detector's."""
        p = self.det_path or DetPathParams()
        cut = cut_edges(run.key_xyxy, self._image_wh(run), p.border_px).any(axis=1)
        return cut | partial_keyframes(run.key_xyxy, p.partial_ratio)

    def _with_detection_path(
        self,
        run: RunInput,
        base: RunEstimate,
        detections: Mapping[int, Detections],
        path: DetPathParams | None = None,
        centres_only: bool = False,
    ) -> RunEstimate:
        """Pin ``base`` to the detections on each gap's cheapest path (:func:`detection_path`; ``path`` replaces
        ``det_path``'s costs). With ``centres_only`` the path boxes keep their centres and take the size interpolated
        between the keyframes (a keyframe showing part of the object takes the whole one's, :func:`whole_sizes`).

        Chosen detections are corrected for the detector's offset to this annotator's boxes (measured at the
        keyframes) and become anchors; between anchors ``base`` is shifted by the linear blend of its misfit at the
        two neighbouring anchors. Uncertainty: the bridge between anchors plus the size of that shift; ``base``'s
        own between two keyframes with no detection in between.
        """
        path = path or self.det_path
        assert path is not None
        kf = run.key_frames
        t0 = int(kf[0])
        n = len(base.xyxy)
        anchor = np.zeros(n, bool)
        anchor[kf - t0] = True
        target = xyxy_to_cxcywh(base.xyxy.copy())
        image_wh = self._image_wh(run)
        key_cut = self._key_cut(run)
        det_score = np.ones(n)
        key_wh = whole_sizes(run.key_xyxy, key_cut) if centres_only else None
        # Appearance tells apart people whose boxes move alike; a ball's box (centres only) is mostly its streak.
        # The keyframes showing the whole object give the reference colours, each read once for both its gaps.
        key_hists = None
        if self.det_appearance and not centres_only and run.video is not None:
            key_hists = keyframe_histograms(run.video, kf.tolist(), run.key_xyxy, (~key_cut).tolist())
        key_off = self._key_detection_offsets(run, detections, key_cut)
        offset_weight = self._offset_weight(key_off)
        for k in range(len(kf) - 1):
            a, b = int(kf[k]), int(kf[k + 1])
            if b - a < 2:
                continue
            app = None
            if key_hists is not None and self.det_appearance and run.video is not None:
                app = appearance_cost(run.video, key_hists[k : k + 2], self.det_appearance)
            boxes, scores = detection_path(
                detections, a, b, run.key_xyxy[k], run.key_xyxy[k + 1], path, image_wh=image_wh, appearance=app
            )
            # Applied as far as it is a convention, not one keyframe detection's error (:meth:`_offset_weight`).
            off_a, off_b = key_off[k], key_off[k + 1]
            off_a = off_b if off_a is None else off_a
            off_b = off_a if off_b is None else off_b
            for i in range(1, b - a):
                if not np.isfinite(boxes[i, 0]):
                    continue
                d = xyxy_to_cxcywh(boxes[i : i + 1])[0]
                s = i / (b - a)
                if off_a is not None and off_b is not None:
                    d = correct_detections(d, offset_weight * ((1.0 - s) * off_a + s * off_b))
                if key_wh is not None:
                    d[2:] = (1.0 - s) * key_wh[k] + s * key_wh[k + 1]
                target[a + i - t0] = d
                anchor[a + i - t0] = True
                det_score[a + i - t0] = scores[i]
        rows = np.flatnonzero(anchor)
        base_c = xyxy_to_cxcywh(base.xyxy)
        misfit = target[rows] - base_c[rows]
        frames = np.arange(n, dtype=np.float64)
        shift = np.stack([np.interp(frames, rows, misfit[:, j]) for j in range(4)], axis=1)
        out = base_c + shift
        out[rows] = target[rows]
        xyxy = cxcywh_to_xyxy(out)
        xyxy[kf - t0] = run.key_xyxy
        scale = box_scale(run.key_xyxy)
        u = bridge_uncertainty(rows + t0, scale) + np.hypot(shift[:, 0], shift[:, 1])
        # Between two keyframes with no detection on the path in between, the visual estimate's own uncertainty.
        is_key = np.zeros(n, bool)
        is_key[kf - t0] = True
        right = rows[np.clip(np.searchsorted(rows, np.arange(n)), 0, len(rows) - 1)]
        left = rows[np.clip(np.searchsorted(rows, np.arange(n), side="right") - 1, 0, len(rows) - 1)]
        plain = is_key[left] & is_key[right]
        u[plain] = base.uncertainty[plain]
        # Between path boxes of different sizes (a keyframe showing part of the object next to a whole detection)
        # the size is a guess: half the size change, most in the middle.
        span = np.maximum(right - left, 1)
        s = (np.arange(n) - left) / span
        dsize = np.abs(target[right, 2:] - target[left, 2:]).sum(axis=1)
        u = u + 2.0 * s * (1.0 - s) * dsize
        u[rows] = 0.0
        inner = anchor & ~is_key
        u[inner] = self._anchor_uncertainty(rows, target[rows], det_score[rows], is_key[rows], scale)[inner[rows]]
        # A frame whose box the path took from a detection was measured there: what doubt remains is the detection's.
        # One between the path's detections, or on two detections at once (objects the path could take for each
        # other), is where the next keyframe is worth placing.
        on_det, other_det = detection_agreement(xyxy, t0, detections)
        on_det = np.where(inner, on_det, 0.0)
        u = u * (self.det_agree_floor + (1.0 - self.det_agree_floor) * (1.0 - on_det))
        u = u * (1.0 + self.det_ambiguity * other_det)
        conf = confidence_from_uncertainty(u, scale)
        conf[kf - t0] = 1.0
        reason = "distance from keyframes and detections on the path"
        est = RunEstimate(xyxy, conf, u, [self.name] * n, reason)
        est.support = anchor.astype(np.float64)
        return est

    def _key_detection_offsets(
        self, run: RunInput, detections: Mapping[int, Detections], key_cut: npt.NDArray[np.bool_]
    ) -> list[Float64Array | None]:
        """The detector's offset to the annotator's box (:func:`detection_offset`) at each keyframe showing the whole
        object; None at a keyframe cut by the border or much smaller than its neighbours (``key_cut``), or where no
        detection overlaps the box by ``det_min_iou``."""
        key_c = xyxy_to_cxcywh(run.key_xyxy)
        return [
            None if cut else detection_offset(detections.get(int(f)), kc, self.det_min_iou)
            for f, kc, cut in zip(run.key_frames.tolist(), key_c, key_cut, strict=True)
        ]

    def _offset_weight(self, key_off: Sequence[Float64Array | None]) -> Float64Array:
        """(4,) how much of the detector's offset at the keyframes to apply per component (:func:`detection_offset`;
        ``key_off`` per keyframe, None where it shows part of the object or no detection overlaps it).

        The offsets at the run's keyframes showing the whole object are the detector's convention (their mean ``m``)
        plus each keyframe detection's own error (their variance ``v``, ``ddof=1``); the weight is the mean's share of
        ``m^2 + v``, at least ``det_offset_share``; with fewer than two offsets, ``det_offset_share``. Offsets the
        same at every keyframe are applied whole. Offsets that are only errors get less the more keyframes there
        are: chance agreement leaves them on average (normal errors, ``det_offset_share`` 0.25) a weight of 0.49 with
        two keyframes, 0.38 with three, 0.31 with five.
        """
        known = np.array([o for o in key_off if o is not None]).reshape(-1, 4)
        if len(known) < 2:
            return np.full(4, self.det_offset_share)
        mean, var = known.mean(axis=0), known.var(axis=0, ddof=1)
        convention = mean**2 / np.maximum(mean**2 + var, 1e-12)
        return np.asarray(np.clip(convention, self.det_offset_share, 1.0))

    def _anchor_uncertainty(
        self,
        rows: npt.NDArray[np.int64],
        boxes: Float64Array,
        scores: Float64Array,
        is_key: npt.NDArray[np.bool_],
        scale: float,
    ) -> Float64Array:
        """Expected error (pixels) of each box on a detection path: (R,) for (R,) frame ``rows`` with (R, 4) ``cx, cy,
        w, h`` boxes (keyframes included, exact), (R,) detection scores and (R,) keyframe flags.

        ``det_sigma * scale`` times ``2 - score``, plus how far the box departs from the line through its two
        neighbours on the path (centre distance plus half the size change): a detection the detector drew off the
        object, or on another one, breaks the chain, while the keyframes' own neighbours are exact. 0 at keyframes.
        """
        u = self.det_sigma * scale * (2.0 - np.clip(scores, 0.0, 1.0))
        if len(rows) >= 3:
            t = rows.astype(np.float64)
            s = ((t[1:-1] - t[:-2]) / (t[2:] - t[:-2]))[:, None]
            pred = (1.0 - s) * boxes[:-2] + s * boxes[2:]
            r = boxes[1:-1] - pred
            u[1:-1] += np.hypot(r[:, 0], r[:, 1]) + 0.5 * (np.abs(r[:, 2]) + np.abs(r[:, 3]))
        return np.where(is_key, 0.0, u)

    def _foreground_run(self, run: RunInput, prior: RunEstimate, bg: Float32Array) -> RunEstimate:
        """Centres from foreground mean shift (offset-calibrated at the keyframes), smoothed with the keyframes.

        Every in-between frame with a measurement adds ``z_t = c_t + e``, ``e ~ N(0, (sigma * w)^2)``, to the
        constant-velocity smoother in which keyframes are near-exact; one robust pass drops measurements more than
        ``robust_k`` standard deviations from the first solution (a passer-by in the window). Sizes come from the
        prior. Uncertainty (pixels) is the prior's own (distance from keyframes) plus the distance between the final
        path and the prior path, of which only ``agree_discount`` counts where both independent passes (from either
        keyframe) found the same object.
        """
        assert run.video is not None
        kf = run.key_frames
        t0 = int(kf[0])
        n = int(kf[-1]) - t0 + 1
        key_c = xyxy_to_cxcywh(run.key_xyxy)
        pc = xyxy_to_cxcywh(prior.xyxy)
        meas = np.full((n, 2), np.nan)
        sig_rel = np.full(n, self.meas_sigma)
        agree = np.zeros(n, bool)  # both independent passes (from either keyframe) found the same object
        for k in range(len(kf) - 1):
            a, b = int(kf[k]), int(kf[k + 1])
            if b - a < 2:
                continue
            bgp = self._gap_background(key_c[k], key_c[k + 1], b - a)
            offs = []
            for f, kc in ((a, key_c[k]), (b, key_c[k + 1])):
                o = self._key_offset(run.video, bg, f, kc, bgp)
                offs.append(np.zeros(2) if o is None else o)
            sl = slice(a - t0, b - t0 + 1)
            s = np.linspace(0.0, 1.0, b - a + 1)[:, None]
            off = (1 - s) * offs[0] + s * offs[1]
            fwd = self._fg_pass(run.video, bg, a, b, key_c[k, :2], pc[sl], off, bgp)
            bwd = self._fg_pass(run.video, bg, b, a, key_c[k + 1, :2], pc[sl][::-1], off[::-1], bgp)[::-1]
            gap_meas = np.full((b - a + 1, 2), np.nan)
            gap_sig = np.full(b - a + 1, self.meas_sigma)
            for i in range(1, b - a):
                row = a + i - t0
                w = max(pc[row, 2], 1.0)
                if np.isfinite(fwd[i, 0]) and np.isfinite(bwd[i, 0]) and np.hypot(*(fwd[i] - bwd[i])) < 0.25 * w:
                    gap_meas[i] = (1 - s[i, 0]) * fwd[i] + s[i, 0] * bwd[i]  # both passes found the same object
                    gap_sig[i] = self.agree_sigma
                    agree[row] = True
                    continue
                c, _ = mean_shift(self._frame(run.video, a + i), bg, pc[row, :2], pc[row, 2:], off[i], bgp)
                if c is not None:
                    gap_meas[i] = c
            meas[sl][1:-1] = gap_meas[1:-1]
            sig_rel[sl][1:-1] = gap_sig[1:-1]
        scale = box_scale(run.key_xyxy)
        sigma = sig_rel * np.maximum(pc[:, 2], 1.0)
        frames = np.arange(n, dtype=np.int64)
        key_rows = kf - t0

        def solve_z(z: Float64Array, var: Float64Array, q_rel: float) -> Float64Array:
            # Keyframes are near-exact measurements: the path passes through them.
            params = SmootherParams("cv", q=q_rel * scale * scale, r=1e-4, prior_var=1e4 * scale * scale)
            var = var.copy()
            var[key_rows] = 1e-4
            z = z.copy()
            z[key_rows] = key_c[:, :2]
            return keyframe_states(frames, z, params, var)[:, 0, :]

        def solve(valid: npt.NDArray[np.bool_], q_rel: float) -> Float64Array:
            return solve_z(np.where(valid[:, None], meas, 0.0), np.where(valid, sigma**2, np.inf), q_rel)

        valid = np.isfinite(meas[:, 0])
        valid[key_rows] = False
        # The smoothest motion model that explains the measurements: raise the process noise until the median
        # normalised residual is small (slow walkers keep heavy smoothing, bounces and sharp turns get followed).
        centre = pc[:, :2]
        resid = np.zeros(n)
        q_rel = self.meas_q_rel_steps[0]
        for q_rel in self.meas_q_rel_steps if valid.any() else ():
            centre = solve(valid, q_rel)
            resid = np.linalg.norm(np.where(valid[:, None], meas - centre, 0.0), axis=1)
            if float(np.median(resid[valid] / sigma[valid])) <= self.max_median_residual:
                break
        inlier = valid & (resid <= self.robust_k * sigma)
        if inlier.sum() < valid.sum():
            centre = solve(inlier, q_rel)
            resid = np.linalg.norm(np.where(inlier[:, None], meas - centre, 0.0), axis=1)
        var = np.where(inlier, sigma**2, np.inf)
        z = np.where(inlier[:, None], meas, 0.0)
        # Candidate paths: the foreground (with detections as measurements when given), with the keyframes'
        # appearance as measurements too, the geometric prior; per gap the appearance picks one.
        supported = np.zeros(n, bool)
        # How well the keyframes' foreground offsets predict each other: the detections' weight and the axis trust
        # both read it.
        det_measure = run.detections is not None and self.det_measure
        fg_sq = self._key_foreground_residuals(run.video, bg, kf, key_c) if det_measure or self.axis_trust else None
        if det_measure:
            centre, supported, z, var, q_rel = self._with_detection_measurements(
                run, run.video, bg, pc, centre, z, var, sigma, q_rel, solve_z, fg_sq
            )
        if self.template is not None:
            zt = self._template_measurements(run.video, bg, kf, key_c, pc, centre)
            z_t, var_t = _fuse(z, var, zt, (self.template_sigma_ratio * sigma) ** 2)
            cands = [centre, solve_z(z_t, var_t, q_rel), pc[:, :2], 0.5 * (centre + pc[:, :2])][: self.n_cands]
            choice = self._appearance_check(run.video, bg, kf, key_c, cands)
            centre = np.take_along_axis(np.stack(cands), choice[None, :, None], axis=0)[0]
            supported &= choice == 0
        # How far the measurements pulled the path from the prior, before the axis trust takes part of it back: the
        # two disagree there, whichever is right, and that is what the uncertainty below reads.
        departure = np.hypot(*(centre - pc[:, :2]).T)
        if fg_sq is not None and self.axis_trust:
            trust = self._axis_trust(run, fg_sq, key_c)
            centre = pc[:, :2] + trust * (centre - pc[:, :2])
            if self.prior_lowpass:
                smooth = lowpass_through_keys(pc[:, :2], key_rows, self.prior_lowpass)
                centre = centre + (1.0 - trust) * (smooth - pc[:, :2])
        out = pc.copy()
        out[:, :2] = centre
        # Expected error (pixels): the geometric prior's own uncertainty (distance from keyframes) plus how far the
        # measurements pulled the path away from it. Measured on PETS09-S2L1, this ranks bad frames far better than
        # the measurement residual does (which stays small when a pass follows the wrong person consistently).
        # A departure that both independent passes confirm is trusted more (``agree_discount`` of it remains).
        trust = self.agree_discount + (1.0 - self.agree_discount) * (1.0 - uniform_filter1d(agree * 1.0, 5))
        u = prior.uncertainty + departure * trust
        # Frames without a measurement (hidden, lost) follow the prior blindly: ``miss_sigma`` box widths.
        u = u + self.miss_sigma * np.maximum(pc[:, 2], 1.0) * uniform_filter1d((~inlier) * 1.0, 3, mode="nearest")
        if run.detections is not None and not self.det_measure:
            key_off = self._key_detection_offsets(run, run.detections, self._key_cut(run))
            weight = self._offset_weight(key_off)
            for k in range(len(kf) - 1):
                a, b = int(kf[k]), int(kf[k + 1])
                if b - a < 2:
                    continue
                sl = slice(a - t0, b - t0 + 1)
                tw = np.where(inlier[sl], 1.0, 0.0)
                out[sl], sup = self._fuse_detections(
                    run.detections, a, b, out[sl], tw, key_c[k], key_c[k + 1], key_off[k : k + 2], weight
                )
                supported[sl] |= sup
        u = np.where(supported, 0.5 * u, u)
        u[key_rows] = 0.0
        xyxy = cxcywh_to_xyxy(out)
        xyxy[key_rows] = run.key_xyxy
        conf = confidence_from_uncertainty(u, scale)
        conf[key_rows] = 1.0
        methods = [self.name] * n
        reason = "distance from keyframes and departure from the geometric path" + (
            " and detection support" if run.detections is not None else ""
        )
        est = RunEstimate(xyxy, conf, u, methods, reason)
        est.support = inlier.astype(np.float64)
        return est

    def _with_detection_measurements(
        self,
        run: RunInput,
        video: FrameSource,
        bg: Float32Array,
        pc: Float64Array,
        centre: Float64Array,
        meas: Float64Array,
        var: Float64Array,
        sigma: Float64Array,
        q_rel: float,
        solve: Callable[[Float64Array, Float64Array, float], Float64Array],
        fg_sq: Float64Array | None = None,
    ) -> tuple[Float64Array, npt.NDArray[np.bool_], Float64Array, Float64Array, float]:
        """Add offset-corrected detections (:mod:`detmeas`) as measurements and smooth again (``fg_sq``: the
        keyframes' :meth:`_key_foreground_residuals` when the caller has them).

        A detection's standard deviation is the foreground measurement's times the ratio of how well each predicts
        the annotator's box at an inner keyframe from its neighbours (:func:`interp_residual_rms`; ``det_sigma_ratio``
        with fewer than two usable keyframe triples). Detections farther than ``det_gate`` (box widths and heights)
        from the foreground path are dropped; the process noise rises as for the foreground alone. Returns the new
        centres (n, 2), which frames a detection measured, the fused measurements (n, 2) and variances (n,), and the
        relative process noise the smoother settled on (``q_rel`` where no detection measures).
        """
        assert run.detections is not None
        kf = run.key_frames
        t0 = int(kf[0])
        n = len(pc)
        # Applied as far as it is a convention (:meth:`_offset_weight`), as on the detection path.
        key_cut = self._key_cut(run)
        det_off = self._key_detection_offsets(run, run.detections, key_cut)
        offset_weight = self._offset_weight(det_off)
        rms_det, rms_fg = self._keyframe_rms(run, video, bg, det_off, fg_sq)
        ratio = self.det_sigma_ratio if rms_det is None or rms_fg is None else rms_det / max(rms_fg, 1e-3)
        ratio = float(np.clip(ratio, 0.5, 20.0))
        zd = np.full((n, 2), np.nan)
        for k in range(len(kf) - 1):
            a, b = int(kf[k]), int(kf[k + 1])
            oa, ob = det_off[k], det_off[k + 1]
            if b - a < 2 or (oa is None and ob is None and not key_cut[k : k + 2].any()):
                continue  # no detection fits either keyframe: the detector does not see this object
            if oa is None and ob is None:
                oa = ob = np.zeros(4)  # the keyframes are cut: their offsets say nothing, the detections count as drawn
            oa = ob if oa is None else oa
            ob = oa if ob is None else ob
            assert oa is not None and ob is not None
            sl = slice(a - t0, b - t0 + 1)
            path = pc[sl].copy()
            path[:, :2] = centre[sl]
            zd[sl] = detection_centres(
                run.detections, a, path, offset_weight * oa, offset_weight * ob, self.det_match_iou
            )
        has_d = np.isfinite(zd[:, 0])
        rel = (zd - centre) / np.maximum(pc[:, 2:], 1.0)  # in box widths and heights
        has_d &= np.hypot(rel[:, 0], rel[:, 1]) <= self.det_gate
        has_d[kf - t0] = False
        if not has_d.any():
            return centre, has_d, meas, var, q_rel
        logger.debug("guided: %d detection measurements, sigma ratio %.2f", int(has_d.sum()), ratio)
        zd = np.where(has_d[:, None], zd, np.nan)
        z, var = _fuse(meas, var, zd, (ratio * sigma) ** 2)
        # As for the foreground alone: the smoothest motion model that explains the measurements (at least as
        # flexible as the foreground's own).
        ok = np.isfinite(var)
        ok[kf - t0] = False
        steps = [q for q in self.meas_q_rel_steps if q >= q_rel] or [q_rel]
        out = centre
        q = q_rel
        for q in steps:
            out = solve(z, var, q)
            resid = np.hypot(*(z[ok] - out[ok]).T) / np.sqrt(var[ok])
            if float(np.median(resid)) <= self.max_median_residual:
                break
        return out, has_d, z, var, q

    def _gap_background(self, key_a: Float64Array, key_b: Float64Array, length: int) -> BackgroundParams:
        """Foreground settings of one gap between keyframe boxes ``key_a`` and ``key_b`` (cx, cy, w, h) ``length``
        frames apart: slow objects (people walking, at most ``precise_max_speed`` box widths per frame) get the
        precise centroid, fast ones the reach of the whole box (``precise_iters=0``)."""
        speed = float(np.hypot(*(key_b[:2] - key_a[:2]))) / max(length, 1)
        slow = speed <= self.precise_max_speed * max(float(min(key_a[2], key_b[2])), 1.0)
        return self.background if slow else replace(self.background, precise_iters=0)

    def _key_offset(
        self, video: FrameSource, bg: Float32Array, frame: int, key: Float64Array, params: BackgroundParams
    ) -> Float64Array | None:
        """Foreground centroid minus box centre (2,) in pixels at a keyframe box ``key`` (cx, cy, w, h), measured
        with the window a gap's mean shift ends on under ``params``; None where the box holds no foreground."""
        g = self._frame(video, frame)
        cen, _ = foreground_centroid(g, bg, key[:2], key[2:], params, precise=params.precise_iters > 0)
        return None if cen is None else cen - key[:2]

    def _key_foreground_residuals(
        self, video: FrameSource, bg: Float32Array, kf: npt.NDArray[np.int64], key_c: Float64Array
    ) -> Float64Array:
        """How well the foreground offset at each inner keyframe is predicted from its neighbours: (K - 2, 2) squared
        residuals per axis (:func:`interp_residuals`, px^2; NaN where a keyframe holds no foreground), each triple of
        keyframes measured with the estimator its gaps' measurements use (:meth:`_gap_background`): the precise
        window where both gaps use it, the whole box otherwise."""
        gap_bg = [self._gap_background(key_c[k], key_c[k + 1], int(kf[k + 1] - kf[k])) for k in range(len(kf) - 1)]
        precise = np.array(
            [gap_bg[k].precise_iters > 0 and gap_bg[k + 1].precise_iters > 0 for k in range(len(kf) - 2)],
            bool,
        )
        sq = np.full((max(len(kf) - 2, 0), 2), np.nan)
        for flag, params in ((True, self.background), (False, replace(self.background, precise_iters=0))):
            use = precise == flag
            if not use.any():
                continue
            px = np.full((len(kf), 2), np.nan)
            for r, (f, kc) in enumerate(zip(kf.tolist(), key_c, strict=True)):
                o = self._key_offset(video, bg, int(f), kc, params)
                if o is not None:
                    px[r] = o
            for axis in range(2):
                sq[:, axis] = np.where(use, interp_residuals(px[:, axis : axis + 1], kf), sq[:, axis])
        return sq

    def _prior_residuals(self, run: RunInput, key_c: Float64Array, reach: int = 3) -> Float64Array:
        """How well the geometric prior predicts each inner keyframe's centre from the others: (K - 2, 2) squared
        residuals per axis in px^2, each keyframe left out of a prior through up to ``reach`` keyframes on either
        side (the smoother's answer between two keyframes hardly depends on keyframes farther away)."""
        kf = run.key_frames
        sq = np.full((max(len(kf) - 2, 0), 2), np.nan)
        for j in range(1, len(kf) - 1):
            keep = [i for i in range(max(0, j - reach), min(len(kf), j + reach + 1)) if i != j]
            sub = RunInput(run.track_id, kf[keep], run.key_xyxy[keep])
            est = self.prior.interpolate_run(sub)
            row = int(kf[j] - kf[keep[0]])
            sq[j - 1] = (xyxy_to_cxcywh(est.xyxy[row : row + 1])[0, :2] - key_c[j, :2]) ** 2
        return sq

    def _axis_trust(self, run: RunInput, v_f: Float64Array, key_c: Float64Array) -> Float64Array:
        """Share (n, 2) of the foreground path's departure from the geometric prior kept per frame and axis (x, y).

        Both are judged at the inner keyframes, each left out. The foreground offset's squared error per keyframe,
        ``v_f`` (K - 2, 2), is read off its interpolation from its neighbours (:meth:`_key_foreground_residuals`).
        The prior's error grows with the distance to the keyframes as a bridge of white-noise acceleration does,
        ``alpha * (d1 d2 / L)^3`` at ``d1`` and ``d2`` frames from the keyframes of a gap of ``L``; ``alpha`` is read
        off the prior's squared errors at the keyframes left out (:meth:`_prior_residuals`), each over its own
        ``(d1 d2 / L)^3`` (with ``d1, d2`` the distances to its neighbours). The frames of a gap of ``L`` keep the
        precision weight ``v_p / (v_p + v_f)`` of the prior's error mid-gap, ``v_p = alpha (L / 4)^3`` (at least
        ``axis_trust_floor_px`` squared): little in a short gap, where the prior is good, more in a long one (with
        keyframes placed unevenly, as an annotator does, one average weight let short gaps decide for long ones).
        On PETS09-S2L1 people walk at a steady height: with a keyframe every 20 frames the prior's vertical error is
        1.33 px rms against the foreground centroid's 2.88 (legs, shadows), while horizontally it is 5.08 against
        1.85. 1 everywhere (the path whole) with fewer than two usable inner keyframes."""
        kf = run.key_frames
        n = int(kf[-1] - kf[0]) + 1
        out = np.ones((n, 2))
        if len(kf) < 4:
            return out
        v_p = self._prior_residuals(run, key_c)
        ok = np.isfinite(v_f).all(axis=1) & np.isfinite(v_p).all(axis=1)
        if ok.sum() < 2:
            return out
        d1, d2 = np.diff(kf)[:-1].astype(np.float64), np.diff(kf)[1:].astype(np.float64)
        shape = (d1 * d2 / (d1 + d2)) ** 3  # the bridge's variance at a left-out keyframe, per unit alpha
        alpha = v_p[ok].sum(axis=0) / max(float(shape[ok].sum()), 1e-12)
        vf = v_f[ok].mean(axis=0)
        frames = np.arange(int(kf[0]), int(kf[-1]) + 1)
        seg = np.clip(np.searchsorted(kf, frames, side="right") - 1, 0, len(kf) - 2)
        bridge = (np.diff(kf)[seg].astype(np.float64) / 4.0) ** 3  # mid-gap, held over the gap
        # The prior's error is taken as at least the annotation's own (``axis_trust_floor_px``): keyframes placed at
        # the same phase of a periodic motion (a bounce keyed once per cycle) fit it exactly however it moves between.
        vp = np.maximum(bridge[:, None] * alpha[None, :], self.axis_trust_floor_px**2)
        return np.asarray(vp / (vp + vf[None, :]))

    def _template_measurements(
        self,
        video: FrameSource,
        bg: Float32Array,
        kf: npt.NDArray[np.int64],
        key_c: Float64Array,
        pc: Float64Array,
        centre: Float64Array,
    ) -> Float64Array:
        """Centres (n, 2) where the keyframes' appearance matches near ``centre`` (:mod:`template`), NaN elsewhere."""
        assert self.template is not None
        t0 = int(kf[0])
        out = np.full((len(pc), 2), np.nan)
        for k in range(len(kf) - 1):
            a, b = int(kf[k]), int(kf[k + 1])
            if b - a < 2:
                continue
            size = (
                round(0.5 * (key_c[k, 2] + key_c[k + 1, 2])),
                round(0.5 * (key_c[k, 3] + key_c[k + 1, 3])),
            )
            ta = cut_template(self._frame(video, a), bg, key_c[k, :2], size)
            tb = cut_template(self._frame(video, b), bg, key_c[k + 1, :2], size)
            if ta is None or tb is None:
                continue
            for i in range(1, b - a):
                c, cost = match_centre(
                    self._frame(video, a + i), bg, ta, tb, i / (b - a), centre[a + i - t0], self.template
                )
                if c is not None and cost <= self.template_max_cost:
                    out[a + i - t0] = c
        return out

    def _appearance_check(
        self,
        video: FrameSource,
        bg: Float32Array,
        kf: npt.NDArray[np.int64],
        key_c: Float64Array,
        cands: list[Float64Array],
        gaps: Sequence[int] | None = None,
    ) -> npt.NDArray[np.int64]:
        """Per gap, the candidate path (each (n, 2) centres) that the keyframes' appearance matches best on average
        (:func:`path_cost`): (n,) index into ``cands`` per frame. The first wins unless another is better by
        ``appearance_margin``, or where the appearance matches no candidate (mean cost above ``template_max_cost``).
        A foreground path that slid onto a neighbour loses to one that stayed on the person. ``gaps``: the gap
        indices to check (None: all); the others keep the first candidate."""
        assert self.template is not None
        t0 = int(kf[0])
        out = np.zeros(len(cands[0]), np.int64)
        for k in range(len(kf) - 1) if gaps is None else gaps:
            a, b = int(kf[k]), int(kf[k + 1])
            if b - a < 2 or len(cands) < 2:
                continue
            size = (round(0.5 * (key_c[k, 2] + key_c[k + 1, 2])), round(0.5 * (key_c[k, 3] + key_c[k + 1, 3])))
            ta = cut_template(self._frame(video, a), bg, key_c[k, :2], size)
            tb = cut_template(self._frame(video, b), bg, key_c[k + 1, :2], size)
            if ta is None or tb is None:
                continue
            costs = np.zeros((len(cands), b - a - 1))
            for i in range(1, b - a):
                g = self._frame(video, a + i)
                for c, path in enumerate(cands):
                    costs[c, i - 1] = path_cost(g, bg, ta, tb, i / (b - a), path[a + i - t0], self.template)
            if not np.isfinite(costs).all():
                continue
            mean = costs.mean(axis=1)
            mean[1:] += self.appearance_margin
            best = int(np.argmin(mean))
            if mean[best] <= self.template_max_cost:  # above it the appearance matches nowhere: no evidence
                out[a - t0 + 1 : b - t0] = best
        return out

    def _fg_pass(
        self,
        video: FrameSource,
        bg: Float32Array,
        start: int,
        stop: int,
        centre: Float64Array,
        prior: Float64Array,
        offset: Float64Array,
        params: BackgroundParams,
    ) -> Float64Array:
        """Sequential foreground mean shift from a keyframe: (n, 2) centres, NaN where the object was lost.

        Each step starts from the last centre plus the last velocity (the prior's velocity at first), so fast
        motion that leaves the prior path far behind is still followed.
        """
        step = 1 if stop > start else -1
        n = abs(stop - start) + 1
        out = np.full((n, 2), np.nan)
        out[0] = centre
        c = np.asarray(centre, np.float64)
        vel = prior[1, :2] - prior[0, :2] if n > 1 else np.zeros(2)
        lost = 0
        for i in range(1, n):
            guess = c + vel
            found, _ = mean_shift(self._frame(video, start + i * step), bg, guess, prior[i, 2:], offset[i], params)
            if found is None:
                lost += 1
                if lost > 2:
                    break
                c = guess
                continue
            lost = 0
            vel = found - c
            c = found
            out[i] = found
        return out

    def _flow_run(self, run: RunInput, prior: RunEstimate) -> RunEstimate:
        """Optical-flow passes forward and backward, drift-corrected to both keyframes and blended."""
        assert run.video is not None
        kf = run.key_frames
        t0 = int(kf[0])
        key_c = xyxy_to_cxcywh(run.key_xyxy)
        out = xyxy_to_cxcywh(prior.xyxy)
        u = prior.uncertainty.copy()
        scale = box_scale(run.key_xyxy)
        supported = np.zeros(len(out), bool)
        key_off: list[Float64Array | None] = []
        weight = np.ones(4)
        if run.detections is not None:
            key_off = self._key_detection_offsets(run, run.detections, self._key_cut(run))
            weight = self._offset_weight(key_off)
        for k in range(len(kf) - 1):
            a, b = int(kf[k]), int(kf[k + 1])
            if b - a < 2:
                continue
            length = float(b - a)
            vel = (key_c[k + 1, :2] - key_c[k, :2]) / length
            fwd, cf = self._propagate(run.video, a, b, key_c[k], vel)
            bwd, cb = self._propagate(run.video, b, a, key_c[k + 1], -vel)
            bwd, cb = bwd[::-1], cb[::-1]
            s = np.arange(b - a + 1, dtype=np.float64)[:, None] / length  # 0 at a, 1 at b
            fwd_c = fwd + s * (key_c[k + 1] - fwd[-1])
            bwd_c = bwd + (1.0 - s) * (key_c[k] - bwd[0])
            wf = cf * (1.0 - s[:, 0])
            wb = cb * s[:, 0]
            sl = slice(a - t0, b - t0 + 1)
            p = out[sl]
            blend = (wf[:, None] * fwd_c + wb[:, None] * bwd_c + self.prior_weight * p) / (wf + wb + self.prior_weight)[
                :, None
            ]
            disagree = np.hypot(*(fwd_c[:, :2] - bwd_c[:, :2]).T) + 0.5 * np.abs(fwd_c[:, 2:] - bwd_c[:, 2:]).sum(1)
            track_conf = np.clip(wf + wb, 0.0, 1.0)
            # Two passes that followed something else (a textured background behind a flat object) agree with each
            # other but miss the next keyframe: how far the drift removal had to pull them counts as error too.
            miss_f = float(np.hypot(*(key_c[k + 1, :2] - fwd[-1, :2])))
            miss_b = float(np.hypot(*(key_c[k, :2] - bwd[0, :2])))
            pulled = (wf * s[:, 0] * miss_f + wb * (1.0 - s[:, 0]) * miss_b) / np.maximum(wf + wb, 1e-9)
            seg_u = disagree * track_conf + u[sl] * (1.0 - track_conf) + pulled
            if run.detections is not None:
                blend, sup = self._fuse_detections(
                    run.detections, a, b, blend, wf + wb, key_c[k], key_c[k + 1], key_off[k : k + 2], weight
                )
                seg_u = np.where(sup, 0.5 * seg_u, seg_u)
                supported[sl] |= sup
            blend[0], blend[-1] = key_c[k], key_c[k + 1]
            seg_u[0] = seg_u[-1] = 0.0
            out[sl] = blend
            u[sl] = seg_u
        xyxy = cxcywh_to_xyxy(out)
        xyxy[kf - t0] = run.key_xyxy
        conf = confidence_from_uncertainty(u, scale)
        reason = "forward/backward disagreement" + (" and detection support" if run.detections is not None else "")
        est = RunEstimate(xyxy, conf, u, [self.name] * len(xyxy), reason)
        est.support = np.clip(conf, 0.0, 1.0)
        return est

    def _fuse_detections(
        self,
        detections: Mapping[int, Detections],
        a: int,
        b: int,
        blend: Float64Array,
        track_w: Float64Array,
        key_a: Float64Array,
        key_b: Float64Array,
        key_off: Sequence[Float64Array | None],
        weight: Float64Array,
    ) -> tuple[Float64Array, npt.NDArray[np.bool_]]:
        """Blend detections overlapping the path of the gap from frame ``a`` to ``b`` into it, weighted by their score
        and overlap against the path's own weight ``track_w``. ``key_off``: the detector's offsets at the gap's two
        keyframes (:meth:`_key_detection_offsets`), applied with the run's ``weight`` (:meth:`_offset_weight`).
        Returns the blended boxes (cx, cy, w, h) and which frames a detection supported."""
        off_a, off_b = key_off
        if off_a is None and off_b is None:
            off_a = off_b = np.zeros(4)
        elif off_a is None:
            off_a = off_b
        elif off_b is None:
            off_b = off_a
        assert off_a is not None and off_b is not None
        out = blend.copy()
        sup = np.zeros(len(blend), bool)
        length = float(b - a)
        for i in range(1, b - a):
            dets = detections.get(a + i)
            if dets is None or len(dets) == 0:
                continue
            s = i / length
            # Match against the current path and the straight line between the keyframes (whichever overlaps).
            paths = np.stack([blend[i], (1.0 - s) * key_a + s * key_b])
            iou = box_iou(cxcywh_to_xyxy(paths), dets.xyxy.astype(np.float64)).max(axis=0)
            j = int(np.argmax(iou))
            if iou[j] < self.det_min_iou:
                continue
            off = weight * ((1.0 - s) * off_a + s * off_b)
            corrected = correct_detections(xyxy_to_cxcywh(dets.xyxy[j : j + 1].astype(np.float64))[0], off)
            wd = self.det_weight * float(dets.scores[j]) * float(iou[j])
            wg = float(track_w[i]) + self.prior_weight
            out[i] = (wg * blend[i] + wd * corrected) / (wg + wd)
            sup[i] = True
        return out, sup


def lowpass_through_keys(d: Float64Array, key_rows: npt.NDArray[np.int64], sigma: float) -> Float64Array:
    """``d`` (n, m) smoothed along its rows by a Gaussian of ``sigma`` rows, plus the linear interpolation of what the
    smoothing took away at ``key_rows``: the result equals ``d`` there and is as smooth as the Gaussian between."""
    s = gaussian_filter1d(d, sigma, axis=0, mode="nearest")
    rows = np.arange(len(d))
    lost = d[key_rows] - s[key_rows]
    return s + np.stack([np.interp(rows, key_rows, lost[:, j]) for j in range(d.shape[1])], axis=1)


def _mean_fit(best: Float64Array, whole: npt.NDArray[np.bool_]) -> float | None:
    """Mean of the keyframes' best detection IoUs ``best`` over the whole keyframes (``whole``) a detection overlaps
    (IoU >= ``_KEY_MATCH_IOU``); None where none does."""
    use = whole & (best >= _KEY_MATCH_IOU)
    return float(np.mean(best[use])) if use.any() else None


def _key_steps(run: RunInput) -> Float64Array:
    """(K - 1,) how far the object moves per frame between consecutive keyframes, in mean keyframe box diagonals
    (the chord over the frames: a lower bound of its speed)."""
    c = xyxy_to_cxcywh(run.key_xyxy)
    diag = np.maximum(np.hypot(c[:, 2], c[:, 3]), 1.0)
    return np.asarray(np.hypot(*(c[1:, :2] - c[:-1, :2]).T) / (np.diff(run.key_frames) * 0.5 * (diag[1:] + diag[:-1])))


def _gaps(run: RunInput) -> list[tuple[int, int, Float64Array, Float64Array]]:
    """``(a, b, key_a, key_b)`` of each gap of the run with a frame in between."""
    kf, keys = run.key_frames, run.key_xyxy
    return [
        (a, b, ka, kb)
        for a, b, ka, kb in zip(kf[:-1].tolist(), kf[1:].tolist(), keys[:-1], keys[1:], strict=True)
        if b - a >= 2
    ]
