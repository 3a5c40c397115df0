"""Vectorised association costs (IoU, motion-direction consistency) and gated linear assignment (lap)."""

from __future__ import annotations

import lap
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_FORBIDDEN = 1e6
_UNMATCHED = 1e5


def direction_consistency(track_dirs: F64, track_anchor: F64, det_centres: F64) -> F64:
    """Cosine between each track's motion direction and the direction from its anchor to each detection.

    Args:
        track_dirs: (N, 2) unit vectors of the tracks' recent motion (zero when unknown).
        track_anchor: (N, 2) centres of the tracks' last observations, pixels.
        det_centres: (M, 2) detection centres, pixels.

    Returns:
        (N, M) cosines in [-1, 1]; 0 where a track has no direction (OC-SORT's velocity-direction consistency).
    """
    dx = det_centres[None, :, 0] - track_anchor[:, None, 0]
    dy = det_centres[None, :, 1] - track_anchor[:, None, 1]
    norm = np.maximum(np.sqrt(dx * dx + dy * dy), 1e-6)
    return (dx * track_dirs[:, 0:1] + dy * track_dirs[:, 1:2]) / norm


def linear_assignment(score: F64, valid: npt.NDArray[np.bool_], unmatched_cost: float | None = None) -> tuple[I64, I64]:
    """Pairs maximising the total ``score`` among ``valid`` pairs.

    Args:
        score: (N, M) higher is better; the cost of a pair is ``1 - score``.
        valid: (N, M) pairs that may be matched (the gate).
        unmatched_cost: None: as many valid pairs as possible, ranked by score. A number: leaving a row and a
            column unmatched costs this in total, so a pair is made only where it beats that (a cheaper pair
            elsewhere may win over two costly ones).

    Returns:
        ``rows, cols`` (K,) int64 matched indices.
    """
    n, m = score.shape
    if n == 0 or m == 0 or not valid.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if valid.sum(axis=1).max() <= 1 and valid.sum(axis=0).max() <= 1:
        rows, cols = np.nonzero(valid)  # no competition: every valid pair is in the optimum
        if unmatched_cost is None:
            return rows.astype(np.int64), cols.astype(np.int64)
        keep = 1.0 - score[rows, cols] < unmatched_cost
        return rows[keep].astype(np.int64), cols[keep].astype(np.int64)
    cost = np.where(valid, 1.0 - score, _FORBIDDEN)
    # Entries above cost_limit are never assigned; the gate forbids pairs, the cost ranks the rest.
    limit = _UNMATCHED if unmatched_cost is None else float(unmatched_cost)
    _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    rows = np.nonzero(x >= 0)[0]
    cols = x[rows]
    keep = valid[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)
