"""The detections an object most plausibly went through between two keyframes (a shortest path over frames).

Between keyframes ``a`` and ``b`` every frame offers its detections plus one "not detected" option. A path picks one
option per frame; its cost is

    sum_t node(t) + sum_t alpha * |c_t - c_s - v (t - s)| / D + beta * (|log w_t / w_s| + |log h_t / h_s|)

with ``node = (1 - score) * score_cost`` (plus ``line_cost`` per chord length from the straight line between the
keyframe centres, and an optional appearance cost) for a detection and ``miss_cost`` for "not detected" (whose
transitions cost nothing), ``c`` box centres, ``s`` the frame of the path's previous detection, ``v`` the keyframes'
mean velocity times ``velocity_weight`` (travel is the departure from the course the keyframes imply, so a chain that
turns onto another object crossing the path costs more; with ``own_velocity`` ``w > 0``, ``v`` is ``(1 - w)`` times that
plus ``w`` times the path's own velocity into its previous detection), ``D`` the keyframes' mean box diagonal (the
median step between the nearest detections of consecutive frames where that is larger: objects moving several sizes per
frame), and the keyframe boxes fixed at both ends. Dynamic programming (Viterbi) finds the cheapest path in ``O(L *
N^2)`` for ``L`` frames of at most ``N`` detections (with ``own_velocity``, each state keeps the velocity of its
cheapest predecessor only: an approximation, since a dearer predecessor with a better-suited velocity is forgotten).
Unlike matching each frame against a predicted box, this follows objects that move more than their own size per frame,
as long as the detector sees them: the right object is the one whose chain of boxes joins both keyframes with the least
travel and the fewest misses.

Objects entering or leaving the view are cut by the image border: a keyframe may be a sliver a few pixels wide of a
person whose detections in the next frames are whole. Given the image size, a box edge within ``border_px`` of the
border is *cut* (the object's extent beyond it is unknown). On an axis where either box of a transition is cut, the
transition compares the edges on the other side (the ones both boxes really show) and drops the size term; a
keyframe cut by the border bounds the size from below only, on both axes (it may show an arm of a person running
in). A keyframe whose diagonal is more than ``partial_ratio`` times smaller than the other's shows part of the object
(entering, leaving, half hidden): the object's box contains it, so its transitions cost the gap between the boxes
and only its being larger; ``D`` is then the larger keyframe's diagonal (at least the median whole detection's when
both keyframes are cut).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.geometry import box_iou
from prelabel.interpolate.base import Float64Array
from prelabel.types import Detections


@dataclass(frozen=True)
class DetPathParams:
    """Costs of :func:`detection_path` (units: keyframe box diagonals of travel).

    The defaults were chosen on PETS09-S2L1 (with its public ``det.txt`` detections) and on scenes from
    :mod:`prelabel.synthetic`'s ``fast-motion`` preset, seeds 0 to 5 (with the shipped synthetic detection and pose
    models), the data ``benchmarks/interpolation.py`` reports on: its numbers are not held out.

    Attributes:
        alpha: cost per diagonal of centre travel between consecutive frames.
        beta: cost per unit of absolute log size change between consecutive frames.
        miss_cost: cost of a frame without a detection on the path (guided uses ``MotionParams.miss_cost`` on paths
            through motion blobs).
        score_cost: cost of a detection with score 0 (score 1 costs nothing).
        max_log_size: detections whose width or height differ from the keyframes' by more than this log ratio are
            never on the path (keeps a ball's path off people and the other way round).
        max_miss_states: "not detected" states kept per frame (the cheapest).
        border_px: a box edge this close to the image border (pixels) is cut by it (needs the image size).
        partial_ratio: keyframe diagonals differing by more than this factor: the smaller shows part of the object.
        velocity_weight: travel is measured from where the keyframes' mean velocity (times this) would have
            taken the previous box, so a chain moving the wrong way costs more than one keeping its course.
        speed_scale: travel counts in the median step between the nearest detections of consecutive frames where
            that is larger than the keyframes' diagonal (an object moving several sizes per frame, like a thrown ball,
            would otherwise find any chain dearer than misses).
        line_cost: cost per diagonal between a detection's centre and the straight line between the keyframe
            centres at its frame (a weak constant-velocity prior: of two similar chains, the one on the way wins).
            The distance counts in the largest of: the diagonal, the keyframes' distance, and ``line_reach`` times
            how far the object's detections could stray from the line (the median step times half the gap).
        line_reach: see ``line_cost`` (0, the default: the reach is ignored; on generated fast motion counting it
            helped balls and cost persons; guided counts it for paths through motion blobs).
        fastest_step: with ``speed_scale``, each frame's step is that of its fastest detection (the largest of the
            distances from each of its detections to the nearest of the next frame's) instead of the nearest pair's:
            slower movers among the candidates (a person's limbs among a ball's motion blobs) no longer pull the
            scale down. Guided sets it for paths through motion blobs.
        own_velocity: share of the expected displacement that comes from the path's own velocity into its last box
            (the rest from the keyframes' mean velocity): travel then counts as the change of velocity, so a thrown
            ball keeps its course past a slower blob and pays once where it bounces (0, the default: the keyframes'
            velocity alone; the path's velocity starts as the keyframes'). Guided sets it for paths through motion
            blobs.
    """

    alpha: float = 1.0
    beta: float = 0.5
    miss_cost: float = 2.0
    score_cost: float = 0.5
    max_log_size: float = 0.9
    max_miss_states: int = 16
    border_px: float = 1.5
    partial_ratio: float = 2.0
    velocity_weight: float = 1.0
    line_cost: float = 0.5
    line_reach: float = 0.0
    speed_scale: bool = True
    fastest_step: bool = False
    own_velocity: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.own_velocity <= 1.0:
            raise InvalidInputError(f"detection path own_velocity: expected a share in [0, 1], got {self.own_velocity}")


def cut_edges(xyxy: Float64Array, image_wh: tuple[int, int] | None, border_px: float) -> npt.NDArray[np.bool_]:
    """Which edges of each box touch the image border: (N, 4) bool for ``x0, y0, x1, y1`` of (N, 4) ``xyxy`` boxes
    (all False without an image size ``(width, height)`` in pixels)."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if image_wh is None:
        return np.zeros(b.shape, bool)
    w, h = float(image_wh[0]), float(image_wh[1])
    return np.stack(
        [b[:, 0] <= border_px, b[:, 1] <= border_px, b[:, 2] >= w - border_px, b[:, 3] >= h - border_px], axis=1
    )


def _cxcywh(xyxy: Float64Array) -> Float64Array:
    return np.stack(
        [
            (xyxy[:, 0] + xyxy[:, 2]) / 2,
            (xyxy[:, 1] + xyxy[:, 3]) / 2,
            xyxy[:, 2] - xyxy[:, 0],
            xyxy[:, 3] - xyxy[:, 1],
        ],
        axis=1,
    )


def _transition(
    prev: Float64Array,
    cur: Float64Array,
    diag: float,
    p: DetPathParams,
    prev_cut: npt.NDArray[np.bool_] | None = None,
    cur_cut: npt.NDArray[np.bool_] | None = None,
    prev_part: npt.NDArray[np.bool_] | None = None,
    cur_part: npt.NDArray[np.bool_] | None = None,
    expected: Float64Array | None = None,
) -> Float64Array:
    """(P, C) cost between boxes ``prev`` (P, 4) and ``cur`` (C, 4), both ``cx, cy, w, h``.

    ``prev_cut`` (P, 4) and ``cur_cut`` (C, 4) flag edges cut by the image border (``x0, y0, x1, y1``); on an axis
    where either box is cut the visible edge on the other side stands in for the centre (the centres where the cuts
    are on both sides) and the size term is dropped. ``prev_part`` (P,) and ``cur_part`` (C,) flag boxes showing
    part of the object: the object's box contains them, so a transition with one costs the gap between the boxes
    (0 where they overlap) and only for the part being larger than the other box. ``expected`` (P, 2): the
    displacement expected from each ``prev`` box (pixels); travel counts as the departure from it.
    """
    if expected is not None:
        prev = prev.copy()
        prev[:, :2] += expected
    moves, sizes = [], []
    for ax in (0, 1):
        dc = cur[None, :, ax] - prev[:, None, ax]
        ls = np.abs(np.log(np.maximum(cur[None, :, 2 + ax], 1.0) / np.maximum(prev[:, None, 2 + ax], 1.0)))
        if prev_cut is not None and cur_cut is not None:
            lo = prev_cut[:, None, ax] | cur_cut[None, :, ax]  # low edge (x0 / y0) unknown
            hi = prev_cut[:, None, 2 + ax] | cur_cut[None, :, 2 + ax]
            half = 0.5 * (cur[None, :, 2 + ax] - prev[:, None, 2 + ax])
            dc = np.where(lo & ~hi, dc + half, np.where(hi & ~lo, dc - half, dc))
            ls = np.where(lo | hi, 0.0, ls)
        moves.append(dc)
        sizes.append(ls)
    out = np.asarray(p.alpha * np.hypot(moves[0], moves[1]) / diag + p.beta * (sizes[0] + sizes[1]))
    if prev_part is None or cur_part is None or not (prev_part.any() or cur_part.any()):
        return out
    gaps, grow = [], []
    for ax in (0, 1):
        p_lo, p_hi = prev[:, None, ax] - prev[:, None, 2 + ax] / 2, prev[:, None, ax] + prev[:, None, 2 + ax] / 2
        c_lo, c_hi = cur[None, :, ax] - cur[None, :, 2 + ax] / 2, cur[None, :, ax] + cur[None, :, 2 + ax] / 2
        gaps.append(np.maximum(0.0, np.maximum(p_lo - c_hi, c_lo - p_hi)))
        ratio = np.log(np.maximum(cur[None, :, 2 + ax], 1.0) / np.maximum(prev[:, None, 2 + ax], 1.0))
        grow.append(np.where(prev_part[:, None], np.maximum(-ratio, 0.0), np.maximum(ratio, 0.0)))
    part_cost = p.alpha * np.hypot(gaps[0], gaps[1]) / diag + p.beta * (grow[0] + grow[1])
    return np.asarray(np.where(prev_part[:, None] | cur_part[None, :], part_cost, out))


def partial_keyframes(key_xyxy: Float64Array, ratio: float) -> npt.NDArray[np.bool_]:
    """(K,) whether each of (K, 4) ``xyxy`` keyframe boxes shows part of the object: its diagonal is smaller than a
    neighbouring keyframe's by more than the factor ``ratio`` (an object entering, leaving or half hidden)."""
    b = np.asarray(key_xyxy, np.float64).reshape(-1, 4)
    d = np.maximum(np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), 1.0)
    out = np.zeros(len(b), bool)
    out[:-1] |= d[1:] > ratio * d[:-1]
    out[1:] |= d[:-1] > ratio * d[1:]
    return out


