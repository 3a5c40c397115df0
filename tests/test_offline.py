"""Nothing reaches the network at run time: the libraries prelabel runs on are kept offline."""

from __future__ import annotations

import os
import subprocess
import sys


def test_prelabel_keeps_ultralytics_offline() -> None:
    """Ultralytics probed DNS on import and, online, sent usage events after every predict (the Detect path) unless
    YOLO_OFFLINE was set. Importing prelabel sets it for the process, before any Ultralytics import; a value the user
    set is kept. Checked in fresh interpreters."""
    code = (
        "import os, prelabel\n"
        "import ultralytics.utils as u\n"
        "from ultralytics.utils.events import events\n"
        "print(os.environ['YOLO_OFFLINE'], u.ONLINE, events.enabled)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "YOLO_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, timeout=120)
    assert out.stdout.split() == ["1", "False", "False"], out.stdout + out.stderr
    env["YOLO_OFFLINE"] = "0"
    out = subprocess.run(
        [sys.executable, "-c", "import os, prelabel; print(os.environ['YOLO_OFFLINE'])"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    assert out.stdout.strip() == "0"
