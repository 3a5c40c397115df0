"""track_detections end to end on generated clips, scored with HOTA against ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.metrics.tracking import evaluate_tracks
from prelabel.track import TrackerConfig, track_detections
from prelabel.types import Detections, Source, Track

from .conftest import SceneFn


def test_hota_on_a_generated_clip_beats_a_broken_association(make_scene: SceneFn) -> None:
    gt, frames = make_scene("occlusion", 0)
    tracks = track_detections(frames, fps=25.0, frame_size=(960, 540))
    s = evaluate_tracks(gt, tracks, len(frames))
    # The same boxes with a new identity in every frame (a broken association) score about 0.06.
    broken = [Track(i + 1, [b]) for i, b in enumerate(b for t in tracks for b in t.boxes)]
    s_broken = evaluate_tracks(gt, broken, len(frames))
    assert s_broken.hota < 0.2
    assert s.hota > 0.6
    assert s.idf1 > 0.7
    assert s.assa > 0.6


def test_offline_refinement_improves_on_online(make_scene: SceneFn) -> None:
    gt, frames = make_scene("occlusion", 2)
    online = track_detections(frames, fps=25.0, offline=False)
    offline = track_detections(frames, fps=25.0, frame_size=(960, 540))
    assert all(b.source is Source.DETECTOR for t in online for b in t.boxes)
    assert {b.source for t in offline for b in t.boxes} <= {Source.SMOOTHED, Source.FILLED}
    s_on, s_off = evaluate_tracks(gt, online, len(frames)), evaluate_tracks(gt, offline, len(frames))
    assert s_off.hota > s_on.hota + 0.1
    assert s_off.id_switches < s_on.id_switches


def test_zero_timestamps_are_derived_from_fps(make_scene: SceneFn) -> None:
    _, frames = make_scene("crossing", 0, num_frames=60)
    zeroed = [(f, 0.0, d) for f, _, d in frames]
    tracks = track_detections(zeroed, TrackerConfig(), fps=25.0)
    box = tracks[0].boxes[-1]
    assert box.ts_ms == pytest.approx(box.frame_idx * 40.0)


def test_bad_input_is_invalid_argument(make_scene: SceneFn) -> None:
    _, frames = make_scene("crossing", 0, num_frames=10)
    with pytest.raises(InvalidInputError, match="fps"):
        track_detections(frames, fps=0.0)
    swapped = [frames[0], frames[2], frames[1], *frames[3:]]
    with pytest.raises(InvalidInputError, match=r"frame 1: frames out of order"):
        track_detections(swapped, fps=25.0)


def test_hota_on_a_synthetic_generator_scene() -> None:
    synthetic = pytest.importorskip("prelabel.synthetic")
    from prelabel.track.simulate import noisy_detections

    scene = synthetic.generate("crowd", 7, render=False)
    info = scene.info
    dets = noisy_detections(scene.tracks, info.num_frames, info.width, info.height, info.fps, seed=7)
    frames = [(f, float(scene.ts_ms[f]), d) for f, d in enumerate(dets)]
    tracks = track_detections(frames, fps=info.fps, frame_size=(info.width, info.height))
    s = evaluate_tracks(scene.tracks, tracks, info.num_frames)
    assert s.hota > 0.45
    assert s.idf1 > 0.55


def test_a_short_clip_keeps_its_tracks() -> None:
    """12 frames at 25 fps (0.44 s, under ``min_track_s``): the object seen on all of them is a track, as the video
    pipeline keeps it."""
    box = np.array([[10.0, 10.0, 40.0, 90.0]], np.float32)
    frames = [(f, 0.0, Detections(box + 2 * f, np.array([0.9]), np.array([0]))) for f in range(12)]
    (track,) = track_detections(frames, fps=25.0)
    assert track.frames.tolist() == list(range(12))
