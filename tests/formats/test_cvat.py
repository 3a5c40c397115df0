"""CVAT for video 1.1 XML: exact round trips, keyframe export, CVAT's layout, and refusal of unsafe XML."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import assert_tracks_equal, segment_keys

from prelabel.errors import InvalidInputError
from prelabel.formats.cvat import CvatOptions, cvat_unkeyed_points, read_cvat, write_cvat
from prelabel.formats.model import Annotations
from prelabel.interpolate import interpolate_track
from prelabel.types import COCO17_KEYPOINTS, Track, VideoInfo

EXACT = CvatOptions(keyframe_reducer=None)  # every observed frame is a keyframe


def test_round_trip_every_frame_is_exact(annotations: Annotations, tmp_path: Path) -> None:
    back = read_cvat(write_cvat(annotations, tmp_path / "a.xml", EXACT), ts_ms=annotations.ts_ms)
    assert_tracks_equal(annotations, back, atol=0.006)  # CVAT writes two decimals
    assert segment_keys(back) == segment_keys(annotations)
    assert back.action_labels == annotations.action_labels
    assert back.info.width == 640 and back.info.height == 480 and back.info.num_frames == 30
    # timestamps come from the caller (CVAT has none)
    assert back.tracks[0].boxes[3].ts_ms == pytest.approx(annotations.ts_ms[3])  # type: ignore[index]
    kt = {k.track_id: k for k in back.keyframe_tracks}
    outside1 = [k.frame_idx for k in kt[1].keyframes if k.outside]
    assert outside1 == [10, 25]  # first frame of the gap, and right after the last box
    assert not any(k.outside for k in kt[3].keyframes)  # track 3 ends on the last frame: no closing shape
    with_skel = [k.frame_idx for k in kt[1].keyframes if k.skeleton is not None and k.skeleton.present.any()]
    assert with_skel == [*range(0, 6), *range(18, 23)]
    hidden = [k.frame_idx for k in kt[1].keyframes if k.skeleton is not None and not k.skeleton.present.any()]
    assert hidden == [6, 23]  # the all-outside skeletons that close each run, at visible box keyframes


def _every_fifth(track: Track) -> list[int]:
    return [int(f) for f in track.frames if f % 5 == 0]


def test_keyframe_reducer_writes_only_keyframes_and_gap_bounds(annotations: Annotations, tmp_path: Path) -> None:
    path = write_cvat(annotations, tmp_path / "k.xml", CvatOptions(keyframe_reducer=_every_fifth))
    root = ET.parse(path).getroot()
    track1 = next(t for t in root.findall("track") if t.get("group_id") == "1" and t.find("box") is not None)
    frames = [(int(b.get("frame", -1)), b.get("outside")) for b in track1.findall("box")]
    # every 5th frame, run starts/ends (0, 9, 15, 24), segment boundaries (2, 8, 4, 20), outside at 10 and 25
    assert frames == [
        (0, "0"), (2, "0"), (4, "0"), (5, "0"), (8, "0"), (9, "0"), (10, "1"),
        (15, "0"), (20, "0"), (24, "0"), (25, "1"),
    ]  # fmt: skip
    back = read_cvat(path)
    # gaps survive, keyframes are exact, segments survive because their bounds are keyframes
    orig, dense = annotations.track(1), back.track(1)
    np.testing.assert_array_equal(orig.frames, dense.frames)
    for f, _ in frames:
        box = orig.at(f)
        if box is not None:
            got = dense.at(f)
            assert got is not None
            np.testing.assert_allclose(got.xyxy, box.xyxy, atol=0.006)
    assert segment_keys(back) == segment_keys(annotations)
    # in between, CVAT renders linearly: frame 1 is the mean of keyframes 0 and 2
    mid = dense.at(1)
    a0, a2 = orig.at(0), orig.at(2)
    assert mid is not None and a0 is not None and a2 is not None
    np.testing.assert_allclose(mid.xyxy, (a0.xyxy + a2.xyxy) / 2, atol=0.006)


def test_layout_matches_cvat(annotations: Annotations, tmp_path: Path) -> None:
    root = ET.parse(write_cvat(annotations, tmp_path / "a.xml", EXACT)).getroot()
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    assert root.findtext("meta/task/mode") == "interpolation"
    labels = {lab.findtext("name"): lab for lab in root.iter("label")}
    assert labels["person-skeleton"].findtext("type") == "skeleton"
    assert labels["nose"].findtext("parent") == "person-skeleton"
    tracks = root.findall("track")
    assert [(t.get("label"), t.get("group_id")) for t in tracks] == [
        ("person", "1"),
        ("person-skeleton", "1"),
        ("car", "3"),
    ]
    box = tracks[0].find("box")
    assert box is not None
    assert list(box.attrib) == ["frame", "keyframe", "outside", "occluded", "xtl", "ytl", "xbr", "ybr", "z_order"]
    assert {a.get("name"): a.text for a in box.findall("attribute")} == {
        "walking": "false", "waving": "false", "turning": "false"
    }  # fmt: skip
    skel = tracks[1].find("skeleton")
    assert skel is not None
    points = skel.findall("points")
    assert [p.get("label") for p in points] == list(COCO17_KEYPOINTS)
    assert points[16].get("outside") == "1" and points[0].get("outside") == "0"  # frame 0 misses keypoint 16
    # the skeleton run 0..5 is closed by an all-outside skeleton at frame 6
    closing = [s for s in tracks[1].findall("skeleton") if s.get("frame") == "6"]
    assert closing and all(p.get("outside") == "1" for p in closing[0].findall("points"))


CVAT_EXPORT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><size>20</size><mode>interpolation</mode>
    <labels><label><name>person</name><type>rectangle</type><attributes/></label></labels>
    <original_size><width>320</width><height>240</height></original_size></task></meta>
  <track id="0" label="person" source="manual">
    <box frame="0" keyframe="1" outside="0" occluded="0" xtl="10.00" ytl="10.00" xbr="20.00" ybr="30.00" z_order="0"/>
    <box frame="5" keyframe="0" outside="0" occluded="0" xtl="99.00" ytl="99.00" xbr="99.00" ybr="99.00" z_order="0"/>
    <box frame="10" keyframe="1" outside="0" occluded="0" xtl="30.00" ytl="10.00" xbr="40.00" ybr="30.00" z_order="0"/>
    <box frame="12" keyframe="1" outside="1" occluded="0" xtl="30.00" ytl="10.00" xbr="40.00" ybr="30.00" z_order="0"/>
  </track>
  <track id="1" label="person" source="manual">
    <box frame="15" keyframe="1" outside="0" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00" z_order="0"/>
  </track>
</annotations>
"""


