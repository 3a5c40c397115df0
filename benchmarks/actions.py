"""Action segments on held-out generated scenes: the kinematic rules baseline against the trained TCN.

Evaluation seeds (default 0-19) are never used for training (the shipped model used seeds 1000-1029). Both systems
see the same noisy skeletons (pose-model-like jitter, drift and dropped keypoints). Writes
benchmarks/results/actions.json, actions.md, actions_confusion.png and actions_timeline.png.

Run: python benchmarks/actions.py [--seeds 0-19] [--model actions-tcn-small]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SIMILAR = ("squat", "bend", "fall")


def main() -> None:
    """Run the benchmark and write the results."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from prelabel.actions.augment import KeypointNoise
    from prelabel.actions.data import parse_seeds, synthetic_data
    from prelabel.actions.evaluate import evaluate_flat, flatten_segments, track_spans
    from prelabel.actions.propose import load_segmenter

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--model", default="actions-tcn-small")
    args = ap.parse_args()
    data = synthetic_data(parse_seeds(args.seeds), noise=KeypointNoise(), noise_seed=7)
    systems = {"rules": load_segmenter("rules"), args.model: load_segmenter(args.model)}
    tax = systems["rules"].taxonomy
    spans = track_spans([d.track for d in data])
    refs = [s for d in data for s in d.segments]
    results: dict[str, dict[str, Any]] = {}
    proposals = {}
    for name, seg in systems.items():
        t0 = time.perf_counter()
        per_track_ms = []
        props = []
        for d in data:
            t1 = time.perf_counter()
            props += seg.propose([d.track], fps=d.fps, ts_ms=d.ts_ms)
            per_track_ms.append((time.perf_counter() - t1) * 1000 / max(1, len(d.track)) * 1000)
        secs = time.perf_counter() - t0
        rep = evaluate_flat(refs, props, tax, spans)
        proposals[name] = props
        idx = [rep.labels.index(c) for c in SIMILAR]
        results[name] = {
            **rep.to_dict(),
            "similar_classes": list(SIMILAR),
            "similar_confusion": rep.confusion[np.ix_(idx, idx)].tolist(),
            "seconds": secs,
            "median_ms_per_1000_frames": float(np.median(per_track_ms)),
        }
    names = list(systems)
    base, model = results[names[0]], results[names[1]]
    goals = {"f1@50_tcn": 0.85, "f1@50_rules": 0.6, "mean_abs_boundary_offset_frames": 3.0}
    summary: dict[str, Any] = {
        "eval_seeds": args.seeds,
        "tracks": len(data),
        "frames": int(sum(b - a + 1 for a, b in spans.values())),
        "systems": results,
        "goals": goals,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "actions.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [
        f"# Action segments: held-out generated scenes (seeds {args.seeds}, {len(data)} person tracks, "
        f"{summary['frames']} frames)",
        "",
        "| metric | " + " | ".join(names) + " | ratio (model / rules) |",
        "|---|" + "---|" * (len(names) + 1),
    ]

    def row(label: str, key: str, sub: str | None = None) -> None:
        vals = [results[n][key] if sub is None else results[n][key][sub] for n in names]
        ratio = vals[1] / vals[0] if vals[0] else float("nan")
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {ratio:.2f} |")

    row("frame accuracy", "frame_accuracy")
    row("edit score", "edit")
    for k in ("0.10", "0.25", "0.50"):
        row(f"F1@{int(float(k) * 100)}", "f1", k)
    row("mean abs boundary offset (frames)", "mean_abs_boundary_offset")
    row("median ms per 1000 frames", "median_ms_per_1000_frames")
    for n in names:
        off = results[n]["boundary_offsets"]
        lines.append("")
        lines.append(
            f"**{n}** boundary offsets (frames, prediction minus truth): "
            + "; ".join(
                f"{side}: mean {v['mean']:+.2f}, median {v['median']:+.1f}, p10 {v['p10']:+.1f}, p90 {v['p90']:+.1f}"
                for side, v in off.items()
            )
        )
        sim = np.asarray(results[n]["similar_confusion"], dtype=float)
        frac = sim / np.maximum(sim.sum(axis=1, keepdims=True), 1)
        lines.append("")
        lines.append(f"{n}: squat/bend/fall frames (rows truth, proposal; share of the row within the three)")
        lines.append("")
        lines.append("| truth | " + " | ".join(SIMILAR) + " |")
        lines.append("|---|" + "---|" * len(SIMILAR))
        for i, c in enumerate(SIMILAR):
            lines.append(
                f"| {c} | " + " | ".join(f"{int(sim[i, j])} ({frac[i, j]:.2f})" for j in range(len(SIMILAR))) + " |"
            )
    lines.append("")
    lines.append(
        f"Goals: F1@50 >= {goals['f1@50_rules']} (rules): {base['f1']['0.50']:.3f}; "
        f"F1@50 >= {goals['f1@50_tcn']} (trained): {model['f1']['0.50']:.3f}; "
        f"mean |boundary offset| <= {goals['mean_abs_boundary_offset_frames']} frames: "
        f"{base['mean_abs_boundary_offset']:.2f} (rules), {model['mean_abs_boundary_offset']:.2f} (trained)."
    )
    (RESULTS / "actions.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, n in zip(axes, names, strict=True):
        cm = np.asarray(results[n]["confusion"], dtype=float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(norm):
            if v >= 0.005:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.5 else "black")
        labels = results[n]["labels"]
        ax.set_xticks(range(len(labels)), labels, rotation=45)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(f"{n}: frame confusion (rows: truth)")
    fig.tight_layout()
    fig.savefig(RESULTS / "actions_confusion.png", dpi=100)
    plt.close(fig)
    show = sorted(spans)[:6]
    colours = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(tax.names)}
    fig, ax = plt.subplots(figsize=(12, 0.9 * len(show) * 3))
    ylabels = []
    for row_i, (tid, kind) in enumerate((t, k) for t in show for k in ("truth", *names)):
        segs = refs if kind == "truth" else proposals[kind]
        flat = flatten_segments([s for s in segs if s.track_id == tid], tax, {tid: spans[tid]})
        for s in flat:
            ax.barh(row_i, s.num_frames, left=s.start_frame, color=colours[s.label], height=0.8)
        ylabels.append(f"track {tid} {kind}")
    ax.set_yticks(range(len(ylabels)), ylabels)
    ax.invert_yaxis()
    ax.set_xlabel("frame")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in tax.names]
    ax.legend(handles, tax.names, ncol=len(tax.names), loc="upper center", bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    fig.savefig(RESULTS / "actions_timeline.png", dpi=100)
    plt.close(fig)
    print((RESULTS / "actions.md").read_text())


if __name__ == "__main__":
    main()
