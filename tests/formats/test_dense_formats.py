"""COCO, MOTChallenge and YOLO: exact round trips, the layouts other tools read, and clear errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import assert_tracks_equal, segment_keys

from prelabel.errors import InvalidInputError
from prelabel.formats import EXPORTERS, IMPORTERS, export, load
from prelabel.formats.coco import read_coco, write_coco
from prelabel.formats.model import Annotations
from prelabel.formats.mot import read_mot, read_mot_detections, write_mot
from prelabel.formats.yolo import read_yolo, write_yolo
from prelabel.jobs.results import zip_folder
from prelabel.types import COCO17_KEYPOINTS, VideoInfo


def test_coco_round_trip_is_exact(annotations: Annotations, tmp_path: Path) -> None:
    back = read_coco(write_coco(annotations, tmp_path / "c.json"))
    assert_tracks_equal(annotations, back, atol=1e-4, scores=True, kp_conf=True)
    assert segment_keys(back) == segment_keys(annotations)
    assert back.info == annotations.info
    np.testing.assert_allclose(back.ts_ms, annotations.ts_ms)  # type: ignore[arg-type]
    assert back.track(3).class_id == 2 and back.labels == annotations.labels


def test_coco_layout_is_read_by_pycocotools(annotations: Annotations, tmp_path: Path) -> None:
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval_mod = pytest.importorskip("pycocotools.cocoeval")
    path = write_coco(annotations, tmp_path / "c.json")
    doc = json.loads(path.read_text())
    assert len(doc["images"]) == 30 and doc["images"][12]["frame_id"] == 12
    person = next(c for c in doc["categories"] if c["name"] == "person")
    assert person["keypoints"] == list(COCO17_KEYPOINTS) and [16, 14] in person["skeleton"]
    row = next(a for a in doc["annotations"] if a["track_id"] == 1 and a["frame_idx"] == 0)
    assert row["image_id"] == 1 and row["num_keypoints"] == 16 and row["keypoints"][16 * 3 + 2] == 0
    gt = coco_mod.COCO(str(path))
    assert len(gt.getAnnIds()) == len(annotations.track(1)) + len(annotations.track(3))
    # the file evaluated against itself scores perfectly: boxes, keypoints and image ids line up
    dets = gt.loadRes([{**a, "score": 1.0} for a in doc["annotations"]])
    ev = cocoeval_mod.COCOeval(gt, dets, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_mot_round_trips(annotations: Annotations, tmp_path: Path) -> None:
    back = read_mot(write_mot(annotations, tmp_path / "res.txt"), annotations.info, ts_ms=annotations.ts_ms)
    # the results layout has no class column
    assert_tracks_equal(annotations, back, atol=1e-3, skeletons=False, scores=True, classes=False)
    first = (tmp_path / "res.txt").read_text().splitlines()[0].split(",")
    assert first[:2] == ["1", "1"] and first[7:] == ["-1", "-1", "-1"]  # frame 0 -> 1, tlwh, unused world coords
    annotations.tracks[1].class_name = "person"
    gt_path = write_mot(annotations, tmp_path / "gt.txt", gt=True)
    row = gt_path.read_text().splitlines()[0].split(",")
    assert len(row) == 9 and row[6:] == ["1", "1", "1"]  # flag, class pedestrian, visibility
    back = read_mot(gt_path, annotations.info, gt=True)
    assert_tracks_equal(annotations, back, atol=1e-3, skeletons=False)


def test_mot_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("1,1,10,10,5,5,0.9,-1,-1,-1\n2,1,10,x,5,5,0.9,-1,-1,-1\n")
    with pytest.raises(InvalidInputError, match="row 2"):
        read_mot(path)
    path.write_text("1,1,10,10,5,5,0.9,-1,-1,-1\n1,1,11,10,5,5,0.9,-1,-1,-1\n")
    with pytest.raises(InvalidInputError, match="row 2: id 1 already has a box on frame 1"):
        read_mot(path)
    path.write_text("1,1,10,10,5,5,0.9,-1,-1,-1\n2.5,1,11,10,5,5,0.9,-1,-1,-1\n")  # was read as frame 2
    with pytest.raises(InvalidInputError, match=r"row 2: frame 2\.5 and id 1, expected whole numbers"):
        read_mot(path)
    path.write_text("1,-1,10,10,5,5,0.9,-1,-1,-1\n")
    with pytest.raises(InvalidInputError, match="a detection file has no tracks"):
        read_mot(path)
    dets = read_mot_detections(path)
    np.testing.assert_allclose(dets[0].xyxy, [[10, 10, 15, 15]])


def test_reads_pets09_ground_truth(pets09_dir: Path) -> None:
    gt_file = pets09_dir / "gt" / "gt.txt"
    ann = read_mot(gt_file, gt=True)
    assert ann.info == VideoInfo(768, 576, 795, 7.0)  # from seqinfo.ini
    assert len(ann.tracks) == 19
    rows = [r.split(",") for r in gt_file.read_text().split()]
    kept = [r for r in rows if r[6] == "1"]
    assert sum(len(t) for t in ann.tracks) == len(kept) == 4476
    r = kept[0]
    box = ann.track(int(r[1])).at(int(r[0]) - 1)
    assert box is not None
    x, y, w, h = (float(v) for v in r[2:6])
    np.testing.assert_allclose(box.xyxy, [x, y, x + w, y + h], atol=1e-3)
    assert min(t.boxes[0].frame_idx for t in ann.tracks) >= 0 and max(t.boxes[-1].frame_idx for t in ann.tracks) < 795
    assert len(read_mot(gt_file, gt=True, keep_ignored=True).tracks[0]) >= len(ann.tracks[0])
    dets = read_mot_detections(pets09_dir / "det" / "det.txt")
    assert min(dets) == 0 and max(dets) == 794


def test_yolo_round_trip_is_exact(annotations: Annotations, tmp_path: Path) -> None:
    folder = write_yolo(annotations, tmp_path / "yolo")
    assert len(list(folder.glob("frame_*.txt"))) == 30
    assert (folder / "frame_000010.txt").read_text().count("\n") == 1  # track 1 is in its gap, track 3 is seen
    back = read_yolo(folder, ts_ms=annotations.ts_ms)
    assert_tracks_equal(annotations, back, atol=1e-3, scores=True, kp_conf=True)
    line = (folder / "frame_000000.txt").read_text().split()
    assert len(line) == 5 + 51 + 2 and line[0] == "0" and line[-1] == "1"
    cx = float(line[1])
    b = annotations.track(1).boxes[0].xyxy
    assert cx == pytest.approx((b[0] + b[2]) / 2 / 640, abs=1e-7)


def test_yolo_reads_the_zip_results_write(annotations: Annotations, tmp_path: Path) -> None:
    folder = write_yolo(annotations, tmp_path / "yolo")
    zip_folder(folder, tmp_path / "yolo.zip")  # what `prelabel run` and job downloads give
    back = read_yolo(tmp_path / "yolo.zip", ts_ms=annotations.ts_ms)
    assert_tracks_equal(annotations, back, atol=1e-3, scores=True, kp_conf=True)
    # The same folder zipped by hand: its files sit in a folder inside the zip.
    with zipfile.ZipFile(tmp_path / "nested.zip", "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"labels/{f.name}")
    assert_tracks_equal(annotations, read_yolo(tmp_path / "nested.zip", ts_ms=annotations.ts_ms), atol=1e-3)


def test_yolo_zip_bad_input(annotations: Annotations, tmp_path: Path) -> None:
    folder = write_yolo(annotations, tmp_path / "yolo")
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:
        for f in sorted(folder.glob("frame_*.txt")):
            zf.write(f, f"a/{f.name}")
            zf.write(f, f"b/{f.name}")
    with pytest.raises(InvalidInputError, match=r"two\.zip: label files in 2 folders \(a, b\)"):
        read_yolo(tmp_path / "two.zip")
    (tmp_path / "not.zip").write_bytes(b"PK but not a zip")
    with pytest.raises(InvalidInputError, match=r"not\.zip: not a folder or a zip"):
        read_yolo(tmp_path / "not.zip")


def test_yolo_bad_line(tmp_path: Path) -> None:
    folder = tmp_path / "y"
    folder.mkdir()
    (folder / "frame_000000.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(InvalidInputError, match=r"frame_000000\.txt line 1: 5 columns"):
        read_yolo(folder, info=VideoInfo(100, 100, 1, 1.0))


def test_yolo_keypoint_visibility_reads_as_a_confidence_of_at_most_1(tmp_path: Path) -> None:
    """A training label's third keypoint value is visibility (2: visible): it came in as confidence 2, and the
    skeleton's score as their mean; such a skeleton sent back as a keyframe is refused (confidence outside [0, 1])."""
    folder = tmp_path / "y"
    folder.mkdir()
    kps = " ".join(["0.5 0.5 2", "0.4 0.4 1", "0 0 0"] + ["0.5 0.5 2"] * 14)
    (folder / "frame_000000.txt").write_text(f"0 0.5 0.5 0.2 0.4 {kps} 0.9 1\n")
    (sk,) = [b.skeleton for t in read_yolo(folder, info=VideoInfo(100, 100, 1, 1.0)).tracks for b in t.boxes]
    assert sk is not None
    np.testing.assert_array_equal(sk.present, [True, True, False] + [True] * 14)
    assert sk.keypoints[:, 2].max() == 1.0 and 0.0 <= sk.score <= 1.0


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_registry_round_trips_every_format(fmt: str, annotations: Annotations, tmp_path: Path) -> None:
    if fmt == "mot_gt":
        annotations.tracks[1].class_name = "person"
    out = export(annotations, fmt, tmp_path / fmt, keyframe_reducer=None)
    assert fmt in IMPORTERS
    back = load(fmt, out, annotations.info)
    tol = 0.006 if fmt == "cvat" else 1e-3
    skeletons = fmt in ("cvat", "coco", "yolo")
    assert_tracks_equal(annotations, back, atol=tol, skeletons=skeletons, classes=fmt != "mot")


