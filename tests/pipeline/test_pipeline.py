"""The video pipeline with a stand-in detector: what it keeps of short clips."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import DamagedClip

from prelabel.detect.base import DetectOptions, Image
from prelabel.pipeline import Pipeline, PipelineConfig
from prelabel.synthetic.io import write_video
from prelabel.types import Detections


class OneBox:
    """A detector that sees one object on every frame, moving right 2 px a frame (its x read off the frame)."""

    name = "one-box"
    task = "detect"
    class_names: Sequence[str] = ("person",)
    device = "cpu"

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        out = []
        for img in images:
            x = float(img[0, 0, 0])  # the clip writes the frame's x into its first pixel row
            out.append(Detections(np.array([[x, 20.0, x + 20.0, 60.0]]), np.array([0.9]), np.array([0]), ("person",)))
        return out

    def warmup(self) -> None:
        pass


def _clip(tmp_path: Path, frames: int) -> Path:
    images = np.zeros((frames, 96, 128, 3), np.uint8)
    for i in range(frames):
        images[i, :8] = 10 + 2 * i
    path = tmp_path / f"clip{frames}.avi"
    write_video(images, path, 25.0)
    return path


@pytest.mark.parametrize("frames", [6, 12, 40])
def test_a_short_clip_keeps_its_tracks(tmp_path: Path, frames: int, caplog: pytest.LogCaptureFixture) -> None:
    """Tracks shorter than ``min_track_s`` (0.5 s) are left out of a video, but a clip shorter than 1 s keeps those
    seen for half of it: a 12-frame clip at 25 fps came out with no tracks at all."""
    config = PipelineConfig(stages=("detect", "track"), detector_model="one-box")
    result = Pipeline(lambda name, task: OneBox(), config).run(_clip(tmp_path, frames), None)
    assert len(result.tracks) == 1
    assert result.tracks[0].frames.tolist() == list(range(frames))
    assert not [r for r in caplog.records if "no track" in r.getMessage()]


def test_detections_without_tracks_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Brief(OneBox):
        def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
            # Seen on the first 5 frames (0.2 s) of a 1.6 s clip only: shorter than any track kept.
            return [d if d.xyxy[0, 0] < 20 else Detections.empty(("person",)) for d in super().detect(images, options)]

    config = PipelineConfig(stages=("detect", "track"), detector_model="one-box")
    result = Pipeline(lambda name, task: Brief(), config).run(_clip(tmp_path, 40), None)
    n = sum(len(d) for d in result.detections.values())  # 5 or 6: the video's compression blurs the pixel read
    assert not result.tracks and 5 <= n <= 6
    assert any(f"{n} detections but no track" in r.getMessage() for r in caplog.records)


def test_stages_that_would_give_nothing_are_refused() -> None:
    """Skeletons are attached to tracks: detect and pose without track ran the pose model and wrote its output
    nowhere (a job SUCCEEDED with no keypoint in any file). Refused, as actions without pose is."""
    from prelabel.errors import InvalidInputError

    for stages, missing in ((("detect", "pose"), "['track']"), (("detect", "track", "actions"), "['pose']")):
        with pytest.raises(InvalidInputError, match=rf"stage '\w+' needs {re.escape(missing)}"):
            PipelineConfig(stages=stages)
    PipelineConfig(stages=("detect", "track", "pose"))


def test_result_json_says_when_the_video_was_cut_short() -> None:
    """A job on a half-copied upload SUCCEEDED with half the frames labelled, and nothing in its results said so (the
    decoder's warning went to the server log only)."""
    import numpy as np

    from prelabel.jobs.results import result_to_json
    from prelabel.pipeline import PipelineResult
    from prelabel.types import VideoInfo

    def doc(declared: int) -> dict[str, object]:
        info = VideoInfo(64, 48, 137, 30.0, declared_frames=declared)
        return result_to_json(PipelineResult(info, np.zeros(137), {}, [], [], (), {}), "v.mp4")

    assert doc(300)["warnings"] == [
        "the video's container lists 300 frames but 137 decode (a truncated or damaged file?): the labels cover the "
        "frames that decode"
    ]
    assert doc(137)["warnings"] == [] and doc(0)["warnings"] == []


def test_progress_of_a_resumed_run_counts_the_frames_it_computes() -> None:
    """After a restart at frame 200 of 300, frames restored from the checkpoint had counted toward the rate: it read
    235 frames/s and 0.97 s left while 4.3 s of work remained (an operator's probe)."""
    import time

    from prelabel.pipeline import _progress

    t0 = time.perf_counter() - 1.0  # one second in, 20 frames computed, 200 restored
    p = _progress("detect+track", 220, 300, t0, computed=20)
    assert p.frames_per_s == pytest.approx(20.0, rel=0.05) and p.eta_s == pytest.approx(4.0, rel=0.05)
    fresh = _progress("detect+track", 100, 300, t0, computed=100)  # nothing restored: as before
    assert fresh.frames_per_s == pytest.approx(100.0, rel=0.05)


def test_damaged_frames_get_no_detections_and_tracks_bridge_them(tmp_path: Path, damaged_clip: DamagedClip) -> None:
    """Frames whose packets do not decode carry the last good image: detecting on it would repeat the last boxes.
    They get no detections, and the track runs across them, its boxes between those around them."""
    calls: list[int] = []

    class Counting(OneBox):
        def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
            calls.append(len(images))
            return super().detect(images, options)

    video = damaged_clip(tmp_path / "bad.avi", 40, [10, 11, 20])
    config = PipelineConfig(stages=("detect", "track"), detector_model="one-box")
    result = Pipeline(lambda name, task: Counting(), config).run(video, None)
    assert result.info.damaged_frames == (10, 11, 20) and sum(calls) == 37
    assert [f for f, d in sorted(result.detections.items()) if len(d) == 0] == [10, 11, 20]
    (track,) = result.tracks
    assert track.frames.tolist() == list(range(40))
    x = {int(f): float(b[0]) for f, b in zip(track.frames, track.xyxy, strict=True)}
    for f in (10, 11, 20):
        assert x[f - 1] < x[f] < x[f + 1] or x[f - 1] < x[f] < x[f + 2]
    assert abs(x[10] - (10 + 3 * 10)) < 3 and abs(x[20] - (10 + 3 * 20)) < 3


def test_result_json_names_damaged_frames() -> None:
    from prelabel.jobs.results import result_to_json
    from prelabel.pipeline import PipelineResult
    from prelabel.types import VideoInfo

    info = VideoInfo(64, 48, 137, 30.0, damaged_frames=tuple(range(3, 15)))
    (warning,) = result_to_json(PipelineResult(info, np.zeros(137), {}, [], [], (), {}), "v.mp4")["warnings"]
    assert warning.startswith(
        "12 frames do not decode (damaged packets): frames 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 2 "
    )


def test_a_one_frame_video_gives_a_track_per_confident_detection(tmp_path: Path) -> None:
    """A still (a one-frame video) gave detections but no track (a track needs two frames in a row), so every export
    was empty."""

    class Two(OneBox):
        def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
            boxes = np.array([[50.0, 10.0, 70.0, 50.0], [5.0, 5.0, 25.0, 45.0], [80.0, 5.0, 90.0, 30.0]])
            return [Detections(boxes, np.array([0.7, 0.9, 0.3]), np.zeros(3, np.int64), ("person",)) for _ in images]

    config = PipelineConfig(stages=("detect", "track"), detector_model="one-box")
    result = Pipeline(lambda name, task: Two(), config).run(_clip(tmp_path, 1), None)
    assert [(t.track_id, t.frames.tolist(), t.class_name) for t in result.tracks] == [
        (1, [0], "person"),
        (2, [0], "person"),
    ]
    assert [t.xyxy[0].tolist() for t in result.tracks] == [[5.0, 5.0, 25.0, 45.0], [50.0, 10.0, 70.0, 50.0]]


def test_result_json_says_when_times_restart_or_pictures_change_size() -> None:
    from prelabel.jobs.results import result_to_json
    from prelabel.pipeline import PipelineResult
    from prelabel.types import VideoInfo

    info = VideoInfo(96, 64, 40, 30.0, timestamp_resets=1, rescaled_frames=10)
    warnings = result_to_json(PipelineResult(info, np.zeros(40), {}, [], [], (), {}), "v.ts")["warnings"]
    assert [w.split(" (")[0] for w in warnings] == [
        "the video's timestamps restart 1 time(s)",
        "10 frames come at another picture size than the first frame's 96x64",
    ]


def test_keypoints_outside_the_frame_are_not_present(tmp_path: Path) -> None:
    """The pose model puts some keypoints a few pixels past a person at the frame's edge; exports wrote them as
    visible (COCO labels keypoints outside the image as not labelled)."""

    class EdgePose(OneBox):
        task = "pose"

        def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
            out = []
            for d in super().detect(images, options):
                x1, y1, x2, y2 = d.xyxy[0]
                kp = np.zeros((1, 17, 3), np.float32)
                kp[0, :, 0] = np.linspace(x1, x2, 17)
                kp[0, :, 1] = np.linspace(y1, y2, 17)
                kp[0, :, 2] = 0.9
                kp[0, 0, :2] = (-2.5, 30.0)  # left of the frame
                kp[0, 16, :2] = (60.0, 97.0)  # below the 96-px-high frame
                out.append(Detections(d.xyxy, d.scores, d.class_ids, d.class_names, kp))
            return out

    config = PipelineConfig(stages=("detect", "track", "pose"), detector_model="one-box", pose_model="edge")
    result = Pipeline(lambda name, task: EdgePose() if task == "pose" else OneBox(), config).run(_clip(tmp_path, 12))
    (track,) = result.tracks
    skeletons = [b.skeleton for b in track.boxes if b.skeleton is not None]
    assert len(skeletons) == 12
    for sk in skeletons:
        assert sk.present.tolist() == [False, *[True] * 15, False]
        kp = sk.keypoints[sk.present]
        assert (kp[:, 0] >= 0).all() and (kp[:, 0] <= 128).all() and (kp[:, 1] >= 0).all() and (kp[:, 1] <= 96).all()


def test_a_run_over_part_of_the_video_exports_the_frames_it_labelled_only(tmp_path: Path) -> None:
    """start_frame 10, end_frame 30 of a 40-frame clip: COCO listed 40 images and YOLO wrote 40 label files, the 20
    frames nobody looked at as frames with no object (a training set would learn them as background)."""
    import json
    import zipfile

    from prelabel.formats import export
    from prelabel.formats.result_json import read_result_json
    from prelabel.jobs.results import write_results

    config = PipelineConfig(stages=("detect", "track"), detector_model="one-box", start_frame=10, end_frame=30)
    result = Pipeline(lambda name, task: OneBox(), config).run(_clip(tmp_path, 40), None)
    assert result.frame_range == (10, 30)
    assert {b.frame_idx for t in result.tracks for b in t.boxes} <= set(range(10, 30))
    out = tmp_path / "out"
    write_results(result, "clip40.avi", out, ["json", "coco", "yolo"])
    doc = json.loads((out / "result.json").read_text())
    assert doc["frames_processed"] == [10, 30] and doc["info"]["num_frames"] == 40
    assert any("only frames 10 to 29" in w for w in doc["warnings"]), doc["warnings"]
    coco = json.loads((out / "coco.json").read_text())
    assert [im["frame_id"] for im in coco["images"]] == list(range(10, 30))
    with zipfile.ZipFile(out / "yolo.zip") as zf:
        labels = sorted(n for n in zf.namelist() if n.endswith(".txt"))
    assert labels == [f"frame_{f:06d}.txt" for f in range(10, 30)]
    # The range travels with the result: converted later, the exports still list those frames alone.
    again = read_result_json(out / "result.json")
    export(again, "coco", tmp_path / "again.json")
    assert [im["frame_id"] for im in json.loads((tmp_path / "again.json").read_text())["images"]] == list(range(10, 30))
    # ... and so does a COCO or YOLO export of it, converted again (each lists the frames it was given)
    from prelabel.formats import load

    export(load("coco", out / "coco.json"), "yolo", tmp_path / "from_coco")
    assert sorted(p.name for p in (tmp_path / "from_coco").glob("*.txt")) == [
        f"frame_{f:06d}.txt" for f in range(10, 30)
    ]
    export(load("yolo", out / "yolo.zip"), "coco", tmp_path / "from_yolo.json")
    from_yolo = json.loads((tmp_path / "from_yolo.json").read_text())
    assert [im["frame_id"] for im in from_yolo["images"]] == list(range(10, 30))
    whole = Pipeline(lambda name, task: OneBox(), PipelineConfig(stages=("detect", "track"), detector_model="one-box"))
    assert whole.run(_clip(tmp_path, 40), None).frame_range is None


def test_a_run_with_detections_and_no_track_says_its_exports_are_empty(tmp_path: Path) -> None:
    """A job with stages ['detect'] listed CVAT, Label Studio, COCO, MOT and YOLO results, all empty, and said
    nothing (``prelabel run --stages detect`` warned; a job's caller was not told)."""
    from prelabel.jobs.results import result_to_json

    config = PipelineConfig(stages=("detect",), detector_model="one-box")
    result = Pipeline(lambda name, task: OneBox(), config).run(_clip(tmp_path, 12), None)
    assert not result.tracks
    (warning,) = result_to_json(result, "clip12.avi")["warnings"]
    assert warning.startswith("12 detections but no track"), warning
