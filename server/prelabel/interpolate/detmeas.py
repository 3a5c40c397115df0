"""Detections as measurements of an object's motion between keyframes, corrected to the annotator's box convention.

A detector rarely draws boxes the way an annotator does (wider, shifted, cut at the feet), so its raw boxes can be
poor while their *motion* is still informative. At each keyframe ``k`` the offset between the annotator's box and the
best overlapping detection is measured in the detection's own units,

    o_k = ((kx - dx) / dw, (ky - dy) / dh, log(kw / dw), log(kh / dh)),

and between keyframes ``a`` and ``b`` the offset is interpolated linearly, so a detection at frame ``t`` measures
the annotator's centre as ``d_t + o(t) * d_wh`` (an affine correction fitted at both ends of the gap).

How much such a measurement is worth is read off the keyframes too: the offset at an inner keyframe, predicted from
its two neighbours (linearly in time), misses by as much as an in-between detection would (:func:`interp_residual_rms`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.geometry import box_iou
from prelabel.interpolate.base import Float64Array
from prelabel.interpolate.geometric import cxcywh_to_xyxy, xyxy_to_cxcywh
from prelabel.types import Detections


def detection_offset(dets: Detections | None, key_cxcywh: Float64Array, min_iou: float) -> Float64Array | None:
    """Annotator-vs-detector offset at one keyframe (see the module docstring), or None.

    Args:
        dets: the keyframe's detections (any class).
        key_cxcywh: (4,) the annotator's box ``cx, cy, w, h`` in pixels.
        min_iou: the best overlapping detection counts only at this IoU or more.

    Returns:
        (4,) float64 ``(dcx / dw, dcy / dh, log w ratio, log h ratio)``; None when no detection overlaps enough.
    """
    if dets is None or len(dets) == 0:
        return None
    iou = box_iou(cxcywh_to_xyxy(np.asarray(key_cxcywh, np.float64)[None]), dets.xyxy.astype(np.float64))[0]
    j = int(np.argmax(iou))
    if iou[j] < min_iou:
        return None
    d = xyxy_to_cxcywh(dets.xyxy[j : j + 1].astype(np.float64))[0]
    w, h = max(d[2], 1.0), max(d[3], 1.0)
    k = np.asarray(key_cxcywh, np.float64)
    return np.array([(k[0] - d[0]) / w, (k[1] - d[1]) / h, np.log(max(k[2], 1.0) / w), np.log(max(k[3], 1.0) / h)])


def correct_detections(cxcywh: Float64Array, off: Float64Array) -> Float64Array:
    """Detector boxes corrected to the annotator's convention by an offset (:func:`detection_offset`).

    Args:
        cxcywh: (N, 4) or (4,) detector boxes ``cx, cy, w, h`` in pixels.
        off: (4,) offset ``(dcx / dw, dcy / dh, log w ratio, log h ratio)``.

    Returns:
        float64 boxes of the same shape: ``(cx + o0 * w, cy + o1 * h, w * exp(o2), h * exp(o3))``.
    """
    d = np.asarray(cxcywh, np.float64)
    o = np.asarray(off, np.float64)
    return np.concatenate([d[..., :2] + o[:2] * d[..., 2:], d[..., 2:] * np.exp(o[2:])], axis=-1)


def detection_centres(
    detections: Mapping[int, Detections],
    a: int,
    path_cxcywh: Float64Array,
    off_a: Float64Array,
    off_b: Float64Array,
    min_iou: float,
) -> Float64Array:
    """Offset-corrected detection centres along one gap, one per frame (the detection best overlapping the path).

    Args:
        detections: detector output per frame index.
        a: the gap's first keyframe; the gap is ``a .. a + L``.
        path_cxcywh: (L + 1, 4) the current estimate of the annotator's boxes (used to pick the detection).
        off_a, off_b: (4,) offsets at both keyframes (:func:`detection_offset`).
        min_iou: least IoU between the path box and the detection *corrected* to the annotator's convention.

    Returns:
        (L + 1, 2) float64 centres in pixels; NaN where no detection matches and at both keyframes.
    """
    n = len(path_cxcywh)
    out = np.full((n, 2), np.nan)
    for i in range(1, n - 1):
        dets = detections.get(a + i)
        if dets is None or len(dets) == 0:
            continue
        s = i / (n - 1)
        off = (1.0 - s) * off_a + s * off_b
        corrected = correct_detections(xyxy_to_cxcywh(dets.xyxy.astype(np.float64)), off)
        iou = box_iou(cxcywh_to_xyxy(path_cxcywh[i : i + 1]), cxcywh_to_xyxy(corrected))[0]
        j = int(np.argmax(iou))
        if iou[j] >= min_iou:
            out[i] = corrected[j, :2]
    return out


def interp_residuals(values: Float64Array, times: npt.ArrayLike) -> Float64Array:
    """Squared residual of each inner row against its linear interpolation from its two neighbours in time, per
    unit error variance.

    With ``s = (t_k - t_{k-1}) / (t_{k+1} - t_{k-1})``, the residual ``v_k - ((1 - s) v_{k-1} + s v_{k+1})`` is 0
    for values drifting linearly in time however unevenly the rows are spaced, and for independent errors of
    standard deviation ``sigma`` per row (per column) it has variance ``(1 + s^2 + (1 - s)^2) sigma^2``; its squared
    norm is divided by that factor.

    Args:
        values: (K, D) float64, e.g. offsets at consecutive keyframes in pixels.
        times: (K,) strictly increasing row times (keyframe indices).

    Returns:
        (max(K - 2, 0),) float64, one per inner row (triple); NaN where the triple touches a NaN.

    Raises:
        InvalidInputError: ``times`` is not (K,) or not strictly increasing.
    """
    v = np.asarray(values, np.float64)
    t = np.asarray(times, np.float64)
    if t.shape != (len(v),):
        raise InvalidInputError(f"residual times: expected shape ({len(v)},), got {t.shape}")
    if len(v) < 3:
        return np.zeros(0)
    dt = np.diff(t)
    if not (dt > 0).all():
        k = int(np.argmin(dt > 0))
        raise InvalidInputError(f"residual times: expected strictly increasing, got {t[k]} then {t[k + 1]} at row {k}")
    s = ((t[1:-1] - t[:-2]) / (t[2:] - t[:-2]))[:, None]
    r = v[1:-1] - ((1.0 - s) * v[:-2] + s * v[2:])
    return np.sum(r**2, axis=1) / (1.0 + s[:, 0] ** 2 + (1.0 - s[:, 0]) ** 2)


def residual_rms(sq_residuals: Float64Array) -> float | None:
    """Error standard deviation from per-triple squared residuals (:func:`interp_residuals`): the root of their
    mean over finite entries, or None with fewer than two."""
    r = np.asarray(sq_residuals, np.float64)
    ok = np.isfinite(r)
    if ok.sum() < 2:
        return None
    return float(np.sqrt(np.mean(r[ok])))


def interp_residual_rms(values: Float64Array, times: npt.ArrayLike) -> float | None:
    """Per-row error standard deviation read off how well each inner row is predicted linearly in time from its
    neighbours: :func:`residual_rms` of :func:`interp_residuals` (see there).

    Args:
        values: (K, D) float64, e.g. offsets at consecutive keyframes in pixels.
        times: (K,) strictly increasing row times (keyframe indices).

    Returns:
        The estimate, or None with fewer than two usable triples (rows with NaN and triples touching them skipped).

    Raises:
        InvalidInputError: ``times`` is not (K,) or not strictly increasing.
    """
    return residual_rms(interp_residuals(values, times))
