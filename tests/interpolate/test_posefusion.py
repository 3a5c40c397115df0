"""Pose-estimate fusion: noisy, sometimes left/right-swapped estimates correct the keyframe-based skeleton."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.interpolate import interpolate_track
from prelabel.interpolate.posefusion import PoseFusionOptions, fuse_pose_estimates, keyframe_bias, swap_left_right
from prelabel.interpolate.skeleton import kinematic_skeletons, with_virtual_nodes
from prelabel.metrics.interpolation import pck
from prelabel.types import Detections, Keyframe, Skeleton

from .test_skeleton import swinging_person

LIMBS = [7, 8, 9, 10, 13, 14, 15, 16]
ARMS_SWAPPED = [0, 1, 2, 3, 4, 6, 5, 8, 7, 10, 9, 11, 12, 13, 14, 15, 16]


def _boxes(kp: np.ndarray, pad: float = 5.0) -> np.ndarray:
    return np.c_[kp[..., 0].min(1) - pad, kp[..., 1].min(1) - pad, kp[..., 0].max(1) + pad, kp[..., 1].max(1) + pad]


def _noisy_estimates(gt: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GT + 2 px noise at confidence 0.9; every 4th frame arms swapped; confident wild wrists and ankles."""
    rng = np.random.default_rng(seed)
    est = gt + rng.normal(0.0, 2.0, gt.shape)
    conf = np.full(gt.shape[:2], 0.9)
    est[::4] = est[::4][:, ARMS_SWAPPED]
    est[1::3, 9] += 120.0  # confident outliers far from any plausible swing
    est[2::3, 15] += (90.0, -60.0)
    est[5::9] = np.nan  # missed detections
    conf[5::9] = 0.0
    return est, conf


def _pck_limbs(xy: np.ndarray, gt: np.ndarray, frames: np.ndarray) -> float:
    vis = np.ones((len(frames), 17), bool)
    return float(np.nanmean(pck(xy[frames], gt[frames], vis, _boxes(gt)[frames])[:, LIMBS]))


def _run(gt: np.ndarray, kf: np.ndarray, options: PoseFusionOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    present = np.ones((len(kf), 17), bool)
    pred, pres = kinematic_skeletons(kf, gt[kf], present, _boxes(gt[kf]), _boxes(gt))
    est, conf = _noisy_estimates(gt, 0)
    return fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt), options)


def test_fusion_beats_interpolation_and_passes_through_keyframes() -> None:
    t = np.arange(41)
    gt = swinging_person(t)
    kf = np.arange(0, 41, 10)
    pred, _ = kinematic_skeletons(kf, gt[kf], np.ones((len(kf), 17), bool), _boxes(gt[kf]), _boxes(gt))
    fused, present = _run(gt, kf)
    inner = np.setdiff1d(t, kf)
    p_pred, p_fused = _pck_limbs(pred, gt, inner), _pck_limbs(fused, gt, inner)
    assert p_fused >= 0.85 and p_fused >= p_pred + 0.3, (p_fused, p_pred)
    assert present.all()
    np.testing.assert_array_equal(fused[kf], gt[kf])
    # Bone lengths stay within the allowed range of the keyframes' (constant) lengths on every frame.
    par = [p if p >= 0 else 17 for p in (18, 0, 0, 1, 2, 18, 18, 5, 6, 7, 8, 17, 17, 11, 12, 13, 14, -1, 17)]
    ones = np.ones((len(t), 17), bool)
    xy19, _ = with_virtual_nodes(fused, ones)
    g19, _ = with_virtual_nodes(gt, ones)
    ratio = (
        np.linalg.norm(xy19 - xy19[:, par], axis=-1)[:, LIMBS] / np.linalg.norm(g19 - g19[:, par], axis=-1)[:1, LIMBS]
    )
    assert ratio.min() >= 0.5 - 1e-9 and ratio.max() <= 1.5 + 1e-9


