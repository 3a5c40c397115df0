"""prelabel: model-assisted video labeling as a gRPC service."""

from __future__ import annotations

import os

# Nothing here reaches the network at run time. Ultralytics probes DNS (Cloudflare, Google) when it is first imported
# and, where that answers, sends usage events after each predict, train, val and export (its ``sync`` setting, on by
# default). YOLO_OFFLINE turns both off for this process; a value the user set stays as it is.
os.environ.setdefault("YOLO_OFFLINE", "1")

__version__ = "0.1.0"
__all__ = ["__version__"]
