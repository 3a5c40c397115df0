"""Multi-object tracking metrics (HOTA with DetA/AssA/LocA, IDF1, MOTA, ID switches) computed by TrackEval.

TrackEval is used as a library: its ``HOTA``, ``CLEAR`` and ``Identity`` metric classes score a per-frame
``data`` dictionary that this module builds from prelabel :class:`~prelabel.types.Track` lists, the same way
TrackEval's MOTChallenge loader does for MOT15 (box IoU in pixels, IDs relabelled to contiguous 0-based indices,
no distractor preprocessing). GT rows marked "ignore" in MOTChallenge files (conf 0) are dropped by the caller before
building the ground-truth tracks, which is what TrackEval does for MOT15.

numpy 2: TrackEval releases up to 1.2 used the removed aliases ``np.float``/``np.int``/``np.bool``; the
``trackeval>=1.3`` release on PyPI no longer does, so it is used unmodified (``tests/metrics/test_tracking.py``
checks it on hand-computed cases).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.geometry import box_iou
from prelabel.types import Track

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackingScores:
    """Scores of one sequence, fractions in [0, 1] unless said otherwise.

    Attributes:
        hota, deta, assa, loca: HOTA and its detection, association and localisation parts, averaged over the IoU
            thresholds 0.05..0.95 (TrackEval's definition).
        idf1, idp, idr: identity F1, precision and recall at IoU 0.5.
        mota, motp: CLEAR MOT accuracy (may be negative) and precision at IoU 0.5.
        id_switches: number of identity switches (CLEAR).
        fragmentations: number of track fragmentations (CLEAR).
        num_gt_dets, num_pred_dets: boxes counted on each side.
        num_gt_ids, num_pred_ids: identities on each side.
    """

    hota: float
    deta: float
    assa: float
    loca: float
    idf1: float
    idp: float
    idr: float
    mota: float
    motp: float
    id_switches: int
    fragmentations: int
    num_gt_dets: int
    num_pred_dets: int
    num_gt_ids: int
    num_pred_ids: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain ``dict`` for JSON output."""
        return asdict(self)


def _frame_span(gt: Sequence[Track], pred: Sequence[Track]) -> int:
    last = -1
    for t in (*gt, *pred):
        for b in t.boxes:
            if b.frame_idx < 0:
                raise InvalidInputError(f"track {t.track_id}: frame_idx must be >= 0, got {b.frame_idx}")
            last = max(last, b.frame_idx)
    return last + 1


def _per_frame(tracks: Sequence[Track], num_frames: int) -> tuple[list[list[int]], list[list[np.ndarray]]]:
    ids: list[list[int]] = [[] for _ in range(num_frames)]
    boxes: list[list[np.ndarray]] = [[] for _ in range(num_frames)]
    seen: set[int] = set()
    for t in tracks:
        if t.track_id in seen:
            raise InvalidInputError(f"track {t.track_id}: the same track_id appears twice")
        seen.add(t.track_id)
        for b in t.boxes:
            if b.frame_idx >= num_frames:
                raise InvalidInputError(
                    f"track {t.track_id}: frame {b.frame_idx} is outside the sequence of {num_frames} frames"
                )
            ids[b.frame_idx].append(t.track_id)
            boxes[b.frame_idx].append(b.xyxy)
    return ids, boxes


def build_trackeval_data(gt: Sequence[Track], pred: Sequence[Track], num_frames: int | None = None) -> dict[str, Any]:
    """The per-sequence ``data`` dictionary TrackEval's metric classes take.

    Args:
        gt: ground-truth tracks (ignored rows already removed).
        pred: tracker output.
        num_frames: sequence length; defaults to one past the last frame on either side.

    Returns:
        ``num_timesteps``, ``num_gt_ids``, ``num_tracker_ids``, ``num_gt_dets``, ``num_tracker_dets``, ``gt_ids``,
        ``tracker_ids`` (per frame, (n,) int arrays of contiguous 0-based ids) and ``similarity_scores`` (per frame,
        (n_gt, n_pred) IoU).

    Raises:
        InvalidInputError: duplicate track ids, or a box beyond ``num_frames``.
    """
    span = _frame_span(gt, pred)
    n = span if num_frames is None else int(num_frames)
    gt_ids, gt_boxes = _per_frame(gt, n)
    pr_ids, pr_boxes = _per_frame(pred, n)
    gt_map = {tid: i for i, tid in enumerate(sorted({t.track_id for t in gt if len(t)}))}
    pr_map = {tid: i for i, tid in enumerate(sorted({t.track_id for t in pred if len(t)}))}
    data: dict[str, Any] = {
        "num_timesteps": n,
        "num_gt_ids": len(gt_map),
        "num_tracker_ids": len(pr_map),
        "num_gt_dets": sum(len(x) for x in gt_ids),
        "num_tracker_dets": sum(len(x) for x in pr_ids),
        "gt_ids": [np.array([gt_map[i] for i in x], dtype=int) for x in gt_ids],
        "tracker_ids": [np.array([pr_map[i] for i in x], dtype=int) for x in pr_ids],
        "similarity_scores": [
            box_iou(np.array(g).reshape(-1, 4), np.array(p).reshape(-1, 4))
            for g, p in zip(gt_boxes, pr_boxes, strict=True)
        ],
        "seq": "sequence",
    }
    return data


def evaluate_tracks(gt: Sequence[Track], pred: Sequence[Track], num_frames: int | None = None) -> TrackingScores:
    """Score ``pred`` against ``gt`` with TrackEval's HOTA, CLEAR and Identity metrics.

    Args:
        gt: ground-truth tracks; boxes ``xyxy`` pixels, one per frame where the object is labelled.
        pred: tracker output in the same frame indexing.
        num_frames: sequence length (frames with nothing on either side still count for nothing).

    Returns:
        :class:`TrackingScores`.

    Raises:
        InvalidInputError: duplicate track ids or frames out of range.
    """
    from trackeval.metrics import CLEAR, HOTA, Identity  # heavy import kept out of module import

    data = build_trackeval_data(gt, pred, num_frames)
    hota = HOTA().eval_sequence(data)
    clear = CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)
    ident = Identity({"PRINT_CONFIG": False}).eval_sequence(data)
    return TrackingScores(
        hota=float(np.mean(hota["HOTA"])),
        deta=float(np.mean(hota["DetA"])),
        assa=float(np.mean(hota["AssA"])),
        loca=float(np.mean(hota["LocA"])),
        idf1=float(ident["IDF1"]),
        idp=float(ident["IDP"]),
        idr=float(ident["IDR"]),
        mota=float(clear["MOTA"]),
        motp=float(clear["MOTP"]),
        id_switches=int(clear["IDSW"]),
        fragmentations=int(clear["Frag"]),
        num_gt_dets=int(data["num_gt_dets"]),
        num_pred_dets=int(data["num_tracker_dets"]),
        num_gt_ids=int(data["num_gt_ids"]),
        num_pred_ids=int(data["num_tracker_ids"]),
    )
