"""Detector support for guided interpolation: merged model outputs, a track's own class, frames in batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from prelabel.detect.base import DetectOptions
from prelabel.errors import InvalidInputError
from prelabel.images import Image
from prelabel.interpolate import ArrayFrames
from prelabel.interpolate.support import detect_frames, for_label, merge_detections, span_frames
from prelabel.types import Detections


def _dets(boxes: list[list[float]], ids: list[int], names: tuple[str, ...], kp: bool = False) -> Detections:
    n = len(boxes)
    keypoints = np.full((n, 17, 3), 0.5, np.float32) if kp else None
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(n, 0.9), np.array(ids), names, keypoints)


def test_merge_unites_class_names_and_keeps_keypoints() -> None:
    pose = _dets([[0, 0, 10, 20]], [0], ("person",), kp=True)
    det = _dets([[5, 5, 9, 9], [1, 1, 30, 40]], [1, 0], ("person", "ball"))
    m = merge_detections([pose, det])
    assert tuple(m.class_names) == ("person", "ball")
    assert [m.class_names[c] for c in m.class_ids] == ["person", "ball", "person"]
    assert m.keypoints is not None and m.keypoints.shape == (3, 17, 3)
    assert (m.keypoints[0] == 0.5).all() and (m.keypoints[1:] == 0).all()
    # Another model numbering the same names differently is renumbered into the union.
    swapped = merge_detections([det, _dets([[2, 2, 6, 6]], [0], ("ball", "person"))])
    assert [swapped.class_names[c] for c in swapped.class_ids] == ["ball", "person", "ball"]
    assert len(merge_detections([Detections.empty(("person",))])) == 0


def test_for_label_keeps_the_tracks_class_when_a_model_knows_it() -> None:
    frames = {3: _dets([[0, 0, 10, 20], [5, 5, 9, 9]], [0, 1], ("person", "ball"))}
    balls = for_label(frames, "Ball")
    assert len(balls[3]) == 1 and balls[3].class_names[int(balls[3].class_ids[0])] == "ball"
    assert len(for_label(frames, "cyclist")[3]) == 2  # a class of the project's own: every detection stays
    assert for_label(frames, "") is frames


class _Recorder:
    """A stand-in detector: one box per image at its mean grey level, and the shapes it was given."""

    name, task = "stand-in", "detect"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.calls = 0

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        self.calls += 1
        self.shapes += [im.shape for im in images]
        return [_dets([[0, 0, float(im.mean()), 4]], [0], ("thing",)) for im in images]


def test_detect_frames_runs_every_model_in_batches_on_colour_frames() -> None:
    grey = np.stack([np.full((8, 12), 10 * (i + 1), np.uint8) for i in range(20)])
    a, b = _Recorder(), _Recorder()
    out = detect_frames([a, b], ArrayFrames(grey), [19, 2, 3, 2, 10], batch=2)
    assert sorted(out) == [2, 3, 10, 19]
    assert a.calls == b.calls == 2 and all(s == (8, 12, 3) for s in a.shapes)
    assert len(out[10]) == 2 and out[10].xyxy[0, 2] == 110.0


def test_span_frames_unites_track_ranges_and_counts_before_listing() -> None:
    assert span_frames([(5, 7), (-3, 1), (6, 9), (20, 20)]) == [0, 1, 5, 6, 7, 8, 9, 20]
    with pytest.raises(InvalidInputError, match="span 100000001 frames"):
        span_frames([(0, 10**8)], max_frames=10_000)
