"""Offline refinement: linking across gaps, gap filling, RTS smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.track import TrackerConfig, refine
from prelabel.types import Source, Track, TrackedBox

FPS = 25.0


def _walk(frames: range, x0: float = 100.0, vx: float = 100.0, y: float = 200.0) -> np.ndarray:
    """(T, 4) boxes of a person 100 px tall walking at ``vx`` px/s."""
    t = np.array(list(frames), float) / FPS
    x = x0 + vx * t
    return np.stack([x, np.full_like(x, y), x + 40, np.full_like(x, y + 100)], axis=1)


def _track(tid: int, frames: range, boxes: np.ndarray, score: float = 0.9) -> Track:
    return Track(
        tid,
        [TrackedBox(f, b, score, Source.DETECTOR, f * 1000.0 / FPS) for f, b in zip(frames, boxes, strict=True)],
    )


def test_smoothing_reduces_jitter_against_ground_truth() -> None:
    rng = np.random.default_rng(0)
    frames = range(100)
    truth = _walk(frames)
    noisy = truth + rng.normal(0, 5.0, truth.shape)  # 5 % of the height per edge
    (out,) = refine([_track(1, frames, noisy)], TrackerConfig(), FPS)
    assert [b.source for b in out.boxes] == [Source.SMOOTHED] * 100
    err_raw = np.abs(noisy - truth).mean()
    err_smooth = np.abs(out.xyxy - truth).mean()
    assert err_smooth < 0.6 * err_raw


def test_gap_is_linked_and_filled_along_the_motion() -> None:
    a, b = range(0, 40), range(48, 90)  # 7 frames (0.28 s) missing in the middle
    truth = _walk(range(90))
    out = refine([_track(1, a, truth[:40]), _track(2, b, truth[48:])], TrackerConfig(), FPS)
    assert len(out) == 1
    track = out[0]
    assert track.track_id == 1
    assert track.frames.tolist() == list(range(90))
    filled = [bx for bx in track.boxes if bx.source is Source.FILLED]
    assert [bx.frame_idx for bx in filled] == list(range(40, 48))
    np.testing.assert_allclose(np.stack([bx.xyxy for bx in filled]), truth[40:48], atol=2.0)
    assert all(bx.score < 0.9 for bx in filled)


def test_long_gap_is_linked_but_left_unfilled() -> None:
    a, b = range(0, 30), range(60, 90)  # 1.2 s gap: same person, hidden
    truth = _walk(range(90))
    out = refine([_track(1, a, truth[:30]), _track(2, b, truth[60:])], TrackerConfig(fill_max_s=0.5), FPS)
    assert len(out) == 1
    assert out[0].gaps() == [(30, 59)]


def test_inconsistent_motion_is_not_linked() -> None:
    truth = _walk(range(90))
    other = _walk(range(90), x0=700.0, vx=-100.0, y=380.0)  # someone else, elsewhere, walking the other way
    out = refine([_track(1, range(0, 30), truth[:30]), _track(2, range(45, 90), other[45:])], TrackerConfig(), FPS)
    assert len(out) == 2


def test_short_tracklets_are_dropped_and_ids_renumbered() -> None:
    truth = _walk(range(60))
    blip = _walk(range(3), x0=600.0, y=50.0)
    out = refine([_track(7, range(60), truth), _track(9, range(3), blip)], TrackerConfig(min_track_s=0.5), FPS)
    assert [t.track_id for t in out] == [1]


def test_frame_size_drops_filled_boxes_out_of_view() -> None:
    # Walks out of the right edge (frame 640 px wide) and back: filled boxes outside the frame are not invented.
    t = np.arange(60) / FPS
    x = 560 + 400 * np.sin(np.pi * t / 2.4)
    boxes = np.stack([x, np.full_like(x, 100), x + 40, np.full_like(x, 200)], axis=1)
    seen = [f for f in range(60) if boxes[f, 2] <= 640]
    track = Track(1, [TrackedBox(f, boxes[f], 0.9, Source.DETECTOR, f * 40.0) for f in seen])
    (out,) = refine([track], TrackerConfig(fill_max_s=5.0), FPS, frame_size=(640, 480))
    assert out.xyxy[:, 2].max() <= 640
    filled = [b for b in out.boxes if b.source is Source.FILLED]
    assert all((b.xyxy[2] - b.xyxy[0]) > 0 for b in filled)


def test_refine_rejects_bad_fps() -> None:
    with pytest.raises(InvalidInputError, match="fps"):
        refine([], TrackerConfig(), 0.0)


def test_smoother_noise_is_chosen_per_track_by_likelihood() -> None:
    # A ball-like object bouncing fast: a smoother tuned for walking people would cut its corners.
    rng = np.random.default_rng(3)
    t = np.arange(80) / FPS
    x = 300 + 200 * np.abs(np.sin(2 * np.pi * 1.5 * t))
    truth = np.stack([x, np.full_like(x, 200), x + 20, np.full_like(x, 220)], axis=1)
    noisy = truth + rng.normal(0, 1.0, truth.shape)
    track = _track(1, range(80), noisy)
    stiff = TrackerConfig(smooth_accel_std=0.5, smooth_noise_scales=(1.0,))
    adaptive = TrackerConfig(smooth_accel_std=0.5, smooth_noise_scales=(1.0, 30.0, 1000.0))
    (a,) = refine([track], stiff, FPS)
    (b,) = refine([track], adaptive, FPS)
    err_stiff = np.abs(a.xyxy - truth).mean()
    err_adaptive = np.abs(b.xyxy - truth).mean()
    assert err_adaptive < 0.5 * err_stiff


def test_appearance_decides_between_two_plausible_links() -> None:
    # One person disappears; two people appear where they could plausibly be: the one dressed the same is linked.
    truth = _walk(range(90))
    a = _track(1, range(0, 30), truth[:30])
    near = _track(2, range(45, 90), truth[45:] + np.array([0, 15, 0, 15]))  # closer by motion alone
    alike = _track(3, range(45, 90), truth[45:] - np.array([0, 25, 0, 25]))
    red, blue = np.zeros(64, np.float32), np.zeros(64, np.float32)
    red[3], blue[40] = 1.0, 1.0
    appearance = {1: np.tile(red, (30, 1)), 2: np.tile(blue, (45, 1)), 3: np.tile(red, (45, 1))}
    cfg = TrackerConfig(appearance_weight=0.5)
    linked = refine([a, near, alike], cfg, FPS, appearance=appearance)
    first = next(t for t in linked if t.frames[0] == 0)
    assert first.frames[-1] == 89
    np.testing.assert_allclose(first.boxes[-1].xyxy[1], truth[89, 1] - 25, atol=3.0)
    without = refine([a, near, alike], cfg, FPS)  # no frames seen: motion alone picks the closer one
    first = next(t for t in without if t.frames[0] == 0)
    np.testing.assert_allclose(first.boxes[-1].xyxy[1], truth[89, 1] + 15, atol=3.0)
    assert len(linked) == len(without) == 2


def test_smoothing_uses_each_steps_own_time() -> None:
    """A variable frame rate (frames 10 to 150 ms apart) and runs seen between gaps left unfilled: each step of the
    smoother takes its own time step, so the boxes stay on the walk (with the steps misaligned by one, a box took
    its neighbour's time step and left the walk)."""
    rng = np.random.default_rng(3)
    frames = [f for s in range(0, 400, 40) for f in range(s, s + 10)]  # runs of 10, gaps of 30 frames
    ts = np.cumsum(rng.uniform(0.01, 0.15, 400))[frames]
    x = 100.0 + 150.0 * ts
    truth = np.stack([x, np.full_like(x, 200.0), x + 40, np.full_like(x, 300.0)], axis=1)
    noisy = truth + rng.normal(0, 3.0, truth.shape)
    boxes = [TrackedBox(f, b, 0.9, Source.DETECTOR, t * 1000.0) for f, b, t in zip(frames, noisy, ts, strict=True)]
    (out,) = refine([Track(1, boxes)], TrackerConfig(fill_max_s=0.5), FPS)
    assert out.frames.tolist() == frames  # the gaps (1.2 to 2.4 s) stay gaps
    err = np.abs(out.xyxy - truth)
    assert err.mean() < 0.6 * np.abs(noisy - truth).mean()
    assert err.max() < 8.0


def test_frames_far_apart_cost_what_their_boxes_do() -> None:
    """Two sightings 10 million frames apart (the same place): the smoother steps across the gap without holding a
    state per frame of it, and ``max_boxes`` bounds what filled gaps may add."""
    from prelabel.errors import ResourceExhaustedError
    from prelabel.track.offline import fill_count, fill_frames

    frames = [0, 1, 2, 10_000_000, 10_000_001, 10_000_002]
    box = np.array([100.0, 100.0, 140.0, 200.0])
    track = Track(1, [TrackedBox(f, box, 0.9, Source.DETECTOR, f * 1000.0 / FPS) for f in frames])
    (out,) = refine([track], TrackerConfig(), FPS)
    assert out.frames.tolist() == frames
    np.testing.assert_allclose(out.xyxy, np.tile(box, (6, 1)), atol=1e-3)
    times = np.array([0.0, 0.1, 0.4, 0.5])
    assert fill_frames(np.array([0, 2, 6, 8]), times, 0.2).tolist() == [0, 1, 2, 6, 7, 8]  # 2 -> 6 takes 0.3 s
    dense = Track(2, [TrackedBox(f, box, 0.9, Source.DETECTOR, f * 1000.0 / FPS) for f in (0, 5)])
    with pytest.raises(ResourceExhaustedError, match="more than 5 boxes"):
        refine([dense], TrackerConfig(min_track_s=0.0), FPS, max_boxes=5)
    # Frames far apart whose times lie close (a client's): counted before the 2e9 frames between them are built.
    close = Track(3, [TrackedBox(f, box, 0.9, Source.DETECTOR, t) for f, t in ((0, 0.0), (2_000_000_000, 400.0))])
    assert fill_count(np.array([0, 2_000_000_000]), np.array([0.0, 0.4]), 0.5) == 2_000_000_001
    with pytest.raises(ResourceExhaustedError, match="more than 1000000 boxes"):
        refine([close], TrackerConfig(min_track_s=0.0), FPS, max_boxes=1_000_000)
