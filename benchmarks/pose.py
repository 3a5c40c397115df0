"""Pose benchmark: skeletons attached to track IDs, and keypoint smoothing, on held-out generated scenes.

Scenes come from ``prelabel.synthetic`` (ground truth only, ``render=False``) with seeds never used while tuning.
Pose estimates are simulated from the ground truth, so that attachment and smoothing are scored against a known
error model rather than one network's quirks (the shipped ``prelabel-synth-pose`` is measured on its own in
``models/prelabel-synth.md``); they err the way a pose model does: per-keypoint jitter proportional to the COCO
sigma times the person's size, low-confidence (missing) keypoints where the person is hidden plus a few dropped ones,
occasional left/right swaps, missed persons (more when mostly hidden) and false persons. Rows are shuffled per
frame.

Two settings, side by side in one run:

- ``tracker``: the pose model is the person detector: the simulated pose detections go through the project's tracker
  (``prelabel.track.api.track_detections``, offline refinement on), then skeletons are attached to its tracks.
- ``gt-boxes``: tracks are the ground-truth boxes jittered like a tracker's (3% of the height), identities known,
  so smoothing can be scored per identity.

Measured:

- attachment accuracy: of the skeletons attached to a track box, the fraction whose source detection belongs to the
  ground-truth person matched to that box in that frame (Hungarian on IoU >= 0.5, as CLEAR-MOT matches). Ours
  (``attach_skeletons``) against two references: greedy highest-IoU matching (the usual ad-hoc rule) and ours
  without the skeleton-identity term (Hungarian on IoU and keypoints-inside only). Goal >= 0.98.
- OKS AP (COCO definition, pycocotools; object area = ground-truth box area) of the attached skeletons: raw, the
  textbook One-Euro filter (causal, on absolute coordinates, same parameters), and ours (the default
  ``SmoothConfig``: bidirectional, body centre and limbs filtered separately).
- jitter: mean |acceleration error| against ground truth, px/frame^2 (``metrics.pose.keypoint_jitter``), and its
  ratio to raw.
- lag on fast limbs: cross-correlation delay of wrist and ankle trajectories against ground truth, in frames and ms,
  on the keypoint trajectories with the fastest motion (top quartile of ground-truth speed, person heights / s).
- time per frame for attach and smoothing.

Run: ``python benchmarks/pose.py`` (``--quick`` for a short run). Writes ``benchmarks/results/pose.{json,md}`` and
``pose_wrist.png`` (one fast wrist: ground truth, raw, causal One-Euro, ours).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from prelabel.metrics.pose import instances_from_tracks, keypoint_jitter, oks_ap, pck, trajectory_lag
from prelabel.pose.attach import AttachConfig, attach_skeletons, box_iou, match_skeletons
from prelabel.pose.smooth import SmoothConfig, smooth_skeleton_tracks
from prelabel.synthetic import Scene, generate
from prelabel.types import COCO17_SIGMAS, NUM_KEYPOINTS, Detections, Track, TrackedBox

logger = logging.getLogger("benchmarks.pose")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PRESETS = ("default", "fast-motion", "crowd", "actions", "occlusion", "vfr")
HELD_OUT_SEED0 = 5000  # tuning used hand-built scenes only; these seeds were never looked at before this run
LR_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
FAST_LIMBS = (9, 10, 15, 16)  # wrists and ankles
SIGMAS = np.asarray(COCO17_SIGMAS)
IDENTITIES = {"tracker": ("windowed", "per-frame"), "gt-boxes": ("exact",)}


@dataclass(frozen=True)
class NoiseModel:
    """How the simulated pose model errs (see module docstring)."""

    jitter: float = 1.0  # keypoint std = jitter * sigma_i * sqrt(box area), px
    box_jitter: float = 0.03  # box corner std, fraction of box height
    p_drop: float = 0.05  # a visible keypoint reported with low confidence
    p_swap: float = 0.02  # a person with one left/right pair swapped
    p_miss: float = 0.03  # a visible person not detected (plus 0.5 x hidden fraction)
    p_false: float = 0.05  # a false person per frame


@dataclass
class Simulated:
    """Pose detections per frame and, per row, the ground-truth track ID it came from (-1: false person)."""

    poses: dict[int, Detections]
    owner: dict[int, np.ndarray]


def person_tracks(scene: Scene) -> list[Track]:
    """Ground-truth person tracks with skeletons."""
    return [t for t in scene.tracks if t.class_name == "person"]


def simulate_pose_model(scene: Scene, rng: np.random.Generator, noise: NoiseModel) -> Simulated:
    """Pose-model-like detections of every person in every frame (see :class:`NoiseModel`)."""
    h_img, w_img = scene.info.height, scene.info.width
    rows: dict[int, list[tuple[np.ndarray, np.ndarray, float, int]]] = {}
    for t in person_tracks(scene):
        for b in t.boxes:
            sk = b.skeleton
            if sk is None or not sk.present.any():
                continue
            if rng.random() < noise.p_miss + 0.5 * (1.0 - b.score):
                continue
            w, h = float(b.xyxy[2] - b.xyxy[0]), float(b.xyxy[3] - b.xyxy[1])
            s = np.sqrt(max(w * h, 1.0))
            xy = sk.keypoints[:, :2].astype(np.float64)
            ctr = np.array([(b.xyxy[0] + b.xyxy[2]) / 2, (b.xyxy[1] + b.xyxy[3]) / 2])
            xy = np.where(sk.present[:, None] & np.isfinite(xy), xy, ctr)
            xy = xy + rng.normal(0.0, 1.0, xy.shape) * (noise.jitter * SIGMAS * s)[:, None]
            conf = rng.uniform(0.5, 1.0, NUM_KEYPOINTS)
            conf[~sk.present] = rng.uniform(0.0, 0.25, int((~sk.present).sum()))
            conf[rng.random(NUM_KEYPOINTS) < noise.p_drop] = 0.1
            if rng.random() < noise.p_swap:
                a, c = LR_PAIRS[rng.integers(len(LR_PAIRS))]
                xy[[a, c]] = xy[[c, a]]
                conf[[a, c]] = conf[[c, a]]
            box = b.xyxy + rng.normal(0.0, noise.box_jitter * h, 4)
            box[2:] = np.maximum(box[2:], box[:2] + 2.0)
            kp = np.concatenate([xy, conf[:, None]], axis=1).astype(np.float32)
            rows.setdefault(b.frame_idx, []).append((box, kp, float(rng.uniform(0.5, 0.95)), t.track_id))
    for f in range(scene.info.num_frames):
        if rng.random() < noise.p_false:
            h = rng.uniform(0.15, 0.4) * h_img
            x, y = rng.uniform(0, w_img - h / 2), rng.uniform(0, h_img - h)
            kp = np.concatenate(
                [
                    np.stack([rng.uniform(x, x + h / 2, 17), rng.uniform(y, y + h, 17)], 1),
                    rng.uniform(0.3, 0.8, (17, 1)),
                ],
                axis=1,
            ).astype(np.float32)
            rows.setdefault(f, []).append((np.array([x, y, x + h / 2, y + h]), kp, float(rng.uniform(0.3, 0.7)), -1))
    poses: dict[int, Detections] = {}
    owner: dict[int, np.ndarray] = {}
    for f in range(scene.info.num_frames):
        r = rows.get(f, [])
        order = rng.permutation(len(r))
        r = [r[i] for i in order]
        if not r:
            empty = Detections.empty(("person",))
            empty.keypoints = np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
            poses[f], owner[f] = empty, np.zeros(0, np.int64)
            continue
        poses[f] = Detections(
            np.stack([x[0] for x in r]),
            np.array([x[2] for x in r]),
            np.zeros(len(r), np.int64),
            ("person",),
            np.stack([x[1] for x in r]),
        )
        owner[f] = np.array([x[3] for x in r], np.int64)
    return Simulated(poses, owner)


def jittered_gt_tracks(scene: Scene, rng: np.random.Generator, box_jitter: float = 0.03) -> list[Track]:
    """Ground-truth person boxes jittered like a tracker's, same IDs, no skeletons, real timestamps."""
    out = []
    for t in person_tracks(scene):
        boxes = []
        for b in t.boxes:
            h = float(b.xyxy[3] - b.xyxy[1])
            xy = b.xyxy + rng.normal(0.0, box_jitter * h, 4).astype(np.float32)
            xy[2:] = np.maximum(xy[2:], xy[:2] + 1.0)
            boxes.append(TrackedBox(b.frame_idx, xy, 1.0, ts_ms=float(scene.ts_ms[b.frame_idx])))
        out.append(Track(t.track_id, boxes, t.class_id, t.class_name))
    return out


