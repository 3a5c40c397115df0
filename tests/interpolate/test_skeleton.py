"""Skeleton interpolation keeps bone lengths through a fast swing, where linear interpolation shrinks limbs."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.interpolate import interpolate_track
from prelabel.interpolate.skeleton import PARENT, with_virtual_nodes
from prelabel.metrics.interpolation import pck
from prelabel.types import Keyframe, Skeleton


def swinging_person(t: np.ndarray) -> np.ndarray:
    """(T, 17, 2) COCO-17 keypoints of a standing person whose arms and legs swing through +-70 degrees."""
    out = np.zeros((len(t), 17, 2))
    root = np.c_[200 + 3 * t, np.full(len(t), 300.0)]
    swing = np.deg2rad(70) * np.sin(t * 2 * np.pi / 16)
    down = np.pi / 2
    hips = {11: -12.0, 12: 12.0}
    for j, dx in hips.items():
        out[:, j] = root + np.array([dx, 0])
    out[:, 5] = root + np.array([-18, -90])
    out[:, 6] = root + np.array([18, -90])
    out[:, 0] = root + np.array([0, -115])
    out[:, 1] = root + np.array([-4, -120])
    out[:, 2] = root + np.array([4, -120])
    out[:, 3] = root + np.array([-9, -117])
    out[:, 4] = root + np.array([9, -117])

    def limb(parent: int, child: int, length: float, ang: np.ndarray) -> None:
        out[:, child] = out[:, parent] + length * np.c_[np.cos(ang), np.sin(ang)]

    limb(5, 7, 35, down + swing)
    limb(7, 9, 30, down + 1.3 * swing)
    limb(6, 8, 35, down - swing)
    limb(8, 10, 30, down - 1.3 * swing)
    limb(11, 13, 45, down - 0.8 * swing)
    limb(13, 15, 45, down - 0.9 * swing)
    limb(12, 14, 45, down + 0.8 * swing)
    limb(14, 16, 45, down + 0.9 * swing)
    return out


def _keyframes(kp: np.ndarray, kidx: list[int]) -> list[Keyframe]:
    out = []
    for i in kidx:
        xy = kp[i]
        box = np.array([xy[:, 0].min() - 5, xy[:, 1].min() - 5, xy[:, 0].max() + 5, xy[:, 1].max() + 5], np.float32)
        out.append(Keyframe(i, box, Skeleton(np.c_[xy, np.ones(17)], np.ones(17, bool))))
    return out


def _bone_lengths(kp: np.ndarray, present: np.ndarray) -> np.ndarray:
    xy19, _ = with_virtual_nodes(kp, present)
    par = [p if p >= 0 else 17 for p in PARENT]
    return np.linalg.norm(xy19 - xy19[:, par], axis=-1)


def test_bone_lengths_preserved_and_pck_beats_linear() -> None:
    t = np.arange(41)
    gt = swinging_person(t)
    kidx = [*range(0, 41, 6), 40]
    kfs = _keyframes(gt, kidx)
    res = interpolate_track(kfs, "kalman")
    lin = interpolate_track(kfs, "linear")
    assert res.keypoints is not None and res.keypoints_present is not None and lin.keypoints is not None
    assert res.keypoints_present.all() and res.has_skeleton.all()
    # Bone lengths equal the keyframes' (constant here) on every frame.
    gt_len = _bone_lengths(gt[:1], np.ones((1, 17), bool))[0]
    ours_len = _bone_lengths(res.keypoints[..., :2].astype(np.float64), res.keypoints_present)
    lin_len = _bone_lengths(lin.keypoints[..., :2].astype(np.float64), res.keypoints_present)
    limbs = [7, 9, 8, 10, 13, 15, 14, 16]
    np.testing.assert_allclose(ours_len[:, limbs], np.broadcast_to(gt_len[limbs], (41, 8)), rtol=1e-3)
    assert (lin_len[:, limbs] / gt_len[limbs]).min() < 0.8  # linear shrinks limbs mid-swing
    # Exact at keyframes, and more keypoints within 5% of the box than linear.
    for i in kidx:
        np.testing.assert_allclose(res.keypoints[i, :, :2], gt[i], atol=1e-3)
    inner = np.setdiff1d(t, kidx)
    boxes = np.c_[gt[..., 0].min(1), gt[..., 1].min(1), gt[..., 0].max(1), gt[..., 1].max(1)]
    vis = np.ones((len(inner), 17), bool)
    p_ours = np.nanmean(pck(res.keypoints[inner, :, :2], gt[inner], vis, boxes[inner])[:, limbs])
    p_lin = np.nanmean(pck(lin.keypoints[inner, :, :2], gt[inner], vis, boxes[inner])[:, limbs])
    assert p_ours >= p_lin + 0.10, (p_ours, p_lin)


def test_a_keypoint_is_missing_from_the_keyframe_that_leaves_it_out_until_one_shows_it() -> None:
    """CVAT's rule per keypoint: the left wrist left out at frame 10 is shown until then (held on the body, moving
    with the root; linear holds it in the image), the right wrist left out at frame 0 is missing until frame 10."""
    t = np.arange(11)
    gt = swinging_person(t)
    kfs = _keyframes(gt, [0, 10])
    assert kfs[0].skeleton is not None and kfs[1].skeleton is not None
    kfs[1].skeleton.present[9] = False
    kfs[0].skeleton.present[10] = False
    for method in ("kalman", "linear"):
        res = interpolate_track(kfs, method)
        assert res.keypoints_present is not None and res.keypoints is not None
        root = res.keypoints[:10, [11, 12], :2].astype(np.float64).mean(axis=1)
        held = gt[0, 9] - root[0] + root if method == "kalman" else np.broadcast_to(gt[0, 9], (10, 2))
        assert method == "linear" or np.ptp(held[:, 0]) > 20.0  # the body moves: holding on it is not holding still
        assert res.keypoints_present[:10, 9].all() and not res.keypoints_present[10, 9]
        assert not res.keypoints_present[:10, 10].any() and res.keypoints_present[10, 10]
        assert res.keypoints_present[:, 7].all()
        np.testing.assert_allclose(res.keypoints[:10, 9, :2], held, atol=1e-3, err_msg=method)


@pytest.mark.parametrize("method", ["linear", "kalman", "spline"])
def test_a_missing_keypoint_may_carry_nan(method: str) -> None:
    """A missing keypoint's x, y mean nothing: NaN there is valid input and never reaches the answer (linear refused
    it: the keyframe's own keypoint became 0 * NaN)."""
    gt = swinging_person(np.arange(11))
    kfs = _keyframes(gt, [0, 10])
    assert kfs[1].skeleton is not None
    kfs[1].skeleton = Skeleton(
        np.where(np.arange(17)[:, None] == 3, np.nan, kfs[1].skeleton.keypoints), np.arange(17) != 3
    )
    res = interpolate_track(kfs, method)
    assert res.keypoints is not None and res.keypoints_present is not None
    assert np.isfinite(res.keypoints).all()
    np.testing.assert_allclose(res.keypoints[0, :, :2], gt[0], atol=1e-3)
    assert res.keypoints_present[:10, 3].all() and not res.keypoints_present[10, 3]


