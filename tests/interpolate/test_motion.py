"""Motion blobs: a fast ball's blurred streak, which a detector and grey-level foreground miss, guides interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.interpolate import ArrayFrames, interpolate_track
from prelabel.interpolate.guided import GuidedMethod
from prelabel.interpolate.motion import MotionParams, blob_boxes, colour_background, motion_blobs, whole_sizes
from prelabel.metrics.interpolation import box_iou
from prelabel.types import Keyframe

# Background and ball of (almost) the same grey level: only colour tells them apart.
GRASS = np.array([100.0, 170.0, 90.0])  # BGR, grey about 138
PINK = np.array([150.0, 90.0, 220.0])  # BGR, grey about 136
BALL = 20


def _grey(bgr: np.ndarray) -> float:
    return float(0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2])


def streak_clip(n: int = 41, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 20 px pink ball thrown along a parabola at 30 px/frame over noisy grass, motion-blurred over its frame's
    travel (the streak is 2.5 balls long): (T, H, W, 3) uint8 frames and (T, 4) ground-truth boxes (the ball at
    mid-exposure)."""
    t = np.arange(n, dtype=np.float64)
    cx = 40 + 30.0 * t
    cy = 60 + 0.6 * (t - n / 2) ** 2 * (280 / (0.6 * (n / 2) ** 2))
    return render_ball(cx, cy, seed)


def render_ball(
    cx: np.ndarray, cy: np.ndarray, seed: int = 0, h: int = 360, w: int = 1400
) -> tuple[np.ndarray, np.ndarray]:
    """The pink ball at centres ``cx, cy`` (T,) over noisy grass, blurred over half its travel per frame."""
    n = len(cx)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w]
    frames = np.empty((n, h, w, 3), np.uint8)
    sub = 16
    for i in range(n):
        vx = cx[min(i + 1, n - 1)] - cx[max(i - 1, 0)]
        vy = cy[min(i + 1, n - 1)] - cy[max(i - 1, 0)]
        cover = np.zeros((h, w))
        for s in np.linspace(-0.5, 0.5, sub):  # exposure: the ball's positions during one frame
            px, py = cx[i] + 0.5 * s * vx, cy[i] + 0.5 * s * vy
            cover += ((xs + 0.5 - px) ** 2 + (ys + 0.5 - py) ** 2 <= (BALL / 2) ** 2) / sub  # pixel centres
        img = GRASS[None, None] * (1 - cover[..., None]) + PINK[None, None] * cover[..., None]
        frames[i] = np.clip(img + rng.normal(0, 3.0, img.shape), 0, 255).astype(np.uint8)
    gt = np.c_[cx - BALL / 2, cy - BALL / 2, cx + BALL / 2, cy + BALL / 2]
    return frames, gt


def test_the_streak_is_a_blob_where_grey_levels_see_nothing() -> None:
    frames, gt = streak_clip(n=9)
    assert abs(_grey(GRASS) - _grey(PINK)) < 3  # the grey-level foreground would not see the ball
    bg = colour_background(lambda i: frames[i], range(len(frames)))
    area = BALL * BALL
    p = MotionParams()
    for f in (2, 4, 6):
        centres, masses = motion_blobs(frames[f], bg, p, p.min_area * area, p.max_area * area)
        assert len(centres) == 1 and masses[0] > 0
        true_c = (gt[f, :2] + gt[f, 2:]) / 2
        assert np.hypot(*(centres[0] - true_c)) < 1.0, (centres[0], true_c)
    # Blobs far larger than the keyframe box (a person, not a ball) are left out.
    centres, _ = motion_blobs(frames[4], bg, p, p.min_area * area, 0.5 * area)
    assert len(centres) == 0
    with pytest.raises(InvalidInputError, match="shape"):
        motion_blobs(frames[4][:100], bg, p, 1.0, 1e6)


