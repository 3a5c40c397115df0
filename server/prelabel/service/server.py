"""The gRPC server: listening, limits, TLS, health, reflection, graceful shutdown.

Start-up order: bind and start with health NOT_SERVING, load and warm the preloaded models, then SERVING.
Shutdown (SIGTERM/SIGINT or :meth:`PrelabelServer.stop`): health NOT_SERVING first, so balancers drain traffic,
then in-flight RPCs get ``grace_s`` to finish.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import IO

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from prelabel.errors import FailedPreconditionError
from prelabel.service.context import ServiceContext
from prelabel.service.interceptors import ServiceInterceptor
from prelabel.service.servicer import PrelabelServicer
from prelabel.settings import Settings
from prelabel.v1 import prelabel_pb2 as pb
from prelabel.v1 import prelabel_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

_SERVER_NUMBERS = itertools.count(1)
HEALTH_RESERVE = 8  # health and job-control calls served beyond --max-concurrent
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Prelabel"].full_name


class PrelabelServer:
    """One running server instance.

    Args:
        settings: the configuration (see :class:`~prelabel.settings.Settings`).
        context: prebuilt shared objects (tests may pass their own); built from settings when None.
    """

    def __init__(self, settings: Settings, context: ServiceContext | None = None) -> None:
        self.settings = settings
        # One server per data folder: two would both resume its jobs and write over each other's results.
        self._data_lock = _lock_data_dir(settings.data_dir)
        self.ctx = context or ServiceContext.build(settings)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.port = 0
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._thread_prefix = f"rpc-{next(_SERVER_NUMBERS)}"  # this server's request threads, by name
        # The limit on calls at once is the interceptor's, which does not count health; transport and threads
        # leave room for HEALTH_RESERVE calls it does not count beyond it, so a busy server still answers its probes.
        self._interceptor = ServiceInterceptor(settings.auth_token, settings.max_concurrent_rpcs)
        self._executor = futures.ThreadPoolExecutor(
            max_workers=max(settings.workers, settings.max_concurrent_rpcs + HEALTH_RESERVE),
            thread_name_prefix=self._thread_prefix,
        )
        self._server = grpc.server(
            self._executor,
            interceptors=[self._interceptor],
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs + HEALTH_RESERVE,
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.servicer = PrelabelServicer(self.ctx)
        pb_grpc.add_PrelabelServicer_to_server(self.servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self._server,
        )

    def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)

    def start(self) -> int:
        """Bind, start, load and warm the preloaded models, then report SERVING. Returns the bound port.

        Raises:
            RuntimeError: the address cannot be bound (the server is stopped again).
            PrelabelError: a preloaded model cannot be loaded (the server is stopped again).
        """
        s = self.settings
        address = f"{s.host}:{s.port}"
        try:
            if s.tls_cert is not None and s.tls_key is not None:
                creds = grpc.ssl_server_credentials([(s.tls_key.read_bytes(), s.tls_cert.read_bytes())])
                self.port = self._server.add_secure_port(address, creds)
            else:
                self.port = self._server.add_insecure_port(address)
            if self.port == 0:
                raise RuntimeError(f"cannot listen on {address}")
        except Exception:
            self.stop(grace=0)  # the data folder's lock and the context go with it
            raise
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self._server.start()
        log.info("listening on %s:%d (%s)", s.host, self.port, "TLS" if s.tls_cert else "plaintext")
        try:
            self.ctx.models.preload(self._preload_names())
        except Exception:
            self.stop(grace=0)
            raise
        self.ctx.jobs.start()  # resumes jobs a previous process left unfinished
        if s.upload_ttl_h > 0:
            self._sweeper = threading.Thread(
                target=self._sweep_uploads_until_stopped, daemon=True, name="upload-sweeper"
            )
            self._sweeper.start()
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving with models %s", self.ctx.models.loaded())
        return self.port

    def sweep_uploads(self, now: float | None = None) -> list[str]:
        """Delete the uploads unused for ``upload_ttl_h`` hours that no queued or running job reads; returns their
        ids (none when the setting is 0)."""
        if self.settings.upload_ttl_h <= 0:
            return []
        reading = {j.request.video.get("upload_id", "") for j in self.ctx.jobs.store.unfinished()}
        return self.ctx.uploads.sweep(self.settings.upload_ttl_h * 3600.0, reading - {""}, now)

    def _sweep_uploads_until_stopped(self) -> None:
        period = max(10.0, min(3600.0, self.settings.upload_ttl_h * 3600.0 / 4))
        while not self._stopped.is_set():
            try:
                self.sweep_uploads()
            except Exception:  # never take the server down; said in the log
                log.exception("upload sweep failed")
            self._stopped.wait(period)

    def _preload_names(self) -> list[str]:
        if self.settings.preload:
            return list(self.settings.preload)
        default = self.ctx.registry.defaults.get("detect")
        if default and self.ctx.registry.get(default).available:
            return [default]
        return []

    def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, then stop accepting calls and give in-flight ones ``grace`` seconds."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        if grace is None and self.settings.drain_s > 0:
            time.sleep(self.settings.drain_s)  # let health checkers see NOT_SERVING and drain traffic
        g = self.settings.grace_s if grace is None else grace
        self._server.stop(g).wait()
        if self._sweeper is not None:  # a sweep in flight finishes before the job store closes
            self._sweeper.join(timeout=30)
        self.ctx.close()
        self._executor.shutdown(wait=False, cancel_futures=True)  # idle request threads end now
        if self._data_lock is not None:
            self._data_lock.close()  # the lock goes with the file
            self._data_lock = None
        log.info("stopped")

    def request_threads(self) -> list[threading.Thread]:
        """The threads that run requests (Python's exit waits for them, daemon or not), found by their name's prefix
        (the executor names its threads ``<prefix>_<n>``)."""
        return [t for t in threading.enumerate() if t.name.startswith(self._thread_prefix + "_")]

    def calls_in_flight(self) -> dict[int, tuple[str, str, float]]:
        """Per request thread id, the call it serves: method, peer and ``time.monotonic()`` at its start."""
        return self._interceptor.calls_in_flight()

    def wait(self) -> None:
        """Block until the server has stopped."""
        self._server.wait_for_termination()


def _lock_data_dir(data_dir: Path) -> IO[str] | None:
    """Hold ``data_dir``'s lock file for this server's life (None where the OS has no ``flock``).

    Raises:
        FailedPreconditionError: another server (process) holds it.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    fh = (data_dir / "server.lock").open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise FailedPreconditionError(
            f"data folder {data_dir} is in use by another prelabel server ({holder}): give each server its own "
            "--data-dir"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}\n")
    fh.flush()
    return fh


EXIT_WAIT_S = 2.0  # after stopping: how long request threads still running get before the process exits


def serve(settings: Settings) -> int:
    """Run a server until SIGTERM or SIGINT; returns the process exit status."""
    server = PrelabelServer(settings)
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    # Waking every half second: a signal the OS delivers to another thread only sets a flag, which the main thread
    # acts on when it next runs Python; blocked in a wait without a timeout, it never did (SIGTERM ignored, now and
    # then, while a job ran).
    while not done.wait(0.5):
        pass
    server.stop()
    # A request still computing past the grace period (its caller is told the server went away) would keep the
    # process alive until it ends: give the request threads a moment, then exit without them.
    deadline = time.monotonic() + EXIT_WAIT_S
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    request_threads = [t for t in server.request_threads() if t.is_alive()]  # daemon or not, the exit waits on them
    waited = list(dict.fromkeys([*request_threads, *(t for t in others if not t.daemon)]))
    for t in waited:
        t.join(max(0.0, deadline - time.monotonic()))
    calls = server.calls_in_flight()
    now = time.monotonic()
    busy = [
        f"{calls[t.ident][0]} from {calls[t.ident][1]}, running {now - calls[t.ident][2]:.0f} s"
        if t.ident in calls
        else f"thread {t.name}"
        for t in waited
        if t.is_alive()
    ]
    if busy:
        log.warning("%d call(s) or thread(s) still busy after the grace period (%s): exiting without them", len(busy),
                    "; ".join(busy[:4]))  # fmt: skip
        logging.shutdown()
        os._exit(0)
    return 0
