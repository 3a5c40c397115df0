"""Detections another annotated object sits on are left to it (:class:`prelabel.interpolate.others.OtherTracks`)."""

from __future__ import annotations

import numpy as np

from prelabel.interpolate import ArrayFrames, interpolate_track
from prelabel.interpolate.others import OtherTracks
from prelabel.metrics.interpolation import box_iou
from prelabel.types import Detections, Keyframe


def _dets(*boxes: np.ndarray) -> Detections:
    return Detections(
        np.stack(boxes).astype(np.float32),
        np.full(len(boxes), 0.9, np.float32),
        np.zeros(len(boxes), np.int64),
        ("person",),
    )


def _sliver(f: int) -> np.ndarray:  # a person half out of frame at the left border, standing
    return np.array([0.0, 100, 24, 170])


def _walker(f: int) -> np.ndarray:  # another walking past in front of it
    return np.array([2.0 + 1.5 * f, 90, 62 + 1.5 * f, 200])


def test_a_neighbours_detections_are_left_to_it() -> None:
    """Of two people keyed at 0, 10 and 20, a detection on the walker at frame 5 is left to the walker's track, not
    offered to the sliver's; the walker keeps it; a track of another label, or one alone, claims nothing."""
    sliver = [Keyframe(f, xyxy=_sliver(f)) for f in (0, 10, 20)]
    walker = [Keyframe(f, xyxy=_walker(f)) for f in (0, 10, 20)]
    dets = {f: _dets(_walker(f), np.array([200.0, 50, 240, 150])) for f in range(21)}
    others = OtherTracks({1: sliver, 2: walker}, {1: "person", 2: "Person"})
    mine, digest = others.detections_for(1, dets)
    assert others.left_to_others(1, dets) == [(f, 0) for f in range(21)]  # the walker's box, every frame
    assert len(mine[5]) == 1 and mine[5].xyxy[0, 0] == 200.0  # the unclaimed detection stays
    assert set(mine) == set(dets) and len(mine) == len(dets)
    theirs, none_left = others.detections_for(2, dets)
    assert none_left == b"" and theirs is dets and others.left_to_others(2, dets) == []
    # The digest names what was left out: another split of the same frames gives another digest.
    fewer = {f: d if f != 7 else _dets(np.array([200.0, 50, 240, 150])) for f, d in dets.items()}
    assert len(digest) == 32 and OtherTracks({1: sliver, 2: walker}, {}).detections_for(1, fewer)[1] not in (
        b"",
        digest,
    )
    assert OtherTracks({1: sliver, 2: walker}, {1: "person", 2: "car"}).left_to_others(1, dets) == []
    assert OtherTracks({1: sliver}, {1: "person"}).detections_for(1, dets)[1] == b""


def test_a_detection_closer_to_the_track_itself_is_kept() -> None:
    """Two keyed tracks that overlap: a detection stays with the track it matches better by the margin (0.1), and
    is left to it by the other."""
    a = [Keyframe(f, xyxy=np.array([100.0, 100, 140, 200])) for f in (0, 10)]
    b = [Keyframe(f, xyxy=np.array([110.0, 100, 150, 200])) for f in (0, 10)]
    dets = {5: _dets(np.array([103.0, 100, 143, 200]))}  # IoU 0.86 with a, 0.70 with b
    assert OtherTracks({"a": a, "b": b}, {"a": "", "b": ""}).left_to_others("a", dets) == []
    assert OtherTracks({"a": a, "b": b}, {"a": "", "b": ""}).left_to_others("b", dets) == [(5, 0)]


def test_invalid_keyframes_claim_nothing() -> None:
    """A track whose keyframes do not fill (its own call names the problem) takes nothing from the others."""
    sliver = [Keyframe(f, xyxy=_sliver(f)) for f in (0, 10, 20)]
    broken = [Keyframe(5, xyxy=_walker(5)), Keyframe(5, xyxy=_walker(5))]  # duplicate frames
    dets = {f: _dets(_walker(f)) for f in range(21)}
    assert OtherTracks({1: sliver, 2: broken}, {1: "", 2: ""}).left_to_others(1, dets) == []


def test_guided_no_longer_follows_the_person_passing_in_front() -> None:
    """A person half out of frame at the border (every keyframe cut, so there is nothing to check the detector's
    boxes against) with another walking past in front, the only one detected: guided followed the walker's boxes
    (IoU 0 with the truth on some frames); with the walker's detections left to the walker's track it stays put."""
    rng = np.random.default_rng(0)
    video = ArrayFrames((rng.random((21, 240, 320)) * 30 + 100).astype(np.uint8))
    sliver = [Keyframe(f, xyxy=_sliver(f)) for f in (0, 10, 20)]
    walker = [Keyframe(f, xyxy=_walker(f)) for f in (0, 10, 20)]
    dets = {f: _dets(_walker(f)) for f in range(21)}
    truth = np.stack([_sliver(f) for f in range(21)])
    alone = interpolate_track(sliver, "guided", video=video, detections=dets, label="person")
    assert box_iou(alone.xyxy, truth).min() < 0.5
    mine, _ = OtherTracks({1: sliver, 2: walker}, {1: "person", 2: "person"}).detections_for(1, dets)
    left = interpolate_track(sliver, "guided", video=video, detections=mine, label="person")
    assert box_iou(left.xyxy, truth).min() > 0.99
