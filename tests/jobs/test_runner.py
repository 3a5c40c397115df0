"""Jobs run in-process: results in every format, cancel, failures isolated, bounded queue."""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import DamagedClip

from prelabel.detect.manager import ModelManager
from prelabel.errors import InvalidInputError, ResourceExhaustedError
from prelabel.formats import load
from prelabel.jobs import JobRequest, JobRunner, JobState
from prelabel.registry import ModelRegistry
from prelabel.settings import default_models_dir
from prelabel.synthetic import generate, write_scene


@pytest.fixture()
def runner(tmp_path: Path) -> Iterator[JobRunner]:
    models = ModelManager(ModelRegistry.load(default_models_dir() / "registry.yaml"), "cpu")
    r = JobRunner(tmp_path / "data", models.get, workers=1, max_active=3)
    r.start()
    yield r
    r.stop()
    models.close()


def _wait(runner: JobRunner, job_id: str, timeout_s: float = 120) -> JobState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = runner.store.get(job_id).state
        if state.terminal:
            return state
        time.sleep(0.05)
    raise TimeoutError(job_id)


def make_clip(folder: Path, seed: int = 4, frames: int = 48) -> Path:
    scene = generate("default", seed, num_frames=frames, width=320, height=192)
    return write_scene(scene, folder)["video"]


RequestFactory = Callable[..., JobRequest]


@pytest.fixture()
def make_request(job_detector: tuple[str, dict[str, str]]) -> RequestFactory:
    name, opts = job_detector

    def build(
        video: Path, *, stages: tuple[str, ...] = ("detect", "track"), options: dict[str, str] | None = None
    ) -> JobRequest:
        return JobRequest(
            video={"path": str(video)}, stages=stages, detector_model=name, options={**opts, **(options or {})}
        )

    return build


def test_job_succeeds_and_writes_every_format(runner: JobRunner, tmp_path: Path, make_request: RequestFactory) -> None:
    video = make_clip(tmp_path / "clip", frames=24)
    job = runner.submit(make_request(video), video)
    assert _wait(runner, job.job_id) == JobState.SUCCEEDED
    final = runner.store.get(job.job_id)
    assert final.frames_done == final.frames_total == 24
    assert not (runner.jobs_dir / job.job_id / "ckpt").exists()  # kept for resuming only (about 1 MB a job)
    assert set(final.formats) == {"json", "cvat", "labelstudio", "coco", "mot", "yolo"}
    folder = runner.result_folder(job.job_id)
    doc = json.loads((folder / "result.json").read_text())
    assert doc["info"]["num_frames"] == 24 and len(doc["ts_ms"]) == 24
    cvat = load("cvat", folder / "annotations.xml")
    assert {t.track_id for t in cvat.tracks} == {t["track_id"] for t in doc["tracks"]}
    # The same job again gives the same bytes in every format, the zip of YOLO files included (entries in name
    # order, a fixed time stamp; it differed by its entries' times).
    again = runner.submit(make_request(video), video)
    assert _wait(runner, again.job_id) == JobState.SUCCEEDED
    other = runner.result_folder(again.job_id)
    for name in ("annotations.xml", "labelstudio.json", "coco.json", "mot.txt", "yolo.zip"):
        assert (folder / name).read_bytes() == (other / name).read_bytes(), name
    with zipfile.ZipFile(folder / "yolo.zip") as zf:
        names = zf.namelist()
    assert names == sorted(names) and "data.yaml" in names


def test_cancel_stops_a_running_job_within_a_second(
    runner: JobRunner, tmp_path: Path, make_request: RequestFactory
) -> None:
    video = make_clip(tmp_path / "clip", frames=400)
    job = runner.submit(make_request(video, options={"batch_frames": "4"}), video)
    deadline = time.monotonic() + 60
    while runner.store.get(job.job_id).frames_done < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    assert runner.cancel(job.job_id).state == JobState.CANCELLED
    # The worker lets go of the job: the next one starts promptly.
    while job.job_id in runner._running and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert time.monotonic() - t0 < 1.0
    done_at_cancel = runner.store.get(job.job_id).frames_done
    assert done_at_cancel < 400
    assert runner.store.get(job.job_id).state == JobState.CANCELLED
    assert not (runner.jobs_dir / job.job_id / "ckpt").exists()  # kept for resuming only: a cancelled job is not


