"""Detection throughput: frames/s through the ``Detect`` RPC versus the same Ultralytics model called directly.

Both sides run the same weights on the same decoded frames, in one run, at batch 1 and batch 8:

- ``direct``: the plain Ultralytics loop, ``YOLO(weights).predict(frames[i:i + B], imgsz=..., batch=B)``, in this
  process.
- ``service``: a :class:`~prelabel.service.server.PrelabelServer` in a child process (started with ``spawn``, so
  client and server do not share the GIL, as in production), called through :class:`~prelabel.client.PrelabelClient`
  with one ``Detect`` request of ``B`` JPEG-encoded frames at a time. The client's time is split into JPEG encoding
  and waiting for the reply (transfer, server decode, batching, inference, response).

Rounds are interleaved (direct/service, then service/direct in the next round, so slow drift of a shared machine
does not favour one side); each measurement pushes the same ``--frames`` frames through. Reported: per-round frames/s,
medians over rounds, the ratio service/direct of the medians and the median of the per-round (paired) ratios, the
client's encode vs wait share, and the per-frame costs of the pieces the service adds (JPEG encode and decode,
protobuf request serialisation and parsing), measured in this process on the same frames.

Model: the project's ``prelabel-synth-det`` when the registry has it and its weights exist, else the untrained
``arch-yolo11n`` at imgsz 640 (same compute as a trained YOLO11n). An architecture-only model gets random weights when
built, so it is built once (seeded), saved to a temporary ``.pt`` file, and both sides load that file: the service
serves it as an ad-hoc model path, so both run identical weights.

Frames: PETS09-S2L1 (``../shared/data/pets09-s2l1/video.avi``, 768x576) when present, else a generated clip
(``prelabel.synthetic.generate("default", seed)``).

Goal (issue 2): the service keeps at least 0.9 of the direct throughput at batch 8 on CPU.

Run: ``python benchmarks/detect_throughput.py`` (about 3 minutes on 2 CPU cores; ``--quick`` for a smoke run).
Writes ``benchmarks/results/detect_throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger("benchmarks.detect_throughput")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PETS09_VIDEO = REPO.parent / "shared" / "data" / "pets09-s2l1" / "video.avi"
PREFERRED_MODEL = "prelabel-synth-det"
FALLBACK_MODEL = "arch-yolo11n"
FALLBACK_IMGSZ = 640
GOAL_BATCH = 8
GOAL_RATIO = 0.9
JPEG_QUALITY = 95  # the client's default
Frame = npt.NDArray[np.uint8]  # (H, W, 3) uint8 BGR


@dataclass(frozen=True)
class ModelChoice:
    """What both sides run.

    Attributes:
        name: registry name of the model.
        weights: the weights file both sides load.
        server_model: the name sent in ``DetectRequest.model`` (registry name, or the weights path for an
            architecture-only model saved for this run).
        imgsz: inference size in pixels.
        note: how the weights were obtained.
    """

    name: str
    weights: Path
    server_model: str
    imgsz: int
    note: str


@dataclass(frozen=True)
class DirectRun:
    """One pass of the frames through ``YOLO.predict``: wall seconds and detections found."""

    seconds: float
    detections: int


@dataclass(frozen=True)
class ServiceRun:
    """One pass of the frames through ``Detect``: wall seconds, of which JPEG encoding and waiting for replies."""

    seconds: float
    encode_s: float
    wait_s: float
    detections: int


# ---------------------------------------------------------------------------------------------------- inputs


def load_frames(count: int, seed: int) -> tuple[list[Frame], str]:
    """``count`` BGR frames and a description of where they came from (PETS09 video, else a generated clip)."""
    import cv2

    if PETS09_VIDEO.is_file():
        cap = cv2.VideoCapture(str(PETS09_VIDEO))
        frames: list[Frame] = []
        try:
            while len(frames) < count:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(np.ascontiguousarray(frame))
        finally:
            cap.release()
        if len(frames) == count:
            return frames, f"PETS09-S2L1 video.avi frames 0..{count - 1}"
        logger.warning("PETS09 video gave %d of %d frames; using a generated clip", len(frames), count)
    from prelabel.synthetic import generate

    scene = generate("default", seed, num_frames=count)
    if scene.frames is None:
        raise RuntimeError("the generated scene has no rendered frames")
    return [np.ascontiguousarray(f) for f in scene.frames], f"generated clip (preset default, seed {seed})"


def choose_model(requested: str | None, imgsz: int | None, workdir: Path) -> ModelChoice:
    """The model both sides run (see the module docstring).

    Raises:
        prelabel.errors.NotFoundError: ``requested`` is not in the registry.
        prelabel.errors.FailedPreconditionError: its weights are missing.
    """
    from prelabel.registry import ModelRegistry
    from prelabel.settings import default_models_dir

    registry = ModelRegistry.load(default_models_dir() / "registry.yaml")
    if requested:
        spec = registry.get(requested)
    else:
        names = {s.name for s in registry.list("detect")}
        preferred = registry.get(PREFERRED_MODEL) if PREFERRED_MODEL in names else None
        spec = preferred if preferred is not None and preferred.available else registry.get(FALLBACK_MODEL)
    spec.require_available()
    if spec.weights is not None:
        size = imgsz or spec.imgsz
        return ModelChoice(spec.name, spec.weights, spec.name, size, f"weights {spec.weights.name} from the registry")
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(str(spec.arch), task=spec.task)
    path = workdir / f"{spec.name}.pt"
    model.save(path)
    size = imgsz or FALLBACK_IMGSZ
    note = f"untrained, built from {spec.arch} (torch seed 0), saved once so both sides load identical weights"
    return ModelChoice(spec.name, path, str(path), size, note)


# ---------------------------------------------------------------------------------------------------- server


def _serve(model: str, threads: int, max_batch: int, max_delay_ms: float, conn: Connection) -> None:
    """Child process: start a server on a free port, send the port (or an error text), serve until told to stop."""
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)
    from prelabel.service.server import PrelabelServer
    from prelabel.settings import Settings

    with tempfile.TemporaryDirectory(prefix="prelabel-bench-") as data_dir:
        settings = Settings(
            host="127.0.0.1",
            port=0,
            preload=[model],
            device="cpu",
            data_dir=Path(data_dir),
            batch_max_size=max_batch,
            batch_max_delay_ms=max_delay_ms,
            drain_s=0.0,
            grace_s=1.0,
        )
        try:
            server = PrelabelServer(settings)
            port = server.start()
        except Exception as exc:
            conn.send(f"error: {type(exc).__name__}: {exc}")
            return
        conn.send(port)
        with contextlib.suppress(EOFError):
            conn.recv()  # any message, or the parent closing the pipe, stops the server
        server.stop(grace=0)


class ServerProcess:
    """A prelabel server in a ``spawn`` child process; a context manager yielding its port."""

    def __init__(self, model: str, threads: int, max_batch: int, max_delay_ms: float, start_timeout_s: float = 120.0):
        self._args = (model, threads, max_batch, max_delay_ms)
        self._timeout = start_timeout_s
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(*self._args, child_conn), name="prelabel-server", daemon=True)
        self._child_conn = child_conn

    def __enter__(self) -> int:
        self._proc.start()
        self._child_conn.close()
        if not self._conn.poll(self._timeout):
            self._proc.kill()
            raise RuntimeError(f"server did not report its port within {self._timeout:.0f} s")
        msg = self._conn.recv()
        if not isinstance(msg, int):
            self._proc.join(5)
            raise RuntimeError(f"server failed to start: {msg}")
        return msg

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send("stop")
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


# ---------------------------------------------------------------------------------------------------- measuring


def _chunks(frames: Sequence[Frame], batch: int) -> list[list[Frame]]:
    return [list(frames[i : i + batch]) for i in range(0, len(frames), batch)]


def run_direct(model: Any, frames: Sequence[Frame], batch: int, imgsz: int) -> DirectRun:
    """The reference loop: ``model.predict`` on chunks of ``batch`` frames (the service's default filters)."""
    t0 = time.perf_counter()
    found = 0
    for chunk in _chunks(frames, batch):
        results = model.predict(
            chunk, imgsz=imgsz, batch=batch, conf=0.25, iou=0.7, max_det=300, device="cpu", verbose=False
        )
        found += sum(len(r.boxes) for r in results)
    return DirectRun(time.perf_counter() - t0, found)


def run_service(client: Any, model: str, frames: Sequence[Frame], batch: int, imgsz: int) -> ServiceRun:
    """One ``Detect`` request per chunk of ``batch`` frames, encoded as the client does (JPEG, quality 95)."""
    from prelabel.client import encode_image

    encode_s = wait_s = 0.0
    found = 0
    for chunk in _chunks(frames, batch):
        t0 = time.perf_counter()
        payload = [encode_image(f, ".jpg", JPEG_QUALITY) for f in chunk]
        t1 = time.perf_counter()
        dets = client.detect(payload, model, imgsz=imgsz)
        t2 = time.perf_counter()
        encode_s += t1 - t0
        wait_s += t2 - t1
        found += sum(len(d) for d in dets)
    return ServiceRun(encode_s + wait_s, encode_s, wait_s, found)


def component_costs(frames: Sequence[Frame], batch: int, repeats: int = 3) -> dict[str, float]:
    """Median per-frame milliseconds of what the service adds to inference, measured in this process.

    Keys: ``jpeg_encode_ms`` (client), ``jpeg_decode_ms`` (server, ``convert.decode_image``), ``proto_serialize_ms``
    and ``proto_parse_ms`` (a ``DetectRequest`` of ``batch`` images), ``jpeg_kib`` (mean encoded size).
    """
    from prelabel.client import encode_image
    from prelabel.service.convert import decode_image
    from prelabel.v1 import prelabel_pb2 as pb

    def per_frame(fn: Any, n: int) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0 / n)
        return float(statistics.median(times))

    encoded = [encode_image(f, ".jpg", JPEG_QUALITY) for f in frames]
    chunk = encoded[:batch]
    request = pb.DetectRequest(model="m", images=chunk)
    wire = request.SerializeToString()
    return {
        "jpeg_encode_ms": per_frame(lambda: [encode_image(f, ".jpg", JPEG_QUALITY) for f in frames], len(frames)),
        "jpeg_decode_ms": per_frame(lambda: [decode_image(b, i) for i, b in enumerate(encoded)], len(frames)),
        "proto_serialize_ms": per_frame(
            lambda: pb.DetectRequest(model="m", images=chunk).SerializeToString(), len(chunk)
        ),
        "proto_parse_ms": per_frame(lambda: pb.DetectRequest.FromString(wire), len(chunk)),
        "jpeg_kib": float(np.mean([len(b) for b in encoded]) / 1024.0),
    }


