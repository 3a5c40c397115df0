"""Test helpers: a hand-made Annotations every format test round-trips.

Two tracks, a gap, skeletons with missing keypoints, segments (one spanning the gap), variable timestamps.
"""

from __future__ import annotations

import numpy as np

from prelabel.formats.model import Annotations
from prelabel.types import NUM_KEYPOINTS, Segment, Skeleton, Source, Track, TrackedBox, VideoInfo

NUM_FRAMES = 30


def _skeleton(f: int, x0: float, y0: float, missing: tuple[int, ...]) -> Skeleton:
    rng = np.random.default_rng(f)
    kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    kp[:, 0] = x0 + np.arange(NUM_KEYPOINTS) * 1.5 + rng.uniform(-2, 2, NUM_KEYPOINTS)
    kp[:, 1] = y0 + np.arange(NUM_KEYPOINTS) * 4.0 + rng.uniform(-2, 2, NUM_KEYPOINTS)
    kp[:, 2] = rng.uniform(0.3, 1.0, NUM_KEYPOINTS)
    present = np.ones(NUM_KEYPOINTS, bool)
    present[list(missing)] = False
    kp[~present] = 0.0
    return Skeleton(kp, present, float(kp[present, 2].mean()))


def make_annotations() -> Annotations:
    """Track 1 (person): frames 0..9 and 15..24, skeletons on 0..5 and 18..22; track 3 (car): frames 5..29."""
    ts = np.arange(NUM_FRAMES) * 40.0 + np.r_[0, np.cumsum(np.tile([1.5, -1.5], NUM_FRAMES))[: NUM_FRAMES - 1]]
    boxes1 = []
    for f in [*range(0, 10), *range(15, 25)]:
        x = 100.0 + 7.25 * f + 3.0 * np.sin(f / 3.0)
        y = 50.0 + 2.5 * f
        skel = None
        if f <= 5 or 18 <= f <= 22:
            skel = _skeleton(f, x + 2, y + 2, missing=(3, 4) if f % 2 else (16,))
        boxes1.append(
            TrackedBox(f, np.array([x, y, x + 40.5, y + 90.25]), 0.5 + 0.01 * f, Source.DETECTOR, ts[f], skel)
        )
    boxes3 = [
        TrackedBox(
            f, np.array([300.0 + f * f * 0.5, 200.0, 380.0 + f * f * 0.5, 260.0 - f]), 0.9, Source.TRACKER, ts[f]
        )
        for f in range(5, NUM_FRAMES)
    ]
    tracks = [
        Track(1, boxes1, class_id=0, class_name="person"),
        Track(3, boxes3, class_id=2, class_name="car"),
    ]
    segments = [
        Segment(1, "walking", 2, 7, ts[2], ts[7], 0.8),
        Segment(1, "waving", 4, 19, ts[4], ts[19], 0.6),
        Segment(3, "turning", 10, 12, ts[10], ts[12], 0.7),
    ]
    return Annotations(
        info=VideoInfo(width=640, height=480, num_frames=NUM_FRAMES, fps=25.0),
        tracks=tracks,
        segments=segments,
        ts_ms=ts,
        labels=("person", "bicycle", "car"),
        action_labels=("walking", "waving", "turning"),
        name="clip",
    )


def assert_tracks_equal(
    a: Annotations,
    b: Annotations,
    atol: float,
    skeletons: bool = True,
    scores: bool = False,
    kp_conf: bool = False,
    classes: bool = True,
) -> None:
    """Same track ids, classes, frames (hence gaps) and boxes within ``atol`` pixels; optionally skeletons/scores."""
    assert [t.track_id for t in a.tracks] == [t.track_id for t in b.tracks]
    for ta, tb in zip(a.tracks, b.tracks, strict=True):
        if classes:
            assert a.class_name(ta) == b.class_name(tb)
        np.testing.assert_array_equal(ta.frames, tb.frames)
        assert ta.gaps() == tb.gaps()
        np.testing.assert_allclose(ta.xyxy, tb.xyxy, atol=atol)
        if scores:
            np.testing.assert_allclose([x.score for x in ta], [x.score for x in tb], atol=1e-5)
        if skeletons:
            for xa, xb in zip(ta.boxes, tb.boxes, strict=True):
                assert (xa.skeleton is None) == (xb.skeleton is None), f"track {ta.track_id} frame {xa.frame_idx}"
                if xa.skeleton is not None and xb.skeleton is not None:
                    np.testing.assert_array_equal(xa.skeleton.present, xb.skeleton.present)
                    p = xa.skeleton.present
                    np.testing.assert_allclose(xa.skeleton.keypoints[p, :2], xb.skeleton.keypoints[p, :2], atol=atol)
                    if kp_conf:
                        np.testing.assert_allclose(xa.skeleton.keypoints[p, 2], xb.skeleton.keypoints[p, 2], atol=1e-4)


def segment_keys(ann: Annotations) -> list[tuple[int, str, int, int]]:
    """(track, label, start, end) of every segment, sorted."""
    return sorted((s.track_id, s.label, s.start_frame, s.end_frame) for s in ann.segments)