def test_swap_correction_and_gating_matter() -> None:
    t = np.arange(41)
    gt = swinging_person(t)
    kf = np.arange(0, 41, 10)
    inner = np.setdiff1d(t, kf)
    full = _pck_limbs(_run(gt, kf)[0], gt, inner)
    no_swap = _pck_limbs(_run(gt, kf, PoseFusionOptions(swap_margin=0.0))[0], gt, inner)
    no_gate = _pck_limbs(_run(gt, kf, PoseFusionOptions(gate_near=100.0, gate_far=100.0))[0], gt, inner)
    assert full > no_swap + 0.03, (full, no_swap)
    assert full > no_gate + 0.01, (full, no_gate)


def test_swap_left_right_detects_swapped_arms() -> None:
    gt = swinging_person(np.arange(4))
    est = gt[:, ARMS_SWAPPED]
    index, swapped = swap_left_right(gt, est, np.ones((4, 17), bool), 0.7)
    assert swapped[:, 0].all() and not swapped[:, 1].any()
    np.testing.assert_allclose(est[np.arange(4)[:, None], index], gt)


def test_keypoint_absent_in_a_keyframe_is_filled_from_estimates_inside_the_box() -> None:
    t = np.arange(11)
    gt = swinging_person(t)
    kf = np.array([0, 10])
    kpres = np.ones((2, 17), bool)
    kpres[0, 9] = False  # left wrist not annotated at frame 0 (CVAT: hidden until a keyframe shows it)
    pred, pres = kinematic_skeletons(kf, gt[kf], kpres, _boxes(gt[kf]), _boxes(gt))
    assert not pres[0:10, 9].any() and pres[10, 9]
    est = gt.copy()
    conf = np.full((11, 17), 0.9)
    conf[4, 9] = 0.1  # not confident: stays missing
    est[6, 9] = [5000.0, 5000.0]  # outside the box: stays missing
    fused, present = fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt))
    filled = [1, 2, 3, 5, 7, 8, 9]
    assert present[filled, 9].all() and not present[[0, 4, 6], 9].any() and present[10, 9]
    np.testing.assert_allclose(fused[filled, 9], gt[filled, 9])
    # Estimates from a detection that barely overlaps the box path (a neighbour) fill nothing.
    weak = np.full(11, 0.9)
    weak[[2, 3]] = 0.35
    _, weak_present = fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt), est_match=weak)
    assert not weak_present[[2, 3], 9].any() and weak_present[[1, 5, 7], 9].all()
    # Without estimates the keypoint stays missing.
    _, none_present = fuse_pose_estimates(kf, pred, pres, np.full_like(est, np.nan), np.zeros((11, 17)), _boxes(gt))
    np.testing.assert_array_equal(none_present, pres)


def test_a_keypoint_hidden_at_both_keyframes_of_a_shown_person_stays_hidden() -> None:
    """The annotator hid the left wrist at both keyframes of a person they showed at both: CVAT keeps it hidden over
    the gap, and so does the fusion, however confident the estimates (a CVAT skeleton user found hidden keypoints
    shown again, most of them truly out of sight). Hidden at one end only, it is proposed as before."""
    t = np.arange(11)
    gt = swinging_person(t)
    kf = np.array([0, 10])
    est, conf = gt.copy(), np.full((11, 17), 0.9)
    both = np.ones((2, 17), bool)
    both[:, 9] = False
    pred, pres = kinematic_skeletons(kf, gt[kf], both, _boxes(gt[kf]), _boxes(gt))
    _, present = fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt))
    assert not present[:, 9].any() and present[:, [5, 7, 10]].all()
    first = np.ones((2, 17), bool)
    first[0, 9] = False
    pred, pres = kinematic_skeletons(kf, gt[kf], first, _boxes(gt[kf]), _boxes(gt))
    _, present = fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt))
    assert present[1:, 9].all() and not present[0, 9]
    # Per gap, keyframes not from 0: where a neighbouring keyframe hides the whole person (entering or leaving), the
    # keypoint is proposed even though that keyframe lacks it too.
    t = np.arange(100, 131)
    gt = swinging_person(t - 100)
    kf = np.array([100, 110, 120, 130])
    kp = np.ones((4, 17), bool)
    kp[[0, 1], 9] = False  # hidden at both ends of the first gap, the person shown: stays hidden
    kp[2] = False  # the whole person hidden at 120
    kp[3, 9] = False
    pred, pres = kinematic_skeletons(kf, gt[kf - 100], kp, _boxes(gt[kf - 100]), _boxes(gt))
    _, present = fuse_pose_estimates(kf, pred, pres, gt.copy(), np.full((31, 17), 0.9), _boxes(gt))
    assert not present[0:11, 9].any()
    assert present[11:20, 9].all() and present[21:30, 9].all() and not present[30, 9]


