"""Interpolation methods: CVAT's linear rule, passing through keyframes, validation, suggestions, registry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.interpolate import ArrayFrames, default_registry, interpolate_track
from prelabel.types import Keyframe, Skeleton

GEOMETRIC = ("linear", "spline", "kalman", "kalman-ca")


def _kf(f: int, x: float, y: float = 0.0, w: float = 10.0, outside: bool = False) -> Keyframe:
    return Keyframe(f, [x, y, x + w, y + w], outside=outside)


def cvat_reference(keyframes: list[dict], start: int, stop: int) -> dict[int, tuple[list[float], bool]]:
    """CVAT's TrackManager rule, written out per frame: linear points, outside copied from the left keyframe."""
    out: dict[int, tuple[list[float], bool]] = {}
    for a, b in itertools.pairwise(keyframes):
        out[a["frame"]] = (a["points"], a["outside"])
        for f in range(a["frame"] + 1, b["frame"]):
            off = (f - a["frame"]) / (b["frame"] - a["frame"])
            pts = [p0 + (p1 - p0) * off for p0, p1 in zip(a["points"], b["points"], strict=True)]
            out[f] = (pts, a["outside"])
    last = keyframes[-1]
    out[last["frame"]] = (last["points"], last["outside"])
    return {f: v for f, v in out.items() if start <= f <= stop}


def test_linear_equals_cvat_rules_with_outside() -> None:
    kfs = [
        {"frame": 0, "points": [0.0, 0.0, 10.0, 20.0], "outside": False},
        {"frame": 4, "points": [8.0, 4.0, 22.0, 28.0], "outside": False},
        {"frame": 7, "points": [8.0, 4.0, 22.0, 28.0], "outside": True},
        {"frame": 10, "points": [30.0, 0.0, 40.0, 10.0], "outside": False},
        {"frame": 13, "points": [33.0, 3.0, 49.0, 19.0], "outside": False},
    ]
    ours = interpolate_track(
        [Keyframe(k["frame"], k["points"], outside=k["outside"]) for k in kfs], "linear", num_suggestions=0
    )
    ref = cvat_reference(kfs, 0, 13)
    assert ours.frames.tolist() == list(range(14))
    for i, f in enumerate(ours.frames.tolist()):
        pts, outside = ref[f]
        assert bool(ours.outside[i]) == outside, f
        if not outside:
            np.testing.assert_allclose(ours.xyxy[i], pts, atol=1e-4, err_msg=f"frame {f}")
        else:
            assert not ours.has_box[i] and ours.confidence[i] == 0.0
    # Frames 5, 6 lie between a visible keyframe and an outside one: CVAT keeps them visible, moving toward it.
    assert not ours.outside[5] and not ours.outside[6]
    assert ours.outside[7:10].all() and not ours.outside[10]


def test_outside_keyframe_without_box_holds_last_box() -> None:
    res = interpolate_track([_kf(0, 0), _kf(3, 9), Keyframe(6, None, outside=True), _kf(8, 0)], "linear")
    np.testing.assert_allclose(res.xyxy[4], res.xyxy[3])
    assert res.outside[6] and res.outside[7] and not res.outside[8]


@pytest.mark.parametrize("method", GEOMETRIC)
def test_methods_pass_exactly_through_keyframes(method: str) -> None:
    rng = np.random.default_rng(1)
    frames = np.array([0, 7, 15, 18, 30, 41])
    kfs = [
        _kf(int(f), float(x), float(y), float(w))
        for f, x, y, w in zip(frames, *rng.uniform(5, 200, (3, 6)), strict=True)
    ]
    res = interpolate_track(kfs, method)
    for kf in kfs:
        i = kf.frame_idx - res.frames[0]
        assert kf.xyxy is not None
        np.testing.assert_array_equal(res.xyxy[i], kf.xyxy)
        assert res.is_keyframe[i] and res.confidence[i] == 1.0
    inner = ~res.is_keyframe
    assert (res.confidence[inner] < 1.0).all() and (res.confidence[inner] > 0.0).all()
    assert np.isfinite(res.xyxy).all()


def test_guided_passes_through_keyframes() -> None:
    frames = np.zeros((12, 64, 64), np.uint8)
    kfs = [_kf(0, 5), _kf(6, 20), _kf(11, 30)]
    res = interpolate_track(kfs, "guided", video=ArrayFrames(frames))
    for kf in kfs:
        assert kf.xyxy is not None
        np.testing.assert_array_equal(res.xyxy[kf.frame_idx], kf.xyxy)


def test_smoother_beats_linear_on_curved_motion() -> None:
    t = np.arange(0, 121)
    x = 200 + 100 * np.sin(t / 12.0)
    gt = np.c_[x, 50 + t, x + 30, 110 + t]
    kidx = list(range(0, 121, 15))
    kfs = [Keyframe(int(i), gt[i]) for i in kidx]
    errs = {}
    for m in GEOMETRIC:
        r = interpolate_track(kfs, m)
        errs[m] = float(np.abs(r.xyxy - gt).mean())
    assert errs["kalman"] < 0.5 * errs["linear"], errs
    assert errs["spline"] < errs["linear"], errs


