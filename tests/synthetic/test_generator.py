"""Synthetic scene generator: determinism, ground-truth consistency, presets, round trips and errors."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.synthetic import ACTIONS, PRESETS, Scene, generate, load_scene, write_scene
from prelabel.synthetic.cli import synth_main

REQUIRED = ("default", "fast-motion", "crowd", "actions", "occlusion", "camera-motion", "ball")


def _gt_signature(scene: Scene) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for t in scene.tracks:
        for b in t.boxes:
            kp = None if b.skeleton is None else (b.skeleton.keypoints.tobytes(), b.skeleton.present.tobytes())
            rows.append((t.track_id, t.class_name, b.frame_idx, b.xyxy.tobytes(), b.score, b.ts_ms, kp))
    rows += [(s.track_id, s.label, s.start_frame, s.end_frame, s.start_ts_ms, s.end_ts_ms) for s in scene.segments]
    return rows


def test_required_presets_exist() -> None:
    assert set(REQUIRED) <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert set(preset.actions) <= set(ACTIONS)


def test_same_seed_same_scene_and_frames() -> None:
    a = generate("default", 7, num_frames=24)
    b = generate("default", 7, num_frames=24)
    assert a.frames is not None and b.frames is not None
    assert a.frames.shape == (24, 360, 640, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert _gt_signature(a) == _gt_signature(b)
    assert np.array_equal(a.ts_ms, b.ts_ms)
    c = generate("default", 8, num_frames=24)
    assert _gt_signature(a) != _gt_signature(c)


def test_render_false_gives_identical_ground_truth() -> None:
    full = generate("occlusion", 3, num_frames=30)
    fast = generate("occlusion", 3, num_frames=30, render=False)
    assert fast.frames is None
    assert _gt_signature(full) == _gt_signature(fast)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_ground_truth_is_consistent(preset: str) -> None:
    scene = generate(preset, 11, num_frames=60, render=False)
    w, h, n = scene.info.width, scene.info.height, scene.info.num_frames
    assert scene.ts_ms.shape == (n,) and np.all(np.diff(scene.ts_ms) > 0)
    ids = [t.track_id for t in scene.tracks]
    assert len(ids) == len(set(ids)) and all(i > 0 for i in ids)
    n_visible_kp = 0
    for t in scene.tracks:
        assert t.class_name in ("person", "ball") and t.class_id == (0 if t.class_name == "person" else 1)
        vis = scene.visibility[t.track_id]
        # A box exactly on the frames where some of the object is visible: IDs continuous while visible.
        assert np.array_equal(np.flatnonzero(vis > 0), t.frames)
        for b in t.boxes:
            x1, y1, x2, y2 = (float(v) for v in b.xyxy)
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (t.track_id, b.frame_idx, b.xyxy)
            assert 0.0 < b.score <= 1.0
            assert b.ts_ms == scene.ts_ms[b.frame_idx]
            if t.class_name == "ball":
                assert b.skeleton is None
                continue
            assert b.skeleton is not None
            kp = b.skeleton.keypoints[b.skeleton.present]
            n_visible_kp += len(kp)
            assert np.all((kp[:, 0] >= x1) & (kp[:, 0] <= x2) & (kp[:, 1] >= y1) & (kp[:, 1] <= y2)), (
                f"track {t.track_id} frame {b.frame_idx}: visible keypoint outside box {b.xyxy}"
            )
            assert np.all(b.skeleton.keypoints[~b.skeleton.present] == 0)
    if any(t.class_name == "person" for t in scene.tracks):
        assert n_visible_kp > 0
    persons = {t.track_id: t for t in scene.tracks if t.class_name == "person"}
    by_track: dict[int, list[tuple[int, int, str]]] = {}
    for s in scene.segments:
        assert s.label in ACTIONS
        assert s.track_id in persons
        assert 0 <= s.start_frame <= s.end_frame < n
        assert s.start_ts_ms == scene.ts_ms[s.start_frame] and s.end_ts_ms == scene.ts_ms[s.end_frame]
        by_track.setdefault(s.track_id, []).append((s.start_frame, s.end_frame, s.label))
    for tid, segs in by_track.items():
        segs.sort()
        track = persons[tid]
        # Segments tile the track's span exactly: no gaps, no overlaps.
        assert segs[0][0] == int(track.frames[0]) and segs[-1][1] == int(track.frames[-1])
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(segs))
    assert set(by_track) == set(persons)


def test_visible_keypoints_lie_on_the_person_in_the_frame() -> None:
    scene = generate("default", 5, num_frames=12)
    assert scene.frames is not None
    # A person's visible wrist is painted with the person, so the frame differs from the bare background there.
    t = next(t for t in scene.tracks if t.class_name == "person")
    b = t.boxes[0]
    assert b.skeleton is not None
    x1, y1, x2, y2 = (int(v) for v in b.xyxy)
    crop = scene.frames[b.frame_idx, y1:y2, x1:x2].astype(np.float32)
    assert crop.size > 0 and float(crop.std()) > 5.0


def test_presets_do_what_their_names_say() -> None:
    crowd = generate("crowd", 1, num_frames=40, render=False)
    assert sum(t.class_name == "person" for t in crowd.tracks) >= 10
    ball = generate("ball", 1, num_frames=60, render=False)
    assert any(t.class_name == "ball" for t in ball.tracks)
    vfr = generate("vfr", 2, num_frames=80, render=False)
    assert vfr.info.variable_frame_rate
    dt = np.diff(vfr.ts_ms)
    assert dt.max() / dt.min() > 1.5
    uniform = generate("default", 2, num_frames=20, render=False)
    assert np.allclose(np.diff(uniform.ts_ms), 1000.0 / uniform.info.fps, atol=1e-2)
    actions = generate("actions", 4, render=False)
    labels = {s.label for s in actions.segments}
    assert {"squat", "bend", "fall"} <= labels
    occ = generate("occlusion", 6, render=False)
    assert min(b.score for t in occ.tracks for b in t.boxes) < 0.5


def test_fast_motion_moves_more_than_half_a_box_width_per_frame() -> None:
    best = 0.0
    for seed in range(3):
        scene = generate("fast-motion", seed, render=False)
        for t in scene.tracks:
            if t.class_name != "person":
                continue
            xy = t.xyxy
            f = t.frames
            consecutive = np.flatnonzero(np.diff(f) == 1)
            full = np.array([b.score for b in t.boxes]) > 0.95
            for i in consecutive:
                if full[i] and full[i + 1]:
                    cx = (xy[:, 0] + xy[:, 2]) / 2
                    width = xy[i, 2] - xy[i, 0]
                    best = max(best, abs(float(cx[i + 1] - cx[i])) / float(width))
    assert best > 0.5


def test_fps_range_and_overrides() -> None:
    fps_values = {generate("fast-motion", s, num_frames=5, render=False).info.fps for s in range(4)}
    assert all(10.0 <= f <= 15.0 for f in fps_values) and len(fps_values) > 1
    s = generate("default", 0, num_frames=10, width=320, height=240, fps=60.0)
    assert s.frames is not None and s.frames.shape == (10, 240, 320, 3)
    assert s.info.fps == 60.0 and math.isclose(float(s.ts_ms[1]), 1000.0 / 60.0, abs_tol=1e-3)


def test_write_load_round_trip_and_video_readable(tmp_path: Path) -> None:
    scene = generate("camera-motion", 9, num_frames=20)
    paths = write_scene(scene, tmp_path / "scene")
    for name in ("video", "gt", "seqinfo", "keypoints", "segments", "timestamps", "scene"):
        assert paths[name].exists(), name
    assert paths["gt"] == tmp_path / "scene" / "gt" / "gt.txt"
    back = load_scene(tmp_path / "scene")
    assert back.frames is None
    assert back.info == scene.info
    assert np.array_equal(back.ts_ms, scene.ts_ms)
    assert _gt_signature(back) == _gt_signature(scene)
    cap = cv2.VideoCapture(str(paths["video"]))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 20 and frames[0].shape == (360, 640, 3)
    assert scene.frames is not None
    # Lossy codec, but the decoded video is the generated one.
    err = np.abs(frames[10].astype(np.float32) - scene.frames[10].astype(np.float32)).mean()
    assert err < 12.0


def test_mot_rows_are_one_based_tlwh(tmp_path: Path) -> None:
    scene = generate("ball", 3, num_frames=10, render=False)
    paths = write_scene(scene, tmp_path)
    assert "video" not in paths
    first = paths["gt"].read_text().splitlines()[0].split(",")
    frame, tid = int(first[0]), int(first[1])
    box = next(t for t in scene.tracks if t.track_id == tid).at(frame - 1)
    assert box is not None
    x, y, w, h = (float(v) for v in first[2:6])
    assert np.allclose([x, y, x + w, y + h], box.xyxy)


def test_errors() -> None:
    with pytest.raises(NotFoundError, match="unknown synthetic preset 'nope'"):
        generate("nope", 0)
    with pytest.raises(InvalidInputError, match="num_frames"):
        generate("default", 0, num_frames=-1)
    with pytest.raises(InvalidInputError, match="fps"):
        generate("default", 0, fps=0.5)
    with pytest.raises(NotFoundError, match="missing"):
        load_scene(Path("does-not-exist"))


def test_cli_writes_a_scene(tmp_path: Path) -> None:
    rc = synth_main(["--preset", "ball", "--seed", "2", "--out", str(tmp_path / "s"), "--frames", "8", "--no-video"])
    assert rc == 0
    back = load_scene(tmp_path / "s")
    assert back.preset == "ball" and back.seed == 2 and back.info.num_frames == 8
    assert synth_main(["--preset", "ball", "--out", str(tmp_path / "t"), "--frames", "0"]) == 2


def test_squat_bend_and_fall_overlap_in_box_shape() -> None:
    # "Confusable at a glance": box aspect ratios (h / w) of the three low poses share a common range.
    ratios: dict[str, list[float]] = {"squat": [], "bend": [], "fall": []}
    for seed in range(3):
        scene = generate("actions", seed, render=False)
        tracks = {t.track_id: t for t in scene.tracks}
        for s in scene.segments:
            if s.label not in ratios:
                continue
            for f in range(s.start_frame, s.end_frame + 1):
                b = tracks[s.track_id].at(f)
                if b is not None and b.score > 0.9:
                    ratios[s.label].append(float((b.xyxy[3] - b.xyxy[1]) / (b.xyxy[2] - b.xyxy[0])))
    quartiles = {k: np.percentile(v, [25, 75]) for k, v in ratios.items()}
    for a, b in itertools.combinations(quartiles, 2):
        (a_lo, a_hi), (b_lo, b_hi) = quartiles[a], quartiles[b]
        assert a_lo < b_hi and b_lo < a_hi, f"{a} {quartiles[a]} and {b} {quartiles[b]} do not overlap"


def test_a_variable_frame_rate_scene_writes_its_times_into_the_video(tmp_path: Path) -> None:
    """The video of a variable-frame-rate scene carries each frame's real time (what a decoder and the pipeline
    read), not the nominal rate's; a constant-rate scene's video keeps its rate."""
    from prelabel.video.decode import probe

    vfr = generate("vfr", 2, num_frames=60)
    info, ts = probe(write_scene(vfr, tmp_path / "vfr")["video"])
    assert info.variable_frame_rate and info.num_frames == 60
    # The ground truth's times are the ones the video stores (whole milliseconds): they differed by up to 0.5 ms.
    np.testing.assert_array_equal(np.asarray(ts), vfr.ts_ms)
    cfr = generate("default", 2, num_frames=20)
    info, ts = probe(write_scene(cfr, tmp_path / "cfr")["video"])
    assert not info.variable_frame_rate
    assert np.abs(np.asarray(ts) - cfr.ts_ms).max() < 1.0


def test_an_odd_frame_size_is_written_whole(tmp_path: Path) -> None:
    """OpenCV's writer drops an odd row or column; the video must have the size the ground truth is in."""
    from prelabel.video.decode import probe

    scene = generate("default", 2, num_frames=12, width=321, height=179)
    info, ts = probe(write_scene(scene, tmp_path / "odd")["video"])
    assert (info.width, info.height, info.num_frames) == (321, 179, 12)
    assert np.abs(np.asarray(ts) - scene.ts_ms).max() < 0.01