def test_reads_a_cvat_export_without_groups(tmp_path: Path) -> None:
    path = tmp_path / "cvat.xml"
    path.write_text(CVAT_EXPORT)
    ann = read_cvat(path)
    assert [t.track_id for t in ann.tracks] == [1, 2]  # CVAT ids 0, 1 -> 1, 2
    kt = ann.keyframe_tracks[0]
    assert kt.frames == [0, 10, 12]  # keyframe="0" shapes are CVAT's own interpolation and are dropped
    assert [k.outside for k in kt.keyframes] == [False, False, True]
    t1 = ann.tracks[0]
    np.testing.assert_array_equal(t1.frames, np.arange(0, 12))
    got = t1.at(5)
    assert got is not None
    np.testing.assert_allclose(got.xyxy, [20, 10, 30, 30])
    # the last visible keyframe of track 2 holds to the end of the video
    np.testing.assert_array_equal(ann.tracks[1].frames, np.arange(15, 20))


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<annotations><version>&lol3;</version></annotations>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE annotations [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotations><version>&xxe;</version></annotations>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE annotations SYSTEM "http://example.invalid/evil.dtd">
<annotations><version>1.1</version></annotations>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"])
def test_unsafe_xml_is_refused(text: str, tmp_path: Path) -> None:
    path = tmp_path / "evil.xml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match="unsafe XML"):
        read_cvat(path)


def test_malformed_and_wrong_files_are_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotations><track>")
    with pytest.raises(InvalidInputError, match="not well-formed"):
        read_cvat(bad)
    other = tmp_path / "other.xml"
    other.write_text("<html/>")
    with pytest.raises(InvalidInputError, match="expected <annotations>"):
        read_cvat(other)
    nan = tmp_path / "nan.xml"
    nan.write_text(CVAT_EXPORT.replace('xtl="30.00"', 'xtl="abc"', 1))
    with pytest.raises(InvalidInputError, match=r"track 0 .* frame 10"):
        read_cvat(nan)


def test_reserved_action_label_is_refused(annotations: Annotations, tmp_path: Path) -> None:
    annotations.segments[0].label = "outside"
    with pytest.raises(InvalidInputError, match="reserved"):
        write_cvat(annotations, tmp_path / "x.xml")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_pets09_ground_truth_through_cvat_keyframes(pets09_dir: Path, tmp_path: Path) -> None:
    from prelabel.formats.mot import read_mot

    gt = read_mot(pets09_dir / "gt" / "gt.txt", gt=True)
    path = write_cvat(gt, tmp_path / "pets.xml")  # default: prelabel's keyframe compression when available
    back = read_cvat(path)
    boxes = sum(len(t) for t in gt.tracks)
    keyframes = sum(sum(not k.outside for k in kt.keyframes) for kt in back.keyframe_tracks)
    ious = []
    for t in gt.tracks:
        rebuilt = back.track(t.track_id)
        np.testing.assert_array_equal(rebuilt.frames, t.frames)  # every gap survives
        ious.append(_iou(t.xyxy, rebuilt.xyxy))
    iou = np.concatenate(ious)
    try:
        import prelabel.interpolate as interp

        compressing = hasattr(interp, "compress_track")
    except ImportError:
        compressing = False
    if compressing:
        assert keyframes < boxes / 2, f"{keyframes} keyframes for {boxes} boxes"
        assert iou.min() > 0.89  # compression bound 0.9, less CVAT's two-decimal rounding
    else:
        assert keyframes == boxes and iou.min() > 0.999


def test_skeleton_only_track_gets_boxes_from_keypoints(tmp_path: Path) -> None:
    pts = "".join(
        f'<points label="{name}" keyframe="1" outside="{int(i > 1)}" occluded="0" points="{10 + i},{20 + 2 * i}"/>'
        for i, name in enumerate(COCO17_KEYPOINTS)
    )
    later = pts.replace('points="10,20"', 'points="30,20"')
    xml = (
        "<annotations><version>1.1</version><meta><task><size>10</size></task></meta>"
        f'<track id="4" label="person-skeleton" source="manual"><skeleton frame="2" keyframe="1" z_order="0">{pts}'
        f'</skeleton><skeleton frame="6" keyframe="1" z_order="0">{later}</skeleton></track></annotations>'
    )
    path = tmp_path / "s.xml"
    path.write_text(xml)
    ann = read_cvat(path)
    track = ann.tracks[0]
    assert track.track_id == 5 and track.class_name == "person"
    np.testing.assert_array_equal(track.frames, np.arange(2, 10))
    mid = track.at(4)
    assert mid is not None and mid.skeleton is not None
    assert mid.skeleton.present.tolist() == [True, True] + [False] * 15
    np.testing.assert_allclose(mid.skeleton.keypoints[0, :2], [20, 20])  # halfway from (10, 20) to (30, 20)
    np.testing.assert_allclose(mid.xyxy, [11, 20, 20, 22])  # around the present keypoints


def test_a_keypoint_that_is_not_a_number_is_named_by_track_and_frame(tmp_path: Path) -> None:
    """The message said only "skeleton.keypoints: a present keypoint is not finite" (no file, track or frame)."""
    pts = "".join(
        f'<points label="{name}" keyframe="1" outside="0" occluded="0" points="{"nan" if i == 3 else 10 + i},20"/>'
        for i, name in enumerate(COCO17_KEYPOINTS)
    )
    path = tmp_path / "s.xml"
    path.write_text(
        "<annotations><version>1.1</version><meta><task><size>10</size></task></meta>"
        f'<track id="4" label="person-skeleton" source="manual"><skeleton frame="2" keyframe="1" z_order="0">{pts}'
        "</skeleton></track></annotations>"
    )
    with pytest.raises(InvalidInputError, match=r"s.xml: .*track.*frame 2: keypoint 'left_ear' points='nan,20' is not"):
        read_cvat(path)


def test_a_hidden_skeleton_keeps_where_its_elements_were_left(tmp_path: Path) -> None:
    """CVAT moves a skeleton toward the positions of the outside shape that hides it: the reader keeps them on the
    outside keyframe (an outside keyframe still), the rendered track moves toward them, and next to a box track they
    give the object no skeleton at a visible box keyframe."""

    def shape(frame: int, x: float, outside: int) -> str:
        pts = "".join(
            f'<points label="{name}" keyframe="1" outside="{outside}" occluded="0" points="{x + i},{20 + 2 * i}"/>'
            for i, name in enumerate(COCO17_KEYPOINTS)
        )
        return f'<skeleton frame="{frame}" keyframe="1" outside="{outside}" z_order="0">{pts}</skeleton>'

    skeleton = f'<track id="1" label="person-skeleton" group_id="3">{shape(0, 10, 0)}{shape(4, 50, 1)}</track>'
    path = tmp_path / "s.xml"
    path.write_text(
        f"<annotations><version>1.1</version><meta><task><size>10</size></task></meta>{skeleton}</annotations>"
    )
    ann = read_cvat(path)
    (kt,) = ann.keyframe_tracks
    last = kt.keyframes[-1]
    assert last.outside and last.skeleton is not None and last.skeleton.present.all()
    np.testing.assert_allclose(last.skeleton.keypoints[0, :2], [50, 20])
    mid = ann.tracks[0].at(2)
    assert mid is not None and mid.skeleton is not None
    np.testing.assert_allclose(mid.skeleton.keypoints[0, :2], [30, 20])  # halfway toward where it was left
    assert ann.tracks[0].at(4) is None

    boxes = '<track id="0" label="person" group_id="3">' + "".join(
        f'<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="{f}" ytl="0" xbr="{f + 40}" ybr="80"/>'
        for f in (0, 4, 8)
    )
    path.write_text(
        "<annotations><version>1.1</version><meta><task><size>10</size></task></meta>"
        f"{boxes}</track>{skeleton}</annotations>"
    )
    (kt,) = read_cvat(path).keyframe_tracks
    assert [(k.frame_idx, k.outside, k.skeleton is not None) for k in kt.keyframes] == [
        (0, False, True),
        (4, False, True),
        (8, False, False),
    ]
    hidden = kt.keyframes[1].skeleton
    assert hidden is not None and not hidden.present.any()  # no keypoint from frame 4; those before held up to it
    res = interpolate_track(kt.keyframes, "linear", track_id=kt.track_id)
    assert res.keypoints_present is not None
    assert res.keypoints_present[:4].all() and not res.keypoints_present[4:].any()


def test_a_video_of_another_size_than_the_task_is_refused(tmp_path: Path) -> None:
    """Boxes are in the pixels of the frames the task was annotated on (``original_size``): read against a video of
    another size they would land in the wrong place, so the reader says so instead of rewriting the size."""
    from prelabel.types import VideoInfo

    path = tmp_path / "task.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>10</size>'
        "<original_size><width>1280</width><height>720</height></original_size></task></meta>"
        '<track id="0" label="person"><box frame="0" keyframe="1" outside="0" xtl="1" ytl="1" xbr="9" ybr="9"/>'
        "</track></annotations>"
    )
    with pytest.raises(InvalidInputError, match=r"task.xml: annotated on 1280x720 .* video is 640x360"):
        read_cvat(path, VideoInfo(640, 360, 10, 25.0))
    assert read_cvat(path, VideoInfo(1280, 720, 10, 25.0)).keyframe_tracks[0].frames == [0]
    assert read_cvat(path).info.width == 1280


