"""One settings object, built in ``main()`` and passed down; nothing deeper reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prelabel.errors import InvalidInputError


def default_models_dir() -> Path:
    """``models/`` of a source checkout when present, else ``./models``."""
    checkout = Path(__file__).resolve().parents[2] / "models"
    return checkout if (checkout / "registry.yaml").exists() else Path.cwd() / "models"


@dataclass
class Settings:
    """Everything the server and the in-process pipeline are configured with.

    Attributes:
        host, port: where the gRPC server listens; port 0 picks a free port.
        max_message_mb: largest request or response message, in MiB (past it: RESOURCE_EXHAUSTED).
        max_concurrent_rpcs: RPCs served at once; past it new calls get RESOURCE_EXHAUSTED.
        workers: threads serving RPCs (at least ``max_concurrent_rpcs``).
        auth_token: when set, every call except health must send ``authorization: Bearer <token>``.
        tls_cert, tls_key: PEM files; both set means the server speaks TLS only.
        allowed_roots: folders under which server-side video paths may be read.
        data_dir: uploads, job store and results.
        models_dir: holds ``registry.yaml`` and shipped weights.
        preload: model names loaded and warmed before health says SERVING; empty means the registry default
            detector when its weights are available.
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N".
        runtime: inference runtime: "auto" (PyTorch FP16 on CUDA, the fastest exported runtime on a CPU),
            "torch", "onnx" or "openvino"; exports are cached in :attr:`runtime_cache_dir`.
        precision: exported runtimes' precision on a CPU: "f32" (the default: matches PyTorch to about 1e-3 px) or
            "auto" (the device's default: bf16 where the CPU has it, about 1.5x faster again, boxes within the looser
            tolerance stated in tests/detect/test_runtime.py).
        batch_max_size: most images in one batched forward pass across concurrent requests.
        batch_max_delay_ms: longest a request waits for others to share its batch.
        max_upload_mb: largest uploaded video.
        upload_ttl_h: an upload no call or job has used for this many hours is deleted (checked at start and then
            every hour, or every quarter of the time when shorter, at least 10 s apart); one a queued or running job
            reads is kept, and a job marks its upload used as it starts and as it ends. Uses are recorded from this
            version on: before, the upload's own time counts. 0 (the default) keeps uploads until they are deleted
            by hand.
        drain_s: on shutdown, how long health says NOT_SERVING before new calls are refused.
        grace_s: how long in-flight RPCs then get to finish.
    """

    host: str = "127.0.0.1"
    port: int = 50051
    max_message_mb: int = 64
    max_concurrent_rpcs: int = 16
    workers: int = 16
    auth_token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allowed_roots: list[Path] = field(default_factory=list)
    data_dir: Path = field(default_factory=lambda: Path("prelabel-data"))
    models_dir: Path = field(default_factory=default_models_dir)
    preload: list[str] = field(default_factory=list)
    device: str = "auto"
    runtime: str = "auto"
    precision: str = "f32"
    batch_max_size: int = 8
    batch_max_delay_ms: float = 5.0
    max_upload_mb: int = 4096
    upload_ttl_h: float = 0.0
    drain_s: float = 1.0
    grace_s: float = 5.0
    max_queued_jobs: int = 32
    job_workers: int = 1

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInputError("TLS needs both a certificate and a key file")
        if self.max_concurrent_rpcs <= 0:
            raise InvalidInputError(f"max_concurrent_rpcs must be positive, got {self.max_concurrent_rpcs}")
        if self.runtime not in ("auto", "torch", "onnx", "openvino"):
            raise InvalidInputError(f"runtime must be auto, torch, onnx or openvino, got {self.runtime!r}")
        if not self.upload_ttl_h >= 0:
            raise InvalidInputError(f"upload_ttl_h must be 0 (keep) or positive, got {self.upload_ttl_h}")
        if self.batch_max_size <= 0:
            raise InvalidInputError(f"batch_max_size must be positive, got {self.batch_max_size}")
        if self.max_queued_jobs <= 0 or self.job_workers <= 0:
            raise InvalidInputError(
                f"max_queued_jobs and job_workers must be positive, got {self.max_queued_jobs}, {self.job_workers}"
            )
        self.workers = max(self.workers, self.max_concurrent_rpcs)

    @property
    def max_message_bytes(self) -> int:
        """``max_message_mb`` in bytes."""
        return self.max_message_mb * 1024 * 1024

    @property
    def runtime_cache_dir(self) -> Path:
        """Where models exported for ONNX Runtime / OpenVINO are cached."""
        return self.data_dir / "runtime-cache"

    @property
    def registry_path(self) -> Path:
        """The model registry file."""
        return self.models_dir / "registry.yaml"
