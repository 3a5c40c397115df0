"""The real server, in-process on port 0, called through the real client."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from tests.conftest import DamagedClip

from prelabel.client import PrelabelClient
from prelabel.detect.base import DetectOptions, Image
from prelabel.detect.manager import ModelManager
from prelabel.detect.ultralytics import UltralyticsDetector
from prelabel.jobs import JobRunner
from prelabel.registry import ModelRegistry, ModelSpec
from prelabel.service.context import ServiceContext
from prelabel.service.server import PrelabelServer
from prelabel.settings import Settings
from prelabel.types import Detections
from prelabel.v1 import prelabel_pb2 as pb
from prelabel.video.store import UploadStore

TOKEN = "s3cret-token"


def _settings(tmp: Path, **kw: object) -> Settings:
    allowed = tmp / "allowed"
    allowed.mkdir(exist_ok=True)
    base: dict[str, object] = {
        "port": 0,
        "preload": ["arch-yolo11n"],
        "data_dir": tmp / "data",
        "allowed_roots": [allowed],
        "drain_s": 0.0,
        "grace_s": 1.0,
        "max_message_mb": 4,
    }
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def make_video(path: Path, frames: int = 20, size: tuple[int, int] = (160, 120)) -> Path:
    """A small MJPG clip with a moving square."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for i in range(frames):
        img = np.full((h, w, 3), 40, np.uint8)
        cv2.rectangle(img, (5 + 4 * i, 30), (35 + 4 * i, 80), (0, 200, 255), -1)
        writer.write(img)
    writer.release()
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrelabelServer, Path]]:
    tmp = tmp_path_factory.mktemp("srv")
    srv = PrelabelServer(_settings(tmp, auth_token=TOKEN))
    srv.start()
    yield srv, tmp
    srv.stop()


