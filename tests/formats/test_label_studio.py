"""Label Studio JSON: exact round trips, the documented schema (1-based frames, percent, enabled=false closing a
span), and importing an annotator's keyframes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import assert_tracks_equal, segment_keys

from prelabel.errors import InvalidInputError
from prelabel.formats.label_studio import LabelStudioOptions, read_label_studio, write_label_studio
from prelabel.formats.model import Annotations
from prelabel.types import Track, VideoInfo

EXACT = LabelStudioOptions(keyframe_reducer=None)


def test_round_trip_every_frame_is_exact(annotations: Annotations, tmp_path: Path) -> None:
    back = read_label_studio(write_label_studio(annotations, tmp_path / "t.json", EXACT), ts_ms=annotations.ts_ms)
    assert_tracks_equal(annotations, back, atol=1e-3, skeletons=False)  # Label Studio has no video keypoints
    assert segment_keys(back) == segment_keys(annotations)
    assert back.info == VideoInfo(640, 480, 30, 25.0)
    assert back.action_labels == annotations.action_labels


def test_schema(annotations: Annotations, tmp_path: Path) -> None:
    doc = json.loads(write_label_studio(annotations, tmp_path / "t.json", EXACT).read_text())
    task = doc[0]
    assert task["data"]["video"] == "clip"
    results = task["predictions"][0]["result"]
    rect = next(r for r in results if r["id"] == "track-1")
    assert rect["type"] == "videorectangle" and rect["value"]["labels"] == ["person"]
    seq = rect["value"]["sequence"]
    first = seq[0]
    assert set(first) == {"frame", "enabled", "x", "y", "width", "height", "rotation", "time"}
    box0 = annotations.track(1).boxes[0]
    assert first["frame"] == 1  # 1-based
    assert first["x"] == pytest.approx(box0.xyxy[0] / 640 * 100)
    assert first["height"] == pytest.approx((box0.xyxy[3] - box0.xyxy[1]) / 480 * 100)
    assert first["time"] == pytest.approx(1 / 25.0)  # Label Studio's rule: frame / framerate, frames from 1
    # enabled=false on the last frame of each visible run (frames 9 and 24, 1-based 10 and 25)
    assert [s["frame"] for s in seq if not s["enabled"]] == [10, 25]
    seg = next(r for r in results if r["type"] == "timelinelabels" and r["value"]["timelinelabels"] == ["waving"])
    assert seg["value"]["ranges"] == [{"start": 5, "end": 20}]  # frames 4..19, 1-based
    assert seg["meta"]["text"] == ["track 1"]


def test_reducer_keeps_gaps_and_run_bounds(annotations: Annotations, tmp_path: Path) -> None:
    def every_seventh(track: Track) -> list[int]:
        return [int(f) for f in track.frames if f % 7 == 0]

    path = write_label_studio(annotations, tmp_path / "t.json", LabelStudioOptions(keyframe_reducer=every_seventh))
    back = read_label_studio(path)
    kt = next(k for k in back.keyframe_tracks if k.track_id == 1)
    assert kt.frames == [0, 7, 9, 10, 15, 21, 24, 25]  # 10 and 25: outside after the disabled keyframes
    assert [k.outside for k in kt.keyframes] == [False, False, False, True, False, False, False, True]
    np.testing.assert_array_equal(back.track(1).frames, annotations.track(1).frames)


ANNOTATOR_EXPORT = {
    "id": 7,
    "data": {"video": "/data/upload/clip.mp4"},
    "annotations": [
        {
            "was_cancelled": False,
            "result": [
                {
                    "id": "aB3xY9",
                    "type": "videorectangle",
                    "from_name": "box",
                    "to_name": "video",
                    "value": {
                        "framesCount": 12,
                        "labels": ["person"],
                        "sequence": [
                            {"frame": 1, "enabled": True, "x": 10, "y": 10, "width": 10, "height": 20, "rotation": 0},
                            {"frame": 5, "enabled": False, "x": 30, "y": 10, "width": 10, "height": 20, "rotation": 0},
                            {"frame": 9, "enabled": True, "x": 50, "y": 50, "width": 10, "height": 10, "rotation": 0},
                        ],
                    },
                },
                {
                    "id": "q1",
                    "type": "timelinelabels",
                    "value": {"ranges": [{"start": 2, "end": 4}], "timelinelabels": ["wave"]},
                },
            ],
        }
    ],
}


def test_reads_an_annotator_export(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps([ANNOTATOR_EXPORT]))
    ann = read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0))
    kt = ann.keyframe_tracks[0]
    assert kt.track_id == 1 and kt.label == "person"
    assert kt.frames == [0, 4, 5, 8] and [k.outside for k in kt.keyframes] == [False, False, True, False]
    assert kt.keyframes[1].xyxy is not None
    np.testing.assert_allclose(kt.keyframes[1].xyxy, [60, 10, 80, 30])
    track = ann.tracks[0]
    # visible 0..4 (the disabled keyframe is drawn), absent 5..7, then held from 8 to the last frame 11
    np.testing.assert_array_equal(track.frames, [0, 1, 2, 3, 4, 8, 9, 10, 11])
    mid = track.at(2)
    assert mid is not None
    np.testing.assert_allclose(mid.xyxy, [40, 10, 60, 30])
    assert segment_keys(ann) == [(0, "wave", 1, 3)]


def test_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInputError, match="not JSON"):
        read_label_studio(path)
    path.write_text(json.dumps([ANNOTATOR_EXPORT]))
    with pytest.raises(InvalidInputError, match="frame size unknown"):
        read_label_studio(path)
    broken = json.loads(json.dumps(ANNOTATOR_EXPORT))
    broken["annotations"][0]["result"][0]["value"]["sequence"][1]["x"] = "left"
    path.write_text(json.dumps(broken))
    with pytest.raises(InvalidInputError, match=r"aB3xY9.*sequence\[1\].*'x'"):
        read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0))
    fractional = json.loads(json.dumps(ANNOTATOR_EXPORT))
    fractional["annotations"][0]["result"][0]["value"]["sequence"][1]["frame"] = 5.5
    path.write_text(json.dumps(fractional))
    with pytest.raises(InvalidInputError, match=r"aB3xY9.*sequence\[1\].*frame 5.5, expected a whole frame"):
        read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0))


def test_a_project_numbering_frames_at_another_rate_than_the_video_is_refused(tmp_path: Path) -> None:
    """Label Studio numbers frames at its config's frameRate (24 unless set): at another rate than the video's, its
    frame 9 is another moment of the video. It counted 29 frames in a 12-frame video: refused, naming the fix."""
    export = json.loads(json.dumps(ANNOTATOR_EXPORT))
    export["annotations"][0]["result"][0]["value"]["framesCount"] = 29
    path = tmp_path / "export.json"
    path.write_text(json.dumps([export]))
    with pytest.raises(InvalidInputError, match=r"aB3xY9.*counted 29 frames.*has 12 \(10 fps\).*frameRate=\"10\""):
        read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0))
    with pytest.raises(InvalidInputError, match=r"has 12: set frameRate to the video's frame rate on the") as exc:
        read_label_studio(path, info=VideoInfo(200, 100, 12, 0.0))  # a rate not known: none named
    assert "0 fps" not in str(exc.value)
    export["annotations"][0]["result"][0]["value"]["framesCount"] = 13  # a frame more: browsers count so
    path.write_text(json.dumps([export]))
    assert read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0)).keyframe_tracks[0].frames == [0, 4, 5, 8]
    # A keyframe on that extra frame is where the annotator saw the video end: the last frame.
    export["annotations"][0]["result"][0]["value"]["sequence"][2]["frame"] = 13
    path.write_text(json.dumps([export]))
    assert read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0)).keyframe_tracks[0].frames == [0, 4, 5, 11]
    # 30 against 29.97 fps drifts a frame every thousand: 18000 counted in 17982 frames is refused.
    export["annotations"][0]["result"][0]["value"]["framesCount"] = 18000
    path.write_text(json.dumps([export]))
    with pytest.raises(InvalidInputError, match="counted 18000 frames"):
        read_label_studio(path, info=VideoInfo(200, 100, 17982, 29.97))


@pytest.mark.parametrize(
    ("where", "bad", "message"),
    [
        ("data", "clip.mp4", "data is str, expected an object"),
        ("result", {"id": "x"}, "result is dict, expected a list"),
        ("value", ["x"], r"result\[0\] value is list"),
        ("sequence", {"frame": 1}, r"value.sequence is not a list"),
        ("item", "frame 1", r"sequence\[1\]: expected an object, got str"),
    ],
)
def test_a_malformed_export_is_named(tmp_path: Path, where: str, bad: object, message: str) -> None:
    export = json.loads(json.dumps(ANNOTATOR_EXPORT))
    region = export["annotations"][0]["result"][0]
    if where == "data":
        export["data"] = bad
    elif where == "result":
        export["annotations"][0]["result"] = bad
    elif where == "value":
        region["value"] = bad
    elif where == "sequence":
        region["value"]["sequence"] = bad
    else:
        region["value"]["sequence"][1] = bad
    path = tmp_path / "export.json"
    path.write_text(json.dumps([export]))
    with pytest.raises(InvalidInputError, match=message):
        read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0))


def test_added_keyframes_turn_as_label_studio_turns_the_box(tmp_path: Path) -> None:
    """Label Studio interpolates every property of a rectangle linearly, rotation too: added keyframes carry the
    rotation it shows there (they had 0)."""
    from prelabel.formats.label_studio import patch_label_studio
    from prelabel.types import TrackedBox

    export = json.loads(json.dumps(ANNOTATOR_EXPORT))
    sequence = export["annotations"][0]["result"][0]["value"]["sequence"]
    sequence[0]["rotation"], sequence[1]["rotation"] = 10, 50
    path = tmp_path / "export.json"
    path.write_text(json.dumps([export]))
    ann = read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0))
    track = Track(1, [TrackedBox(f, np.array([20 + 10 * f, 10, 40 + 10 * f, 30.0]), 1.0) for f in range(5)])
    filled = Annotations(info=ann.info, tracks=[track], name=ann.name)
    out = json.loads(patch_label_studio(path, tmp_path / "out.json", {0: filled}, keyframe_reducer=None).read_text())
    (region,) = [r for r in out[0]["predictions"][-1]["result"] if r["type"] == "videorectangle"]
    rotation = {item["frame"]: item["rotation"] for item in region["value"]["sequence"]}
    assert rotation == {1: 10, 2: 20.0, 3: 30.0, 4: 40.0, 5: 50, 9: 0}


def test_a_negative_size_or_a_keyframe_past_the_video_names_the_region(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    for field, value, message in (
        ("width", -10, r"aB3xY9.*sequence\[1\]: width -10"),
        ("frame", 40, r"aB3xY9.*frame 40, past the video's 12 frames"),
    ):
        export = json.loads(json.dumps(ANNOTATOR_EXPORT))
        export["annotations"][0]["result"][0]["value"]["sequence"][1][field] = value
        path.write_text(json.dumps([export]))
        with pytest.raises(InvalidInputError, match=message):
            read_label_studio(path, info=VideoInfo(200, 100, 12, 10.0))


def test_a_variable_frame_rate_is_named_when_label_studio_would_misplace_frames(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Label Studio puts frame i at i / fps: where the video's own times stray half a frame or more from that, the
    export says how far (its boxes follow the frame numbers)."""
    steady = np.arange(20) * 100.0
    varying = np.r_[np.arange(10) * 50.0, 500.0 + np.arange(10) * 150.0]  # 20 fps, then 6.7 fps
    for ts, warned in ((steady, False), (varying, True)):
        caplog.clear()
        ann = Annotations(info=VideoInfo(64, 48, 20, 10.0, True), ts_ms=ts, name="v.mp4")
        write_label_studio(ann, tmp_path / "ls.json")
        hits = [r.getMessage() for r in caplog.records if "frame rate varies" in r.getMessage()]
        assert bool(hits) == warned
    assert "frame 10 shows 5.0 frames away" in hits[0]
