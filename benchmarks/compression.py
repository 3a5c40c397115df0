"""Keyframe compression benchmark: how many keyframes a dense track is stored as, against the exact minimum.

For each MOTChallenge ground-truth file (by default PETS09-S2L1 and the MOT15 sequences under ``../shared/data``;
``--mot-gt`` takes your own) and each tolerance ``min_iou``: the boxes in view, the keyframes
:func:`prelabel.interpolate.compress_track` keeps (outside markers of gaps not counted), and the exact minimum: the
fewest keyframes such that per-coordinate linear interpolation between consecutive ones (CVAT's and Label Studio's
rule) rebuilds every box with IoU >= ``min_iou``, found as a shortest path over every feasible segment of each
contiguous span (every pair of frames is checked, so spans longer than ``--max-exact-len`` frames are left out of
the exact count and said so). Every keyframe set is checked to rebuild its track within the tolerance.

Run: ``python benchmarks/compression.py`` (writes ``benchmarks/results/compression.{json,md}``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpolation import DATA, InputError, load_mot
from prelabel.interpolate import compress_track
from prelabel.interpolate.compress import paired_iou, spans, worst_ious
from prelabel.types import Track, TrackedBox

logger = logging.getLogger("benchmarks.compression")
REPO = Path(__file__).resolve().parents[1]


def worst_iou(boxes: np.ndarray) -> np.ndarray:
    """(L, L) matrix: entry (i, j), j > i + 1, is the lowest IoU between the boxes strictly between i and j and
    their linear interpolation from i to j; 1 where nothing lies between."""
    n = len(boxes)
    out = np.ones((n, n))
    for i in range(n - 2):
        out[i, i + 2 :] = worst_ious(boxes, i, n - 1)
    return out


def fewest_keyframes(worst: np.ndarray, min_iou: float) -> int:
    """The fewest keyframes of one span (its first and last frame among them) under ``min_iou``."""
    n = len(worst)
    ok = worst >= min_iou - 1e-9
    need = np.full(n, np.inf)
    need[n - 1] = 1
    for i in range(n - 2, -1, -1):
        js = np.flatnonzero(ok[i, i + 1 :]) + i + 1
        need[i] = 1 + need[js].min()
    return int(need[0])


def rebuilds(track: Track, frames: list[int], min_iou: float) -> bool:
    """Whether the keyframes at ``frames`` (frames of the track) rebuild it: the first and last frame of every run of
    consecutive frames among them, and linear interpolation between consecutive ones within a run within
    ``min_iou``."""
    f, boxes = track.frames, track.xyxy.astype(np.float64)
    keys = np.searchsorted(f, frames)
    if np.any(keys >= len(f)) or not np.array_equal(f[np.minimum(keys, len(f) - 1)], frames):
        return False
    key_set = set(keys.tolist())
    if any(s not in key_set or e - 1 not in key_set for s, e in spans(f)):
        return False
    for a, b in itertools.pairwise(keys.tolist()):
        if f[b] - f[a] != b - a:  # across a gap: nothing is drawn there
            continue
        s = ((np.arange(a, b + 1) - a) / max(b - a, 1))[:, None]
        lin = boxes[a] + (boxes[b] - boxes[a]) * s
        if paired_iou(lin, boxes[a : b + 1]).min() < min_iou - 1e-6:
            return False
    return True


def tracks_of(gt: Path) -> list[Track]:
    return [
        Track(tid, [TrackedBox(f, xyxy, 1.0) for f, xyxy in sorted({f: b for f, b, scored in rows if scored}.items())])
        for tid, rows in sorted(load_mot(gt).items())
    ]


def evaluate(gt: Path, levels: list[float], max_exact_len: int) -> dict[str, object]:
    tracks = tracks_of(gt)
    span_sets = [(t, s, e) for t in tracks for s, e in spans(t.frames)]
    exact_spans = [(t, s, e) for t, s, e in span_sets if e - s <= max_exact_len]
    t0 = time.perf_counter()
    worst = {(t.track_id, s): worst_iou(t.xyxy[s:e].astype(np.float64)) for t, s, e in exact_spans}
    t_exact = time.perf_counter() - t0
    rows: dict[str, object] = {}
    for lv in levels:
        t0 = time.perf_counter()
        kept = {t.track_id: [k.frame_idx for k in compress_track(t, lv) if not k.outside] for t in tracks}
        t_comp = time.perf_counter() - t0
        if not all(rebuilds(t, kept[t.track_id], lv) for t in tracks):
            raise AssertionError(f"{gt}: compression at {lv} does not rebuild a track within its tolerance")
        exact_ids = {(t.track_id, s) for t, s, _ in exact_spans}
        ours_exact = 0
        for t, s, e in span_sets:
            if (t.track_id, s) in exact_ids:
                lo, hi = int(t.frames[s]), int(t.frames[e - 1])
                ours_exact += sum(lo <= f <= hi for f in kept[t.track_id])
        minimum = sum(fewest_keyframes(worst[(t.track_id, s)], lv) for t, s, _ in exact_spans)
        rows[f"{lv:g}"] = {
            "keyframes": sum(len(v) for v in kept.values()),
            "keyframes_on_exact_spans": ours_exact,
            "exact_minimum": minimum,
            "above_minimum": (ours_exact - minimum) / max(minimum, 1),
            "compress_s": t_comp,
        }
    return {
        "tracks": len(tracks),
        "boxes": int(sum(len(t) for t in tracks)),
        "spans": len(span_sets),
        "spans_left_out_of_exact": len(span_sets) - len(exact_spans),
        "exact_feasibility_s": t_exact,
        "levels": rows,
    }


def default_inputs() -> list[tuple[str, Path]]:
    found = [("pets09-s2l1", DATA / "pets09-s2l1" / "gt" / "gt.txt")]
    found += [(p.parents[1].name, p) for p in sorted((DATA / "mot15").glob("*/gt/gt.txt"))]
    return [(name, p) for name, p in found if p.is_file()]


def _name(gt: Path, index: int) -> str:
    """A sequence's name: its folder for MOTChallenge's ``SEQ/gt/gt.txt`` layout, else the file's stem; numbered."""
    return f"{index + 1}:{gt.parent.parent.name if gt.parent.name == 'gt' else gt.stem}"


