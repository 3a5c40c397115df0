"""Round trips of the tracking, interpolation and segment RPCs through a real server and client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from prelabel.client import PrelabelClient
from prelabel.metrics.interpolation import box_iou
from prelabel.service import convert
from prelabel.service.context import ServiceContext
from prelabel.service.messages import box_from_proto, skeleton_from_proto
from prelabel.service.server import PrelabelServer
from prelabel.service.servicer import PrelabelServicer
from prelabel.settings import Settings
from prelabel.synthetic import generate, write_scene
from prelabel.types import Track, TrackedBox
from prelabel.v1 import prelabel_pb2 as pb


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrelabelClient, Path]]:
    tmp = tmp_path_factory.mktemp("rpcs")
    settings = Settings(port=0, preload=[], data_dir=tmp / "data", allowed_roots=[tmp], drain_s=0.0, grace_s=1.0)
    srv = PrelabelServer(settings)
    srv.start()
    with PrelabelClient(f"127.0.0.1:{srv.port}", timeout_s=120) as client:
        yield client, tmp
    srv.stop()


def _box(xyxy: np.ndarray) -> pb.Box:
    return pb.Box(x1=float(xyxy[0]), y1=float(xyxy[1]), x2=float(xyxy[2]), y2=float(xyxy[3]))


def test_track_detections_keeps_ids_through_a_generated_clip(env: tuple[PrelabelClient, Path]) -> None:
    client, _ = env
    scene = generate("occlusion", 11, num_frames=90, render=False)
    people = [t for t in scene.tracks if t.class_name == "person"]
    frames = []
    for f in range(scene.info.num_frames):
        dets = [
            pb.Detection(box=_box(b.xyxy), class_id=0, class_name="person", score=0.9)
            for t in people
            for b in t.boxes
            if b.frame_idx == f and b.score > 0.3
        ]
        frames.append(pb.FrameDetections(frame_idx=f, ts_ms=float(scene.ts_ms[f]), detections=dets))
    resp = client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=frames, fps=scene.info.fps), timeout=60)
    # Every ground-truth identity maps to exactly one output id (no switches), by best IoU per frame.
    gt_to_ids: dict[int, set[int]] = {}
    by_frame = {ft.frame_idx: ft for ft in resp.frames}
    for t in people:
        for b in t.boxes:
            ft = by_frame.get(b.frame_idx)
            if ft is None or b.score <= 0.3:
                continue
            best, best_iou = None, 0.5
            for o in ft.objects:
                ob = np.array([o.box.x1, o.box.y1, o.box.x2, o.box.y2])
                tl, br = np.maximum(ob[:2], b.xyxy[:2]), np.minimum(ob[2:], b.xyxy[2:])
                inter = float(np.prod(np.clip(br - tl, 0, None)))
                union = float(np.prod(ob[2:] - ob[:2]) + np.prod(b.xyxy[2:] - b.xyxy[:2]) - inter)
                if inter / union > best_iou:
                    best, best_iou = o.track_id, inter / union
            if best is not None:
                gt_to_ids.setdefault(t.track_id, set()).add(best)
    assert len(gt_to_ids) >= len(people) - 1
    switches = sum(len(ids) - 1 for ids in gt_to_ids.values())
    assert switches <= 1, gt_to_ids


def test_track_detections_bad_rows_are_invalid(env: tuple[PrelabelClient, Path]) -> None:
    client, _ = env
    good = pb.Detection(box=pb.Box(x1=1, y1=1, x2=10, y2=20), score=0.9)
    cases = {
        "nan": [pb.FrameDetections(frame_idx=0, detections=[good, pb.Detection(box=pb.Box(x1=float("nan")))])],
        "negative": [pb.FrameDetections(frame_idx=0, detections=[pb.Detection(box=pb.Box(x1=5, y1=5, x2=1, y2=9))])],
        "order": [pb.FrameDetections(frame_idx=3, detections=[good]), pb.FrameDetections(frame_idx=2)],
    }
    for name, frames in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=frames, fps=10), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert "frame" in (err.value.details() or ""), name


def test_tracker_options_change_only_what_they_name(env: tuple[PrelabelClient, Path]) -> None:
    """Naming the default tracker, or setting max_gap_s alone, had turned offline refinement off (any tracker_options
    did): a user tuning max_gap_s got online output, unlinked and unsmoothed. Now refinement is on unless
    offline_refine says false, and max_gap_s with it off is refused (it is the offline linking's)."""
    client, _ = env

    def det(f: int) -> pb.Detection:
        return pb.Detection(box=pb.Box(x1=10 + 3 * f, y1=10, x2=40 + 3 * f, y2=80), score=0.9, class_name="person")

    frames = [pb.FrameDetections(frame_idx=f, detections=[det(f)]) for f in [*range(10), *range(16, 26)]]

    def sources(options: pb.TrackerOptions | None) -> set[str]:
        req = pb.TrackDetectionsRequest(frames=frames, fps=10)
        if options is not None:
            req.tracker_options.CopyFrom(options)
        resp = client.stub.TrackDetections(req, timeout=30)
        return {pb.Source.Name(o.source) for f in resp.frames for o in f.objects}

    refined = sources(None)
    assert "SOURCE_SMOOTHED" in refined
    assert sources(pb.TrackerOptions(tracker="prelabel")) == refined
    assert sources(pb.TrackerOptions(max_gap_s=5)) == refined
    assert sources(pb.TrackerOptions(offline_refine=False)) == {"SOURCE_DETECTOR"}
    with pytest.raises(grpc.RpcError) as err:
        sources(pb.TrackerOptions(offline_refine=False, max_gap_s=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_gap_s" in (err.value.details() or "")


def test_track_detections_bad_options_and_values(env: tuple[PrelabelClient, Path]) -> None:
    """Each is refused with its status and the server goes on serving; sightings far apart cost what they hold."""
    client, _ = env
    good = pb.Detection(box=pb.Box(x1=1, y1=1, x2=10, y2=20), score=0.9, class_id=0, class_name="person")
    frames = [pb.FrameDetections(frame_idx=i, detections=[good]) for i in range(10)]
    huge = pb.Detection(box=pb.Box(x1=1, y1=1, x2=10, y2=20), score=0.9, class_id=2**31 - 1, class_name="x")
    cases = {
        "class id": (pb.TrackDetectionsRequest(frames=[pb.FrameDetections(detections=[huge])], fps=10), "class_id"),
        "gap nan": (
            pb.TrackDetectionsRequest(frames=frames, fps=10, tracker_options=pb.TrackerOptions(max_gap_s=float("nan"))),
            "max_gap_s",
        ),
        "gap negative": (
            pb.TrackDetectionsRequest(frames=frames, fps=10, tracker_options=pb.TrackerOptions(max_gap_s=-1)),
            "max_gap_s",
        ),
        "fps inf": (pb.TrackDetectionsRequest(frames=frames, fps=float("inf")), "fps"),
    }
    for name, (req, word) in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            client.stub.TrackDetections(req, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert word in (err.value.details() or ""), name
    with pytest.raises(grpc.RpcError) as err:
        req = pb.TrackDetectionsRequest(frames=frames, fps=10, tracker_options=pb.TrackerOptions(tracker="nope"))
        client.stub.TrackDetections(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "prelabel" in (err.value.details() or "")
    far = [pb.FrameDetections(frame_idx=i * 10_000_000, detections=[good]) for i in range(4)]
    resp = client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=far, fps=30), timeout=30)
    assert [f.frame_idx for f in resp.frames if f.objects] == [f.frame_idx for f in far]  # none between filled
    resp = client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=frames, fps=10), timeout=30)
    assert {o.track_id for f in resp.frames for o in f.objects} == {1}


def test_track_detections_times_and_limits(env: tuple[PrelabelClient, Path]) -> None:
    """A time of 0 is a time where the client gives times (a clip cut from a longer video: frames from 100, times from
    0 ms); it had been taken as "not given" and replaced by 100 / fps, and the request refused with a time never sent.
    Negative times are refused (CompressTracks refused the answer). Limits that keep small requests small: detections
    per frame (association grows with their square) and filled frames per detection sent (a 310-byte request had
    filled 900,000 frames, past 4 GB)."""
    client, _ = env

    def det(f: int, x: float = 10.0) -> pb.Detection:
        return pb.Detection(box=pb.Box(x1=x + 2 * f, y1=10, x2=x + 30 + 2 * f, y2=80), score=0.9, class_name="person")

    cut = [pb.FrameDetections(frame_idx=100 + i, ts_ms=40.0 * i, detections=[det(i)]) for i in range(20)]
    resp = client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=cut, fps=25), timeout=30)
    assert [f.ts_ms for f in resp.frames] == [40.0 * i for i in range(20)]
    cases = {
        "negative time": (
            [pb.FrameDetections(frame_idx=i, ts_ms=40.0 * i - 500, detections=[det(i)]) for i in range(5)],
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            "frame 0: ts_ms must be a finite time >= 0",
        ),
        "frame size": (cut, {"width": -5, "height": 576}, grpc.StatusCode.INVALID_ARGUMENT, "frame size -5x576"),
        "crowded frame": (
            [pb.FrameDetections(frame_idx=0, detections=[det(0, x) for x in range(1001)])],
            {},
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "frame 0 (message 0): 1001 detections",
        ),
        "far frames, close times": (
            [pb.FrameDetections(frame_idx=f, ts_ms=t, detections=[det(0)])
             for f, t in zip([0, 1, 2, 900_000, 900_001, 900_002], [0, 0.1, 0.2, 0.3, 0.4, 0.5], strict=True)],
            {},
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "more than 100006 boxes",
        ),
    }  # fmt: skip
    for name, (frames, size, code, says) in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=frames, fps=30, **size), timeout=30)
        assert err.value.code() == code, name
        assert says in (err.value.details() or ""), (name, err.value.details())


