"""Guided interpolation follows what the frames show: it beats linear on a generated fast, non-linear clip."""

from __future__ import annotations

import numpy as np

from prelabel.interpolate import ArrayFrames, interpolate_track
from prelabel.interpolate.guided import GuidedMethod
from prelabel.metrics.interpolation import box_iou
from prelabel.types import Detections, Keyframe


def fast_clip(n: int = 41, size: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured square on a textured background, moving fast along a zig-zag: frames (T, H, W) and boxes."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    bg = (rng.random((h, w)) * 60 + 40).astype(np.uint8)
    patch = (rng.random((size, size)) * 200 + 55).astype(np.uint8)
    t = np.arange(n)
    cx = 60 + 200 * np.abs(((t / 10.0) % 2) - 1)  # bounces every 10 frames, 20 px/frame
    cy = 120 + 50 * np.sin(t / 4.0)
    frames = np.repeat(bg[None], n, axis=0)
    boxes = np.zeros((n, 4))
    for i in range(n):
        x0, y0 = round(cx[i] - size / 2), round(cy[i] - size / 2)
        frames[i, y0 : y0 + size, x0 : x0 + size] = patch
        boxes[i] = [x0, y0, x0 + size, y0 + size]
    return frames, boxes


def test_guided_beats_linear_on_fast_motion() -> None:
    frames, gt = fast_clip()
    kidx = list(range(0, len(gt), 10))
    kfs = [Keyframe(i, gt[i]) for i in kidx]
    inner = np.ones(len(gt), bool)
    inner[kidx] = False
    video = ArrayFrames(frames)
    lin = box_iou(interpolate_track(kfs, "linear").xyxy[inner], gt[inner]).mean()
    gui = interpolate_track(kfs, "guided", video=video)
    g = box_iou(gui.xyxy[inner], gt[inner]).mean()
    auto = box_iou(interpolate_track(kfs, "auto", video=video).xyxy[inner], gt[inner]).mean()
    assert lin < 0.75, lin
    assert g > 0.9, (g, lin)
    assert auto > 0.9, (auto, lin)
    assert (gui.confidence[inner] > 0.5).mean() > 0.8


def test_guided_suggests_where_the_passes_disagree() -> None:
    frames, gt = fast_clip()
    # Occlude frames 24..27 with flat grey: the flow loses the target there.
    frames[24:28] = 128
    kfs = [Keyframe(0, gt[0]), Keyframe(20, gt[20]), Keyframe(40, gt[40])]
    res = interpolate_track(kfs, "guided", video=ArrayFrames(frames), num_suggestions=2)
    assert res.suggestions and 21 <= res.suggestions[0].frame_idx <= 39


def test_detections_support_guided_without_texture() -> None:
    """Flat frames give the flow nothing; detections near the path (with a constant offset) carry the boxes."""
    _, gt = fast_clip()
    flat = ArrayFrames(np.full((len(gt), 240, 320), 100, np.uint8))
    dets = {i: Detections(gt[i : i + 1] + np.full(4, 2.0), [0.9], [0]) for i in range(len(gt))}
    kidx = [0, 5, 10, 15, 20, 25, 30, 35, 40]
    kfs = [Keyframe(i, gt[i]) for i in kidx]
    inner = np.ones(len(gt), bool)
    inner[kidx] = False
    method = GuidedMethod(det_weight=1.5)  # trust the detector more than the default does
    res = interpolate_track(kfs, "guided", video=flat, detections=dets, method_object=method)
    lin = interpolate_track(kfs, "linear")
    assert box_iou(res.xyxy[inner], gt[inner]).mean() > box_iou(lin.xyxy[inner], gt[inner]).mean() + 0.05


def test_guided_on_runs_shorter_than_its_filters() -> None:
    """Gaps of one or two frames on a static camera (the foreground path) keep their shapes."""
    frames, gt = fast_clip(n=12)
    video = ArrayFrames(frames)
    for kidx in ([0, 2], [3, 4, 6], [5, 6]):
        res = interpolate_track([Keyframe(i, gt[i]) for i in kidx], "auto", video=video)
        assert res.xyxy.shape == (kidx[-1] - kidx[0] + 1, 4) and np.isfinite(res.xyxy).all()