def test_blob_boxes_take_the_keyframes_size() -> None:
    frames, _ = streak_clip(n=9)
    bg = colour_background(lambda i: frames[i], range(len(frames)))
    sizes = np.array([[20.0, 20.0], [40.0, 40.0]])
    boxes = blob_boxes(lambda i: frames[i], bg, [0, 8], sizes, MotionParams())
    assert sorted(boxes) == list(range(1, 8))
    for f, b in boxes.items():
        assert b.shape == (1, 4)
        assert b[0, 2] - b[0, 0] == pytest.approx(20 + 20 * f / 8)


def test_a_keyframe_cut_by_the_border_takes_the_whole_size() -> None:
    keys = np.array([[0.0, 50.0, 6.0, 70.0], [100.0, 50.0, 120.0, 70.0], [630.0, 10.0, 640.0, 40.0]])
    sizes = whole_sizes(keys, np.array([True, False, True]))
    np.testing.assert_allclose(sizes, [[20, 20], [20, 20], [20, 20]])
    both = whole_sizes(keys[[0, 2]], np.array([True, True]))  # enters at one border, leaves at the other
    np.testing.assert_allclose(both, [[30, 30], [30, 30]])


def test_motion_blobs_carry_a_fast_ball_between_keyframes() -> None:
    """Keyframes every 20 frames on a ball moving 1.1 diagonals per frame on an arc: with no detector at all, the
    blobs follow it; without them, neither the frames nor the keyframes can."""
    frames, gt = streak_clip()
    video = ArrayFrames(frames)
    kfs = [Keyframe(f, gt[f]) for f in (0, 20, 40)]
    inner = np.setdiff1d(np.arange(len(gt)), [0, 20, 40])
    blobs = interpolate_track(kfs, "guided", video=video)
    plain = interpolate_track(kfs, "guided", video=video, method_object=GuidedMethod(motion=None))
    linear = interpolate_track(kfs, "linear")
    iou = {name: float(box_iou(r.xyxy[inner], gt[inner]).mean()) for name, r in (("blobs", blobs), ("plain", plain))}
    iou["linear"] = float(box_iou(linear.xyxy[inner], gt[inner]).mean())
    assert iou["blobs"] > 0.7 and iou["plain"] < 0.4 and iou["linear"] < 0.4, iou
    np.testing.assert_allclose(blobs.xyxy[[0, 20, 40]], gt[[0, 20, 40]])


def test_slow_objects_do_not_look_for_blobs() -> None:
    """Keyframes that barely move (a walking person) skip the blob search."""
    frames, gt = streak_clip(n=9)
    slow = gt[:1] + np.arange(9)[:, None] * np.array([0.5, 0.5, 0.5, 0.5])
    m = GuidedMethod()
    from prelabel.interpolate.base import RunInput

    run = RunInput(1, np.array([0, 8]), slow[[0, 8]], ArrayFrames(frames))
    assert m._motion_detections(run) is None
    fast = RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames))
    found = m._motion_detections(fast)
    assert found is not None and sorted(found) == list(range(1, 8))


def test_a_detected_object_keeps_its_detections() -> None:
    """Blobs are for objects the detector misses or draws loosely: with detections of the ball's size in most frames
    that fit its keyframes about as well as its blobs do or better, the blobs are not used; with them in few frames,
    the blobs fill in."""
    from prelabel.interpolate.base import RunInput
    from prelabel.interpolate.detpath import detection_coverage
    from prelabel.types import Detections

    frames, gt = streak_clip(n=9)

    def dets(frames_with: list[int]) -> dict[int, Detections]:
        return {f: Detections(gt[f : f + 1], np.array([0.9]), np.array([1])) for f in frames_with}

    most, few = dets([0, 1, 2, 3, 4, 5, 7, 8]), dets([3])
    assert detection_coverage(most, 0, 8, gt[0], gt[8]) == pytest.approx(6 / 7)
    assert detection_coverage(few, 0, 8, gt[0], gt[8]) == pytest.approx(1 / 7)
    m = GuidedMethod()
    assert m._motion_detections(RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames), most)) is None
    assert m._motion_detections(RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames), few)) is not None
    # Detections shifted along x to fit the keyframes a little (within ``fit_margin``) or clearly worse than the
    # blobs: IoU (w - dx) / (w + dx) for boxes of width w shifted by dx.
    bg = colour_background(lambda i: frames[i], range(len(frames)))
    blob_fit = m._blob_key_fit(RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames)), bg, (-1, -1))
    assert m.motion is not None and blob_fit > 0.6
    for below, used in ((0.5 * m.motion.fit_margin, False), (2.0 * m.motion.fit_margin, True)):
        q = blob_fit - below
        dx = BALL * (1 - q) / (1 + q)
        moved = gt + np.array([dx, 0.0, dx, 0.0])
        shifted = {f: Detections(moved[f : f + 1], np.array([0.9]), np.array([1])) for f in range(9)}
        run = RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames), shifted)
        assert m._key_fit(run, shifted) == pytest.approx(q)
        assert (m._motion_detections(run) is not None) == used, (below, blob_fit)