def test_unknown_format(annotations: Annotations, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown format 'pascal'"):
        export(annotations, "pascal", tmp_path / "x")


def test_mot_rows_with_a_negative_size_are_named(tmp_path: Path) -> None:
    from prelabel.formats.mot import read_mot

    path = tmp_path / "tracks.txt"
    path.write_text("1,1,10,10,20,40,1,-1,-1,-1\n2,1,11,10,-5,40,1,-1,-1,-1\n")
    with pytest.raises(InvalidInputError, match=r"tracks.txt row 2: box width -5"):
        read_mot(path)


def test_coco_images_without_a_frame_number_are_numbered_by_position_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    doc = {
        "images": [
            {"id": 1, "file_name": "000004.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "000009.jpg", "width": 64, "height": 48},
        ],
        "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 2, 10, 20], "track_id": 3}],
        "categories": [{"id": 1, "name": "person"}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    with caplog.at_level("WARNING"):
        ann = read_coco(path)
    assert ann.tracks[0].frames.tolist() == [1]
    assert "2 images have no frame_id" in caplog.text and "000004.jpg" in caplog.text


def test_a_bad_box_in_a_result_json_is_named_by_track_and_frame(tmp_path: Path) -> None:
    from prelabel.formats.result_json import read_result_json

    doc = {
        "info": {"width": 64, "height": 48, "num_frames": 5, "fps": 25.0},
        "tracks": [{"track_id": 2, "boxes": [{"frame": 1, "xyxy": [1, 1, 9, 9]}, {"frame": 3, "xyxy": [5, 5, 1, 9]}]}],
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"result.json track 2: frame 3: .*negative width"):
        read_result_json(path)
    doc["tracks"][0]["boxes"][1]["frame"] = 1  # type: ignore[index]
    doc["tracks"][0]["boxes"][1]["xyxy"] = [1, 1, 2, 2]  # type: ignore[index]
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"track 2: frame 1 appears twice"):
        read_result_json(path)
