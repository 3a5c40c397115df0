"""benchmarks/interpolation.py on a user's own MOTChallenge ground truth and video (no shared data)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from benchmark_loader import load_benchmark

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("interpolation")


@pytest.fixture()
def own_data(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 30-frame clip of a square moving at constant speed, its ground truth (1-based frames) and detections."""
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    rows, dets = [], []
    for f in range(30):
        img = np.full((64, 96, 3), 40, np.uint8)
        x = 5 + 2 * f
        img[20:40, x : x + 12] = 220
        writer.write(img)
        rows.append(f"{f + 1},7,{x},20,12,20,1,1,1")
        dets.append(f"{f + 1},-1,{x + 0.5},20.5,12,20,{-2 + 0.1 * f:.2f}")  # log-odds scores, as some detectors write
    writer.release()
    gt = tmp_path / "gt.txt"
    gt.write_text("\n".join(rows) + "\n")
    det = tmp_path / "det.txt"
    det.write_text("\n".join(dets) + "\n")
    return gt, video, det


def test_own_data_only(bench: ModuleType, own_data: tuple[Path, Path, Path], tmp_path: Path) -> None:
    gt, video, det = own_data
    out = tmp_path / "res"
    data = ["--mot-gt", str(gt), "--video", str(video), "--dets", str(det), "--no-pets", "--no-fast"]
    bench.main([*data, "--no-effort", "--methods", "spline", "linear", "--ks", "2", "5", "--out", str(out)])
    results = json.loads((out / "interpolation.json").read_text(), parse_constant=pytest.fail)  # no bare NaN
    assert list(results["scenes"]) == ["custom"]
    for method in ("linear", "spline"):  # constant speed: both methods are exact between keyframes
        for k in ("2", "5"):
            assert results["scenes"]["custom"][method][k]["all"]["mean_iou"] == pytest.approx(1.0, abs=1e-6)
    assert results["detector_ceiling_mean_iou"]["custom"] == pytest.approx(
        11.5 * 19.5 / (2 * 12 * 20 - 11.5 * 19.5), abs=1e-6
    )
    md = (out / "interpolation.md").read_text()
    assert str(gt) in md and str(video) in md and str(det) in md and "methods spline linear; k 2 5" in md
    assert "not held out" not in md  # PETS09 was not measured
    assert (out / "interpolation_error_vs_k.png").stat().st_size > 0


def test_report_without_linear(bench: ModuleType, own_data: tuple[Path, Path, Path], tmp_path: Path) -> None:
    gt, video, _ = own_data
    out = tmp_path / "res"
    data = ["--mot-gt", str(gt), "--video", str(video), "--no-pets", "--no-fast"]
    bench.main([*data, "--methods", "spline", "--ks", "5", "--effort-spans", "1", "--out", str(out)])
    md = (out / "interpolation.md").read_text()
    assert "| custom | spline | suggested | 2 | - |" in md  # two keyframes suffice; no linear to compare with


