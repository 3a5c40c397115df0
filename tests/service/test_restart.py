"""A server killed with SIGKILL mid-job resumes the job after a restart and ends with the same result."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from prelabel.client import PrelabelClient
from prelabel.synthetic import generate, write_scene
from prelabel.v1 import prelabel_pb2 as pb

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``prelabel serve`` in a child process."""

    def __init__(self, data: Path, root: Path, log: Path) -> None:
        self.port = _free_port()
        self.args = [
            sys.executable, "-m", "prelabel.cli", "--log-format", "json", "serve", "--port", str(self.port),
            "--data-dir", str(data), "--allow-root", str(root), "--preload", "arch-yolo11n",
        ]  # fmt: skip
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrelabelClient:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(self.args, stdout=fh, stderr=subprocess.STDOUT, env=env)
        client = PrelabelClient(f"127.0.0.1:{self.port}", timeout_s=60)
        client.wait_until_serving(timeout_s=120)
        return client

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture()
def clip(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    root = tmp_path / "videos"
    scene = generate("crowd", 21, num_frames=160, width=320, height=192)
    video = write_scene(scene, root / "crowd")["video"]
    yield root, video


def _finish(client: PrelabelClient, job_id: str) -> pb.Job:
    updates = list(client.watch_job(job_id, timeout_s=300))
    assert updates
    return updates[-1]


def test_sigkill_mid_job_then_restart_gives_the_same_result(tmp_path: Path, clip: tuple[Path, Path]) -> None:
    root, video = clip
    data = tmp_path / "data"
    server = ServerProcess(data, root, tmp_path / "server.log")
    # The untrained architecture gives random low-score boxes: deterministic, and plenty to compare.
    options = {"imgsz": "320", "conf": "0.0001", "batch_frames": "4"}
    client = server.start()
    job = client.submit_job(path=str(video), stages=["detect", "track"], detector_model="arch-yolo11n",
                            options=options, idempotency_key="first")  # fmt: skip
    for update in client.watch_job(job.job_id, timeout_s=120):
        if update.frames_done >= 40:
            break
    assert update.state == pb.JOB_STATE_RUNNING and update.frames_done < 160
    server.kill()
    client.close()
    checkpoints = list((data / "jobs" / job.job_id / "ckpt").glob("batch-*.npz"))
    assert len(checkpoints) >= 10  # work done before the kill was saved

    client = server.start()
    try:
        resumed = _finish(client, job.job_id)
        assert resumed.state == pb.JOB_STATE_SUCCEEDED, resumed.error
        again = client.submit_job(path=str(video), stages=["detect", "track"], detector_model="arch-yolo11n",
                                  options=options, idempotency_key="first")  # fmt: skip
        assert again.job_id == job.job_id  # idempotency key survives the restart
        fresh = client.submit_job(path=str(video), stages=["detect", "track"], detector_model="arch-yolo11n",
                                  options=options, idempotency_key="second")  # fmt: skip
        assert _finish(client, fresh.job_id).state == pb.JOB_STATE_SUCCEEDED
        a = client.download_result(job.job_id, "json", tmp_path / "a.json").read_bytes()
        b = client.download_result(fresh.job_id, "json", tmp_path / "b.json").read_bytes()
        doc = json.loads(a)
        assert sum(len(v) for v in doc["detections"].values()) > 100  # a real result, not an empty one
        assert len(doc["detections"]) == 160
        assert a == b
        listed = {j.job_id for j in client.list_jobs()}
        assert {job.job_id, fresh.job_id} <= listed
    finally:
        client.close()
        assert server.terminate() == 0


def test_sigterm_ends_the_server_while_a_request_still_computes(tmp_path: Path) -> None:
    """A TrackDetections call of 300k frames (a minute and more of work) is in flight when SIGTERM comes: the server
    stops within its drain, grace and exit wait, not when the call ends."""
    import threading
    import time

    import grpc

    server = ServerProcess(tmp_path / "data", tmp_path, tmp_path / "server.log")
    client = server.start()
    box = pb.Box(x1=10, y1=10, x2=50, y2=90)
    frames = [pb.FrameDetections(frame_idx=i, detections=[pb.Detection(box=box, score=0.9)]) for i in range(300_000)]
    codes: list[grpc.StatusCode] = []

    def call() -> None:
        try:
            client.stub.TrackDetections(pb.TrackDetectionsRequest(frames=frames, fps=30), timeout=300)
        except grpc.RpcError as exc:
            codes.append(exc.code())  # type: ignore[attr-defined]

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(3.0)
    assert caller.is_alive()  # still computing
    t0 = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - t0 < 30.0  # drain 1 s + grace 5 s + exit wait 2 s, with room for a loaded machine
    caller.join(30)
    assert codes and codes[0] in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    log = (tmp_path / "server.log").read_text()
    assert "still busy after the grace period" in log
    assert "/prelabel.v1.Prelabel/TrackDetections from " in log  # the call left, not a thread's name
    client.close()