def test_patching_keeps_skeleton_keyframes_and_fills_between_its_anchors(tmp_path: Path) -> None:
    """A skeleton track's keyframes stay as the annotator made them; the filled skeleton is added between two of them
    only where both are keyframes it was interpolated from (between 10 and 20 here, not across the annotator's
    skeleton keyframe at 5, which the filled skeleton did not see)."""
    from prelabel.formats.cvat import patch_cvat
    from prelabel.types import Skeleton, TrackedBox

    def skeleton_xml(frame: int, x: float) -> str:
        points = "".join(
            f'<points label="{name}" keyframe="1" outside="0" occluded="0" points="{x + k:.2f},{50 + k:.2f}"/>'
            for k, name in enumerate(COCO17_KEYPOINTS)
        )
        return f'<skeleton frame="{frame}" keyframe="1" z_order="0">{points}</skeleton>'

    path = tmp_path / "skel.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>30</size>'
        "<original_size><width>320</width><height>240</height></original_size></task></meta>"
        '<track id="0" label="person" group_id="7">'
        + "".join(
            f'<box frame="{f}" keyframe="1" outside="0" xtl="{f}" ytl="40" xbr="{f + 30}" ybr="120"/>'
            for f in (0, 10, 20)
        )
        + '</track><track id="1" label="person-skeleton" group_id="7">'
        + "".join(skeleton_xml(f, x) for f, x in ((0, 10.0), (5, 90.0), (10, 20.0), (20, 30.0)))
        + "</track></annotations>"
    )
    ann = read_cvat(path)
    (tid,) = [t.track_id for t in ann.tracks]
    kp = np.c_[np.arange(17.0) + 100, np.arange(17.0) + 50, np.ones(17)].astype(np.float32)
    filled = Track(
        tid,
        [
            TrackedBox(f, np.array([f, 40, f + 30, 120.0]), 1.0, skeleton=Skeleton(kp, np.ones(17, bool)))
            for f in range(21)
        ],
    )
    out = patch_cvat(path, tmp_path / "out.xml", [filled], keyframe_reducer=None, anchors={tid: [0, 10, 20]})
    skel = {int(s.get("frame")): s for s in ET.parse(out).getroot().findall("track")[1]}
    assert sorted(skel) == [0, 5, 10, *range(11, 20), 20]  # nothing added across the keyframe at 5
    assert skel[5].find("points").get("points") == "90.00,50.00"  # the annotator's, as it was
    assert skel[15].find("points").get("points") == "100.00,50.00"  # the filled skeleton's


