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

The uncertainty (pixels) that ranks suggested keyframes is the forward/backward disagreement, raised where tracking
confidence is low and lowered where a detection supports the box.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.interpolate.base import Float64Array, FrameSource, RunEstimate, RunInput
from prelabel.interpolate.geometric import (
    KalmanMethod,
    box_scale,
    confidence_from_uncertainty,
    cxcywh_to_xyxy,
    xyxy_to_cxcywh,
)
from prelabel.types import Detections

logger = logging.getLogger(__name__)

Gray = npt.NDArray[np.uint8]


def box_iou_matrix(a: Float64Array, b: Float64Array) -> Float64Array:
    """IoU between every box of ``a`` (N, 4) and ``b`` (M, 4), ``xyxy``; returns (N, M) float64."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0))


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


@dataclass
class GuidedMethod:
    """Optical-flow propagation from both keyframes plus detector support; passes exactly through the keyframes.

    Attributes:
        flow: Lucas-Kanade settings.
        prior_weight: weight of the geometric prior in the blend (the passes weigh up to 1 each).
        det_min_iou: a detection supports a frame when its IoU with the blended box is at least this.
        det_weight: weight of a supporting detection (times its score and IoU).
        cache_frames: grey frames kept in memory (LRU).
    """

    name: str = "guided"
    needs_video: bool = True
    flow: FlowParams = field(default_factory=FlowParams)
    prior: KalmanMethod = field(default_factory=KalmanMethod)
    prior_weight: float = 0.05
    det_min_iou: float = 0.5
    det_weight: float = 0.3
    cache_frames: int = 256
    _gray: OrderedDict[int, Gray] = field(default_factory=OrderedDict, init=False, repr=False)
    _video_id: int = field(default=0, init=False, repr=False)
    _passes: dict[tuple[object, ...], tuple[Float64Array, Float64Array]] = field(
        default_factory=dict, init=False, repr=False
    )

    def _frame(self, video: FrameSource, idx: int) -> Gray:
        if id(video) != self._video_id:
            self._gray.clear()
            self._passes.clear()
            self._video_id = id(video)
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
        return boxes, conf

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """Guided boxes for one run; falls back to the prior where the video is missing."""
        prior = self.prior.interpolate_run(run)
        if run.video is None:
            return prior
        kf = run.key_frames
        t0 = int(kf[0])
        key_c = xyxy_to_cxcywh(run.key_xyxy)
        out = xyxy_to_cxcywh(prior.xyxy)
        u = prior.uncertainty.copy()
        scale = box_scale(run.key_xyxy)
        supported = np.zeros(len(out), bool)
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
            seg_u = disagree * track_conf + u[sl] * (1.0 - track_conf)
            if run.detections is not None:
                blend, sup = self._fuse_detections(run.detections, a, b, blend, wf + wb, key_c[k], key_c[k + 1])
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
        return RunEstimate(xyxy, conf, u, [self.name] * len(xyxy), reason)

    def _det_offset(self, dets: Detections | None, key: Float64Array) -> Float64Array | None:
        """Annotator-vs-detector offset at a keyframe: (dcx / w, dcy / h, log w ratio, log h ratio), or None."""
        if dets is None or len(dets) == 0:
            return None
        kx = cxcywh_to_xyxy(key[None])
        iou = box_iou_matrix(kx, dets.xyxy.astype(np.float64))[0]
        j = int(np.argmax(iou))
        if iou[j] < self.det_min_iou:
            return None
        d = xyxy_to_cxcywh(dets.xyxy[j : j + 1].astype(np.float64))[0]
        w, h = max(d[2], 1.0), max(d[3], 1.0)
        return np.array(
            [(key[0] - d[0]) / w, (key[1] - d[1]) / h, np.log(max(key[2], 1.0) / w), np.log(max(key[3], 1.0) / h)]
        )

    def _fuse_detections(
        self,
        detections: Mapping[int, Detections],
        a: int,
        b: int,
        blend: Float64Array,
        track_w: Float64Array,
        key_a: Float64Array,
        key_b: Float64Array,
    ) -> tuple[Float64Array, npt.NDArray[np.bool_]]:
        off_a = self._det_offset(detections.get(a), key_a)
        off_b = self._det_offset(detections.get(b), key_b)
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
            iou = box_iou_matrix(cxcywh_to_xyxy(blend[i : i + 1]), dets.xyxy.astype(np.float64))[0]
            j = int(np.argmax(iou))
            if iou[j] < self.det_min_iou:
                continue
            s = i / length
            off = (1.0 - s) * off_a + s * off_b
            d = xyxy_to_cxcywh(dets.xyxy[j : j + 1].astype(np.float64))[0]
            corrected = np.array(
                [d[0] + off[0] * d[2], d[1] + off[1] * d[3], d[2] * np.exp(off[2]), d[3] * np.exp(off[3])]
            )
            wd = self.det_weight * float(dets.scores[j]) * float(iou[j])
            wg = float(track_w[i]) + self.prior_weight
            out[i] = (wg * blend[i] + wd * corrected) / (wg + wd)
            sup[i] = True
        return out, sup
