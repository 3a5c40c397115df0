"""The detections an object most plausibly went through between two keyframes (a shortest path over frames).

Between keyframes ``a`` and ``b`` every frame offers its detections plus one "not detected" option. A path picks one
option per frame; its cost is

    sum_t node(t) + sum_t alpha * |c_t - c_{t-1}| / D + beta * (|log w_t / w_{t-1}| + |log h_t / h_{t-1}|)

with ``node = (1 - score) * score_cost`` for a detection and ``miss_cost`` for "not detected" (whose transitions
cost nothing), ``c`` box centres, ``D`` the keyframes' mean box diagonal, and the keyframe boxes fixed at both
ends. Dynamic programming (Viterbi) finds the cheapest path in ``O(L * N^2)`` for ``L`` frames of at most ``N``
detections. Unlike matching each frame against a predicted box, this follows objects that move more than their own
size per frame, as long as the detector sees them: the right object is the one whose chain of boxes joins both
keyframes with the least travel and the fewest misses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.interpolate.base import Float64Array
from prelabel.types import Detections


@dataclass(frozen=True)
class DetPathParams:
    """Costs of :func:`detection_path` (units: keyframe box diagonals of travel).

    Attributes:
        alpha: cost per diagonal of centre travel between consecutive frames.
        beta: cost per unit of absolute log size change between consecutive frames.
        miss_cost: cost of a frame without a detection on the path.
        score_cost: cost of a detection with score 0 (score 1 costs nothing).
        max_log_size: detections whose width or height differ from the keyframes' by more than this log ratio are
            never on the path (keeps a ball's path off people and the other way round).
        max_miss_states: "not detected" states kept per frame (the cheapest).
    """

    alpha: float = 1.0
    beta: float = 1.0
    miss_cost: float = 1.0
    score_cost: float = 0.5
    max_log_size: float = 0.9
    max_miss_states: int = 16


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


def _transition(prev: Float64Array, cur: Float64Array, diag: float, p: DetPathParams) -> Float64Array:
    """(P, C) cost between boxes ``prev`` (P, 4) and ``cur`` (C, 4), both ``cx, cy, w, h``."""
    d = np.hypot(cur[None, :, 0] - prev[:, None, 0], cur[None, :, 1] - prev[:, None, 1]) / diag
    ls = np.abs(np.log(np.maximum(cur[None, :, 2:], 1.0) / np.maximum(prev[:, None, 2:], 1.0))).sum(-1)
    return np.asarray(p.alpha * d + p.beta * ls)


def detection_path(
    detections: Mapping[int, Detections],
    a: int,
    b: int,
    key_a: Float64Array,
    key_b: Float64Array,
    params: DetPathParams | None = None,
) -> tuple[Float64Array, Float64Array]:
    """Detections on the cheapest path from keyframe ``a`` to keyframe ``b`` (see the module docstring).

    Args:
        detections: detector output per frame index (any class).
        a, b: keyframe indices, ``b - a >= 2``.
        key_a, key_b: (4,) keyframe boxes ``xyxy`` in pixels.
        params: costs.

    Returns:
        ``(boxes, scores)``: (b - a + 1, 4) float64 ``xyxy`` of the chosen detection per frame (NaN where the path
        has none; the keyframe boxes at both ends) and (b - a + 1,) their scores (0 where none, 1 at the ends).
    """
    p = params or DetPathParams()
    n = b - a + 1
    keys = _cxcywh(np.stack([np.asarray(key_a, np.float64), np.asarray(key_b, np.float64)]))
    diag = max(float(np.hypot(keys[:, 2], keys[:, 3]).mean()), 1.0)
    size_lo = np.log(np.maximum(keys[:, 2:].min(0), 1.0)) - p.max_log_size
    size_hi = np.log(np.maximum(keys[:, 2:].max(0), 1.0)) + p.max_log_size
    cands: list[Float64Array] = [keys[:1]]
    scores: list[Float64Array] = [np.ones(1)]
    for f in range(a + 1, b):
        d = detections.get(f)
        if d is None or len(d) == 0:
            c, s = np.zeros((0, 4)), np.zeros(0)
        else:
            c = _cxcywh(d.xyxy.astype(np.float64))
            ls = np.log(np.maximum(c[:, 2:], 1.0))
            ok = ((ls >= size_lo) & (ls <= size_hi)).all(1)
            c, s = c[ok], d.scores.astype(np.float64)[ok]
        cands.append(c)
        scores.append(s)
    cands.append(keys[1:])
    scores.append(np.ones(1))

    # States per frame: its detections, then "not detected" states. A miss state carries the last real box of
    # its path (its anchor), so a path that skips frames pays for the whole jump when it comes back; every state of
    # the previous frame may continue as a miss, and the ``max_miss_states`` cheapest misses are kept.
    cost = np.zeros(1)
    anchor = keys[:1]  # (S, 4) the last real box of each state's path
    back: list[npt.NDArray[np.int64]] = []
    for t in range(1, n):
        c = cands[t]
        tot = cost[:, None] + _transition(anchor, c, diag, p)  # (S, C)
        prev = np.argmin(tot, axis=0) if len(c) else np.zeros(0, np.int64)
        new_cost = tot[prev, np.arange(len(c))] + (1.0 - scores[t]) * p.score_cost if t < n - 1 else tot[prev, 0]
        new_anchor = c.copy()
        if t < n - 1:
            keep = np.argsort(cost, kind="stable")[: p.max_miss_states]
            new_cost = np.concatenate([new_cost, cost[keep] + p.miss_cost])
            new_anchor = np.concatenate([new_anchor, anchor[keep]])
            prev = np.concatenate([prev, keep])
        cost, anchor = np.asarray(new_cost, np.float64), new_anchor
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