def test_interpolate_passes_through_keyframes_and_suggests(env: tuple[PrelabelClient, Path]) -> None:
    client, _ = env
    kfs = [
        pb.Keyframe(frame_idx=0, box=pb.Box(x1=0, y1=0, x2=10, y2=10), has_box=True),
        pb.Keyframe(frame_idx=10, box=pb.Box(x1=100, y1=0, x2=110, y2=10), has_box=True),
        pb.Keyframe(frame_idx=14, outside=True),
        pb.Keyframe(frame_idx=20, box=pb.Box(x1=50, y1=50, x2=70, y2=70), has_box=True),
    ]
    req = pb.InterpolateRequest(tracks=[pb.KeyframeTrack(track_id=4, keyframes=kfs)], method="linear")
    resp = client.stub.Interpolate(req, timeout=30)
    (track,) = resp.tracks
    frames = {f.frame_idx: f for f in track.frames}
    assert sorted(frames) == list(range(21))
    assert frames[5].box.x1 == pytest.approx(50.0) and frames[5].method == "linear"
    assert frames[10].is_keyframe and frames[10].box.x1 == pytest.approx(100.0)
    assert all(frames[f].outside for f in range(14, 20))
    assert frames[15].source == pb.SOURCE_UNSPECIFIED and frames[5].source == pb.SOURCE_INTERPOLATED  # nothing shown
    assert not frames[20].outside and frames[20].box.x2 == pytest.approx(70.0)
    assert track.suggestions


