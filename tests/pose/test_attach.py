"""Attaching pose detections to tracks: identity through crossings, uniqueness, gating, error types."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.pose.attach import AttachConfig, attach_skeletons, box_iou, match_skeletons
from prelabel.types import Detections, Skeleton, Track, TrackedBox


def _accuracy(matches: dict[int, dict[int, int]], owner: dict[int, np.ndarray]) -> tuple[float, int]:
    right = total = 0
    for f, m in matches.items():
        for tid, j in m.items():
            total += 1
            right += int(owner[f][j] == tid - 1)
    return right / max(total, 1), total


@pytest.mark.parametrize("num_frames", [120, 40])  # slow and fast crossing
def test_attachment_follows_identity_through_crossing(make_crossing_scene, make_poses, num_frames) -> None:
    scene = make_crossing_scene(num_frames=num_frames)
    ours, iou_only = [], []
    for seed in range(6):
        tracks = scene.tracks(np.random.default_rng(100 + seed), box_noise=0.06)  # tracker-like imperfect boxes
        sim = make_poses(scene, np.random.default_rng(seed))
        matches = match_skeletons(tracks, sim.poses, AttachConfig())
        acc, total = _accuracy(matches, sim.owner)
        expected = sum(int((o >= 0).sum()) for o in sim.owner.values())
        assert total >= 0.97 * expected  # nearly every real person detection is attached
        ours.append(acc)
        iou_only.append(_accuracy(match_skeletons(tracks, sim.poses, AttachConfig(identity_weight=0.0)), sim.owner)[0])
    assert min(ours) >= 0.98, ours
    assert np.mean(ours) >= 0.995, ours
    # the scene is hard: without the skeleton identity term, boxes alone swap people at the crossing
    assert min(iou_only) < 1.0 and np.mean(ours) > np.mean(iou_only)


def test_each_track_gets_at_most_one_and_no_detection_twice(make_crossing_scene, make_poses) -> None:
    scene = make_crossing_scene(num_frames=60)
    sim = make_poses(scene, np.random.default_rng(7), p_false=0.5)
    matches = match_skeletons(scene.tracks(), sim.poses)
    for m in matches.values():
        assert len(set(m.values())) == len(m)  # no detection claimed twice (dict keys: one per track)
    # A single detection between two overlapping tracks goes to one of them only.
    a = TrackedBox(0, [100, 100, 200, 300], 1.0)
    b = TrackedBox(0, [120, 100, 220, 300], 1.0)
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, 0] = np.linspace(115, 200, 17)
    kp[0, :, 1] = np.linspace(110, 290, 17)
    kp[0, :, 2] = 0.9
    one = {0: Detections([[112, 100, 212, 300]], [0.9], [0], ("person",), kp)}
    out = attach_skeletons([Track(1, [a], 0, "person"), Track(2, [b], 0, "person")], one)
    assert sum(t.boxes[0].skeleton is not None for t in out) == 1


def test_false_person_and_far_detection_are_not_attached(make_crossing_scene, make_poses) -> None:
    scene = make_crossing_scene(num_frames=60)
    sim = make_poses(scene, np.random.default_rng(3), p_false=1.0)
    matches = match_skeletons(scene.tracks(), sim.poses)
    claimed_false = sum(int(sim.owner[f][j] < 0) for f, m in matches.items() for j in m.values())
    assert claimed_false == 0


def test_attach_sets_skeletons_marks_low_confidence_and_keeps_other_frames(make_crossing_scene, make_poses) -> None:
    scene = make_crossing_scene(num_frames=30)
    tracks = scene.tracks()
    sim = make_poses(scene, np.random.default_rng(1), p_drop_kpt=0.3, p_miss=0.0, p_false=0.0)
    poses = {f: d for f, d in sim.poses.items() if f != 5}  # frame 5 not estimated: keep what was there
    out = attach_skeletons(tracks, poses, AttachConfig(min_kpt_conf=0.3))
    assert [t.track_id for t in out] == [1, 2]
    for t_in, t_out in zip(tracks, out, strict=True):
        assert t_out.boxes[5].skeleton is t_in.boxes[5].skeleton
        for b in t_out.boxes:
            if b.frame_idx == 5:
                continue
            sk = b.skeleton
            assert sk is not None
            low = sk.keypoints[:, 2] < 0.3
            assert np.array_equal(sk.present, ~low)
            assert np.all(sk.keypoints[low, 2] == pytest.approx(0.05))  # the low confidence is kept, marked missing
    # inputs untouched
    assert tracks[0].boxes[0].skeleton is not None and tracks[0].boxes[0].skeleton.keypoints[0, 2] == 1.0


def test_non_person_tracks_get_no_skeleton() -> None:
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, :2] = 150
    kp[0, :, 2] = 0.9
    poses = {0: Detections([[100, 100, 200, 200]], [0.9], [0], ("person",), kp)}
    ball = Track(1, [TrackedBox(0, [100, 100, 200, 200], 1.0)], 1, "ball")
    assert attach_skeletons([ball], poses)[0].boxes[0].skeleton is None
    anyone = attach_skeletons([ball], poses, AttachConfig(person_classes=()))
    assert anyone[0].boxes[0].skeleton is not None


def test_errors_name_the_offending_item() -> None:
    box = TrackedBox(0, [0, 0, 10, 10], 1.0)
    no_kpts = {0: Detections([[0, 0, 10, 10]], [0.9], [0])}
    with pytest.raises(InvalidInputError, match="frame 0"):
        attach_skeletons([Track(1, [box])], no_kpts)
    with pytest.raises(InvalidInputError, match="track 3"):
        attach_skeletons([Track(3, [box]), Track(3, [box])], {})
    with pytest.raises(InvalidInputError, match="min_iou"):
        AttachConfig(min_iou=1.5)


def test_box_iou_matches_hand_values() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]))
    assert iou[0].tolist() == pytest.approx([50 / 150, 0.0, 1.0])


def test_skeleton_type_round_trip_through_attach() -> None:
    kp = np.random.default_rng(0).uniform(100, 200, (1, 17, 3)).astype(np.float32)
    kp[..., 2] = 0.8
    poses = {4: Detections([[90, 90, 210, 210]], [0.7], [0], ("person",), kp)}
    out = attach_skeletons([Track(9, [TrackedBox(4, [90, 90, 210, 210], 1.0)], 0, "person")], poses)
    sk = out[0].boxes[0].skeleton
    assert isinstance(sk, Skeleton)
    assert np.array_equal(sk.keypoints, kp[0]) and sk.present.all() and sk.score == pytest.approx(0.7)