def test_a_hidden_skeleton_is_proposed_only_where_the_model_sees_the_person_again() -> None:
    """A keyframe with every keypoint absent hides the skeleton (CVAT's rule) up to the next keyframe; with pose
    estimates, the frames where the model is confident (the person shows again) get its keypoints as proposals, the
    others stay hidden. Hiding them all cost 3.3 points of limb PCK@0.05 on the benchmark's fast motion."""
    t = np.arange(11)
    gt = swinging_person(t)
    kf = np.array([0, 5, 10])
    kpres = np.ones((3, 17), bool)
    kpres[1] = False  # hidden from frame 5
    pred, pres = kinematic_skeletons(kf, gt[kf], kpres, _boxes(gt[kf]), _boxes(gt))
    assert not pres[5:10].any()
    conf = np.full((11, 17), 0.9)
    conf[6:8] = 0.05  # still hidden on frames 6 and 7: the model sees nothing there
    _, present = fuse_pose_estimates(kf, pred, pres, gt.copy(), conf, _boxes(gt))
    assert not present[5:8].any() and present[8:10].all() and present[10].all()


def test_a_keypoint_held_up_to_the_keyframe_that_hides_it_takes_confident_estimates() -> None:
    """The left wrist is left out at frame 10: held up to it (its keyframe-0 offset from the root), it is no
    prediction to correct, so a confident estimate inside the box replaces it outright (however far the wrist swung),
    and where there is none the held guess stays, present."""
    t = np.arange(11)
    gt = swinging_person(t)
    kf = np.array([0, 10])
    kpres = np.ones((2, 17), bool)
    kpres[1, 9] = False
    pred, pres = kinematic_skeletons(kf, gt[kf], kpres, _boxes(gt[kf]), _boxes(gt))
    assert pres[:10, 9].all() and not pres[10, 9]
    est = gt.copy()
    conf = np.full((11, 17), 0.9)
    conf[4, 9] = 0.1  # not confident: the held guess stays
    fused, present = fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt))
    taken = [1, 2, 3, 5, 6, 7, 8, 9]
    np.testing.assert_allclose(fused[taken, 9], gt[taken, 9])
    np.testing.assert_allclose(fused[4, 9], pred[4, 9])
    assert present[:10, 9].all() and not present[10, 9]
    assert np.linalg.norm(pred[5, 9] - gt[5, 9]) > 10.0  # the held guess was far off: a gate would have refused


def test_a_still_person_is_not_pulled_off_identical_keyframes_by_a_biased_pose_model() -> None:
    """A person lying still, keyed identically 15 frames apart; the pose model puts their knees and an ankle a steady
    8 to 14 px off where the annotator put them (a CVAT skeleton user saw the knee moved 11 px off for 14 frames). The
    offset the keyframes show is taken off the estimates, so the skeleton stays put."""
    gt = swinging_person(np.zeros(16))
    kf = np.array([0, 15])
    rng = np.random.default_rng(3)
    est = gt + rng.normal(0.0, 0.7, gt.shape)
    est[:, 13] += (-14.0, -4.0)
    est[:, 14] += (-9.0, -1.0)
    est[:, 16] += (-1.0, 6.0)
    conf = np.full((16, 17), 0.9)
    present = np.ones((2, 17), bool)
    pred, pres = kinematic_skeletons(kf, gt[kf], present, _boxes(gt[kf]), _boxes(gt))
    fused, _ = fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt))
    plain, _ = fuse_pose_estimates(kf, pred, pres, est, conf, _boxes(gt), PoseFusionOptions(bias_max=0.0))
    off = np.linalg.norm(fused - gt, axis=-1)
    assert off.max() < 3.0, off.max(axis=0)
    assert np.linalg.norm(plain - gt, axis=-1)[1:-1, 13].min() > 10.0  # without the correction it drifts
    # The model swapping the legs on some frames (which the fusion undoes) does not make the knees look fast.
    swapped = est.copy()
    swapped[[4, 10]] = swapped[[4, 10]][:, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 11, 14, 13, 16, 15]]
    fused, _ = fuse_pose_estimates(kf, pred, pres, swapped, conf, _boxes(gt))
    assert np.linalg.norm(fused - gt, axis=-1).max() < 3.0
    # min_conf 0 with a missed frame: the missing estimate is not taken for one (it made every estimate NaN).
    missed, missed_conf = est.copy(), conf.copy()
    missed[7], missed_conf[7] = np.nan, 0.0
    fused, _ = fuse_pose_estimates(kf, pred, pres, missed, missed_conf, _boxes(gt), PoseFusionOptions(min_conf=0.0))
    assert np.isfinite(fused).all() and np.linalg.norm(fused - gt, axis=-1).max() < 3.0