def test_a_blurred_ball_detected_as_its_streak_follows_its_blobs() -> None:
    """A detector that boxes the whole blurred streak in every frame (keyframes included) fits the keyframes worse
    than the ball's blobs do, so the blobs guide it; detections drawn like the keyframes are kept."""
    from prelabel.interpolate.base import RunInput
    from prelabel.types import Detections

    t = np.arange(9, dtype=np.float64)
    frames, gt = render_ball(40 + 30.0 * t, 200 + 2.0 * (t - 4) ** 2)
    c = (gt[:, :2] + gt[:, 2:]) / 2
    half = 0.5 * np.abs(np.gradient(c, axis=0)) + BALL / 2  # a frame's travel of blur on top of the ball
    streak = np.c_[c - half, c + half]
    loose = {f: Detections(streak[f : f + 1], np.array([0.9]), np.array([1])) for f in range(9)}
    tight = {f: Detections(gt[f : f + 1], np.array([0.9]), np.array([1])) for f in range(9)}
    m = GuidedMethod()
    run = RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames), loose)
    colour_bg = colour_background(lambda i: frames[i], range(9))
    assert m._blob_key_fit(run, colour_bg, (-1, -1)) > 0.8
    assert m._key_fit(run, loose) is None  # no detection overlaps a keyframe by IoU 0.3: a fit of 0
    found = m._motion_detections(run)
    assert found is not None and sorted(found) == list(range(1, 8))
    # Half that blur: the streak boxes overlap the keyframes (a fit of about 0.4), still far below the blobs'.
    half = 0.25 * np.abs(np.gradient(c, axis=0)) + BALL / 2
    shorter = {f: Detections(np.c_[c - half, c + half][f : f + 1], np.array([0.9]), np.array([1])) for f in range(9)}
    run_shorter = RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames), shorter)
    assert 0.3 < (m._key_fit(run_shorter, shorter) or 0.0) < 0.6
    assert m._motion_detections(run_shorter) is not None
    assert m._motion_detections(RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames), tight)) is None
    kfs = [Keyframe(0, gt[0]), Keyframe(8, gt[8])]
    out = interpolate_track(kfs, "guided", video=ArrayFrames(frames), detections=loose).xyxy
    off = interpolate_track(
        kfs, "guided", video=ArrayFrames(frames), detections=loose, method_object=GuidedMethod(motion=None)
    ).xyxy
    iou_blobs, iou_dets = box_iou(out[1:8], gt[1:8]).mean(), box_iou(off[1:8], gt[1:8]).mean()
    assert iou_blobs > 0.8 and iou_blobs > iou_dets + 0.1, (iou_blobs, iou_dets)