def test_a_keyframe_skeleton_comes_back_with_its_own_score() -> None:
    gt = swinging_person(np.arange(11))
    kfs = _keyframes(gt, [0, 10])
    assert kfs[0].skeleton is not None
    kfs[0].skeleton = Skeleton(
        kfs[0].skeleton.keypoints * np.array([1, 1, 0.8], np.float32), kfs[0].skeleton.present, 0.9
    )
    res = interpolate_track(kfs, "kalman")
    first, middle = res.skeleton_at(0), res.skeleton_at(5)
    assert first is not None and middle is not None
    assert first.score == pytest.approx(0.9) and first.keypoints[0, 2] == pytest.approx(0.8)  # was 0.8: the mean
    assert 0.0 < middle.score < 1.0


def test_cubic_skips_keyframes_missing_the_joint() -> None:
    """Hips absent at the last keyframe hold placeholders (0, 0); the root's cubic must not bend toward them."""
    t = np.arange(18)
    gt = swinging_person(t)
    kidx = [0, 8, 16, 17]
    kfs = _keyframes(gt, kidx)
    last = kfs[-1].skeleton
    assert last is not None
    last.present[[11, 12]] = False
    last.keypoints[[11, 12]] = 0.0
    res = interpolate_track(kfs, "spline")
    assert res.keypoints is not None and res.keypoints_present is not None
    assert res.keypoints_present[:17, [11, 12]].all() and not res.keypoints_present[17, [11, 12]].any()
    root = res.keypoints[:16, [11, 12], :2].astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(root, (gt[:16, 11] + gt[:16, 12]) / 2.0, atol=0.05)  # moves at constant speed