@pytest.fixture()
def client(server: tuple[PrelabelServer, Path]) -> Iterator[PrelabelClient]:
    srv, _ = server
    with PrelabelClient(f"127.0.0.1:{srv.port}", token=TOKEN, timeout_s=60) as c:
        yield c


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((240, 320, 3), 90, np.uint8)
    cv2.rectangle(img, (100, 40), (160, 200), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return img


def test_health_serving_after_models_warm(server: tuple[PrelabelServer, Path], client: PrelabelClient) -> None:
    srv, _ = server
    assert client.health() == "SERVING"
    assert client.health("prelabel.v1.Prelabel") == "SERVING"
    assert "arch-yolo11n" in srv.ctx.models.loaded()


def test_detect_round_trip_matches_direct_model(server: tuple[PrelabelServer, Path], client: PrelabelClient) -> None:
    srv, _ = server
    images = [_image(0), _image(1)]
    got = client.detect(images, "arch-yolo11n", conf=0.0001, encoding=".png")
    direct = UltralyticsDetector(srv.ctx.registry.get("arch-yolo11n")).detect(images, DetectOptions(conf=0.0001))
    assert len(got) == 2
    for g, d in zip(got, direct, strict=True):
        assert len(g) == len(d)
        np.testing.assert_allclose(g.xyxy, d.xyxy, atol=1e-3)
        np.testing.assert_allclose(g.scores, d.scores, atol=1e-5)


def test_detect_response_shape(client: PrelabelClient) -> None:
    resp = client.stub.Detect(
        pb.DetectRequest(model="arch-yolo11n", images=[cv2.imencode(".png", _image())[1].tobytes()] * 3),
        metadata=(("authorization", f"Bearer {TOKEN}"),),
    )
    assert resp.model == "arch-yolo11n"
    assert [r.index for r in resp.results] == [0, 1, 2]
    assert all((r.width, r.height) == (320, 240) for r in resp.results)


def test_wrong_or_missing_token_is_unauthenticated(server: tuple[PrelabelServer, Path]) -> None:
    srv, _ = server
    for token in ("wrong", None):
        with PrelabelClient(f"127.0.0.1:{srv.port}", token=token) as c:
            with pytest.raises(grpc.RpcError) as err:
                c.list_models()
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert c.health() == "SERVING"  # health stays open for probes


def test_oversized_message_is_resource_exhausted(client: PrelabelClient) -> None:
    big = b"\xff" * (5 * 1024 * 1024)  # server limit in these tests: 4 MiB
    with pytest.raises(grpc.RpcError) as err:
        client.detect([big], "arch-yolo11n")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(client.detect([_image()], "arch-yolo11n")) == 1


def test_corrupt_image_is_invalid_and_server_keeps_serving(client: PrelabelClient) -> None:
    png = cv2.imencode(".png", _image())[1].tobytes()
    for bad in (b"not an image", png[: len(png) // 3], b""):
        with pytest.raises(grpc.RpcError) as err:
            client.detect([png, bad], "arch-yolo11n")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "image 1" in (err.value.details() or "")
    assert len(client.detect([png], "arch-yolo11n")) == 1


def test_empty_batch_unknown_model_and_bad_options(client: PrelabelClient) -> None:
    cases = [
        (lambda: client.detect([], "arch-yolo11n"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: client.detect([_image()], "no-such-model"), grpc.StatusCode.NOT_FOUND),
        (lambda: client.detect([_image()], "arch-yolo11n", conf=1.5), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: client.detect([_image()], "arch-yolo11n", imgsz=100), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: client.detect([_image()], "arch-yolo11n-pose"), grpc.StatusCode.NOT_FOUND),  # wrong task
        # class ids the model does not have kept nothing, without a word
        (lambda: client.detect([_image()], "arch-yolo11n", classes=[99]), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: client.detect([_image()], "arch-yolo11n", classes=[-1]), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for call, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == code, err.value.details()
    assert len(client.detect([_image()], "arch-yolo11n", classes=[0])) == 1  # a class it has, and still serving


def test_missing_weights_is_failed_precondition_naming_the_file(client: PrelabelClient) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.detect([_image()], "yolo11s")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "yolo11s.pt" in (err.value.details() or "")
    models = {m.name: m for m in client.list_models()}
    assert not models["yolo11s"].available and models["yolo11s"].how_to_get
    assert models["arch-yolo11n"].available


def test_estimate_pose_returns_coco17_skeletons(client: PrelabelClient) -> None:
    poses = client.estimate_pose([_image()], "arch-yolo11n-pose", conf=0.0001)
    assert len(poses) == 1
    for pose in poses[0]:
        assert pose.skeleton.keypoints.shape == (17, 3)


def test_path_outside_allowed_roots_is_permission_denied(
    server: tuple[PrelabelServer, Path], client: PrelabelClient
) -> None:
    _, tmp = server
    outside = make_video(tmp / "outside.avi")
    inside_escape = str(tmp / "allowed" / ".." / "outside.avi")
    for path in (str(outside), inside_escape, "/etc/passwd"):
        req = pb.TrackVideoRequest(video=pb.VideoSource(path=path))
        with pytest.raises(grpc.RpcError) as err:
            list(client.track_video(req))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, path
    link = tmp / "allowed" / "link.avi"
    link.symlink_to(outside)
    with pytest.raises(grpc.RpcError) as err:
        list(client.track_video(pb.TrackVideoRequest(video=pb.VideoSource(path=str(link)))))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        list(client.track_video(pb.TrackVideoRequest(video=pb.VideoSource(path=str(tmp / "allowed" / "nope.avi")))))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_upload_checks_checksum_and_content(server: tuple[PrelabelServer, Path], client: PrelabelClient) -> None:
    srv, tmp = server
    video = make_video(tmp / "clip.avi")
    upload_id = client.upload_video(video, chunk_bytes=4096)
    stored = srv.ctx.uploads.path(upload_id)
    assert stored.read_bytes() == video.read_bytes()

    def send(data: bytes, sha: str) -> None:
        def msgs() -> Iterator[pb.UploadVideoRequest]:
            yield pb.UploadVideoRequest(header=pb.UploadHeader(filename="x.avi", size_bytes=len(data), sha256=sha))
            yield pb.UploadVideoRequest(chunk=data)

        client.stub.UploadVideo(msgs(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30)

    data = video.read_bytes()
    with pytest.raises(grpc.RpcError) as err:
        send(data, "0" * 64)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "checksum" in (err.value.details() or "")
    garbage = b"this is not a video" * 100
    with pytest.raises(grpc.RpcError) as err:
        send(garbage, hashlib.sha256(garbage).hexdigest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Failed uploads leave nothing behind, and the good one is still there.
    assert sorted(p.name for p in srv.ctx.uploads.root.iterdir()) == [upload_id]
    assert stored.read_bytes() == data


def test_an_upload_the_client_abandons_is_no_server_error(
    server: tuple[PrelabelServer, Path], client: PrelabelClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A client whose deadline passes mid-upload: the server stops without logging an internal error, keeps
    nothing of it and goes on serving."""
    srv, tmp = server
    caplog.set_level(logging.INFO, logger="prelabel")
    before = sorted(p.name for p in srv.ctx.uploads.root.iterdir())

    def slow() -> Iterator[pb.UploadVideoRequest]:
        yield pb.UploadVideoRequest(header=pb.UploadHeader(filename="x.avi", size_bytes=10_000, sha256="0" * 64))
        yield pb.UploadVideoRequest(chunk=b"0" * 1000)
        time.sleep(2.0)
        yield pb.UploadVideoRequest(chunk=b"0" * 1000)

    with pytest.raises(grpc.RpcError) as err:
        client.stub.UploadVideo(slow(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=0.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 10
    while any("UploadVideo" in r.getMessage() for r in caplog.records) is False and time.monotonic() < deadline:
        time.sleep(0.1)  # the server notices when it next reads the stream
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert any("UploadVideo" in r.getMessage() and "CANCELLED" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in srv.ctx.uploads.root.iterdir()) == before
    assert client.upload_video(make_video(tmp / "after.avi"), chunk_bytes=4096)


def test_a_job_on_an_upload_names_the_clients_file(
    server: tuple[PrelabelServer, Path], client: PrelabelClient, tmp_path: Path
) -> None:
    """The server stores an upload as ``video.<suffix>``; the results name the file the client sent (the Label
    Studio task's video, the CVAT task's name), as an in-process run does."""
    video = make_video(tmp_path / "Straße café.avi")
    job = client.submit_job(upload_id=client.upload_video(video), stages=["detect"], detector_model="arch-yolo11n")
    final = list(client.watch_job(job.job_id, timeout_s=120))[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    assert final.video.upload_id and not final.video.path
    doc = json.loads(client.download_result(job.job_id, "json", tmp_path / "out").read_text())
    assert doc["video"] == "Straße café.avi"


def test_a_job_tells_its_client_of_frames_that_do_not_decode(
    client: PrelabelClient, tmp_path: Path, damaged_clip: DamagedClip
) -> None:
    video = damaged_clip(tmp_path / "cam.avi", 20, [5, 6])
    job = client.submit_job(upload_id=client.upload_video(video), stages=["detect"], detector_model="arch-yolo11n")
    final = list(client.watch_job(job.job_id, timeout_s=120))[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    (warning,) = final.warnings
    assert warning.startswith("2 frames do not decode (damaged packets): frames 5, 6 (0-based)")
    assert list(client.get_job(job.job_id).warnings) == [warning]


def test_an_uploaded_playlist_is_refused_by_the_name_its_client_gave(
    server: tuple[PrelabelServer, Path], client: PrelabelClient, tmp_path: Path
) -> None:
    """A playlist naming a server file outside the allowed roots was stored, and its job labelled that file. Refused
    now, and errors about an upload name the client's file, not the stored video.<suffix>."""
    outside = make_video(tmp_path / "secret.avi")
    playlist = tmp_path / "clip.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n{outside}\n#EXT-X-ENDLIST\n")
    with pytest.raises(grpc.RpcError) as err:
        client.upload_video(playlist)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "video clip.m3u8 is a playlist or manifest" in (err.value.details() or "")


def test_unknown_job_is_not_found(client: PrelabelClient) -> None:
    md = (("authorization", f"Bearer {TOKEN}"),)
    for call in (
        lambda: client.stub.GetJob(pb.GetJobRequest(job_id="nope"), metadata=md),
        lambda: client.stub.CancelJob(pb.CancelJobRequest(job_id="nope"), metadata=md),
        lambda: list(client.stub.DownloadResult(pb.DownloadResultRequest(job_id="nope"), metadata=md)),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_job_that_could_only_fail_is_refused_at_submit(
    server: tuple[PrelabelServer, Path], client: PrelabelClient, tmp_path: Path
) -> None:
    """Bad options, a folder for a video, an unknown action model: refused by SubmitJob with their status, not
    accepted to fail in a worker or run on a default; bad job listings and paths with a NUL are bad arguments."""
    _, tmp = server
    tmp = tmp / "allowed"
    md = (("authorization", f"Bearer {TOKEN}"),)
    video = make_video(tmp / "submit.avi")
    (tmp / "folder").mkdir(exist_ok=True)
    bad_options = [
        {"max_gap_s": "nan"},
        {"max_gap_s": "-1"},
        {"offline_refine": "perhaps"},
        {"start_frame": "-5"},
        {"start_frame": "10", "end_frame": "5"},
        {"batch_frames": "1000000000"},
    ]
    base = {"video": pb.VideoSource(path=str(video)), "stages": ["detect", "track"], "detector_model": "arch-yolo11n"}
    cases = [(pb.SubmitJobRequest(**base, options=o), grpc.StatusCode.INVALID_ARGUMENT, str(o)) for o in bad_options]
    for where in (str(tmp / "folder"), str(tmp) + "/a\x00b.avi"):
        req = pb.SubmitJobRequest(**{**base, "video": pb.VideoSource(path=where)})
        cases.append((req, grpc.StatusCode.INVALID_ARGUMENT, where))
    cases += [
        (
            pb.SubmitJobRequest(
                video=pb.VideoSource(path=str(video)), detector_model="arch-yolo11n", pose_model="arch-yolo11n-pose",
                action_model="nope",
            ),
            grpc.StatusCode.NOT_FOUND,
            "action model",
        ),
    ]  # fmt: skip
    listed = len(client.stub.ListJobs(pb.ListJobsRequest(), metadata=md).jobs)
    for req, code, name in cases:
        with pytest.raises(grpc.RpcError) as err:
            client.stub.SubmitJob(req, metadata=md)
        assert err.value.code() == code, (name, err.value.details())
    assert len(client.stub.ListJobs(pb.ListJobsRequest(), metadata=md).jobs) == listed  # none was queued
    for req in (pb.ListJobsRequest(page_token="9" * 23), pb.ListJobsRequest(state=99)):
        with pytest.raises(grpc.RpcError) as err:
            client.stub.ListJobs(req, metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_job_pages_neither_skip_nor_repeat_while_jobs_come_and_change(
    server: tuple[PrelabelServer, Path], client: PrelabelClient
) -> None:
    """ListJobs pages by a cursor (the last job of the page before): with an offset, jobs cancelled between two
    pages of queued jobs made the next page skip as many, and a job submitted meanwhile was listed twice."""
    from prelabel.jobs import JobRequest, JobState

    srv, _ = server
    store = srv.ctx.jobs.store
    made = [store.create(JobRequest(video={"path": f"/p{i}.mp4"}), Path(f"/p{i}.mp4"), None)[0] for i in range(7)]
    ours = {j.job_id for j in made}

    def page(token: str = "", state: int = pb.JOB_STATE_QUEUED) -> pb.ListJobsResponse:
        return client.stub.ListJobs(
            pb.ListJobsRequest(state=state, page_size=3, page_token=token),
            metadata=(("authorization", f"Bearer {TOKEN}"),),
        )

    first = page()
    for job in first.jobs[:2]:
        store.update(job.job_id, state=JobState.CANCELLED)  # leave the queue between two pages
    store.create(JobRequest(video={"path": "/new.mp4"}), Path("/new.mp4"), None)  # newest: before every page
    seen = [j.job_id for j in first.jobs]
    token = first.next_page_token
    while token:
        resp = page(token)
        seen += [j.job_id for j in resp.jobs]
        token = resp.next_page_token
    assert len(seen) == len(set(seen))
    assert ours <= set(seen)
    for job in made:
        store.update(job.job_id, state=JobState.CANCELLED)  # out of the way of the other tests


def test_reflection_lists_services(server: tuple[PrelabelServer, Path]) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    srv, _ = server
    with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        req = reflection_pb2.ServerReflectionRequest(list_services="")
        md = (("authorization", f"Bearer {TOKEN}"),)
        resp = next(iter(stub.ServerReflectionInfo(iter([req]), metadata=md)))
    names = {s.name for s in resp.list_services_response.service}
    assert {"prelabel.v1.Prelabel", "grpc.health.v1.Health"} <= names


class _SlowDetector:
    """A backend that takes a fixed time per call, to hold RPCs in flight deterministically."""

    name = "slow"
    task = "detect"
    class_names: Sequence[str] = ("thing",)
    device = "cpu"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def detect(self, images: Sequence[Image], options: DetectOptions | None = None) -> list[Detections]:
        time.sleep(self.delay_s)
        return [Detections.empty(self.class_names) for _ in images]

    def warmup(self) -> None:
        pass


def _slow_server(tmp: Path, delay_s: float, **kw: object) -> PrelabelServer:
    settings = _settings(tmp, preload=["arch-yolo11n"], **kw)
    registry = ModelRegistry.load(settings.registry_path)
    # Different batch keys per call are impossible here, so disable cross-request batching (max_batch=1).
    models = ModelManager(registry, "cpu", max_batch=1, factory=lambda spec, dev: _SlowDetector(delay_s))
    jobs = JobRunner(tmp / "data", models.get)
    ctx = ServiceContext(settings, registry, models, UploadStore(tmp / "uploads", 1 << 20), jobs)
    return PrelabelServer(settings, ctx)


def test_concurrency_limit_rejects_extra_calls_and_serves_admitted(tmp_path: Path) -> None:
    srv = _slow_server(tmp_path, delay_s=0.1, max_concurrent_rpcs=2, workers=8)
    srv.start()
    try:
        with PrelabelClient(f"127.0.0.1:{srv.port}") as c:
            img = _image()

            def call(_: int) -> str:
                try:
                    c.detect([img], "arch-yolo11n")
                    return "OK"
                except grpc.RpcError as exc:
                    return str(exc.code().name)

            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(call, range(8)))
            assert codes.count("OK") >= 2
            assert "RESOURCE_EXHAUSTED" in codes
            assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}
            assert call(0) == "OK"  # the server keeps serving
    finally:
        srv.stop()


def test_health_is_answered_while_the_server_is_at_its_limit(tmp_path: Path) -> None:
    """At --max-concurrent calls in flight, more get RESOURCE_EXHAUSTED but health still answers SERVING: a load
    balancer's probe had been refused too, and would have taken a busy server for a dead one."""
    srv = _slow_server(tmp_path, delay_s=1.5, max_concurrent_rpcs=2, workers=2)
    srv.start()
    try:
        with PrelabelClient(f"127.0.0.1:{srv.port}") as c:
            busy = [threading.Thread(target=c.detect, args=([_image()], "arch-yolo11n")) for _ in range(2)]
            for t in busy:
                t.start()
            time.sleep(0.5)
            with pytest.raises(grpc.RpcError) as err:
                c.detect([_image()], "arch-yolo11n")
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert [c.health() for _ in range(3)] == ["SERVING"] * 3
            # Health Watch streams are long-lived: a few at most, or they would fill the room left for probes.
            watches = [
                c.channel.unary_stream(
                    "/grpc.health.v1.Health/Watch",
                    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                    response_deserializer=health_pb2.HealthCheckResponse.FromString,
                )(health_pb2.HealthCheckRequest())
                for _ in range(5)
            ]
            codes = []
            for w in watches:
                try:
                    next(w)
                    codes.append("OK")
                except grpc.RpcError as exc:
                    codes.append(exc.code().name)
            assert sorted(codes) == ["OK"] * 4 + ["RESOURCE_EXHAUSTED"], codes  # the five are served in any order
            assert c.health() == "SERVING"
            for w in watches:
                w.cancel()
            for t in busy:
                t.join(10)
            assert isinstance(c.detect([_image()], "arch-yolo11n"), list)  # slots freed
    finally:
        srv.stop()


def test_graceful_shutdown_goes_not_serving_first_and_finishes_inflight(tmp_path: Path) -> None:
    srv = _slow_server(tmp_path, delay_s=1.5, drain_s=0.6, grace_s=5.0)
    srv.start()
    c = PrelabelClient(f"127.0.0.1:{srv.port}")
    result: dict[str, object] = {}

    def inflight() -> None:
        result["dets"] = c.detect([_image()], "arch-yolo11n")

    t = threading.Thread(target=inflight)
    t.start()
    time.sleep(0.3)
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    time.sleep(0.2)
    assert c.health() == "NOT_SERVING"
    t.join(10)
    stopper.join(10)
    assert isinstance(result.get("dets"), list)  # the in-flight call completed
    c.close()


def test_request_threads_are_this_servers_own(tmp_path: Path) -> None:
    """The threads a stopping server waits on are the ones running its requests: a call in flight on another server
    in the same process is not among them."""
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    busy, idle = _slow_server(tmp_path / "a", delay_s=1.5), _slow_server(tmp_path / "b", delay_s=1.5)
    busy.start()
    idle.start()
    c = PrelabelClient(f"127.0.0.1:{busy.port}")
    try:
        t = threading.Thread(target=lambda: c.detect([_image()], "arch-yolo11n"))
        t.start()
        time.sleep(0.5)
        running = [th for th in busy.request_threads() if th.is_alive()]
        assert running and all(th.name != threading.current_thread().name for th in running)
        assert not [th for th in idle.request_threads() if th.is_alive()]
        t.join(10)
    finally:
        c.close()
        busy.stop()
        idle.stop()


def test_one_server_per_data_folder(tmp_path: Path) -> None:
    """A second server on the same --data-dir had resumed the first one's running job too, and the two wrote over each
    other's results (a job SUCCEEDED with its result files missing). It is refused, naming the holder; once the first
    stops, the folder is free."""
    from prelabel.errors import FailedPreconditionError

    first = PrelabelServer(_settings(tmp_path, preload=[]))
    with pytest.raises(FailedPreconditionError, match=r"in use by another prelabel server \(pid \d+\)"):
        PrelabelServer(_settings(tmp_path, preload=[]))
    first.stop(grace=0)
    # A server whose port cannot be bound lets the folder go again.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = PrelabelServer(_settings(tmp_path, preload=[], port=taken.getsockname()[1]))
        with pytest.raises(RuntimeError):
            busy.start()
    PrelabelServer(_settings(tmp_path, preload=[])).stop(grace=0)


def test_tls_round_trip(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    srv = PrelabelServer(_settings(tmp_path, tls_cert=cert, tls_key=key, host="localhost"))
    srv.start()
    try:
        with PrelabelClient(f"localhost:{srv.port}", tls_ca=cert) as c:
            assert c.health() == "SERVING"
            assert len(c.detect([_image()], "arch-yolo11n")) == 1
        with PrelabelClient(f"localhost:{srv.port}", timeout_s=3) as plain, pytest.raises(grpc.RpcError):
            plain.list_models()
    finally:
        srv.stop()


def test_unknown_spec_fields_are_kept() -> None:
    spec = ModelSpec(name="x", task="detect", arch="yolo11n.yaml", extra={"foo": 1})
    assert spec.available and spec.extra["foo"] == 1


def test_client_side_downscale_scales_boxes_back(client: PrelabelClient) -> None:
    """Shrinking before sending (max_side) gives boxes in the original image's pixels."""
    from prelabel.client import prepare_image

    img = np.full((600, 800, 3), 90, np.uint8)
    data, (sx, sy) = prepare_image(img, ".png", max_side=400)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (300, 400)
    assert (sx, sy) == (0.5, 0.5)
    full = client.detect([img], "arch-yolo11n", conf=0.0001, imgsz=320, encoding=".png")[0]
    small = client.detect([img], "arch-yolo11n", conf=0.0001, imgsz=320, encoding=".png", max_side=400)[0]
    assert len(full) and len(small)
    # Same letterboxed input up to resampling: the top boxes land in the same place of the original image.
    best = [float(np.max([_iou(b, f) for f in full.xyxy])) for b in small.xyxy[:5]]
    assert np.median(best) > 0.8


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    from prelabel.geometry import box_iou

    return float(box_iou(a[None], b[None])[0, 0])


def test_the_server_sweeps_uploads_unused_for_its_ttl(tmp_path: Path) -> None:
    srv = PrelabelServer(_settings(tmp_path, upload_ttl_h=1.0, preload=[]))
    srv.start()
    try:
        with PrelabelClient(f"127.0.0.1:{srv.port}") as client:
            upload_id = client.upload_video(make_video(tmp_path / "a.avi", frames=6))
            assert srv.sweep_uploads() == []  # used just now
            assert srv.sweep_uploads(now=time.time() + 2 * 3600) == [upload_id]
            with pytest.raises(grpc.RpcError) as err:
                client.submit_job(upload_id=upload_id, stages=["detect"], detector_model="arch-yolo11n")
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        srv.stop(grace=0)
    (tmp_path / "b").mkdir()
    idle = PrelabelServer(_settings(tmp_path / "b", preload=[]))
    assert idle.sweep_uploads(now=time.time() + 1e6) == []  # ttl 0: uploads kept
    idle.stop(grace=0)
