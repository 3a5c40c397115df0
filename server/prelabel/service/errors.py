"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import grpc

from prelabel import errors

_STATUS: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (errors.InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.NotImplementedYetError, grpc.StatusCode.UNIMPLEMENTED),
    (errors.UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.CancelledError, grpc.StatusCode.CANCELLED),
)


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The status code for a raised exception; anything not a domain error is INTERNAL."""
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL
