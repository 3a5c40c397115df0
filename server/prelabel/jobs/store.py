"""Jobs persisted in SQLite (WAL): one row per job, updated as it runs; survives crashes of the server."""

from __future__ import annotations

import builtins
import enum
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from prelabel.errors import InvalidInputError, NotFoundError

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    state INTEGER NOT NULL,
    stage TEXT NOT NULL DEFAULT '',
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0,
    frames_per_s REAL NOT NULL DEFAULT 0,
    eta_s REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    request TEXT NOT NULL,
    video_path TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    formats TEXT NOT NULL DEFAULT '[]',
    seq INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""


class JobState(enum.IntEnum):
    """Values match ``prelabel.v1.JobState``."""

    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5

    @property
    def terminal(self) -> bool:
        """True for states a job never leaves."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class JobRequest:
    """What a job runs: the video (as given by the client) and the pipeline's options."""

    video: dict[str, str]
    stages: tuple[str, ...] = ("detect", "track", "pose", "actions")
    detector_model: str = ""
    pose_model: str = ""
    action_model: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def same_work(self, other: JobRequest) -> bool:
        """Whether ``other`` asks for the same job: equal but for the name results give the video (a job submitted
        again with its idempotency key by a client of another version)."""

        def bare(r: JobRequest) -> JobRequest:
            return replace(r, video={k: v for k, v in r.video.items() if k != "name"})

        return bare(self) == bare(other)

    def to_json(self) -> str:
        """Stable JSON (sorted keys)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobRequest:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["stages"] = tuple(data.get("stages", ()))
        return cls(**data)


@dataclass(frozen=True)
class JobRecord:
    """One job's row."""

    job_id: str
    state: JobState
    stage: str
    frames_done: int
    frames_total: int
    frames_per_s: float
    eta_s: float
    error: str
    created: float
    updated: float
    request: JobRequest
    video_path: Path
    idempotency_key: str | None
    formats: tuple[str, ...]
    seq: int
    warnings: tuple[str, ...] = ()  # what a user should know about a SUCCEEDED job's labels


_COLUMNS = (
    "job_id, state, stage, frames_done, frames_total, frames_per_s, eta_s, error, created, updated, request, "
    "video_path, idempotency_key, formats, seq, warnings"
)
_LIST_COLUMNS = frozenset({"formats", "warnings"})


def _record(row: Sequence[Any]) -> JobRecord:
    return JobRecord(
        job_id=row[0],
        state=JobState(row[1]),
        stage=row[2],
        frames_done=row[3],
        frames_total=row[4],
        frames_per_s=row[5],
        eta_s=row[6],
        error=row[7],
        created=row[8],
        updated=row[9],
        request=JobRequest.from_json(row[10]),
        video_path=Path(row[11]),
        idempotency_key=row[12],
        formats=tuple(json.loads(row[13])),
        seq=row[14],
        warnings=tuple(json.loads(row[15])),
    )


class JobStore:
    """Thread-safe job table in ``path`` (created when missing).

    Every update bumps the row's ``seq`` and wakes :meth:`wait_change` callers.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "warnings" not in columns:  # a table an earlier version made
            try:
                self._db.execute("ALTER TABLE jobs ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]'")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def create(self, request: JobRequest, video_path: Path, idempotency_key: str | None) -> tuple[JobRecord, bool]:
        """Insert a QUEUED job; with an idempotency key already used, return that job instead.

        Returns:
            (record, created) where ``created`` is False when an existing job was returned.

        Raises:
            InvalidInputError: the key was used for a different request.
        """
        now = time.time()
        job_id = uuid.uuid4().hex
        with self._lock:
            if idempotency_key:
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    existing = _record(row)
                    if not existing.request.same_work(request):
                        raise InvalidInputError(
                            f"idempotency key {idempotency_key!r} was already used for a different request "
                            f"(job {existing.job_id})"
                        )
                    return existing, False
            self._db.execute(
                "INSERT INTO jobs (job_id, state, created, updated, request, video_path, idempotency_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, int(JobState.QUEUED), now, now, request.to_json(), str(video_path), idempotency_key or None),
            )
            self._changed.notify_all()
        return self.get(job_id), True

    def find_by_key(self, idempotency_key: str) -> JobRecord | None:
        """The job submitted with ``idempotency_key``, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
        return _record(row) if row is not None else None

    def get(self, job_id: str) -> JobRecord:
        """The job ``job_id``.

        Raises:
            NotFoundError: no such job.
        """
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"unknown job {job_id!r}")
        return _record(row)

    def list(
        self,
        state: JobState | None = None,
        limit: int = 100,
        after: tuple[float, str] | None = None,
    ) -> builtins.list[JobRecord]:
        """Jobs newest first (then by id), optionally of one state; ``after``: only those after the job of this
        ``(created, job_id)`` in that order (a page's cursor: jobs that start or change state meanwhile neither
        shift nor repeat the pages, as an offset would)."""
        query = f"SELECT {_COLUMNS} FROM jobs"
        where: builtins.list[str] = []
        args: tuple[Any, ...] = ()
        if state is not None:
            where.append("state = ?")
            args += (int(state),)
        if after is not None:
            where.append("(created < ? OR (created = ? AND job_id > ?))")
            args += (after[0], after[0], after[1])
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created DESC, job_id LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        return [_record(r) for r in rows]

    def count_active(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)", (int(JobState.QUEUED), int(JobState.RUNNING))
            ).fetchone()
        return int(row[0])

    def unfinished(self) -> builtins.list[JobRecord]:
        """Jobs that were queued or running (oldest first): what a restarted server resumes."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN (?, ?) ORDER BY created, job_id",
                (int(JobState.QUEUED), int(JobState.RUNNING)),
            ).fetchall()
        return [_record(r) for r in rows]

    def update(self, job_id: str, *, only_if_not_terminal: bool = True, **fields: Any) -> JobRecord:
        """Set columns of a job (state as :class:`JobState`, formats and warnings as sequences); terminal jobs stay as
        they are.

        Raises:
            NotFoundError: no such job.
        """
        allowed = {"state", "stage", "frames_done", "frames_total", "frames_per_s", "eta_s", "error", *_LIST_COLUMNS}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        values = {
            k: (int(v) if k == "state" else json.dumps(list(v)) if k in _LIST_COLUMNS else v) for k, v in fields.items()
        }
        sets = ", ".join(f"{k} = ?" for k in values)
        cond = " AND state NOT IN (3, 4, 5)" if only_if_not_terminal else ""
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {sets}, updated = ?, seq = seq + 1 WHERE job_id = ?{cond}",
                (*values.values(), time.time(), job_id),
            )
            self._changed.notify_all()
        return self.get(job_id)

    def wait_change(self, job_id: str, seq: int, timeout_s: float) -> JobRecord:
        """Block until the job's ``seq`` differs from ``seq`` or ``timeout_s`` passes; returns the job."""
        deadline = time.monotonic() + timeout_s
        while True:
            record = self.get(job_id)
            remaining = deadline - time.monotonic()
            if record.seq != seq or remaining <= 0:
                return record
            with self._changed:
                self._changed.wait(min(remaining, 0.5))