def _task_xml(path: Path, meta: str, boxes: str) -> Path:
    path.write_text(
        f'<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta>{meta}</meta>'
        f'<track id="0" label="car">{boxes}</track></annotations>'
    )
    return path


def _box_xml(f: int, x: float, rotation: float | None = None) -> str:
    rot = f' rotation="{rotation:.2f}"' if rotation is not None else ""
    return f'<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="{x}" ytl="40" xbr="{x + 30}" ybr="90"{rot}/>'


def test_a_task_over_every_third_frame_from_frame_10_gets_keyframes_on_its_frames_only(tmp_path: Path) -> None:
    """CVAT numbers a task's frames as the video's (start_frame, frame_filter step=3) and refuses keyframes at other
    frames on import: the filled keyframes lie on the task's frames, and CVAT's linear interpolation over them gives
    the filled track back. Without a video the frames run to stop_frame (past the task's size)."""
    from prelabel.formats.cvat import patch_cvat
    from prelabel.types import TrackedBox

    meta = (
        "<task><size>31</size><start_frame>10</start_frame><stop_frame>100</stop_frame>"
        "<frame_filter>step=3</frame_filter><original_size><width>320</width><height>240</height></original_size>"
        "</task>"
    )
    path = _task_xml(tmp_path / "step.xml", meta, _box_xml(10, 0.0) + _box_xml(100, 180.0))
    ann = read_cvat(path)
    assert ann.info.num_frames == 101 and ann.keyframe_tracks[0].frames == [10, 100]
    (tid,) = [t.track_id for t in ann.tracks]
    x = 90.0 * (1 - np.cos(np.linspace(0, np.pi, 91)))  # eases in and out: linear needs keyframes between
    filled = Track(tid, [TrackedBox(10 + i, np.array([x[i], 40, x[i] + 30, 90.0]), 1.0) for i in range(91)])
    root = ET.parse(patch_cvat(path, tmp_path / "out.xml", [filled])).getroot()
    frames = [int(b.get("frame")) for b in root.find("track").findall("box")]
    assert len(frames) > 3 and all((f - 10) % 3 == 0 for f in frames), frames
    got = np.array([[float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")] for b in root.find("track")])
    grid = np.arange(10, 101, 3)
    shown = np.stack([np.interp(grid, frames, got[:, c]) for c in range(4)], axis=1)  # CVAT: linear over its frames
    truth = np.stack([x[grid - 10], np.full(len(grid), 40.0), x[grid - 10] + 30, np.full(len(grid), 90.0)], axis=1)
    assert _iou(shown, truth).min() >= 0.9 - 1e-6


def test_filled_keyframes_of_a_rotated_box_turn_as_cvat_turns_them(tmp_path: Path) -> None:
    """CVAT interpolates a box's rotation along the shorter arc (350 -> 20 passes through 0): the added keyframes
    carry that rotation, not the one of the keyframe before them."""
    from prelabel.formats.cvat import patch_cvat
    from prelabel.types import TrackedBox

    meta = "<task><size>31</size><original_size><width>320</width><height>240</height></original_size></task>"
    path = _task_xml(tmp_path / "rot.xml", meta, _box_xml(0, 0.0, 350.0) + _box_xml(30, 150.0, 20.0))
    (tid,) = [t.track_id for t in read_cvat(path).tracks]
    filled = Track(tid, [TrackedBox(f, np.array([f * f / 6, 40, f * f / 6 + 30, 90.0]), 1.0) for f in range(31)])
    root = ET.parse(patch_cvat(path, tmp_path / "out.xml", [filled], keyframe_reducer=_every_fifth)).getroot()
    rotation = {int(b.get("frame")): float(b.get("rotation")) for b in root.find("track")}
    assert rotation[0] == 350.0 and rotation[30] == 20.0
    assert (rotation[5], rotation[10], rotation[15]) == pytest.approx((355.0, 0.0, 5.0))
    # Half a turn: the angle grows, as CVAT turns it; a filled track reaching past the keyframes holds the nearest.
    path = _task_xml(tmp_path / "half.xml", meta, _box_xml(5, 0.0, 0.0) + _box_xml(25, 150.0, 180.0))
    root = ET.parse(patch_cvat(path, tmp_path / "out.xml", [filled], keyframe_reducer=_every_fifth)).getroot()
    rotation = {int(b.get("frame")): float(b.get("rotation")) for b in root.find("track")}
    assert (rotation[10], rotation[15], rotation[20]) == pytest.approx((45.0, 90.0, 135.0))


def test_a_job_export_and_a_video_shorter_than_the_task_are_checked(tmp_path: Path) -> None:
    """A CVAT job export keeps the frame size beside meta/job; a video shorter than the task is not the task's."""
    job = "<job><size>20</size><start_frame>0</start_frame><stop_frame>19</stop_frame></job>"
    job += "<original_size><width>640</width><height>360</height></original_size>"
    path = _task_xml(tmp_path / "job.xml", job, _box_xml(0, 0.0) + _box_xml(19, 90.0))
    with pytest.raises(InvalidInputError, match=r"annotated on 640x360 .* video is 1280x720"):
        read_cvat(path, VideoInfo(1280, 720, 20, 25.0))
    with pytest.raises(InvalidInputError, match=r"runs to frame 19 \(stop_frame\), but the video has 12 frames"):
        read_cvat(path, VideoInfo(640, 360, 12, 25.0))
    assert read_cvat(path, VideoInfo(640, 360, 20, 25.0)).keyframe_tracks[0].frames == [0, 19]


def test_a_negative_frame_or_a_reversed_box_names_the_file_track_and_frame(tmp_path: Path) -> None:
    meta = "<task><size>31</size><original_size><width>320</width><height>240</height></original_size></task>"
    path = _task_xml(tmp_path / "neg.xml", meta, _box_xml(-5, 0.0) + _box_xml(30, 150.0))
    with pytest.raises(InvalidInputError, match=r"neg.xml: track 0 \('car'\): <box> frame=-5, expected >= 0"):
        read_cvat(path)
    reversed_box = '<box frame="3" keyframe="1" outside="0" xtl="50" ytl="40" xbr="20" ybr="90"/>'
    path = _task_xml(tmp_path / "rev.xml", meta, _box_xml(0, 0.0) + reversed_box)
    with pytest.raises(InvalidInputError, match=r"rev.xml: track 0 \('car'\) frame 3: .*width"):
        read_cvat(path)


def test_skeleton_tracks_are_compressed_on_their_own(
    pose_track: Track, keypoint_errors: Callable[[Track, Track], np.ndarray], tmp_path: Path
) -> None:
    """The box moves straight (two box keyframes) while the arms swing: the skeleton track keeps the keyframes the
    swing needs, not one per frame, and CVAT's interpolation rebuilds every keypoint within the tolerance."""
    ann = Annotations(VideoInfo(640, 360, 120, 25.0), [pose_track], labels=("person",))
    path = write_cvat(ann, tmp_path / "pose.xml", CvatOptions(max_keypoint_error=0.05))
    boxes, skeletons = ET.parse(path).getroot().findall("track")
    assert [int(b.get("frame", -1)) for b in boxes.findall("box")] == [0, 119]
    skel_frames = [int(s.get("frame", -1)) for s in skeletons.findall("skeleton")]
    assert 10 < len(skel_frames) < 60  # every frame has a skeleton (110 of them)
    assert 70 in skel_frames and 75 not in skel_frames  # the "no skeleton from here" shape, then nothing
    back = read_cvat(path).track(pose_track.track_id)
    assert back.frames.tolist() == pose_track.frames.tolist()
    assert keypoint_errors(pose_track, back).max() <= 0.05 + 1e-3  # CVAT writes two decimals
    exact = read_cvat(write_cvat(ann, tmp_path / "every.xml", EXACT)).track(pose_track.track_id)
    assert keypoint_errors(pose_track, exact).max() <= 1e-3


def test_patching_compresses_the_filled_skeleton_between_anchors(
    pose_track: Track, keypoint_errors: Callable[[Track, Track], np.ndarray], tmp_path: Path
) -> None:
    from prelabel.formats.cvat import patch_cvat

    first = Track(pose_track.track_id, pose_track.boxes[:61])
    ann = Annotations(VideoInfo(640, 360, 61, 25.0), [first], labels=("person",))
    src = write_cvat(ann, tmp_path / "task.xml", CvatOptions(keyframe_reducer=lambda t: [0, 60]))
    tid = read_cvat(src).tracks[0].track_id
    out = patch_cvat(src, tmp_path / "filled.xml", [first], anchors={tid: [0, 60]})
    skel_frames = [int(s.get("frame", -1)) for s in ET.parse(out).getroot().findall("track")[1]]
    assert skel_frames[0] == 0 and skel_frames[-1] == 60
    assert 5 < len(skel_frames) < 30
    assert {39, 40, 49, 50} <= set(skel_frames)  # either side of the ankle's absence
    back = read_cvat(out).track(tid)
    assert keypoint_errors(first, back).max() <= 0.05 + 1e-3
    every = patch_cvat(src, tmp_path / "every.xml", [first], keyframe_reducer=None, anchors={tid: [0, 60]})
    assert len(ET.parse(every).getroot().findall("track")[1]) == 61


@pytest.mark.parametrize("reducer", ["auto", None])
def test_patching_hides_the_skeleton_where_the_filled_track_has_none(tmp_path: Path, reducer: str | None) -> None:
    """Between two skeleton keyframes, the filled track shows no skeleton over frames 8-12 (the box is there, no
    keypoint is): CVAT must not keep drawing the skeleton through them."""
    from prelabel.formats.cvat import patch_cvat
    from prelabel.types import Skeleton, TrackedBox

    points = "".join(
        f'<points label="{name}" keyframe="1" outside="0" occluded="0" points="{10 + k:.2f},{50 + k:.2f}"/>'
        for k, name in enumerate(COCO17_KEYPOINTS)
    )
    path = tmp_path / "task.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>30</size>'
        "<original_size><width>320</width><height>240</height></original_size></task></meta>"
        '<track id="0" label="person" group_id="7">'
        + "".join(f'<box frame="{f}" keyframe="1" outside="0" xtl="10" ytl="40" xbr="40" ybr="120"/>' for f in (0, 20))
        + '</track><track id="1" label="person-skeleton" group_id="7">'
        + "".join(f'<skeleton frame="{f}" keyframe="1" z_order="0">{points}</skeleton>' for f in (0, 20))
        + "</track></annotations>"
    )
    (tid,) = [t.track_id for t in read_cvat(path).tracks]
    kp = np.c_[np.arange(17.0) + 10, np.arange(17.0) + 50, np.ones(17)].astype(np.float32)
    filled = Track(
        tid,
        [
            TrackedBox(
                f,
                np.array([10, 40, 40, 120.0]),
                1.0,
                skeleton=None if 8 <= f <= 12 else Skeleton(kp, np.ones(17, bool)),
            )
            for f in range(21)
        ],
    )
    out = patch_cvat(path, tmp_path / "out.xml", [filled], keyframe_reducer=reducer, anchors={tid: [0, 20]})
    back = read_cvat(out).track(tid)
    assert back.frames.tolist() == list(range(30))
    with_skeleton = [b.frame_idx for b in back.boxes if b.skeleton is not None and b.skeleton.present.any()]
    assert with_skeleton == [f for f in range(30) if not 8 <= f <= 12]
    shapes = {int(s.get("frame", -1)): s for s in ET.parse(out).getroot().findall("track")[1]}
    assert {7, 8, 13} <= set(shapes)  # the last frame shown, "no skeleton from here", the first shown again
    assert all(p.get("outside") == "1" for p in shapes[8].findall("points"))


def test_patching_adds_no_keyframe_the_compression_did_not_check(tmp_path: Path) -> None:
    """A nose that wobbles within the tolerance next to the annotator's keyframes: the two keyframes already hold it
    (a keyframe forced at frame 1 or 19 would bend CVAT's line and break the tolerance at frame 2)."""
    from prelabel.formats.cvat import patch_cvat
    from prelabel.interpolate import compress_skeletons
    from prelabel.types import Skeleton, TrackedBox

    base = np.stack([np.arange(17) * 3.0 + 120, np.full(17, 150.0)], 1)

    def skeleton(f: int) -> Skeleton:
        kp = base + np.array([5.0 * f, 0.0])
        kp[0, 1] += {1: 9.0, 2: -9.0}.get(f, 0.0)  # within 10 px (0.05 of the 200 px box) of the line from 0 to 20
        return Skeleton(np.c_[kp, np.ones(17)], np.ones(17, bool))

    track = Track(1, [TrackedBox(f, [100, 100, 200, 300], 1.0, skeleton=skeleton(f)) for f in range(21)])
    ann = Annotations(VideoInfo(640, 480, 21, 25.0), [track], labels=("person",))
    src = write_cvat(ann, tmp_path / "task.xml", CvatOptions(keyframe_reducer=lambda t: [0, 20]))
    tid = read_cvat(src).tracks[0].track_id
    assert compress_skeletons(track, 0.05) == [0, 20]
    out = patch_cvat(src, tmp_path / "filled.xml", [Track(tid, track.boxes)], anchors={tid: [0, 20]})
    assert [int(s.get("frame", -1)) for s in ET.parse(out).getroot().findall("track")[1]] == [0, 20]
    back = read_cvat(out).track(tid)
    worst = max(
        float(np.linalg.norm(back.boxes[f].skeleton.keypoints[:, :2] - skeleton(f).keypoints[:, :2], axis=1).max())  # type: ignore[union-attr]
        for f in range(21)
    )
    assert worst <= 0.05 * 200 + 0.01


def test_cvat_options_refuse_a_bad_keypoint_tolerance() -> None:
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="max_keypoint_error"):
            CvatOptions(max_keypoint_error=bad)


def test_segment_boundaries_keep_the_boxes_within_tolerance(tmp_path: Path) -> None:
    """Segment boundaries must be CVAT keyframes; the track is compressed between them, so CVAT's line from a
    boundary to the next keyframe stays within the tolerance too (added afterwards, a boundary bent the line)."""
    from prelabel.geometry import box_iou
    from prelabel.types import Segment, TrackedBox

    rng = np.random.default_rng(4)
    xy = np.cumsum(rng.normal(0, 2.5, (150, 2)), axis=0) + 200
    track = Track(1, [TrackedBox(f, [*xy[f], *(xy[f] + [40, 90])], 0.9) for f in range(150)], 0, "person")
    segments = [Segment(1, "wave", 17, 61), Segment(1, "wave", 88, 130), Segment(1, "jump", 40, 95)]
    ann = Annotations(VideoInfo(640, 480, 150, 25.0), [track], segments, labels=("person",),
                      action_labels=("wave", "jump"))  # fmt: skip
    for min_iou in (0.7, 0.9):
        back = read_cvat(write_cvat(ann, tmp_path / "a.xml", CvatOptions(min_iou=min_iou)))
        assert box_iou(back.tracks[0].xyxy, track.xyxy).diagonal().min() >= min_iou - 2e-3  # two decimals
        assert sorted((s.label, s.start_frame, s.end_frame) for s in back.segments) == sorted(
            (s.label, s.start_frame, s.end_frame) for s in segments
        )


def test_skeleton_points_written_without_a_keyframe_are_named_per_object(tmp_path: Path) -> None:
    """CVAT writes every element of a skeleton keyframe and flags those it did not key there (keyframe="0"):
    cvat_unkeyed_points names them per object, under the track ids read_cvat gives (a group's box and first
    skeleton share the group's id; a second skeleton in the group is an object of its own)."""

    def skeleton(f: int, unkeyed: set[str]) -> str:
        pts = "".join(
            f'<points label="{name}" keyframe="{0 if name in unkeyed else 1}" outside="0" occluded="0" '
            f'points="{10 + i},{20 + f}"></points>'
            for i, name in enumerate(COCO17_KEYPOINTS)
        )
        return f'<skeleton frame="{f}" keyframe="1" z_order="0">{pts}</skeleton>'

    box = '<box frame="{f}" keyframe="1" outside="0" occluded="0" xtl="5" ytl="5" xbr="60" ybr="90" z_order="0"></box>'
    xml = tmp_path / "a.xml"
    xml.write_text(
        "<annotations><version>1.1</version>"
        f'<track id="0" label="person" group_id="4">{box.format(f=0)}{box.format(f=9)}</track>'
        f'<track id="1" label="person-skeleton" group_id="4">{skeleton(0, set())}{skeleton(5, {"nose"})}'
        f"{skeleton(9, set())}</track>"
        f'<track id="2" label="person-skeleton" group_id="4">{skeleton(1, {"left_wrist", "right_knee"})}'
        f"{skeleton(8, set())}</track>"
        f'<track id="3" label="person-skeleton">{skeleton(2, {"left_ankle"})}{skeleton(6, set())}</track>'
        "</annotations>"
    )
    ids = sorted(kt.track_id for kt in read_cvat(xml).keyframe_tracks)
    got = cvat_unkeyed_points(xml)
    assert set(got) <= set(ids) and 4 in ids
    assert list(got[4]) == [5] and np.flatnonzero(got[4][5]).tolist() == [COCO17_KEYPOINTS.index("nose")]
    second = next(t for t in got if t != 4 and 1 in got[t])
    assert sorted(np.flatnonzero(got[second][1]).tolist()) == sorted(
        COCO17_KEYPOINTS.index(n) for n in ("left_wrist", "right_knee")
    )
    third = next(t for t in got if 2 in got[t])
    assert third not in (4, second) and np.flatnonzero(got[third][2]).tolist() == [COCO17_KEYPOINTS.index("left_ankle")]
    # the objects read_cvat gives those ids hold those skeleton keyframes
    by_id = {
        kt.track_id: {k.frame_idx for k in kt.keyframes if k.skeleton is not None}
        for kt in read_cvat(xml).keyframe_tracks
    }
    assert {5} <= by_id[4] and {1} <= by_id[second] and {2} <= by_id[third]


def _extra_task(path: Path, elements: dict[str, tuple[float, float]], hidden: dict[int, set[str]]) -> Path:
    """A task with a box track keyed at 0 and 20 (30 x 80 px, moving 2 px a frame to the right) and its skeleton
    track, whose ``elements`` sit at the same place in the box at both keyframes (offsets from its top left); the
    elements in ``hidden[frame]`` are outside there."""

    def skeleton(f: int) -> str:
        pts = "".join(
            f'<points label="{name}" keyframe="1" outside="{int(name in hidden.get(f, set()))}" occluded="0" '
            f'points="{10 + 2 * f + dx:.2f},{40 + dy:.2f}"/>'
            for name, (dx, dy) in elements.items()
        )
        return f'<skeleton frame="{f}" keyframe="1" z_order="0">{pts}</skeleton>'

    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task><size>30</size>'
        "<original_size><width>320</width><height>240</height></original_size></task></meta>"
        '<track id="0" label="hand" group_id="7">'
        + "".join(
            f'<box frame="{f}" keyframe="1" outside="0" xtl="{10 + 2 * f}" ytl="40" xbr="{40 + 2 * f}" ybr="120"/>'
            for f in (0, 20)
        )
        + '</track><track id="1" label="hand-skeleton" group_id="7">'
        + skeleton(0)
        + skeleton(20)
        + "</track></annotations>"
    )
    return path