def _gap_candidates(
    detections: Mapping[int, Detections],
    a: int,
    b: int,
    keys: Float64Array,
    key_cut: npt.NDArray[np.bool_],
    p: DetPathParams,
    image_wh: tuple[int, int] | None,
) -> tuple[list[Float64Array], list[Float64Array], list[npt.NDArray[np.bool_]]]:
    """Per frame from ``a`` to ``b - 1``: the detections of a plausible size (``cx, cy, w, h``), their scores and
    cut edges; the first entry is keyframe ``a`` (``keys`` holds both keyframes as ``cx, cy, w, h``)."""
    # Size bounds per axis (log pixels): a keyframe cut by the border shows a part of the object (an arm ahead of a
    # person walking in), a lower bound of its size on both axes, so where both are cut the other axis bounds it
    # (at most 1.5 times as long).
    whole = np.repeat(~key_cut.any(axis=1, keepdims=True), 2, axis=1)  # (2 keyframes, 2 axes)
    log_key = np.log(np.maximum(keys[:, 2:], 1.0))
    size_lo = log_key.min(0) - p.max_log_size
    size_hi = log_key.max(0) + p.max_log_size
    size_hi = np.where(whole.any(0), size_hi, np.maximum(size_hi, size_hi[::-1] + np.log(1.5)))
    cands: list[Float64Array] = [keys[:1]]
    scores: list[Float64Array] = [np.ones(1)]
    cuts: list[npt.NDArray[np.bool_]] = [key_cut[:1]]
    for f in range(a + 1, b):
        d = detections.get(f)
        if d is None or len(d) == 0:
            c, s, x = np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4))
        else:
            x = d.xyxy.astype(np.float64)
            c = _cxcywh(x)
            ls = np.log(np.maximum(c[:, 2:], 1.0))
            ok = ((ls >= size_lo) & (ls <= size_hi)).all(1)
            c, s, x = c[ok], d.scores.astype(np.float64)[ok], x[ok]
        cands.append(c)
        scores.append(s)
        cuts.append(cut_edges(x, image_wh, p.border_px))
    return cands, scores, cuts


