"""The main job on embedded defaults, end to end.

1. Generate a clip with exact ground truth (people acting, a ball) — nothing to download.
2. Start a real gRPC server in this process on a free port, with the registry's default models.
3. Through the real client: upload the video, submit a pre-labeling job (detect, track, pose, actions), watch it.
4. Download the results (prelabel JSON, CVAT for video XML, Label Studio JSON), render an overlay GIF.
5. Print a summary measured against the clip's ground truth (detection recall/precision, HOTA/IDF1, segment F1).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from prelabel.client import PrelabelClient
from prelabel.settings import Settings, default_models_dir
from prelabel.types import Segment, Source, Track, TrackedBox

log = logging.getLogger(__name__)


def _tracks_from_result(doc: dict[str, Any]) -> list[Track]:
    tracks = []
    for t in doc["tracks"]:
        boxes = [TrackedBox(b["frame"], np.asarray(b["xyxy"], np.float32), b["score"], Source.DETECTOR, b["ts_ms"])
                 for b in t["boxes"]]  # fmt: skip
        tracks.append(Track(t["track_id"], boxes, t["class_id"], t["class_name"]))
    return tracks


def _detection_scores(gt: list[Track], doc: dict[str, Any], iou_thr: float = 0.5) -> dict[str, float]:
    """Recall and precision of the raw per-frame detections (score >= 0.25) against ground truth boxes."""
    from scipy.optimize import linear_sum_assignment

    from prelabel.geometry import box_iou

    gt_by_frame: dict[int, list[np.ndarray]] = {}
    for t in gt:
        for b in t.boxes:
            gt_by_frame.setdefault(b.frame_idx, []).append(b.xyxy)
    tp = fp = fn = 0
    for frame, rows in doc["detections"].items():
        det = np.array([r[:4] for r in rows if r[4] >= 0.25], np.float64).reshape(-1, 4)
        g = np.array(gt_by_frame.get(int(frame), []), np.float64).reshape(-1, 4)
        iou = box_iou(g, det) if len(g) and len(det) else np.zeros((len(g), len(det)))
        matched = 0
        if iou.size:
            r, c = linear_sum_assignment(-iou)
            matched = int(np.sum(iou[r, c] >= iou_thr))
        tp, fp, fn = tp + matched, fp + len(det) - matched, fn + len(g) - matched
    return {"recall": tp / max(tp + fn, 1), "precision": tp / max(tp + fp, 1)}


def _match_tracks(gt: list[Track], pred: list[Track]) -> dict[int, int]:
    """Predicted track ID -> ground-truth track ID with which it shares the most frames at IoU >= 0.5."""
    from prelabel.geometry import box_iou

    out: dict[int, int] = {}
    for p in pred:
        votes: dict[int, int] = {}
        for b in p.boxes:
            for g in gt:
                gb = g.at(b.frame_idx)
                if gb is not None and box_iou(b.xyxy[None], gb.xyxy[None])[0, 0] >= 0.5:
                    votes[g.track_id] = votes.get(g.track_id, 0) + 1
        if votes:
            out[p.track_id] = max(votes, key=lambda k: votes[k])
    return out


def _segment_scores(gt_people: list[Track], gt_segments: list[Segment], pred: list[Track],
                    doc: dict[str, Any]) -> dict[str, float]:  # fmt: skip
    """F1@{10,25,50} and edit score of proposed segments, after mapping predicted tracks to ground truth."""
    from prelabel.metrics.segments import qa_compare

    mapping = _match_tracks(gt_people, pred)
    spans = {t.track_id: (int(t.frames[0]), int(t.frames[-1])) for t in gt_people if len(t)}
    cand = []
    for s in doc["segments"]:
        gid = mapping.get(int(s["track_id"]))
        if gid is None or gid not in spans:
            continue
        lo, hi = spans[gid]
        start, end = max(int(s["start_frame"]), lo), min(int(s["end_frame"]), hi)
        if end >= start:
            cand.append(Segment(gid, s["label"], start, end, confidence=float(s["confidence"])))
    ref = [s for s in gt_segments if s.track_id in spans]
    # Compare the mutually exclusive body actions (wave may overlap them and is scored apart).
    body = sorted({s.label for s in ref if s.label != "wave"})
    cand = _drop_overlaps([s for s in cand if s.label in body])
    report = qa_compare(ref, cand, spans, labels=body)
    edit = report.edit / 100.0 if report.edit > 1 else report.edit  # reported on 0..1 here
    scores = {"frame_accuracy": report.frame_accuracy, "edit": edit}
    scores.update({f"f1@{round(k * 100) if k <= 1 else int(k)}": v for k, v in report.f1.items()})
    scores["mean_abs_boundary_offset_frames"] = report.mean_abs_boundary_offset
    return scores


def _drop_overlaps(segments: list[Segment]) -> list[Segment]:
    """Keep the more confident of two overlapping segments of one track (the metrics need one label per frame)."""
    out: list[Segment] = []
    for s in sorted(segments, key=lambda s: -s.confidence):
        if all(o.track_id != s.track_id or o.end_frame < s.start_frame or s.end_frame < o.start_frame for o in out):
            out.append(s)
    return sorted(out, key=lambda s: (s.track_id, s.start_frame))


def _pick_models() -> tuple[str, str, str]:
    from prelabel.registry import ModelRegistry

    registry = ModelRegistry.load(default_models_dir() / "registry.yaml")
    det = registry.defaults.get("detect", "")
    pose = registry.defaults.get("pose", "")
    notes = []
    if not det or not registry.get(det).available:
        notes.append(f"detector {det!r} has no weights here: using the untrained arch-yolo11n")
        det = "arch-yolo11n"
    if not pose or not registry.get(pose).available:
        notes.append(f"pose model {pose!r} has no weights here: using the untrained arch-yolo11n-pose")
        pose = "arch-yolo11n-pose"
    return det, pose, "; ".join(notes)


def run_demo(out: Path, seed: int = 7, frames: int = 90) -> int:
    """Generate, serve, label, export, render, summarise. Returns the process exit status."""
    from prelabel.metrics.tracking import evaluate_tracks
    from prelabel.render import render_overlay
    from prelabel.service.server import PrelabelServer
    from prelabel.synthetic import generate, write_scene
    from prelabel.v1 import prelabel_pb2 as pb

    t0 = time.perf_counter()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    scene = generate("actions", seed, num_frames=frames)
    video = write_scene(scene, out / "clip")["video"]
    detector, pose_model, note = _pick_models()
    if note:
        log.warning(note)
    settings = Settings(port=0, preload=[detector, pose_model], data_dir=out / "server-data", drain_s=0.0)
    server = PrelabelServer(settings)
    server.start()
    results = out / "results"
    try:
        with PrelabelClient(f"127.0.0.1:{server.port}") as client:
            client.wait_until_serving()
            upload_id = client.upload_video(video)
            job = client.submit_job(upload_id=upload_id, detector_model=detector, pose_model=pose_model)
            final = job
            for final in client.watch_job(job.job_id):
                print(f"  job {final.job_id[:8]} {pb.JobState.Name(final.state)} {final.stage} "
                      f"{final.frames_done}/{final.frames_total} frames, {final.frames_per_s:.1f} frames/s",
                      file=sys.stderr)  # fmt: skip
            if final.state != pb.JOB_STATE_SUCCEEDED:
                print(f"error: job {pb.JobState.Name(final.state)}: {final.error}", file=sys.stderr)
                return 1
            files = {fmt: client.download_result(job.job_id, fmt, results) for fmt in ("json", "cvat", "labelstudio")}
    finally:
        server.stop(grace=1.0)
    doc = json.loads(files["json"].read_text())
    overlay = render_overlay(video, doc, out / "overlay.gif", every=2, max_side=480)
    gt_people = [t for t in scene.tracks if t.class_name == "person"]
    pred = _tracks_from_result(doc)
    pred_people = [t for t in pred if t.class_name == "person"]
    tracking = evaluate_tracks(gt_people, pred_people, scene.info.num_frames)
    summary: dict[str, Any] = {
        "clip": str(video.relative_to(out)),
        "frames": scene.info.num_frames,
        "size": f"{scene.info.width}x{scene.info.height}",
        "fps": round(scene.info.fps, 2),
        "ground_truth": {"people": len(gt_people), "segments": len(scene.segments)},
        "models": {"detector": detector, "pose": pose_model},
        "job": {"id": final.job_id, "frames_per_s": round(final.frames_per_s, 2)},
        "proposals": {"tracks": len(pred), "person_tracks": len(pred_people), "segments": len(doc["segments"])},
        "detection_iou50": {k: round(v, 3) for k, v in _detection_scores(gt_people, doc).items()},
        "tracking": {k: round(float(v), 3) for k, v in tracking.as_dict().items()},
        "segments": {
            k: (round(float(v), 3) if np.isfinite(v) else None)
            for k, v in _segment_scores(gt_people, scene.segments, pred, doc).items()
        },
        "files": {**{k: str(v.relative_to(out)) for k, v in files.items()}, "overlay": str(overlay.relative_to(out))},
        "total_s": round(time.perf_counter() - t0, 1),
    }
    # The same action model on the ground-truth skeletons: separates the segmenter's error from the pose model's.
    from prelabel.actions.propose import propose_segments

    reference = propose_segments(
        gt_people, fps=scene.info.fps, ts_ms=scene.ts_ms, model=doc["models"].get("actions", "")
    )
    ref_doc = {"segments": [{"track_id": r.track_id, "label": r.label, "start_frame": r.start_frame,
                             "end_frame": r.end_frame, "confidence": r.confidence} for r in reference]}  # fmt: skip
    summary["segments_from_ground_truth_skeletons"] = {
        k: (round(float(v), 3) if np.isfinite(v) else None)
        for k, v in _segment_scores(gt_people, scene.segments, gt_people, ref_doc).items()
    }
    if note:
        summary["note"] = note
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
