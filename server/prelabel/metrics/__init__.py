"""Metrics for tracking, interpolation, pose and segments; each submodule wraps a well-kept library where one exists.

Import the submodule you need (``prelabel.metrics.pose``, ...): this package imports nothing itself.
"""