def greedy_iou_matches(tracks: Sequence[Track], poses: Mapping[int, Detections]) -> dict[int, dict[int, int]]:
    """Reference: per frame, repeatedly take the highest-IoU (track, detection) pair (IoU >= 0.3)."""
    out: dict[int, dict[int, int]] = {}
    for f, dets in poses.items():
        entries = [(t.track_id, b) for t in tracks if (b := t.at(f)) is not None]
        out[f] = {}
        if not entries or not len(dets):
            continue
        iou = box_iou(np.stack([b.xyxy for _, b in entries]), dets.xyxy)
        while True:
            r, c = np.unravel_index(int(np.argmax(iou)), iou.shape)
            if iou[r, c] < 0.3:
                break
            out[f][entries[r][0]] = int(c)
            iou[r, :] = -1.0
            iou[:, c] = -1.0
    return out


def gt_identity_of_boxes(tracks: Sequence[Track], gt: Sequence[Track], frame_idx: int) -> dict[int, int]:
    """``track_id -> ground-truth track_id`` at one frame: Hungarian matching on box IoU >= 0.5 (CLEAR-MOT style)."""
    from scipy.optimize import linear_sum_assignment

    tb = [(t.track_id, b.xyxy) for t in tracks if (b := t.at(frame_idx)) is not None]
    gb = [(g.track_id, b.xyxy) for g in gt if (b := g.at(frame_idx)) is not None]
    if not tb or not gb:
        return {}
    iou = box_iou(np.stack([x for _, x in tb]), np.stack([x for _, x in gb]))
    rows, cols = linear_sum_assignment(-iou)
    return {tb[r][0]: gb[c][0] for r, c in zip(rows, cols, strict=True) if iou[r, c] >= 0.5}