def test_a_skeleton_only_track_is_scored_and_suggested_like_a_box_track() -> None:
    """No boxes: confidence falls with the distance from the skeleton keyframes (1 at them), and the middle of the
    longer gap is suggested first."""
    rng = np.random.default_rng(0)
    base = rng.random((17, 2)) * 50 + 100
    kfs = [
        Keyframe(f, None, Skeleton(np.c_[base + np.array([3.0 * f, 0.0]), np.ones(17)], np.ones(17, bool), 1.0))
        for f in (0, 10, 40)
    ]
    res = interpolate_track(kfs, "kalman", num_suggestions=2)
    assert not res.has_box.any() and res.has_skeleton.all()
    conf = res.confidence
    assert conf[0] == conf[10] == conf[40] == 1.0
    assert conf[25] < conf[15] < conf[11] < 1.0 and conf[25] > 0.0
    assert res.suggestions[0].frame_idx == 25
    assert res.frame_methods[25] == "kalman"
    track = res.to_track(skeleton_boxes=True)
    assert len(track) == 41 and res.to_track().boxes == []
    box, skel = track.at(25).xyxy, track.at(25).skeleton  # type: ignore[union-attr]
    assert skel is not None
    np.testing.assert_allclose(box, np.r_[skel.keypoints[:, :2].min(0), skel.keypoints[:, :2].max(0)], atol=1e-4)


@pytest.mark.parametrize("method", ["linear", "kalman"])
@pytest.mark.parametrize("with_box", [False, True])
def test_a_skeleton_stays_until_its_track_is_marked_outside(method: str, with_box: bool) -> None:
    """CVAT's rule for the frames between a visible keyframe and an outside one: the object is shown there, each
    keypoint moving toward the outside keyframe's where that has it and holding its last position otherwise."""
    t = np.arange(30)
    gt = swinging_person(t)
    box = np.array([150.0, 150.0, 300.0, 320.0])
    end = Skeleton(np.c_[gt[15] + 40.0, np.ones(17)], np.arange(17) != 0, 1.0)  # keeps no nose
    kfs = [
        Keyframe(k.frame_idx, box + 3 * k.frame_idx if with_box else None, k.skeleton, outside=k.frame_idx == 15)
        for k in _keyframes(gt, [0, 10, 15, 20, 25])
    ]
    kfs[2] = Keyframe(15, box if with_box else None, end, outside=True)
    res = interpolate_track(kfs, method)
    assert res.keypoints is not None and res.keypoints_present is not None
    tail = slice(11, 15)
    assert res.has_skeleton[tail].all() and not res.has_skeleton[15:20].any() and res.has_skeleton[20]
    assert res.keypoints_present[tail].all() and not res.outside[tail].any()
    s = (np.arange(11, 15) - 10) / 5.0
    want = gt[10][None] + s[:, None, None] * (gt[15] + 40.0 - gt[10])[None]
    want[:, 0] = gt[10, 0]  # the nose holds
    np.testing.assert_allclose(res.keypoints[tail, :, :2], want, atol=1e-4)
    conf = res.confidence[tail]
    assert (np.diff(conf) < 0).all() and conf[0] < 1.0 and (res.keypoints[tail, :, 2] == conf[:, None]).all()
    # Without a skeleton at the outside keyframe, every keypoint holds.
    kfs[2] = Keyframe(15, box if with_box else None, None, outside=True)
    held = interpolate_track(kfs, method)
    assert held.keypoints is not None
    np.testing.assert_allclose(held.keypoints[tail, :, :2], np.broadcast_to(gt[10], (4, 17, 2)), atol=1e-4)


