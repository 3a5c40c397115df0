"""Interpolate sessions: what the service keeps of a video between calls never changes an answer, and saves work."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prelabel.client import PrelabelClient
from prelabel.service.server import PrelabelServer
from prelabel.service.sessions import InterpolationSessions
from prelabel.settings import Settings
from prelabel.synthetic import generate, write_scene
from prelabel.types import Detections
from prelabel.v1 import prelabel_pb2 as pb


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("sessions")
    scene = generate("fast-motion", 21, num_frames=41)
    return write_scene(scene, tmp / "clip")["video"], scene


def test_detections_run_once_per_frame(clip: tuple[Path, Any]) -> None:
    video, _ = clip
    session = InterpolationSessions().get(video)
    seen: list[int] = []

    def fake_detect(detectors: object, reader: object, frames: list[int], options: object) -> dict[int, Detections]:
        seen.extend(frames)
        return {f: Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)) for f in frames}

    key = (("m",), "")
    first = session.detections(key, [], range(0, 21), None, run=fake_detect)
    again = session.detections(key, [], range(5, 15), None, run=fake_detect)
    assert again is first and seen == list(range(21))  # nothing new to run: the same mapping
    grown = session.detections(key, [], range(10, 31), None, run=fake_detect)
    assert seen == list(range(31)) and grown is not first and sorted(grown) == list(range(31))
    other = session.detections((("n",), ""), [], range(0, 3), None, run=fake_detect)
    assert sorted(other) == [0, 1, 2] and seen[-3:] == [0, 1, 2]  # another detector set has its own frames
    assert session.for_label(key, grown, "ball") is session.for_label(key, grown, "ball")


def test_answers_of_outdated_detections_are_let_go(clip: tuple[Path, Any]) -> None:
    """An answer is served only with the detections it was computed from; once a call detects more frames those
    answers can never be served, and they (and the detections they hold) are dropped at once (a reviewer: 30 edits
    that each widened the span kept 30 outdated detection sets alive, 159 MB where 19 were needed)."""
    video, _ = clip
    session = InterpolationSessions().get(video)

    def fake_detect(detectors: object, reader: object, frames: list[int], options: object) -> dict[int, Detections]:
        return {f: Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)) for f in frames}

    key, other_key = (("m",), ""), (("n",), "")
    dets = session.detections(key, [], range(0, 10), None, run=fake_detect)
    others = session.detections(other_key, [], range(0, 10), None, run=fake_detect)
    session.store_result(("auto", key, 3, b"track"), dets, b"answer")
    session.store_result(("auto", other_key, 3, b"track"), others, b"other answer")
    assert session.result(("auto", key, 3, b"track"), dets) == b"answer"
    assert session.detections(key, [], range(0, 10), None, run=fake_detect) is dets  # nothing new: still served
    assert session.result(("auto", key, 3, b"track"), dets) == b"answer"
    grown = session.detections(key, [], range(0, 20), None, run=fake_detect)
    assert grown is not dets and [k[1] for k in session._results] == [other_key]
    assert session.result(("auto", other_key, 3, b"track"), others) == b"other answer"


def test_sessions_are_per_file_and_bounded(clip: tuple[Path, Any], tmp_path: Path) -> None:
    video, _ = clip
    copies = []
    for i in range(3):
        copies.append(tmp_path / f"v{i}.mp4")
        shutil.copy(video, copies[-1])
    sessions = InterpolationSessions(max_sessions=2)
    s0 = sessions.get(copies[0])
    assert sessions.get(copies[0]) is s0
    s0.reader.read(3)
    sessions.get(copies[1])
    sessions.get(copies[2])
    assert len(sessions) == 2
    assert sessions.get(copies[0]) is not s0  # the least recently used was closed; a new one takes its place
    before = sessions.get(copies[1])
    st = copies[1].stat()
    os.utime(copies[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed: another video
    s1 = sessions.get(copies[1])
    assert s1 is not before and sessions.get(copies[1]) is s1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, clip: tuple[Path, Any]) -> Iterator[tuple[PrelabelServer, Path]]:
    tmp = clip[0].parent.parent
    settings = Settings(port=0, preload=[], data_dir=tmp / "data", allowed_roots=[tmp], drain_s=0.0, grace_s=1.0)
    srv = PrelabelServer(settings)
    srv.start()
    yield srv, tmp
    srv.stop()


def _box(xyxy: np.ndarray) -> pb.Box:
    return pb.Box(x1=float(xyxy[0]), y1=float(xyxy[1]), x2=float(xyxy[2]), y2=float(xyxy[3]))


def _person_boxes(scene: Any) -> np.ndarray:
    """Person 3's boxes of the clip on frames 4 to 40 (it is visible there, fast)."""
    (track,) = [t for t in scene.tracks if t.track_id == 3]
    start = int(np.flatnonzero(track.frames == 4)[0])
    return track.xyxy[start : start + 37]


