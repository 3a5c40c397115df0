"""Helpers to score proposals against reference segments with :mod:`prelabel.metrics.segments`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prelabel.actions.taxonomy import Taxonomy
from prelabel.metrics.segments import BACKGROUND, SegmentReport, qa_compare, segments_to_frame_labels, to_runs
from prelabel.types import Segment, Track


def flatten_segments(
    segments: Sequence[Segment], taxonomy: Taxonomy, spans: dict[int, tuple[int, int]]
) -> list[Segment]:
    """One label per frame: where segments of several layers overlap, the later layer wins (wave over walk).

    This matches references that label a gesture instead of the body activity (e.g. generated scenes where "wave"
    is performed standing). Segments outside a track's span are clipped.

    Args:
        segments: segments of any tracks.
        taxonomy: gives the layer order.
        spans: inclusive ``(first, last)`` frame per track ID.
    """
    out: list[Segment] = []
    for tid, (first, last) in spans.items():
        n = last - first + 1
        labels = [BACKGROUND] * n
        mine = [s for s in segments if s.track_id == tid]
        for layer in taxonomy.layers():
            clipped = []
            for s in mine:
                if s.label in layer and s.end_frame >= first and s.start_frame <= last:
                    clipped.append(replace(s, start_frame=max(s.start_frame, first), end_frame=min(s.end_frame, last)))
            layer_labels = segments_to_frame_labels(clipped, n, layer, first)
            labels = [b if b != BACKGROUND else a for a, b in zip(labels, layer_labels, strict=True)]
        for run in to_runs(labels):
            out.append(Segment(tid, run.label, run.start + first, run.end + first))
    return out


def track_spans(tracks: Sequence[Track]) -> dict[int, tuple[int, int]]:
    """Inclusive ``(first, last)`` frame of each non-empty track."""
    return {t.track_id: (int(t.boxes[0].frame_idx), int(t.boxes[-1].frame_idx)) for t in tracks if t.boxes}


def evaluate_flat(
    reference: Sequence[Segment], proposal: Sequence[Segment], taxonomy: Taxonomy, spans: dict[int, tuple[int, int]]
) -> SegmentReport:
    """:func:`prelabel.metrics.segments.qa_compare` on flattened labels over all taxonomy classes."""
    ref = flatten_segments(reference, taxonomy, spans)
    cand = flatten_segments(proposal, taxonomy, spans)
    return qa_compare(ref, cand, spans, labels=list(taxonomy.names))