def test_a_skeleton_only_track_scores_the_frames_held_up_to_a_keyframe_without_keypoints() -> None:
    """A visible skeleton keyframe with no keypoint present: the keypoints before it are held up to it and scored;
    after it, and on to an outside keyframe, nothing is shown or scored."""
    kp = np.c_[np.arange(17.0) + 100.0, 3.0 * np.arange(17.0) + 50.0, np.ones(17)]
    kfs = [
        Keyframe(0, None, Skeleton(kp, np.ones(17, bool))),
        Keyframe(3, None, Skeleton(np.zeros((17, 3)), np.zeros(17, bool))),
        Keyframe(7, None, None, outside=True),
    ]
    res = interpolate_track(kfs, "kalman")
    assert res.keypoints_present is not None
    assert res.keypoints_present[:3].all() and not res.keypoints_present[3:].any()
    assert (res.confidence[1:3] > 0.5).all() and res.frame_methods[1] == "kalman"
    assert (res.confidence[4:] == 0.0).all() and res.frame_methods[4:] == [""] * 4


@pytest.mark.parametrize("method", ["linear", "kalman"])
def test_a_skeleton_is_interpolated_across_box_keyframes_that_did_not_key_it(method: str) -> None:
    """CVAT keys boxes and skeletons in tracks of their own: a box keyframe without a skeleton leaves the skeleton
    to be interpolated across it (it split the skeleton, leaving frames 1 to 15 without one)."""
    t = np.arange(17)
    gt = swinging_person(t)
    with_skeleton = _keyframes(gt, [0, 16])
    kfs = [with_skeleton[0], Keyframe(8, _keyframes(gt, [8])[0].xyxy), with_skeleton[1]]
    res = interpolate_track(kfs, method)
    assert res.keypoints is not None and res.keypoints_present is not None
    assert res.has_skeleton.all() and res.keypoints_present.all()
    for i in (0, 16):
        np.testing.assert_allclose(res.keypoints[i, :, :2], gt[i], atol=1e-4)
    if method == "linear":
        np.testing.assert_allclose(res.keypoints[8, :, :2], (gt[0] + gt[16]) / 2.0, atol=1e-4)
    # The box keyframe keyed the box, not the skeleton: its keypoints are as sure as the frames beside it.
    assert res.keypoints[8, 0, 2] < 1.0 and res.keypoints[0, 0, 2] == res.keypoints[16, 0, 2] == 1.0


@pytest.mark.parametrize("method", ["linear", "kalman"])
def test_a_skeleton_holds_after_its_last_keyframe_until_the_track_hides(method: str) -> None:
    """Skeleton keyed at 0 only, boxes keyed at 0, 8 and 16, outside at 20: as CVAT holds a track's last keyframe,
    the skeleton stays to frame 19 (in the image for linear, moving with the box path otherwise)."""
    gt = swinging_person(np.arange(17))
    first = _keyframes(gt, [0])[0]
    assert first.xyxy is not None
    kfs = [
        first,
        Keyframe(8, np.asarray(first.xyxy) + np.array([24.0, 0, 24, 0])),
        Keyframe(16, np.asarray(first.xyxy) + np.array([48.0, 0, 48, 0])),
    ]
    kfs.append(Keyframe(20, None, None, outside=True))
    res = interpolate_track(kfs, method)
    assert res.keypoints is not None and res.keypoints_present is not None
    assert res.has_skeleton[:20].all() and res.keypoints_present[:20].all() and not res.has_skeleton[20]
    moved = res.keypoints[[8, 16, 19], 0, 0] - gt[0, 0, 0]
    np.testing.assert_allclose(moved, [0.0, 0.0, 0.0] if method == "linear" else [24.0, 48.0, 48.0], atol=1e-3)


