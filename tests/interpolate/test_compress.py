"""Keyframe compression round-trips through linear interpolation within its tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.interpolate import compress_track, interpolate_track
from prelabel.metrics.interpolation import box_iou
from prelabel.types import Track, TrackedBox


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
