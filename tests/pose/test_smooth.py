"""One-Euro keypoint smoothing: less jitter, OKS kept, no lag on fast limbs, nothing invented, any frame rate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.metrics.pose import instances_from_tracks, keypoint_jitter, oks_ap, trajectory_lag
from prelabel.pose.attach import attach_skeletons
from prelabel.pose.smooth import (
    SmoothConfig,
    one_euro_smooth,
    smooth_skeleton_track,
    smooth_skeleton_tracks,
    track_times_s,
)
from prelabel.types import Track, TrackedBox


def _arrays(track: Track) -> tuple[np.ndarray, np.ndarray]:
    xy = np.stack([b.skeleton.keypoints[:, :2] for b in track.boxes])  # type: ignore[union-attr]
    present = np.stack([b.skeleton.present for b in track.boxes])  # type: ignore[union-attr]
    return xy, present


def _attach(scene, make_poses, seed: int, **kw) -> tuple[list[Track], list[Track]]:
    gt = scene.tracks()
    sim = make_poses(scene, np.random.default_rng(seed), p_miss=0.0, p_false=0.0, **kw)
    return gt, attach_skeletons(gt, sim.poses)


# At 10 fps a swinging arm moves a lot between frames, so the speed-adaptive cutoff rightly smooths less.
@pytest.mark.parametrize(("fps", "max_ratio"), [(10.0, 0.75), (30.0, 0.4), (60.0, 0.3)])
def test_filtering_lowers_jitter_and_keeps_oks(make_crossing_scene, make_poses, fps, max_ratio) -> None:
    scene = make_crossing_scene(num_frames=int(4 * fps), fps=fps)
    gt, raw = _attach(scene, make_poses, seed=int(fps), p_swap=0.0)
    smooth = smooth_skeleton_tracks(raw, SmoothConfig())
    for g, r, s in zip(gt, raw, smooth, strict=True):
        gxy, gp = _arrays(g)
        rxy, rp = _arrays(r)
        sxy, sp = _arrays(s)
        assert np.array_equal(rp, sp)
        j_raw = keypoint_jitter(gxy, gp, rxy, rp).mean
        j_smooth = keypoint_jitter(gxy, gp, sxy, sp).mean
        assert j_smooth < max_ratio * j_raw, (fps, j_raw, j_smooth)
    gts = instances_from_tracks(gt)
    ap_raw = oks_ap(gts, instances_from_tracks(raw)).ap
    ap_smooth = oks_ap(gts, instances_from_tracks(smooth)).ap
    assert ap_smooth >= ap_raw - 0.01, (ap_raw, ap_smooth)


def test_fast_limbs_do_not_lag(make_crossing_scene, make_poses) -> None:
    scene = make_crossing_scene(num_frames=150, swing_hz=2.5)  # wrists sweep about 4 person-heights per second
    gt, raw = _attach(scene, make_poses, seed=5, p_swap=0.0, p_drop_kpt=0.0)
    lags = {}
    for name, cfg in {"bidirectional": SmoothConfig(), "causal": SmoothConfig(bidirectional=False)}.items():
        s = smooth_skeleton_tracks(raw, cfg)
        gxy, _ = _arrays(gt[0])
        sxy, _ = _arrays(s[0])
        lags[name] = max(abs(trajectory_lag(gxy[:, k], sxy[:, k])) for k in (9, 10))
    assert lags["bidirectional"] < 0.5, lags
    assert lags["causal"] > lags["bidirectional"], lags  # the metric sees the lag a causal filter has


def test_missing_keypoints_are_never_invented(make_crossing_scene, make_poses) -> None:
    scene = make_crossing_scene(num_frames=60)
    _, raw = _attach(scene, make_poses, seed=2, p_drop_kpt=0.3)
    out = smooth_skeleton_track(raw[0])
    for b_in, b_out in zip(raw[0].boxes, out.boxes, strict=True):
        assert b_in.skeleton is not None and b_out.skeleton is not None
        miss = ~b_in.skeleton.present
        assert np.array_equal(b_out.skeleton.present, b_in.skeleton.present)
        assert np.array_equal(b_out.skeleton.keypoints[miss], b_in.skeleton.keypoints[miss])
        assert np.array_equal(b_out.skeleton.keypoints[:, 2], b_in.skeleton.keypoints[:, 2])
        assert np.array_equal(b_out.xyxy, b_in.xyxy)
    # boxes without skeletons stay without
    partial = Track(1, [replace(b, skeleton=None) if i % 3 == 0 else b for i, b in enumerate(raw[0].boxes)])
    assert all((b.skeleton is None) == (i % 3 == 0) for i, b in enumerate(smooth_skeleton_track(partial).boxes))


def test_time_comes_from_timestamps() -> None:
    rng = np.random.default_rng(0)
    t_ms = np.cumsum(rng.choice([20.0, 50.0], 100))  # variable frame rate
    truth = np.zeros((100, 1, 2))
    truth[:, 0, 0] = 60.0 * t_ms / 1000.0  # 60 px/s, constant
    noisy = truth + rng.normal(0, 2.0, truth.shape)
    present = np.ones((100, 1), bool)
    out = one_euro_smooth(noisy, present, t_ms / 1000.0, np.full(100, 200.0))
    err_raw = np.abs(noisy - truth)[5:-5].mean()
    err_out = np.abs(out - truth)[5:-5].mean()
    assert err_out < 0.6 * err_raw, (err_raw, err_out)
    boxes = [
        TrackedBox(f, [0, 0, 10, 10], 1.0, ts_ms=float(t)) for f, t in zip([0, 1, 5], [0.0, 40.0, 300.0], strict=True)
    ]
    assert track_times_s(boxes, fps=25.0).tolist() == pytest.approx([0.0, 0.04, 0.3])
    no_ts = [replace(b, ts_ms=0.0) for b in boxes]
    assert track_times_s(no_ts, fps=25.0).tolist() == pytest.approx([0.0, 0.04, 0.2])


def test_bad_input_raises() -> None:
    with pytest.raises(InvalidInputError, match="min_cutoff_hz"):
        SmoothConfig(min_cutoff_hz=0.0)
    with pytest.raises(InvalidInputError, match="times must increase"):
        one_euro_smooth(np.zeros((3, 17, 2)), np.ones((3, 17), bool), [0.0, 0.1, 0.1], [1.0, 1.0, 1.0])
    with pytest.raises(InvalidInputError, match="expected xy"):
        one_euro_smooth(np.zeros((3, 17)), np.ones((3, 17), bool), [0.0, 0.1, 0.2], [1.0, 1.0, 1.0])


def test_skeleton_tracks_attaches_then_smooths(make_crossing_scene, make_poses) -> None:
    from prelabel.pose import skeleton_tracks

    scene = make_crossing_scene(num_frames=90)
    gt = scene.tracks()
    sim = make_poses(scene, np.random.default_rng(11), p_swap=0.0)
    tracks = scene.tracks(np.random.default_rng(12), box_noise=0.03)
    for t in tracks:
        t.boxes = [replace(b, skeleton=None) for b in t.boxes]
    out = skeleton_tracks(tracks, sim.poses)
    raw = attach_skeletons(tracks, sim.poses)
    assert [t.track_id for t in out] == [1, 2]
    for g, s, r in zip(gt, out, raw, strict=True):
        gxy, _ = _arrays(g)
        assert sum(b.skeleton is not None for b in s.boxes) >= 0.95 * len(s.boxes)
        errs = {}
        for name, track in (("smoothed", s), ("raw", r)):
            e = [
                np.linalg.norm(
                    b.skeleton.keypoints[b.skeleton.present, :2] - gxy[b.frame_idx][b.skeleton.present], axis=1
                )
                for b in track.boxes
                if b.skeleton is not None
            ]
            errs[name] = float(np.mean(np.concatenate(e)))
        assert errs["smoothed"] < 0.8 * errs["raw"], errs


def test_body_centre_does_not_jump_when_keypoints_vanish() -> None:
    from prelabel.pose.smooth import body_centre

    rng = np.random.default_rng(3)
    shape = rng.uniform(-50, 50, (17, 2))
    shift = np.cumsum(rng.normal(0, 5, (40, 2)), axis=0)
    xy = shape[None] + shift[:, None, :]
    present = rng.random((40, 17)) > 0.3
    present[:, 0] = True
    centre, has = body_centre(xy, present)
    assert has.all()
    # a rigid body: the centre follows the translation exactly, whichever keypoints are present
    drift = centre - shift
    assert np.abs(drift - drift.mean(axis=0)).max() < 0.5  # px; the mean of present keypoints jumps by ~10 px


def test_body_compensation_keeps_smoothing_fast_walkers(make_crossing_scene, make_poses) -> None:
    scene = make_crossing_scene(num_frames=45)  # 440 px in 1.5 s: about 1.5 person heights per second
    gt, raw = _attach(scene, make_poses, seed=8, p_swap=0.0)
    ratios = {}
    for comp in (True, False):
        s = smooth_skeleton_tracks(raw, SmoothConfig(body_compensation=comp))
        j = []
        for g, r, t in zip(gt, raw, s, strict=True):
            gxy, gp = _arrays(g)
            rxy, rp = _arrays(r)
            sxy, sp = _arrays(t)
            j.append(keypoint_jitter(gxy, gp, sxy, sp).mean / keypoint_jitter(gxy, gp, rxy, rp).mean)
        ratios[comp] = float(np.mean(j))
    assert ratios[True] < 0.85 * ratios[False], ratios