def _curved_fill(tid: int, skeleton: bool) -> Track:
    """The box of :func:`_extra_task` filled along a bow: 30 px right of CVAT's line halfway (COCO-17 keypoints, when
    ``skeleton``, at fixed places in it)."""
    from prelabel.types import Skeleton, TrackedBox

    boxes = []
    for f in range(21):
        x0 = 10 + 2 * f + 30 * np.sin(np.pi * f / 20)
        sk = None
        if skeleton:
            kp = np.c_[x0 + np.arange(17.0), 50 + 2 * np.arange(17.0), np.ones(17)].astype(np.float32)
            sk = Skeleton(kp, np.ones(17, bool))
        boxes.append(TrackedBox(f, np.array([x0, 40, x0 + 30, 120.0]), 1.0, skeleton=sk))
    return Track(tid, boxes)


def _cvat_view(path: Path, label: str) -> dict[int, tuple[float, float] | None]:
    """Where CVAT shows skeleton element ``label`` of a file's first skeleton track on frames 0-20: linear between
    the shapes keying it, hidden from a keyframe where it is outside to the next one."""
    keys = []
    for s in ET.parse(path).getroot().findall("track")[1]:
        for p in s.findall("points"):
            if p.get("label") == label and p.get("keyframe", "1") == "1":
                x, y = (float(v) for v in p.get("points", "").split(","))
                keys.append((int(s.get("frame", -1)), x, y, p.get("outside") == "1"))
    keys.sort()
    view: dict[int, tuple[float, float] | None] = {}
    for (f0, x0, y0, out0), (f1, x1, y1, _) in itertools.pairwise(keys):
        for f in range(f0, f1):
            t = (f - f0) / (f1 - f0)
            view[f] = None if out0 else ((1 - t) * x0 + t * x1, (1 - t) * y0 + t * y1)
    f, x, y, out = keys[-1]
    view[f] = None if out else (x, y)
    return view