def _median_step(cands: list[Float64Array], fastest: bool = False) -> float | None:
    """Median over consecutive frames of the distance between their nearest detection centres, or with ``fastest``
    of the largest distance from a detection to the nearest of the next frame's (None: no two consecutive frames
    with detections)."""
    steps = []
    for c0, c1 in pairwise(cands):
        if len(c0) and len(c1):
            nearest = np.hypot(c1[None, :, 0] - c0[:, None, 0], c1[None, :, 1] - c0[:, None, 1]).min(axis=1)
            steps.append(float(nearest.max() if fastest else nearest.min()))
    return float(np.median(steps)) if steps else None


def _sized_candidates(
    detections: Mapping[int, Detections],
    a: int,
    b: int,
    key_a: Float64Array,
    key_b: Float64Array,
    params: DetPathParams | None,
    image_wh: tuple[int, int] | None,
) -> tuple[Float64Array, list[Float64Array]]:
    """The keyframes (2, 4) and the detections of their size per frame from ``a`` to ``b - 1`` (``cx, cy, w, h``; the
    first entry is keyframe ``a``)."""
    p = params or DetPathParams()
    key_xyxy = np.stack([np.asarray(key_a, np.float64), np.asarray(key_b, np.float64)])
    keys = _cxcywh(key_xyxy)
    cands, _, _ = _gap_candidates(detections, a, b, keys, cut_edges(key_xyxy, image_wh, p.border_px), p, image_wh)
    return keys, cands


