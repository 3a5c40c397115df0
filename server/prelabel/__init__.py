"""prelabel: model-assisted video labeling as a gRPC service."""

from __future__ import annotations

import os

# Nothing here reaches the network at run time. Ultralytics probes DNS (Cloudflare, Google) when it is first imported
# and, where that answers, sends usage events after each predict, train, val and export (its ``sync`` setting, on by
# default). YOLO_OFFLINE turns both off for this process; a value the user set stays as it is.
os.environ.setdefault("YOLO_OFFLINE", "1")
# Nor does it install packages: Ultralytics patches Pillow's ``Image.open`` to pip-install a HEIF plugin whenever Pillow
# cannot identify a file, so a client's undecodable image had the server run pip (where it was online).
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

__version__ = "0.1.0"
__all__ = ["__version__"]
