"""The `prelabel` command: detect, run (in-process), render, models."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from prelabel.cli import main
from prelabel.synthetic import generate, write_scene
from prelabel.types import Track


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


def test_detect_stdout_is_json_on_a_machine_new_to_ultralytics(tmp_path: Path) -> None:
    """Ultralytics' first import on a machine creates its settings file and announces it on stdout; the command's
    stdout must still be its JSON alone (Ultralytics' messages reach stderr from warnings up; the announcement is
    information, dropped)."""
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 120, np.uint8))
    cfg = tmp_path / "ultralytics-config"
    env = {**os.environ, "YOLO_CONFIG_DIR": str(cfg)}
    cmd = [sys.executable, "-m", "prelabel.cli", "detect", str(img), "--model", "arch-yolo11n", "--compact"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=True)
    assert (cfg / "Ultralytics" / "settings.json").exists()  # the first-import path ran
    assert json.loads(proc.stdout)["model"] == "arch-yolo11n"


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
    # Run again with other formats: it lists what it wrote, and names the files an earlier run left there.
    capsys.readouterr()
    assert main([*argv[:5], "coco", *argv[6:]]) == 0
    cap = capsys.readouterr()
    assert cap.out.split() == [str(folder / "result.json"), str(folder / "coco.json")]
    assert "also holds annotations.xml, labelstudio.json, mot.txt from an earlier run" in cap.err
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


def test_run_goes_on_past_a_bad_video_and_keeps_videos_of_the_same_name_apart(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch of two clips both named like ``clip`` (in folders a and b) and a corrupt file between them: the corrupt
    one is reported, both clips are labelled into folders of their own (the second overwrote the first), exit 1."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / clip.name).write_bytes(clip.read_bytes())
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    out = tmp_path / "out"
    again = tmp_path / "b" / ".." / "a" / clip.name  # the first clip named again: labelled once
    videos = [str(tmp_path / "a" / clip.name), str(bad), str(tmp_path / "b" / clip.name), str(again)]
    argv = ["run", *videos, "--out", str(out), "--format", "mot", "--stages", "detect,track",
            "--detector", "arch-yolo11n", "--imgsz", "320", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: {bad}: video" in err and "1 of 3 videos failed" in err and "Traceback" not in err
    assert f"warning: {again} is given more than once" in err
    assert sorted(p.name for p in out.iterdir()) == [f"a-{clip.stem}", f"b-{clip.stem}"]
    for name in ("a", "b"):
        assert (out / f"{name}-{clip.stem}" / "mot.txt").is_file()


def test_run_never_overwrites_another_videos_results_and_finds_its_own(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two cameras' ``cam.mp4`` labelled one at a time: the second went into ``cam/`` over the first's results. Now
    it goes beside them, a rerun finds its folder again, and a batch of both reuses the folders the videos already
    have (result.json records each video's SHA-256)."""
    other = write_scene(generate("default", 10, num_frames=12, width=320, height=192), tmp_path / "other")["video"]
    day1, day2 = tmp_path / "day1" / "cam.mp4", tmp_path / "day2" / "cam.mp4"
    for src, dst in ((clip, day1), (other, day2)):
        dst.parent.mkdir()
        dst.write_bytes(src.read_bytes())
    out = tmp_path / "out"
    opts = ["--out", str(out), "--format", "mot", "--stages", "detect,track", "--detector", "arch-yolo11n",
            "--imgsz", "320", "--quiet"]  # fmt: skip

    def run(*videos: Path) -> str:
        assert main(["run", *(str(v) for v in videos), *opts]) == 0
        return capsys.readouterr().err

    run(day1)
    first = (out / "cam" / "result.json").read_text()
    assert json.loads(first)["video_sha256"] == hashlib.sha256(day1.read_bytes()).hexdigest()
    err = run(day2)
    assert f"{out / 'cam'} holds other results" in err
    assert (out / "cam" / "result.json").read_text() == first  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["cam", "day2-cam"]
    run(day2)  # a rerun lands where it went before
    run(day1, day2)  # a batch: each video to its own earlier folder
    assert sorted(p.name for p in out.iterdir()) == ["cam", "day2-cam"]
    for folder, video in (("cam", day1), ("day2-cam", day2)):
        doc = json.loads((out / folder / "result.json").read_text())
        assert doc["video_sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()


def test_ctrl_c_through_a_server_cancels_the_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C during ``prelabel run --server``: a KeyboardInterrupt traceback, the video not named, and the job ran on
    on the server. Now the watch ends at once, the job is cancelled, the video is named and the exit status is 130."""
    import signal

    from prelabel.jobs.store import JobState
    from prelabel.service.server import PrelabelServer
    from prelabel.settings import Settings

    root = tmp_path / "videos"
    video = write_scene(generate("default", 4, num_frames=300, width=320, height=192), root)["video"]
    settings = Settings(port=0, preload=[], data_dir=tmp_path / "data", allowed_roots=[root], drain_s=0.0, grace_s=1.0)
    srv = PrelabelServer(settings)
    srv.start()
    store = srv.ctx.jobs.store

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(j.state == JobState.RUNNING and j.frames_done > 0 for j in store.list()):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    try:
        threading.Thread(target=interrupt_once_running, daemon=True).start()
        out = str(tmp_path / "out")
        argv = ["run", str(video), "--server", f"127.0.0.1:{srv.port}", "--server-paths", "--out", out,
                "--format", "mot", "--stages", "detect,track", "--detector", "arch-yolo11n", "--imgsz", "320",
                "--quiet"]  # fmt: skip
        assert main(argv) == 130
        err = capsys.readouterr().err
        assert f"error: {video}: interrupted; job" in err and "Traceback" not in err, err
        (job,) = store.list()
        deadline = time.monotonic() + 30
        while store.get(job.job_id).state != JobState.CANCELLED and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.get(job.job_id).state == JobState.CANCELLED
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("mot.txt"))
        # ``prelabel jobs watch ID && prelabel jobs download ID``: the watch says the job left no result
        assert main(["jobs", "watch", job.job_id, "--server", f"127.0.0.1:{srv.port}"]) == 1
        assert f"error: job {job.job_id} JOB_STATE_CANCELLED" in capsys.readouterr().err
    finally:
        srv.stop()


def test_result_folders_without_a_hash_or_a_readable_video_are_not_overwritten(tmp_path: Path) -> None:
    """A result.json of an earlier version records no hash: it had counted as this video's by file name alone, and a
    video this machine cannot read (a server reads it) took its folder whatever was in it."""
    from prelabel.cli import _result_folders

    video = tmp_path / "day2" / "cam.mp4"
    video.parent.mkdir()
    video.write_bytes(b"not really a video, but bytes to hash")
    out = tmp_path / "out"
    (out / "cam").mkdir(parents=True)
    (out / "cam" / "result.json").write_text(json.dumps({"video": "cam.mp4", "info": {}}))
    assert _result_folders(out, [video])[video][0] == "day2-cam"
    (out / "day2-cam").mkdir()
    sha = hashlib.sha256(video.read_bytes()).hexdigest()
    (out / "day2-cam" / "result.json").write_text(json.dumps({"video": "cam.mp4", "video_sha256": sha}))
    assert _result_folders(out, [video]) == {video: ("day2-cam", sha)}  # its own, found by the hash
    gone = tmp_path / "elsewhere" / "cam.mp4"  # not readable here
    assert _result_folders(out, [gone])[gone] == ("elsewhere-cam", None)


def test_run_through_a_server_with_a_relative_server_path(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--server-paths`` with a path relative to where the command runs (the server would resolve it against its own
    folder): labelled, each file downloaded and listed once (json asked for too)."""
    from prelabel.service.server import PrelabelServer
    from prelabel.settings import Settings

    root = tmp_path / "videos"
    root.mkdir()
    (root / "c.mp4").write_bytes(clip.read_bytes())
    settings = Settings(port=0, preload=[], data_dir=tmp_path / "data", allowed_roots=[root], drain_s=0.0, grace_s=1.0)
    srv = PrelabelServer(settings)
    srv.start()
    try:
        monkeypatch.chdir(root)
        argv = ["run", "c.mp4", "--server", f"127.0.0.1:{srv.port}", "--server-paths", "--out", str(tmp_path / "out"),
                "--format", "json,mot", "--stages", "detect,track", "--detector", "arch-yolo11n", "--imgsz", "320",
                "--quiet"]  # fmt: skip
        assert main(argv) == 0
    finally:
        srv.stop()
    folder = tmp_path / "out" / "c"
    assert capsys.readouterr().out.split() == [str(folder / "result.json"), str(folder / "mot.txt")]


def test_output_folders_tell_videos_apart() -> None:
    from prelabel.cli import _output_folders

    assert _output_folders([Path("/x/a/video.mp4"), Path("/x/b/video.mp4"), Path("/x/c/clip.mp4")]) == [
        "a-video",
        "b-video",
        "clip",
    ]
    assert _output_folders([Path("/x/d/v.mp4"), Path("/x/d/v.avi")]) == ["d-v-mp4", "d-v-avi"]
    assert _output_folders([Path("/x/d/v.mp4"), Path("/y/d/v.mp4")]) == ["d-v-mp4", "d-v-mp4-2"]
    # A name one video has at one level is not given to another at another level, nor a numbered one twice.
    for videos in (
        ["/x/a-video.mp4", "/x/a/video.mp4", "/x/b/video.mp4"],
        ["/x/d/v.mp4", "/x/d/v.avi", "/x/d-v-mp4.mkv"],
        ["/x/d/v.mp4", "/y/d/v.mp4", "/z/d-v-mp4-2.mkv"],
    ):
        names = _output_folders([Path(v) for v in videos])
        assert len(set(names)) == len(names), names


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


def test_interpolate_stores_the_filled_frames_as_densely_as_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--min-iou sets how closely CVAT's own interpolation between the stored keyframes follows the filled track;
    --every-frame stores every frame; a tolerance out of range is refused before any work."""
    import xml.etree.ElementTree as ET

    from prelabel.formats import load
    from prelabel.geometry import box_iou

    boxes = "".join(
        f'<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="{x}" ytl="{y}" xbr="{x + 40}" ybr="{y + 90}" '
        'z_order="0"></box>'
        for f, x, y in ((0, 20, 200), (30, 300, 40), (59, 560, 220))
    )
    src = tmp_path / "task.xml"
    src.write_text(CVAT_EDGES.split('<track id="0"')[0] + f'<track id="0" label="person">{boxes}</track></annotations>')
    counts = {}
    for name, extra in (("every", ["--every-frame"]), ("0.99", ["--min-iou", "0.99"]), ("0.9", []),
                        ("0.7", ["--min-iou", "0.7"])):  # fmt: skip
        out = tmp_path / f"{name}.xml"
        assert main(["interpolate", str(src), "--method", "spline", "--out", str(out), *extra]) == 0
        capsys.readouterr()
        counts[name] = len(ET.parse(out).getroot().find("track").findall("box"))  # type: ignore[union-attr]
        if name != "every":
            dense, stored = load("cvat", tmp_path / "every.xml").tracks[0], load("cvat", out).tracks[0]
            assert stored.frames.tolist() == dense.frames.tolist() == list(range(60))
            assert box_iou(stored.xyxy, dense.xyxy).diagonal().min() >= float(name) - 0.01  # CVAT's two decimals
    assert counts["every"] == 60
    assert counts["every"] > counts["0.99"] > counts["0.9"] > counts["0.7"] >= 3
    for bad in (["--min-iou", "0"], ["--min-iou", "1.5"], ["--max-keypoint-error", "-1"], ["--min-iou", "nan"],
                ["--max-keypoint-error", "inf"]):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main(["interpolate", str(src), "--out", str(tmp_path / "x.xml"), *bad])
        assert stop.value.code == 2
        assert "expected a number" in capsys.readouterr().err
    assert not (tmp_path / "x.xml").exists()


CVAT_EDGES = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><id>1</id><name>edges</name><size>60</size><mode>interpolation</mode>
<start_frame>0</start_frame><stop_frame>59</stop_frame><labels><label><name>person</name><type>rectangle</type>
<attributes></attributes></label></labels><original_size><width>640</width><height>360</height></original_size>
</task></meta>
<track id="0" label="person" source="manual">
<box frame="0" keyframe="1" outside="0" occluded="0" xtl="10" ytl="100" xbr="60" ybr="200" z_order="0"></box>
<box frame="7" keyframe="1" outside="0" occluded="0" xtl="40" ytl="120" xbr="95" ybr="230" z_order="0"></box>
<box frame="10" keyframe="1" outside="0" occluded="0" xtl="110" ytl="100" xbr="160" ybr="200" z_order="0"></box>
</track>
<track id="1" label="person" source="manual">
<box frame="5" keyframe="1" outside="0" occluded="0" xtl="200" ytl="100" xbr="250" ybr="200" z_order="0"></box>
</track>
<track id="2" label="person" source="manual">
<box frame="5" keyframe="1" outside="0" occluded="0" xtl="300" ytl="100" xbr="350" ybr="200" z_order="0"></box>
<box frame="15" keyframe="1" outside="0" occluded="0" xtl="400" ytl="100" xbr="450" ybr="200" z_order="0"></box>
<box frame="20" keyframe="1" outside="1" occluded="0" xtl="400" ytl="100" xbr="450" ybr="200" z_order="0"></box>
</track>
</annotations>
"""


@pytest.mark.parametrize("method", ["linear", "kalman"])
def test_interpolate_keeps_the_annotators_keyframes_and_extents(tmp_path: Path, method: str) -> None:
    """The written file keeps every keyframe of the annotator, exactly, as a keyframe (the frames between are
    compressed piece by piece between them), and shows each track over the frames the tool showed it: a track whose
    last keyframe is visible stays to the end of the video (CVAT's rule), one closed by ``outside`` ends there."""
    from prelabel.formats import load

    src = tmp_path / "edges.xml"
    src.write_text(CVAT_EDGES)
    out = tmp_path / "filled.xml"
    assert main(["interpolate", str(src), "--method", method, "--out", str(out)]) == 0
    before, after = load("cvat", src), load("cvat", out)
    for kt in before.keyframe_tracks:
        got = next(t for t in after.tracks if t.track_id == kt.track_id)
        shown = next(t for t in before.tracks if t.track_id == kt.track_id)
        assert got.frames.tolist() == shown.frames.tolist(), kt.track_id
        written = {k.frame_idx for k in next(x for x in after.keyframe_tracks if x.track_id == kt.track_id).keyframes}
        for k in kt.keyframes:
            if not k.outside:
                assert k.frame_idx in written, (kt.track_id, k.frame_idx)
                np.testing.assert_allclose(got.at(k.frame_idx).xyxy, k.xyxy, atol=1e-3)
    held = next(t for t in after.tracks if t.track_id == 2)
    np.testing.assert_allclose(held.at(59).xyxy, [200, 100, 250, 200], atol=1e-3)
    for kt in after.keyframe_tracks:  # held by the tool, not by copies of the last keyframe
        last = max(k.frame_idx for k in next(x for x in before.keyframe_tracks if x.track_id == kt.track_id).keyframes)
        assert max(k.frame_idx for k in kt.keyframes) == last, kt.track_id


CVAT_ANNOTATED = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><name>a</name><size>30</size><stop_frame>29</stop_frame>
<labels><label><name>person</name><type>rectangle</type><attributes>
<attribute><name>color</name><mutable>False</mutable><input_type>select</input_type><default_value>red</default_value>
<values>red
blue</values></attribute></attributes></label></labels>
<original_size><width>640</width><height>360</height></original_size></task></meta>
<track id="0" label="person" source="manual">
<box frame="0" keyframe="1" outside="0" occluded="1" xtl="10" ytl="100" xbr="60" ybr="200" z_order="2">
<attribute name="color">blue</attribute></box>
<box frame="4" keyframe="0" outside="0" occluded="1" xtl="50" ytl="100" xbr="100" ybr="200" z_order="2">
<attribute name="color">blue</attribute></box>
<box frame="10" keyframe="1" outside="0" occluded="0" xtl="110" ytl="100" xbr="160" ybr="200" z_order="3">
<attribute name="color">blue</attribute></box>
<box frame="20" keyframe="1" outside="0" occluded="0" xtl="110" ytl="180" xbr="160" ybr="280" z_order="3">
<attribute name="color">blue</attribute></box>
</track>
<tag frame="3" label="person" source="manual"></tag>
<shape type="rectangle" frame="5" label="person" occluded="0" xtl="1" ytl="1" xbr="20" ybr="20" z_order="0"/>
</annotations>
"""


def test_interpolate_keeps_everything_else_the_annotator_made_in_a_cvat_file(tmp_path: Path) -> None:
    """The CVAT output is the annotator's file with its tracks filled in: the annotator's keyframe shapes as they
    were, the filled keyframes carrying the attributes, occlusion and z-order of the keyframe before them, CVAT's
    own interpolated shapes (keyframe="0") dropped, and the labels' attribute definitions, tags and shapes kept."""
    import xml.etree.ElementTree as ET

    src = tmp_path / "annotated.xml"
    src.write_text(CVAT_ANNOTATED)
    out = tmp_path / "filled.xml"
    assert main(["interpolate", str(src), "--method", "kalman", "--out", str(out)]) == 0
    before, after = ET.parse(src).getroot(), ET.parse(out).getroot()
    assert ET.tostring(after.find("meta")) == ET.tostring(before.find("meta"))
    assert [e.tag for e in after if e.tag in ("tag", "shape")] == ["tag", "shape"]
    shapes = {int(b.get("frame")): b for b in after.find("track")}
    assert all(b.get("keyframe") == "1" for b in shapes.values())
    for b in before.find("track"):
        if b.get("keyframe") == "1":
            assert ET.tostring(shapes[int(b.get("frame"))]) == ET.tostring(b)  # untouched
    added = [f for f in shapes if f not in (0, 10, 20)]
    assert added  # kalman curves between the keyframes: linear needs more of them to follow it
    for f in added:
        before_f = max(g for g in (0, 10, 20) if g < f)
        want = {"occluded": "1", "z_order": "2"} if before_f == 0 else {"occluded": "0", "z_order": "3"}
        assert {k: shapes[f].get(k) for k in want} == want, f
        assert [(a.get("name"), a.text) for a in shapes[f].findall("attribute")] == [("color", "blue")]


def test_interpolate_reads_the_format_off_the_extension_and_names_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "edges.xml"
    src.write_text(CVAT_EDGES)
    assert main(["interpolate", str(src), "--method", "linear", "--out", str(tmp_path / "a.xml")]) == 0
    assert main(["interpolate", str(tmp_path / "nope.json"), "--out", str(tmp_path / "b.json")]) == 2
    assert "nope.json: not a file" in capsys.readouterr().err
    assert main(["interpolate", str(tmp_path), "--out", str(tmp_path / "b.json")]) == 2  # a folder
    as_json = tmp_path / "edges.json"
    src.rename(as_json)  # CVAT XML named .json: read as Label Studio, which says it is not JSON
    assert main(["interpolate", str(as_json), "--out", str(tmp_path / "c.json")]) != 0
    assert "JSON" in capsys.readouterr().err
    src.write_text(CVAT_EDGES)
    capsys.readouterr()
    assert main(["interpolate", str(src), "--method", "linear", "--out", str(tmp_path)]) == 1  # --out a folder
    err = capsys.readouterr().err.strip()
    assert err.endswith("Is a directory") and str(tmp_path) in err and "Traceback" not in err


def test_synth_lists_presets_without_an_output_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--list"]) == 0
    assert "fast-motion" in capsys.readouterr().out
    assert main(["synth"]) == 2
    assert "--out is required" in capsys.readouterr().err


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


def test_interpolate_leaves_a_neighbours_detections_to_it(tmp_path: Path) -> None:
    """Every track of the file leaves to the others of its label the detections they sit on: a second annotation of
    the same person, keyed every 4 frames, takes the detections the first one's path used (its fill changes); one of
    another label takes none (the fill is the one-track fill)."""
    from prelabel.formats import Annotations, export, load
    from prelabel.synthetic import write_scene
    from prelabel.types import Track

    scene = generate("fast-motion", 21, num_frames=41)
    video = write_scene(scene, tmp_path / "clip")["video"]
    person = next(t for t in scene.tracks if t.track_id == 3)  # visible from frame 4 to 40, fast

    def filled(second: str | None) -> np.ndarray:
        tracks = [person]
        if second is not None:
            tracks.append(Track(7, person.boxes, class_name=second))
        ann = Annotations(info=scene.info, tracks=tracks, labels=("person", "ball"), ts_ms=scene.ts_ms)
        src = tmp_path / f"keys-{second}.xml"
        export(ann, "cvat", src, keyframe_reducer=lambda t: [4, 40] if t.track_id == 3 else list(range(4, 41, 4)))
        out = tmp_path / f"filled-{second}.xml"
        assert main(["interpolate", str(src), "--video", str(video), "--method", "guided", "--out", str(out),
                     "--every-frame", "--detector", "prelabel-synth-pose"]) == 0  # fmt: skip
        (first,) = [t for t in load("cvat", out).tracks if t.frames[0] == 4 and len(t) == 37 and t.track_id != 7]
        return np.array([b.xyxy for b in first.boxes])

    alone = filled(None)
    assert np.abs(filled("person") - alone).max() > 1.0
    np.testing.assert_allclose(filled("ball"), alone, atol=0.011)


def _skeleton_xml(frame: int, dx: float, outside: int = 0) -> str:
    """A CVAT skeleton keyframe of COCO-17 points in a fixed pose, ``dx`` px to the right; every point outside when
    ``outside``."""
    from prelabel.types import COCO17_KEYPOINTS

    points = "".join(
        f'<points label="{name}" keyframe="1" outside="{outside}" occluded="0" points="{100 + dx + 3 * k:.2f},'
        f'{50 + 6 * k:.2f}"/>'
        for k, name in enumerate(COCO17_KEYPOINTS)
    )
    return f'<skeleton frame="{frame}" keyframe="1" outside="{outside}" z_order="0">{points}</skeleton>'


def test_interpolate_fills_a_skeleton_only_track(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An object annotated with skeletons only (a CVAT skeleton track, no box track) is filled from its skeleton
    keyframes, scored and given suggestions like a box track; the annotator's skeleton keyframes stay as they were."""
    import xml.etree.ElementTree as ET

    from prelabel.formats.cvat import read_cvat

    src = tmp_path / "skeletons.xml"
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>60</size>'
        "<original_size><width>640</width><height>360</height></original_size></task></meta>"
        '<track id="3" label="person-skeleton" source="manual">'
        + "".join(_skeleton_xml(f, dx) for f, dx in ((0, 0.0), (20, 80.0), (40, 120.0)))
        + _skeleton_xml(45, 130.0, outside=1)  # hidden from frame 45, left 10 px further right
        + "</track></annotations>"
    )
    out = tmp_path / "filled.xml"
    assert main(["interpolate", str(src), "--method", "kalman", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skeleton keyframe(s)" not in captured.err  # a skeleton-only track has no box keyframes to miss
    (report,) = json.loads(captured.out)["tracks"]
    assert report["frames"] == 45 and report["keyframes"] == 4  # frames shown: 0 to 44
    assert 0.0 < report["mean_confidence"] < 1.0
    assert report["suggested_keyframes"] and all(0 < f < 40 and f not in (20,) for f in report["suggested_keyframes"])
    shapes = {int(s.get("frame")): s for s in ET.parse(out).getroot().find("track")}
    # the filled skeleton is stored as the keyframes CVAT's interpolation rebuilds it from, up to the hiding one
    assert {0, 20, 40, 44, 45} <= set(shapes) and len(shapes) < 20
    assert shapes[20].find("points").get("points") == "180.00,50.00"  # the annotator's keyframe, as it was
    assert shapes[45].get("outside") == "1" and shapes[44].get("outside") == "0"
    (back,) = read_cvat(out).tracks
    nose_x = [float(back.boxes[f].skeleton.keypoints[0, 0]) for f in range(45)]  # type: ignore[union-attr]
    assert back.frames.tolist() == list(range(45))
    assert all(b > a for a, b in itertools.pairwise(nose_x))  # moving right throughout
    assert nose_x[41:45] == pytest.approx([222.0, 224.0, 226.0, 228.0])  # toward where the skeleton was left


def test_interpolate_fills_a_skeleton_of_the_teams_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A skeleton-only track whose elements are none of COCO-17's (a hand: wrist, thumb, fingertip) held no keyframed
    track for prelabel ("holds no keyframed tracks"); now it is the box around its elements, filled like any box,
    and each element keeps its place in the filled box: on a hand swinging along a bow, the frames between keyframes
    follow the fill instead of CVAT's straight line."""
    import xml.etree.ElementTree as ET

    from prelabel.interpolate import interpolate_track
    from prelabel.types import Keyframe

    offsets = {"wrist": (0.0, 40.0), "thumb": (-12.0, 10.0), "tip": (10.0, 0.0)}

    def at(f: int) -> tuple[float, float]:  # the hand's top left: a bow
        return 100.0 + 6.0 * f, 150.0 - 0.3 * f * (40 - f)

    def shape(f: int) -> str:
        x, y = at(f)
        pts = "".join(
            f'<points label="{n}" keyframe="1" outside="0" occluded="0" points="{x + dx + 12:.2f},{y + dy:.2f}"/>'
            for n, (dx, dy) in offsets.items()
        )
        return f'<skeleton frame="{f}" keyframe="1" outside="0" z_order="0">{pts}</skeleton>'

    src = tmp_path / "hand.xml"
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>41</size>'
        "<original_size><width>640</width><height>360</height></original_size></task></meta>"
        '<track id="4" label="hand-skeleton" source="manual">' + "".join(shape(f) for f in (0, 20, 40))
        + "</track></annotations>"
    )  # fmt: skip
    out = tmp_path / "filled.xml"
    assert main(["interpolate", str(src), "--method", "kalman", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "not COCO-17 keypoints" in captured.err and "the box around all" in captured.err
    (report,) = json.loads(captured.out)["tracks"]
    assert report["keyframes"] == 3 and report["frames"] == 41
    # The fill prelabel made: kalman through the boxes around the elements at the keyframes.
    keys = [Keyframe(f, xyxy=np.array([at(f)[0], at(f)[1], at(f)[0] + 22.0, at(f)[1] + 40.0])) for f in (0, 20, 40)]
    box = interpolate_track(keys, method="kalman").xyxy
    shapes = {int(s.get("frame")): s for s in ET.parse(out).getroot().find("track")}
    assert {0, 20, 40} < set(shapes) and len(shapes) < 41  # keyed where CVAT's line would stray, not every frame
    for name, (dx, dy) in offsets.items():
        keyed = sorted(
            (f, *(float(v) for v in p.get("points").split(",")))
            for f, s in shapes.items()
            for p in s.findall("points")
            if p.get("label") == name
        )
        fs = [k[0] for k in keyed]
        view = np.stack([np.interp(np.arange(41), fs, [k[i] for k in keyed]) for i in (1, 2)], axis=1)
        want = box[:, :2] + [dx + 12.0, dy]
        assert np.abs(view - want).max() <= 0.05 * 40 + 0.02, name  # within the compression bound of the fill
        linear = np.stack([np.interp(np.arange(41), (0, 20, 40), want[[0, 20, 40], i]) for i in (0, 1)], axis=1)
        assert np.abs(linear - want).max() > 5.0  # ... where CVAT's own line is off


def _element_view(path: Path, label: str, frames: range) -> list[tuple[float, float] | None]:
    """Where CVAT shows skeleton element ``label`` of a file's first skeleton track: linear between the shapes that key
    it (toward a hiding one's position too), hidden from a keyframe where it is outside, held after the last."""
    import xml.etree.ElementTree as ET

    track = next(t for t in ET.parse(path).getroot().iter("track") if t.find("skeleton") is not None)
    keys = []
    for shape in track.findall("skeleton"):
        for p in shape.findall("points"):
            if p.get("label") == label and p.get("keyframe", "1") == "1":
                x, y = (float(v) for v in p.get("points", "").split(","))
                hidden = p.get("outside") == "1" or shape.get("outside") == "1"
                keys.append((int(shape.get("frame", "-1")), x, y, hidden))
    keys.sort()
    view: list[tuple[float, float] | None] = []
    for f in frames:
        before = [k for k in keys if k[0] <= f]
        after = [k for k in keys if k[0] > f]
        if not before or before[-1][3]:
            view.append(None)
            continue
        a = before[-1]
        t = 0.0 if not after else (f - a[0]) / (after[0][0] - a[0])
        b = after[0] if after else a
        view.append(((1 - t) * a[1] + t * b[1], (1 - t) * a[2] + t * b[2]))
    return view


@pytest.mark.parametrize("case", ["one_element_rekeyed", "few_coco_names_hidden", "one_element_shown"])
def test_linear_fill_of_elements_that_are_not_coco_keypoints_is_cvats_own(tmp_path: Path, case: str) -> None:
    """With --method linear every element of a skeleton of the team's own is where CVAT shows it, on every frame.
    Before: re-keying one element of a dog at frame 20 (the rest written keyframe="0") stretched the box the other
    elements were carried by, 71 px off at frame 19; a bird whose only COCO-17 names are its eyes, hidden at 20, was
    hidden whole from there and its beak thrown off the image; a hand showing only its wrist at 20 had its fingertips
    squeezed onto it."""
    names = {
        "one_element_rekeyed": ["snout", "head", "withers", "back_paw", "tail_tip"],
        "few_coco_names_hidden": ["beak", "left_eye", "right_eye", "crown", "tail"],
        "one_element_shown": ["wrist", "index", "pinky"],
    }[case]

    def at(f: int, k: int) -> tuple[float, float]:
        return 50.0 + 6.0 * f + 25.0 * k, 120.0 + 15.0 * k + (-40.0 if case == "one_element_rekeyed" and f == 20 else 0)

    def shape(f: int) -> str:
        pts = []
        for k, n in enumerate(names):
            x, y = at(f, k)
            keyed, hidden = 1, 0
            if case == "one_element_rekeyed" and f == 20:
                keyed = int(n == "tail_tip")
                if not keyed:
                    x, y = (at(0, k)[0] + at(40, k)[0]) / 2, (at(0, k)[1] + at(40, k)[1]) / 2  # CVAT's fill
            if case == "few_coco_names_hidden" and f == 20 and n.endswith("_eye"):
                hidden = 1
            if case == "one_element_shown" and f == 20 and n != "wrist":
                hidden = 1
            pts.append(
                f'<points label="{n}" keyframe="{keyed}" outside="{hidden}" occluded="0" points="{x:.2f},{y:.2f}"/>'
            )
        return f'<skeleton frame="{f}" keyframe="1" outside="0" z_order="0">{"".join(pts)}</skeleton>'

    src = tmp_path / "task.xml"
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>41</size>'
        "<original_size><width>640</width><height>480</height></original_size></task></meta>"
        f'<track id="2" label="animal-skeleton" source="manual">{"".join(shape(f) for f in (0, 20, 40))}</track>'
        "</annotations>"
    )
    out = tmp_path / "out.xml"
    assert main(["interpolate", str(src), "--method", "linear", "--every-frame", "--out", str(out)]) == 0
    from prelabel.types import COCO17_KEYPOINTS

    for n in (n for n in names if n not in COCO17_KEYPOINTS):  # the eyes hold still up to where they hide (README)
        want, got = _element_view(src, n, range(41)), _element_view(out, n, range(41))
        for f, (a, b) in enumerate(zip(want, got, strict=True)):
            assert (a is None) == (b is None), (n, f, a, b)
            if a is not None and b is not None:
                assert b == pytest.approx(a, abs=0.011), (n, f)


def test_skeleton_keyframes_off_the_box_keyframes_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A person keyed with boxes on some frames and skeletons on others (a CVAT user's habit) had the skeletons filled
    from the box keyframes' skeletons alone, without a word; now a warning says which skeleton keyframes do not guide
    the fill, and how to make them."""
    import xml.etree.ElementTree as ET

    from prelabel.formats import load

    def box_xml(frame: int, dx: float) -> str:
        return (f'<box frame="{frame}" keyframe="1" outside="0" occluded="0" xtl="{95 + dx:.2f}" ytl="45" '
                f'xbr="{160 + dx:.2f}" ybr="160" z_order="0"/>')  # fmt: skip

    src = tmp_path / "paired.xml"
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>30</size>'
        "<original_size><width>640</width><height>360</height></original_size></task></meta>"
        '<track id="0" label="person" source="manual" group_id="1">'
        + "".join(box_xml(f, 4.0 * f) for f in (0, 15, 29))
        + '</track><track id="1" label="person-skeleton" source="manual" group_id="1">'
        + "".join(_skeleton_xml(f, 4.0 * f) for f in (0, 10, 20, 29))
        + "</track></annotations>"
    )
    assert main(["interpolate", str(src), "--method", "linear", "--out", str(tmp_path / "o.xml")]) == 0
    err = capsys.readouterr().err
    assert "2 skeleton keyframe(s) on frames without a box keyframe (first: 10)" in err, err
    assert "the skeleton next to them is not filled" in err and "key the box on the same frames" in err
    aligned = tmp_path / "aligned.xml"
    aligned.write_text(
        src.read_text().split('<track id="1"')[0]
        + '<track id="1" label="person-skeleton" source="manual" group_id="1">'
        + "".join(_skeleton_xml(f, 4.0 * f) for f in (0, 15, 29))
        + "</track></annotations>"
    )
    assert main(["interpolate", str(aligned), "--method", "linear", "--out", str(tmp_path / "o2.xml")]) == 0
    assert "skeleton keyframe(s)" not in capsys.readouterr().err  # keyed on the same frames: no warning
    # A skeleton hidden ("no skeleton from here") on a frame without a box keyframe is named too (the reader dropped
    # it), and the written file keeps the skeleton hidden from there to the next skeleton keyframe.
    hiding = tmp_path / "hiding.xml"
    hiding.write_text(
        src.read_text().split('<track id="1"')[0]
        + '<track id="1" label="person-skeleton" source="manual" group_id="1">'
        + _skeleton_xml(0, 0.0) + _skeleton_xml(15, 60.0)
        + _skeleton_xml(22, 88.0, outside=1) + _skeleton_xml(29, 116.0)
        + "</track></annotations>"
    )  # fmt: skip
    out = tmp_path / "o3.xml"
    assert main(["interpolate", str(hiding), "--method", "linear", "--every-frame", "--out", str(out)]) == 0
    assert "1 skeleton keyframe(s) on frames without a box keyframe (first: 22)" in capsys.readouterr().err
    back = load("cvat", out).tracks[0]
    skeletons = [b.skeleton if (b := back.at(f)) is not None else None for f in range(30)]
    shown = [f for f, s in enumerate(skeletons) if s is not None and s.present.any()]
    assert shown == [*range(22), 29], shown
    # Points of the annotator's keyframe that CVAT did not key there (keyframe="0", as it exports them) are keyed on
    # the frames prelabel adds: CVAT's importer drops a point that is not, and with it the fill.
    partial = tmp_path / "partial.xml"
    partial.write_text(aligned.read_text().replace('keyframe="1" outside="0" occluded="0" points="1', 'keyframe="0" '
                       'outside="0" occluded="0" points="1'))  # fmt: skip
    out = tmp_path / "o5.xml"
    assert main(["interpolate", str(partial), "--method", "kalman", "--every-frame", "--out", str(out)]) == 0
    added_points = [
        pt.get("keyframe")
        for sk in ET.parse(out).getroot().iter("skeleton")
        if sk.get("frame") not in ("0", "15", "29")
        for pt in sk.iter("points")
    ]
    assert len(added_points) == 27 * 17 and set(added_points) == {"1"}
    # Not where the box is not shown either (the person has left): there is no box keyframe to ask for.
    gone = tmp_path / "gone.xml"
    gone.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>30</size>'
        "<original_size><width>640</width><height>360</height></original_size></task></meta>"
        '<track id="0" label="person" source="manual" group_id="1">'
        + box_xml(0, 0.0) + box_xml(15, 60.0) + box_xml(20, 80.0).replace('outside="0"', 'outside="1"')
        + '</track><track id="1" label="person-skeleton" source="manual" group_id="1">'
        + _skeleton_xml(0, 0.0) + _skeleton_xml(15, 60.0) + _skeleton_xml(22, 88.0, outside=1)
        + "</track></annotations>"
    )  # fmt: skip
    assert main(["interpolate", str(gone), "--method", "linear", "--out", str(tmp_path / "o4.xml")]) == 0
    assert "skeleton keyframe(s)" not in capsys.readouterr().err
    # --previous recognises the skeleton keyframes prelabel added as well as the boxes (a skeleton shape has no box
    # coordinates: they once compared as NaN, never equal, and no skeleton track matched).
    first = tmp_path / "aligned-filled.xml"
    assert main(["interpolate", str(aligned), "--method", "kalman", "--every-frame", "--out", str(first)]) == 0
    export = tmp_path / "export.xml"
    ET.ElementTree(ET.parse(first).getroot()).write(export)  # as CVAT exports it: no comments
    capsys.readouterr()
    again = tmp_path / "again.xml"
    assert main(["interpolate", str(export), "--method", "kalman", "--previous", str(first), "--out", str(again)]) == 0
    previous = json.loads(capsys.readouterr().out)["previous"]
    assert previous["tracks"] == 2 and previous["unmatched"] == 0 and previous["edited"] == 0
    assert previous["removed"] == 2 * (30 - 3)  # every frame but the three keyframes, in both tracks
    # A CVAT user corrected the pose on a frame where prelabel had added both keyframes, leaving the box: the box
    # keyframe stays with it (taken out, the skeleton keyframe would lose its box and the pose around it its fill).
    tree = ET.parse(first)
    for tr in tree.getroot().iter("track"):
        for sk in tr.iter("skeleton"):
            if sk.get("frame") == "7":
                pt = sk.find("points")
                assert pt is not None
                pt.set("points", "1.00,2.00")
    tree.write(export)
    argv = ["interpolate", str(export), "--method", "kalman", "--every-frame", "--previous", str(first)]
    assert main([*argv, "--out", str(again)]) == 0
    previous = json.loads(capsys.readouterr().out)["previous"]
    assert (previous["edited"], previous["held"], previous["removed"]) == (1, 1, 2 * 27 - 2)
    skeleton_frames = {int(sk.get("frame", "")) for sk in ET.parse(again).getroot().iter("skeleton")}
    assert skeleton_frames == set(range(30))  # filled again around frame 7, every frame as asked
    # Hiding the skeleton on one frame prelabel added (every point outside) hides it there only: the added keyframe
    # that shows it again stays (taken out, the skeleton stayed hidden up to the next keyframe, 8 frames).
    tree = ET.parse(first)
    for sk in tree.getroot().iter("skeleton"):
        if sk.get("frame") == "7":
            for pt in sk.iter("points"):
                pt.set("outside", "1")
    tree.write(export)
    assert main([*argv, "--out", str(again)]) == 0
    previous = json.loads(capsys.readouterr().out)["previous"]
    assert previous["held"] >= 2, previous  # the box keyframe at 7 and the skeleton keyframe at 8
    skeletons = [b.skeleton if (b := load("cvat", again).tracks[0].at(f)) is not None else None for f in range(30)]
    shown = [f for f, s in enumerate(skeletons) if s is not None and s.present.any()]
    assert shown == [f for f in range(30) if f != 7], shown
    # A frame number that is not one is named by the reader, as without --previous (it raised ValueError).
    export.write_text(export.read_text().replace('frame="5"', 'frame="5a"', 1))
    assert main(["interpolate", str(export), "--previous", str(first), "--out", str(tmp_path / "bad.xml")]) == 2
    assert "frame='5a', expected an integer" in capsys.readouterr().err


def _ls_region(rid: str, items: list[tuple[int, float, bool]]) -> dict[str, object]:
    return {
        "id": rid,
        "type": "videorectangle",
        "from_name": "box",
        "to_name": "video",
        "value": {
            "framesCount": 40,
            "duration": 1.6,
            "labels": ["person"],
            "sequence": [
                {
                    "frame": f,
                    "enabled": on,
                    "rotation": 0,
                    "x": x,
                    "y": 20.0,
                    "width": 10.0,
                    "height": 30.0,
                    "time": f / 25.0,  # Label Studio writes frame / framerate
                }
                for f, x, on in items
            ],
        },
    }


def _interpolate_tasks(
    tmp_path: Path, tasks: list[dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """``prelabel interpolate`` (kalman) on a Label Studio file of ``tasks``: its report and the written tasks."""
    src, out = tmp_path / "tasks.json", tmp_path / "filled.json"
    src.write_text(json.dumps(tasks))
    assert main(["interpolate", str(src), "--method", "kalman", "--out", str(out)]) == 0
    return json.loads(capsys.readouterr().out), json.loads(out.read_text())


def test_interpolate_adds_a_prediction_to_every_label_studio_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Label Studio project export: each annotated task gets a prediction with its tracks filled in (the
    annotator's keyframes exactly as they were, region ids and other results kept); task ids, data and the
    annotations themselves are untouched, and a task nobody annotated is passed through and reported."""
    timeline = {"id": "t1", "type": "timelinelabels", "from_name": "actions", "to_name": "video",
                "value": {"ranges": [{"start": 3, "end": 9}], "timelinelabels": ["wave"]}}  # fmt: skip
    data = {"width": 640, "height": 360, "fps": 25.0, "frames_count": 40}
    tasks = [
        {"id": 11, "data": {"video": "/data/upload/1/ab12-clip.mp4", **data}, "predictions": [],
         "annotations": [{"id": 5, "result": [_ls_region("aB3", [(1, 10.0, True), (11, 30.0, True),
                                                                  (21, 40.0, False)]), timeline]}]},
        {"id": 12, "data": {"video": "/data/upload/1/cd34-other.mp4", **data}, "annotations": []},
        {"id": 13, "data": {"video": "/data/upload/1/ef56-third.mp4", **data},
         "annotations": [{"id": 6, "result": [_ls_region("zz9", [(5, 50.0, True), (25, 70.0, True)])]}]},
    ]  # fmt: skip
    report, got = _interpolate_tasks(tmp_path, tasks, capsys)
    assert [(t["task"], t["frames"]) for t in report["tracks"]] == [(0, 21), (2, 21)]  # frames 1-21 and 5-25
    assert report["skipped_tasks"] == [
        {"task": 1, "reason": "no annotation (other than cancelled ones) and no prediction"}
    ]
    assert [t["id"] for t in got] == [11, 12, 13]
    assert got[1] == tasks[1]
    for before, after in ((tasks[0], got[0]), (tasks[2], got[2])):
        assert after["data"] == before["data"] and after["annotations"] == before["annotations"]
        (prediction,) = after["predictions"]
        assert prediction["model_version"] == "prelabel-interpolate"
        region = prediction["result"][0]
        annotated = before["annotations"][0]["result"][0]  # type: ignore[index]
        assert region["id"] == annotated["id"] and region["value"]["labels"] == ["person"]
        seq = region["value"]["sequence"]
        frames = [item["frame"] for item in seq]
        assert frames == sorted(frames)
        for item in annotated["value"]["sequence"]:
            assert item in seq  # exactly as the annotator made it
        assert all(item["enabled"] for item in seq if item not in annotated["value"]["sequence"])
        assert min(frames) == annotated["value"]["sequence"][0]["frame"]
        assert max(frames) == annotated["value"]["sequence"][-1]["frame"]  # held by the tool, not copied
    assert got[0]["predictions"][0]["result"][1] == {**timeline, "origin": "prediction"}
    # Three keyframes make a curve (keyframes added between them); two a straight line, which the tool draws itself.
    assert len(got[0]["predictions"][0]["result"][0]["value"]["sequence"]) > 3
    assert len(got[2]["predictions"][0]["result"][0]["value"]["sequence"]) == 2


def test_a_label_studio_task_names_its_video_by_file_name() -> None:
    from prelabel.cli import _same_video

    clip = Path("videos/clip.mp4")
    assert _same_video("/data/upload/1/ab12cd34-clip.mp4", clip)  # an upload: 8 hex digits and a dash
    assert _same_video("/data/local-files/?d=videos/clip.mp4", clip)
    assert _same_video("s3://bucket/clip.mp4?X-Amz=1", clip)
    assert _same_video("https://host/my%20clip.mp4", Path("my clip.mp4"))
    assert not _same_video("/data/upload/1/ab12cd34-clip.mp4", Path("other.mp4"))
    assert not _same_video("/data/upload/3/9f1c2a7b-long-clip.mp4", clip)
    assert not _same_video("/data/upload/1/my-clip.mp4", clip)


def test_label_studio_tasks_in_every_state_of_a_real_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a project export holds besides annotated tasks: predictions listed by id only, cancelled and empty
    annotations (a second annotator's is read), a region with no keyframes, a prediction as the only source. Each
    task is filled or skipped with its reason, and running again replaces the earlier prediction."""
    data = {"width": 640, "height": 360, "fps": 25.0, "frames_count": 40}
    region = _ls_region("r1", [(1, 10.0, True), (11, 30.0, True), (21, 40.0, False)])
    empty_region = _ls_region("r0", [])
    tasks = [
        {"id": 1, "data": data, "predictions": [286], "annotations": [{"id": 9, "result": [region]}]},
        {"id": 2, "data": data, "predictions": [287], "annotations": []},
        {"id": 3, "data": data, "annotations": [{"result": []}, {"result": [region]}]},
        {"id": 4, "data": data, "annotations": [{"was_cancelled": True, "result": [region]}],
         "predictions": [{"model_version": "m", "result": [region]}]},
        {"id": 5, "data": data, "annotations": [{"result": [empty_region]}]},
    ]  # fmt: skip
    report, got = _interpolate_tasks(tmp_path, tasks, capsys)
    assert [(t["task"], t["read_from"]) for t in report["tracks"]] == [(0, "annotation"), (2, "annotation"),
                                                                       (3, "prediction")]  # fmt: skip
    assert [s["task"] for s in report["skipped_tasks"]] == [1, 4]
    assert got[0]["predictions"][0]["model_version"] == "prelabel-interpolate"  # the id-only 286 is dropped
    assert len(got[0]["predictions"]) == 1 and got[1] == tasks[1] and got[4] == tasks[4]
    assert [p["model_version"] for p in got[3]["predictions"]] == ["m", "prelabel-interpolate"]
    again = tmp_path / "again.json"
    assert main(["interpolate", str(tmp_path / "filled.json"), "--method", "kalman", "--out", str(again)]) == 0
    capsys.readouterr()
    assert json.loads(again.read_text())[0]["predictions"] == got[0]["predictions"]  # replaced, not piled up


def test_interpolate_speaks_label_studio_frames_and_conventions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report counts the keyframes the annotator placed and names frames as Label Studio does (from 1), with
    the task's id; the prediction's regions are predictions, and the items added carry Label Studio's time
    (frame / framerate) like the annotator's."""
    data = {"width": 640, "height": 360, "fps": 25.0, "frames_count": 40}
    region = _ls_region("r1", [(1, 10.0, True), (11, 30.0, True), (31, 40.0, False)])
    region["origin"] = "manual"
    report, got = _interpolate_tasks(tmp_path, [{"id": 77, "data": data, "annotations": [{"result": [region]}]}],
                                     capsys)  # fmt: skip
    (row,) = report["tracks"]
    assert row["task"] == 0 and row["task_id"] == 77
    assert row["keyframes"] == 3  # not 4: the reader's "hidden from frame 22" marker is not the annotator's
    from prelabel.formats.label_studio import read_label_studio
    from prelabel.interpolate import interpolate_track

    (kt,) = read_label_studio(tmp_path / "tasks.json").keyframe_tracks
    expected = interpolate_track(kt.keyframes, "kalman", num_suggestions=3).suggestions
    assert row["suggested_keyframes"] == [s.frame_idx + 1 for s in expected]  # counted from 1, as the tool shows
    (prediction,) = got[0]["predictions"]
    assert {r["origin"] for r in prediction["result"]} == {"prediction"}
    assert got[0]["annotations"][0]["result"][0]["origin"] == "manual"
    for item in prediction["result"][0]["value"]["sequence"]:
        assert item["time"] == pytest.approx(item["frame"] / 25.0)


def _two_camera_tasks(tmp_path: Path) -> Path:
    data = {"width": 640, "height": 360, "fps": 25.0, "frames_count": 40}
    tasks = [
        {"id": 1, "data": {**data, "video": "/data/local-files/?d=cam1/clip.mp4"},
         "annotations": [{"result": [_ls_region("a", [(1, 10.0, True), (11, 30.0, False)])]}]},
        {"id": 2, "data": {**data, "video": "/data/local-files/?d=cam2/clip.mp4"},
         "annotations": [{"result": [_ls_region("b", [(5, 60.0, True), (15, 70.0, False)])]}]},
        {"id": 3, "data": {**data, "video": "/data/upload/1/other.mp4"}, "annotations": []},
    ]  # fmt: skip
    src = tmp_path / "project.json"
    src.write_text(json.dumps(tasks))
    return src


def test_label_studio_tasks_of_two_videos_of_one_name_are_told_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two cameras' clip.mp4: interpolate filled both tasks from the one video given, and convert read task 0
    whatever the video; now both say which tasks could be meant and take --task."""
    src = _two_camera_tasks(tmp_path)
    video = _black_clip(tmp_path / "cam2" / "clip.mp4")
    out = tmp_path / "out.json"
    base = ["--video", str(video), "--out", str(out)]
    assert main(["interpolate", str(src), "--method", "linear", *base]) == 2
    err = capsys.readouterr().err
    assert "2 different files named clip.mp4" in err and "--task" in err, err
    assert main(["interpolate", str(src), "--method", "linear", "--task", "2", *base]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["task_id"] for r in report["tracks"]] == [2]
    assert main(["convert", str(src), "--to", "mot", *base]) == 2
    assert "2 different files named clip.mp4" in capsys.readouterr().err
    assert main(["convert", str(src), "--to", "mot", "--task", "2", *base]) == 0
    capsys.readouterr()
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert [int(r[0]) for r in rows] == list(range(5, 16)) and float(rows[0][2]) == pytest.approx(0.6 * 640)
    assert main(["convert", str(src), "--to", "mot", "--task", "9", *base]) == 2
    assert "no task with id [9]" in capsys.readouterr().err
    # Without a video, an export of several labelled tasks is not read as its first one.
    assert main(["convert", str(src), "--to", "mot", "--out", str(out)]) == 2
    assert "2 tasks hold labels (ids [1, 2])" in capsys.readouterr().err
    (tmp_path / "odd.json").write_text('["hello"]')
    assert main(["convert", str(tmp_path / "odd.json"), "--from", "labelstudio", "--to", "mot", "--out", str(out)]) == 2
    assert "task 0 is a str, expected an object" in capsys.readouterr().err


def _black_clip(path: Path, frames: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 360))
    for _ in range(frames):
        writer.write(np.zeros((360, 640, 3), np.uint8))
    writer.release()
    return path


def test_a_label_studio_task_for_another_video_is_not_filled_from_this_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file of one task made for another video was filled from the frames of the video given, silently (a Label
    Studio user's report); now it takes --task to do so, and that says what it does."""
    video = _black_clip(tmp_path / "clip.mp4")
    region = _ls_region("r1", [(1, 10.0, True), (11, 30.0, True), (21, 40.0, False)])
    src = tmp_path / "project.json"
    src.write_text(json.dumps([{"id": 7, "data": {"video": "/data/upload/3/0a1b2c3d-other_cam.mp4"},
                                "annotations": [{"id": 1, "result": [region]}]}]))  # fmt: skip
    base = ["interpolate", str(src), "--video", str(video), "--method", "linear", "--out", str(tmp_path / "o.json")]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "task 7 refers to '/data/upload/3/0a1b2c3d-other_cam.mp4'" in err and "give --task 7" in err, err
    assert main([*base, "--task", "7"]) == 0
    captured = capsys.readouterr()
    assert "task 7 refers to" in captured.err and "as --task asks" in captured.err
    assert [r["task_id"] for r in json.loads(captured.out)["tracks"]] == [7]
    # convert takes only the frame size and timestamps from the video: a one-task file is that task, as before, with
    # a word on where its pixels come from.
    assert main(["convert", str(src), "--to", "mot", "--video", str(video), "--out", str(tmp_path / "o.txt")]) == 0
    assert "its boxes are taken at the frame size and timestamps of clip.mp4" in capsys.readouterr().err
    # The same task naming this video (an upload of it) is read without a word.
    src.write_text(src.read_text().replace("0a1b2c3d-other_cam.mp4", "0a1b2c3d-clip.mp4"))
    assert main(base) == 0
    assert "warning" not in capsys.readouterr().err


def test_label_studio_tasks_labelled_by_several_annotators_say_which_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task two annotators labelled: the first annotation was read and the other ignored without a word; now a
    warning names both, the report the one read, and --annotation reads another (an id no task holds is an error)."""
    data = {"width": 640, "height": 360, "fps": 25.0, "frames_count": 40}
    one = _ls_region("a", [(1, 10.0, True), (21, 40.0, False)])
    two = [_ls_region("b", [(1, 10.0, True), (21, 40.0, False)]), _ls_region("c", [(5, 60.0, True), (25, 70.0, False)])]
    src = tmp_path / "project.json"
    src.write_text(json.dumps([{"id": 3, "data": data, "annotations": [{"id": 5003, "result": [one]},
                                                                       {"id": 5001, "result": two}]}]))  # fmt: skip
    out = tmp_path / "o.json"
    base = ["interpolate", str(src), "--method", "linear", "--out", str(out)]
    assert main(base) == 0
    captured = capsys.readouterr()
    read = "task 3: 2 annotators labelled it; annotation 5003 is read, not annotation 5001 (--annotation ID reads"
    assert read in captured.err, captured.err
    assert [(r["annotation_id"], r["read_from"]) for r in json.loads(captured.out)["tracks"]] == [(5003, "annotation")]
    assert main([*base, "--annotation", "5001"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err  # the user said which
    assert [r["annotation_id"] for r in json.loads(captured.out)["tracks"]] == [5001, 5001]
    regions = json.loads(out.read_text())[0]["predictions"][0]["result"]
    assert [r["id"] for r in regions] == ["b", "c"]  # the prediction is made from the annotation read
    assert main([*base, "--annotation", "77"]) == 2
    assert "no task read holds an annotation with id [77] (their annotations: [5003, 5001])" in capsys.readouterr().err
    assert main([*base, "--annotation", "5001", "--annotation", "5003"]) == 2
    err = capsys.readouterr().err
    assert "task 3: --annotation names 2 of its annotations ([5003, 5001]); name one per task" in err
    # convert: --annotation also says which task, where the file holds several.
    doc = json.loads(src.read_text())
    doc.append({"id": 4, "data": data, "annotations": [{"id": 6001, "result": [one]}]})
    src.write_text(json.dumps(doc))
    mot = tmp_path / "o.txt"
    assert main(["convert", str(src), "--to", "mot", "--out", str(mot)]) == 2
    assert "2 tasks hold labels (ids [3, 4])" in capsys.readouterr().err
    assert main(["convert", str(src), "--to", "mot", "--out", str(mot), "--annotation", "5001"]) == 0
    assert len({line.split(",")[1] for line in mot.read_text().splitlines()}) == 2
    # Annotations without ids are named by their place in the file, and --annotation, which cannot name them, is not
    # suggested; a task without an id by its place too.
    src.write_text(json.dumps([{"data": data, "annotations": ["x", {"result": [one]}, {"result": two}]}]))
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "task #0: 2 annotators labelled it; annotations[1] is read, not annotations[2]" in err, err
    assert "--annotation" not in err
    # --annotation picks annotations of a Label Studio export only.
    (tmp_path / "task.xml").write_text(_cvat_task([10, 20]))
    assert main(["interpolate", str(tmp_path / "task.xml"), "--annotation", "1", "--out", str(tmp_path / "o.xml")]) == 2
    assert "--annotation picks annotations of a Label Studio export" in capsys.readouterr().err


def test_label_studio_mistakes_are_named_in_label_studio_terms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A box at x=250 % was reported by the interpolation at 0-based frame 58 in pixels ("mark a keyframe
    outside"), a coordinate written as text was copied into the prediction as text (Label Studio's JavaScript joins
    it to a number), and an export whose task for this video was empty said it held no tracks though another task
    had some."""
    data = {"width": 640, "height": 360, "fps": 25.0, "frames_count": 40}
    src, out = tmp_path / "project.json", tmp_path / "o.json"
    base = ["interpolate", str(src), "--method", "linear", "--out", str(out)]
    region = _ls_region("r1", [(1, 10.0, True), (11, 30.0, True), (21, 40.0, False)])
    region["value"]["sequence"][1]["x"] = 250.0  # type: ignore[index]
    src.write_text(json.dumps([{"id": 1, "data": data, "annotations": [{"result": [region]}]}]))
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "task 1 region 'r1', frame 11: box x=250, y=20, width=10" in err and "percent of the frame" in err, err
    region["value"]["sequence"][1]["x"] = -5.0  # type: ignore[index]
    src.write_text(json.dumps([{"id": 1, "data": data, "annotations": [{"result": [region]}]}]))
    assert main(base) == 0  # partly outside (an object leaving the frame): fine
    capsys.readouterr()
    region["value"]["sequence"][1]["x"] = "12.5"  # type: ignore[index]
    src.write_text(json.dumps([{"id": 1, "data": data, "annotations": [{"result": [region]}]}]))
    assert main(base) == 0  # read as the number it spells, and written as one
    capsys.readouterr()
    items = json.loads(out.read_text())[0]["predictions"][0]["result"][0]["value"]["sequence"]
    assert [item["x"] for item in items if item["frame"] == 11] == [12.5]
    assert all(not isinstance(v, str) for item in items for k, v in item.items() if k != "id")
    region["value"]["sequence"][1]["rotation"] = "abc"  # type: ignore[index]
    src.write_text(json.dumps([{"id": 1, "data": data, "annotations": [{"result": [region]}], "predictions": True}]))
    assert main(base) == 2
    assert "sequence[1]: expected a number in 'rotation', got 'abc'" in capsys.readouterr().err
    region["value"]["sequence"][1]["rotation"] = 0  # type: ignore[index]
    src.write_text(json.dumps([{"id": 1, "data": data, "annotations": [{"result": [region]}], "predictions": True}]))
    assert main(base) == 0  # a malformed "predictions" is replaced by the new one
    capsys.readouterr()
    assert [p["model_version"] for p in json.loads(out.read_text())[0]["predictions"]] == ["prelabel-interpolate"]
    region["value"]["sequence"][1]["x"] = True  # type: ignore[index]
    src.write_text(json.dumps([{"id": 1, "data": data, "annotations": [{"result": [region]}]}]))
    assert main(base) == 2
    assert "sequence[1]: expected a number in 'x', got True" in capsys.readouterr().err
    src.write_text(json.dumps(["oops", {"id": 2, "data": data, "annotations": []}]))
    assert main(base) == 2
    assert "task 0 is a str, expected an object" in capsys.readouterr().err
    src.write_text("[]")
    assert main(base) == 2
    assert "holds no task" in capsys.readouterr().err
    video = _black_clip(tmp_path / "clip.mp4")
    region["value"]["sequence"][1]["x"] = 30.0  # type: ignore[index]
    src.write_text(json.dumps([
        {"id": 101, "data": {"video": "/data/upload/1/0a1b2c3d-clip.mp4"}, "annotations": [{"result": []}]},
        {"id": 102, "data": {"video": "/data/upload/1/0a1b2c3d-other.mp4"}, "annotations": [{"result": [region]}]},
    ]))  # fmt: skip
    assert main([*base, "--video", str(video)]) == 2
    err = capsys.readouterr().err
    assert "no keyframed track in the 1 task(s) read (task 101: its annotation holds no track" in err, err
    assert "1 other task(s) were not read (only the tasks that refer to clip.mp4 are read)" in err


def _cvat_task(frames: list[int], start: int = 10, step: int = 2, stop: int = 58) -> str:
    boxes = "".join(
        f'<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="{100 + i * 20}" ytl="100" xbr="{140 + i * 20}" '
        'ybr="200" z_order="0"/>'
        for i, f in enumerate(frames)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>25</size>'
        f"<start_frame>{start}</start_frame><stop_frame>{stop}</stop_frame><frame_filter>step={step}</frame_filter>"
        "<labels><label><name>person</name><type>rectangle</type><attributes/></label></labels>"
        "<original_size><width>320</width><height>240</height></original_size></task></meta>"
        f'<track id="0" label="person" source="manual">{boxes}</track></annotations>'
    )


def test_interpolate_keeps_to_the_frames_of_a_cvat_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A task of every other frame from 10 (frame_filter step=2): suggestions had named frames it does not hold (29,
    21, 37) and even one before its start; keyframes off its frames, which CVAT's importer refuses, passed."""
    src, out = tmp_path / "task.xml", tmp_path / "out.xml"
    src.write_text(_cvat_task([14, 44]))
    assert main(["interpolate", str(src), "--method", "linear", "--out", str(src)]) == 2  # it overwrote the input
    assert "is the annotator's file" in capsys.readouterr().err and src.read_text() == _cvat_task([14, 44])
    assert main(["interpolate", str(src), "--method", "linear", "--suggestions", "5", "--out", str(out)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["tracks"]
    suggested = row["suggested_keyframes"]
    assert len(suggested) == 5 and len(set(suggested)) == 5
    assert all(14 < f < 44 and (f - 10) % 2 == 0 for f in suggested), suggested
    # Each stays in its own gap and off frames where the object is outside (keyframes 10, 12, 14, outside at 16, then
    # 50 and 52): a suggestion of a full gap had moved into the hidden stretch.
    hidden = _cvat_task([10, 12, 14, 50, 52]).replace(
        '<box frame="50"',
        '<box frame="16" keyframe="1" outside="1" occluded="0" xtl="1" ytl="1" xbr="9" ybr="9" '
        'z_order="0"/><box frame="50"',
    )
    src.write_text(hidden)
    assert main(["interpolate", str(src), "--method", "linear", "--suggestions", "3", "--out", str(out)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["tracks"]
    assert row["suggested_keyframes"] == [], row  # no gap has a free frame of the task where the object shows
    for frames, start in (([14, 21], 10), ([2, 20], 10)):
        src.write_text(_cvat_task(frames, start=start))
        assert main(["interpolate", str(src), "--method", "linear", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        bad = next(f for f in frames if f < start or (f - start) % 2)
        assert f"frame {bad}: not a frame of the task (start_frame {start}, step 2, stop_frame 58)" in err, err
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>2</size></task>'
        '</meta><image id="0" name="a.jpg" width="320" height="240"><box label="person" xtl="1" ytl="1" xbr="9" '
        'ybr="9" occluded="0"/></image></annotations>'
    )
    assert main(["interpolate", str(src), "--method", "linear", "--out", str(out)]) == 2
    assert "a 'CVAT for images' export" in capsys.readouterr().err


def test_interpolate_names_a_bad_track_as_the_annotators_file_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A keyframe past the video's end is refused naming the CVAT track id (prelabel numbers objects from 1)."""
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    src = tmp_path / "task.xml"
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>12</size>'
        "<original_size><width>64</width><height>48</height></original_size></task></meta>"
        '<track id="7" label="person"><box frame="0" keyframe="1" outside="0" xtl="1" ytl="1" xbr="9" ybr="9"/>'
        '<box frame="100" keyframe="1" outside="0" xtl="5" ytl="1" xbr="13" ybr="9"/></track></annotations>'
    )
    argv = ["interpolate", str(src), "--video", str(video), "--method", "linear", "--out", str(tmp_path / "o.xml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "task.xml: CVAT track id=7, frame 100: outside the video" in err, err
    assert "track 8" not in err, err  # prelabel's own number for the object is not the file's


def test_interpolate_refuses_a_keyframe_far_past_a_task_of_unknown_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CVAT file that states no task size, or a Label Studio task no frame count, with a keyframe at frame
    30,000,000 (a typo): refused at once naming the object, where every frame up to it was built first (gigabytes)."""
    cvat = tmp_path / "nosize.xml"
    cvat.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><name>t</name>'
        "</task></meta>"
        '<track id="4" label="person"><box frame="0" keyframe="1" outside="0" xtl="1" ytl="1" xbr="5" ybr="5"/>'
        '<box frame="30000000" keyframe="1" outside="0" xtl="10" ytl="10" xbr="50" ybr="50"/></track></annotations>'
    )
    ls = tmp_path / "nocount.json"
    data = {"video": "clip.mp4", "width": 640, "height": 360}
    ls.write_text(json.dumps([{"id": 3, "data": data, "annotations": [{"id": 1, "result": [
        {"id": "r1", "type": "videorectangle", "value": {"labels": ["person"], "sequence": [
            {"frame": 1, "enabled": True, "x": 5, "y": 20, "width": 10, "height": 30},
            {"frame": 30000001, "enabled": True, "x": 25, "y": 20, "width": 10, "height": 30}]}}]}]}]))  # fmt: skip
    for src, name in ((cvat, "CVAT track id=4"), (ls, "region 'r1'")):
        assert main(["interpolate", str(src), "--method", "linear", "--out", str(tmp_path / f"o{src.suffix}")]) == 2
        err = capsys.readouterr().err
        assert name in err and "30000001 frames" in err, err


def test_interpolate_reports_each_track_by_the_files_own_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's track_id is prelabel's (a CVAT id + 1, or the group); the file's ids come with it, so that a tool
    shows each track's suggestions on the right object."""
    src = tmp_path / "task.xml"
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>41</size>'
        "</task></meta>"
        '<track id="0" label="car"><box frame="0" keyframe="1" outside="0" xtl="1" ytl="1" xbr="9" ybr="9"/>'
        '<box frame="40" keyframe="1" outside="0" xtl="30" ytl="1" xbr="38" ybr="9"/></track>'
        '<track id="2" label="person" group_id="9">'
        '<box frame="0" keyframe="1" outside="0" xtl="1" ytl="11" xbr="9" ybr="29"/>'
        '<box frame="20" keyframe="1" outside="0" xtl="21" ytl="11" xbr="29" ybr="29"/></track></annotations>'
    )
    argv = ["interpolate", str(src), "--method", "linear", "--out", str(tmp_path / "o.xml")]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["tracks"]
    assert [(r["label"], r["cvat_track_ids"]) for r in rows] == [("car", [0]), ("person", [2])], rows
    assert [r["track_id"] for r in rows] == [1, 9]  # prelabel's own, kept for the API's callers
    ls = tmp_path / "tasks.json"
    data = {"video": "clip.mp4", "width": 640, "height": 360, "framesCount": 40}
    ls.write_text(json.dumps([{"id": 3, "data": data, "annotations": [
        {"id": 1, "result": [_ls_region("aB3", [(1, 10.0, True), (21, 30.0, True)])]}]}]))  # fmt: skip
    assert main(["interpolate", str(ls), "--method", "linear", "--out", str(tmp_path / "o.json")]) == 0
    (row,) = json.loads(capsys.readouterr().out)["tracks"]
    assert row["region_id"] == "aB3", row


def _result_doc(track: Track, num_frames: int) -> dict[str, object]:
    """A result.json of one track, as prelabel run writes it."""
    boxes = []
    for b in track.boxes:
        item: dict[str, object] = {"frame": b.frame_idx, "ts_ms": 40.0 * b.frame_idx, "xyxy": b.xyxy.tolist(),
                                   "score": 0.9, "source": "detector"}  # fmt: skip
        if b.skeleton is not None:
            item["keypoints"] = b.skeleton.keypoints.tolist()
            item["keypoints_present"] = b.skeleton.present.tolist()
        boxes.append(item)
    return {
        "video": "clip.mp4",
        "info": {"width": 640, "height": 360, "num_frames": num_frames, "fps": 25.0, "variable_frame_rate": False},
        "class_names": ["person"],
        "ts_ms": [40.0 * f for f in range(num_frames)],
        "tracks": [{"track_id": track.track_id, "class_id": 0, "class_name": "person", "boxes": boxes}],
        "segments": [
            {"track_id": track.track_id, "label": "wave", "start_frame": 10, "end_frame": 30, "source": "model"}
        ],
    }


def test_converting_a_result_of_part_of_a_video_says_which_frames_were_looked_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pose_track: Track
) -> None:
    """A result.json of a run over part of the video, converted to a format with no list of frames (MOT, CVAT,
    Label Studio): the other frames read as empty there, so the conversion says so; COCO lists the frames alone."""
    doc = _result_doc(pose_track, 150)
    first, last = int(pose_track.frames[0]), int(pose_track.frames[-1])
    doc["frames_processed"] = [first, last + 1]
    src = tmp_path / "result.json"
    src.write_text(json.dumps(doc))
    assert main(["convert", str(src), "--to", "mot", "--out", str(tmp_path / "part.txt")]) == 0
    assert f"labels frames {first} to {last} (0-based) only; in mot" in capsys.readouterr().err
    assert main(["convert", str(src), "--to", "coco", "--out", str(tmp_path / "part.json")]) == 0
    assert "labels frames" not in capsys.readouterr().err
    images = json.loads((tmp_path / "part.json").read_text())["images"]
    assert [im["frame_id"] for im in images] == list(range(first, last + 1))


def test_convert_stores_a_dense_result_as_few_keyframes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    pose_track: Track,
    keypoint_errors: Callable[[Track, Track], np.ndarray],
) -> None:
    """prelabel's result.json into CVAT: boxes and skeletons as the fewest keyframes CVAT rebuilds them from (the
    file read back is the result within the tolerances, segments kept); --every-frame writes them all."""
    import xml.etree.ElementTree as ET

    from prelabel.formats import load
    from prelabel.geometry import box_iou

    src = tmp_path / "result.json"
    src.write_text(json.dumps(_result_doc(pose_track, 150)))
    assert main(["convert", str(src), "--to", "cvat", "--out", str(tmp_path / "few.xml")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from"] == "json" and report["tracks"] == 1 and report["boxes"] == 120
    root = ET.parse(tmp_path / "few.xml").getroot()
    box_track, skeleton_track = root.findall("track")
    assert len(box_track.findall("box")) < 10 and 10 < len(skeleton_track.findall("skeleton")) < 60
    back = load("cvat", tmp_path / "few.xml").tracks[0]
    assert back.frames.tolist() == pose_track.frames.tolist()
    assert box_iou(back.xyxy, pose_track.xyxy).diagonal().min() >= 0.9 - 1e-3
    assert keypoint_errors(pose_track, back).max() <= 0.05 + 1e-3
    assert [(s.label, s.start_frame, s.end_frame) for s in load("cvat", tmp_path / "few.xml").segments] == [
        ("wave", 10, 30)
    ]
    assert main(["convert", str(src), "--to", "cvat", "--every-frame", "--out", str(tmp_path / "all.xml")]) == 0
    capsys.readouterr()
    box_track, skeleton_track = ET.parse(tmp_path / "all.xml").getroot().findall("track")
    assert len(box_track.findall("box")) == 121  # every frame, and the closing outside shape


def test_convert_reads_a_yolo_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str], pose_track: Track) -> None:
    """The yolo.zip that `prelabel run` and job downloads give converts as it is (its format read off the name)."""
    from prelabel.formats import load
    from prelabel.jobs.results import zip_folder

    src = tmp_path / "result.json"
    src.write_text(json.dumps(_result_doc(pose_track, 150)))
    assert main(["convert", str(src), "--to", "yolo", "--out", str(tmp_path / "yolo")]) == 0
    zip_folder(tmp_path / "yolo", tmp_path / "yolo.zip")
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "yolo.zip"), "--to", "mot", "--out", str(tmp_path / "t.txt")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["from"] == "yolo" and report["tracks"] == 1 and report["boxes"] == 120
    back = load("mot", tmp_path / "t.txt").tracks[0]
    assert back.frames.tolist() == pose_track.frames.tolist()
    np.testing.assert_allclose(back.xyxy, pose_track.xyxy, atol=0.01)


def test_convert_reads_mot_ground_truth_with_its_video_and_names_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = generate("default", 5, num_frames=41, width=320, height=192)
    folder = tmp_path / "scene"
    write_scene(scene, folder)
    gt = folder / "gt" / "gt.txt"
    out = tmp_path / "tasks.json"
    assert (
        main(["convert", str(gt), "--to", "labelstudio", "--video", str(folder / "video.mp4"), "--out", str(out)]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["from"] == "mot-gt" and report["tracks"] == len([t for t in scene.tracks if len(t)])
    (task,) = json.loads(out.read_text())
    stored = sum(len(r["value"]["sequence"]) for r in task["predictions"][0]["result"] if r["type"] == "videorectangle")
    assert stored < report["boxes"] / 3
    (tmp_path / "notes.md").write_text("hello")
    assert main(["convert", str(tmp_path / "notes.md"), "--to", "cvat", "--out", str(tmp_path / "x.xml")]) == 2
    assert "--from" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "absent.json"), "--to", "cvat", "--out", str(tmp_path / "x.xml")]) == 2
    late = tmp_path / "late.txt"  # frame 42 of a 41-frame video, named as the file numbers it
    late.write_text("1,1,10,10,20,40,1,-1,-1,-1\n42,1,14,10,20,40,1,-1,-1,-1\n")
    argv = ["convert", str(late), "--from", "mot", "--video", str(folder / "video.mp4"), "--to", "labelstudio"]
    assert main([*argv, "--out", str(tmp_path / "late.json")]) == 2
    assert "late.txt row 2: frame 42, past the video's last frame 41" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text('{"info": {"width": 1}, "tracks": []}')
    assert main(["convert", str(tmp_path / "broken.json"), "--to", "mot", "--out", str(tmp_path / "x.txt")]) != 0
    assert "info needs width, height" in capsys.readouterr().err


def test_convert_says_what_of_a_cvat_file_it_drops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CVAT task's attributes, rotations, occluded flags, z-order and tags do not survive a conversion (its format
    holds boxes, skeletons, labels and checkbox actions); they were dropped without a word."""
    src = tmp_path / "task.xml"
    src.write_text(
        _cvat_task([14, 44], start=0, step=1, stop=58)
        .replace('occluded="0"', 'occluded="1" rotation="30.00"', 1)
        .replace('z_order="0"/>', 'z_order="2"><attribute name="person_id">P-7</attribute></box>', 1)
        .replace("</track>", '</track><tag frame="3" label="dark" source="manual"/>')
    )
    assert main(["convert", str(src), "--to", "mot", "--out", str(tmp_path / "o.txt")]) == 0
    err = capsys.readouterr().err
    assert "drops 1 attribute values, 1 rotated boxes, 1 occluded shapes, 1 shapes with a z_order, 1 tags" in err, err
    src.write_text(_cvat_task([14, 44], start=0, step=1, stop=58))
    assert main(["convert", str(src), "--to", "mot", "--out", str(tmp_path / "o.txt")]) == 0
    assert "drops" not in capsys.readouterr().err
    src.write_text(_cvat_task([14, 44], start=0, step=1, stop=58).replace('occluded="0"', 'rotation="abc"', 1))
    assert main(["convert", str(src), "--to", "mot", "--out", str(tmp_path / "o.txt")]) == 0  # was a traceback
    assert "drops 1 rotated boxes" in capsys.readouterr().err
    # --task is a Label Studio export's: given with a CVAT file it is refused, not ignored.
    assert main(["convert", str(src), "--to", "mot", "--task", "3", "--out", str(tmp_path / "o.txt")]) == 2
    assert main(["interpolate", str(src), "--method", "linear", "--task", "3", "--out", str(tmp_path / "o.xml")]) == 2
    assert capsys.readouterr().err.count("--task picks tasks of a Label Studio export") == 2


def test_convert_refuses_what_it_cannot_do_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pose_track: Track
) -> None:
    """One-line errors, exit 2, nothing written: no frame size or length to write with, a video of another size,
    nothing read, a malformed file, the output over the input. A MOT16+ ground-truth file is read as ground truth
    whatever its name; a box source this version does not know reads as unspecified."""
    from prelabel.formats import load

    mot = tmp_path / "tracks.txt"
    mot.write_text("".join(f"{f + 1},1,{10 + f},20,30,60,1,-1,-1,-1\n" for f in range(20)))

    def run(*argv: str) -> tuple[int, str]:
        code = main(["convert", *argv])
        return code, capsys.readouterr().err

    code, err = run(str(mot), "--to", "cvat", "--out", str(tmp_path / "a.xml"))
    assert code == 2 and "frame size and length: give --video" in err
    code, err = run(str(mot), "--to", "mot", "--out", str(mot))
    assert code == 2 and "is the input" in err
    doc = _result_doc(pose_track, 150)
    (tmp_path / "result.json").write_text(json.dumps(doc))
    other = generate("default", 1, num_frames=10, width=320, height=192)
    video = write_scene(other, tmp_path / "other")["video"]
    code, err = run(
        str(tmp_path / "result.json"), "--to", "cvat", "--video", str(video), "--out", str(tmp_path / "b.xml")
    )
    assert code == 2 and "640x360 video, the video given is 320x192" in err
    (tmp_path / "empty").mkdir()
    code, err = run(str(tmp_path / "empty"), "--to", "cvat", "--out", str(tmp_path / "c.xml"))
    assert code == 2 and "frame size unknown" in err and "--video" in err
    (tmp_path / "coco.json").write_text(json.dumps({"images": [{"file_name": "x"}], "annotations": []}))
    code, err = run(str(tmp_path / "coco.json"), "--to", "mot", "--out", str(tmp_path / "d.txt"))
    assert code == 2 and "cannot be read as coco" in err
    assert not any((tmp_path / name).exists() for name in ("a.xml", "b.xml", "c.xml", "d.txt"))

    gt = tmp_path / "MOT17-02-gt.txt"  # MOT16+ ground truth: flag, class, visibility; class 3 is a car
    gt.write_text("".join(f"{f + 1},4,{10 + f},20,30,60,1,3,0.8\n" for f in range(20)))
    assert main(["convert", str(gt), "--to", "mot", "--out", str(tmp_path / "e.txt")]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["from"] == "mot-gt" and "read as MOT ground truth" in out.err
    odd = tmp_path / "odd.txt"  # not a number where a class would be: read as tracker results, no traceback
    odd.write_text("1,1,10,10,20,40,1,nan,1\n2,1,11,10,20,40,1,inf,1\n")
    assert main(["convert", str(odd), "--to", "mot", "--out", str(tmp_path / "f.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["from"] == "mot"
    assert load("mot_gt", gt).tracks[0].class_name == "car"
    doc["tracks"][0]["boxes"][5]["source"] = "from_the_future"  # type: ignore[index]
    doc["tracks"][0]["boxes"].reverse()  # type: ignore[union-attr]
    (tmp_path / "newer.json").write_text(json.dumps(doc))
    back = load("json", tmp_path / "newer.json").tracks[0]
    assert back.frames.tolist() == pose_track.frames.tolist() and int(back.boxes[5].source) == 0


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_ctrl_c_while_labelling_cancels_without_a_keyboard_interrupt() -> None:
    """The first Ctrl-C of `prelabel run` sets the run's cancel flag (read by a watcher thread, whatever thread the
    signal lands on) and raises nothing where the main thread happens to be; the handler is put back afterwards."""
    import signal
    import threading
    import time

    from prelabel.cli import _interrupts

    before = signal.getsignal(signal.SIGINT)
    cancel = threading.Event()
    with _interrupts(cancel):
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5.0
        while not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)  # a KeyboardInterrupt would surface here
    assert cancel.is_set()
    assert signal.getsignal(signal.SIGINT) is before


def test_run_says_once_what_every_video_would_fail_on(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt stage, an option out of range or an unknown model: one usage error before any work, not one
    failure per video."""
    for bad in (["--stages", "detect,trak"], ["--conf", "1.5"], ["--detector", "yolo-nope"],
                ["--pose-model", "nope-pose"], ["--action-model", "nope-actions"]):  # fmt: skip
        argv = ["run", str(clip), str(clip.with_name("other.mp4")), "--out", str(tmp_path / "o"), "--quiet", *bad]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "videos failed" not in err, err
    assert not (tmp_path / "o").exists()


def test_serve_takes_the_job_limits(tmp_path: Path) -> None:
    """The README names max_queued_jobs, but serve had no option for it (nor for the job workers)."""
    from prelabel.cli import build_parser, build_settings

    args = build_parser().parse_args(["serve", "--max-queued-jobs", "3", "--job-workers", "2"])
    settings = build_settings(args)
    assert (settings.max_queued_jobs, settings.job_workers) == (3, 2)
    assert main(["serve", "--max-queued-jobs", "0", "--data-dir", str(tmp_path / "d")]) == 2


def test_interpolate_keeps_one_labels_frames_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each label has its own guided method, and each kept up to 256 decoded frames to the end of the run (115 MB a
    label at 768x576; a reviewer). Moving to another label's track frees the others' frames."""
    from prelabel.formats import Annotations, export
    from prelabel.interpolate.guided import GuidedMethod
    from prelabel.synthetic import write_scene

    scene = generate("fast-motion", 3, num_frames=41)
    video = write_scene(scene, tmp_path / "clip")["video"]
    tracks = [next(t for t in scene.tracks if t.class_name == c and len(t) > 4) for c in ("person", "ball")]
    ann = Annotations(info=scene.info, tracks=tracks, labels=("person", "ball"), ts_ms=scene.ts_ms)
    sparse = tmp_path / "keyframes.xml"
    export(ann, "cvat", sparse, keyframe_reducer=lambda t: [int(t.frames[0]), int(t.frames[-1])])
    held: list[int] = []
    real = GuidedMethod.interpolate_run

    def spy(self: GuidedMethod, run):  # type: ignore[no-untyped-def]
        out = real(self, run)
        held.append(sum(len(m._gray) > 0 for m in objects))
        return out

    objects: list[GuidedMethod] = []
    real_init = GuidedMethod.__post_init__

    def track_init(self: GuidedMethod) -> None:
        real_init(self)
        objects.append(self)

    monkeypatch.setattr(GuidedMethod, "__post_init__", track_init)
    monkeypatch.setattr(GuidedMethod, "interpolate_run", spy)
    out = tmp_path / "filled.xml"
    assert main(["interpolate", str(sparse), "--video", str(video), "--method", "guided", "--out", str(out)]) == 0
    assert len(objects) >= 2 and held and max(held) == 1, (len(objects), held)


def test_interpolate_again_after_corrections_refills_the_keyframes_it_added(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The correction loop: keyframes -> prelabel fills (naming the keyframes it added) -> the annotator corrects
    frames in CVAT and exports -> ``--previous`` fills again from the annotator's keyframes and corrections alone, as
    if prelabel's earlier keyframes had never been there (left in, they pin the old fill around each correction)."""
    import xml.etree.ElementTree as ET

    from prelabel.formats import load
    from prelabel.formats.cvat import ADDED_MARK

    def box_xml(frame: int, x: float, y: float) -> str:
        return (f'<box frame="{frame}" keyframe="1" outside="0" occluded="0" xtl="{x:.2f}" ytl="{y:.2f}" '
                f'xbr="{x + 40:.2f}" ybr="{y + 80:.2f}" z_order="0"/>')  # fmt: skip

    def path(f: int) -> tuple[float, float]:  # a curve that linear interpolation between the keyframes misses
        return 20 + 6.0 * f, 40 + 0.12 * (f - 30) ** 2

    def task(shapes: str) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>61</size>'
            "<original_size><width>640</width><height>360</height></original_size></task></meta>"
            f'<track id="0" label="car" source="manual">{shapes}</track></annotations>'
        )

    sparse = tmp_path / "sparse.xml"
    sparse.write_text(task("".join(box_xml(f, *path(f)) for f in (0, 20, 40, 60))))
    filled = tmp_path / "filled.xml"
    assert main(["interpolate", str(sparse), "--method", "kalman", "--out", str(filled)]) == 0
    assert ADDED_MARK in filled.read_text()
    added = sorted(int(b.get("frame", "")) for b in ET.parse(filled).getroot().iter("box"))
    added = [f for f in added if f not in (0, 20, 40, 60)]
    assert len(added) >= 3, added
    # In CVAT: the annotator moves one keyframe prelabel added and keys frame 47 (CVAT drops comments on export).
    moved, new = added[len(added) // 2], 47
    corrected_shapes = []
    for b in ET.parse(filled).getroot().iter("box"):
        f = int(b.get("frame", ""))
        if f == moved:
            b.set("xtl", f"{float(b.get('xtl', '')) + 15:.2f}")
        corrected_shapes.append((f, ET.tostring(b, encoding="unicode")))
    if new not in dict(corrected_shapes):
        corrected_shapes.append((new, box_xml(new, path(new)[0] + 10, path(new)[1])))
    export = tmp_path / "export.xml"
    export.write_text(task("".join(x for _, x in sorted(corrected_shapes))))
    capsys.readouterr()
    again = tmp_path / "again.xml"
    assert main(["interpolate", str(export), "--method", "kalman", "--previous", str(filled), "--out", str(again)]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["previous"]["edited"] == 1 and report["previous"]["removed"] == len(added) - 1 - (new in added)
    assert f"{len(added) - 1 - (new in added)} keyframe(s) prelabel added there and left unchanged" in err
    assert report["tracks"][0]["keyframes"] == 6  # 0, 20, 40, 60, the moved one and frame 47
    # The same as filling the annotator's keyframes and corrections from scratch.
    own = {0: box_xml(0, *path(0)), 20: box_xml(20, *path(20)), 40: box_xml(40, *path(40)), 60: box_xml(60, *path(60))}
    own.update({f: x for f, x in corrected_shapes if f in (moved, new)})
    clean = tmp_path / "clean.xml"
    clean.write_text(task("".join(own[f] for f in sorted(own))))
    assert main(["interpolate", str(clean), "--method", "kalman", "--out", str(tmp_path / "ref.xml")]) == 0
    ref, got = load("cvat", tmp_path / "ref.xml").tracks[0], load("cvat", again).tracks[0]
    np.testing.assert_allclose([b.xyxy for b in got.boxes], [b.xyxy for b in ref.boxes], atol=0.011)
    # Without --previous the old keyframes stay and pin the fill: it differs.
    assert main(["interpolate", str(export), "--method", "kalman", "--out", str(tmp_path / "pinned.xml")]) == 0
    pinned = load("cvat", tmp_path / "pinned.xml").tracks[0]
    assert np.abs(np.array([b.xyxy for b in pinned.boxes]) - [b.xyxy for b in ref.boxes]).max() > 1.0
    # --previous is for CVAT files prelabel wrote.
    assert main(["interpolate", str(export), "--previous", str(sparse), "--out", str(tmp_path / "x.xml")]) == 2
    assert "names no keyframe prelabel added" in capsys.readouterr().err


def test_interpolate_again_after_a_task_of_several_jobs_made_keyframes_at_their_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Uploaded to a CVAT task of several jobs, each job stores its part of a track with CVAT's fill as a keyframe
    where the job starts and ends; the next export holds those keyframes (jobs of 20 frames overlapping by 5 here:
    15, 19, 30, 34, 45, 49). They held the old fill and pinned the new one around every job bound; --previous now fills
    them again. A track exported as one part per job (jobs that do not overlap) is joined again (before, only the first
    part matched the previous track and the others kept prelabel's keyframes as the annotator's)."""
    import xml.etree.ElementTree as ET

    from prelabel.formats import load

    def box_xml(frame: int, xyxy: Any, outside: int = 0) -> str:
        x0, y0, x1, y1 = (float(v) for v in xyxy)
        return (f'<box frame="{frame}" keyframe="1" outside="{outside}" occluded="0" xtl="{x0:.2f}" ytl="{y0:.2f}" '
                f'xbr="{x1:.2f}" ybr="{y1:.2f}" z_order="0"/>')  # fmt: skip

    def path(f: int) -> tuple[float, float, float, float]:
        x, y = 20 + 6.0 * f, 40 + 0.12 * (f - 30) ** 2
        return x, y, x + 40, y + 80

    jobs = ((0, 19), (15, 34), (30, 49), (45, 60))

    def task(tracks: list[str]) -> str:
        segments = "".join(f"<segment><id>{i}</id><start>{a}</start><stop>{b}</stop></segment>"
                           for i, (a, b) in enumerate(jobs))  # fmt: skip
        return (
            '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>61</size>'
            f"<overlap>5</overlap><segments>{segments}</segments>"
            "<original_size><width>640</width><height>360</height></original_size></task></meta>"
            + "".join(f'<track id="{i}" label="car" source="manual">{t}</track>' for i, t in enumerate(tracks))
            + "</annotations>"
        )

    sparse = tmp_path / "sparse.xml"
    sparse.write_text(task(["".join(box_xml(f, path(f)) for f in (0, 20, 40, 60))]))
    filled = tmp_path / "filled.xml"
    assert main(["interpolate", str(sparse), "--method", "kalman", "--out", str(filled)]) == 0
    shown = load("cvat", filled).tracks[0]  # what CVAT shows of it
    kept = {int(b.get("frame", "")): ET.tostring(b, encoding="unicode") for b in ET.parse(filled).getroot().iter("box")}
    added = sorted(set(kept) - {0, 20, 40, 60})
    bounds = [f for f in (15, 19, 30, 34, 45, 49) if f not in kept]
    assert bounds, kept
    # CVAT's export after the upload: its keyframes at the job bounds, and the annotator's correction at frame 47.
    moved = {47: box_xml(47, np.add(path(47), [12, 0, 12, 0]))}
    export = tmp_path / "export.xml"
    export.write_text(task(["".join({**kept, **{f: box_xml(f, shown.at(f).xyxy) for f in bounds}, **moved}[f]
                                    for f in sorted({*kept, *bounds, 47}))]))  # fmt: skip
    capsys.readouterr()
    again = tmp_path / "again.xml"
    assert main(["interpolate", str(export), "--method", "kalman", "--previous", str(filled), "--out", str(again)]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["previous"]["sliced"] == len(bounds) and report["previous"]["removed"] == len(added) - (47 in added)
    assert f"{len(bounds)} keyframe(s) CVAT made where its jobs start and end" in err
    assert report["tracks"][0]["keyframes"] == 5  # 0, 20, 40, 60 and the correction at 47
    clean = tmp_path / "clean.xml"
    clean.write_text(task(["".join({**{f: box_xml(f, path(f)) for f in (0, 20, 40, 60)}, **moved}[f]
                                   for f in (0, 20, 40, 47, 60))]))  # fmt: skip
    assert main(["interpolate", str(clean), "--method", "kalman", "--out", str(tmp_path / "ref.xml")]) == 0
    ref, got = load("cvat", tmp_path / "ref.xml").tracks[0], load("cvat", again).tracks[0]
    np.testing.assert_allclose([b.xyxy for b in got.boxes], [b.xyxy for b in ref.boxes], atol=0.011)
    # Jobs without overlap: one part per job, each ending hidden where the next starts.
    jobs = ((0, 29), (30, 60))
    parts = [
        "".join(kept[f] for f in sorted(kept) if f < 29) + box_xml(29, shown.at(29).xyxy) + box_xml(30, path(30), 1),
        box_xml(30, shown.at(30).xyxy) + "".join(kept[f] for f in sorted(kept) if f > 30),
    ]
    split = tmp_path / "split.xml"
    split.write_text(task(parts))
    capsys.readouterr()
    assert main(["interpolate", str(split), "--method", "kalman", "--previous", str(filled), "--out", str(again)]) == 0
    previous = json.loads(capsys.readouterr().out)["previous"]
    assert previous["tracks"] == 2 and previous["unmatched"] == 0 and previous["joined"] == 1
    assert previous["removed"] == len(added) and previous["sliced"] == 1  # prelabel's keyframes, CVAT's at 29
    # One track again, filled from the annotator's keyframes alone: as the first time.
    assert len(ET.parse(again).getroot().findall("track")) == 1
    got, first = load("cvat", again).tracks[0], load("cvat", filled).tracks[0]
    np.testing.assert_allclose([b.xyxy for b in got.boxes], [b.xyxy for b in first.boxes], atol=0.011)


def test_interpolate_again_joins_the_skeleton_parts_of_a_task_of_several_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CVAT never joins the parts of a skeleton track that jobs exported apart, even where they overlap: the first part
    hides from the frame after its job's last, the second starts on its job's first frame with CVAT's fill. --previous
    joins them again and fills the track as one, as the first time."""
    import xml.etree.ElementTree as ET

    from prelabel.formats import load
    from prelabel.types import COCO17_KEYPOINTS

    def skeleton_xml(frame: int, kp: Any, outside: int = 0) -> str:
        pts = "".join(
            f'<points label="{n}" keyframe="1" outside="{outside}" occluded="0" points="{x:.2f},{y:.2f}"/>'
            for n, (x, y) in zip(COCO17_KEYPOINTS, (tuple(p[:2]) for p in kp), strict=True)
        )
        return f'<skeleton frame="{frame}" keyframe="1" outside="0" z_order="0">{pts}</skeleton>'

    def pose(f: int) -> Any:
        return [(100 + 5.0 * f + 3 * k + 0.1 * (f - 20) ** 2, 60 + 6 * k) for k in range(17)]

    def task(tracks: list[str], segments: str = "") -> str:
        return (
            '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>41</size>'
            f"<overlap>5</overlap>{segments}"
            "<original_size><width>640</width><height>360</height></original_size></task></meta>"
            + "".join(
                f'<track id="{i}" label="person-skeleton" source="manual">{t}</track>' for i, t in enumerate(tracks)
            )
            + "</annotations>"
        )

    sparse = tmp_path / "sparse.xml"
    sparse.write_text(task(["".join(skeleton_xml(f, pose(f)) for f in (0, 20, 40))]))
    filled = tmp_path / "filled.xml"
    assert main(["interpolate", str(sparse), "--method", "kalman", "--out", str(filled)]) == 0
    shown = load("cvat", filled).tracks[0]
    kept = {
        int(s.get("frame", "")): ET.tostring(s, encoding="unicode") for s in ET.parse(filled).getroot().iter("skeleton")
    }

    def fill(f: int) -> str:
        return kept.get(f) or skeleton_xml(f, shown.at(f).skeleton.keypoints)  # type: ignore[union-attr]

    # Jobs [0, 24] and [20, 40]: the first part ends hidden at 25, the second starts at 20.
    segments = "<segments><segment><id>1</id><start>0</start><stop>24</stop></segment>"
    segments += "<segment><id>2</id><start>20</start><stop>40</stop></segment></segments>"
    first = "".join(fill(f) for f in sorted({*(f for f in kept if f <= 24), 24})) + skeleton_xml(25, pose(25), 1)
    second = "".join(fill(f) for f in sorted({20, *(f for f in kept if f >= 20)}))
    export = tmp_path / "export.xml"
    export.write_text(task([first, second], segments))
    capsys.readouterr()
    again = tmp_path / "again.xml"
    assert main(["interpolate", str(export), "--method", "kalman", "--previous", str(filled), "--out", str(again)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["previous"]["joined"] == 1 and len(report["tracks"]) == 1
    assert len(ET.parse(again).getroot().findall("track")) == 1
    got = load("cvat", again).tracks[0]
    assert got.frames.tolist() == list(range(41))
    np.testing.assert_allclose(
        [b.skeleton.keypoints for b in got.boxes],  # type: ignore[union-attr]
        [b.skeleton.keypoints for b in shown.boxes],  # type: ignore[union-attr]
        atol=0.011,
    )


@pytest.mark.parametrize("with_box", [False, True])
def test_skeleton_points_cvat_wrote_without_keying_them_follow_the_fill(
    with_box: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At frame 20 the annotator keyed the nose alone; CVAT wrote the other 16 points there too, unkeyed
    (keyframe="0"), 30 px off (fill of keyframes since taken out, as in the --previous loop). They take the fill's
    positions: the person, moving 4 px a frame, is filled through them; the nose stays where it was keyed. The same
    with the skeleton grouped with a box track keyed on the same frames."""
    import xml.etree.ElementTree as ET

    from prelabel.types import COCO17_KEYPOINTS

    points = "".join(
        f'<points label="{name}" keyframe="{int(k == 0)}" outside="0" occluded="0" '
        f'points="{185.0 if k == 0 else 100 + 110 + 3 * k:.2f},{50 + 6 * k:.2f}"/>'
        for k, name in enumerate(COCO17_KEYPOINTS)
    )  # the nose keyed 5 px off the line; the rest written 30 px off, unkeyed
    partly = f'<skeleton frame="20" keyframe="1" outside="0" z_order="0">{points}</skeleton>'
    src = tmp_path / "partly.xml"
    src.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>60</size>'
        "<original_size><width>640</width><height>360</height></original_size></task></meta>"
        + (
            '<track id="2" label="person" source="manual" group_id="7">'
            + "".join(
                f'<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="{95 + 4 * f}" ytl="45" '
                f'xbr="{155 + 4 * f}" ybr="150" z_order="0"></box>'
                for f in (0, 20, 40)
            )
            + "</track>"
            if with_box
            else ""
        )
        + '<track id="3" label="person-skeleton" source="manual"'
        + (' group_id="7">' if with_box else ">")
        + _skeleton_xml(0, 0.0)
        + partly
        + _skeleton_xml(40, 160.0)
        + "</track></annotations>"
    )
    out = tmp_path / "filled.xml"
    assert main(["interpolate", str(src), "--method", "kalman", "--every-frame", "--out", str(out)]) == 0
    capsys.readouterr()
    skeleton_track = next(t for t in ET.parse(out).getroot().findall("track") if t.find("skeleton") is not None)
    shapes = {int(s.get("frame")): s for s in skeleton_track}
    for f in (10, 30):
        pts = {p.get("label"): [float(v) for v in p.get("points").split(",")] for p in shapes[f].findall("points")}
        for k, name in enumerate(COCO17_KEYPOINTS):
            if name != "nose":
                assert pts[name][0] == pytest.approx(100 + 4 * f + 3 * k, abs=0.6), (f, name, pts[name])
    assert shapes[20].find("points").get("points") == "185.00,50.00"  # the keyed nose, as the annotator left it
    # Compressed (the default), the frames next to 20 are keyed too: CVAT drops the unkeyed points there on import
    # and interpolates them across frame 20, from 19 to 21, so they stay on the fill.
    compressed = tmp_path / "compressed.xml"
    assert main(["interpolate", str(src), "--method", "kalman", "--out", str(compressed)]) == 0
    capsys.readouterr()
    track = next(t for t in ET.parse(compressed).getroot().findall("track") if t.find("skeleton") is not None)
    assert {19, 20, 21} <= {int(sh.get("frame")) for sh in track}
