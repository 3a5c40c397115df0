"""Video input: decoding with container timestamps, server-side path checks, and the chunked upload store."""

from __future__ import annotations

from prelabel.video.decode import Frame, VideoReader, probe, read_frames
from prelabel.video.paths import resolve_allowed_path

__all__ = ["Frame", "VideoReader", "probe", "read_frames", "resolve_allowed_path"]