@pytest.mark.parametrize("reducer", ["auto", None])
def test_elements_that_are_not_coco_keypoints_move_with_the_filled_box(tmp_path: Path, reducer: str | None) -> None:
    """A team's skeleton with an element COCO-17 does not have (a head top next to the 17): it was written at the
    annotator's position of the keyframe before on every frame added (frozen at x=25 while the box moved on); it now
    keeps its place in the filled box, and compression keys it where CVAT's line would leave it off."""
    from prelabel.formats.cvat import patch_cvat

    elements = {**{n: (1.0, 2.0) for n in COCO17_KEYPOINTS}, "head_top": (15.0, -5.0)}
    src = _extra_task(tmp_path / "task.xml", elements, {})
    (tid,) = [t.track_id for t in read_cvat(src).tracks]
    filled = _curved_fill(tid, skeleton=True)
    out = patch_cvat(src, tmp_path / "out.xml", [filled], keyframe_reducer=reducer, anchors={tid: [0, 20]})
    view = _cvat_view(out, "head_top")
    for f in range(21):
        x0 = float(filled.boxes[f].xyxy[0])
        assert view[f] == pytest.approx((x0 + 15.0, 35.0), abs=0.05 * 80 + 0.01), f
    if reducer is None:
        assert view[10] == pytest.approx((10 + 20 + 30 + 15, 35.0), abs=0.01)


