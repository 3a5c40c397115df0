"""The SQLite job store."""

from __future__ import annotations

from pathlib import Path

import pytest

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.jobs import JobRequest, JobState, JobStore


def test_create_get_list_update_and_terminal_guard(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    req = JobRequest(video={"path": "/v.mp4"}, stages=("detect", "track"), options={"conf": "0.2"})
    job, created = store.create(req, Path("/v.mp4"), None)
    assert created and job.state == JobState.QUEUED and job.request == req
    store.update(job.job_id, state=JobState.RUNNING, frames_done=10, frames_total=100)
    assert store.get(job.job_id).frames_done == 10
    store.update(job.job_id, state=JobState.SUCCEEDED, formats=["json", "cvat"])
    store.update(job.job_id, state=JobState.FAILED, error="late")  # ignored: the job already finished
    final = store.get(job.job_id)
    assert final.state == JobState.SUCCEEDED and final.formats == ("json", "cvat") and final.error == ""
    assert [j.job_id for j in store.list(JobState.SUCCEEDED)] == [job.job_id]
    assert store.list(JobState.QUEUED) == [] and store.count_active() == 0
    with pytest.raises(NotFoundError):
        store.get("nope")


def test_idempotency_key_returns_the_first_job_and_rejects_a_different_request(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    req = JobRequest(video={"path": "/v.mp4"})
    a, created_a = store.create(req, Path("/v.mp4"), "key-1")
    b, created_b = store.create(req, Path("/v.mp4"), "key-1")
    assert created_a and not created_b and a.job_id == b.job_id
    with pytest.raises(InvalidInputError, match="different request"):
        store.create(JobRequest(video={"path": "/other.mp4"}), Path("/other.mp4"), "key-1")
    # A job on an upload stored before results named the client's file is the same job with or without the name.
    up = JobRequest(video={"upload_id": "ab" * 16})
    c, _ = store.create(up, Path("/up/video.mp4"), "key-2")
    d, created_d = store.create(
        JobRequest(video={"upload_id": "ab" * 16, "name": "clip.mp4"}), Path("/up/video.mp4"), "key-2"
    )
    assert not created_d and d.job_id == c.job_id


def test_store_survives_reopen(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job, _ = store.create(JobRequest(video={"path": "/v.mp4"}), Path("/v.mp4"), None)
    store.update(job.job_id, state=JobState.RUNNING, frames_done=42)
    store.close()
    again = JobStore(tmp_path / "jobs.sqlite3")
    (unfinished,) = again.unfinished()
    assert unfinished.job_id == job.job_id and unfinished.frames_done == 42


def test_a_store_of_an_earlier_version_gains_warnings(tmp_path: Path) -> None:
    """Tables made before jobs carried warnings are extended when opened, their jobs intact."""
    import sqlite3

    from prelabel.jobs.store import SCHEMA

    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA.replace(",\n    warnings TEXT NOT NULL DEFAULT '[]'", ""))
        db.execute(
            "INSERT INTO jobs (job_id, state, created, updated, request, video_path, formats) "
            "VALUES ('old', 3, 1.0, 2.0, ?, '/v.mp4', '[\"json\"]')",
            (JobRequest(video={"path": "/v.mp4"}).to_json(),),
        )
        assert "warnings" not in {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
    store = JobStore(path)
    old = store.get("old")
    assert old.state == JobState.SUCCEEDED and old.formats == ("json",) and old.warnings == ()
    job, _ = store.create(JobRequest(video={"path": "/w.mp4"}), Path("/w.mp4"), None)
    store.update(job.job_id, state=JobState.SUCCEEDED, warnings=["cut short"])
    assert store.get(job.job_id).warnings == ("cut short",)
