"""Action segment metrics (MS-TCN definitions) and annotator-vs-gold comparison.

Definitions follow Farha & Gall, "MS-TCN" (CVPR 2019) and its ``eval.py``:

- **frame accuracy**: fraction of frames whose label equals the reference label.
- **segmental edit score**: ``(1 - lev(P, Y) / max(|P|, |Y|))`` where ``P`` and ``Y`` are the ordered label
  sequences of the segments (runs of equal frame labels, background runs dropped) and ``lev`` the Levenshtein
  distance. Two empty sequences score 1.
- **F1@k**: each predicted segment, in order, is matched to the reference segment of the same label with the
  highest IoU; it is a true positive when that IoU >= k and the reference segment is not matched yet, else a false
  positive; unmatched reference segments are false negatives. Counts are summed over sequences before
  ``F1 = 2PR / (P + R)``.

Segments here use inclusive ``[start, end]`` frame bounds (IoU on frame counts), which fixes the off-by-one that
MS-TCN's reference code makes on the last segment of a sequence. Scores are fractions in [0, 1], not percent.

On top of those, **signed boundary offsets**: for every matched pair (same label, IoU above a threshold) the
start offset is ``pred.start - ref.start`` (negative: starts too early) and the end offset ``pred.end - ref.end``
(negative: ends too early), in frames; and a frame-level **confusion matrix**.

Entry points: :func:`frame_accuracy`, :func:`edit_score`, :func:`f1_counts`, :func:`boundary_offsets`,
:func:`confusion_matrix` on per-frame label sequences, and :func:`qa_compare` on two lists of
:class:`~prelabel.types.Segment` (annotator vs gold, or two annotators).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.types import Segment

BACKGROUND = ""
"""The frame label for "no segment here"; never counted as a segment."""

DEFAULT_OVERLAPS: tuple[float, ...] = (0.10, 0.25, 0.50)


@dataclass(frozen=True)
class Run:
    """A maximal run of one label in a frame-label sequence: ``[start, end]`` inclusive."""

    label: str
    start: int
    end: int


def to_runs(labels: Sequence[str], background: Iterable[str] = (BACKGROUND,)) -> list[Run]:
    """Split a per-frame label sequence into segments (runs), dropping background runs.

    Args:
        labels: (T,) frame labels.
        background: labels that are not segments.

    Returns:
        Runs in frame order.
    """
    bg = set(background)
    runs: list[Run] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] not in bg:
                runs.append(Run(labels[start], start, i - 1))
            start = i
    return runs


def _check_pair(reference: Sequence[str], predicted: Sequence[str]) -> None:
    if len(reference) != len(predicted):
        raise InvalidInputError(
            f"frame labels: reference has {len(reference)} frames, prediction has {len(predicted)}; expected equal"
        )


def frame_accuracy(reference: Sequence[str], predicted: Sequence[str]) -> float:
    """Fraction of frames where ``predicted`` equals ``reference`` (background frames included).

    Raises:
        InvalidInputError: the sequences differ in length.
    """
    _check_pair(reference, predicted)
    if not reference:
        return 1.0
    return float(np.mean([r == p for r, p in zip(reference, predicted, strict=True)]))


def levenshtein(a: Sequence[str], b: Sequence[str]) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1) between two label sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def edit_score(reference: Sequence[str], predicted: Sequence[str], background: Iterable[str] = (BACKGROUND,)) -> float:
    """Segmental edit score in [0, 1]: ``1 - lev(P, Y) / max(|P|, |Y|)`` over segment label orders."""
    bg = tuple(background)
    y = [r.label for r in to_runs(reference, bg)]
    p = [r.label for r in to_runs(predicted, bg)]
    if not y and not p:
        return 1.0
    return 1.0 - levenshtein(p, y) / max(len(p), len(y))


def run_iou(a: Run, b: Run) -> float:
    """IoU of two inclusive frame ranges (0 when disjoint)."""
    inter = min(a.end, b.end) - max(a.start, b.start) + 1
    if inter <= 0:
        return 0.0
    union = (a.end - a.start + 1) + (b.end - b.start + 1) - inter
    return inter / union


def match_runs(ref: Sequence[Run], pred: Sequence[Run], overlap: float) -> list[tuple[int, int | None]]:
    """MS-TCN greedy matching: for each predicted run in order, the same-label reference run of highest IoU.

    Returns:
        ``(pred_index, ref_index or None)`` per predicted run; ``None`` marks a false positive.
    """
    hits = np.zeros(len(ref), dtype=bool)
    out: list[tuple[int, int | None]] = []
    for j, p in enumerate(pred):
        ious = np.array([run_iou(p, r) if r.label == p.label else 0.0 for r in ref])
        if ious.size and ious.max() > 0.0:
            idx = int(np.argmax(ious))
            if ious[idx] >= overlap and not hits[idx]:
                hits[idx] = True
                out.append((j, idx))
                continue
        out.append((j, None))
    return out


@dataclass
class F1Counts:
    """True positives, false positives and false negatives at one IoU threshold (summable over sequences)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: F1Counts) -> F1Counts:
        return F1Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        """``tp / (tp + fp)``; 1 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """``tp / (tp + fn)``; 1 when the reference has no segments."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 1 when both sides are empty, 0 when nothing matches."""
        if self.tp + self.fp + self.fn == 0:
            return 1.0
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def f1_counts(
    reference: Sequence[str],
    predicted: Sequence[str],
    overlap: float,
    background: Iterable[str] = (BACKGROUND,),
) -> F1Counts:
    """MS-TCN F1@``overlap`` counts for one sequence (``overlap`` is an IoU fraction, e.g. 0.5).

    Raises:
        InvalidInputError: the sequences differ in length or ``overlap`` is outside (0, 1].
    """
    _check_pair(reference, predicted)
    if not 0.0 < overlap <= 1.0:
        raise InvalidInputError(f"overlap must be in (0, 1], got {overlap}")
    bg = tuple(background)
    ref, pred = to_runs(reference, bg), to_runs(predicted, bg)
    matches = match_runs(ref, pred, overlap)
    tp = sum(1 for _, r in matches if r is not None)
    return F1Counts(tp=tp, fp=len(pred) - tp, fn=len(ref) - tp)


