"""Keyframe compression round-trips through linear interpolation within its tolerance."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.interpolate import compress_skeletons, compress_track, interpolate_track
from prelabel.metrics.interpolation import box_iou
from prelabel.types import Track, TrackedBox

KeypointErrors = Callable[[Track, Track], np.ndarray]


def _track(with_gap: bool) -> Track:
    t = np.arange(200)
    x = 300 + 150 * np.sin(t / 25.0)
    y = 100 + t * 0.8
    w = 40 + 10 * np.cos(t / 40.0)
    keep = (t < 80) | (t >= 95) if with_gap else np.ones_like(t, bool)
    boxes = [TrackedBox(int(f), [x[f], y[f], x[f] + w[f], y[f] + 2 * w[f]], 0.9) for f in t[keep]]
    return Track(5, boxes)


@pytest.mark.parametrize("with_gap", [False, True])
@pytest.mark.parametrize("min_iou", [0.8, 0.9, 0.95])
def test_compression_round_trips_within_tolerance(with_gap: bool, min_iou: float) -> None:
    track = _track(with_gap)
    kfs = compress_track(track, min_iou)
    assert len([k for k in kfs if not k.outside]) < len(track) / 4  # far fewer than every frame
    res = interpolate_track(kfs, "linear", track_id=track.track_id)
    rebuilt = res.to_track()
    assert rebuilt.frames.tolist() == track.frames.tolist()  # same visible frames, gaps as outside
    iou = box_iou(rebuilt.xyxy, track.xyxy)
    assert iou.min() >= min_iou - 1e-6


def test_tighter_tolerance_needs_more_keyframes() -> None:
    track = _track(False)
    assert len(compress_track(track, 0.95)) > len(compress_track(track, 0.8))


def test_compress_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="track 5: empty"):
        compress_track(Track(5, []))
    with pytest.raises(InvalidInputError, match="min_iou"):
        compress_track(_track(False), 1.5)


@pytest.mark.parametrize("max_error", [0.03, 0.05, 0.1])
def test_compression_keeps_skeletons_within_tolerance(
    max_error: float, pose_track: Track, keypoint_errors: KeypointErrors
) -> None:
    track = pose_track
    kfs = compress_track(track, 0.9, max_keypoint_error=max_error)
    rebuilt = interpolate_track(kfs, "linear", track_id=3).to_track()
    assert rebuilt.frames.tolist() == track.frames.tolist()
    assert box_iou(rebuilt.xyxy, track.xyxy).min() >= 0.9 - 1e-6
    assert keypoint_errors(track, rebuilt).max() <= max_error + 1e-4  # float32 keypoints
    assert len(kfs) < len(track) / 2
    # boxes alone need 2 keyframes (the box moves straight); the swinging arms are what the others are for
    box_only = compress_track(track, 0.9, max_keypoint_error=None)
    assert len(box_only) == 2
    rebuilt_box_only = interpolate_track(box_only, "linear", track_id=3).to_track()
    assert keypoint_errors(track, rebuilt_box_only).max() > 0.2


def test_skeleton_compression_keys_both_sides_of_a_keypoint_change(pose_track: Track) -> None:
    track = pose_track
    frames = compress_skeletons(track, 0.05)
    assert {0, 39, 40, 49, 50, 69, 80, 119} <= set(frames)  # around the hidden ankle, and each run's ends
    assert not set(frames) & set(range(70, 80))  # no skeleton there: the writer closes the run instead
    assert len(frames) < 60
    assert len(compress_skeletons(track, 0.2)) < len(frames)


def test_compression_rejects_a_bad_keypoint_tolerance(pose_track: Track) -> None:
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidInputError, match="max_keypoint_error"):
            compress_track(pose_track, max_keypoint_error=bad)
        with pytest.raises(InvalidInputError, match="max_keypoint_error"):
            compress_skeletons(pose_track, bad)


def test_farthest_end_looks_past_a_short_infeasible_stretch() -> None:
    from prelabel.interpolate.compress import _cover, _farthest

    feasible = set(range(13)) | set(range(18, 26))  # ends 13-17 break the tolerance, 18-25 meet it again
    checked: list[int] = []

    def ok(i: int, j: int) -> bool:
        checked.append(j)
        return j in feasible

    assert _farthest(0, 100, ok, patience=8) == 25
    assert _farthest(0, 100, ok, patience=2) == 12
    assert _cover(40, lambda i, j: j - i <= 7, patience=8) == [0, 7, 14, 21, 28, 35, 39]
    # the farthest end (8) reaches only 9; one frame short of it (7) reaches the end
    reach = {0: 8, 7: 20, 8: 9}
    assert _cover(21, lambda i, j: j <= reach.get(i, i + 1), patience=8) == [0, 7, 20]
    assert _cover(21, lambda i, j: j <= reach.get(i, i + 1), patience=8, lookahead=0) == [0, 8, 9, *range(10, 21)]
    checked.clear()

    def always(i: int, j: int) -> bool:
        checked.append(j)
        return True

    assert _farthest(0, 100_000, always, patience=8) == 99_999
    assert len(checked) < 40  # galloping and bisection, not every end


def test_compression_stops_when_asked(pose_track: Track) -> None:
    from prelabel.errors import CancelledError

    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3  # the caller goes away after three keyframes

    with pytest.raises(CancelledError):
        compress_track(pose_track, 0.9, stop=stop)
    assert len(asked) == 4
