"""Object detection: the :class:`Detector` protocol, backends by name, and cross-request batching."""

from __future__ import annotations

from prelabel.detect.base import DetectOptions, Detector, Image

__all__ = ["DetectOptions", "Detector", "Image"]