def test_a_cancel_landing_as_a_worker_picks_the_job_up_stops_it(
    tmp_path: Path, make_request: RequestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker reads the job (queued), then registers it as running; a cancel between the two marked it cancelled
    while the worker ran the whole video and wrote its results. Held open here for 0.5 s."""
    import threading

    models = ModelManager(ModelRegistry.load(default_models_dir() / "registry.yaml"), "cpu")
    runner = JobRunner(tmp_path / "data", models.get, workers=1, max_active=3)
    read = threading.Event()
    real_get = runner.store.get

    def slow_get(job_id: str):  # type: ignore[no-untyped-def]
        record = real_get(job_id)
        if threading.current_thread().name.startswith("job-worker") and not read.is_set():
            read.set()
            time.sleep(0.5)  # the worker has read the job and not yet registered it
        return record

    monkeypatch.setattr(runner.store, "get", slow_get)
    runner.start()
    try:
        video = make_clip(tmp_path / "clip", frames=120)
        job = runner.submit(make_request(video), video)
        assert read.wait(30)
        assert runner.cancel(job.job_id).state == JobState.CANCELLED
        # One worker: a job submitted next ends only once the worker has let go of the cancelled one.
        small = make_clip(tmp_path / "small", frames=8)
        after = runner.submit(make_request(small), small)
        assert _wait(runner, after.job_id) == JobState.SUCCEEDED
        final = real_get(job.job_id)
        assert final.state == JobState.CANCELLED and final.frames_done < 120, final
        assert not runner.result_folder(job.job_id).exists()  # no labels written for a cancelled job
    finally:
        runner.stop()
        models.close()


def test_corrupt_video_fails_with_reason_while_another_job_completes(
    runner: JobRunner, tmp_path: Path, make_request: RequestFactory
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    good = make_clip(tmp_path / "clip", frames=16)
    bad_job = runner.submit(make_request(bad), bad)
    good_job = runner.submit(make_request(good), good)
    assert _wait(runner, bad_job.job_id) == JobState.FAILED
    assert "bad.mp4" in runner.store.get(bad_job.job_id).error
    assert _wait(runner, good_job.job_id) == JobState.SUCCEEDED


def test_bounded_queue_and_option_validation(runner: JobRunner, tmp_path: Path, make_request: RequestFactory) -> None:
    video = make_clip(tmp_path / "clip", frames=200)
    jobs = [runner.submit(make_request(video, options={"batch_frames": "2"}), video) for _ in range(3)]
    with pytest.raises(ResourceExhaustedError):
        runner.submit(make_request(video), video)
    with pytest.raises(InvalidInputError, match="unknown job option"):
        runner.submit(make_request(video, options={"bogus": "1"}), video)
    with pytest.raises(InvalidInputError, match="unknown stages"):
        runner.submit(make_request(video, stages=("detect", "dance")), video)
    for j in jobs:
        runner.cancel(j.job_id)


def test_a_job_resumes_only_on_the_content_it_began_on(tmp_path: Path, make_request: RequestFactory) -> None:
    """A job that began on one content and resumes on another (the file replaced while the server was down) had
    mixed the two: the checkpoint's frames from the old video, the rest from the new, under the new one's hash. It
    fails instead, naming why; a job on unchanged content records the hash it began on and succeeds."""
    models = ModelManager(ModelRegistry.load(default_models_dir() / "registry.yaml"), "cpu")
    runner = JobRunner(tmp_path / "data", models.get, workers=1, max_active=3)
    video = make_clip(tmp_path / "clip", frames=12)
    changed = runner.submit(make_request(video), video)
    (runner.jobs_dir / changed.job_id).mkdir(parents=True)
    (runner.jobs_dir / changed.job_id / "video.sha256").write_text("0" * 64 + "\n")  # began on other bytes
    same = runner.submit(make_request(video), video)
    runner.start()
    try:
        assert _wait(runner, changed.job_id) == JobState.FAILED
        assert "changed since the job began" in runner.store.get(changed.job_id).error
        assert _wait(runner, same.job_id) == JobState.SUCCEEDED
        recorded = (runner.jobs_dir / same.job_id / "video.sha256").read_text().strip()
        assert recorded == json.loads((runner.result_folder(same.job_id) / "result.json").read_text())["video_sha256"]
    finally:
        runner.stop()
        models.close()


def test_a_job_reads_its_video_only_under_the_roots_allowed_when_it_runs(
    tmp_path: Path, make_request: RequestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart with narrower --allow-root roots: a queued or resumed job had still read its file from outside them
    (a new submit of the same path was refused). It fails with the reason instead."""
    models = ModelManager(ModelRegistry.load(default_models_dir() / "registry.yaml"), "cpu")
    (tmp_path / "allowed").mkdir()
    runner = JobRunner(tmp_path / "data", models.get, workers=1, allowed_roots=[tmp_path / "allowed"])
    outside = make_clip(tmp_path / "clip", frames=12)
    inside = make_clip(tmp_path / "allowed" / "clip", frames=12)
    refused, fine = runner.submit(make_request(outside), outside), runner.submit(make_request(inside), inside)
    # As sent, relative: from where the server runs now the string names a file inside the roots, but the job reads
    # the file it was submitted with, outside them (a reviewer's bypass): that file is the one checked.
    monkeypatch.chdir(tmp_path / "allowed")
    relative = make_request(outside)
    relative = JobRequest(video={"path": "clip/video.mp4"}, stages=relative.stages,
                          detector_model=relative.detector_model, options=relative.options)  # fmt: skip
    also_refused = runner.submit(relative, outside)
    runner.start()
    try:
        for job in (refused, also_refused):
            assert _wait(runner, job.job_id) == JobState.FAILED
            assert "is outside the server's allowed roots" in runner.store.get(job.job_id).error
        assert _wait(runner, fine.job_id) == JobState.SUCCEEDED
    finally:
        runner.stop()
        models.close()


def test_a_damaged_video_succeeds_and_the_job_says_which_frames(
    runner: JobRunner, tmp_path: Path, make_request: RequestFactory, damaged_clip: DamagedClip
) -> None:
    """A video with a damaged packet failed its job; a cut-short one SUCCEEDED with the warning in result.json only.
    Now both label what decodes, and the job itself carries the warnings (GetJob shows them)."""
    video = damaged_clip(tmp_path / "cam.avi", 30, [12])
    job = runner.submit(make_request(video), video)
    assert _wait(runner, job.job_id) == JobState.SUCCEEDED
    final = runner.store.get(job.job_id)
    assert final.frames_total == 30
    (warning,) = final.warnings
    assert warning.startswith("1 frames do not decode (damaged packets): frames 12 (0-based)")
    doc = json.loads((runner.result_folder(job.job_id) / "result.json").read_text())
    assert doc["warnings"] == [warning] and doc["info"]["damaged_frames"] == [12]


def test_a_job_on_an_upload_marks_it_used_as_it_ends(
    runner: JobRunner, tmp_path: Path, make_request: RequestFactory
) -> None:
    """Uploads expire when unused: a job longer than the expiry left its upload to be swept as it ended."""
    import os

    folder = tmp_path / "uploads" / ("ab" * 16)
    folder.mkdir(parents=True)
    video = make_clip(tmp_path / "clip", frames=8).rename(folder / "video.mp4")
    long_ago = time.time() - 86_400
    os.utime(folder, (long_ago, long_ago))
    request = make_request(video)
    job = runner.submit(JobRequest(video={"upload_id": "ab" * 16}, stages=request.stages,
                                   detector_model=request.detector_model, options=request.options), video)  # fmt: skip
    assert _wait(runner, job.job_id) == JobState.SUCCEEDED
    assert (folder / "used").stat().st_mtime > time.time() - 60
