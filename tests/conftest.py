"""Shared fixtures: paths to the optional real data in ../shared/data (skipping cleanly where it is absent), and a
pose track for the keyframe tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from prelabel.types import Skeleton, Track, TrackedBox

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data not available: {sub} is absent from ../shared/data")
    return path


@pytest.fixture(scope="session")
def pets09_dir() -> Path:
    """PETS09-S2L1 (video.avi, gt/gt.txt, det/det.txt), or skip."""
    return _shared("pets09-s2l1")


@pytest.fixture(scope="session")
def mot15_dir() -> Path:
    """MOT15 sequences without frames (gt and det), or skip."""
    return _shared("mot15")


DamagedClip = Callable[[Path, int, Sequence[int]], Path]


@pytest.fixture()
def damaged_clip() -> DamagedClip:
    """``make(path, frames, damaged)``: an MJPG AVI at 25 fps (128x96, a white square moving 3 px a frame right, its
    x also written into the first 8 pixel rows) whose ``damaged`` frames' packets hold no picture (0xFF bytes: they
    do not decode); returns ``path``."""

    def make(path: Path, frames: int, damaged: Sequence[int]) -> Path:
        import av
        import cv2

        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (128, 96))
        for i in range(frames):
            img = np.zeros((96, 128, 3), np.uint8)
            img[:8] = (10 + 3 * i) % 256
            img[40:60, 10 + 3 * i : 30 + 3 * i] = 255
            writer.write(img)
        writer.release()
        with av.open(str(path)) as container:
            packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
        data = bytearray(path.read_bytes())
        for i in damaged:
            pos, size = packets[i]
            start = data.index(b"\xff\xd8", pos)  # the JPEG's start in the AVI chunk
            data[start : start + size] = b"\xff" * size
        path.write_bytes(bytes(data))
        return path

    return make


@pytest.fixture()
def pose_track() -> Track:
    """A box moving straight at constant speed while the arms swing inside it (a period of 24 frames); the left
    ankle hides over frames 40-49 and the whole skeleton over frames 70-79."""
    boxes = []
    base = np.array([[0.5 + 0.1 * np.cos(k), 0.1 + 0.05 * k] for k in range(17)])  # body-fixed, relative to the box
    for f in range(120):
        x0, w, h = 100.0 + 3.0 * f, 60.0, 150.0
        kp = base * [w, h] + [x0, 50.0]
        swing = np.deg2rad(60.0) * np.sin(2 * np.pi * f / 24.0)
        for shoulder, elbow, wrist in ((5, 7, 9), (6, 8, 10)):
            kp[elbow] = kp[shoulder] + 30.0 * np.array([np.sin(swing), np.cos(swing)])
            kp[wrist] = kp[elbow] + 28.0 * np.array([np.sin(1.5 * swing), np.cos(1.5 * swing)])
        present = np.ones(17, bool)
        if 40 <= f < 50:
            present[15] = False
        skeleton = None if 70 <= f < 80 else Skeleton(np.c_[kp, np.ones(17)], present)
        boxes.append(TrackedBox(f, [x0, 50.0, x0 + w, 50.0 + h], 0.9, skeleton=skeleton))
    return Track(3, boxes)


def _keypoint_errors(track: Track, rebuilt: Track) -> np.ndarray:
    """Per frame, the worst present keypoint's distance over the box's longer side (inf where presence differs)."""
    out = []
    for b in track.boxes:
        got = rebuilt.at(b.frame_idx)
        assert got is not None
        want_shown = b.skeleton is not None and b.skeleton.present.any()
        got_shown = got.skeleton is not None and got.skeleton.present.any()
        if not want_shown or not got_shown:
            out.append(0.0 if want_shown == got_shown else np.inf)
            continue
        assert b.skeleton is not None and got.skeleton is not None
        if not np.array_equal(b.skeleton.present, got.skeleton.present):
            out.append(np.inf)
            continue
        p = b.skeleton.present
        d = np.linalg.norm(got.skeleton.keypoints[p, :2] - b.skeleton.keypoints[p, :2], axis=1)
        out.append(float(d.max() / max(b.xyxy[2] - b.xyxy[0], b.xyxy[3] - b.xyxy[1])))
    return np.array(out)


@pytest.fixture()
def keypoint_errors() -> Callable[[Track, Track], np.ndarray]:
    """:func:`_keypoint_errors`: per frame of a track, the worst keypoint error of a rebuilt track."""
    return _keypoint_errors