def markdown(results: dict[str, dict[str, object]], levels: list[float]) -> str:
    lines = [
        "# Keyframe compression benchmark",
        "",
        "Keyframes `compress_track` keeps (outside markers not counted) against the exact minimum for linear",
        "interpolation within `min_iou` (a shortest path over every feasible segment; spans longer than the exact",
        "search's limit are left out of both of those two columns).",
        "",
        "| sequence | boxes | min_iou | keyframes | on exact spans | exact minimum | above minimum | compress s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    totals = {f"{lv:g}": [0, 0] for lv in levels}
    for name, res in results.items():
        for lv, row in res["levels"].items():  # type: ignore[attr-defined]
            totals[lv][0] += row["keyframes_on_exact_spans"]
            totals[lv][1] += row["exact_minimum"]
            lines.append(
                f"| {name} | {res['boxes']} | {lv} | {row['keyframes']} | {row['keyframes_on_exact_spans']} | "
                f"{row['exact_minimum']} | {100 * row['above_minimum']:.1f}% | {row['compress_s']:.2f} |"
            )
    ours, best = (sum(v[i] for v in totals.values()) for i in (0, 1))
    lines += ["", f"All sequences and tolerances: {ours} keyframes against an exact minimum of {best}"]
    lines.append(f"({100 * (ours - best) / max(best, 1):.1f}% above).")
    left = {n: r["spans_left_out_of_exact"] for n, r in results.items() if r["spans_left_out_of_exact"]}
    if left:
        lines.append(f"Spans left out of the exact search: {left}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mot-gt", type=Path, nargs="+", help="MOTChallenge gt.txt files (default: ../shared/data's)")
    ap.add_argument("--min-iou", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    ap.add_argument("--max-exact-len", type=int, default=800, help="longest span searched exactly (cost ~ length^3)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if any(not 0.0 < lv <= 1.0 for lv in args.min_iou):
        print(f"error: --min-iou values must be in (0, 1], got {args.min_iou}", file=sys.stderr)
        return 2
    inputs = [(_name(p, i), p) for i, p in enumerate(args.mot_gt)] if args.mot_gt else default_inputs()
    if not inputs:
        print("error: no ground truth: ../shared/data is absent; give --mot-gt", file=sys.stderr)
        return 2
    results: dict[str, dict[str, object]] = {}
    try:
        for name, gt in inputs:
            results[name] = evaluate(gt, args.min_iou, args.max_exact_len)
            logger.info("%s: %s", name, results[name]["levels"])
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compression.json").write_text(json.dumps(results, indent=1))
    md = markdown(results, args.min_iou)
    (args.out / "compression.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
