"""Online tracker: identities through a crossing and an occlusion, input validation, camera-motion compensation."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.metrics.tracking import evaluate_tracks
from prelabel.track import OnlineTracker, TrackerConfig, track_detections
from prelabel.track.cmc import SparseFlowCMC
from prelabel.track.simulate import DetectorNoise
from prelabel.types import Detections, Source

from .conftest import SceneFn


def _dets(rows: list[list[float]], scores: list[float] | None = None) -> Detections:
    xyxy = np.array(rows, np.float32).reshape(-1, 4)
    sc = np.array(scores if scores is not None else [0.9] * len(xyxy), np.float32)
    return Detections(xyxy, sc, np.zeros(len(xyxy), np.int64))


@pytest.mark.parametrize("seed", [0, 1])
def test_ids_survive_crossing_and_occlusion(make_scene: SceneFn, seed: int) -> None:
    # Two people walk towards each other and cross; one passes behind a pillar for about 0.4 s.
    gt, frames = make_scene("crossing", seed)
    assert any(t.gaps() for t in gt), "the scene must hide someone completely for a while"
    tracks = track_detections(frames, fps=25.0, frame_size=(960, 540))
    s = evaluate_tracks(gt, tracks, len(frames))
    assert s.id_switches == 0
    assert s.idf1 >= 0.9
    assert len(tracks) == 2


def test_online_ids_are_stable_on_clean_input() -> None:
    tracker = OnlineTracker(TrackerConfig(min_hits=2))
    seen: dict[int, list[float]] = {}
    for f in range(20):
        a = [100 + 5 * f, 100, 140 + 5 * f, 200]
        b = [600 - 5 * f, 300, 640 - 5 * f, 400]
        for obj in tracker.update(f, f * 40.0, _dets([a, b])):
            assert obj.source is Source.DETECTOR
            seen.setdefault(obj.track_id, []).append(obj.xyxy[0])
    assert sorted(seen) == [1, 2]
    assert all(len(v) == 19 for v in seen.values())  # reported from the second observation (min_hits=2) on
    assert seen[1][0] < seen[1][-1] and seen[2][0] > seen[2][-1]


def test_low_score_detections_keep_a_track_alive() -> None:
    cfg = TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1, max_lost_s=0.05)
    tracker = OnlineTracker(cfg)
    ids = []
    for f in range(10):
        box = [100 + 4 * f, 100, 140 + 4 * f, 200]
        score = 0.9 if f < 3 or f > 6 else 0.3  # partly occluded in frames 3..6: weak detections only
        ids += [o.track_id for o in tracker.update(f, f * 40.0, _dets([box], [score]))]
    assert ids == [1] * 10


@pytest.mark.parametrize(
    ("rows", "scores", "match"),
    [
        ([[0, 0, 10, 10], [5, 5, np.nan, 20]], [0.9, 0.9], r"frame 3, row 1"),
        ([[0, 0, 10, 10], [0, 0, 10, 10], [30, 30, 20, 40]], [0.9, 0.9, 0.9], r"frame 3, row 2.*negative size"),
        ([[0, 0, 10, 10]], [1.5], r"frame 3, row 0.*score"),
    ],
)
def test_bad_detections_name_frame_and_row(rows: list[list[float]], scores: list[float], match: str) -> None:
    tracker = OnlineTracker()
    tracker.update(2, 80.0, _dets([[0, 0, 10, 10]]))
    det = Detections.empty()
    # Bypass Detections' own checks, as a caller mutating arrays would.
    det.xyxy = np.array(rows, np.float32)
    det.scores = np.array(scores, np.float32)
    det.class_ids = np.zeros(len(rows), np.int64)
    with pytest.raises(InvalidInputError, match=match):
        tracker.update(3, 120.0, det)


def test_frames_out_of_order_are_rejected() -> None:
    tracker = OnlineTracker()
    tracker.update(5, 200.0, _dets([[0, 0, 10, 10]]))
    with pytest.raises(InvalidInputError, match=r"frame 5: given twice"):  # said "out of order" before
        tracker.update(5, 240.0, _dets([[0, 0, 10, 10]]))
    with pytest.raises(InvalidInputError, match=r"frame 4: frames out of order"):
        tracker.update(4, 240.0, _dets([[0, 0, 10, 10]]))
    with pytest.raises(InvalidInputError, match=r"frame 6: timestamps out of order"):
        tracker.update(6, 100.0, _dets([[0, 0, 10, 10]]))


def test_sparse_flow_recovers_a_camera_pan() -> None:
    rng = np.random.default_rng(0)
    base = (rng.random((300, 420)) * 255).astype(np.uint8)
    base = np.repeat(base[:, :, None], 3, axis=2)
    import cv2

    base = cv2.GaussianBlur(base, (5, 5), 1.5)
    cmc = SparseFlowCMC(max_side=480)
    cmc.estimate(base[20:260, 20:380])
    warp = cmc.estimate(base[20:260, 26:386])  # the camera moved 6 px right: content moves 6 px left
    np.testing.assert_allclose(warp[:, 2], [-6.0, 0.0], atol=0.5)
    np.testing.assert_allclose(warp[:, :2], np.eye(2), atol=0.02)


def test_camera_motion_compensation_keeps_ids_through_a_fast_pan() -> None:
    rng = np.random.default_rng(1)
    import cv2

    world = cv2.GaussianBlur((rng.random((400, 1800, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
    # A jerky pan (0 or 40 px a frame): a box 20 px wide loses all overlap with any constant-velocity prediction.
    pan = np.cumsum([0, *(40 * rng.integers(0, 2, 24)).tolist()]).tolist()
    frames = []
    images = {}
    for f, dx in enumerate(pan):
        images[f] = world[50:350, dx : dx + 640].copy()
        boxes = [[560 - dx, 100, 580 - dx, 160], [620 - dx, 120, 640 - dx, 180]]
        frames.append((f, f * 40.0, _dets(boxes)))
    cfg = TrackerConfig(min_hits=1, accel_std=0.2)
    with_cmc = track_detections(frames, cfg, fps=25.0, images=images.__getitem__, offline=False)
    without = track_detections(frames, cfg, fps=25.0, offline=False)
    assert len(with_cmc) == 2
    assert len(without) > len(with_cmc)


def test_simulated_detections_are_deterministic(make_scene: SceneFn) -> None:
    _, a = make_scene("crowd", 3, num_frames=20)
    _, b = make_scene("crowd", 3, num_frames=20, noise=DetectorNoise())
    for (_, _, da), (_, _, db) in zip(a, b, strict=True):
        np.testing.assert_array_equal(da.xyxy, db.xyxy)
        np.testing.assert_array_equal(da.scores, db.scores)


def test_recent_first_keeps_a_visible_track_on_its_detection() -> None:
    # A walks right and vanishes after frame 4; B stands still, then steps 20 px left at frame 7, into the path
    # A's coasting prediction takes. That detection overlaps A's prediction (IoU 0.48) more than B's (0.33).
    def ids_on_b(recent_first: bool) -> set[int]:
        tracker = OnlineTracker(TrackerConfig(min_hits=1, recent_first=recent_first, direction_weight=0.0))
        out: set[int] = set()
        for f in range(10):
            rows = [[100 + 12 * f, 100, 140 + 12 * f, 200]] if f < 5 else []
            bx = 190 if f < 7 else 170
            rows.append([bx, 100, bx + 40, 200])
            for obj in tracker.update(f, f * 100.0, _dets(rows)):
                if f >= 7:
                    out.add(obj.track_id)
        return out

    assert ids_on_b(True) == {2}  # B keeps its detection: it was seen in the previous frame
    assert ids_on_b(False) == {1}  # the joint assignment gives it to the coasting A: an identity swap


def test_live_tracks_are_bounded_when_times_stand_still() -> None:
    """Association compares every detection with every live track, and a track ends after max_lost_s of the client's
    time: with times that do not advance, no track ended and memory grew with every frame (a reviewer: 4,000 live
    tracks after 40 frames of 200 boxes). Beyond max_live_tracks the ones lost longest end (and are kept)."""
    from prelabel.track import TrackerConfig

    tracker = OnlineTracker(TrackerConfig(max_live_tracks=50, cmc="none"))
    for f in range(40):
        group = f // 2  # each group of boxes is seen on two frames, then the boxes move on
        boxes = [[30 * i, 40 * group, 30 * i + 20, 40 * group + 30] for i in range(20)]
        tracker.update(f, 0.0, _dets(boxes))
        assert len(tracker._active) <= 50
    assert len(tracker.tracklets()) == 20 * 20  # every confirmed track is still reported