def track_identity(
    tracks: Sequence[Track], gt: Sequence[Track], num_frames: int, window: int = 10
) -> dict[int, dict[int, int]]:
    """``frame -> track_id -> ground-truth ID the track follows there``.

    Per frame, track boxes are matched to ground-truth boxes (Hungarian, IoU >= 0.5); the identity a track follows at
    frame ``f`` is the most frequent match over ``f - window .. f + window``. When two people overlap, per-frame box
    matching flips between them at random; the track's identity over a short window does not.
    """
    per_frame = [gt_identity_of_boxes(tracks, gt, f) for f in range(num_frames)]
    out: dict[int, dict[int, int]] = {}
    for f in range(num_frames):
        out[f] = {}
        for tid in per_frame[f]:
            votes: dict[int, int] = {}
            for g in range(max(0, f - window), min(num_frames, f + window + 1)):
                if tid in per_frame[g]:
                    votes[per_frame[g][tid]] = votes.get(per_frame[g][tid], 0) + 1
            out[f][tid] = max(votes, key=lambda k: votes[k])
    return out


def attachment_accuracy(
    matches: Mapping[int, Mapping[int, int]], sim: Simulated, identity: Mapping[int, Mapping[int, int]]
) -> tuple[int, int]:
    """(right, counted): attached skeletons whose source person is the ground-truth identity of the track there
    (``identity``: frame -> track_id -> ground-truth ID; boxes without one are not counted)."""
    right = counted = 0
    for f, m in matches.items():
        ident = identity.get(f, {})
        for tid, j in m.items():
            if tid not in ident:
                continue
            counted += 1
            right += int(sim.owner[f][j] == ident[tid])
    return right, counted


