"""Job workers: run queued jobs through the pipeline, checkpoint as they go, resume after a restart.

A job's folder (``data_dir/jobs/<job_id>/``) holds its checkpoint (``ckpt/``) and results (``results/``). On start,
jobs left QUEUED or RUNNING by a previous process are queued again; a RUNNING one continues from its checkpoint
and, detection being deterministic and the rest replayed, ends with the same result as an uninterrupted run.
"""

from __future__ import annotations

import logging
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prelabel.detect.base import DetectOptions
from prelabel.errors import FailedPreconditionError, InvalidInputError, PrelabelError, ResourceExhaustedError
from prelabel.files import file_sha256
from prelabel.jobs.checkpoint import FileDetectionCache
from prelabel.jobs.results import result_warnings, write_results
from prelabel.jobs.store import JobRecord, JobRequest, JobState, JobStore
from prelabel.pipeline import (
    STAGES,
    CancelledError,
    ModelGetter,
    Pipeline,
    PipelineConfig,
    PipelineResult,
    Progress,
)
from prelabel.video.paths import resolve_allowed_path
from prelabel.video.store import mark_used

log = logging.getLogger(__name__)


def _parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


# Options a job accepts in its ``options`` map, with their parsers.
_OPTION_PARSERS: dict[str, Callable[[str], object]] = {
    "conf": float,
    "iou": float,
    "imgsz": int,
    "offline_refine": _parse_bool,
    "max_gap_s": float,
    "start_frame": int,
    "end_frame": int,
    "batch_frames": int,
}


def pipeline_config(request: JobRequest) -> PipelineConfig:
    """The pipeline configuration of a job request.

    Raises:
        InvalidInputError: unknown option or stage, or a value that does not parse.
    """
    opts: dict[str, object] = {}
    for key, raw in request.options.items():
        parser = _OPTION_PARSERS.get(key)
        if parser is None:
            raise InvalidInputError(f"unknown job option {key!r}; known: {sorted(_OPTION_PARSERS)}")
        try:
            opts[key] = parser(raw)
        except ValueError as exc:
            raise InvalidInputError(f"job option {key}={raw!r}: {exc}") from exc
    detect = DetectOptions(
        conf=float(opts.get("conf", 0.1)),  # type: ignore[arg-type]
        iou=float(opts.get("iou", 0.7)),  # type: ignore[arg-type]
        imgsz=int(opts.get("imgsz", 0)),  # type: ignore[call-overload]
    )
    end = opts.get("end_frame")
    return PipelineConfig(
        stages=tuple(request.stages) or STAGES,
        detector_model=request.detector_model,
        pose_model=request.pose_model,
        action_model=request.action_model,
        detect_options=detect,
        offline_refine=bool(opts.get("offline_refine", True)),
        max_gap_s=float(opts.get("max_gap_s", 0.0)),  # type: ignore[arg-type]
        batch_frames=int(opts.get("batch_frames", 8)),  # type: ignore[call-overload]
        start_frame=int(opts.get("start_frame", 0)),  # type: ignore[call-overload]
        end_frame=int(end) if end is not None else None,  # type: ignore[call-overload]
    )


@dataclass
class _Running:
    cancel: threading.Event


def _video_sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise FailedPreconditionError(f"video {path.name} cannot be read: {exc.strerror}") from exc


