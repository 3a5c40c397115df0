"""Logging set-up for the CLI and the server: readable text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, plus the record's ``fields`` extra."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class ToRootHandlers(logging.Filter):
    """A library logger's records at or above ``level`` go to the root logger's handlers (stderr), and none to the
    library's own: Ultralytics adds a handler on ``sys.stdout`` when it is imported (resetting its logger's level),
    which would mix its messages into a command's JSON on stdout (on a new machine its first import announces the
    settings file it creates). A filter on the logger outlives that set-up."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            for handler in logging.getLogger().handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
        return False


def route_library_logs(name: str, level: int = logging.WARNING) -> None:
    """Send logger ``name``'s records at or above ``level`` to the root logger's handlers only (:class:`ToRootHandlers`,
    replacing an earlier routing of the same logger)."""
    logger = logging.getLogger(name)
    for f in [f for f in logger.filters if isinstance(f, ToRootHandlers)]:
        logger.removeFilter(f)
    logger.addFilter(ToRootHandlers(level))
    logger.setLevel(min(level, logging.WARNING))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger on stderr (``fmt`` is "text" or "json"); third-party messages below warnings are
    dropped, and Ultralytics' go to stderr too (:func:`route_library_logs`)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter stays at warnings.
    for name in ("PIL", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    route_library_logs("ultralytics")