@pytest.mark.parametrize("method", ["kalman", "auto"])
def test_a_keypoint_cut_off_from_the_root_moves_with_the_body(method: str) -> None:
    """A person moving rigidly (and accelerating) with the right shoulder hidden at every keyframe: the head and arms
    hang off the neck, which needs both shoulders, so their chains to the root are broken. They fell back to linear
    in the image while the hips followed a curved root path, and the torso (left hip to left shoulder, the same at
    every keyframe) stretched from 35.1 to 37.5 px between keyframes (a reviewer's case). Now every keypoint moves
    with the body."""
    base = np.array(
        [[50, 20], [48, 18], [52, 18], [45, 19], [55, 19], [40, 35], [60, 35], [35, 50], [65, 50],
         [33, 65], [67, 65], [43, 70], [57, 70], [42, 90], [58, 90], [41, 110], [59, 110]], float,
    )  # fmt: skip
    present = np.ones(17, bool)
    present[6] = False
    kfs = [
        Keyframe(f, None, Skeleton(np.c_[base + np.array([dx, 0.0]), np.ones(17)], present, 1.0))
        for f, dx in ((0, 0.0), (10, 10.0), (20, 100.0), (30, 300.0))
    ]
    res = interpolate_track(kfs, method, num_suggestions=0)
    assert res.keypoints is not None and res.keypoints_present is not None
    assert res.keypoints_present[:, present].all()
    rel = res.keypoints[:, present, :2] - res.keypoints[:, 11:12, :2]  # every keypoint relative to the left hip
    np.testing.assert_allclose(rel, np.broadcast_to((base - base[11])[present], rel.shape), atol=1e-3)


@pytest.mark.parametrize("method", ["kalman", "spline", "auto"])
@pytest.mark.parametrize("hidden", ["all", "hips"])
def test_keypoints_the_next_keyframe_hides_move_with_the_box_where_the_root_is_unknown_there(
    method: str, hidden: str
) -> None:
    """A person crossing 200 px in 10 frames, whose next keyframe hides the whole skeleton or just the hips (the root):
    the keypoints shown until then stayed where the first keyframe left them (a reviewer's case: the nose at x = 105
    on frame 5, the box's centre at 205). They keep their place in the box."""
    xy = swinging_person(np.zeros(1))[0] - np.array([200.0, 300.0]) + np.array([105.0, 140.0])
    box0 = np.array([80.0, 15.0, 130.0, 200.0])
    shown = np.zeros(17, bool) if hidden == "all" else ~np.isin(np.arange(17), [11, 12])
    kfs = [
        Keyframe(0, box0, Skeleton(np.c_[xy, np.ones(17)], np.ones(17, bool), 1.0)),
        Keyframe(
            10, box0 + np.array([200.0, 0, 200, 0]), Skeleton(np.c_[xy + np.array([200.0, 0]), np.ones(17)], shown, 1.0)
        ),
    ]
    res = interpolate_track(kfs, method, num_suggestions=0)
    assert res.keypoints is not None and res.keypoints_present is not None
    assert res.keypoints_present[1:10].all()  # CVAT's rule: shown up to the keyframe that hides them
    centre_x = (res.xyxy[:, 0] + res.xyxy[:, 2]) / 2.0
    for f in range(1, 10):
        np.testing.assert_allclose(res.keypoints[f, ~shown, 0], xy[~shown, 0] + centre_x[f] - 105.0, atol=1e-6)
        np.testing.assert_allclose(res.keypoints[f, ~shown, 1], xy[~shown, 1], atol=1e-6)
    assert abs(res.keypoints[5, 11, 0] - centre_x[5] - (xy[11, 0] - 105.0)) < 1e-6 and centre_x[5] > 180


