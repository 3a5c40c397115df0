"""Training data from annotation-tool exports: CVAT (skeletons and segments), Label Studio (segments) + COCO."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from prelabel.actions.augment import KeypointNoise, add_keypoint_noise
from prelabel.actions.cli import train_actions_main
from prelabel.actions.data import imported_data
from prelabel.actions.features import compute_features, track_to_sequences
from prelabel.actions.propose import load_segmenter
from prelabel.actions.taxonomy import default_taxonomy
from prelabel.errors import InvalidInputError
from prelabel.formats.model import Annotations
from prelabel.formats.registry import export
from prelabel.synthetic import Scene, generate
from prelabel.types import Segment


@pytest.fixture(scope="module")
def scene() -> Scene:
    # A generated action scene, held out from the shipped model's training seeds; 3 people, 90 frames.
    return generate("actions", 2300, render=False, num_frames=90)


def _annotations(scene: Scene, segments: list[Segment] | None = None) -> Annotations:
    rng = np.random.default_rng(0)
    people = [add_keypoint_noise(t, KeypointNoise(), rng) for t in scene.tracks if t.class_name == "person"]
    segs = scene.segments if segments is None else segments
    actions = tuple(dict.fromkeys([*default_taxonomy().names, *(s.label for s in segs)]))
    return Annotations(
        info=scene.info,
        tracks=people,
        segments=list(segs),
        ts_ms=scene.ts_ms,
        labels=("person",),
        action_labels=actions,
    )


def _spans(segments: list[Segment]) -> list[tuple[int, str, int, int]]:
    return sorted((s.track_id, s.label, s.start_frame, s.end_frame) for s in segments)


@pytest.fixture(scope="module")
def exports(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exports")
    ann = _annotations(scene)
    return {
        "cvat": export(ann, "cvat", out / "annotations.xml", keyframe_reducer=None),
        "label_studio": export(ann, "label_studio", out / "tasks.json", keyframe_reducer=None),
        "coco": export(ann, "coco", out / "keypoints.json"),
    }


def test_cvat_export_gives_back_the_training_data(scene: Scene, exports: dict[str, Path]) -> None:
    ann = _annotations(scene)
    with pytest.raises(InvalidInputError, match=r"expected a positive frame rate, the file stores 0.0"):
        imported_data("cvat", exports["cvat"])  # CVAT XML has no frame rate
    data = imported_data("cvat", exports["cvat"], offset=5000, fps=scene.info.fps)
    assert sorted(d.track.track_id for d in data) == sorted(t.track_id + 5000 for t in ann.tracks)
    got = [replace(s, track_id=s.track_id - 5000) for d in data for s in d.segments]
    assert _spans(got) == _spans(ann.segments)
    by_id = {t.track_id: t for t in ann.tracks}
    for d in data:
        assert d.fps == pytest.approx(scene.info.fps)
        original = by_id[d.track.track_id - 5000]
        (seq_a,) = track_to_sequences(original, fps=scene.info.fps, ts_ms=scene.ts_ms)
        (seq_b,) = track_to_sequences(d.track, fps=d.fps, ts_ms=d.ts_ms)
        np.testing.assert_array_equal(seq_a.frames, seq_b.frames)
        # Coordinates survive the XML to 0.01 px; the features the model sees agree accordingly.
        np.testing.assert_allclose(seq_b.xy, seq_a.xy, atol=0.01)
        np.testing.assert_allclose(compute_features(seq_b), compute_features(seq_a), atol=0.02)


def test_label_studio_segments_pair_with_coco_skeletons(scene: Scene, exports: dict[str, Path]) -> None:
    ann = _annotations(scene)
    data = imported_data("label_studio", exports["label_studio"], skeletons=("coco", exports["coco"]))
    assert _spans([s for d in data for s in d.segments]) == _spans(ann.segments)
    assert all(any(b.skeleton is not None for b in d.track.boxes) for d in data)
    with pytest.raises(InvalidInputError, match=r"expected person tracks with skeletons, found none in \d+ tracks"):
        imported_data("label_studio", exports["label_studio"])


def test_train_actions_from_cvat_and_label_studio(
    scene: Scene, exports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "from-imports.pt"
    args = ["--out", str(out), "--epochs", "3", "--channels", "8", "--layers", "2", "--threads", "1", "--fps", "30"]
    imports = ["--import", f"cvat:{exports['cvat']}", "--import", f"label_studio:{exports['label_studio']}@coco:"]
    assert train_actions_main([*args, *imports[:3], imports[3] + str(exports["coco"])]) == 0
    # 2 people x 2 files, each also mirrored; 90 frames each.
    assert "trained on 8 sequences (720 frames)" in capsys.readouterr().out
    meta = json.loads(out.with_suffix(".json").read_text())
    assert "--import cvat:" in meta["meta"]["recipe"]
    segmenter = load_segmenter(str(out))
    props = segmenter.propose([t for t in _annotations(scene).tracks], fps=scene.info.fps, ts_ms=scene.ts_ms)
    segmenter.taxonomy.validate_segments(props)
    assert {s.track_id for s in props} == {t.track_id for t in scene.tracks if t.class_name == "person"}
    # Bad input is named: a malformed --import, and Label Studio without skeletons.
    assert train_actions_main([*args, "--import", "cvat"]) == 2
    assert "expected FORMAT:PATH" in capsys.readouterr().err
    assert train_actions_main([*args, "--import", f"label_studio:{exports['label_studio']}"]) == 2
    assert "label_studio:tasks.json@coco:keypoints.json" in capsys.readouterr().err


def test_unknown_label_in_an_import_is_named(scene: Scene, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    segs = list(scene.segments)
    first = segs[0]
    segs[0] = replace(first, label="dance")
    path = export(_annotations(scene, segs), "cvat", tmp_path / "bad.xml", keyframe_reducer=None)
    code = train_actions_main(
        ["--out", str(tmp_path / "m.pt"), "--import", f"cvat:{path}", "--fps", "30", "--epochs", "1"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown label 'dance'" in err and f"[{first.start_frame}, {first.end_frame}]" in err
    assert not (tmp_path / "m.pt").exists()
