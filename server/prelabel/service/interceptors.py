"""One server interceptor that authenticates, maps errors to status codes, and logs every call.

Each call is logged once with method, peer, latency and final status code. Domain errors become their status
(:mod:`prelabel.service.errors`); an unexpected exception is logged with its traceback and answered INTERNAL, and
the server keeps serving.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from prelabel.errors import PrelabelError, ResourceExhaustedError, UnauthenticatedError
from prelabel.service.errors import status_for

log = logging.getLogger("prelabel.access")

# Methods any caller may use without a token (load balancers and orchestrators probe health).
PUBLIC_METHODS = ("/grpc.health.v1.Health/",)
# Methods the limit on calls at once does not count: probes, and quick job control (an operator must be able to
# cancel a job while watchers fill the limit).
UNCOUNTED_METHODS = (
    *PUBLIC_METHODS,
    "/prelabel.v1.Prelabel/GetJob",
    "/prelabel.v1.Prelabel/CancelJob",
    "/prelabel.v1.Prelabel/ListJobs",
    "/prelabel.v1.Prelabel/ListModels",
)
# Long-lived streams among them, with a cap of their own: they would otherwise fill the transport's room for the
# uncounted calls (server.HEALTH_RESERVE) and have every call refused, probes too.
UNCOUNTED_STREAMS = ("/grpc.health.v1.Health/Watch",)
MAX_UNCOUNTED_STREAMS = 4


class ServiceInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Auth (optional bearer token), the limit on calls at once, error mapping and access logging for every RPC.

    Args:
        token: when set, calls must carry ``authorization: Bearer <token>`` (except health).
        max_concurrent: calls served at once (health and quick job control not counted: a busy server still answers
            its probes, and an operator can still cancel); more get RESOURCE_EXHAUSTED. None: no limit here.
    """

    def __init__(self, token: str | None = None, max_concurrent: int | None = None) -> None:
        self._token = token
        self._limit = max_concurrent
        self._busy = 0
        self._streams = 0  # open UNCOUNTED_STREAMS
        self._busy_lock = threading.Lock()
        self._calls: dict[int, tuple[str, str, float]] = {}  # thread id -> (method, peer, start) of calls in flight

    def calls_in_flight(self) -> dict[int, tuple[str, str, float]]:
        """Per thread id, the call it serves: method, peer and ``time.monotonic()`` at its start."""
        with self._busy_lock:
            return dict(self._calls)

    def _begin(self, method: str, context: grpc.ServicerContext) -> None:
        with self._busy_lock:
            self._calls[threading.get_ident()] = (method, context.peer(), time.monotonic())

    def _end(self) -> None:
        with self._busy_lock:
            self._calls.pop(threading.get_ident(), None)

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(handler.stream_stream, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            self._wrap_unary(handler.unary_unary, method), handler.request_deserializer, handler.response_serializer
        )

    def _authorize(self, context: grpc.ServicerContext, method: str) -> None:
        if self._token is None or method.startswith(PUBLIC_METHODS):
            return
        metadata = dict(context.invocation_metadata() or ())
        value = str(metadata.get("authorization", ""))
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token.encode()):
            raise UnauthenticatedError("missing or invalid bearer token")

    def _enter(self, method: str) -> bool:
        """Count a call against the limit (False: not counted, a public method or no limit)."""
        if self._limit is not None and method in UNCOUNTED_STREAMS:
            with self._busy_lock:
                if self._streams >= MAX_UNCOUNTED_STREAMS:
                    raise ResourceExhaustedError(
                        f"the server keeps at most {MAX_UNCOUNTED_STREAMS} {method} streams open: use Check"
                    )
                self._streams += 1
            return True
        if self._limit is None or method.startswith(UNCOUNTED_METHODS):
            return False
        with self._busy_lock:
            if self._busy >= self._limit:
                raise ResourceExhaustedError(
                    f"the server is answering its most calls at once ({self._limit}, --max-concurrent): try again"
                )
            self._busy += 1
        return True

    def _leave(self, method: str) -> None:
        with self._busy_lock:
            if method in UNCOUNTED_STREAMS:
                self._streams -= 1
            else:
                self._busy -= 1

    def _fail(self, context: grpc.ServicerContext, method: str, exc: BaseException) -> None:
        code = status_for(exc)
        if isinstance(exc, PrelabelError):
            context.abort(code, str(exc))
        log.exception("unexpected error in %s", method)
        context.abort(code, f"internal error in {method}: {type(exc).__name__} (see server log)")

    def _log(self, method: str, context: grpc.ServicerContext, start: float, code: grpc.StatusCode | str) -> None:
        name = code.name if isinstance(code, grpc.StatusCode) else code
        latency_ms = (time.perf_counter() - start) * 1000.0
        fields = {"method": method, "peer": context.peer(), "status": name, "latency_ms": round(latency_ms, 2)}
        log.info(
            "rpc method=%s peer=%s status=%s latency_ms=%.1f",
            method,
            fields["peer"],
            name,
            latency_ms,
            extra={"fields": fields},
        )

    def _final_code(self, context: grpc.ServicerContext) -> grpc.StatusCode:
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK

    def _wrap_unary(self, behavior: Callable[[Any, grpc.ServicerContext], Any], method: str) -> Callable[..., Any]:
        def inner(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code: grpc.StatusCode | None = None
            counted = False
            self._begin(method, context)
            try:
                self._authorize(context, method)
                counted = self._enter(method)
                return behavior(request, context)
            except Exception as exc:
                if context.code() not in (None, grpc.StatusCode.OK):  # already aborted deeper down
                    raise
                code = status_for(exc)
                self._fail(context, method, exc)
                raise  # unreachable: abort raises
            finally:
                if counted:
                    self._leave(method)
                self._end()
                self._log(method, context, start, code or self._final_code(context))

        return inner

    def _wrap_stream(
        self, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], method: str
    ) -> Callable[..., Iterator[Any]]:
        def inner(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            code: grpc.StatusCode | str | None = None
            counted = False
            self._begin(method, context)
            try:
                self._authorize(context, method)
                counted = self._enter(method)
                yield from behavior(request, context)
            except GeneratorExit:
                code = "CANCELLED"
                raise
            except Exception as exc:
                if context.code() not in (None, grpc.StatusCode.OK):
                    raise
                code = status_for(exc)
                self._fail(context, method, exc)
            finally:
                if counted:
                    self._leave(method)
                self._end()
                self._log(method, context, start, code or self._final_code(context))

        return inner