def test_keypoints_the_next_keyframe_hides_keep_their_place_in_a_box_that_grows() -> None:
    """A person walking toward the camera (the box doubles) whose next keyframe hides the skeleton: each keypoint
    keeps its place in the box, in box sizes, not just its offset from the centre."""
    xy = swinging_person(np.zeros(1))[0] - np.array([200.0, 300.0]) + np.array([105.0, 140.0])
    box0 = np.array([80.0, 15.0, 130.0, 200.0])
    c0, s0 = (box0[:2] + box0[2:]) / 2.0, box0[2:] - box0[:2]
    c1 = c0 + np.array([150.0, 20.0])
    box1 = np.r_[c1 - s0, c1 + s0]  # twice the size, moved
    kfs = [
        Keyframe(0, box0, Skeleton(np.c_[xy, np.ones(17)], np.ones(17, bool), 1.0)),
        Keyframe(10, box1, Skeleton(np.zeros((17, 3)), np.zeros(17, bool), 1.0)),
    ]
    res = interpolate_track(kfs, "kalman", num_suggestions=0)
    assert res.keypoints is not None
    centre = (res.xyxy[:, :2] + res.xyxy[:, 2:]) / 2.0
    size = res.xyxy[:, 2:] - res.xyxy[:, :2]
    for f in range(1, 10):
        rel = (res.keypoints[f, :, :2] - centre[f]) / size[f]
        np.testing.assert_allclose(rel, (xy - c0) / s0, atol=1e-5)
    assert size[5, 1] > 1.3 * s0[1]


def test_points_held_unkeyed_take_the_fill_frame_by_frame() -> None:
    """Skeleton keyframes at 0, 20, 40, 60 of a figure at rest. The nose is keyed 20 px right at frame 20 and held
    unkeyed (10 px right, CVAT's own fill) at 40; the left wrist is keyed at 40 and held unkeyed at 20, written
    hidden. Each unkeyed point takes the fill made without its own unkeyed frames: the nose at 40 from the keyed nose
    at 20 (linear: 10 px right, as CVAT shows it), the wrist at 20 shown again where the fill shows it. Keyed points
    do not move."""
    from functools import partial

    from prelabel.interpolate import interpolate_track
    from prelabel.interpolate.api import with_unkeyed_points_filled
    from prelabel.types import Keyframe, Skeleton

    base = np.stack([np.linspace(100, 180, 17), np.linspace(40, 200, 17)], axis=1)
    nose, wrist = 0, 9

    def skel(dx_nose: float = 0.0, wrist_shown: bool = True) -> Skeleton:
        kp = np.c_[base, np.ones(17)]
        kp[nose, 0] += dx_nose
        present = np.ones(17, bool)
        present[wrist] = wrist_shown
        kp[~present] = 0.0
        return Skeleton(kp.astype(np.float32), present)

    kfs = [Keyframe(0, skeleton=skel()), Keyframe(20, skeleton=skel(20.0, wrist_shown=False)),
           Keyframe(40, skeleton=skel(10.0)), Keyframe(60, skeleton=skel())]  # fmt: skip
    held = np.zeros(17, bool)
    at20, at40 = held.copy(), held.copy()
    at20[[p for p in range(17) if p != nose]] = True  # only the nose keyed at 20
    at40[[p for p in range(17) if p != wrist]] = True  # only the wrist keyed at 40
    fill = partial(interpolate_track, method="linear")
    out = with_unkeyed_points_filled(kfs, {20: at20, 40: at40}, fill)
    s20, s40 = out[1].skeleton, out[2].skeleton
    assert s20 is not None and s40 is not None
    assert s40.keypoints[nose, 0] == pytest.approx(base[nose, 0] + 10.0)  # between 20 px at 20 and 0 at 60
    assert s20.keypoints[nose, 0] == pytest.approx(base[nose, 0] + 20.0)  # keyed there: as drawn
    assert s20.present[wrist] and s20.keypoints[wrist, 0] == pytest.approx(base[wrist, 0])
    np.testing.assert_allclose(s40.keypoints[wrist, :2], base[wrist])
    np.testing.assert_allclose(s20.keypoints[1:9, :2], base[1:9], atol=1e-4)  # at rest: the fill is the figure
    assert with_unkeyed_points_filled(kfs, {}, fill) == kfs
