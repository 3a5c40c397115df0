"""The upload store: uploads unused for a while are swept, except those a job still reads."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from tests.conftest import DamagedClip

from prelabel.errors import InvalidInputError, NotFoundError, ResourceExhaustedError
from prelabel.video.store import UploadStore


def _upload(store: UploadStore, video: Path, name: str) -> str:
    data = video.read_bytes()
    return store.put(name, len(data), hashlib.sha256(data).hexdigest(), [data]).upload_id


def test_uploads_unused_for_the_ttl_are_swept_except_those_kept(tmp_path: Path, damaged_clip: DamagedClip) -> None:
    """Uploads were never deleted (an operator's disk filled with videos nobody would ask for again)."""
    video = damaged_clip(tmp_path / "clip.avi", 8, [])
    store = UploadStore(tmp_path / "uploads", 1 << 24)
    old, used, queued = (_upload(store, video, f"{n}.avi") for n in ("old", "used", "queued"))
    day_ago = time.time() - 86_400
    for upload_id in (old, used, queued):
        folder = store.path(upload_id).parent
        os.utime(folder, (day_ago, day_ago))
    partial = store.root / ".upload-broken"
    partial.write_bytes(b"half a video")
    os.utime(partial, (day_ago, day_ago))
    store.path(used, use=True)  # a call named it just now
    assert store.last_used(used) > store.last_used(old) + 80_000
    gone = store.sweep(3600.0, keep={queued})
    assert gone == [old] and not partial.exists()
    with pytest.raises(NotFoundError):
        store.path(old)
    assert store.path(used).is_file() and store.path(queued).is_file()
    assert store.sweep(3600.0, keep={queued}) == []
    assert sorted(store.sweep(3600.0, now=time.time() + 7200.0)) == sorted([used, queued])


def test_a_job_reading_an_upload_marks_it_used(tmp_path: Path, damaged_clip: DamagedClip) -> None:
    """A job marked its upload used only when submitted: one that ran longer than the TTL left an upload the sweep
    deleted a minute after it ended, though Interpolate on it was the next step."""
    from prelabel.video.store import mark_used

    store = UploadStore(tmp_path / "uploads", 1 << 24)
    upload_id = _upload(store, damaged_clip(tmp_path / "clip.avi", 8, []), "clip.avi")
    video = store.path(upload_id)
    day_ago = time.time() - 86_400
    os.utime(video.parent, (day_ago, day_ago))
    mark_used(video)  # as the job starts, and again as it ends
    assert store.last_used(upload_id) > time.time() - 60
    assert store.sweep(3600.0) == [] and store.path(upload_id) == video


def test_a_negative_announced_size_is_a_malformed_header_not_a_large_upload(tmp_path: Path) -> None:
    """size_bytes -1 was answered RESOURCE_EXHAUSTED ("exceeds the limit"): the header is wrong, not the upload big."""
    store = UploadStore(tmp_path / "uploads", 1 << 20)
    data = b"0" * 16
    with pytest.raises(InvalidInputError, match="size_bytes must be >= 0"):
        store.put("x.avi", -1, hashlib.sha256(data).hexdigest(), [data])
    with pytest.raises(ResourceExhaustedError, match="exceeds the limit"):
        store.put("x.avi", (1 << 20) + 1, hashlib.sha256(data).hexdigest(), [data])