def test_interpolate_bad_keyframes_name_track_and_frame(env: tuple[PrelabelClient, Path]) -> None:
    client, _ = env
    box = pb.Box(x1=0, y1=0, x2=10, y2=10)
    cases = {
        "unsorted": [pb.Keyframe(frame_idx=5, box=box, has_box=True), pb.Keyframe(frame_idx=2, box=box, has_box=True)],
        "nan": [pb.Keyframe(frame_idx=0, box=pb.Box(x1=float("nan"), x2=1, y2=1), has_box=True)],
        "unknown method": [pb.Keyframe(frame_idx=0, box=box, has_box=True)],
    }
    for name, kfs in cases.items():
        method = "bogus" if name == "unknown method" else "linear"
        req = pb.InterpolateRequest(tracks=[pb.KeyframeTrack(track_id=7, keyframes=kfs)], method=method)
        with pytest.raises(grpc.RpcError) as err:
            client.stub.Interpolate(req, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        if name != "unknown method":
            assert "track 7" in (err.value.details() or ""), name


def test_the_client_interpolates_from_keyframes(env: tuple[PrelabelClient, Path]) -> None:
    from prelabel.types import Keyframe

    client, _ = env
    keys = {
        2: [Keyframe(0, np.array([0.0, 0, 10, 10])), Keyframe(10, np.array([100.0, 0, 110, 10]))],
        5: [Keyframe(3, np.array([0.0, 0, 20, 20])), Keyframe(5, outside=True), Keyframe(8, np.array([5.0, 5, 9, 9]))],
    }
    got = client.interpolate(keys, "linear", num_suggestions=0)
    assert [t.track_id for t in got] == [2, 5]
    two = {f.frame_idx: f for f in got[0].frames}
    assert sorted(two) == list(range(11)) and two[5].box.x1 == pytest.approx(50.0) and not got[0].suggestions
    five = {f.frame_idx: f for f in got[1].frames}
    assert five[5].outside and five[7].outside and not five[8].outside and five[8].is_keyframe


def test_interpolate_num_suggestions_zero_means_none(env: tuple[PrelabelClient, Path]) -> None:
    client, _ = env
    kfs = [
        pb.Keyframe(frame_idx=0, box=pb.Box(x1=0, y1=0, x2=10, y2=10), has_box=True),
        pb.Keyframe(frame_idx=30, box=pb.Box(x1=100, y1=0, x2=110, y2=10), has_box=True),
    ]
    track = pb.KeyframeTrack(track_id=1, keyframes=kfs)
    unset = client.stub.Interpolate(pb.InterpolateRequest(tracks=[track], method="linear"), timeout=30)
    assert len(unset.tracks[0].suggestions) == 3  # the default
    none = client.stub.Interpolate(
        pb.InterpolateRequest(tracks=[track], method="linear", num_suggestions=0), timeout=30
    )
    assert len(none.tracks[0].suggestions) == 0
    one = client.stub.Interpolate(pb.InterpolateRequest(tracks=[track], method="linear", num_suggestions=1), timeout=30)
    assert len(one.tracks[0].suggestions) == 1
    most = client.stub.Interpolate(
        pb.InterpolateRequest(tracks=[track], method="linear", num_suggestions=1000), timeout=30
    )
    assert len({s.frame_idx for s in most.tracks[0].suggestions}) == 29  # every frame between the keyframes
    with pytest.raises(grpc.RpcError) as err:
        client.stub.Interpolate(
            pb.InterpolateRequest(tracks=[track], method="linear", num_suggestions=1001), timeout=30
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "1000" in (err.value.details() or "")


def test_interpolate_refuses_a_span_too_long_before_working_and_keeps_serving(
    env: tuple[PrelabelClient, Path],
) -> None:
    """Without a video nothing bounds the frame numbers: a keyframe at frame 2e9 would have the server build 2e9
    boxes (and run out of memory). It is refused up front, naming the track, and the server answers the next call."""
    client, _ = env
    box = pb.Box(x1=0, y1=0, x2=10, y2=10)
    far = [pb.Keyframe(frame_idx=0, box=box, has_box=True), pb.Keyframe(frame_idx=2_000_000_000, box=box, has_box=True)]
    req = pb.InterpolateRequest(tracks=[pb.KeyframeTrack(track_id=3, keyframes=far)], method="linear")
    with pytest.raises(grpc.RpcError) as err:
        client.stub.Interpolate(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "track 3" in (err.value.details() or "") and "split" in (err.value.details() or "")
    near = [pb.Keyframe(frame_idx=0, box=box, has_box=True), pb.Keyframe(frame_idx=5, box=box, has_box=True)]
    ok = client.stub.Interpolate(
        pb.InterpolateRequest(tracks=[pb.KeyframeTrack(track_id=3, keyframes=near)]), timeout=10
    )
    assert len(ok.tracks[0].frames) == 6


def test_interpolate_on_a_corrupt_video_says_it_cannot_be_read(env: tuple[PrelabelClient, Path]) -> None:
    client, tmp = env
    bad = tmp / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    box = pb.Box(x1=0, y1=0, x2=10, y2=10)
    kfs = [pb.Keyframe(frame_idx=0, box=box, has_box=True), pb.Keyframe(frame_idx=4, box=box, has_box=True)]
    req = pb.InterpolateRequest(
        tracks=[pb.KeyframeTrack(track_id=1, keyframes=kfs)], method="guided", video=pb.VideoSource(path=str(bad))
    )
    with pytest.raises(grpc.RpcError) as err:
        client.stub.Interpolate(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "corrupt.mp4 cannot be read" in (err.value.details() or "")


def test_interpolate_with_detector_models_follows_a_fast_person(env: tuple[PrelabelClient, Path]) -> None:
    """A person crossing a generated clip fast: with the shipped detectors run on the frames, guided follows them;
    with the frames alone it falls behind. Bad detector requests are refused with the right status."""
    client, tmp = env
    scene = generate("fast-motion", 21, num_frames=41)
    video = write_scene(scene, tmp / "fast21")["video"]
    (track,) = [t for t in scene.tracks if t.track_id == 3]
    f = track.frames
    start = int(np.flatnonzero(f == 4)[0])
    gt = track.xyxy[start : start + 37]
    assert np.array_equal(f[start : start + 37], np.arange(4, 41))  # one visible run of 37 frames
    kidx = [0, 18, 36]
    kfs = [pb.Keyframe(frame_idx=4 + i, box=_box(gt[i]), has_box=True) for i in kidx]
    inner = np.ones(len(gt), bool)
    inner[kidx] = False

    def mean_iou(models: list[str]) -> float:
        req = pb.InterpolateRequest(
            tracks=[pb.KeyframeTrack(track_id=3, label="person", keyframes=kfs)],
            method="guided",
            video=pb.VideoSource(path=str(video)),
            detector_models=models,
        )
        (out,) = client.stub.Interpolate(req, timeout=120).tracks
        boxes = np.array([[fr.box.x1, fr.box.y1, fr.box.x2, fr.box.y2] for fr in out.frames])
        return float(box_iou(boxes[inner], gt[inner]).mean())

    with_dets = mean_iou(["prelabel-synth-pose", "prelabel-synth-det"])
    frames_only = mean_iou([])
    assert with_dets > 0.8 and with_dets > frames_only + 0.2, (with_dets, frames_only)

    def status(**fields: object) -> grpc.StatusCode:
        base: dict[str, object] = {"tracks": [pb.KeyframeTrack(track_id=3, keyframes=kfs)], "method": "guided"}
        with pytest.raises(grpc.RpcError) as err:
            client.stub.Interpolate(pb.InterpolateRequest(**(base | fields)), timeout=30)
        return err.value.code()

    assert status(detector_models=["prelabel-synth-det"]) == grpc.StatusCode.INVALID_ARGUMENT  # no video
    assert status(video=pb.VideoSource(path=str(video)), detector_models=["no-such-model"]) == grpc.StatusCode.NOT_FOUND
    on_video = pb.VideoSource(path=str(video))
    # Weights named by path lie under the allowed roots, as videos do: a caller can neither load nor probe others.
    shipped = Path(__file__).resolve().parents[2] / "models" / "prelabel-synth-det.pt"
    assert status(video=on_video, detector_models=[str(shipped)]) == grpc.StatusCode.PERMISSION_DENIED
    assert status(video=on_video, detector_models=[str(tmp / "absent.pt")]) == grpc.StatusCode.NOT_FOUND
    assert status(video=on_video, detector_models=["actions-tcn-small"]) == grpc.StatusCode.INVALID_ARGUMENT
    huge = pb.DetectOptions(imgsz=8192)  # more than 10 GB of activations: refused before any work
    assert status(video=on_video, detector_models=["prelabel-synth-det"], detect_options=huge) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    far = [
        pb.Keyframe(frame_idx=0, box=_box(gt[0]), has_box=True),
        pb.Keyframe(frame_idx=10**8, box=_box(gt[1]), has_box=True),
    ]
    assert (
        status(
            tracks=[pb.KeyframeTrack(track_id=3, keyframes=far)],
            video=pb.VideoSource(path=str(video)),
            detector_models=["prelabel-synth-det"],
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_propose_segments_from_skeleton_tracks(env: tuple[PrelabelClient, Path]) -> None:
    client, tmp = env
    scene = generate("actions", 5, num_frames=150, render=False)
    tracks = []
    for t in scene.tracks:
        if t.class_name != "person":
            continue
        st = pb.SkeletonTrack(track_id=t.track_id)
        for b in t.boxes:
            if b.skeleton is None:
                continue
            sk = pb.Skeleton(score=1.0)
            for (x, y, _c), present in zip(b.skeleton.keypoints, b.skeleton.present, strict=True):
                sk.keypoints.append(pb.Keypoint(x=float(x), y=float(y), confidence=1.0 if present else 0.0,
                                                present=bool(present)))  # fmt: skip
            st.frames.append(pb.SkeletonTrackFrame(frame_idx=b.frame_idx, ts_ms=b.ts_ms, box=_box(b.xyxy), skeleton=sk))
        tracks.append(st)
    req = pb.ProposeSegmentsRequest(skeleton_tracks=pb.SkeletonTracks(tracks=tracks, fps=scene.info.fps))
    resp = client.stub.ProposeSegments(req, timeout=60)
    assert resp.segments
    ids = {t.track_id for t in tracks}
    for seg in resp.segments:
        assert seg.track_id in ids and seg.end_frame >= seg.start_frame and seg.label
    nan_ts = pb.SkeletonTrack()
    nan_ts.CopyFrom(tracks[0])
    nan_ts.frames[3].ts_ms = float("nan")
    for bad in (
        pb.SkeletonTracks(fps=0),
        pb.SkeletonTracks(tracks=tracks, fps=float("nan")),
        pb.SkeletonTracks(tracks=[nan_ts], fps=scene.info.fps),  # segments would carry NaN times
    ):
        with pytest.raises(grpc.RpcError) as err:
            client.stub.ProposeSegments(pb.ProposeSegmentsRequest(skeleton_tracks=bad), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    def edited(edit: Callable[[pb.SkeletonTrack], None]) -> pb.SkeletonTracks:
        one = pb.SkeletonTrack()
        one.CopyFrom(tracks[0])
        edit(one)
        return pb.SkeletonTracks(tracks=[one], fps=scene.info.fps)

    def repeat_time(t: pb.SkeletonTrack) -> None:
        t.frames[10].ts_ms = t.frames[9].ts_ms

    def zero_time(t: pb.SkeletonTrack) -> None:
        t.frames[10].ts_ms = 0.0

    def negative_frame(t: pb.SkeletonTrack) -> None:
        t.frames[0].frame_idx = -1

    def swap(t: pb.SkeletonTrack) -> None:
        t.frames[10].frame_idx, t.frames[11].frame_idx = t.frames[11].frame_idx, t.frames[10].frame_idx

    # One time out of order had every time of the track replaced by frame_idx / fps, without a word.
    f9, f10, f11 = (tracks[0].frames[i].frame_idx for i in (9, 10, 11))
    for edit, says in (
        (repeat_time, f"track {tracks[0].track_id} frame {f10}: ts_ms"),
        (zero_time, f"track {tracks[0].track_id} frame {f10}: ts_ms 0.0 after"),
        (negative_frame, f"track {tracks[0].track_id} frame -1: frame_idx must be >= 0"),
        (swap, f"track {tracks[0].track_id} frame {f10}: frames must be strictly increasing (frame {f11} before it)"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            client.stub.ProposeSegments(pb.ProposeSegmentsRequest(skeleton_tracks=edited(edit)), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, edit.__name__
        assert err.value.details().startswith(says), err.value.details()
        assert err.value.details().count("track ") == 1, err.value.details()
    assert f9 < f10

    def untimed(t: pb.SkeletonTrack) -> None:
        for f in t.frames:
            f.ts_ms = 0.0

    # Times 0 throughout still mean "from the rate".
    segs = client.stub.ProposeSegments(pb.ProposeSegmentsRequest(skeleton_tracks=edited(untimed)), timeout=60).segments
    first = tracks[0].frames[0].frame_idx
    assert segs and all(
        s.start_ts_ms == pytest.approx(s.start_frame * 1000.0 / scene.info.fps) for s in segs if s.start_frame > first
    )
    # An action model named by path lies under the allowed roots, as videos and detector weights do.
    outside = Path(__file__).resolve().parents[2] / "models" / "prelabel-synth-det.pt"
    for model, code in (
        (str(outside), grpc.StatusCode.PERMISSION_DENIED),
        (str(tmp / "absent.pt"), grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.RpcError) as err:
            client.stub.ProposeSegments(
                pb.ProposeSegmentsRequest(skeleton_tracks=req.skeleton_tracks, model=model), timeout=10
            )
        assert err.value.code() == code, model


def test_track_video_streams_info_progress_and_frames(env: tuple[PrelabelClient, Path]) -> None:
    client, tmp = env
    scene = generate("default", 2, num_frames=16, width=320, height=192)
    video = write_scene(scene, tmp / "clip")["video"]
    req = pb.TrackVideoRequest(video=pb.VideoSource(path=str(video)), detector_model="arch-yolo11n")
    messages = list(client.track_video(req))
    kinds = [m.WhichOneof("item") for m in messages]
    assert kinds[0] == "info" and "progress" in kinds
    # every frame has its message and its time, empty or not (an untrained detector finds little)
    frames = [m.frame for m in messages if m.WhichOneof("item") == "frame"]
    assert [f.frame_idx for f in frames] == list(range(16))
    assert [f.ts_ms for f in frames] == pytest.approx(scene.ts_ms.tolist(), abs=1.0)
    info = next(iter(client.track_video(req))).info
    assert (info.width, info.height, info.num_frames) == (320, 192, 16)
    with pytest.raises(grpc.RpcError) as err:
        list(client.track_video(pb.TrackVideoRequest(video=pb.VideoSource(path=str(video)), start_frame=40)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_track_video_online_mode_streams_frames_while_processing(env: tuple[PrelabelClient, Path]) -> None:
    client, tmp = env
    scene = generate("default", 3, num_frames=20, width=320, height=192)
    video = write_scene(scene, tmp / "clip-online")["video"]
    req = pb.TrackVideoRequest(
        video=pb.VideoSource(path=str(video)),
        detector_model="arch-yolo11n",
        tracker_options=pb.TrackerOptions(offline_refine=False),
    )
    kinds = [m.WhichOneof("item") for m in client.track_video(req)]
    assert kinds.count("frame") == 20
    # Frames arrive between progress messages, not all at the end.
    first_frame, last_progress = kinds.index("frame"), len(kinds) - 1 - kinds[::-1].index("progress")
    assert first_frame < last_progress


def test_track_video_with_pose_attaches_skeletons_to_tracks(env: tuple[PrelabelClient, Path]) -> None:
    """The shipped detector and pose model: tracks come back with COCO-17 skeletons on their boxes."""
    client, tmp = env
    scene = generate("default", 12, num_frames=24)
    video = write_scene(scene, tmp / "clip-pose")["video"]
    req = pb.TrackVideoRequest(video=pb.VideoSource(path=str(video)), with_pose=True)
    frames = [m.frame for m in client.track_video(req) if m.WhichOneof("item") == "frame"]
    objects = [o for f in frames for o in f.objects]
    assert objects, "the shipped detector found nobody"
    with_skeleton = [o for o in objects if o.has_skeleton]
    assert len(with_skeleton) >= len(objects) // 2
    assert all(len(o.skeleton.keypoints) == 17 for o in with_skeleton)
    per_frame_ids = [[o.track_id for o in f.objects] for f in frames]
    assert all(len(ids) == len(set(ids)) for ids in per_frame_ids)  # one box per track per frame


def _rebuilt(track: pb.InterpolatedTrack) -> Track:
    """What an annotation tool shows from the keyframes: the visible frames of a linear Interpolate answer."""
    boxes = []
    for f in track.frames:
        if f.outside:
            continue
        sk = skeleton_from_proto(f.skeleton, "answer") if f.has_skeleton else None
        boxes.append(TrackedBox(f.frame_idx, box_from_proto(f.box), 1.0, skeleton=sk))
    return Track(track.track_id, boxes)


def test_compress_tracks_stores_the_trackers_output_as_few_keyframes(env: tuple[PrelabelClient, Path]) -> None:
    """TrackDetections' frames go in as they came; linear interpolation of the keyframes that come back (CVAT's and
    Label Studio's rule, here Interpolate's `linear`) rebuilds every box within the tolerance, gaps as outside."""
    client, _ = env
    scene = generate("occlusion", 11, num_frames=90, render=False)
    frames = [
        pb.FrameDetections(
            frame_idx=f,
            ts_ms=float(scene.ts_ms[f]),
            detections=[
                pb.Detection(box=_box(b.xyxy), class_id=0, class_name="person", score=0.9)
                for t in scene.tracks
                for b in t.boxes
                if t.class_name == "person" and b.frame_idx == f and b.score > 0.3
            ],
        )
        for f in range(scene.info.num_frames)
    ]
    tracked = client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=frames, fps=scene.info.fps), timeout=60)
    dense = {t.track_id: t for t in convert.tracks_from_frames(tracked.frames)}
    for min_iou in (0.8, 0.95):
        got = client.compress_tracks(tracked.frames, min_iou=min_iou)
        assert [t.track_id for t in got] == sorted(dense) and all(t.label == "person" for t in got)
        stored = sum(len(t.keyframes) for t in got)
        assert stored < sum(len(t) for t in dense.values()) / 3
        answer = client.interpolate({t.track_id: convert.keyframes_from_proto(t) for t in got}, "linear")
        for t in answer:
            rebuilt, want = _rebuilt(t), dense[t.track_id]
            assert rebuilt.frames.tolist() == want.frames.tolist()  # the same frames in view, gaps outside
            assert box_iou(rebuilt.xyxy, want.xyxy).min() >= min_iou - 1e-4
    # an annotator's own frames stay keyframes
    tid = sorted(dense)[0]
    keep = [int(dense[tid].frames[3]), int(dense[tid].frames[7])]
    kept = client.compress_tracks(tracked.frames, keep={tid: keep})[0]
    assert set(keep) <= {k.frame_idx for k in kept.keyframes if not k.outside}


def test_compress_tracks_keeps_skeletons_within_the_tolerance(
    env: tuple[PrelabelClient, Path], pose_track: Track, keypoint_errors: Callable[[Track, Track], np.ndarray]
) -> None:
    client, _ = env
    (got,) = client.compress_tracks(convert.tracks_to_frames([pose_track]), max_keypoint_error=0.05)
    assert len(got.keyframes) < len(pose_track) / 2
    (answer,) = client.interpolate({got.track_id: convert.keyframes_from_proto(got)}, "linear")
    rebuilt = _rebuilt(answer)
    assert rebuilt.frames.tolist() == pose_track.frames.tolist()
    assert keypoint_errors(pose_track, rebuilt).max() <= 0.05 + 1e-4


def test_compress_tracks_bad_input_names_track_and_frame(env: tuple[PrelabelClient, Path]) -> None:
    client, _ = env
    box = pb.Box(x1=0, y1=0, x2=10, y2=10)

    def frame(f: int, *objects: pb.TrackedObject) -> pb.FrameTracks:
        return pb.FrameTracks(frame_idx=f, objects=list(objects))

    good = [frame(0, pb.TrackedObject(track_id=4, box=box)), frame(1, pb.TrackedObject(track_id=4, box=box))]
    cases: dict[str, tuple[pb.CompressTracksRequest, str]] = {
        "twice": (pb.CompressTracksRequest(frames=[frame(2, *[pb.TrackedObject(track_id=4, box=box)] * 2)]), "twice"),
        "nan": (
            pb.CompressTracksRequest(frames=[frame(3, pb.TrackedObject(track_id=4, box=pb.Box(x1=float("nan"))))]),
            "track 4 frame 3",
        ),
        "reversed": (
            pb.CompressTracksRequest(frames=[frame(3, pb.TrackedObject(track_id=4, box=pb.Box(x1=5, x2=1, y2=1)))]),
            "track 4 frame 3",
        ),
        "skeleton": (
            pb.CompressTracksRequest(
                frames=[
                    frame(
                        6,
                        pb.TrackedObject(
                            track_id=4, box=box, has_skeleton=True, skeleton=pb.Skeleton(keypoints=[pb.Keypoint()])
                        ),
                    )
                ]
            ),
            "track 4 frame 6",
        ),
        "score": (
            pb.CompressTracksRequest(frames=[frame(5, pb.TrackedObject(track_id=4, box=box, score=float("nan")))]),
            "track 4 frame 5: score",
        ),
        "track id": (pb.CompressTracksRequest(frames=[frame(0, pb.TrackedObject(track_id=0, box=box))]), "positive"),
        "frame": (pb.CompressTracksRequest(frames=[frame(-2, pb.TrackedObject(track_id=4, box=box))]), "frame -2"),
        "empty": (pb.CompressTracksRequest(frames=[frame(0)]), "no tracks"),
        "min_iou": (pb.CompressTracksRequest(frames=good, min_iou=1.5), "min_iou"),
        "error": (pb.CompressTracksRequest(frames=good, max_keypoint_error=-1), "max_keypoint_error"),
        "keep": (pb.CompressTracksRequest(frames=good, keep=[pb.KeepFrames(track_id=9, frame_idx=[0])]), "track 9"),
        "keep frame": (
            pb.CompressTracksRequest(frames=good, keep=[pb.KeepFrames(track_id=4, frame_idx=[-3])]),
            "track 4 frame -3",
        ),
        "keep past": (
            pb.CompressTracksRequest(frames=good, num_frames=5, keep=[pb.KeepFrames(track_id=4, frame_idx=[5])]),
            "track 4 frame 5",
        ),
        "num_frames": (pb.CompressTracksRequest(frames=good, num_frames=1), "track 4 frame 1"),
        "no box": (pb.CompressTracksRequest(frames=[frame(2, pb.TrackedObject(track_id=4))]), "track 4 frame 2"),
        "error inf": (pb.CompressTracksRequest(frames=good, max_keypoint_error=float("inf")), "max_keypoint_error"),
    }
    for name, (req, says) in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            client.stub.CompressTracks(req, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert says in (err.value.details() or ""), (name, err.value.details())
        if name in ("min_iou", "error", "error inf"):  # a field of the request, not of a track
            assert "track" not in (err.value.details() or ""), name
    ok = client.stub.CompressTracks(pb.CompressTracksRequest(frames=good), timeout=10)
    assert [k.frame_idx for k in ok.tracks[0].keyframes] == [0, 1]


def test_compress_tracks_closes_a_track_that_ends_before_the_video(env: tuple[PrelabelClient, Path]) -> None:
    """With the video's frame count, a track that ends early gets an outside keyframe after its last box (the tools
    keep drawing the last keyframe otherwise); outside keyframes hold the box the track was left at. The label is
    the class most of the track's boxes have, whatever order the frames come in."""
    client, _ = env

    def obj(f: int, name: str = "person") -> pb.TrackedObject:
        return pb.TrackedObject(track_id=2, box=pb.Box(x1=f, y1=0, x2=f + 10, y2=20), class_name=name)

    frames = [pb.FrameTracks(frame_idx=f, objects=[obj(f, "dog" if f == 0 else "person")]) for f in (0, 1, 2, 6, 7)]
    unknown = client.compress_tracks(frames)[0]
    assert [(k.frame_idx, k.outside) for k in unknown.keyframes] == [(0, False), (2, False), (3, True), (6, False),
                                                                      (7, False)]  # fmt: skip
    assert unknown.keyframes[2].has_box and unknown.keyframes[2].box.x1 == 2.0  # where the track was left
    known = client.compress_tracks(frames[::-1], num_frames=100)[0]
    assert [(k.frame_idx, k.outside) for k in known.keyframes][-2:] == [(7, False), (8, True)]
    assert known.label == unknown.label == "person"
    assert [(k.frame_idx, k.outside) for k in client.compress_tracks(frames, num_frames=8)[0].keyframes][-1] == (
        7,
        False,
    )  # the track ends on the video's last frame


def test_a_call_whose_caller_has_gone_stops(env: tuple[PrelabelClient, Path]) -> None:
    """Between tracks the servicer checks that the caller is still there; when not, the work stops (CANCELLED)."""
    from prelabel.errors import CancelledError

    class Gone:
        def __init__(self, active_checks: int = 0) -> None:
            self.left = active_checks

        def is_active(self) -> bool:
            self.left -= 1
            return self.left >= 0

    _, tmp = env
    ctx = ServiceContext.build(Settings(port=0, preload=[], data_dir=tmp / "gone", allowed_roots=[tmp]))
    try:
        servicer = PrelabelServicer(ctx)
        frames = [pb.FrameTracks(frame_idx=0, objects=[pb.TrackedObject(track_id=1, box=pb.Box(x2=5, y2=5))])]
        with pytest.raises(CancelledError):
            servicer.CompressTracks(pb.CompressTracksRequest(frames=frames), Gone())
        kfs = [pb.Keyframe(frame_idx=0, box=pb.Box(x2=5, y2=5), has_box=True)]
        with pytest.raises(CancelledError):
            servicer.Interpolate(pb.InterpolateRequest(tracks=[pb.KeyframeTrack(track_id=1, keyframes=kfs)]), Gone())
        # one long track: the caller goes after the check before it, and the compression itself stops
        rng = np.random.default_rng(0)
        xs = np.cumsum(rng.normal(0, 3, 3000)) + 500
        long = [
            pb.FrameTracks(
                frame_idx=f, objects=[pb.TrackedObject(track_id=1, box=pb.Box(x1=x, y1=0, x2=x + 20, y2=40))]
            )
            for f, x in enumerate(xs)
        ]
        with pytest.raises(CancelledError):
            servicer.CompressTracks(pb.CompressTracksRequest(frames=long), Gone(active_checks=1))
        assert servicer.CompressTracks(pb.CompressTracksRequest(frames=long), Gone(active_checks=10**6)).tracks
    finally:
        ctx.close()


def test_a_skeleton_only_track_is_compressed(
    env: tuple[PrelabelClient, Path], pose_track: Track, keypoint_errors: Callable[[Track, Track], np.ndarray]
) -> None:
    """Interpolate's answer for a skeleton-only track (frames_of sends its frames without a box) is boxed around its
    keypoints and compressed like any other."""
    from prelabel.client import frames_of
    from prelabel.types import Keyframe

    client, _ = env
    shown = [b for b in pose_track.boxes if b.skeleton is not None and b.frame_idx < 70]
    keys = [Keyframe(b.frame_idx, None, b.skeleton) for b in shown[::3]]
    (answer,) = client.interpolate({5: keys}, "linear")
    frames = frames_of([answer])
    assert frames and not any(o.HasField("box") for f in frames for o in f.objects)
    (stored,) = client.compress_tracks(frames)
    assert 2 <= len(stored.keyframes) < len(frames) / 2
    assert all(k.has_skeleton for k in stored.keyframes)


def test_a_skeleton_hidden_from_a_keyframe_is_out_of_view_until_one_shows_it(
    env: tuple[PrelabelClient, Path], pose_track: Track
) -> None:
    """A skeleton-only track hidden at a keyframe (no keypoint present) and shown again later: the frames between
    show no skeleton (as those before an outside keyframe), and frames_of leaves them out, so CompressTracks stores
    the hiding as out of view. It answered INVALID_ARGUMENT ("no box, and no skeleton with a present keypoint")."""
    from prelabel.client import frames_of
    from prelabel.types import Keyframe, Skeleton

    client, _ = env
    shown = [b for b in pose_track.boxes if b.skeleton is not None and b.frame_idx < 70]
    keys = [Keyframe(b.frame_idx, None, b.skeleton) for b in shown[::3]]
    hide = keys[2].frame_idx
    assert keys[2].skeleton is not None
    keys[2] = Keyframe(hide, None, Skeleton(keys[2].skeleton.keypoints, np.zeros(17, bool)))
    show = keys[3].frame_idx
    (answer,) = client.interpolate({5: keys}, "linear")
    by = {f.frame_idx: f for f in answer.frames}
    assert by[hide].has_skeleton and not any(k.present for k in by[hide].skeleton.keypoints)  # as sent
    assert not any(by[f].has_skeleton for f in range(hide + 1, show))
    assert by[hide - 1].has_skeleton and by[show].has_skeleton
    frames = frames_of([answer])
    assert not ({f.frame_idx for f in frames} & set(range(hide, show)))
    (stored,) = client.compress_tracks(frames)
    got = {k.frame_idx: k for k in stored.keyframes}
    assert got[hide].outside and not got[show].outside


def test_an_interpolated_track_is_stored_with_the_annotators_keyframes(env: tuple[PrelabelClient, Path]) -> None:
    """Interpolate's answer goes into CompressTracks (client.frames_of) with the annotator's keyframes kept: they come
    back exactly, with the frames between stored as few keyframes."""
    from prelabel.client import frames_of
    from prelabel.types import Keyframe

    client, _ = env
    keys = [Keyframe(0, np.array([0.0, 0, 20, 40])), Keyframe(25, np.array([150.0, 60, 170, 100])),
            Keyframe(30, outside=True), Keyframe(40, np.array([300.0, 0, 320, 40])),
            Keyframe(70, np.array([0.0, 90, 20, 130]))]  # fmt: skip
    (answer,) = client.interpolate({3: keys}, "spline", labels={3: "person"})
    frames = frames_of([answer], {3: "person"})
    assert [f.frame_idx for f in frames] == [*range(30), *range(40, 71)]
    annotated = [k.frame_idx for k in keys if not k.outside]
    (stored,) = client.compress_tracks(frames, keep={3: annotated})
    assert stored.label == "person"
    got = {k.frame_idx: k for k in stored.keyframes}
    for k in keys:
        assert got[k.frame_idx].outside == k.outside
        if k.xyxy is not None:
            assert [got[k.frame_idx].box.x1, got[k.frame_idx].box.y1] == pytest.approx(k.xyxy[:2].tolist())
    assert len(stored.keyframes) < 71 - 10