def test_a_skeleton_of_the_teams_own_is_filled_with_the_box(tmp_path: Path) -> None:
    """A skeleton none of whose elements is a COCO-17 keypoint (a hand: wrist and fingertip) was left to CVAT's line
    however the box was filled; now its elements follow the filled box, keyed where CVAT's line would stray. An element
    hidden at the first keyframe stays hidden up to the next; one hidden at the last shows up to the frame before."""
    from prelabel.formats.cvat import patch_cvat

    elements = {"wrist": (15.0, 70.0), "tip": (20.0, 5.0), "thumb": (2.0, 30.0)}
    src = _extra_task(tmp_path / "hand.xml", elements, {0: {"thumb"}, 20: {"tip"}})
    (tid,) = [t.track_id for t in read_cvat(src).tracks]
    filled = _curved_fill(tid, skeleton=False)
    out = patch_cvat(src, tmp_path / "out.xml", [filled], anchors={tid: [0, 20]})
    frames = [int(s.get("frame", -1)) for s in ET.parse(out).getroot().findall("track")[1]]
    assert frames[0] == 0 and frames[-1] == 20 and 3 <= len(frames) < 21
    wrist, tip, thumb = (_cvat_view(out, name) for name in ("wrist", "tip", "thumb"))
    for f in range(21):
        x0 = float(filled.boxes[f].xyxy[0])
        assert wrist[f] == pytest.approx((x0 + 15.0, 110.0), abs=0.05 * 80 + 0.01), f
        if f < 20:
            assert tip[f] == pytest.approx((x0 + 20.0, 45.0), abs=0.05 * 80 + 0.01), f
        assert thumb[f] is None if f < 20 else thumb[f] == pytest.approx((x0 + 2.0, 70.0), abs=0.01)
    assert tip[20] is None
    assert 19 in frames  # the tip's last frame shown, keyed so that CVAT does not move it toward where it hides


