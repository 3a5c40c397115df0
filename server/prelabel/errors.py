"""Domain errors, raised anywhere in the package and mapped to gRPC status codes in one place.

Modules under ``detect/``, ``track/``, ``pose/``, ``interpolate/`` and ``actions/`` never import grpc: they raise
these exceptions, and :mod:`prelabel.service.errors` turns each class into its status code.
"""

from __future__ import annotations


class PrelabelError(Exception):
    """Base class of every error the service reports to a caller."""


class InvalidInputError(PrelabelError, ValueError):
    """The request itself is wrong: bad shapes, NaN, undecodable image or video, out-of-range frames."""


class NotFoundError(PrelabelError, LookupError):
    """A named thing does not exist: unknown model, job, upload or file."""


class FailedPreconditionError(PrelabelError):
    """The request is valid but the system is not in a state to serve it (e.g. model weights missing)."""


class PermissionDeniedError(PrelabelError, PermissionError):
    """The caller may not access the resource (e.g. a path outside the allowed roots)."""


class ResourceExhaustedError(PrelabelError):
    """A limit was reached: concurrency, queue length, message size."""


class UnavailableError(PrelabelError):
    """The server cannot serve right now (shutting down, warming up); retrying later may work."""


class NotImplementedYetError(PrelabelError, NotImplementedError):
    """The capability is part of the API but not built yet."""


class CancelledError(PrelabelError):
    """The caller went away (cancelled, or its deadline passed) before the answer was ready; the work stopped."""


class UnauthenticatedError(PrelabelError):
    """Missing or wrong credentials."""