def test_a_ball_thrown_out_and_back_keeps_its_blob_chain_against_a_slow_mover() -> None:
    """Keyframes 8 frames apart and 50 px apart; between them the ball flies 240 px out and comes back. A slow
    mover sits near the keyframes' line: with a detector path's costs (a miss costs 2, travel counts from the
    keyframes' velocity) skipping frames to reach it is cheaper than the ball's long chain; with the blob paths'
    (a mover makes a blob in every frame, so a miss costs 3; travel counts from the path's own velocity) it is not,
    and either change alone keeps the ball."""
    t = np.arange(9, dtype=np.float64)
    cx = np.where(t <= 4, 100 + 60.0 * t, 340 - 67.5 * (t - 4))
    frames, gt = render_ball(cx, 200 - 5.0 * t, w=640)
    frames = frames.copy()
    for i in range(9):
        x = 20 + 2 * i
        frames[i, 110 : 110 + BALL, x : x + BALL] = PINK.astype(np.uint8)
    kfs = [Keyframe(0, gt[0]), Keyframe(8, gt[8])]
    iou = {}
    blob = MotionParams()
    for miss, own in ((2.0, 0.0), (blob.miss_cost, 0.0), (2.0, blob.own_velocity), (blob.miss_cost, blob.own_velocity)):
        m = GuidedMethod(motion=MotionParams(miss_cost=miss, own_velocity=own))
        iou[(miss, own)] = float(
            box_iou(
                interpolate_track(kfs, "guided", video=ArrayFrames(frames), method_object=m).xyxy[1:8], gt[1:8]
            ).mean()
        )
    assert iou[(2.0, 0.0)] < 0.3, iou
    assert min(v for k, v in iou.items() if k != (2.0, 0.0)) > 0.9, iou


def test_motion_params_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="odd"):
        MotionParams(blur=4)
    with pytest.raises(InvalidInputError, match="areas"):
        MotionParams(min_area=2.0, max_area=1.0)
    with pytest.raises(InvalidInputError, match="own_velocity"):
        MotionParams(own_velocity=-0.5)


def test_a_slow_mover_nearby_does_not_hide_a_fast_balls_speed() -> None:
    """A second, slow mover (4 px per frame) gives the nearest blobs of consecutive frames a short step. The ball's
    keyframes alone show it moving more than a diagonal per frame, so its blobs are still looked for, and the
    detection path measures travel in the fastest blob's steps, so the ball's chain beats staying on the line, even
    where a missed frame costs no more than on a detector's path (measured in the nearest blobs' steps it does not;
    the blob paths' dearer misses alone would carry it here)."""
    from prelabel.interpolate.base import RunInput

    frames, gt = streak_clip(n=9)
    frames = frames.copy()
    for i in range(len(frames)):
        y = 100 + 4 * i
        frames[i, y : y + BALL, 1200 : 1200 + BALL] = PINK.astype(np.uint8)
    found = GuidedMethod()._motion_detections(RunInput(1, np.array([0, 8]), gt[[0, 8]], ArrayFrames(frames)))
    assert found is not None and sorted(found) == list(range(1, 8))
    for f, d in found.items():
        centres = (d.xyxy[:, :2] + d.xyxy[:, 2:]) / 2
        assert np.hypot(*(centres - (gt[f, :2] + gt[f, 2:]) / 2).T).min() < 3.0, f
    kfs = [Keyframe(0, gt[0]), Keyframe(8, gt[8])]
    iou = {}
    for fastest in (True, False):
        m = GuidedMethod(motion=MotionParams(fastest_step=fastest, miss_cost=2.0))
        out = interpolate_track(kfs, "guided", video=ArrayFrames(frames), method_object=m).xyxy
        iou[fastest] = float(box_iou(out[1:8], gt[1:8]).mean())
    assert iou[True] > 0.8 and iou[False] < 0.3, iou
    assert box_iou(interpolate_track(kfs, "guided", video=ArrayFrames(frames)).xyxy[1:8], gt[1:8]).mean() > 0.8


