"""What the servicers share: settings, the model registry and manager, the upload store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prelabel.detect.manager import ModelManager
from prelabel.errors import InvalidInputError
from prelabel.jobs import JobRunner
from prelabel.registry import ModelRegistry
from prelabel.settings import Settings
from prelabel.video.paths import resolve_allowed_path
from prelabel.video.store import UploadStore


@dataclass
class ServiceContext:
    """Objects owned by one server instance (no globals)."""

    settings: Settings
    registry: ModelRegistry
    models: ModelManager
    uploads: UploadStore
    jobs: JobRunner

    @classmethod
    def build(cls, settings: Settings) -> ServiceContext:
        """Create the registry, model manager and upload store from settings (loads no model yet)."""
        registry = ModelRegistry.load(settings.registry_path)
        registry.path_roots = list(settings.allowed_roots)  # weights named by path: as video paths, under the roots
        models = ModelManager(
            registry,
            settings.device,
            settings.batch_max_size,
            settings.batch_max_delay_ms,
            runtime=settings.runtime,
            cache_dir=settings.runtime_cache_dir,
            precision=settings.precision,
        )
        uploads = UploadStore(settings.data_dir / "uploads", settings.max_upload_mb * 1024 * 1024)
        jobs = JobRunner(
            settings.data_dir,
            models.get,
            settings.models_dir,
            settings.job_workers,
            settings.max_queued_jobs,
            allowed_roots=settings.allowed_roots,
        )
        return cls(settings, registry, models, uploads, jobs)

    def resolve_video(self, kind: str | None, value: str) -> Path:
        """A video reference -> a local path.

        Args:
            kind: "path" (server path, checked against the allowed roots) or "upload_id".
            value: the path or the id.

        Raises:
            InvalidInputError: no video given. PermissionDeniedError: path outside the roots.
            NotFoundError: missing file or unknown upload.
        """
        if kind == "upload_id":
            return self.uploads.path(value, use=True)
        if kind == "path" and value:
            return resolve_allowed_path(value, self.settings.allowed_roots)
        raise InvalidInputError("no video given: set video.path or video.upload_id")

    def close(self) -> None:
        """Stop job workers (running jobs resume at the next start), then release models."""
        self.jobs.stop()
        self.models.close()
