"""Video files read in any order return exactly the frame asked for, without decoding from the start again."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from prelabel.errors import InvalidInputError
from prelabel.interpolate import VideoFileFrames
from prelabel.synthetic import generate
from prelabel.synthetic.io import write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A generated 120-frame clip written as a video file, and its frames decoded in order."""
    scene = generate("default", 3, num_frames=120, width=160, height=96)
    assert scene.frames is not None
    path = tmp_path_factory.mktemp("frames") / "clip.mp4"
    write_video(scene.frames, path, scene.info.fps)
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return path, np.stack(frames)


def test_any_order_gives_the_exact_frames(clip: tuple[Path, np.ndarray]) -> None:
    path, truth = clip
    video = VideoFileFrames(path, cache_frames=4)
    assert video.num_frames == len(truth)
    order = [5, 30, 29, 80, 10, 119, 60, 61, 3, 100, 99, 50]
    rng = np.random.default_rng(0)
    order += rng.integers(0, len(truth), 40).tolist()
    for f in order:
        np.testing.assert_array_equal(video.read(f), truth[f], err_msg=f"frame {f}")
    assert video.seeks > 0  # jumps back were served by seeks, checked against fingerprints
    with pytest.raises(InvalidInputError, match="frame 500"):
        video.read(500)


def test_the_pattern_of_guided_passes_decodes_each_frame_about_once(clip: tuple[Path, np.ndarray]) -> None:
    """Keyframe, next keyframe, then the frames between: the skipped frames are kept, no jump reopens the file."""
    path, truth = clip
    video = VideoFileFrames(path)
    for a in range(0, 100, 20):
        for f in [a, a + 20, *range(a + 1, a + 20)]:
            np.testing.assert_array_equal(video.read(f), truth[f])
    assert video.reopens == 0 and video.seeks == 0


_RealCapture = cv2.VideoCapture


class _OffByTwo:
    """A capture whose seeks land two frames late (as some containers do)."""

    def __init__(self, path: str) -> None:
        self._cap = _RealCapture(path)

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES:
            value += 2
        return bool(self._cap.set(prop, value))

    def __getattr__(self, name: str) -> object:
        return getattr(self._cap, name)