def test_keyframe_bias_applies_to_still_keypoints_only() -> None:
    n, kf = 11, np.array([0, 10])
    pred = np.zeros((n, 17, 2)) + 100.0
    pred[:, 9, 0] += np.linspace(0.0, 60.0, n)  # left wrist: moves 0.3 of the box between the keyframes
    size = np.full(n, 200.0)
    known = np.ones((n, 17), bool)
    est = pred.copy()
    est[:, :, 0] += 6.0  # the model's steady offset on every keypoint
    est[:, 10, 0] += 12.0 * (np.arange(n) % 2)  # right wrist: its estimates jump 12 px (0.06 of the box) a frame
    est[:, 15] += (50.0, 0.0)  # left ankle: 56 px off (more than bias_max 0.15 x 200): a miss, not a bias
    conf = np.full((n, 17), 0.9)
    conf[10, 7] = 0.0  # left elbow: offset known at the first keyframe only
    bias = keyframe_bias(kf, pred, known, est, conf, size, PoseFusionOptions())
    assert np.all(bias[[0, 10]] == 0.0)
    np.testing.assert_allclose(bias[1:10, 0], [[6.0, 0.0]] * 9)  # still, both ends: the full offset
    np.testing.assert_allclose(bias[1:10, 7], [[6.0, 0.0]] * 9)  # one end: held
    assert np.all(bias[:, [9, 10, 15]] == 0.0)
    # Full below half the limits, fading out to none at them: 30 px is 0.15 of the box, three quarters of still_move.
    pred[:, 9, 0] = 100.0 + np.linspace(0.0, 30.0, n)
    est[:, 9, 0] = pred[:, 9, 0] + 6.0
    half = keyframe_bias(kf, pred, known, est, conf, size, PoseFusionOptions())
    np.testing.assert_allclose(half[1:10, 9, 0], 3.0)


def test_shape_mismatch_names_the_array() -> None:
    gt = swinging_person(np.arange(5))
    with pytest.raises(InvalidInputError, match=r"est_conf expected shape \(5, 17\)"):
        fuse_pose_estimates(np.array([0, 4]), gt, np.ones((5, 17), bool), gt, np.ones((4, 17)), _boxes(gt))


def test_run_length_must_match_the_keyframes() -> None:
    gt = swinging_person(np.arange(6))
    conf = np.ones((6, 17))
    with pytest.raises(InvalidInputError, match=r"expected 5 frames \(keyframes 0..4\), got 6"):
        fuse_pose_estimates(np.array([0, 4]), gt, np.ones((6, 17), bool), gt, conf, _boxes(gt))
    with pytest.raises(InvalidInputError, match=r"est_match expected shape \(5,\)"):
        fuse_pose_estimates(np.array([0, 4]), gt[:5], np.ones((5, 17), bool), gt[:5], conf[:5], _boxes(gt[:5]), None,
                            np.ones(4))  # fmt: skip


