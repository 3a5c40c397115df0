"""The `prelabel` command: detect, run (in-process), render, models."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from prelabel.cli import main
from prelabel.synthetic import generate, write_scene


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`main()` installs a stderr handler; put the test runner's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scene = generate("default", 9, num_frames=12, width=320, height=192)
    return write_scene(scene, tmp_path_factory.mktemp("clip"))["video"]


def test_detect_image_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((96, 128, 3), 120, np.uint8))
    assert main(["detect", str(img), "--model", "arch-yolo11n", "--conf", "0.0001", "--compact"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["width"], doc["height"]) == (128, 96) and doc["model"] == "arch-yolo11n"
    assert all(len(d["xyxy"]) == 4 for d in doc["detections"])


def test_detect_video_every_nth_frame(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(clip), "--model", "arch-yolo11n", "--every", "5", "--compact"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["frame_idx"] for f in doc["frames"]] == [0, 5, 10]
    assert doc["frames"][1]["ts_ms"] > 0


def test_unknown_model_is_a_clear_error(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(clip), "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_run_in_process_writes_formats_and_render_draws_them(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["run", str(clip), "--out", str(out), "--format", "cvat,labelstudio,mot", "--stages", "detect,track",
            "--detector", "arch-yolo11n", "--imgsz", "320", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    folder = out / clip.stem
    assert {p.name for p in folder.iterdir()} == {"result.json", "annotations.xml", "labelstudio.json", "mot.txt"}
    doc = json.loads((folder / "result.json").read_text())
    assert doc["info"]["num_frames"] == 12
    # Render a result with one hand-made track over the clip.
    doc["tracks"] = [{"track_id": 3, "class_id": 0, "class_name": "person", "boxes": [
        {"frame": f, "ts_ms": 0.0, "xyxy": [20, 20, 80, 150], "score": 1.0, "source": "detector"} for f in range(12)
    ]}]  # fmt: skip
    result = tmp_path / "r.json"
    result.write_text(json.dumps(doc))
    for name in ("o.gif", "o.mp4"):
        assert main(["render", str(clip), str(result), "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 1000
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape[:2] == (192, 320)
    assert np.abs(frame[20:150, 20].astype(int) - frame[20:150, 10].astype(int)).mean() > 20  # the box edge is drawn


def test_models_lists_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any(m["name"] == "arch-yolo11n" and m["available"] for m in doc["models"])


def test_interpolate_fills_cvat_keyframes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from prelabel.formats import Annotations, export, load

    scene = generate("default", 5, num_frames=41, width=320, height=192)
    people = [t for t in scene.tracks if t.class_name == "person" and len(t) > 20][:2]
    assert people
    ann = Annotations(info=scene.info, tracks=people, labels=("person", "ball"), ts_ms=scene.ts_ms)
    sparse = tmp_path / "keyframes.xml"
    export(ann, "cvat", sparse, keyframe_reducer=lambda t: [int(f) for f in t.frames if f % 10 == 0])
    out = tmp_path / "filled.xml"
    assert main(["interpolate", str(sparse), "--method", "kalman", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {t["track_id"] for t in report["tracks"]} == {t.track_id for t in people}
    filled = load("cvat", out)
    from prelabel.geometry import box_iou

    for gt in people:
        got = next(t for t in filled.tracks if t.track_id == gt.track_id)
        # Keyframes are passed through; the file stores the dense result as CVAT keyframes within IoU 0.9.
        for f in range(int(gt.frames[0]), int(gt.frames[-1]) + 1, 10):
            b, g = got.at(f), gt.at(f)
            if g is not None:
                assert b is not None, f
                assert box_iou(b.xyxy[None], g.xyxy[None])[0, 0] >= 0.89, f


def test_interpolate_with_a_detector_guides_fast_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from prelabel.formats import Annotations, export, load
    from prelabel.geometry import box_iou
    from prelabel.synthetic import write_scene

    scene = generate("fast-motion", 21, num_frames=41)
    video = write_scene(scene, tmp_path / "clip")["video"]
    person = next(t for t in scene.tracks if t.track_id == 3)  # visible from frame 4 to 40, fast
    ann = Annotations(info=scene.info, tracks=[person], labels=("person", "ball"), ts_ms=scene.ts_ms)
    sparse = tmp_path / "keyframes.xml"
    export(ann, "cvat", sparse, keyframe_reducer=lambda t: [4, 22, 40])
    assert main(["interpolate", str(sparse), "--method", "guided", "--out", str(tmp_path / "x.xml"),
                 "--detector", "prelabel-synth-pose"]) == 2  # fmt: skip
    assert "--video" in capsys.readouterr().err

    def mean_iou(extra: list[str]) -> float:
        out = tmp_path / "filled.xml"
        assert main(["interpolate", str(sparse), "--video", str(video), "--method", "guided", "--out", str(out),
                     "--device", "cpu", *extra]) == 0  # fmt: skip
        got = load("cvat", out).tracks[0]
        inner = [f for f in range(5, 40) if f != 22]
        return float(np.mean([box_iou(got.at(f).xyxy[None], person.at(f).xyxy[None])[0, 0] for f in inner]))

    with_det = mean_iou(["--detector", "prelabel-synth-pose"])
    frames_only = mean_iou([])
    assert with_det > 0.75 and with_det > frames_only + 0.15, (with_det, frames_only)
