"""Colour appearance on the detection path: a person is not swapped for another running the same way."""

from __future__ import annotations

import numpy as np

from prelabel.interpolate import ArrayFrames, interpolate_track
from prelabel.interpolate.appearance import appearance_cost, box_histogram, keyframe_histograms
from prelabel.interpolate.guided import GuidedMethod
from prelabel.metrics.interpolation import box_iou
from prelabel.types import Detections, Keyframe

RED, BLUE = (40, 40, 200), (200, 60, 40)


def two_runners(n: int = 21) -> tuple[np.ndarray, np.ndarray, dict[int, Detections]]:
    """A red figure arcing up between its keyframes and a blue one on the keyframes' straight line in between,
    both detected in every frame with the same score: the blue chain is the geometrically cheaper one."""
    t = np.arange(n, dtype=np.float64)
    x = 40 + 20 * t
    red = np.c_[x, 100 - 60 * np.sin(np.pi * t / (n - 1)), x + 30, 180 - 60 * np.sin(np.pi * t / (n - 1))]
    blue = np.c_[x, 100 + 0 * t, x + 30, 180 + 0 * t]
    frames = np.full((n, 240, 520, 3), 90, np.uint8)
    dets = {}
    for i in range(n):
        boxes = [red[i]]
        if 2 <= i <= n - 3:
            b = blue[i].astype(int)
            frames[i, b[1] : b[3], b[0] : b[2]] = BLUE
            boxes.append(blue[i])
        r = red[i].astype(int)
        frames[i, r[1] : r[3], r[0] : r[2]] = RED
        dets[i] = Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.8, np.float32), np.zeros(len(boxes)))
    return frames, red, dets


def test_histograms_tell_colours_apart() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :100] = RED
    image[:, 100:] = BLUE
    left, right = np.array([10.0, 10, 60, 90]), np.array([120.0, 10, 170, 90])
    cost = appearance_cost(ArrayFrames(image[None]), [box_histogram(image, left)], 2.0)
    assert cost is not None
    np.testing.assert_allclose(cost(0, np.stack([left, right])), [0.0, 2.0], atol=1e-3)
    assert box_histogram(image, [10.0, 10, 11, 90]) is None  # inner part under 2 pixels wide
    assert box_histogram(image, [np.nan, 10, 60, 90]) is None
    grey = ArrayFrames(image[None, ..., 1])  # grey frames: a grey-level histogram (RED and BLUE differ in green)
    grey_cost = appearance_cost(grey, keyframe_histograms(grey, [0], left[None], [True]), 1.0)
    assert grey_cost is not None
    assert grey_cost(0, right[None])[0] > 0.9
    # Black and white have no hue: the value bins tell them apart.
    bw = np.zeros((100, 200, 3), np.uint8)
    bw[:, 100:] = 255
    bw_cost = appearance_cost(ArrayFrames(bw[None]), [box_histogram(bw, left)], 1.0)
    assert bw_cost is not None
    assert bw_cost(0, right[None])[0] > 0.9


def test_appearance_keeps_the_path_on_the_keyframes_person() -> None:
    frames, red, dets = two_runners()
    n = len(red)
    kfs = [Keyframe(0, red[0]), Keyframe(n - 1, red[-1])]
    video = ArrayFrames(frames)
    with_app = interpolate_track(kfs, "guided", video=video, detections=dets)
    without = interpolate_track(
        kfs, "guided", video=video, detections=dets, method_object=GuidedMethod(det_appearance=None)
    )
    inner = slice(1, n - 1)
    assert box_iou(with_app.xyxy[inner], red[inner]).mean() > 0.9
    assert box_iou(without.xyxy[inner], red[inner]).mean() < 0.7
