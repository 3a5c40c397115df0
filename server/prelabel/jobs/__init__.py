"""Batch pre-labeling jobs: a SQLite store (WAL), workers, checkpoints and resume after a restart."""

from __future__ import annotations

from prelabel.jobs.runner import JobRunner
from prelabel.jobs.store import JobRecord, JobRequest, JobState, JobStore

__all__ = ["JobRecord", "JobRequest", "JobRunner", "JobState", "JobStore"]
