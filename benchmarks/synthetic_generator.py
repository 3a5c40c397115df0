"""Synthetic generator speed: seconds to generate a 200-frame 640x360 clip, per preset, painted and ground truth only.

There is no external reference for the generator; the figure of merit is the issue's "a 200-frame 640x360 clip in
seconds". Each preset is generated ``--repeats`` times with different seeds; medians are reported, with the ratio of
ground-truth-only time to painted time, and the cost of writing the scene (video + ground truth files).

Run: ``python benchmarks/synthetic_generator.py`` (about 3 minutes on 2 CPU cores; ``--quick`` for fewer presets).
Writes ``benchmarks/results/synthetic_generator.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2

from prelabel.synthetic import PRESETS, generate, write_scene

RESULTS = Path(__file__).resolve().parent / "results"


def _time(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="three presets, one repeat")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    presets = ["default", "crowd", "fast-motion"] if args.quick else sorted(PRESETS)
    repeats = 1 if args.quick else args.repeats
    rows = []
    for name in presets:
        painted, gt_only, write = [], [], []
        objects = []
        for r in range(repeats):
            seed = 100 + r
            t0 = time.perf_counter()
            scene = generate(name, seed, num_frames=args.frames)
            painted.append(time.perf_counter() - t0)
            gt_only.append(
                _time(lambda name=name, seed=seed: generate(name, seed, num_frames=args.frames, render=False))
            )
            objects.append(len(scene.tracks))
            with tempfile.TemporaryDirectory() as tmp:
                write.append(_time(lambda scene=scene, tmp=tmp: write_scene(scene, Path(tmp))))
        p, g, w = statistics.median(painted), statistics.median(gt_only), statistics.median(write)
        rows.append(
            {
                "preset": name,
                "frames": args.frames,
                "median_tracks": statistics.median(objects),
                "painted_s": round(p, 3),
                "ground_truth_only_s": round(g, 3),
                "gt_only_over_painted": round(g / p, 3),
                "write_s": round(w, 3),
                "painted_fps": round(args.frames / p, 1),
            }
        )
        print(rows[-1])
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"repeats": repeats, "size": "640x360", "threads": 1, "cpu_count": os.cpu_count()}
    (RESULTS / "synthetic_generator.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        f"# Synthetic generator speed ({args.frames} frames, 640x360, medians of {repeats} seeds, 1 thread)",
        "",
        "| preset | tracks | painted (s) | ground truth only (s) | gt-only / painted | write (s) | painted frames/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['median_tracks']:g} | {r['painted_s']:.2f} | {r['ground_truth_only_s']:.2f} | "
            f"{r['gt_only_over_painted']:.2f} | {r['write_s']:.2f} | {r['painted_fps']:.0f} |"
        )
    (RESULTS / "synthetic_generator.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