@pytest.mark.parametrize("reducer", ["auto", None])
def test_an_element_hiding_with_the_box_is_keyed_once(tmp_path: Path, reducer: str | None) -> None:
    """Where the box hides (outside from 10 to 12) an element of the team's own hides with it: that frame was written
    twice (once as where the element hides, once as "no skeleton from here"), and the file could not be read back
    ("two keyframes at frame 10")."""
    from prelabel.formats.cvat import patch_cvat

    src = _extra_task(tmp_path / "hand.xml", {"wrist": (15.0, 70.0), "tip": (20.0, 5.0)}, {})
    root = ET.parse(src).getroot()
    box_track = root.findall("track")[0]
    for f, outside in ((10, "1"), (13, "0")):
        shape = ET.SubElement(box_track, "box", frame=str(f), keyframe="1", outside=outside, xtl=str(10 + 2 * f))
        shape.attrib.update(ytl="40", xbr=str(40 + 2 * f), ybr="120")
    ET.ElementTree(root).write(src)
    (tid,) = [t.track_id for t in read_cvat(src).tracks]
    bow = _curved_fill(tid, skeleton=False)
    filled = Track(tid, [b for b in bow.boxes if not 10 <= b.frame_idx <= 12])
    out = patch_cvat(src, tmp_path / "out.xml", [filled], keyframe_reducer=reducer, anchors={tid: [0, 10, 13, 20]})
    frames = [int(s.get("frame", -1)) for s in ET.parse(out).getroot().findall("track")[1]]
    assert len(frames) == len(set(frames)) and 10 in frames, frames
    back = read_cvat(out).track(tid)
    assert not any(10 <= b.frame_idx <= 12 for b in back.boxes)


def _one_track_xml(size: str, boxes: list[tuple[int, int]]) -> str:
    """A CVAT file with one person track: (frame, outside) keyframes, and ``size`` as its <task> says it."""
    rows = "".join(f'<box frame="{f}" keyframe="1" outside="{o}" xtl="1" ytl="1" xbr="9" ybr="9"/>' for f, o in boxes)
    return (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task>'
        f'{size}</task></meta><track id="4" label="person">{rows}</track></annotations>'
    )


def test_only_the_frames_a_track_is_drawn_on_count_against_the_limit_of_a_file_without_length(
    tmp_path: Path,
) -> None:
    """A file that states no length bounds its keyframes by nothing: a track drawn on more than MAX_TRACK_FRAMES
    frames (a frame number off by digits) is refused naming it. Frames out of view do not count, and a file that
    states its length is bounded by it: long tasks with short tracks read as before."""
    from prelabel.types import MAX_TRACK_FRAMES

    far = MAX_TRACK_FRAMES + 100_000
    ok = tmp_path / "gap.xml"  # shown 0-9, out of view until `far`, shown 11 frames there
    ok.write_text(_one_track_xml("", [(0, 0), (10, 1), (far, 0), (far + 10, 0)]))
    (track,) = read_cvat(ok).tracks
    assert len(track.boxes) == 21
    sized = tmp_path / "sized.xml"  # a task of 2.5 M frames with a person seen for 10 of them
    sized.write_text(_one_track_xml(f"<size>{far + 500_000}</size>", [(0, 0), (10, 1)]))
    (track,) = read_cvat(sized).tracks
    assert len(track.boxes) == 10
    typo = tmp_path / "typo.xml"
    typo.write_text(_one_track_xml("", [(0, 0), (far, 0)]))
    with pytest.raises(InvalidInputError, match=rf"typo.xml: CVAT track id=4: .* drawn on {far + 1} frames"):
        read_cvat(typo)