@pytest.mark.parametrize(
    ("kfs", "match"),
    [
        ([], "no keyframes"),
        ([_kf(5, 0), _kf(3, 1)], "frame 3"),
        ([_kf(5, 0), _kf(5, 1)], "duplicate"),
        ([_kf(0, 0), _kf(4, 1), Keyframe(9, None, Skeleton(np.ones((17, 3)), np.ones(17, bool)))], "frame 9"),
    ],
    ids=["empty", "unsorted", "duplicate", "no-box"],
)
def test_bad_input_names_track_and_frame(kfs: list[Keyframe], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as err:
        interpolate_track(kfs, "linear", track_id=7)
    assert "track 7" in str(err.value)


def test_a_span_no_video_bounds_is_refused_before_anything_is_allocated() -> None:
    """Without a video nothing but the keyframes bounds the frames to fill: a frame number off by digits (2**40
    frames, 8 TiB of boxes) is refused naming the track and frame, as is a frame past what 64 bits hold."""
    from prelabel.types import MAX_FRAME_IDX, MAX_TRACK_FRAMES

    box = np.array([10.0, 10, 50, 90])
    with pytest.raises(InvalidInputError, match=r"track 5, frame 1099511627776: .*at most 2000000"):
        interpolate_track([Keyframe(0, box), Keyframe(30, box), Keyframe(2**40, box)], "linear", track_id=5)
    ok = interpolate_track([Keyframe(7, box), Keyframe(7 + MAX_TRACK_FRAMES - 1, box)], "linear", track_id=5)
    assert len(ok.xyxy) == MAX_TRACK_FRAMES  # the limit itself is served
    with pytest.raises(InvalidInputError, match=f"frame {7 + MAX_TRACK_FRAMES}:"):
        interpolate_track([Keyframe(7, box), Keyframe(7 + MAX_TRACK_FRAMES, box)], "linear", track_id=5)
    with pytest.raises(InvalidInputError, match="at most"):
        Keyframe(2**64, box)
    assert Keyframe(MAX_FRAME_IDX, box).frame_idx == MAX_FRAME_IDX


def test_nan_and_out_of_video_are_rejected() -> None:
    kf = _kf(2, 0)
    assert kf.xyxy is not None
    kf.xyxy[0] = np.nan
    with pytest.raises(InvalidInputError, match=r"track 3, frame 2: box is not finite"):
        interpolate_track([_kf(0, 0), kf], "linear", track_id=3)
    video = ArrayFrames(np.zeros((10, 8, 8), np.uint8))
    with pytest.raises(InvalidInputError, match=r"track 4, frame 12: outside the video"):
        interpolate_track([_kf(0, 0), _kf(12, 1)], "guided", video=video, track_id=4)
    with pytest.raises(InvalidInputError, match="needs a video"):
        interpolate_track([_kf(0, 0), _kf(5, 1)], "guided")
    with pytest.raises(InvalidInputError, match="unknown interpolation method"):
        interpolate_track([_kf(0, 0), _kf(5, 1)], "cubic-magic")


@pytest.mark.parametrize("method", ["linear", "kalman", "guided", "auto"])
def test_a_box_wholly_outside_the_videos_frame_is_refused(method: str) -> None:
    """Coordinates for another resolution (an annotation made on the 1920x1080 original, sent with a 768x576 proxy)
    or in other units were interpolated as given, and guided followed whatever lay where the boxes fell. With a
    video, a visible box must lie within its own size of the frame; one partly or just outside (an object leaving)
    is fine."""
    video = ArrayFrames(np.zeros((30, 60, 80), np.uint8))  # 80 x 60 pixels
    far = [Keyframe(0, [10, 10, 30, 30]), Keyframe(10, [500, 400, 540, 460]), Keyframe(20, [20, 10, 40, 30])]
    with pytest.raises(InvalidInputError, match=r"track 7, frame 10: box .* outside the 80x60 frame by more than"):
        interpolate_track(far, method, video=video, track_id=7)
    leaving = [
        Keyframe(0, [50, 10, 70, 30]),
        Keyframe(10, [85, 10, 105, 30]),
        Keyframe(12, [80, 10, 100, 30], outside=True),
    ]
    res = interpolate_track(leaving, method, video=video, track_id=7)
    np.testing.assert_allclose(res.xyxy[10], [85, 10, 105, 30])
    assert len(interpolate_track(far, method if method != "guided" else "linear", track_id=7).xyxy) == 21  # no video


def test_suggestions_rank_longest_gap_first_and_spread_over_gaps() -> None:
    """Gaps of equal length get a suggestion each before any gets a second; a long gap comes first."""
    kfs = [_kf(0, 0), _kf(40, 40), _kf(80, 80), _kf(120, 120), _kf(130, 130)]
    res = interpolate_track(kfs, "linear", num_suggestions=4)
    got = [s.frame_idx for s in res.suggestions]
    assert len(got) == 4
    assert {int(np.searchsorted([0, 40, 80, 120, 130], f)) for f in got[:3]} == {1, 2, 3}, got
    assert all(15 <= f % 40 <= 25 for f in got[:3]), got  # the middles of the 40-frame gaps
    assert all(0.0 <= s.score <= 1.0 for s in res.suggestions)


def test_suggestions_come_best_first_across_gaps() -> None:
    """A short gap's best frame is not ranked above frames of a long gap worth far more: keyframes at 0, 2 and 300
    gave frame 1 (0.7 px) second, ahead of frames of the 298-frame gap at 858 px (a reviewer's case)."""
    kfs = [_kf(0, 0), _kf(2, 2), _kf(300, 300)]
    for method in ("linear", "kalman"):
        res = interpolate_track(kfs, method, num_suggestions=3)
        got = [s.frame_idx for s in res.suggestions]
        assert len(got) == 3 and all(2 < f < 300 for f in got), (method, got)
        assert 140 <= got[0] <= 160, (method, got)


def test_registry_lists_methods_and_single_keyframe_is_valid() -> None:
    assert {"linear", "spline", "kalman", "kalman-ca", "guided", "auto"} <= set(default_registry().names())
    res = interpolate_track([_kf(4, 1)], "auto")
    assert res.frames.tolist() == [4] and res.is_keyframe.all() and res.suggestions == []
    track = res.to_track()
    assert len(track) == 1 and track.boxes[0].frame_idx == 4


def test_several_suggestions_in_one_gap_spread_over_it() -> None:
    """With more suggestions than gaps, a suggested frame counts as a keyframe for the next: one 40-frame gap with
    three suggestions gives its middle, then the middles of the halves it leaves, not three neighbouring frames."""
    res = interpolate_track([_kf(0, 0), _kf(40, 40)], "linear", num_suggestions=3)
    got = [s.frame_idx for s in res.suggestions]
    assert len(got) == 3 and 17 <= got[0] <= 23
    assert min(abs(a - b) for a in got for b in got if a != b) >= 6, got
    assert len(set(got)) == 3 and all(0 < f < 40 for f in got)


def test_a_keyframe_says_what_is_wrong_with_it() -> None:
    """A fractional frame is refused (it was cut to the frame below, and 0.2 and 0.9 then collided as duplicates);
    a whole-valued float is taken; a bad box is named by its frame and values, not as "row 0"."""
    assert Keyframe(np.float64(4.0), np.array([0, 0, 2, 2])).frame_idx == 4
    with pytest.raises(InvalidInputError, match=r"whole frame number, got 2\.7"):
        Keyframe(2.7, np.array([0, 0, 2, 2]))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"keyframe at frame 5: box \[nan, 0\.0, 2\.0, 2\.0\] holds NaN or inf"):
        Keyframe(5, np.array([np.nan, 0, 2, 2]))
    with pytest.raises(InvalidInputError, match=r"keyframe at frame 6: box \[4\.0, 0\.0, 2\.0, 2\.0\] has a negative"):
        Keyframe(6, np.array([4, 0, 2, 2]))


