"""Interpolation metrics on dense per-frame arrays: box IoU, centre error, PCK, OKS, split by motion speed.

All functions are vectorised over frames. Definitions:

- IoU: intersection over union of paired ``xyxy`` boxes.
- centre error: distance between box centres divided by the ground-truth box diagonal.
- PCK@a: fraction of ground-truth-visible keypoints within ``a * max(w, h)`` of the ground-truth box.
- OKS (COCO): ``mean_i exp(-d_i^2 / (2 s^2 k_i^2))`` over ground-truth-visible keypoints, ``s^2`` the ground-truth
  box area, ``k_i = 2 sigma_i`` (COCO-17 sigmas); the same definition as :func:`prelabel.metrics.pose.oks`.
- speed: ground-truth centre displacement per frame divided by the box diagonal (central difference).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.types import COCO17_SIGMAS

Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Speed bins (centre displacement per frame / box diagonal): slow, medium, fast.
SPEED_BINS: tuple[tuple[str, float, float], ...] = (("slow", 0.0, 0.02), ("medium", 0.02, 0.06), ("fast", 0.06, np.inf))


def _boxes(name: str, a: npt.ArrayLike) -> Float64Array:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InvalidInputError(f"{name}: expected shape (N, 4) xyxy, got {arr.shape}")
    return arr


def box_iou(pred: npt.ArrayLike, gt: npt.ArrayLike) -> Float64Array:
    """Row-wise IoU of (N, 4) ``xyxy`` predictions and ground truth; (N,) float64 in [0, 1] (0 for NaN rows)."""
    p, g = _boxes("pred", pred), _boxes("gt", gt)
    if p.shape != g.shape:
        raise InvalidInputError(f"pred and gt must have the same shape, got {p.shape} and {g.shape}")
    ix = np.clip(np.minimum(p[:, 2], g[:, 2]) - np.maximum(p[:, 0], g[:, 0]), 0, None)
    iy = np.clip(np.minimum(p[:, 3], g[:, 3]) - np.maximum(p[:, 1], g[:, 1]), 0, None)
    inter = ix * iy
    union = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1]) + (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.asarray(np.nan_to_num(iou, nan=0.0))


def centre_error(pred: npt.ArrayLike, gt: npt.ArrayLike) -> Float64Array:
    """(N,) centre distance divided by the ground-truth box diagonal."""
    p, g = _boxes("pred", pred), _boxes("gt", gt)
    pc = (p[:, :2] + p[:, 2:]) / 2.0
    gc = (g[:, :2] + g[:, 2:]) / 2.0
    diag = np.maximum(np.hypot(g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]), 1e-9)
    return np.asarray(np.linalg.norm(pc - gc, axis=1) / diag)


def box_speed(gt: npt.ArrayLike) -> Float64Array:
    """(N,) ground-truth motion speed per frame: centre displacement (central difference) / box diagonal.

    Rows are consecutive frames of one track.
    """
    g = _boxes("gt", gt)
    c = (g[:, :2] + g[:, 2:]) / 2.0
    if len(c) < 2:
        return np.zeros(len(c))
    v = np.gradient(c, axis=0)
    diag = np.maximum(np.hypot(g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]), 1e-9)
    return np.asarray(np.linalg.norm(v, axis=1) / diag)


def pck(
    pred_xy: npt.ArrayLike, gt_xy: npt.ArrayLike, gt_present: npt.ArrayLike, gt_xyxy: npt.ArrayLike, alpha: float = 0.05
) -> Float64Array:
    """Per-keypoint correctness: (N, 17) float64 with 1 (within ``alpha * max(w, h)``), 0, or NaN where not visible.

    Args:
        pred_xy: (N, 17, 2) predicted keypoints (NaN counts as wrong).
        gt_xy: (N, 17, 2) ground-truth keypoints.
        gt_present: (N, 17) ground-truth visibility.
        gt_xyxy: (N, 4) ground-truth boxes (the normaliser).
        alpha: threshold relative to the box's longer side.
    """
    p = np.asarray(pred_xy, np.float64)
    g = np.asarray(gt_xy, np.float64)
    vis = np.asarray(gt_present, bool)
    b = _boxes("gt_xyxy", gt_xyxy)
    size = np.maximum(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), 1e-9)
    d = np.linalg.norm(p - g, axis=-1)
    ok = np.where(np.isfinite(d), d <= alpha * size[:, None], False).astype(np.float64)
    return np.asarray(np.where(vis, ok, np.nan))


def oks(
    pred_xy: npt.ArrayLike, gt_xy: npt.ArrayLike, gt_present: npt.ArrayLike, gt_xyxy: npt.ArrayLike
) -> Float64Array:
    """(N,) COCO OKS per frame (NaN where the ground truth has no visible keypoint); see the module docstring."""
    p = np.asarray(pred_xy, np.float64)
    g = np.asarray(gt_xy, np.float64)
    vis = np.asarray(gt_present, bool)
    b = _boxes("gt_xyxy", gt_xyxy)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    k2 = (2.0 * np.asarray(COCO17_SIGMAS)) ** 2
    d2 = np.sum((p - g) ** 2, axis=-1)
    e = np.where(np.isfinite(d2), np.exp(-d2 / (2.0 * area[:, None] * k2[None, :])), 0.0)
    n = vis.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(n > 0, (e * vis).sum(axis=1) / np.maximum(n, 1), np.nan))


@dataclass(frozen=True)
class BoxSummary:
    """Aggregate box errors over a set of frames.

    Attributes:
        n: frames counted.
        mean_iou, p10_iou: mean and 10th-percentile IoU.
        mean_centre_error: mean centre error / diagonal.
        frac_iou_08: fraction of frames with IoU >= 0.8.
    """

    n: int
    mean_iou: float
    p10_iou: float
    mean_centre_error: float
    frac_iou_08: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict (for JSON)."""
        return {k: (int(v) if k == "n" else float(v)) for k, v in asdict(self).items()}


def summarize_boxes(iou: npt.ArrayLike, cerr: npt.ArrayLike) -> BoxSummary:
    """Summarise per-frame IoU and centre error; NaN summaries when empty."""
    i = np.asarray(iou, np.float64)
    c = np.asarray(cerr, np.float64)
    if i.size == 0:
        return BoxSummary(0, float("nan"), float("nan"), float("nan"), float("nan"))
    return BoxSummary(
        int(i.size), float(i.mean()), float(np.percentile(i, 10)), float(c.mean()), float((i >= 0.8).mean())
    )


def speed_bin_masks(speed: npt.ArrayLike) -> dict[str, BoolArray]:
    """Masks for the speed bins of :data:`SPEED_BINS`."""
    s = np.asarray(speed, np.float64)
    return {name: (s >= lo) & (s < hi) for name, lo, hi in SPEED_BINS}
