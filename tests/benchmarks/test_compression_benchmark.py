"""benchmarks/compression.py: its exact minimum is the true minimum, and the report on a user's own ground truth."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from benchmark_loader import load_benchmark

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("compression")


def _brute_force(boxes: np.ndarray, min_iou: float, paired_iou) -> int:  # type: ignore[no-untyped-def]
    """The fewest keyframes by trying every subset of the inner frames, smallest first."""
    n = len(boxes)
    for extra in range(n - 1):
        for inner in itertools.combinations(range(1, n - 1), extra):
            keys = [0, *inner, n - 1]
            ok = True
            for a, b in itertools.pairwise(keys):
                s = ((np.arange(a, b + 1) - a) / (b - a))[:, None]
                ok &= bool(paired_iou(boxes[a] + (boxes[b] - boxes[a]) * s, boxes[a : b + 1]).min() >= min_iou - 1e-9)
            if ok:
                return len(keys)
    raise AssertionError("every frame a keyframe always rebuilds the track")


def test_the_exact_minimum_is_the_true_minimum(bench: ModuleType) -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(3, 11))
        xy = np.cumsum(rng.normal(0, 4, (n, 2)), axis=0) + 100
        wh = 30 + np.cumsum(rng.normal(0, 1.5, (n, 2)), axis=0)
        boxes = np.c_[xy, xy + wh]
        for min_iou in (0.7, 0.9):
            got = bench.fewest_keyframes(bench.worst_iou(boxes), min_iou)
            assert got == _brute_force(boxes, min_iou, bench.paired_iou)


def test_report_on_own_ground_truth(bench: ModuleType, tmp_path: Path) -> None:
    rows = []
    for f in range(60):  # track 1: straight and steady; track 2: zig-zags, with a gap over frames 30-34
        rows.append(f"{f + 1},1,{10 + 2 * f},50,40,80,1")
        if not 30 <= f < 35:
            rows.append(f"{f + 1},2,{200 + (12 if f % 6 < 3 else -12)},60,40,80,1")
    gt = tmp_path / "gt.txt"
    gt.write_text("\n".join(rows) + "\n")
    assert bench.main(["--mot-gt", str(gt), "--min-iou", "0.9", "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "compression.json").read_text())
    (row,) = res.values()
    level = row["levels"]["0.9"]
    assert row["boxes"] == 115 and row["spans"] == 3
    assert level["exact_minimum"] <= level["keyframes_on_exact_spans"] == level["keyframes"] < 115
    assert level["exact_minimum"] >= 2 + 2 + 2  # each span needs its two ends
    assert "exact minimum" in (tmp_path / "out" / "compression.md").read_text()
    assert bench.main(["--mot-gt", str(gt), "--min-iou", "1.5"]) == 2


def test_the_rebuild_check_wants_every_run_covered(bench: ModuleType) -> None:
    from prelabel.types import Track, TrackedBox

    frames = [*range(10), *range(15, 20)]
    track = Track(1, [TrackedBox(f, [10.0 * f, 0, 10.0 * f + 20, 20], 1.0) for f in frames])
    assert bench.rebuilds(track, [0, 9, 15, 19], 0.9)  # straight and steady: each run's ends suffice
    for bad in ([], [0], [0, 9], [0, 9, 19], [0, 9, 15], [0, 9, 12, 15, 19]):
        assert not bench.rebuilds(track, bad, 0.9), bad