def detection_speed(
    detections: Mapping[int, Detections],
    a: int,
    b: int,
    key_a: Float64Array,
    key_b: Float64Array,
    params: DetPathParams | None = None,
    image_wh: tuple[int, int] | None = None,
) -> float | None:
    """How fast detections of the keyframes' size move between keyframes ``a`` and ``b``: the median step between
    the nearest such detections of consecutive frames (the fastest detection's step with ``params.fastest_step``),
    in keyframe box diagonals per frame (None: too few detections to tell). A thrown ball is well above 1, a walking
    person well below."""
    p = params or DetPathParams()
    keys, cands = _sized_candidates(detections, a, b, key_a, key_b, params, image_wh)
    step = _median_step(cands[1:], p.fastest_step)
    diag = float(np.hypot(keys[:, 2], keys[:, 3]).mean())
    return None if step is None else step / max(diag, 1.0)


def detection_coverage(
    detections: Mapping[int, Detections],
    a: int,
    b: int,
    key_a: Float64Array,
    key_b: Float64Array,
    params: DetPathParams | None = None,
    image_wh: tuple[int, int] | None = None,
) -> float:
    """Share of the frames strictly between keyframes ``a`` and ``b`` with at least one detection of the keyframes'
    size (the size gate of :func:`detection_path`); 1.0 when there are no such frames."""
    if b - a < 2:
        return 1.0
    _, cands = _sized_candidates(detections, a, b, key_a, key_b, params, image_wh)
    return float(np.mean([len(c) > 0 for c in cands[1:]]))


