"""Checks of tracker input: detections per frame and their order, with errors that name the frame and row."""

from __future__ import annotations

import math

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.types import Detections


def check_detections(frame_idx: int, detections: Detections) -> None:
    """Raise :class:`InvalidInputError` naming ``frame_idx`` and the row of the first bad detection.

    Bad: a non-finite coordinate or score, negative width or height, a score outside [0, 1], or arrays of unequal
    length. (``Detections`` checks this when it is built; callers may have changed the arrays since.)
    """
    xyxy = np.asarray(detections.xyxy)
    scores = np.asarray(detections.scores)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise InvalidInputError(f"frame {frame_idx}: expected detections of shape (N, 4) xyxy, got {xyxy.shape}")
    n = len(xyxy)
    if scores.shape != (n,) or np.asarray(detections.class_ids).shape != (n,):
        raise InvalidInputError(
            f"frame {frame_idx}: expected {n} scores and class ids, got {scores.shape} and "
            f"{np.asarray(detections.class_ids).shape}"
        )
    bad = ~np.isfinite(xyxy).all(axis=1) | ~np.isfinite(scores)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(
            f"frame {frame_idx}, row {row}: expected finite box and score, got box {xyxy[row].tolist()} "
            f"score {float(scores[row])}"
        )
    neg = (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
    if neg.any():
        row = int(np.argmax(neg))
        raise InvalidInputError(
            f"frame {frame_idx}, row {row}: expected x2 >= x1 and y2 >= y1, got negative size in box "
            f"{xyxy[row].tolist()}"
        )
    out = (scores < 0.0) | (scores > 1.0)
    if out.any():
        row = int(np.argmax(out))
        raise InvalidInputError(f"frame {frame_idx}, row {row}: expected a score in [0, 1], got {float(scores[row])}")


def check_order(frame_idx: int, ts_ms: float, prev_frame: int | None, prev_ts: float | None) -> None:
    """Raise :class:`InvalidInputError` unless frames come in strictly increasing order with non-decreasing times."""
    if frame_idx < 0:
        raise InvalidInputError(f"frame {frame_idx}: expected frame_idx >= 0")
    if not math.isfinite(ts_ms):
        raise InvalidInputError(f"frame {frame_idx}: expected a finite ts_ms, got {ts_ms}")
    if prev_frame is not None and frame_idx == prev_frame:
        raise InvalidInputError(f"frame {frame_idx}: given twice (each frame once, its detections together)")
    if prev_frame is not None and frame_idx < prev_frame:
        raise InvalidInputError(
            f"frame {frame_idx}: frames out of order, expected frame_idx > {prev_frame} (the previous frame)"
        )
    if prev_ts is not None and ts_ms < prev_ts:
        raise InvalidInputError(f"frame {frame_idx}: timestamps out of order, expected ts_ms >= {prev_ts}, got {ts_ms}")
