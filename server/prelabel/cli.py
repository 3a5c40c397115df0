"""The ``prelabel`` command.

Subcommands: ``serve`` (the gRPC server), ``detect`` (JSON detections for an image or a video), ``models``,
``demo`` (the main job on embedded defaults), plus the subcommands other modules register below.
The environment is read here only (``PRELABEL_TOKEN``), then passed down in :class:`Settings`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prelabel import __version__
from prelabel.logs import setup_logging

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=50051, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--max-message-mb", type=int, default=64, help="largest message in MiB (default: %(default)s)")
    p.add_argument("--max-concurrent", type=int, default=16, help="RPCs served at once (default: %(default)s)")
    p.add_argument("--token-file", type=Path, help="file holding the bearer token clients must send")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate (with --tls-key: serve TLS only)")
    p.add_argument("--tls-key", type=Path, help="PEM private key")
    p.add_argument("--allow-root", type=Path, action="append", default=[], help="folder whose videos may be read")
    p.add_argument("--data-dir", type=Path, default=Path("prelabel-data"), help="uploads, jobs and results")
    p.add_argument("--models-dir", type=Path, help="folder with registry.yaml and weights")
    p.add_argument("--preload", action="append", default=[], help="model to load and warm before SERVING")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="max images per batched forward pass")
    p.add_argument("--batch-delay-ms", type=float, default=5.0, help="max wait to fill a batch")


def build_settings(args: argparse.Namespace) -> Any:
    """Settings from parsed ``serve`` arguments and the environment (``PRELABEL_TOKEN``)."""
    from prelabel.settings import Settings, default_models_dir

    token = os.environ.get("PRELABEL_TOKEN") or None
    if args.token_file is not None:
        token = args.token_file.read_text().strip() or None
    return Settings(
        host=args.host,
        port=args.port,
        max_message_mb=args.max_message_mb,
        max_concurrent_rpcs=args.max_concurrent,
        auth_token=token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        allowed_roots=list(args.allow_root),
        data_dir=args.data_dir,
        models_dir=args.models_dir or default_models_dir(),
        preload=list(args.preload),
        device=args.device,
        batch_max_size=args.batch_size,
        batch_max_delay_ms=args.batch_delay_ms,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gRPC server until SIGTERM/SIGINT."""
    from prelabel.service.server import serve

    return serve(build_settings(args))


def cmd_models(args: argparse.Namespace) -> int:
    """Print the registry as JSON."""
    from prelabel.registry import ModelRegistry
    from prelabel.settings import default_models_dir

    registry = ModelRegistry.load((args.models_dir or default_models_dir()) / "registry.yaml")
    rows = [
        {
            "name": s.name,
            "task": s.task,
            "available": s.available,
            "weights": str(s.weights or s.arch),
            "description": s.description,
        }
        for s in registry.list(args.task or "")
    ]
    print(json.dumps({"defaults": registry.defaults, "models": rows}, indent=2))
    return 0


def _detections_json(dets: Any) -> list[dict[str, Any]]:
    return [
        {
            "xyxy": [round(float(v), 2) for v in dets.xyxy[i]],
            "score": round(float(dets.scores[i]), 4),
            "class_id": int(dets.class_ids[i]),
            "class_name": dets.class_name(i),
        }
        for i in range(len(dets))
    ]


def cmd_detect(args: argparse.Namespace) -> int:
    """Detect in an image or every ``--every``-th frame of a video; print JSON on stdout."""
    import numpy as np

    from prelabel.detect.base import DetectOptions
    from prelabel.video.decode import VideoReader

    source: Path = args.source
    detect_fn: Any
    model_name: str
    if args.server:
        from prelabel.client import PrelabelClient

        client = PrelabelClient(args.server, token=os.environ.get("PRELABEL_TOKEN") or None)
        model_name = args.model or "(server default)"

        def detect_fn(images: list[np.ndarray]) -> list[Any]:
            return client.detect(images, args.model, conf=args.conf, imgsz=args.imgsz, encoding=".png")
    else:
        from prelabel.detect.manager import ModelManager
        from prelabel.registry import ModelRegistry
        from prelabel.settings import default_models_dir

        registry = ModelRegistry.load((args.models_dir or default_models_dir()) / "registry.yaml")
        detector = ModelManager(registry, args.device).get(args.model, "detect")
        model_name = detector.name
        options = DetectOptions(conf=args.conf, imgsz=args.imgsz)

        def detect_fn(images: list[np.ndarray]) -> list[Any]:
            return detector.detect(images, options)

    out: dict[str, Any] = {"source": str(source), "model": model_name}
    if source.suffix.lower() in IMAGE_SUFFIXES:
        import cv2

        img = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if img is None:
            print(f"error: cannot read image {source}", file=sys.stderr)
            return 2
        out["width"], out["height"] = int(img.shape[1]), int(img.shape[0])
        out["detections"] = _detections_json(detect_fn([img])[0])
    else:
        frames_out = []
        batch: list[Any] = []

        def flush() -> None:
            if batch:
                for fr, dets in zip(batch, detect_fn([f.image for f in batch]), strict=True):
                    frames_out.append(
                        {"frame_idx": fr.frame_idx, "ts_ms": round(fr.ts_ms, 3), "detections": _detections_json(dets)}
                    )
                batch.clear()

        with VideoReader(source) as reader:
            end = args.max_frames if args.max_frames else None
            for frame in reader.frames(0, end):
                if frame.frame_idx % args.every == 0:
                    batch.append(frame)
                    if len(batch) >= 8:
                        flush()
            flush()
        out["frames"] = frames_out
    json.dump(out, sys.stdout, indent=None if args.compact else 1)
    sys.stdout.write("\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on embedded defaults (see prelabel.demo)."""
    from prelabel.demo import run_demo

    return run_demo(args.out, seed=args.seed, frames=args.frames)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``prelabel`` command."""
    parser = argparse.ArgumentParser(prog="prelabel", description="Model-assisted video labeling.")
    parser.add_argument("--version", action="version", version=f"prelabel {__version__}")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gRPC server")
    _add_server_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="list the model registry")
    p.add_argument("--task", choices=("detect", "pose", "actions"))
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("detect", help="detect objects in an image or a video; prints JSON")
    p.add_argument("source", type=Path, help="image or video file")
    p.add_argument("--model", default="", help="registry name or .pt path (default: the registry's detector)")
    p.add_argument("--server", help="host:port of a running server (default: run in-process)")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--imgsz", type=int, default=0)
    p.add_argument("--every", type=int, default=1, help="video: detect on every N-th frame")
    p.add_argument("--max-frames", type=int, default=0, help="video: stop after this many frames (0: all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--models-dir", type=Path)
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("demo", help="the main job: generate a clip, label it through a real server, summarise")
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--frames", type=int, default=90)
    p.set_defaults(func=cmd_demo)

    for register in _plugin_registrars():
        register(sub)
    return parser


def _plugin_registrars() -> list[Any]:
    """Subcommands defined next to their code (``add_subcommands(subparsers)`` or ``add_subparser(subparsers)``)."""
    import importlib
    import importlib.util

    out = []
    for module in ("prelabel.synthetic.cli", "prelabel.actions.cli"):
        if importlib.util.find_spec(module) is None:
            continue
        mod = importlib.import_module(module)
        register = getattr(mod, "add_subcommands", None) or getattr(mod, "add_subparser", None)
        if register is not None:
            out.append(register)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prelabel`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    from prelabel.errors import PrelabelError

    try:
        return int(args.func(args))
    except PrelabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