def detection_agreement(
    xyxy: Float64Array, first_frame: int, detections: Mapping[int, Detections], duplicate_iou: float = 0.7
) -> tuple[Float64Array, Float64Array]:
    """How well each of (T, 4) boxes for frames ``first_frame ..`` sits on that frame's detections.

    Returns (T,) the best IoU with any detection and (T,) the best IoU with another detection, one overlapping the
    best by less than ``duplicate_iou`` (a second object a path could take for the first, not the same object boxed
    twice, e.g. under two classes); 0 where a frame has no detections or its box is not finite.
    """
    n = len(xyxy)
    best, second = np.zeros(n), np.zeros(n)
    for i in range(n):
        d = detections.get(first_frame + i)
        if d is None or not len(d.xyxy) or not np.isfinite(xyxy[i]).all():
            continue
        ious = box_iou(xyxy[i], d.xyxy)[0]
        j = int(np.argmax(ious))
        best[i] = ious[j]
        others = box_iou(d.xyxy[j], d.xyxy)[0] < duplicate_iou
        second[i] = float(ious[others].max()) if others.any() else 0.0
    return best, second


def detection_path(
    detections: Mapping[int, Detections],
    a: int,
    b: int,
    key_a: Float64Array,
    key_b: Float64Array,
    params: DetPathParams | None = None,
    image_wh: tuple[int, int] | None = None,
    appearance: Callable[[int, Float64Array], Float64Array] | None = None,
) -> tuple[Float64Array, Float64Array]:
    """Detections on the cheapest path from keyframe ``a`` to keyframe ``b`` (see the module docstring).

    Args:
        detections: detector output per frame index (any class).
        a, b: keyframe indices, ``b - a >= 2``.
        key_a, key_b: (4,) keyframe boxes ``xyxy`` in pixels.
        params: costs.
        image_wh: ``(width, height)`` of the frames in pixels; with it, boxes cut by the image border are compared
            on the edges they show (None: no box counts as cut).
        appearance: ``cost(frame, boxes)``, (N,) costs added to the node costs of (N, 4) ``xyxy`` detections of a
            frame between the keyframes (e.g. :func:`~prelabel.interpolate.appearance.appearance_cost`).

    Returns:
        ``(boxes, scores)``: (b - a + 1, 4) float64 ``xyxy`` of the chosen detection per frame (NaN where the path
        has none; the keyframe boxes at both ends) and (b - a + 1,) their scores (0 where none, 1 at the ends).
    """
    p = params or DetPathParams()
    n = b - a + 1
    key_xyxy = np.stack([np.asarray(key_a, np.float64), np.asarray(key_b, np.float64)])
    keys = _cxcywh(key_xyxy)
    key_cut = cut_edges(key_xyxy, image_wh, p.border_px)
    cands, scores, cuts = _gap_candidates(detections, a, b, keys, key_cut, p, image_wh)
    cands.append(keys[1:])
    scores.append(np.ones(1))
    cuts.append(key_cut[1:])
    # The scale: keyframes differing by more than ``partial_ratio`` in diagonal show part of the object (cut by the
    # border or hidden), and the larger gives the scale; both cut: the whole detections in the gap.
    key_part = partial_keyframes(key_xyxy, p.partial_ratio)
    key_diag = np.hypot(keys[:, 2], keys[:, 3])
    diag = float(key_diag.max() if key_part.any() else key_diag.mean())
    if key_cut.any(1).all():
        inner = [c[~(k.any(1))] for c, k in zip(cands[1:-1], cuts[1:-1], strict=True)]
        sizes = np.concatenate([np.hypot(c[:, 2], c[:, 3]) for c in inner]) if inner else np.zeros(0)
        diag = max(diag, float(np.median(sizes)) if len(sizes) else 0.0)
    diag = max(diag, 1.0)
    reach = 0.0
    if p.speed_scale:
        step = _median_step(cands[1:-1], p.fastest_step)
        if step is not None:
            diag = max(diag, step)
            # How far from the straight line an object moving ``step`` per frame can get (it turns back halfway).
            reach = step * (n - 1) / 2
    # The straight line is a weaker guide the farther the keyframes are apart (balls arc, people turn) and the
    # farther the object can stray from it (a ball dropped and bouncing back between close keyframes).
    line_scale = max(diag, float(np.hypot(*(keys[1, :2] - keys[0, :2]))), p.line_reach * reach)

    # States per frame: its detections, then "not detected" states. A miss state carries the last real box of
    # its path (its anchor), so a path that skips frames pays for the whole jump when it comes back; every state of
    # the previous frame may continue as a miss, and the ``max_miss_states`` cheapest misses are kept.
    cost = np.zeros(1)
    anchor = keys[:1]  # (S, 4) the last real box of each state's path
    anchor_cut = key_cut[:1]
    anchor_part = key_part[:1]
    anchor_t = np.zeros(1)  # frame (from a) of each state's anchor
    key_vel = (keys[1, :2] - keys[0, :2]) / (n - 1)
    vel = p.velocity_weight * key_vel
    anchor_vel = key_vel[None, :].copy()  # (S, 2) the path's velocity into its anchor (pixels per frame)
    back: list[npt.NDArray[np.int64]] = []
    for t in range(1, n):
        c = cands[t]
        part = key_part[1:] if t == n - 1 else np.zeros(len(c), bool)
        shift = (t - anchor_t)[:, None] * ((1.0 - p.own_velocity) * vel[None, :] + p.own_velocity * anchor_vel)
        tot = cost[:, None] + _transition(anchor, c, diag, p, anchor_cut, cuts[t], anchor_part, part, shift)
        prev = np.argmin(tot, axis=0) if len(c) else np.zeros(0, np.int64)
        if t < n - 1:
            line = keys[0, :2] + (t / (n - 1)) * (keys[1, :2] - keys[0, :2])
            node = (1.0 - scores[t]) * p.score_cost + p.line_cost * np.hypot(*(c[:, :2] - line).T) / line_scale
            if appearance is not None and len(c):
                node = node + appearance(a + t, np.c_[c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2])
            new_cost = tot[prev, np.arange(len(c))] + node
        else:
            new_cost = tot[prev, 0]
        new_anchor, new_cut, new_part, new_t = c.copy(), cuts[t].copy(), part.copy(), np.full(len(c), float(t))
        new_vel = (c[:, :2] - anchor[prev, :2]) / np.maximum(t - anchor_t[prev], 1.0)[:, None]
        if t < n - 1:
            keep = np.argsort(cost, kind="stable")[: p.max_miss_states]
            new_cost = np.concatenate([new_cost, cost[keep] + p.miss_cost])
            new_anchor = np.concatenate([new_anchor, anchor[keep]])
            new_cut = np.concatenate([new_cut, anchor_cut[keep]])
            new_part = np.concatenate([new_part, anchor_part[keep]])
            new_t = np.concatenate([new_t, anchor_t[keep]])
            new_vel = np.concatenate([new_vel, anchor_vel[keep]])
            prev = np.concatenate([prev, keep])
        cost, anchor, anchor_cut, anchor_part = np.asarray(new_cost, np.float64), new_anchor, new_cut, new_part
        anchor_t, anchor_vel = new_t, new_vel
        back.append(np.asarray(prev, np.int64))
    out = np.full((n, 4), np.nan)
    out_s = np.zeros(n)
    state = 0
    for t in range(n - 1, 0, -1):
        if state < len(cands[t]):
            cx, cy, w, h = cands[t][state]
            out[t] = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
            out_s[t] = scores[t][state]
        state = int(back[t - 1][state])
    out[0], out[-1] = key_a, key_b
    out_s[0] = out_s[-1] = 1.0
    return out, out_s
