"""Detections as measurements: the offset correction inverts the measured offset exactly, and the keyframe residual
estimate reads keyframe times."""

from __future__ import annotations

import numpy as np

from prelabel.interpolate.detmeas import correct_detections, detection_offset
from prelabel.types import Detections


def test_correct_detections_inverts_the_keyframe_offset() -> None:
    """Correcting the detection that defined the offset gives back the annotator's box, one box or many."""
    key = np.array([100.0, 80.0, 20.0, 50.0])
    det_xyxy = np.array([[86.0, 59.0, 110.0, 109.0]])
    off = detection_offset(Detections(det_xyxy, np.array([0.9], np.float32), np.array([0])), key, 0.3)
    assert off is not None
    det_c = np.array([98.0, 84.0, 24.0, 50.0])  # the same box in cx, cy, w, h
    np.testing.assert_allclose(correct_detections(det_c, off), key, atol=1e-9)
    many = np.stack([det_c, det_c + np.array([10.0, -4.0, 0.0, 0.0])])
    out = correct_detections(many, off)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out[1], key + np.array([10.0, -4.0, 0.0, 0.0]), atol=1e-9)
    np.testing.assert_allclose(correct_detections(det_c, np.zeros(4)), det_c)
