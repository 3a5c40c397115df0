"""The gRPC edge: servicers, interceptors and the server entry point. Only this package imports grpc."""

from __future__ import annotations
