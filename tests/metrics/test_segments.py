"""Segment metrics against values computed by hand from the MS-TCN definitions."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.metrics.segments import (
    boundary_offsets,
    confusion_matrix,
    edit_score,
    f1_counts,
    f1_score,
    frame_accuracy,
    levenshtein,
    qa_compare,
    segments_to_frame_labels,
    to_runs,
)
from prelabel.types import Segment

# ref: A A A B B B B _ C C     runs A[0,2] B[3,6] C[8,9]
# pred: A A B B B B B B C C    runs A[0,1] B[2,7] C[8,9]
REF = [*list("AAABBBB"), "", *list("CC")]
PRED = list("AABBBBBBCC")


def test_frame_accuracy_counts_background_frames() -> None:
    assert frame_accuracy(REF, PRED) == pytest.approx(0.8)


def test_runs_drop_background() -> None:
    assert [(r.label, r.start, r.end) for r in to_runs(REF)] == [("A", 0, 2), ("B", 3, 6), ("C", 8, 9)]


def test_edit_score_same_order_is_one_and_insertion_costs_one() -> None:
    assert edit_score(REF, PRED) == pytest.approx(1.0)
    # pred order A C B C vs ref A B C: one deletion, normalised by max length 4.
    assert edit_score(list("AAABBBBCCC"), list("AACCBBBBCC")) == pytest.approx(0.75)
    assert levenshtein(list("kitten"), list("sitting")) == 3


def test_f1_at_thresholds() -> None:
    # IoUs: A 2/3, B 4/6, C 1.
    assert f1_score(REF, PRED, 0.5) == pytest.approx(1.0)
    c = f1_counts(REF, PRED, 0.75)
    assert (c.tp, c.fp, c.fn) == (1, 2, 2)
    assert c.f1 == pytest.approx(1 / 3)


def test_f1_second_prediction_on_same_reference_is_false_positive() -> None:
    ref = list("AAAAAAAAAA")
    pred = [*"AAAAA", "", *"AAAA"]
    c = f1_counts(ref, pred, 0.25)
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)
    assert c.f1 == pytest.approx(2 / 3)
    assert edit_score(ref, pred) == pytest.approx(0.5)


def test_wrong_label_never_matches() -> None:
    c = f1_counts(list("AAAA"), list("BBBB"), 0.1)
    assert (c.tp, c.fp, c.fn) == (0, 1, 1)
    assert c.f1 == 0.0


def test_boundary_offsets_signed() -> None:
    offs = [(o.label, o.start, o.end) for o in boundary_offsets(REF, PRED)]
    assert offs == [("A", 0, -1), ("B", -1, 1), ("C", 0, 0)]


def test_confusion_matrix_rows_reference() -> None:
    cm = confusion_matrix(REF, PRED, ["A", "B", "C"])
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 4, 0], [0, 0, 2]])


def test_length_mismatch_is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="10 frames"):
        frame_accuracy(REF, PRED[:-1])


def _segs(tid: int, spec: list[tuple[str, int, int]]) -> list[Segment]:
    return [Segment(tid, lab, a, b) for lab, a, b in spec]


def test_qa_compare_pools_tracks() -> None:
    gold = _segs(1, [("A", 0, 2), ("B", 3, 6), ("C", 8, 9)]) + _segs(2, [("A", 0, 4)])
    cand = _segs(1, [("A", 0, 1), ("B", 2, 7), ("C", 8, 9)]) + _segs(2, [("B", 0, 4)])
    rep = qa_compare(gold, cand, {1: 10, 2: 5})
    assert rep.num_frames == 15
    assert rep.frame_accuracy == pytest.approx(8 / 15)
    assert rep.edit == pytest.approx((1.0 + 0.0) / 2)
    # @0.5: track 1 tp 3; track 2 fp 1 fn 1 -> P 3/4 R 3/4.
    assert rep.f1[0.5] == pytest.approx(0.75)
    assert rep.f1[0.1] == pytest.approx(0.75)
    np.testing.assert_array_equal(rep.start_offsets, [0, -1, 0])
    np.testing.assert_array_equal(rep.end_offsets, [-1, 1, 0])
    assert rep.mean_abs_boundary_offset == pytest.approx(3 / 6)
    assert rep.confusion[rep.labels.index("A"), rep.labels.index("B")] == 1 + 5
    assert rep.offset_summary()["start"]["too_early"] == pytest.approx(1 / 3)
    f1 = rep.to_dict()["f1"]
    assert isinstance(f1, dict) and f1["0.50"] == pytest.approx(0.75)


def test_qa_compare_identical_is_perfect_and_range_is_respected() -> None:
    gold = _segs(3, [("walk", 10, 19), ("fall", 20, 29)])
    rep = qa_compare(gold, list(gold), {3: (10, 29)})
    assert rep.frame_accuracy == 1.0 and rep.edit == 1.0 and all(v == 1.0 for v in rep.f1.values())
    assert rep.mean_abs_boundary_offset == 0.0


def test_qa_compare_names_unknown_track_and_overlap() -> None:
    with pytest.raises(InvalidInputError, match="track 7"):
        qa_compare(_segs(7, [("A", 0, 3)]), [], {1: 10})
    with pytest.raises(InvalidInputError, match="overlaps"):
        segments_to_frame_labels(_segs(1, [("A", 0, 5), ("B", 4, 8)]), 10)
    with pytest.raises(InvalidInputError, match="outside"):
        segments_to_frame_labels(_segs(1, [("A", 0, 12)]), 10)