def test_repeated_calls_answer_as_a_fresh_server_would(
    server: tuple[PrelabelServer, Path], clip: tuple[Path, Any]
) -> None:
    """An annotator adds a keyframe between two others and asks again: the answer equals the one for the same request
    on a file no call has seen, and the detectors ran on each frame once."""
    srv, tmp = server
    video, scene = clip
    fresh = tmp / "fresh.mp4"
    shutil.copy(video, fresh)
    gt = _person_boxes(scene)

    def request(path: Path, kidx: list[int]) -> pb.InterpolateRequest:
        kfs = [pb.Keyframe(frame_idx=4 + i, box=_box(gt[i]), has_box=True) for i in kidx]
        return pb.InterpolateRequest(
            tracks=[pb.KeyframeTrack(track_id=3, label="person", keyframes=kfs)],
            method="auto",
            video=pb.VideoSource(path=str(path)),
            detector_models=["prelabel-synth-pose", "prelabel-synth-det"],
            num_suggestions=3,
        )

    with PrelabelClient(f"127.0.0.1:{srv.port}", timeout_s=120) as client:
        client.stub.Interpolate(request(video, [0, 36]), timeout=120)
        warm = client.stub.Interpolate(request(video, [0, 18, 36]), timeout=120)
        cold = client.stub.Interpolate(request(fresh, [0, 18, 36]), timeout=120)
    session = srv.servicer._sessions.get(video)
    assert session.detected_frames == 37  # frames 4-40, once, over both calls
    (w,), (c,) = warm.tracks, cold.tracks
    wb = np.array([[f.box.x1, f.box.y1, f.box.x2, f.box.y2, f.confidence] for f in w.frames])
    cb = np.array([[f.box.x1, f.box.y1, f.box.x2, f.box.y2, f.confidence] for f in c.frames])
    np.testing.assert_allclose(wb, cb, atol=1e-4)
    assert [s.frame_idx for s in w.suggestions] == [s.frame_idx for s in c.suggestions]


def test_a_track_that_did_not_change_is_answered_without_work(
    server: tuple[PrelabelServer, Path], clip: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An annotation tool sends every track after each edit: a track as an earlier call sent it gets that call's
    answer, byte for byte, without being interpolated again (guided took 0.35-1.5 s for an identical repeat); a
    changed track, method or suggestion count is computed."""
    import prelabel.interpolate as interpolate

    srv, tmp = server
    video, scene = clip
    own = tmp / "own.mp4"
    shutil.copy(video, own)
    tracks = {t.track_id: t for t in scene.tracks if len(t) >= 26}  # tracks 1, 2 and 3
    calls: list[int] = []
    real = interpolate.interpolate_track

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(int(kwargs["track_id"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(interpolate, "interpolate_track", counted)

    def request(last: dict[int, int], method: str = "guided", suggestions: int = 3) -> pb.InterpolateRequest:
        out = []
        for tid, t in tracks.items():
            kfs = [pb.Keyframe(frame_idx=int(t.frames[i]), box=_box(t.xyxy[i]), has_box=True) for i in (0, last[tid])]
            out.append(pb.KeyframeTrack(track_id=tid, label=t.class_name, keyframes=kfs))
        return pb.InterpolateRequest(
            tracks=out, method=method, video=pb.VideoSource(path=str(own)), num_suggestions=suggestions
        )

    ids = sorted(tracks)
    first = {tid: 20 for tid in ids}
    moved = {**first, ids[0]: 25}
    with PrelabelClient(f"127.0.0.1:{srv.port}", timeout_s=120) as client:
        a = client.stub.Interpolate(request(first), timeout=120)
        assert sorted(calls) == ids and len(ids) == 3
        calls.clear()
        b = client.stub.Interpolate(request(first), timeout=120)
        assert calls == [] and b == a
        c = client.stub.Interpolate(request(moved), timeout=120)
        assert calls == [ids[0]] and c.tracks[1:] == a.tracks[1:]
        calls.clear()
        client.stub.Interpolate(request(moved, method="kalman"), timeout=120)
        client.stub.Interpolate(request(moved, suggestions=1), timeout=120)
        assert sorted(calls) == sorted(ids * 2)


def test_a_neighbours_detections_are_left_to_it_and_answers_follow_them(
    server: tuple[PrelabelServer, Path], clip: tuple[Path, Any]
) -> None:
    """With detector_models, each track of a request leaves to the other tracks of its label the detections they sit
    on (:class:`~prelabel.interpolate.others.OtherTracks`). A second annotation of the same person, keyed every 4
    frames, takes the detections the first one's path used: the first one's answer changes. A track of another label
    takes none: the answer is the one-track answer again (the cached answer is not reused across the two)."""
    srv, tmp = server
    video, scene = clip
    own = tmp / "neighbours.mp4"
    shutil.copy(video, own)
    gt = _person_boxes(scene)

    def keyed(tid: int, label: str, every: list[int]) -> pb.KeyframeTrack:
        kfs = [pb.Keyframe(frame_idx=4 + i, box=_box(gt[i]), has_box=True) for i in every]
        return pb.KeyframeTrack(track_id=tid, label=label, keyframes=kfs)

    def ask(tracks: list[pb.KeyframeTrack]) -> pb.InterpolatedTrack:
        request = pb.InterpolateRequest(
            tracks=tracks,
            method="guided",
            video=pb.VideoSource(path=str(own)),
            detector_models=["prelabel-synth-pose", "prelabel-synth-det"],
        )
        with PrelabelClient(f"127.0.0.1:{srv.port}", timeout_s=120) as client:
            return client.stub.Interpolate(request, timeout=120).tracks[0]

    first = keyed(3, "person", [0, 36])
    alone = ask([first])
    assert ask([first, keyed(9, "person", list(range(0, 37, 4)))]) != alone
    assert ask([first, keyed(9, "ball", list(range(0, 37, 4)))]) == alone