def test_skeleton_confidences_outside_0_1_are_refused() -> None:
    """A keyframe skeleton's keypoint confidence or score outside [0, 1] was echoed back as an output confidence
    (and a NaN score became the mean of the keypoints': 6.47); it is refused naming the track, frame and keypoint. A
    NaN score stays allowed (computed from the keypoints) and an absent keypoint's value is never read."""
    kp = np.c_[np.linspace(10, 90, 17), np.linspace(10, 90, 17), np.full(17, 0.9)].astype(np.float32)
    box = np.array([0, 0, 100, 100.0])

    def track(conf: float, score: float, present: int = 3) -> list[Keyframe]:
        bad = kp.copy()
        bad[3, 2] = conf
        keep = np.ones(17, bool)
        keep[3] = present == 3
        return [Keyframe(0, box, Skeleton(kp, np.ones(17, bool))), Keyframe(10, box + 10, Skeleton(bad, keep, score))]

    with pytest.raises(InvalidInputError, match=r"track 2, frame 10: skeleton keypoint 3 \(left_ear\): confidence 7"):
        interpolate_track(track(7.0, 1.0), "linear", track_id=2)
    with pytest.raises(InvalidInputError, match=r"track 2, frame 10: skeleton keypoint 3 \(left_ear\): confidence -2"):
        interpolate_track(track(-2.0, 1.0), "kalman", track_id=2)
    with pytest.raises(InvalidInputError, match=r"track 2, frame 10: skeleton score 5 outside \[0, 1\]"):
        interpolate_track(track(0.5, 5.0), "linear", track_id=2)
    with pytest.raises(InvalidInputError, match=r"track 2, frame 10: skeleton score inf outside \[0, 1\]"):
        interpolate_track(track(0.5, float("inf")), "linear", track_id=2)  # came back as inf
    res = interpolate_track(track(7.0, float("nan"), present=0), "linear", track_id=2)  # keypoint 3 absent there
    sk = res.skeleton_at(10)
    assert sk is not None and 0.0 <= sk.score <= 1.0