def test_ground_truth_without_its_video(
    bench: ModuleType, own_data: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MOTChallenge ground truth without frames (as MOT15's sequences come): --mot-gt needed --video; now the
    geometric methods and auto run, guided is left out with a note, and a seqinfo.ini one folder up gives the frame
    size (boxes off it are not scored) and length (a frame past it is an error)."""
    gt, _, det = own_data
    seq = tmp_path / "SEQ-1"
    (seq / "gt").mkdir(parents=True)
    rows = gt.read_text().splitlines()
    rows += [f"{f},8,200,20,12,20,1,1,1" for f in (1, 2, 3)]  # wholly right of a 96 px frame: not scored
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ-1\nimWidth=96\nimHeight=64\nseqLength=30\nframeRate=10\n")
    out = tmp_path / "res"
    argv = ["--mot-gt", str(seq / "gt" / "gt.txt"), "--no-pets", "--no-fast", "--ks", "5", "--effort-spans", "1"]
    bench.main([*argv, "--methods", "linear", "kalman", "guided", "auto", "--out", str(out)])
    doc = json.loads((out / "interpolation.json").read_text())
    assert sorted(doc["scenes"]["custom"]) == ["auto", "kalman", "linear"]
    assert doc["scenes"]["custom"]["linear"]["5"]["all"]["mean_iou"] == pytest.approx(1.0, abs=1e-6)
    assert sorted(doc["keyframes_needed"]["custom"]) == ["auto", "kalman", "linear"]
    md = (out / "interpolation.md").read_text()
    assert "keyframes needed (linear, kalman, auto): the first span of each scene" in md  # guided was not measured
    assert "Columns: **frames**" in md and "| linear | 5 | 23 | 1.000 |" in md  # 30 frames less 7 keyframes
    notes = " ".join(doc["notes"])
    assert "without a video: guided and guided-frames are left out" in notes
    assert "frame size 96x64 and length 30 frames from its seqinfo.ini" in notes
    assert "3 ground-truth boxes lie wholly outside" in notes
    assert "guided equals guided-frames" not in notes
    capsys.readouterr()

    def refused(*extra: str) -> str:
        with pytest.raises(SystemExit) as exc:
            bench.main([*argv, *extra, "--out", str(out)])
        assert exc.value.code == 2
        return capsys.readouterr().err

    assert "guided needs a video, and no scene has one" in refused("--methods", "guided")  # nothing to run on
    ini = seq / "seqinfo.ini"
    ini.write_text("[Sequence]\nimWidth=96\nimHeight=64\nseqLength=29\nframeRate=10\n")
    assert "past the 29 frames of its seqinfo.ini" in refused()
    assert "--dets needs --video" in refused("--dets", str(det))
    # Ground truth that does not fit the frame is refused, not scored on what is left: width and height swapped
    # (most boxes wholly outside), and x2,y2 written where MOTChallenge has w,h (boxes reaching far past the edges).
    ini.write_text("[Sequence]\nimWidth=64\nimHeight=96\nseqLength=30\nframeRate=10\n")
    (seq / "gt" / "gt.txt").write_text("".join(f"{f + 1},7,{70 + f},20,12,20,1,1,1\n" for f in range(30)))
    assert "of its boxes lie wholly outside the 64x96 frame" in refused()
    ini.write_text("[Sequence]\nimWidth=96\nimHeight=64\nseqLength=30\nframeRate=10\n")
    (seq / "gt" / "gt.txt").write_text("".join(f"{f + 1},7,{5 + 2 * f},20,{17 + 2 * f},40,1,1,1\n" for f in range(30)))
    err = refused()
    assert "reach past the edges of the 96x64 frame" in err and "x2,y2 written for w,h" in err
    # Boxes that legitimately reach past an edge (a person the frame cuts, drawn whole) are scored.
    cut = [f"{f + 1},7,{40 + f},30,12,50,1,1,1" for f in range(30)]  # feet below the 64-px frame throughout
    (seq / "gt" / "gt.txt").write_text("\n".join(cut) + "\n")
    bench.main([*argv, "--methods", "linear", "--no-effort", "--out", str(out)])
    doc = json.loads((out / "interpolation.json").read_text())
    assert doc["scenes"]["custom"]["linear"]["5"]["all"]["mean_iou"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "data" / "mot15" / "KITTI-17" / "gt" / "gt.txt").is_file(),
    reason="MOT15 ground truth absent from ../shared/data",
)
def test_mot15_sequences_measure_the_geometric_methods(bench: ModuleType, tmp_path: Path) -> None:
    """--mot15 adds the shared MOT15 sequences (real trajectories no default was chosen on), each a scene of its own."""
    out = tmp_path / "res"
    argv = ["--mot15", "--no-pets", "--no-fast", "--no-effort", "--ks", "20", "--methods", "linear", "auto"]
    bench.main([*argv, "--out", str(out)])
    doc = json.loads((out / "interpolation.json").read_text())
    assert list(doc["scenes"]) == ["mot15/ADL-Rundle-6", "mot15/ETH-Sunnyday", "mot15/KITTI-17"]
    for per_method in doc["scenes"].values():
        assert sorted(per_method) == ["auto", "linear"]
        assert 0.5 < per_method["linear"]["20"]["all"]["mean_iou"] < 1.0
    assert "mot15/KITTI-17: ground truth" in " ".join(doc["notes"])


def _garbage(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 64)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda gt, video: (gt.write_text("frame,id,x,y,w,h\n\n0,7,5,20,12,20\n1,7,7,20,12,20\n"), video),
            "line 3: frame 0",
        ),
        (lambda gt, video: (gt.write_text("1,7,5,20,12,2O\n2,7,7,20,12,20\n"), video), "line 1: not numbers"),
        (lambda gt, video: (gt.write_text("1,7,5,20,12,20\n2,7,nan,20,12,20\n"), video), "line 2: NaN"),
        (lambda gt, video: (gt.write_text("31,7,5,20,12,20\n32,7,7,20,12,20\n33,7,9,20,12,20\n"), video), "past the"),
        (lambda gt, video: (gt.write_text("1,7,5,20,12,20\n2,8,7,20,12,20\n"), video), "3 consecutive frames"),
        (lambda gt, video: (gt.write_text(""), video), "no rows"),
        (lambda gt, video: (gt.write_text("1;7;5;20;12;20\n2;7;5;20;12;20\n"), video), "line 2: not numbers"),
        (lambda gt, video: (None, video.with_name("absent.mp4")), "no such file"),
        (lambda gt, video: (None, _garbage(video.with_name("bad.mp4"))), "no frame decodes"),
        (lambda gt, video: (None, video.parent), "is a folder: give a video file"),
        (
            lambda gt, video: (
                gt.with_name("seqinfo.ini").write_text("[Sequence]\nimWidth=1280\nimHeight=720\n"),
                video,
            ),
            "says 1280x720 frames, the video",
        ),
    ],
)
def test_bad_input_is_one_line(
    bench: ModuleType,
    own_data: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change,
    message,
) -> None:
    gt, video, _ = own_data
    _, video = change(gt, video)
    with pytest.raises(SystemExit) as exc:
        bench.main(["--mot-gt", str(gt), "--video", str(video), "--no-pets", "--no-fast", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_ninth_column_that_is_no_visibility_is_refused(bench: ModuleType, own_data: tuple[Path, Path, Path]) -> None:
    """MOT15 files keep world coordinates in the 9th column: --min-visibility read them as visibilities and left
    most boxes unscored without a word."""
    gt, video, _ = own_data
    gt.write_text("1,7,5,20,12,20,1,-4.2,3\n2,7,7,20,12,20,1,1.5,0.5\n3,7,9,20,12,20,1,1,1\n")
    with pytest.raises(bench.InputError, match=r"holds 3 \(MOT15 files keep world coordinates there\)"):
        bench.custom_scene(gt, video, None, min_visibility=0.5)
    assert len(bench.custom_scene(gt, video, None).spans) == 1  # without --min-visibility the column is not read


def test_an_out_that_cannot_be_a_folder_is_refused_before_any_work(
    bench: ModuleType, own_data: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file named as --out failed with a traceback once every method had run."""
    gt, _, _ = own_data
    taken = tmp_path / "afile"
    taken.write_text("")
    with pytest.raises(SystemExit) as exc:
        bench.main(["--mot-gt", str(gt), "--no-pets", "--no-fast", "--methods", "linear", "--out", str(taken)])
    assert exc.value.code == 2
    err = capsys.readouterr()
    assert "cannot make the results folder" in err.err and "linear" not in err.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ks", "1"], "expected 2 or more"),
        (["--effort-spans", "0"], "expected 1 or more"),
        (["--methods", "linaer"], "invalid choice: 'linaer'"),
        (["--dets", "det.txt"], "go with --mot-gt"),
        ([], "nothing to measure"),
    ],
)
def test_bad_options(bench: ModuleType, args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main([*args, "--no-pets", "--no-fast"])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_detection_scores_keep_their_order(bench: ModuleType, own_data: tuple[Path, Path, Path]) -> None:
    _, _, det = own_data
    dets = bench.load_dets(det)
    scores = np.array([dets[f].scores[0] for f in range(30)])
    assert scores.min() > 0.0 and scores.max() <= 1.0 and (np.diff(scores) > 0).all()


def test_detection_scores_that_say_nothing_are_taken_as_one(
    bench: ModuleType, own_data: tuple[Path, Path, Path]
) -> None:
    """A score column of -1 throughout (no score): every detection 1, not a ramp in file order; equal scores that
    need remapping keep one rank."""
    _, _, det = own_data
    rows = det.read_text().splitlines()
    det.write_text("\n".join(",".join([*r.split(",")[:6], "-1"]) for r in rows) + "\n")
    dets = bench.load_dets(det)
    assert all(float(dets[f].scores[0]) == 1.0 for f in range(30))
    det.write_text("\n".join(",".join([*r.split(",")[:6], "5" if i % 2 else "-3"]) for i, r in enumerate(rows)) + "\n")
    scores = np.array([float(bench.load_dets(det)[f].scores[0]) for f in range(30)])
    assert set(np.round(scores, 6)) == {0.5, 1.0}


def test_the_report_says_what_ran(bench: ModuleType, own_data: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """The command and version in the JSON; intervals sorted; spans too short for a keyframe inside them at some k,
    and guided without detections, named in the notes."""
    gt, video, _ = own_data
    out = tmp_path / "res"
    argv = ["--mot-gt", str(gt), "--video", str(video), "--no-pets", "--no-fast", "--methods", "linear", "guided",
            "--ks", "40", "5", "--no-effort", "--out", str(out)]  # fmt: skip
    bench.main(argv)
    doc = json.loads((out / "interpolation.json").read_text())
    assert doc["command"][1:] == argv[:-2] and doc["prelabel_version"]  # without --out
    assert list(doc["scenes"]["custom"]["linear"]) == ["5", "40"]
    notes = " ".join(doc["notes"])
    assert "spans with no keyframe inside them" in notes and "k=40: 1 of 1" in notes and "k=5: 0 of 1" in notes
    assert "custom: no detections given, so guided equals guided-frames there" in notes


def test_a_box_not_to_evaluate_leaves_the_track_whole(bench: ModuleType, own_data: tuple[Path, Path, Path]) -> None:
    """A row flagged 0 in the middle of a track: one span still (its keyframes where they were), that frame out of
    the metrics. It split the track in two, and placed the keyframes again from the second piece's start."""
    gt, _, _ = own_data
    rows = gt.read_text().splitlines()
    rows[12] = ",".join([*rows[12].split(",")[:6], "0", "1", "1"])
    gt.write_text("\n".join(rows) + "\n")
    (span,) = bench.spans_from_mot(bench.load_mot(gt))
    assert span.frames.tolist() == list(range(30)) and span.scored().tolist() == [i != 12 for i in range(30)]


def test_boxes_wholly_outside_the_frame_are_left_out_and_named(
    bench: ModuleType, own_data: tuple[Path, Path, Path]
) -> None:
    """Ground-truth boxes wholly outside the frame (an object gone off-screen, still boxed): scored before without a
    word, against frames with nothing to see. Now out of the metrics, the track whole, and said in the notes."""
    gt, video, det = own_data
    rows = gt.read_text().splitlines()
    for i in (14, 15):  # to the right of the 96-px-wide frame
        rows[i] = ",".join([*rows[i].split(",")[:2], "100", "20", "12", "20", "1", "1", "1"])
    gt.write_text("\n".join(rows) + "\n")
    scene = bench.custom_scene(gt, video, det)
    (span,) = scene.spans
    assert span.frames.tolist() == list(range(30)) and span.scored().tolist() == [i not in (14, 15) for i in range(30)]
    assert any("2 ground-truth boxes lie wholly outside the 96x64 frame" in n for n in scene.notes)


def _rows(gt: Path) -> list[str]:
    return gt.read_text().splitlines()


def test_ground_truth_with_a_box_twice_or_bad_ids_is_refused(
    bench: ModuleType, own_data: tuple[Path, Path, Path]
) -> None:
    """A second box for a track's frame was dropped by row order (results changed with the file's sorting); ids of 0
    or -1 ended in a traceback; an id of 1.5 became 1. Each is now an error naming the line."""
    gt, video, _ = own_data
    rows = _rows(gt)
    gt.write_text("\n".join([*rows, "13,7,10,10,20,20,1,1,1"]) + "\n")
    with pytest.raises(bench.InputError, match=r"track 7 has frame 13 more than once \(lines 13, 31\)"):
        bench.load_mot(gt)
    for bad in ("0", "-1", "1.5"):
        gt.write_text("\n".join([rows[0].replace(",7,", f",{bad},", 1), *rows[1:]]) + "\n")
        with pytest.raises(bench.InputError, match=rf"line 1: id {bad}; ids are whole numbers from 1"):
            bench.load_mot(gt)
    code = None
    try:
        bench.main(["--mot-gt", str(gt), "--video", str(video), "--no-pets", "--no-fast", "--methods", "linear"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2  # a usage error, not a traceback


def test_encodings_comments_and_headers_are_read(bench: ModuleType, own_data: tuple[Path, Path, Path]) -> None:
    gt, _, _ = own_data
    rows = _rows(gt)
    expected = bench.read_mot_rows(gt, "gt")
    variants = {
        "bom": ("\ufeff" + "\n".join(rows)).encode("utf-8"),
        "utf16": "\n".join(rows).encode("utf-16"),
        "header with digits": ("frame id x1 y1 w h conf class vis (MOT17, 9 columns)\n" + "\n".join(rows)).encode(),
        "comments": ("# MOT17 gt v2, 9 columns\n" + "\n".join([*rows[:10], "# camera 2", *rows[10:]])).encode(),
    }
    for name, data in variants.items():
        gt.write_bytes(data)
        assert np.array_equal(bench.read_mot_rows(gt, "gt"), expected), name
    gt.write_text("\n".join([rows[0].replace(",20,", ",2O,", 1), *rows[1:]]) + "\n")  # a typo is not a header
    with pytest.raises(bench.InputError, match="line 1: not numbers"):
        bench.read_mot_rows(gt, "gt")


def test_what_the_loader_leaves_out_is_in_the_results(
    bench: ModuleType, own_data: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Boxes without area, short spans and rescaled scores went to the log only; the results did not say. A box
    without area splits its track (said so), and --min-visibility leaves out boxes seen too little."""
    gt, video, det = own_data
    rows = _rows(gt)
    rows[10] = ",".join([*rows[10].split(",")[:4], "0", "20", "1", "1", "1"])
    for i in (20, 21):
        rows[i] = ",".join([*rows[i].split(",")[:8], "0.1"])
    rows.append("40,9,1,1,5,5,1,1,1")  # a 1-frame track past the 30-frame video
    gt.write_text("\n".join(rows) + "\n")
    with pytest.raises(bench.InputError, match=r"track 9 has frame 40 \(1-based\), past the video's 30 frames"):
        bench.custom_scene(gt, video, det)
    gt.write_text("\n".join(rows[:-1]) + "\n")
    scene = bench.custom_scene(gt, video, det, min_visibility=0.5)
    assert [sp.frames.tolist() for sp in scene.spans] == [list(range(10)), list(range(11, 30))]
    assert [int((~sp.scored()).sum()) for sp in scene.spans] == [0, 2]
    out = tmp_path / "res"
    argv = ["--mot-gt", str(gt), "--video", str(video), "--dets", str(det), "--no-pets", "--no-fast", "--methods",
            "linear", "--ks", "5", "--no-effort", "--min-visibility", "0.5", "--out", str(out)]  # fmt: skip
    bench.main(argv)
    doc = json.loads((out / "interpolation.json").read_text())
    notes = "\n".join(doc["notes"])
    assert "1 boxes with w or h <= 0 left out; each splits its track there" in notes
    assert "2 boxes with visibility below 0.5 not scored" in notes
    assert "scores span -2 to 0.9; mapped onto [0, 1] by rank" in notes
    assert "2 boxes with visibility below 0.5" in (out / "interpolation.md").read_text()
    assert doc["scenes"]["custom"]["linear"]["5"]["all"]["n"] == 20  # 7 + 13 in-between frames scored: an integer


def test_a_track_wholly_outside_the_frame_is_no_span(bench: ModuleType, own_data: tuple[Path, Path, Path]) -> None:
    """It counted as a span (and its keyframes in 'keyframes needed') with nothing in it scored."""
    gt, video, _ = own_data
    gt.write_text(gt.read_text() + "".join(f"{f},8,200,20,12,20,1,1,1\n" for f in range(1, 11)))
    scene = bench.custom_scene(gt, video, None)
    assert [sp.track_id for sp in scene.spans] == [7]
    assert any("1 spans lie wholly outside the frame: left out" in n for n in scene.notes)


def test_another_generated_preset_is_measured_under_its_name(bench: ModuleType, tmp_path: Path) -> None:
    """``--preset actions``: everyday motion with skeletons, measured and named as that preset (not as fast-motion)."""
    out = tmp_path / "res"
    bench.main(["--preset", "actions", "--fast-seeds", "3", "--no-pets", "--no-detector", "--methods", "linear",
                "kalman", "--ks", "10", "--effort-spans", "1", "--out", str(out)])  # fmt: skip
    doc = json.loads((out / "interpolation.json").read_text())
    assert list(doc["scenes"]) == ["actions"]
    linear = doc["scenes"]["actions"]["linear"]["10"]
    assert 0.3 < linear["all"]["mean_iou"] <= 1.0 and 0.0 < linear["skeleton"]["pck05_limbs"] <= 1.0
    assert set(doc["keyframes_needed"]["actions"]) == {"linear", "kalman"}
    notes = " ".join(doc["notes"])
    assert "preset 'actions', seeds [3]" in notes and "limit on gaps at rest was checked on seeds 20-22" in notes
    assert "## actions" in (out / "interpolation.md").read_text()


def test_geometric_methods_run_on_the_keyframes_alone(bench: ModuleType) -> None:
    """A scene's detections go to guided and auto only: a geometric method's row measures the keyframes alone, not
    the pose estimates that :func:`interpolate_track` fuses into skeletons when it is given them."""
    from prelabel.interpolate import interpolate_track
    from prelabel.types import Detections

    scene = bench.synthetic_scenes("actions", [3])[0]
    span = next(sp for sp in scene.spans if sp.kp is not None and len(sp.frames) >= 25)
    # Pose "estimates" 6 px right of the truth on every frame of the span, confident, on a box like the truth's.
    dets = {}
    for i, f in enumerate(span.frames):
        kp = np.c_[span.kp[i] + [6.0, 0.0], np.full(17, 0.9)][None].astype(np.float32)
        dets[int(f)] = Detections(span.xyxy[i][None], np.array([0.9]), np.array([0]), ("person",), kp)
    scene.detections = dets
    kidx = bench.every_k(len(span.frames), 12)
    kfs = bench.keyframes_for(span, kidx)
    alone = interpolate_track(kfs, "kalman", track_id=span.track_id)
    with_dets = interpolate_track(kfs, "kalman", detections=dets, track_id=span.track_id)
    assert alone.keypoints is not None and with_dets.keypoints is not None
    assert not np.allclose(alone.keypoints, with_dets.keypoints)  # the estimates would move kalman's skeleton
    for method in ("linear", "spline", "kalman", "kalman-ca"):
        got = bench.method_call(method, scene, kfs, span.track_id, {})
        ref = interpolate_track(kfs, method, track_id=span.track_id)
        np.testing.assert_array_equal(got.keypoints, ref.keypoints)
        np.testing.assert_array_equal(got.xyxy, ref.xyxy)
    auto = bench.method_call("auto", scene, kfs, span.track_id, {})  # auto, as guided, gets them
    auto_alone = interpolate_track(kfs, "auto", video=scene.video, track_id=span.track_id)
    assert auto.keypoints is not None and auto_alone.keypoints is not None
    assert not np.allclose(auto.keypoints, auto_alone.keypoints)


def _scene_as_cvat(tmp_path: Path, keyframe_reducer: object) -> tuple[Path, Path]:
    """Generated scene ``actions`` seed 3 written as a CVAT for video 1.1 export (and its video)."""
    from prelabel.formats.cvat import CvatOptions, write_cvat
    from prelabel.formats.model import Annotations
    from prelabel.synthetic import generate

    sc = generate("actions", 3)
    ann = Annotations(sc.info, sc.tracks, labels=("person", "ball"))
    xml = write_cvat(ann, tmp_path / "gt.xml", CvatOptions(keyframe_reducer=keyframe_reducer))  # type: ignore[arg-type]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (sc.info.width, sc.info.height))
    for img in sc.frames:
        writer.write(img)
    writer.release()
    return xml, video


def test_cvat_ground_truth_keyed_on_every_frame_is_the_scene(bench: ModuleType, tmp_path: Path) -> None:
    """A CVAT export keyed on every frame reads back as the same spans as the scene it was written from: boxes and
    skeletons to CVAT's two decimals, every frame scored."""
    xml, video = _scene_as_cvat(tmp_path, None)
    got = bench.annotation_scene(xml, video, None)
    want = bench.synthetic_scenes("actions", [3])[0]
    assert got.video is not None and got.video.num_frames == want.video.num_frames
    key = {(sp.track_id, int(sp.frames[0])): sp for sp in want.spans}
    assert len(got.spans) == len(want.spans)
    for sp in got.spans:
        ref = key[(sp.track_id, int(sp.frames[0]))]
        np.testing.assert_array_equal(sp.frames, ref.frames)
        np.testing.assert_allclose(sp.xyxy, ref.xyxy, atol=0.006)
        assert sp.scored().all() and sp.box_allowed is not None and len(sp.box_allowed) == len(sp.frames)
        assert (sp.kp is None) == (ref.kp is None)
        if sp.kp is not None:
            assert sp.kp_present is not None and sp.kp_scored is not None
            np.testing.assert_array_equal(sp.kp_scored, sp.kp_present)  # every point shown is drawn
            np.testing.assert_array_equal(sp.kp_present, ref.kp_present)
            np.testing.assert_allclose(sp.kp[sp.kp_present], ref.kp[ref.kp_present], atol=0.006)
        assert bench.span_keyframes(sp, 7) == bench.every_k(len(sp.frames), 7)


def test_cvat_ground_truth_is_scored_on_its_own_keyframes(bench: ModuleType, tmp_path: Path) -> None:
    """Sparse keyframes (prelabel's own compression): CVAT's linear fill between them is not scored, and the
    benchmark's keyframes go on the export's keyframes; the report says so."""
    xml, video = _scene_as_cvat(tmp_path, "auto")
    scene = bench.annotation_scene(xml, video, None)
    ann_keys = {}
    from prelabel.formats.cvat import read_cvat

    for kt in read_cvat(xml).keyframe_tracks:
        ann_keys[kt.track_id] = {k.frame_idx for k in kt.keyframes if not k.outside and k.xyxy is not None}
    sparse = [sp for sp in scene.spans if sp.scored().sum() < len(sp.frames)]
    assert sparse, "compression left every frame a keyframe: nothing tested"
    for sp in scene.spans:
        keyed = np.isin(sp.frames, sorted(ann_keys[sp.track_id]))
        np.testing.assert_array_equal(sp.scored(), keyed)
        assert keyed[0] and keyed[-1]  # a span runs from a keyframe to a keyframe
        for k in (5, 10, 20):
            kidx = bench.span_keyframes(sp, k)
            assert kidx[0] == 0 and kidx[-1] == len(sp.frames) - 1
            boxed = [kf for kf in bench.keyframes_for(sp, kidx) if kf.xyxy is not None]
            assert sp.box_allowed is not None and len(boxed) >= 2
            assert {kf.frame_idx for kf in boxed} <= set(sp.frames[sp.box_allowed].tolist())
    out = tmp_path / "res"
    bench.main(["--cvat-gt", str(xml), "--no-pets", "--no-fast", "--methods", "linear", "kalman",
                "--ks", "10", "20", "--no-effort", "--out", str(out)])  # fmt: skip
    doc = json.loads((out / "interpolation.json").read_text())
    res = doc["scenes"]["custom"]["kalman"]["20"]
    assert 0.0 < res["all"]["mean_iou"] <= 1.0 and 0.0 <= res["skeleton"]["pck05_limbs"] <= 1.0
    assert "not on CVAT's fill" in " ".join(doc["notes"])


def test_cvat_ground_truth_input_errors(bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotations><track id='0' label='person'><box frame='x'/></track></annotations>")
    for argv, message in (
        (["--cvat-gt", str(bad)], "bad.xml: track 0 ('person')"),
        (["--cvat-gt", str(tmp_path / "none.xml")], "none.xml: no such file"),
        (["--cvat-gt", str(bad), "--mot-gt", str(bad)], "give one ground truth"),
    ):
        with pytest.raises(SystemExit) as exc:
            bench.main([*argv, "--no-pets", "--no-fast", "--out", str(tmp_path / "o")])
        assert exc.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert "error:" in last and message in last, last


def test_a_registry_model_guides_guided_on_your_own_video(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--detector`` runs a registry pose model on the user's video: guided then follows its people and skeletons
    (far above guided on frames alone on this clip), and the report names the model."""
    xml, video = _scene_as_cvat(tmp_path, None)
    out = tmp_path / "res"
    bench.main(["--cvat-gt", str(xml), "--video", str(video), "--detector", "prelabel-synth-pose", "--no-pets",
                "--no-fast", "--methods", "guided-frames", "guided", "--ks", "20", "--no-effort",
                "--out", str(out)])  # fmt: skip
    doc = json.loads((out / "interpolation.json").read_text())
    res = doc["scenes"]["custom"]
    assert res["guided"]["20"]["all"]["mean_iou"] > res["guided-frames"]["20"]["all"]["mean_iou"] + 0.05
    assert res["guided"]["20"]["skeleton"]["pck05_limbs"] > res["guided-frames"]["20"]["skeleton"]["pck05_limbs"]
    assert "prelabel-synth-pose run on the video" in " ".join(doc["notes"])
    for argv, message in (
        (["--detector", "no-such-model"], "--detector: "),
        (["--detector", "prelabel-synth-pose", "--dets", str(xml)], "--dets or --detector"),
    ):
        with pytest.raises(SystemExit) as exc:
            bench.main(["--cvat-gt", str(xml), "--video", str(video), *argv, "--no-pets", "--no-fast",
                        "--out", str(out)])  # fmt: skip
        assert exc.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert message in last, last
    with pytest.raises(SystemExit):
        bench.main(["--cvat-gt", str(xml), "--detector", "prelabel-synth-pose", "--no-pets", "--no-fast"])
    assert "--detector needs --video" in capsys.readouterr().err


_COCO = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
]  # fmt: skip


def _person_at(f: int) -> tuple[np.ndarray, np.ndarray]:
    """A person 40 x 120 px walking right 3 px a frame, and its 17 keypoints (a stick figure inside the box)."""
    x0 = 20.0 + 3 * f
    box = np.array([x0, 40.0, x0 + 40, 160.0])
    kp = np.stack([np.full(17, x0 + 20.0) + np.linspace(-15, 15, 17), np.linspace(50, 150, 17)], axis=1)
    return box, kp


def _grouped_xml(
    path: Path, box_frames: list[int], skel_frames: list[int], unkeyed: dict[int, set[str]], stale: float = 0.0
) -> Path:
    """A box track and a skeleton track of one person (group 1), keyed on their own frames, as CVAT exports them;
    ``unkeyed``: per skeleton frame, points written with keyframe="0" (CVAT's fill there), ``stale`` px right of
    the person's."""
    rows = ["<annotations><version>1.1</version><meta><task><size>60</size><original_size><width>320</width>"
            "<height>200</height></original_size></task></meta>"]  # fmt: skip
    rows.append('<track id="0" label="person" source="manual" group_id="1">')
    for f in box_frames:
        b = _person_at(f)[0]
        rows.append(f'<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="{b[0]:.2f}" ytl="{b[1]:.2f}" '
                    f'xbr="{b[2]:.2f}" ybr="{b[3]:.2f}" z_order="0"></box>')  # fmt: skip
    rows.append("</track>")
    rows.append('<track id="1" label="person-skeleton" source="manual" group_id="1">')
    for f in skel_frames:
        kp = _person_at(f)[1]
        rows.append(f'<skeleton frame="{f}" keyframe="1" z_order="0">')
        for name, (x, y) in zip(_COCO, kp, strict=True):
            key = "0" if name in unkeyed.get(f, set()) else "1"
            x += stale if key == "0" else 0.0
            rows.append(f'<points label="{name}" keyframe="{key}" outside="0" occluded="0" points="{x:.2f},{y:.2f}">'
                        "</points>")  # fmt: skip
        rows.append("</skeleton>")
    rows.append("</track></annotations>")
    path.write_text("\n".join(rows))
    return path


def test_cvat_ground_truth_keyed_apart_gives_boxes_and_skeletons_only_where_drawn(
    bench: ModuleType, tmp_path: Path
) -> None:
    """Boxes keyed every 4 frames, skeletons every 6, some points of one skeleton keyframe written with keyframe="0":
    the benchmark's keyframes are box keyframes, carrying a skeleton only where one was keyed; boxes are scored on box
    keyframes, keypoints on the skeleton keyframes that key them."""
    xml = _grouped_xml(tmp_path / "gt.xml", list(range(0, 49, 4)), list(range(0, 49, 6)), {12: {"left_wrist", "nose"}})
    scene = bench.annotation_scene(xml, None, None)
    (sp,) = scene.spans
    assert sp.frames[0] == 0 and sp.frames[-1] == 48
    np.testing.assert_array_equal(sp.frames[sp.box_allowed], np.arange(0, 49, 4))
    np.testing.assert_array_equal(sp.frames[sp.scored()], np.arange(0, 49, 4))
    assert sp.kp_scored is not None and sp.kp_allowed is not None
    np.testing.assert_array_equal(sp.frames[sp.kp_scored.any(axis=1)], np.arange(0, 49, 6))
    assert sp.kp_scored[12].sum() == 15 and not sp.kp_scored[12, [0, 9]].any()  # the two written unkeyed
    kfs = bench.keyframes_for(sp, bench.span_keyframes(sp, 10))
    assert all(kf.xyxy is not None and kf.frame_idx % 4 == 0 for kf in kfs)
    assert [kf.frame_idx for kf in kfs if kf.skeleton is not None] == [
        f for f in (kf.frame_idx for kf in kfs) if f % 6 == 0
    ]
    notes = " ".join(scene.notes)
    assert "13 box and 9 skeleton keyframes" in notes and "median 4 frames apart" in notes
    assert "4 of 9 skeleton keyframes lie on frames without a box keyframe" in notes
    # Motion at constant velocity: linear is exact wherever the truth is drawn. At k=10 the keyframes are frames 0,
    # 8, 20, 28, 40, 48 (skeletons on 0 and 48 only): boxes are scored on the 7 other box keyframes, skeletons on
    # the 7 skeleton keyframes left (the one on frame 12 on its 15 keyed points).
    out = tmp_path / "res"
    bench.main(["--cvat-gt", str(xml), "--no-pets", "--no-fast", "--methods", "linear", "--ks", "10",
                "--no-effort", "--out", str(out)])  # fmt: skip
    res = json.loads((out / "interpolation.json").read_text())["scenes"]["custom"]["linear"]["10"]
    assert res["all"]["n"] == 7 and res["all"]["mean_iou"] == pytest.approx(1.0, abs=1e-3)
    assert res["skeleton"]["n"] == 7 and res["skeleton"]["pck05"] == 1.0


def test_cvat_ground_truth_without_a_readable_object_or_with_a_short_video(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An object never shown and a skeleton whose points CVAT names "1".."17" are no spans (no traceback); a video
    shorter than the keyframes (the export without a stop_frame) is refused in one line; rotated boxes are named."""
    xml = _grouped_xml(tmp_path / "gt.xml", list(range(0, 41, 4)), [], {})
    text = xml.read_text().replace('<box frame="4" keyframe="1"', '<box frame="4" keyframe="1" rotation="30"')
    hidden = ('<track id="5" label="person" source="manual"><box frame="3" keyframe="1" outside="1" occluded="0" '
              'xtl="1" ytl="1" xbr="9" ybr="9" z_order="0"></box></track>'
              '<track id="6" label="person-skeleton" source="manual"><skeleton frame="2" keyframe="1" z_order="0">'
              '<points label="1" keyframe="1" outside="0" occluded="0" points="5,5"></points></skeleton>'
              '<skeleton frame="9" keyframe="1" z_order="0"><points label="1" keyframe="1" outside="0" occluded="0" '
              'points="7,5"></points></skeleton></track>')  # fmt: skip
    xml.write_text(text.replace("</annotations>", hidden + "</annotations>"))
    scene = bench.annotation_scene(xml, None, None)
    assert [sp.track_id for sp in scene.spans] == [1]
    two = _grouped_xml(tmp_path / "two.xml", [0, 10], [], {})  # both ends keyed by the benchmark: nothing to score
    with pytest.raises(bench.InputError, match="no object has a drawn frame between two keyframes"):
        bench.annotation_scene(two, None, None)
    assert "rotated boxes" in " ".join(scene.notes)
    video = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 200))
    for _ in range(30):
        writer.write(np.full((200, 320, 3), 90, np.uint8))
    writer.release()
    with pytest.raises(SystemExit) as exc:
        bench.main(["--cvat-gt", str(xml), "--video", str(video), "--no-pets", "--no-fast", "--out", str(tmp_path)])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "frame 40, past the video's 30 frames" in last, last


def test_cvat_ground_truth_points_written_unkeyed_do_not_pin_the_fill(bench: ModuleType, tmp_path: Path) -> None:
    """At a skeleton keyframe the benchmark gives (frame 12, k=12), 16 points are written unkeyed 30 px off: the
    methods fill through them as prelabel interpolate does, so linear stays exact on this constant-velocity clip."""
    names = set(_COCO) - {"nose"}
    xml = _grouped_xml(tmp_path / "gt.xml", list(range(0, 49, 4)), list(range(0, 49, 6)), {12: names}, stale=30.0)
    out = tmp_path / "res"
    bench.main(["--cvat-gt", str(xml), "--no-pets", "--no-fast", "--methods", "linear", "--ks", "12",
                "--no-effort", "--out", str(out)])  # fmt: skip
    res = json.loads((out / "interpolation.json").read_text())["scenes"]["custom"]["linear"]["12"]
    assert res["skeleton"]["n"] == 4 and res["skeleton"]["pck05"] == 1.0  # frames 6, 18, 30, 42
    (sp,) = bench.annotation_scene(xml, None, None).spans
    kfs = bench.keyframes_for(sp, bench.span_keyframes(sp, 12))
    pinned = bench.interpolate_track(kfs, "linear")  # the points as written
    assert pinned.keypoints is not None and abs(pinned.keypoints[6, 1, 0] - _person_at(6)[1][1, 0]) > 10


def test_label_studio_ground_truth_is_scored_on_its_keyframes(bench: ModuleType, tmp_path: Path) -> None:
    """A Label Studio export (the generated scene written as annotations with prelabel's compression): read like a
    CVAT export, scored on the frames it keys, with the same boxes as the CVAT export of the same scene."""
    from prelabel.formats.label_studio import LabelStudioOptions, write_label_studio
    from prelabel.formats.model import Annotations
    from prelabel.synthetic import generate

    sc = generate("actions", 3)
    ann = Annotations(sc.info, sc.tracks, labels=("person", "ball"))
    ls = write_label_studio(ann, tmp_path / "gt.json", LabelStudioOptions(as_annotations=True))
    xml, _ = _scene_as_cvat(tmp_path, "auto")
    got, cvat = bench.annotation_scene(ls, None, None, tool="labelstudio"), bench.annotation_scene(xml, None, None)
    assert got.spans and any(sp.scored().sum() < len(sp.frames) for sp in got.spans)  # sparse: fill not scored
    for sp in got.spans:
        ref = next(r for r in cvat.spans if r.track_id == sp.track_id and r.frames[0] <= sp.frames[0] <= r.frames[-1])
        lo = int(sp.frames[0] - ref.frames[0])
        truth = ref.xyxy[lo : lo + len(sp.frames)]
        np.testing.assert_allclose(sp.xyxy[sp.scored()], truth[sp.scored()], atol=0.05)  # percent rounding
    out = tmp_path / "res"
    bench.main(["--ls-gt", str(ls), "--no-pets", "--no-fast", "--methods", "linear", "--ks", "10", "--no-effort",
                "--out", str(out)])  # fmt: skip
    doc = json.loads((out / "interpolation.json").read_text())
    assert 0.0 < doc["scenes"]["custom"]["linear"]["10"]["all"]["mean_iou"] <= 1.0
    assert "Label Studio ground truth" in " ".join(doc["notes"])


def test_a_video_too_large_for_memory_is_read_from_its_file(
    bench: ModuleType, own_data: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every frame of a user's video was decoded into memory: 3 GB for 600 frames at 1080p, 90 GB for ten minutes
    at 30 fps. Past the budget the frames are read from the file, with the same results, and the report says so."""
    gt, video, det = own_data
    argv = ["--mot-gt", str(gt), "--video", str(video), "--dets", str(det), "--no-pets", "--no-fast", "--methods",
            "linear", "guided-frames", "guided", "--ks", "5", "--no-effort"]  # fmt: skip
    bench.main([*argv, "--out", str(tmp_path / "memory")])
    monkeypatch.setattr(bench, "MEMORY_FRAMES_BYTES", 1000)
    bench.main([*argv, "--out", str(tmp_path / "file")])
    got = {d: json.loads((tmp_path / d / "interpolation.json").read_text()) for d in ("memory", "file")}
    for m in ("linear", "guided"):
        a, b = (got[d]["scenes"]["custom"][m]["5"]["all"] for d in ("memory", "file"))
        assert a["mean_iou"] == pytest.approx(b["mean_iou"], abs=1e-6) and a["n"] == b["n"]
    assert got["file"]["frames_read_from_file"] == ["custom"] and got["memory"]["frames_read_from_file"] == []
    assert "read from the file as needed" in " ".join(got["file"]["notes"])
    md = (tmp_path / "file" / "interpolation.md").read_text()
    assert "on custom: " in md and "(frames read from the video file as needed)" in md