class JobRunner:
    """Owns the job store and the worker threads.

    Args:
        root: data folder; the store is ``root/jobs.sqlite3`` and job folders ``root/jobs/<id>``.
        get_model: ``(name, task) -> Detector``.
        models_dir: for trained action models.
        workers: jobs run at once.
        max_active: most jobs queued or running; past it, submit raises ResourceExhaustedError.
        progress_interval_s: least time between progress writes to the store.
    """

    def __init__(
        self,
        root: Path,
        get_model: ModelGetter,
        models_dir: Path | None = None,
        workers: int = 1,
        max_active: int = 32,
        progress_interval_s: float = 0.25,
        allowed_roots: Sequence[Path] | None = None,
    ) -> None:
        self.root = root
        # Server paths a job may read (checked again when it runs: a restart may have narrowed them); None: any.
        self.allowed_roots = None if allowed_roots is None else list(allowed_roots)
        self.jobs_dir = root / "jobs"
        self.store = JobStore(root / "jobs.sqlite3")
        self.get_model = get_model
        self.models_dir = models_dir
        self.max_active = max_active
        self.progress_interval_s = progress_interval_s
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self._submit_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True) for i in range(workers)
        ]
        self._started = False

    def start(self) -> None:
        """Start the workers and queue the jobs a previous process left unfinished."""
        if self._started:
            return
        self._started = True
        for job in self.store.unfinished():
            log.info("resuming job %s (was %s at frame %d)", job.job_id, job.state.name, job.frames_done)
            self._queue.put(job.job_id)
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the workers; running jobs stay RUNNING in the store and resume at the next start."""
        self._shutdown.set()
        with self._lock:
            for running in self._running.values():
                running.cancel.set()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            if t.is_alive():
                t.join(timeout_s)
        self.store.close()

    # ------------------------------------------------------------------ API

    def submit(self, request: JobRequest, video_path: Path, idempotency_key: str | None = None) -> JobRecord:
        """Queue a job (or return the job an idempotency key already names).

        Raises:
            InvalidInputError: bad options or stages. ResourceExhaustedError: too many jobs queued or running.
        """
        pipeline_config(request)  # validate now, not when a worker picks it up
        with self._submit_lock:
            if idempotency_key and self.store.find_by_key(idempotency_key) is not None:
                record, _ = self.store.create(request, video_path, idempotency_key)  # checks the request matches
                return record
            active = self.store.count_active()
            if active >= self.max_active:
                raise ResourceExhaustedError(f"{active} jobs are queued or running (limit {self.max_active})")
            record, created = self.store.create(request, video_path, idempotency_key)
        if created:
            self._queue.put(record.job_id)
            log.info("job %s queued for %s", record.job_id, video_path.name)
        return record

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job (a running one stops at its next batch, well within a second of
        inference). Finished jobs are returned unchanged.

        Raises:
            NotFoundError: unknown job.
        """
        # Under the lock that a worker takes to start the job: either the worker has registered it (its run is told
        # to stop) or it will find the job cancelled (and not start). Checked apart, a cancel landing between the
        # worker's read of the job and its registration marked the job cancelled while the worker ran it whole.
        with self._lock:
            job = self.store.get(job_id)
            if job.state.terminal:
                return job
            running = self._running.get(job_id)
            if running is not None:
                running.cancel.set()  # its worker removes the checkpoint as it stops
            else:  # queued (a job a restart requeued may hold one): nothing will resume it
                shutil.rmtree(self.jobs_dir / job_id / "ckpt", ignore_errors=True)
            return self.store.update(job_id, state=JobState.CANCELLED, error="cancelled by request")

    def result_folder(self, job_id: str) -> Path:
        """Where a job's results are written."""
        return self.jobs_dir / job_id / "results"

    # ------------------------------------------------------------------ workers

    def _work(self) -> None:
        while not self._shutdown.is_set():
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception:  # a worker never dies: the failure is recorded on the job
                log.exception("job %s: unexpected failure", job_id)
                self.store.update(job_id, state=JobState.FAILED, error="internal error (see server log)")
                shutil.rmtree(self.jobs_dir / job_id / "ckpt", ignore_errors=True)  # a failed job is not resumed

    @staticmethod
    def _mark_upload_used(job: JobRecord) -> None:
        """A job on an upload marks it used as it starts and as it ends (uploads expire when unused)."""
        if job.request.video.get("upload_id"):
            mark_used(job.video_path)

    def _run(self, job_id: str) -> None:
        cancel = threading.Event()
        with self._lock:  # with :meth:`cancel`'s check: a job cancelled from here on is told through ``cancel``
            job = self.store.get(job_id)
            if job.state.terminal:
                return
            self._running[job_id] = _Running(cancel)
        try:
            self.store.update(job_id, state=JobState.RUNNING, stage="starting", error="")
            self._mark_upload_used(job)  # in use for as long as the job reads it
            config = pipeline_config(job.request)
            if self.allowed_roots is not None and job.request.video.get("path"):
                # The file the job reads (resolved at submit), not the string the client sent: a relative path
                # resolves elsewhere after a restart.
                resolve_allowed_path(str(job.video_path), self.allowed_roots)  # PermissionDeniedError
            if not job.video_path.is_file():
                raise FailedPreconditionError(f"video {job.video_path.name} is no longer available")
            sha256 = _video_sha256(job.video_path)  # the content the results are of (result.json records it)
            folder = self.jobs_dir / job_id
            # A job that resumes carries on from its checkpoint: only on the content it began on.
            began_on = folder / "video.sha256"
            if began_on.is_file() and began_on.read_text().strip() != sha256:
                raise FailedPreconditionError(
                    f"video {job.video_path.name} changed since the job began (its content hash differs): its "
                    "checkpoint is of the other content; submit the video again"
                )
            if not began_on.is_file():  # a checkpoint of no known content (an earlier version's): start over
                shutil.rmtree(folder / "ckpt", ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            began_on.write_text(sha256 + "\n")
            cache = FileDetectionCache(folder / "ckpt")
            if len(cache):
                log.info("job %s: %d frames restored from its checkpoint", job_id, len(cache))
            pipeline = Pipeline(self.get_model, config, self.models_dir)
            last = 0.0
            result = None
            for event in pipeline.events(job.video_path, cancel, cache):
                if isinstance(event, Progress):
                    now = time.monotonic()
                    if now - last >= self.progress_interval_s or event.done == event.total:
                        last = now
                        self.store.update(
                            job_id,
                            stage=event.stage,
                            frames_done=event.done,
                            frames_total=event.total,
                            frames_per_s=event.frames_per_s,
                            eta_s=event.eta_s,
                        )
                elif isinstance(event, PipelineResult):
                    result = event
            if result is None or cancel.is_set():
                raise CancelledError("cancelled")
            if _video_sha256(job.video_path) != sha256:
                raise FailedPreconditionError(
                    f"video {job.video_path.name} changed while the job ran: its labels would mix two contents; "
                    "submit it again"
                )
            self.store.update(job_id, stage="export")
            results = self.result_folder(job_id)
            tmp = results.with_name("results.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            name = job.request.video.get("name") or job.video_path.name
            formats = write_results(result, name, tmp, video_sha256=sha256)
            shutil.rmtree(results, ignore_errors=True)
            tmp.rename(results)
            warnings = result_warnings(result)
            self._mark_upload_used(job)  # before the job stops counting as one that reads it
            # For resuming only: the results are written. Removed before the job says it succeeded, so that a caller
            # seeing SUCCEEDED finds no checkpoint (removed after, a watcher could see both; a crash in between now
            # labels the video again from the start).
            shutil.rmtree(folder / "ckpt", ignore_errors=True)
            self.store.update(
                job_id, state=JobState.SUCCEEDED, stage="done", eta_s=0.0, formats=formats, warnings=warnings
            )
            log.info("job %s succeeded", job_id)
        except CancelledError:
            if self._shutdown.is_set() and self.store.get(job_id).state == JobState.RUNNING:
                log.info("job %s paused by shutdown; it resumes at the next start", job_id)
            else:
                self.store.update(job_id, state=JobState.CANCELLED, error="cancelled by request")
                shutil.rmtree(self.jobs_dir / job_id / "ckpt", ignore_errors=True)  # nothing will resume it
        except PrelabelError as exc:
            log.warning("job %s failed: %s", job_id, exc)
            error = str(exc)
            client_name = job.request.video.get("name")
            if client_name:  # an upload is stored as video.<suffix>: say the name its client knows it by
                stored = re.escape(job.video_path.name)
                error = re.sub(rf"\bvideo {stored}(?=[ :])", lambda _: f"video {client_name}", error)
            self._mark_upload_used(job)
            self.store.update(job_id, state=JobState.FAILED, error=error)
            shutil.rmtree(self.jobs_dir / job_id / "ckpt", ignore_errors=True)  # a failed job is not resumed
        finally:
            self._mark_upload_used(job)
            with self._lock:
                self._running.pop(job_id, None)