# ---------------------------------------------------------------------------------------------------- summary


def summarize(rounds: list[dict[str, Any]], batches: Sequence[int], n_frames: int) -> dict[str, dict[str, float]]:
    """Medians over rounds per batch size: frames/s each side, ratios, client encode/wait shares, overhead."""
    out: dict[str, dict[str, float]] = {}
    for b in batches:
        rows = [r for r in rounds if r["batch"] == b]
        direct_fps = [r["direct"]["fps"] for r in rows]
        service_fps = [r["service"]["fps"] for r in rows]
        enc_share = [r["service"]["encode_s"] / r["service"]["seconds"] for r in rows]
        overhead_ms = [(r["service"]["seconds"] - r["direct"]["seconds"]) * 1000.0 / n_frames for r in rows]
        med_direct = statistics.median(direct_fps)
        med_service = statistics.median(service_fps)
        out[str(b)] = {
            "direct_fps_median": med_direct,
            "service_fps_median": med_service,
            "ratio_of_medians": med_service / med_direct,
            "paired_ratio_median": statistics.median(s / d for s, d in zip(service_fps, direct_fps, strict=True)),
            "paired_ratio_min": min(s / d for s, d in zip(service_fps, direct_fps, strict=True)),
            "paired_ratio_max": max(s / d for s, d in zip(service_fps, direct_fps, strict=True)),
            "client_encode_share_median": statistics.median(enc_share),
            "client_wait_share_median": statistics.median(1.0 - s for s in enc_share),
            "overhead_ms_per_frame_median": statistics.median(overhead_ms),
            "direct_ms_per_frame_median": 1000.0 / med_direct,
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    """The Markdown report of a result dict."""
    m, fr, goal = result["model"], result["frames"], result["goal"]
    lines = [
        "# Detection throughput: `Detect` over gRPC vs direct Ultralytics",
        "",
        f"Model `{m['name']}` ({m['note']}), imgsz {m['imgsz']}, CPU, torch {result['versions']['torch']}, "
        f"ultralytics {result['versions']['ultralytics']}, {result['threads']['torch']} torch thread(s) on each side; "
        f"{fr['count']} frames ({fr['source']}, {fr['width']}x{fr['height']}); {result['rounds_count']} interleaved "
        f"rounds; machine: {result['machine']['processor']}, {result['machine']['cpu_count']} cores "
        f"(load average {result['machine']['loadavg_start'][0]:.1f} at start, "
        f"{result['machine']['loadavg_end'][0]:.1f} at end).",
        "",
        "| batch | direct frames/s | service frames/s | service/direct (medians) | paired ratio median [min, max] "
        "| client encode share | client wait share | overhead ms/frame |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b, s in result["summary"].items():
        lines.append(
            f"| {b} | {s['direct_fps_median']:.3f} | {s['service_fps_median']:.3f} | {s['ratio_of_medians']:.3f} "
            f"| {s['paired_ratio_median']:.3f} [{s['paired_ratio_min']:.3f}, {s['paired_ratio_max']:.3f}] "
            f"| {s['client_encode_share_median']:.1%} | {s['client_wait_share_median']:.1%} "
            f"| {s['overhead_ms_per_frame_median']:.1f} |"
        )
    c = result["components_ms"]
    lines += [
        "",
        f"Goal: service/direct >= {goal['min_ratio']} at batch {goal['batch']}: measured {goal['ratio']:.3f} "
        f"(median of paired per-round ratios) -> **{'met' if goal['met'] else 'not met'}**.",
        "",
        "What the service adds per frame (measured in-process on the same frames, medians): "
        f"JPEG encode {c['jpeg_encode_ms']:.2f} ms (client), JPEG decode {c['jpeg_decode_ms']:.2f} ms (server), "
        f"protobuf serialise {c['proto_serialize_ms']:.3f} ms and parse {c['proto_parse_ms']:.3f} ms; "
        f"{c['jpeg_kib']:.0f} KiB per JPEG; cross-request batching waits up to "
        f"{result['server']['batch_max_delay_ms']:.0f} ms for company when a request is smaller than "
        f"{result['server']['batch_max_size']} images.",
        "",
        "Overhead ms/frame = (service time - direct time) / frames, per round, median. "
        "Detections found (direct / service, all rounds): "
        f"{result['detections']['direct']} / {result['detections']['service']}.",
        "",
        "Reproduce: `python benchmarks/detect_throughput.py` "
        f"(`--frames {fr['count']} --rounds {result['rounds_count']} --threads {result['threads']['torch']}`).",
        "",
    ]
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    processor = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "processor": processor,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
    }


# ---------------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the result dict (also written to ``args.out``)."""
    import cv2
    import grpc
    import torch
    import ultralytics
    from ultralytics import YOLO

    from prelabel.client import PrelabelClient

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    machine = _machine()
    batches = tuple(args.batches)
    if args.frames % max(batches):
        raise SystemExit(f"--frames must be a multiple of the largest batch {max(batches)}, got {args.frames}")
    frames, source = load_frames(args.frames, args.seed)
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory(prefix="prelabel-bench-model-") as tmp:
        choice = choose_model(args.model, args.imgsz, Path(tmp))
        logger.info("model %s (%s), imgsz %d; frames: %s", choice.name, choice.note, choice.imgsz, source)
        direct_model = YOLO(str(choice.weights), task="detect")
        components = component_costs(frames, max(batches))
        rounds: list[dict[str, Any]] = []
        with (
            ServerProcess(choice.server_model, args.threads, args.server_max_batch, args.server_delay_ms) as port,
            PrelabelClient(f"127.0.0.1:{port}", timeout_s=600.0) as client,
        ):
            client.wait_until_serving(60.0)
            for b in batches:  # warm both sides at every batch size (lazy set-up, allocator growth)
                run_direct(direct_model, frames[:b], b, choice.imgsz)
                run_service(client, choice.server_model, frames[:b], b, choice.imgsz)
            for r in range(args.rounds):
                for b in batches:
                    order = ("direct", "service") if r % 2 == 0 else ("service", "direct")
                    row: dict[str, Any] = {"round": r, "batch": b, "order": list(order)}
                    for side in order:
                        if side == "direct":
                            d = run_direct(direct_model, frames, b, choice.imgsz)
                            row["direct"] = {**asdict(d), "fps": len(frames) / d.seconds}
                        else:
                            s = run_service(client, choice.server_model, frames, b, choice.imgsz)
                            row["service"] = {**asdict(s), "fps": len(frames) / s.seconds}
                    logger.info(
                        "round %d batch %d: direct %.3f fps, service %.3f fps (ratio %.3f)",
                        r,
                        b,
                        row["direct"]["fps"],
                        row["service"]["fps"],
                        row["service"]["fps"] / row["direct"]["fps"],
                    )
                    rounds.append(row)
    machine["loadavg_end"] = list(os.getloadavg())
    summary = summarize(rounds, batches, len(frames))
    goal_key = str(GOAL_BATCH)
    goal_ratio = summary[goal_key]["paired_ratio_median"] if goal_key in summary else float("nan")
    return {
        "benchmark": "detect_throughput",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine,
        "device": "cpu",
        "versions": {
            "torch": torch.__version__,
            "ultralytics": ultralytics.__version__,
            "opencv": cv2.__version__,
            "grpcio": grpc.__version__,
            "numpy": np.__version__,
        },
        "threads": {"torch": args.threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "")},
        "model": {"name": choice.name, "imgsz": choice.imgsz, "note": choice.note},
        "frames": {"source": source, "count": len(frames), "width": w, "height": h},
        "client": {"encoding": ".jpg", "jpeg_quality": JPEG_QUALITY, "requests": "one Detect per batch, sequential"},
        "server": {
            "process": "child process (multiprocessing spawn), same torch threads",
            "batch_max_size": args.server_max_batch,
            "batch_max_delay_ms": args.server_delay_ms,
        },
        "rounds_count": args.rounds,
        "batches": list(batches),
        "rounds": rounds,
        "summary": summary,
        "components_ms": components,
        "detections": {
            "direct": sum(r["direct"]["detections"] for r in rounds),
            "service": sum(r["service"]["detections"] for r in rounds),
        },
        "goal": {
            "batch": GOAL_BATCH,
            "min_ratio": GOAL_RATIO,
            "ratio": goal_ratio,
            "ratio_definition": "median over rounds of service fps / direct fps (paired within a round)",
            "met": bool(goal_ratio >= GOAL_RATIO),
        },
        "wall_s": time.perf_counter() - t_start,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=16, help="frames per measurement (multiple of the max batch)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads on each side")
    parser.add_argument(
        "--model", default=None, help=f"registry name (default {PREFERRED_MODEL}, else {FALLBACK_MODEL})"
    )
    parser.add_argument(
        "--imgsz", type=int, default=None, help=f"inference size (default: the model's; arch {FALLBACK_IMGSZ})"
    )
    parser.add_argument("--server-max-batch", type=int, default=8, help="server cross-request batch size")
    parser.add_argument("--server-delay-ms", type=float, default=5.0, help="server batching delay")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated clip when PETS09 is absent")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 frames, 2 rounds")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.rounds = max(args.batches), 2
    # Before torch is imported anywhere (the spawned server inherits the environment).
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detect_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "detect_throughput.md").write_text(markdown(result))
    logger.info("wrote %s (%.0f s)", args.out / "detect_throughput.{json,md}", result["wall_s"])
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