def _dense(track: Track, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    n = last - first + 1
    xy = np.zeros((n, NUM_KEYPOINTS, 2))
    present = np.zeros((n, NUM_KEYPOINTS), bool)
    for b in track.boxes:
        if b.skeleton is not None and first <= b.frame_idx <= last:
            xy[b.frame_idx - first] = b.skeleton.keypoints[:, :2]
            present[b.frame_idx - first] = b.skeleton.present
    return xy, present


def smoothing_metrics(gt: Sequence[Track], variants: Mapping[str, Sequence[Track]], fps: float) -> dict[str, Any]:
    """Per variant: mean jitter, and lags of the fastest wrist/ankle trajectories (identities known)."""
    by_id = {name: {t.track_id: t for t in tracks} for name, tracks in variants.items()}
    jit: dict[str, list[float]] = {name: [] for name in variants}
    lags: dict[str, list[float]] = {name: [] for name in variants}
    speeds: list[float] = []
    for g in gt:
        if len(g) < 30:
            continue
        first, last = int(g.frames[0]), int(g.frames[-1])
        gxy, gp = _dense(g, first, last)
        height = np.median(g.xyxy[:, 3] - g.xyxy[:, 1])
        limb_lags: dict[str, list[float]] = {name: [] for name in variants}
        limb_speeds: list[float] = []
        for name in variants:
            dxy, dp = _dense(by_id[name][g.track_id], first, last)
            j = keypoint_jitter(gxy, gp, dxy, dp)
            if np.isfinite(j.mean):
                jit[name].append(j.mean)
            for k in FAST_LIMBS:
                valid = gp[:, k] & dp[:, k]
                if valid.sum() < 30:
                    continue
                lag = trajectory_lag(gxy[:, k], dxy[:, k], valid, max_lag=5)
                if not np.isfinite(lag):
                    continue
                limb_lags[name].append(lag)
                if name == next(iter(variants)):
                    v = np.linalg.norm(np.diff(gxy[:, k], axis=0), axis=1)[valid[1:] & valid[:-1]]
                    limb_speeds.append(float(np.mean(v)) * fps / max(height, 1.0))
        if all(len(v) == len(limb_speeds) for v in limb_lags.values()):
            speeds += limb_speeds
            for name in variants:
                lags[name] += limb_lags[name]
    return {"jitter": jit, "lags": lags, "speeds": speeds}


def run_scene(preset: str, seed: int, noise: NoiseModel, smooth_cfg: SmoothConfig) -> dict[str, Any]:
    """Everything measured on one generated scene."""
    from prelabel.track.api import track_detections

    scene = generate(preset, seed, render=False)
    fps = scene.info.fps
    rng = np.random.default_rng(seed + 17)
    sim = simulate_pose_model(scene, rng, noise)
    gt = person_tracks(scene)
    out: dict[str, Any] = {
        "preset": preset,
        "seed": seed,
        "fps": fps,
        "frames": scene.info.num_frames,
        "persons": len(gt),
    }

    # Setting 1: the pose model is the person detector of the tracker.
    frames = [(f, float(scene.ts_ms[f]), sim.poses[f]) for f in range(scene.info.num_frames)]
    t0 = time.perf_counter()
    trk = track_detections(frames, fps=fps)
    out["tracker_s"] = time.perf_counter() - t0
    # Setting 2: ground-truth boxes jittered like a tracker's.
    gtb = jittered_gt_tracks(scene, np.random.default_rng(seed + 29))
    n = scene.info.num_frames
    identities = {
        # the tracker's tracks: per-frame box matching (strict) and the identity followed over +-10 frames
        "tracker": {
            "per-frame": {f: gt_identity_of_boxes(trk, gt, f) for f in range(n)},
            "windowed": track_identity(trk, gt, n),
        },
        # jittered ground-truth boxes keep their ground-truth IDs: exact
        "gt-boxes": {"exact": {f: {t.track_id: t.track_id for t in gtb if t.at(f) is not None} for f in range(n)}},
    }
    for setting, tracks in (("tracker", trk), ("gt-boxes", gtb)):
        res: dict[str, Any] = {}
        t0 = time.perf_counter()
        ours = match_skeletons(tracks, sim.poses, AttachConfig())
        res["attach_ms_per_frame"] = 1000 * (time.perf_counter() - t0) / n
        for name, m in (
            ("ours", ours),
            ("no-identity-term", match_skeletons(tracks, sim.poses, AttachConfig(identity_weight=0.0))),
            ("greedy-iou", greedy_iou_matches(tracks, sim.poses)),
        ):
            for ident_name, ident in identities[setting].items():
                res[f"attach_{name}_{ident_name}"] = list(attachment_accuracy(m, sim, ident))
        out[setting] = res

    # Smoothing, scored per identity on the gt-boxes setting (and OKS AP on both).
    gts = instances_from_tracks(gt)
    gts = [g for g in gts if g.skeleton.present.any()]
    for setting, tracks in (("tracker", trk), ("gt-boxes", gtb)):
        raw = attach_skeletons(tracks, sim.poses, AttachConfig())
        t0 = time.perf_counter()
        ours_s = smooth_skeleton_tracks(raw, smooth_cfg)
        smooth_ms = 1000 * (time.perf_counter() - t0) / scene.info.num_frames
        causal = smooth_skeleton_tracks(raw, replace(smooth_cfg, bidirectional=False, body_compensation=False))
        variants = {"raw": raw, "one-euro-causal": causal, "ours": ours_s}
        res = out[setting]
        res["smooth_ms_per_frame"] = smooth_ms
        for name, tracks_v in variants.items():
            ap = oks_ap(gts, instances_from_tracks(tracks_v))
            res[f"ap_{name}"] = ap.ap
            res[f"ap50_{name}"] = ap.ap50
        if setting == "gt-boxes":
            sm = smoothing_metrics(gt, variants, fps)
            res["jitter"] = {k: float(np.mean(v)) if v else float("nan") for k, v in sm["jitter"].items()}
            res["limb_lags"] = sm["lags"]
            res["limb_speeds"] = sm["speeds"]
            # PCK@0.2 of the box's longer side, over ground-truth boxes with a skeleton attached
            for name, tracks_v in variants.items():
                gs, ds, sizes = [], [], []
                by_id = {t.track_id: t for t in tracks_v}
                for g in gt:
                    for b in g.boxes:
                        d = by_id[g.track_id].at(b.frame_idx)
                        if b.skeleton is None or d is None or d.skeleton is None:
                            continue
                        gs.append(b.skeleton)
                        ds.append(d.skeleton)
                        sizes.append(float(max(b.xyxy[2] - b.xyxy[0], b.xyxy[3] - b.xyxy[1])))
                res[f"pck_{name}"] = pck(gs, ds, sizes, 0.2)
    return out


def summarize(scenes: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over scenes, pooled attachment accuracy, fast-limb lags."""
    summary: dict[str, Any] = {}
    for setting in ("tracker", "gt-boxes"):
        s: dict[str, Any] = {}
        for ident_name in IDENTITIES[setting]:
            for name in ("ours", "no-identity-term", "greedy-iou"):
                key = f"attach_{name}_{ident_name}"
                pairs = np.array([sc[setting][key] for sc in scenes], dtype=np.float64)
                s[f"attach_accuracy_{name}_{ident_name}"] = float(pairs[:, 0].sum() / max(pairs[:, 1].sum(), 1))
                per = pairs[:, 0] / np.maximum(pairs[:, 1], 1)
                s[f"attach_accuracy_{name}_{ident_name}_min_scene"] = float(per.min())
        s["attached_skeletons"] = int(sum(sc[setting][f"attach_ours_{IDENTITIES[setting][0]}"][1] for sc in scenes))
        for name in ("raw", "one-euro-causal", "ours"):
            s[f"ap_{name}_median"] = float(np.median([sc[setting][f"ap_{name}"] for sc in scenes]))
        s["ap_ours_minus_raw_median"] = float(
            np.median([sc[setting]["ap_ours"] - sc[setting]["ap_raw"] for sc in scenes])
        )
        s["attach_ms_per_frame_median"] = float(np.median([sc[setting]["attach_ms_per_frame"] for sc in scenes]))
        s["smooth_ms_per_frame_median"] = float(np.median([sc[setting]["smooth_ms_per_frame"] for sc in scenes]))
        summary[setting] = s
    g = summary["gt-boxes"]
    for name in ("raw", "one-euro-causal", "ours"):
        g[f"jitter_{name}_median"] = float(np.nanmedian([sc["gt-boxes"]["jitter"][name] for sc in scenes]))
        g[f"pck_{name}_median"] = float(np.median([sc["gt-boxes"][f"pck_{name}"] for sc in scenes]))
    for name in ("one-euro-causal", "ours"):
        g[f"jitter_ratio_{name}_median"] = float(
            np.nanmedian([sc["gt-boxes"]["jitter"][name] / sc["gt-boxes"]["jitter"]["raw"] for sc in scenes])
        )
    speeds = np.concatenate([np.asarray(sc["gt-boxes"]["limb_speeds"]) for sc in scenes])
    fps_per = np.concatenate([np.full(len(sc["gt-boxes"]["limb_speeds"]), sc["fps"]) for sc in scenes])
    fast = speeds >= np.quantile(speeds, 0.75) if len(speeds) else np.zeros(0, bool)
    g["fast_limb_trajectories"] = int(fast.sum())
    g["fast_limb_speed_min_heights_per_s"] = float(speeds[fast].min()) if fast.any() else float("nan")
    for name in ("raw", "one-euro-causal", "ours"):
        lag = np.concatenate([np.asarray(sc["gt-boxes"]["limb_lags"][name]) for sc in scenes])
        g[f"fast_limb_lag_frames_{name}_median"] = float(np.median(lag[fast])) if fast.any() else float("nan")
        g[f"fast_limb_lag_ms_{name}_median"] = (
            float(np.median(lag[fast] * 1000.0 / fps_per[fast])) if fast.any() else float("nan")
        )
        g[f"all_limb_lag_frames_{name}_median"] = float(np.median(lag)) if len(lag) else float("nan")
    return summary


def write_markdown(path: Path, summary: dict[str, Any], meta: dict[str, Any]) -> None:
    """A Markdown report of the summary."""
    t, g = summary["tracker"], summary["gt-boxes"]
    lines = [
        "# Pose benchmark: skeletons on track IDs, keypoint smoothing",
        "",
        f"Held-out generated scenes: presets {', '.join(meta['presets'])}, seeds {meta['seeds']} "
        f"({meta['num_scenes']} scenes, {t['attached_skeletons']} + {g['attached_skeletons']} attached skeletons). "
        "Pose estimates simulated from ground truth with a known error model (the shipped pose model is measured in"
        " `models/prelabel-synth.md`); see `benchmarks/pose.py`.",
        f"Command: `{meta['command']}`; {meta['wall_s']:.0f} s on {meta['machine']}.",
        "",
        "## Attachment: fraction of skeletons on the right ground-truth identity (goal >= 0.98)",
        "",
        "| tracks | identity of a track box | ours | ours without identity term | greedy IoU (reference) | "
        "worst scene, ours |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    labels = {
        ("tracker", "windowed"): ("tracker on pose detections", "box match, majority over +-10 frames"),
        ("tracker", "per-frame"): ("tracker on pose detections", "box match in that frame"),
        ("gt-boxes", "exact"): ("ground-truth boxes, jittered", "exact (ground-truth ID)"),
    }
    for (setting, ident), (tracks_label, ident_label) in labels.items():
        s = summary[setting]
        lines.append(
            f"| {tracks_label} | {ident_label} | {s[f'attach_accuracy_ours_{ident}']:.4f} | "
            f"{s[f'attach_accuracy_no-identity-term_{ident}']:.4f} | {s[f'attach_accuracy_greedy-iou_{ident}']:.4f} | "
            f"{s[f'attach_accuracy_ours_{ident}_min_scene']:.4f} |"
        )
    lines += [
        "",
        "## Smoothing (medians over scenes)",
        "",
        "| keypoints | OKS AP (tracker) | OKS AP (gt boxes) | PCK@0.2 | jitter px/frame² | jitter / raw | "
        "fast-limb lag, frames | fast-limb lag, ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in (
        ("raw", "raw (reference)"),
        ("one-euro-causal", "One-Euro, causal (textbook)"),
        ("ours", "ours"),
    ):
        ratio = "1" if name == "raw" else f"{g[f'jitter_ratio_{name}_median']:.3f}"
        lines.append(
            f"| {label} | {t[f'ap_{name}_median']:.4f} | {g[f'ap_{name}_median']:.4f} | "
            f"{g[f'pck_{name}_median']:.4f} | "
            f"{g[f'jitter_{name}_median']:.3f} | {ratio} | {g[f'fast_limb_lag_frames_{name}_median']:+.2f} | "
            f"{g[f'fast_limb_lag_ms_{name}_median']:+.1f} |"
        )
    lines += [
        "",
        f"Fast limbs: the {g['fast_limb_trajectories']} wrist/ankle trajectories in the top speed quartile "
        f"(>= {g['fast_limb_speed_min_heights_per_s']:.2f} person heights/s); lag > 0 means behind ground truth. "
        f"All wrist/ankle trajectories: raw {g['all_limb_lag_frames_raw_median']:+.2f}, causal One-Euro "
        f"{g['all_limb_lag_frames_one-euro-causal_median']:+.2f}, "
        f"ours {g['all_limb_lag_frames_ours_median']:+.2f} frames. "
        "Jitter is scored on tracks of at least 30 frames (scenes without one are left out of its median).",
        "",
        "Per preset, OKS AP raw -> ours (gt boxes), medians over seeds: "
        + ", ".join(f"{p} {a:.3f} -> {b:.3f}" for p, (a, b) in meta["per_preset_ap"].items())
        + ".",
        f"Time per frame (median): attach {t['attach_ms_per_frame_median']:.2f} ms (tracker tracks), "
        f"smoothing {g['smooth_ms_per_frame_median']:.2f} ms.",
        "",
    ]
    path.write_text("\n".join(lines))


def plot_example(path: Path, noise: NoiseModel, smooth_cfg: SmoothConfig) -> None:
    """Plot the fastest wrist of a held-out ``actions`` scene: ground truth, raw, causal One-Euro and ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scene = generate("actions", HELD_OUT_SEED0, render=False)
    sim = simulate_pose_model(scene, np.random.default_rng(HELD_OUT_SEED0 + 17), noise)
    raw = attach_skeletons(jittered_gt_tracks(scene, np.random.default_rng(HELD_OUT_SEED0 + 29)), sim.poses)
    variants = {
        "raw": raw,
        "One-Euro, causal": smooth_skeleton_tracks(
            raw, replace(smooth_cfg, bidirectional=False, body_compensation=False)
        ),
        "ours": smooth_skeleton_tracks(raw, smooth_cfg),
    }
    best: tuple[float, Track, int] | None = None
    for g in person_tracks(scene):
        xy, p = _dense(g, int(g.frames[0]), int(g.frames[-1]))
        for k in (9, 10):
            v = np.linalg.norm(np.diff(xy[:, k], axis=0), axis=1)[p[1:, k] & p[:-1, k]]
            if len(v) > 60 and (best is None or v.mean() > best[0]):
                best = (float(v.mean()), g, k)
    if best is None:
        return
    _, g, k = best
    first, last = int(g.frames[0]), int(g.frames[-1])
    t = np.asarray(scene.ts_ms[first : last + 1]) / 1000.0
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    gxy, gp = _dense(g, first, last)
    for axis, ax in enumerate(axes):
        ax.plot(t[gp[:, k]], gxy[gp[:, k], k, axis], "k-", lw=2, label="ground truth")
        for (name, tracks), style in zip(variants.items(), ("c.", "C1-", "C3-"), strict=True):
            tr = next(x for x in tracks if x.track_id == g.track_id)
            dxy, dp = _dense(tr, first, last)
            ax.plot(t[dp[:, k]], dxy[dp[:, k], k, axis], style, lw=1.2, ms=3, label=name)
        ax.set_ylabel(("x", "y")[axis] + " (px)")
    axes[0].set_title(f"actions/{HELD_OUT_SEED0}, track {g.track_id}, {('left', 'right')[k - 9]} wrist")
    axes[0].legend(loc="best", fontsize=8)
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write ``benchmarks/results/pose.{json,md}``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed per preset")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per preset")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(1)
    n_seeds = 1 if args.quick else args.seeds
    seeds = [HELD_OUT_SEED0 + i for i in range(n_seeds)]
    noise, smooth_cfg = NoiseModel(), SmoothConfig()
    t0 = time.perf_counter()
    scenes = []
    for preset in PRESETS:
        for seed in seeds:
            t1 = time.perf_counter()
            scenes.append(run_scene(preset, seed, noise, smooth_cfg))
            s = scenes[-1]
            logger.info(
                "%s/%d: %d persons, attach (tracker, windowed) %.4f (greedy %.4f), AP raw %.3f ours %.3f, %.1f s",
                preset,
                seed,
                s["persons"],
                s["tracker"]["attach_ours_windowed"][0] / max(s["tracker"]["attach_ours_windowed"][1], 1),
                s["tracker"]["attach_greedy-iou_windowed"][0] / max(s["tracker"]["attach_greedy-iou_windowed"][1], 1),
                s["gt-boxes"]["ap_raw"],
                s["gt-boxes"]["ap_ours"],
                time.perf_counter() - t1,
            )
    summary = summarize(scenes)
    per_preset_ap = {
        p: (
            float(np.median([sc["gt-boxes"]["ap_raw"] for sc in scenes if sc["preset"] == p])),
            float(np.median([sc["gt-boxes"]["ap_ours"] for sc in scenes if sc["preset"] == p])),
        )
        for p in PRESETS
    }
    meta = {
        "presets": list(PRESETS),
        "seeds": seeds,
        "num_scenes": len(scenes),
        "per_preset_ap": per_preset_ap,
        "noise_model": noise.__dict__,
        "smooth_config": smooth_cfg.__dict__,
        "attach_config": AttachConfig().__dict__,
        "command": "python benchmarks/pose.py" + (" --quick" if args.quick else f" --seeds {n_seeds}"),
        "wall_s": time.perf_counter() - t0,
        "machine": "CPU, 1 thread",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pose.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "scenes": scenes}, indent=1, default=float)
    )
    write_markdown(args.out / "pose.md", summary, meta)
    plot_example(args.out / "pose_wrist.png", noise, smooth_cfg)
    print((args.out / "pose.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