def test_seeks_that_land_elsewhere_still_give_the_right_frame(
    clip: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, truth = clip
    video = VideoFileFrames(path, cache_frames=2)
    monkeypatch.setattr(cv2, "VideoCapture", _OffByTwo)
    for f in range(len(truth)):  # in order: fingerprints recorded
        video.read(f)
    for f in [70, 10, 11, 40, 3, 90, 1]:
        np.testing.assert_array_equal(video.read(f), truth[f], err_msg=f"frame {f}")
    assert video.seeks > 0


def test_a_reader_given_an_earlier_readers_index_seeks_at_once(clip: tuple[Path, np.ndarray]) -> None:
    """Counting fingerprints checkpoints; a later reader of the file starts from that index: it knows the frame count
    and reaches a frame deep in the file by a checked seek, not by decoding from the start."""
    path, truth = clip
    first = VideoFileFrames(path, checkpoint=16)
    assert first.num_frames == len(truth)
    index = first.index()
    assert index.num_frames == len(truth) and set(range(0, len(truth), 16)) <= set(index.prints)
    later = VideoFileFrames(path, index=index)
    assert later.num_frames == len(truth)
    for f in (100, 37, 101, 5):
        np.testing.assert_array_equal(later.read(f), truth[f], err_msg=f"frame {f}")
    assert later.seeks >= 2 and later.reopens == 0


def test_a_negative_frame_is_refused_and_the_reader_keeps_count(clip: tuple[Path, np.ndarray]) -> None:
    """``read(-1)`` gave frame 0, and the next ``read(0)`` then gave frame 1 (a reviewer's case)."""
    path, truth = clip
    video = VideoFileFrames(path, cache_frames=4)
    with pytest.raises(InvalidInputError, match="frame -1"):
        video.read(-1)
    np.testing.assert_array_equal(video.read(0), truth[0])
    np.testing.assert_array_equal(video.read(1), truth[1])


def test_single_channel_frames_are_grey() -> None:
    from prelabel.interpolate import ArrayFrames

    grey = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    np.testing.assert_array_equal(ArrayFrames(grey[..., None]).read(1), grey[1])
    with pytest.raises(InvalidInputError, match="expected"):
        ArrayFrames(np.zeros((2, 4, 5, 2), np.uint8))
    bgra = np.arange(2 * 4 * 5 * 4, dtype=np.uint8).reshape(2, 4, 5, 4)  # taken before (OpenCV's grey reads BGRA)
    np.testing.assert_array_equal(ArrayFrames(bgra).read(1), bgra[1, ..., :3])


def test_a_text_file_is_not_a_video(tmp_path: Path) -> None:
    """FFmpeg reads any text file as ANSI art, and OpenCV counted a MOT ground-truth file's 921 "frames" (a user sent
    gt.txt as the video of a guided Interpolate); the decoder refused it already."""
    text = tmp_path / "gt.txt"
    text.write_text("".join(f"{f},1,100,200,30,80,1,-1,-1,-1\n" for f in range(1, 400)))
    with pytest.raises(InvalidInputError, match="is text"):
        VideoFileFrames(text).num_frames  # noqa: B018


def test_reading_backwards_seeks_once_a_checkpoint(clip: tuple[Path, np.ndarray]) -> None:
    """A backward pass over a long gap (guided's pass from the later keyframe) sought once per frame, decoding from
    the checkpoint before it each time, as the frames a seek decoded on its way were not kept: a 570-frame gap of
    PETS09 took 20 s. They are kept now: one seek a checkpoint."""
    path, truth = clip
    video = VideoFileFrames(path, checkpoint=16)
    assert video.num_frames == len(truth)  # counts, and fingerprints every 16th frame
    for f in range(len(truth) - 1, -1, -1):
        np.testing.assert_array_equal(video.read(f), truth[f], err_msg=f"frame {f}")
    assert video.reopens == 0 and video.seeks <= len(truth) // 16 + 2, video.seeks


class _EarlyThenSkips:
    """A capture whose seeks land six frames early, and that then gives the frame it landed on and drops the next (a
    decoder resuming at a keyframe): the frames after the landing come one index late."""

    def __init__(self, path: str) -> None:
        self._cap = _RealCapture(path)
        self._reads_since_seek: int | None = None

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES:
            self._reads_since_seek = 0
            value = max(0.0, value - 6)
        return bool(self._cap.set(prop, value))

    def read(self) -> tuple[bool, np.ndarray]:
        if self._reads_since_seek is not None:
            self._reads_since_seek += 1
            if self._reads_since_seek == 2:
                self._cap.grab()
        ok, img = self._cap.read()
        return bool(ok), img

    def __getattr__(self, name: str) -> object:
        return getattr(self._cap, name)


def test_a_seek_whose_target_does_not_check_out_leaves_no_misplaced_frame(
    clip: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seek that lands before its target decodes on to it, keeping the frames it passes for a backward pass.
    Where the target's fingerprint then fails (the frames came one index late), those frames were misplaced too:
    they must not be kept, or a later read of one of them gives its neighbour."""
    path, truth = clip
    first = VideoFileFrames(path, cache_frames=1)
    for f in range(len(truth)):  # in order: every frame fingerprinted
        first.read(f)
    monkeypatch.setattr(cv2, "VideoCapture", _EarlyThenSkips)
    video = VideoFileFrames(path, seek_ahead=1, cache_frames=64, index=first.index())
    np.testing.assert_array_equal(video.read(60), truth[60])  # the seek failed its check: read from the start
    assert video.seeks == 0
    for f in range(50, 60):  # frames the failed seek passed, read again (from the cache where kept)
        np.testing.assert_array_equal(video.read(f), truth[f], err_msg=f"frame {f}")


def test_a_folder_is_named_as_one(tmp_path: Path) -> None:
    """A folder given as the video (MOTChallenge's img1/) was 'file not found', though it is there."""
    (tmp_path / "img1").mkdir()
    with pytest.raises(InvalidInputError, match="img1: a folder, not a video file"):
        VideoFileFrames(tmp_path / "img1")
    with pytest.raises(InvalidInputError, match=r"absent\.mp4: file not found"):
        VideoFileFrames(tmp_path / "absent.mp4")