def f1_score(
    reference: Sequence[str], predicted: Sequence[str], overlap: float, background: Iterable[str] = (BACKGROUND,)
) -> float:
    """F1@``overlap`` of one sequence, in [0, 1]."""
    return f1_counts(reference, predicted, overlap, background).f1


@dataclass(frozen=True)
class BoundaryOffset:
    """Signed boundary errors of one matched segment pair, in frames (prediction minus reference)."""

    label: str
    start: int
    end: int


def boundary_offsets(
    reference: Sequence[str],
    predicted: Sequence[str],
    min_iou: float = 0.1,
    background: Iterable[str] = (BACKGROUND,),
) -> list[BoundaryOffset]:
    """Start and end offsets of each predicted segment matched (MS-TCN matching at ``min_iou``) to a reference one.

    ``start < 0`` means the proposal starts too early, ``end < 0`` that it ends too early.
    """
    _check_pair(reference, predicted)
    bg = tuple(background)
    ref, pred = to_runs(reference, bg), to_runs(predicted, bg)
    out = []
    for j, r in match_runs(ref, pred, min_iou):
        if r is not None:
            out.append(BoundaryOffset(pred[j].label, pred[j].start - ref[r].start, pred[j].end - ref[r].end))
    return out


def confusion_matrix(
    reference: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> npt.NDArray[np.int64]:
    """Frame-level confusion counts.

    Args:
        reference, predicted: (T,) frame labels.
        labels: the row/column order; frames whose labels are not listed are skipped.

    Returns:
        (L, L) int64, ``[i, j]`` = frames with reference ``labels[i]`` predicted as ``labels[j]``.
    """
    _check_pair(reference, predicted)
    index = {name: i for i, name in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for r, p in zip(reference, predicted, strict=True):
        if r in index and p in index:
            cm[index[r], index[p]] += 1
    return cm


# ---------------------------------------------------------------------------------------------- segments level


def segments_to_frame_labels(
    segments: Iterable[Segment], num_frames: int, labels: Iterable[str] | None = None, first_frame: int = 0
) -> list[str]:
    """Rasterise one track's segments to per-frame labels.

    Args:
        segments: segments of one track; only those whose label is in ``labels`` (all when None) are drawn.
        num_frames: length of the output.
        labels: the label set of one layer (classes that exclude each other).
        first_frame: frame index of output position 0.

    Returns:
        (num_frames,) labels, :data:`BACKGROUND` where no segment covers a frame.

    Raises:
        InvalidInputError: two drawn segments overlap (naming both), or a segment lies outside the range.
    """
    keep = None if labels is None else set(labels)
    out = [BACKGROUND] * num_frames
    owner: list[Segment | None] = [None] * num_frames
    for seg in sorted(segments, key=lambda s: s.start_frame):
        if keep is not None and seg.label not in keep:
            continue
        a, b = seg.start_frame - first_frame, seg.end_frame - first_frame
        if a < 0 or b >= num_frames:
            raise InvalidInputError(
                f"segment {seg.label!r} of track {seg.track_id} [{seg.start_frame}, {seg.end_frame}] lies outside "
                f"frames [{first_frame}, {first_frame + num_frames - 1}]"
            )
        for t in range(a, b + 1):
            prev = owner[t]
            if prev is not None:
                raise InvalidInputError(
                    f"track {seg.track_id}: segment {seg.label!r} [{seg.start_frame}, {seg.end_frame}] overlaps "
                    f"{prev.label!r} [{prev.start_frame}, {prev.end_frame}] at frame {t + first_frame}, but the "
                    "two labels exclude each other"
                )
            owner[t] = seg
            out[t] = seg.label
    return out


@dataclass
class SegmentReport:
    """Everything :func:`qa_compare` measures; fractions in [0, 1], offsets in frames.

    Attributes:
        frame_accuracy: over all frames of all tracks compared.
        edit: mean segmental edit score over tracks.
        f1: F1@k per IoU threshold k (counts summed over tracks).
        counts: the summed TP/FP/FN per threshold.
        start_offsets, end_offsets: (M,) int64 signed offsets of matched segments (prediction minus reference).
        offset_labels: label of each matched pair, aligned with the offset arrays.
        labels, confusion: confusion-matrix axes and (L, L) counts (rows: reference, columns: candidate).
        num_tracks, num_frames: how much was compared.
        per_class_f1: F1@k per label, each against the background.
        labels_seen: the labels on some compared frame, on either side.
    """

    frame_accuracy: float
    edit: float
    f1: dict[float, float]
    counts: dict[float, F1Counts]
    start_offsets: npt.NDArray[np.int64]
    end_offsets: npt.NDArray[np.int64]
    offset_labels: list[str]
    labels: list[str]
    confusion: npt.NDArray[np.int64]
    num_tracks: int
    num_frames: int
    per_class_f1: dict[str, dict[float, float]] = field(default_factory=dict)
    labels_seen: frozenset[str] = frozenset()

    @property
    def mean_abs_boundary_offset(self) -> float:
        """Mean of |start| and |end| offsets over all matched segments, in frames (NaN when none matched)."""
        both = np.concatenate([self.start_offsets, self.end_offsets])
        return float(np.abs(both).mean()) if both.size else float("nan")

    def offset_summary(self) -> dict[str, dict[str, float]]:
        """Mean, median, mean-absolute and 10/90th percentiles of the start and end offsets."""
        out: dict[str, dict[str, float]] = {}
        for name, arr in (("start", self.start_offsets), ("end", self.end_offsets)):
            if arr.size == 0:
                out[name] = {k: float("nan") for k in ("mean", "median", "mean_abs", "p10", "p90")}
                out[name]["count"] = 0.0
                continue
            out[name] = {
                "mean": float(arr.mean()),
                "median": float(np.median(arr)),
                "mean_abs": float(np.abs(arr).mean()),
                "p10": float(np.percentile(arr, 10)),
                "p90": float(np.percentile(arr, 90)),
                "count": float(arr.size),
                "too_early": float(np.mean(arr < 0)),
                "too_late": float(np.mean(arr > 0)),
            }
        return out

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary (strict JSON: no NaN). What has nothing to measure is None: an F1 where neither side
        has a segment (the layer's or a class's: a class in neither is left out of ``per_class_f1``), boundary
        offsets where no segment matched."""

        def f1(value: float, counts: F1Counts) -> float | None:
            return None if counts.tp + counts.fp + counts.fn == 0 else value

        def finite(d: dict[str, float]) -> dict[str, float | None]:
            return {k: v if np.isfinite(v) else None for k, v in d.items()}

        mean_abs = self.mean_abs_boundary_offset
        return {
            "frame_accuracy": self.frame_accuracy,
            "edit": self.edit,
            "f1": {f"{k:.2f}": f1(v, self.counts[k]) for k, v in self.f1.items()},
            "counts": {f"{k:.2f}": vars(c) for k, c in self.counts.items()},
            "per_class_f1": {
                lab: {f"{k:.2f}": v for k, v in d.items()}
                for lab, d in self.per_class_f1.items()
                if lab in self.labels_seen
            },
            "mean_abs_boundary_offset": mean_abs if np.isfinite(mean_abs) else None,
            "boundary_offsets": {name: finite(d) for name, d in self.offset_summary().items()},
            "labels": self.labels,
            "confusion": self.confusion.tolist(),
            "num_tracks": self.num_tracks,
            "num_frames": self.num_frames,
        }


def qa_compare(
    reference: Sequence[Segment],
    candidate: Sequence[Segment],
    num_frames: Mapping[int, int] | Mapping[int, tuple[int, int]],
    *,
    labels: Sequence[str] | None = None,
    overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    boundary_min_iou: float = 0.1,
) -> SegmentReport:
    """Compare a candidate labelling (proposal or annotator) with a reference (gold set or another annotator).

    Metrics are computed per track over one *layer* of labels that exclude each other (``labels``; default: every
    label seen). For taxonomies with overlapping classes (e.g. wave while walking) call once per layer, see
    :meth:`prelabel.actions.taxonomy.Taxonomy.layers`.

    Args:
        reference, candidate: segments of any number of tracks; tracks only in ``candidate`` count as false
            positives only when listed in ``num_frames``.
        num_frames: per track ID, the number of frames (frames ``0..n-1``), or an inclusive ``(first, last)`` range.
        labels: the layer's labels; segments with other labels are ignored.
        overlaps: IoU thresholds for F1.
        boundary_min_iou: IoU a match needs for its boundary offsets to be counted.

    Returns:
        A :class:`SegmentReport`.

    Raises:
        InvalidInputError: a segment belongs to a track missing from ``num_frames``, lies outside its range, or
            overlaps another segment of the same layer.
    """
    all_labels = sorted({s.label for s in (*reference, *candidate)}) if labels is None else list(labels)
    keep = set(all_labels)
    for name, segs in (("reference", reference), ("candidate", candidate)):
        for s in segs:
            if s.label in keep and s.track_id not in num_frames:
                raise InvalidInputError(
                    f"{name} segment {s.label!r} [{s.start_frame}, {s.end_frame}]: track {s.track_id} has no frame "
                    f"range in num_frames (known tracks: {sorted(num_frames)})"
                )
    counts = {k: F1Counts() for k in overlaps}
    per_class = {lab: {k: F1Counts() for k in overlaps} for lab in all_labels}
    edits: list[float] = []
    correct = total = 0
    starts: list[int] = []
    ends: list[int] = []
    off_labels: list[str] = []
    cm = np.zeros((len(all_labels), len(all_labels)), dtype=np.int64)
    seen: set[str] = set()  # labels on some compared frame, either side
    for tid in sorted(num_frames):
        span = num_frames[tid]
        first, last = (0, int(span) - 1) if isinstance(span, int | np.integer) else (int(span[0]), int(span[1]))
        n = last - first + 1
        ref = segments_to_frame_labels([s for s in reference if s.track_id == tid], n, all_labels, first)
        cand = segments_to_frame_labels([s for s in candidate if s.track_id == tid], n, all_labels, first)
        seen.update(ref)
        seen.update(cand)
        correct += sum(r == c for r, c in zip(ref, cand, strict=True))
        total += n
        edits.append(edit_score(ref, cand))
        for k in overlaps:
            counts[k] = counts[k] + f1_counts(ref, cand, k)
            for lab in all_labels:
                r1 = [x if x == lab else BACKGROUND for x in ref]
                c1 = [x if x == lab else BACKGROUND for x in cand]
                per_class[lab][k] = per_class[lab][k] + f1_counts(r1, c1, k)
        for off in boundary_offsets(ref, cand, boundary_min_iou):
            starts.append(off.start)
            ends.append(off.end)
            off_labels.append(off.label)
        cm += confusion_matrix(ref, cand, all_labels)
    return SegmentReport(
        frame_accuracy=correct / total if total else 1.0,
        edit=float(np.mean(edits)) if edits else 1.0,
        f1={k: c.f1 for k, c in counts.items()},
        counts=counts,
        start_offsets=np.asarray(starts, dtype=np.int64),
        end_offsets=np.asarray(ends, dtype=np.int64),
        offset_labels=off_labels,
        labels=all_labels,
        confusion=cm,
        num_tracks=len(num_frames),
        num_frames=total,
        per_class_f1={lab: {k: c.f1 for k, c in d.items()} for lab, d in per_class.items()},
        labels_seen=frozenset(seen),
    )
