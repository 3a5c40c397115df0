"""Pose metrics: OKS and OKS-based AP (COCO definition, via pycocotools), PCK, keypoint jitter and limb lag.

OKS (object keypoint similarity) between a ground-truth skeleton and a prediction, with ``s^2`` the ground-truth
object area in px^2 and ``k_i = 2 * sigma_i`` (COCO17 sigmas)::

    OKS = sum_i exp(-d_i^2 / (2 * s^2 * k_i^2)) * [v_i > 0] / sum_i [v_i > 0]

over the keypoints ``i`` visible in the ground truth. AP averages precision over OKS thresholds 0.50:0.05:0.95, exactly
as ``pycocotools.cocoeval.COCOeval(iouType="keypoints")`` computes it (that library does the matching and averaging).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.types import COCO17_SIGMAS, NUM_KEYPOINTS, FloatArray, Skeleton, Track

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseInstance:
    """One skeleton in one image, for evaluation.

    Attributes:
        image_id: which image (e.g. the frame index); instances are matched only within an image.
        skeleton: the COCO-17 skeleton (pixels); keypoints with ``present=False`` are not visible / not predicted.
        xyxy: (4,) float32 box in pixels.
        score: detection confidence (used to rank predictions; ignored for ground truth).
        area: object area in px^2 used as ``s^2`` in OKS (ground truth only); None uses the box area.
    """

    image_id: int
    skeleton: Skeleton
    xyxy: FloatArray
    score: float = 1.0
    area: float | None = None

    @property
    def object_area(self) -> float:
        """``area`` when given, else the box area in px^2."""
        if self.area is not None:
            return float(self.area)
        x1, y1, x2, y2 = (float(v) for v in self.xyxy)
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)


@dataclass(frozen=True)
class OksAp:
    """COCO keypoint AP/AR (fractions in [0, 1]; -1 where COCO has nothing to average, e.g. no ground truth)."""

    ap: float
    ap50: float
    ap75: float
    ap_medium: float
    ap_large: float
    ar: float


def oks(
    gt: Skeleton,
    dt: Skeleton,
    area: float,
    sigmas: Sequence[float] = COCO17_SIGMAS,
) -> float:
    """OKS between a ground-truth skeleton and a prediction (COCO formula, see module docstring).

    A predicted keypoint with ``present=False`` still counts at its stored x, y (as in COCO, where a prediction has no
    visibility): callers that mark missing keypoints should leave them far away (e.g. at 0, 0).

    Args:
        gt: ground truth; only its present keypoints count.
        dt: prediction.
        area: ground-truth object area in px^2 (``s^2``).
        sigmas: per-keypoint sigmas, COCO17 order.

    Returns:
        OKS in [0, 1]; 0.0 when the ground truth has no visible keypoint.
    """
    vis = gt.present
    if not vis.any():
        return 0.0
    k2 = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = ((dt.keypoints[:, :2].astype(np.float64) - gt.keypoints[:, :2].astype(np.float64)) ** 2).sum(axis=1)
    e = d2 / k2 / (area + np.spacing(1)) / 2.0
    return float(np.exp(-e[vis]).mean())


def _coco_keypoints(sk: Skeleton, as_gt: bool) -> list[float]:
    out: list[float] = []
    for (x, y, c), p in zip(sk.keypoints.tolist(), sk.present.tolist(), strict=True):
        if as_gt:
            out += [float(x), float(y), 2.0 if p else 0.0]
        else:
            # Missing predictions stay where the caller put them (COCO ignores a prediction's visibility).
            out += [float(x), float(y), float(c) if p else 0.0]
    return out


def _tlwh(xyxy: npt.ArrayLike) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in np.asarray(xyxy).reshape(4))
    return [x1, y1, x2 - x1, y2 - y1]


def oks_ap(
    gts: Sequence[PoseInstance],
    dts: Sequence[PoseInstance],
    sigmas: Sequence[float] = COCO17_SIGMAS,
    max_dets: int = 20,
) -> OksAp:
    """COCO keypoint AP of predictions ``dts`` against ground truth ``gts`` (pycocotools ``COCOeval``).

    Ground-truth instances with no visible keypoint are ignored, as in COCO. Images are the union of the
    ``image_id`` of both lists.

    Args:
        gts: ground-truth skeletons.
        dts: predictions, each with its ``score``.
        sigmas: per-keypoint OKS sigmas (COCO17 order).
        max_dets: most predictions per image (COCO uses 20).

    Returns:
        AP, AP@.5, AP@.75, AP medium / large and AR.

    Raises:
        InvalidInputError: when the sigmas do not have one entry per keypoint.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(sigmas) != NUM_KEYPOINTS:
        raise InvalidInputError(f"sigmas: expected {NUM_KEYPOINTS} values, got {len(sigmas)}")
    image_ids = sorted({g.image_id for g in gts} | {d.image_id for d in dts})
    gt_anns = []
    for i, g in enumerate(gts):
        n_vis = int(g.skeleton.present.sum())
        gt_anns.append(
            {
                "id": i + 1,
                "image_id": int(g.image_id),
                "category_id": 1,
                "keypoints": _coco_keypoints(g.skeleton, as_gt=True),
                "num_keypoints": n_vis,
                "bbox": _tlwh(g.xyxy),
                "area": g.object_area,
                "iscrowd": 0,
            }
        )
    dataset = {
        "images": [{"id": int(i)} for i in image_ids],
        "annotations": gt_anns,
        "categories": [{"id": 1, "name": "person"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        dt_list = [
            {
                "image_id": int(d.image_id),
                "category_id": 1,
                "keypoints": _coco_keypoints(d.skeleton, as_gt=False),
                "score": float(d.score),
            }
            for d in dts
        ]
        if not dt_list or not gt_anns:
            logger.debug("oks_ap: %d ground truths, %d predictions: nothing to match", len(gt_anns), len(dt_list))
            return OksAp(0.0 if gt_anns else -1.0, 0.0 if gt_anns else -1.0, 0.0 if gt_anns else -1.0, -1.0, -1.0, 0.0)
        coco_dt = coco_gt.loadRes(dt_list)
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.params.maxDets = [max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = [float(v) for v in ev.stats]
    return OksAp(ap=s[0], ap50=s[1], ap75=s[2], ap_medium=s[3], ap_large=s[4], ar=s[5])


def instances_from_tracks(tracks: Sequence[Track], default_score: float | None = None) -> list[PoseInstance]:
    """Every skeleton attached to ``tracks`` as a :class:`PoseInstance` (``image_id`` = frame index).

    Args:
        tracks: tracks whose boxes may carry skeletons.
        default_score: score to use instead of each skeleton's own ``score`` (None keeps the skeleton's).
    """
    out: list[PoseInstance] = []
    for t in tracks:
        for b in t.boxes:
            if b.skeleton is None:
                continue
            score = b.skeleton.score if default_score is None else default_score
            out.append(PoseInstance(b.frame_idx, b.skeleton, b.xyxy, float(score)))
    return out


def pck(
    gts: Sequence[Skeleton],
    dts: Sequence[Skeleton | None],
    ref_sizes: Sequence[float],
    alpha: float = 0.2,
) -> float:
    """Percentage of correct keypoints over matched pairs (PCK@alpha, reference = a per-person size in px).

    A ground-truth-visible keypoint is correct when the prediction has it present and within ``alpha * ref_size``
    pixels. A missing prediction (None or ``present=False``) counts as wrong.

    Args:
        gts: ground-truth skeletons.
        dts: the prediction paired with each ground truth, or None.
        ref_sizes: per pair reference length in px (e.g. the longer side of the ground-truth box).
        alpha: threshold as a fraction of the reference length.

    Returns:
        Fraction in [0, 1] of correct keypoints; 0.0 when no keypoint is visible.

    Raises:
        InvalidInputError: when the three sequences differ in length.
    """
    if not len(gts) == len(dts) == len(ref_sizes):
        raise InvalidInputError(
            f"pck: expected equal lengths, got {len(gts)} ground truths, {len(dts)} predictions, "
            f"{len(ref_sizes)} reference sizes"
        )
    correct = 0
    total = 0
    for g, d, size in zip(gts, dts, ref_sizes, strict=True):
        vis = g.present
        total += int(vis.sum())
        if d is None:
            continue
        dist = np.linalg.norm(d.keypoints[:, :2] - g.keypoints[:, :2], axis=1)
        correct += int((vis & d.present & (dist <= alpha * float(size))).sum())
    return correct / total if total else 0.0


@dataclass(frozen=True)
class Jitter:
    """Per-keypoint jitter: mean |second difference of prediction - second difference of ground truth|.

    Attributes:
        per_keypoint: (17,) float64 in px / frame^2; NaN where no frame triple was valid.
        mean: mean over keypoints with a value (px / frame^2).
        count: (17,) int64 number of frame triples averaged per keypoint.
    """

    per_keypoint: npt.NDArray[np.float64]
    mean: float
    count: npt.NDArray[np.int64]


def keypoint_jitter(
    gt_xy: npt.ArrayLike,
    gt_present: npt.ArrayLike,
    dt_xy: npt.ArrayLike,
    dt_present: npt.ArrayLike,
) -> Jitter:
    """Jitter of predicted keypoint trajectories: frame-to-frame acceleration error against ground truth.

    For each keypoint and each consecutive frame triple ``t-1, t, t+1`` where both ground truth and prediction are
    present, ``a(t) = x(t+1) - 2 x(t) + x(t-1)`` (px / frame^2); the jitter is the mean of ``|a_dt(t) - a_gt(t)|``.
    Real motion (the ground truth's own acceleration) is thus not counted as jitter.

    Args:
        gt_xy: (T, 17, 2) ground-truth positions of one person over consecutive frames, px.
        gt_present: (T, 17) bool.
        dt_xy: (T, 17, 2) predicted positions, px.
        dt_present: (T, 17) bool.

    Raises:
        InvalidInputError: on mismatched shapes.
    """
    g = np.asarray(gt_xy, dtype=np.float64)
    d = np.asarray(dt_xy, dtype=np.float64)
    gp = np.asarray(gt_present, dtype=bool)
    dp = np.asarray(dt_present, dtype=bool)
    if g.ndim != 3 or g.shape[1:] != (NUM_KEYPOINTS, 2) or d.shape != g.shape:
        raise InvalidInputError(f"keypoint_jitter: expected (T, {NUM_KEYPOINTS}, 2) arrays, got {g.shape}, {d.shape}")
    if gp.shape != g.shape[:2] or dp.shape != g.shape[:2]:
        raise InvalidInputError(f"keypoint_jitter: expected presence masks {g.shape[:2]}, got {gp.shape}, {dp.shape}")
    if len(g) < 3:
        nan = np.full(NUM_KEYPOINTS, np.nan)
        return Jitter(nan, float("nan"), np.zeros(NUM_KEYPOINTS, np.int64))
    ok = gp & dp
    valid = ok[:-2] & ok[1:-1] & ok[2:]
    acc_g = g[2:] - 2.0 * g[1:-1] + g[:-2]
    acc_d = d[2:] - 2.0 * d[1:-1] + d[:-2]
    err = np.linalg.norm(np.nan_to_num(acc_d - acc_g), axis=2)
    count = valid.sum(axis=0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(count > 0, (err * valid).sum(axis=0) / np.maximum(count, 1), np.nan)
    mean = float(np.nanmean(per)) if np.any(count > 0) else float("nan")
    return Jitter(per, mean, count)


def trajectory_lag(
    gt_xy: npt.ArrayLike,
    dt_xy: npt.ArrayLike,
    valid: npt.ArrayLike | None = None,
    max_lag: int = 10,
) -> float:
    """Delay of a predicted 2-D trajectory behind ground truth, in frames, by cross-correlating velocities.

    ``c(L) = sum_t v_gt(t) . v_dt(t + L)`` over frames where both velocities are valid; the lag is the ``L`` in
    ``[-max_lag, max_lag]`` maximising ``c``, refined to sub-frame precision by a parabola through its neighbours.
    Positive: the prediction lags behind.

    Args:
        gt_xy: (T, 2) ground-truth positions, px.
        dt_xy: (T, 2) predicted positions, px.
        valid: (T,) bool where both are known; None means all.
        max_lag: largest lag searched, frames.

    Returns:
        Lag in frames; NaN when the trajectories are too short or motionless.
    """
    g = np.asarray(gt_xy, dtype=np.float64)
    d = np.asarray(dt_xy, dtype=np.float64)
    if g.shape != d.shape or g.ndim != 2 or g.shape[1] != 2:
        raise InvalidInputError(f"trajectory_lag: expected two (T, 2) arrays, got {g.shape} and {d.shape}")
    ok = np.ones(len(g), bool) if valid is None else np.asarray(valid, dtype=bool)
    vg = np.diff(g, axis=0)
    vd = np.diff(d, axis=0)
    vok = ok[1:] & ok[:-1]
    n = len(vg)
    if n < 2 * max_lag + 3:
        return float("nan")
    lags = list(range(-max_lag, max_lag + 1))
    corr = np.zeros(len(lags))
    for i, shift in enumerate(lags):
        a = slice(max(0, -shift), n - max(0, shift))
        b = slice(max(0, shift), n - max(0, -shift))
        m = vok[a] & vok[b]
        corr[i] = float((vg[a][m] * vd[b][m]).sum())
    if not np.any(corr > 0):
        return float("nan")
    k = int(np.argmax(corr))
    lag = float(lags[k])
    if 0 < k < len(lags) - 1:
        y0, y1, y2 = corr[k - 1], corr[k], corr[k + 1]
        den = y0 - 2.0 * y1 + y2
        if den < 0:
            lag += float(0.5 * (y0 - y2) / den)
    return lag