def test_a_ball_that_falls_and_bounces_back_between_keyframes_follows_its_blobs() -> None:
    """Keyframes 12 frames apart at the top of the image, the ball dropped between them falls 280 px and bounces
    back up: the keyframes barely move, but the detector, seeing the ball in a few frames, shows it fast, so blobs are
    looked for; the detections alone are too few and too far from the keyframes' line to be followed."""
    from prelabel.types import Detections

    t = np.arange(13, dtype=np.float64)
    cx = 600 + 1.0 * t
    cy = 30 + 280 * (1 - ((t - 6) / 6) ** 2)
    frames, gt = render_ball(cx, cy)
    dets = {f: Detections(gt[f : f + 1], np.array([0.8]), np.array([1])) for f in (2, 3, 9)}
    kfs = [Keyframe(0, gt[0]), Keyframe(12, gt[12])]
    video = ArrayFrames(frames)
    blobs = interpolate_track(kfs, "guided", video=video, detections=dets)
    plain = interpolate_track(kfs, "guided", video=video, detections=dets, method_object=GuidedMethod(motion=None))
    inner = slice(1, 12)
    iou_blobs, iou_plain = box_iou(blobs.xyxy[inner], gt[inner]).mean(), box_iou(plain.xyxy[inner], gt[inner]).mean()
    assert iou_blobs > 0.7 and iou_plain < 0.4, (iou_blobs, iou_plain)


def test_no_blob_found_means_no_blob_candidates() -> None:
    """Keyframes far apart on a static, empty scene: nothing moves, so there are no blob candidates (None, not an
    empty set that would switch the detection path to its blob settings)."""
    from prelabel.interpolate.base import RunInput

    frames = np.full((9, 360, 1400, 3), 120, np.uint8)
    gt = np.array([[40.0, 60.0, 60.0, 80.0], [280.0, 60.0, 300.0, 80.0]])
    assert GuidedMethod()._motion_detections(RunInput(1, np.array([0, 8]), gt, ArrayFrames(frames))) is None


def test_a_repeat_call_finds_the_motion_blobs_again_without_recomputing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Motion blobs cost a pass over whole frames (2 s a call on an 83-frame PETS09 track whose keyframes move just
    fast enough to look for them, a user's annotation session: every nudged keyframe paid it again). They are kept
    per frame: nudging a keyframe finds them again, and the answer equals a fresh object's."""
    import prelabel.interpolate.guided as guided_mod

    t = np.arange(9, dtype=np.float64)
    frames, gt = render_ball(40 + 30.0 * t, 200 + 2.0 * (t - 4) ** 2)
    video = ArrayFrames(frames)
    calls: list[int] = []
    real = guided_mod.blob_components
    monkeypatch.setattr(guided_mod, "blob_components", lambda img, *a: calls.append(1) or real(img, *a))
    m = GuidedMethod()
    keys = [Keyframe(0, gt[0]), Keyframe(8, gt[8])]
    interpolate_track(keys, "guided", video=video, method_object=m)
    first = len(calls)
    assert first >= 7  # the frames between the keyframes
    nudged = [Keyframe(0, gt[0]), Keyframe(8, gt[8] + 1.0)]
    again = interpolate_track(nudged, "guided", video=video, method_object=m)
    assert len(calls) == first
    fresh = interpolate_track(nudged, "guided", video=video, method_object=GuidedMethod())
    np.testing.assert_array_equal(again.xyxy, fresh.xyxy)
    np.testing.assert_array_equal(again.confidence, fresh.confidence)


def test_the_kept_motion_blobs_are_bounded_in_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames are kept by count and by the blobs they hold in all (a noisy video's frames can hold thousands)."""
    import prelabel.interpolate.guided as guided_mod

    monkeypatch.setattr(guided_mod, "_MAX_CACHED_BLOBS", 3)
    t = np.arange(9, dtype=np.float64)
    frames, gt = render_ball(40 + 30.0 * t, 200 + 2.0 * (t - 4) ** 2)
    m = GuidedMethod()
    interpolate_track([Keyframe(0, gt[0]), Keyframe(8, gt[8])], "guided", video=ArrayFrames(frames), method_object=m)
    held = sum(len(c[0]) for c in m._blobs.values())
    assert m._blobs and held == m._blob_count
    assert held <= 3 or len(m._blobs) == 1
