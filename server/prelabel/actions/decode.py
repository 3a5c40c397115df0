"""From per-frame class scores to segments: smoothing, per-layer labelling, minimum durations, boundary uncertainty."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import uniform_filter1d

from prelabel.actions.taxonomy import Taxonomy
from prelabel.errors import InvalidInputError
from prelabel.types import Segment, Source

BG = -1  # frame label index for "no label in this layer"


@dataclass(frozen=True)
class DecodeOptions:
    """How scores become segments.

    Attributes:
        smooth_s: width of the moving average over scores, in seconds (0 disables).
        threshold: score a class of a sparse (non-first) layer needs to label a frame.
        min_gap_s: shortest background run kept inside a sparse layer; shorter ones are absorbed.
        margin: score difference below which a frame near a boundary counts as uncertain.
        max_uncertainty_s: cap on the reported boundary uncertainty, in seconds.
    """

    smooth_s: float = 0.2
    threshold: float = 0.5
    min_gap_s: float = 0.3
    margin: float = 0.25
    max_uncertainty_s: float = 1.0


def _runs(labels: npt.NDArray[np.int64]) -> list[tuple[int, int, int]]:
    """(label, start, end inclusive) runs."""
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts - 1, [len(labels) - 1]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _score_of(probs: npt.NDArray[np.float64], label: int, a: int, b: int) -> float:
    """Mean score of ``label`` (column, or background = 1 - max) over frames ``a..b``."""
    if label == BG:
        return float(np.mean(1.0 - probs[a : b + 1].max(axis=1)))
    return float(np.mean(probs[a : b + 1, label]))


def enforce_min_durations(
    labels: npt.NDArray[np.int64], probs: npt.NDArray[np.float64], min_frames: Sequence[int], min_gap: int
) -> npt.NDArray[np.int64]:
    """Absorb runs shorter than their class's minimum into the neighbour that scores best over them.

    Args:
        labels: (T,) column indices into ``probs`` or :data:`BG`.
        probs: (T, K) scores of the layer's classes.
        min_frames: (K,) minimum run length per class.
        min_gap: minimum length of a background run.

    Returns:
        (T,) cleaned labels (shortest offending run first, until none is left or only one run remains).
    """
    out = labels.copy()
    while True:
        runs = _runs(out)
        if len(runs) <= 1:
            return out
        short = [
            (e - s + 1, i)
            for i, (lab, s, e) in enumerate(runs)
            if e - s + 1 < (min_gap if lab == BG else min_frames[lab])
        ]
        if not short:
            return out
        _, i = min(short)
        _, s, e = runs[i]
        cands = [runs[j][0] for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        best = max(cands, key=lambda c: _score_of(probs, c, s, e))
        out[s : e + 1] = best


def _uncertainty(probs: npt.NDArray[np.float64], a: int, b: int, boundary: int, margin: float, cap: int) -> int:
    """Frames around ``boundary`` (first frame of the new run) where classes ``a`` and ``b`` are within ``margin``."""

    def col(lab: int, t: int) -> float:
        return float(1.0 - probs[t].max()) if lab == BG else float(probs[t, lab])

    n = len(probs)
    left = 0
    t = boundary - 1
    while t >= 0 and left < cap and abs(col(b, t) - col(a, t)) < margin:
        left += 1
        t -= 1
    right = 0
    t = boundary
    while t < n and right < cap and abs(col(b, t) - col(a, t)) < margin:
        right += 1
        t += 1
    return max(1, left, right)


def _allowed(
    layer: Sequence[str],
    decoded: Sequence[tuple[tuple[str, ...], npt.NDArray[np.int64]]],
    taxonomy: Taxonomy,
    n: int,
) -> npt.NDArray[np.bool_]:
    """(n, len(layer)) True where a class of ``layer`` may co-occur with the labels already decoded in earlier
    layers (e.g. no wave while falling when the taxonomy forbids that overlap)."""
    ok = np.ones((n, len(layer)), dtype=bool)
    for names, labels in decoded:
        for k, c in enumerate(layer):
            for j, e in enumerate(names):
                if not taxonomy.may_overlap(c, e):
                    ok[labels == j, k] = False
    return ok


def decode_track(
    scores: npt.ArrayLike,
    frames: npt.ArrayLike,
    ts_ms: npt.ArrayLike,
    *,
    track_id: int,
    taxonomy: Taxonomy,
    fps: float,
    source: Source = Source.RULE,
    method: str = "rules",
    options: DecodeOptions | None = None,
) -> list[Segment]:
    """Segments of one contiguous track sequence from its per-frame class scores.

    Later (gesture) layers are decoded first: they label frames whose best score passes ``options.threshold``.
    The first taxonomy layer then labels every frame with its best class that may overlap the gestures chosen
    there (argmax); where minimum durations still leave a forbidden overlap the gesture gives way.
    Runs shorter than a class's ``min_duration_ms`` are merged into a neighbour.

    Args:
        scores: (T, C) scores in [0, 1], columns in ``taxonomy.names`` order.
        frames: (T,) consecutive frame indices.
        ts_ms: (T,) timestamps in ms.
        track_id: written into each segment.
        taxonomy: classes, layers and minimum durations.
        fps: frame rate used to turn durations into frames.
        source, method: provenance written into each segment.
        options: decoding parameters.

    Returns:
        Segments sorted by layer, then start frame; confidence is the mean score of the label over the segment and
        the uncertainties count frames around each boundary where the two neighbouring classes score within
        ``options.margin`` (at least 1 for a boundary between two segments, 0 at the ends of the sequence).

    Raises:
        InvalidInputError: shapes disagree.
    """
    opt = options or DecodeOptions()
    s = np.asarray(scores, dtype=np.float64)
    fr = np.asarray(frames, dtype=np.int64).reshape(-1)
    ts = np.asarray(ts_ms, dtype=np.float64).reshape(-1)
    names = taxonomy.names
    if s.ndim != 2 or s.shape[1] != len(names) or len(s) != len(fr) or len(ts) != len(fr):
        raise InvalidInputError(
            f"track {track_id}: expected scores (T, {len(names)}), frames (T,), ts_ms (T,), got {s.shape}, "
            f"{fr.shape}, {ts.shape}"
        )
    if len(fr) == 0:
        return []
    if opt.smooth_s > 0 and len(s) > 2:
        s = uniform_filter1d(s, size=max(1, round(opt.smooth_s * fps)) | 1, axis=0, mode="nearest")
    cap = max(1, round(opt.max_uncertainty_s * fps))
    layers = taxonomy.layers()
    # Gesture layers first: a confident wave decides that the body is upright (stand, walk or run); the dense
    # layer then picks the best class compatible with it.
    order = [*range(1, len(layers)), 0]
    decoded: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
    for li in order:
        layer = layers[li]
        allowed = _allowed(layer, [(layers[k], decoded[k][0]) for k in decoded], taxonomy, len(s))
        allowed |= ~allowed.any(axis=1, keepdims=True)  # nothing compatible: let the scores decide
        p = np.where(allowed, s[:, [names.index(n) for n in layer]], 0.0)
        best = np.argmax(p, axis=1).astype(np.int64)
        if li > 0:
            best = np.where(p.max(axis=1) >= opt.threshold, best, BG)
        mins = [taxonomy.get(n).min_frames(fps) for n in layer]
        decoded[li] = (enforce_min_durations(best, p, mins, max(1, round(opt.min_gap_s * fps))), p)
    # Minimum durations may stretch a body run over a gesture it excludes: the gesture gives way there.
    dense = decoded[0][0]
    for li in range(1, len(layers)):
        labels, p = decoded[li]
        ok = _allowed(layers[li], [(layers[0], dense)], taxonomy, len(s))
        keep = (labels == BG) | ok[np.arange(len(labels)), np.maximum(labels, 0)]
        decoded[li] = (np.where(keep, labels, BG), p)
    out: list[Segment] = []
    for li, layer in enumerate(layers):
        labels, p = decoded[li]
        runs = _runs(labels)
        for i, (lab, a, b) in enumerate(runs):
            if lab == BG:
                continue
            su = _uncertainty(p, runs[i - 1][0], lab, a, opt.margin, cap) if i > 0 else 0
            eu = _uncertainty(p, lab, runs[i + 1][0], b + 1, opt.margin, cap) if i + 1 < len(runs) else 0
            out.append(
                Segment(
                    track_id=track_id,
                    label=layer[lab],
                    start_frame=int(fr[a]),
                    end_frame=int(fr[b]),
                    start_ts_ms=float(ts[a]),
                    end_ts_ms=float(ts[b]),
                    confidence=float(np.clip(np.mean(p[a : b + 1, lab]), 0.0, 1.0)),
                    start_uncertainty_frames=su,
                    end_uncertainty_frames=eu,
                    source=source,
                    method=method,
                )
            )
    return out