def _pose_detections(gt: np.ndarray, boxes: np.ndarray) -> dict[int, Detections]:
    """Per frame, one person detection with the ground truth's box and noisy keypoints (:func:`_noisy_estimates`)."""
    est, conf = _noisy_estimates(gt, 1)
    return {
        f: Detections(
            boxes[f : f + 1].astype(np.float32),
            np.ones(1, np.float32),
            np.zeros(1, np.int64),
            ("person",),
            np.c_[est[f], conf[f]][None].astype(np.float32),
        )
        for f in range(len(gt))
    }


def test_interpolate_track_uses_pose_detections() -> None:
    t = np.arange(41)
    gt = swinging_person(t)
    boxes = _boxes(gt)
    dets = _pose_detections(gt, boxes)
    kidx = list(range(0, 41, 10))
    kfs = [
        Keyframe(i, boxes[i].astype(np.float32), Skeleton(np.c_[gt[i], np.ones(17)], np.ones(17, bool))) for i in kidx
    ]
    guided = interpolate_track(kfs, "kalman", detections=dets)
    plain = interpolate_track(kfs, "kalman")
    assert guided.keypoints is not None and plain.keypoints is not None
    inner = np.setdiff1d(t, kidx)
    p_guided = _pck_limbs(guided.keypoints[..., :2].astype(np.float64), gt, inner)
    p_plain = _pck_limbs(plain.keypoints[..., :2].astype(np.float64), gt, inner)
    assert p_guided >= p_plain + 0.3, (p_guided, p_plain)
    np.testing.assert_allclose(guided.keypoints[kidx, :, :2], gt[kidx], atol=1e-3)


def test_a_skeleton_only_track_uses_pose_detections_too() -> None:
    """Keyframes with skeletons and no boxes (a CVAT skeleton track): the poses guided them only where keyframes had
    boxes, and the frames said the requested method all the same (a reviewer's case). The boxes around the keypoints
    now take the box track's part."""
    t = np.arange(41)
    gt = swinging_person(t)
    boxes = _boxes(gt)
    dets = _pose_detections(gt, boxes)
    kidx = list(range(0, 41, 10))
    kfs = [Keyframe(i, None, Skeleton(np.c_[gt[i], np.ones(17)], np.ones(17, bool))) for i in kidx]
    inner = np.setdiff1d(t, kidx)
    pcks = {}
    for method in ("kalman", "auto"):
        guided = interpolate_track(kfs, method, detections=dets)
        assert guided.keypoints is not None and not guided.has_box.any()
        pcks[method] = _pck_limbs(guided.keypoints[..., :2].astype(np.float64), gt, inner)
        np.testing.assert_allclose(guided.keypoints[kidx, :, :2], gt[kidx], atol=1e-3)
    plain = interpolate_track(kfs, "kalman")
    assert plain.keypoints is not None
    p_plain = _pck_limbs(plain.keypoints[..., :2].astype(np.float64), gt, inner)
    assert min(pcks.values()) >= p_plain + 0.3, (pcks, p_plain)
    # A run that begins with the skeleton hidden (keyed with no keypoint present) is guided all the same.
    hidden_first = [Keyframe(0, None, Skeleton(np.zeros((17, 3)), np.zeros(17, bool))), *kfs[1:]]
    late = interpolate_track(hidden_first, "kalman", detections=dets)
    assert late.keypoints is not None and late.keypoints_present is not None and not late.keypoints_present[0].any()
    after = inner[inner > 10]
    p_late = _pck_limbs(late.keypoints[..., :2].astype(np.float64), gt, after)
    p_late_plain = _pck_limbs(plain.keypoints[..., :2].astype(np.float64), gt, after)
    assert p_late >= p_late_plain + 0.3, (p_late, p_late_plain)
    lin = interpolate_track(kfs, "linear", detections=dets)  # linear stays CVAT's rule
    assert lin.keypoints is not None
    np.testing.assert_allclose(lin.keypoints, interpolate_track(kfs, "linear").keypoints)


def test_options_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="length_ratio"):
        PoseFusionOptions(length_ratio=(1.2, 1.5))
    with pytest.raises(InvalidInputError, match="gate_near <= gate_far"):
        PoseFusionOptions(gate_near=0.5, gate_far=0.2)
    with pytest.raises(InvalidInputError, match="bias_max"):
        PoseFusionOptions(bias_max=-0.1)
