"""Detection throughput: frames/s through the ``Detect`` RPC versus the same Ultralytics model called directly.

Both sides run the same weights on the same decoded frames, in one run, at batch 1 and batch 8:

- ``direct``: the plain Ultralytics loop, ``YOLO(weights).predict(frames[i:i + B], imgsz=..., batch=B)``, in this
  process.
- ``service``: a :class:`~prelabel.service.server.PrelabelServer` in a child process (started with ``spawn``, so
  client and server do not share the GIL, as in production), called through :class:`~prelabel.client.PrelabelClient`
  with one ``Detect`` request of ``B`` JPEG-encoded frames at a time. The client's time is split into JPEG encoding
  and waiting for the reply (transfer, server decode, batching, inference, response).

Rounds are interleaved request by request (a direct chunk of ``B`` frames, then the same chunk through the service,
alternating which side goes first), so the changing load of a shared machine hits both sides alike; each round pushes
the same ``--frames`` frames through both sides at each batch size. Reported: per-round frames/s,
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
    """Frames through ``YOLO.predict``: wall seconds, CPU seconds of this process, detections found."""

    seconds: float
    cpu_s: float
    detections: int


@dataclass(frozen=True)
class ServiceRun:
    """Frames through ``Detect``.

    Attributes:
        seconds: wall seconds, the sum of ``encode_s`` (client JPEG encoding) and ``wait_s`` (waiting for replies).
        client_cpu_s, server_cpu_s: CPU seconds of the client process and of the server process meanwhile.
        detections: detections returned.
    """

    seconds: float
    encode_s: float
    wait_s: float
    client_cpu_s: float
    server_cpu_s: float
    detections: int

    @property
    def cpu_s(self) -> float:
        """CPU seconds of both processes."""
        return self.client_cpu_s + self.server_cpu_s


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


def _serve(model: str, threads: int, max_batch: int, max_delay_ms: float, device: str, conn: Connection) -> None:
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
            device=device,
            data_dir=Path(data_dir),
            batch_max_size=max_batch,
            batch_max_delay_ms=max_delay_ms,
            runtime="torch",  # like for like with the direct Ultralytics loop: this measures the service's overhead
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
        # "cpu" asks for this process's CPU seconds (all threads); anything else, or the pipe closing, stops.
        with contextlib.suppress(EOFError):
            while conn.recv() == "cpu":
                conn.send(time.process_time())
        server.stop(grace=0)


class ServerProcess:
    """A prelabel server in a ``spawn`` child process; a context manager that sets :attr:`port` on entry."""

    def __init__(
        self,
        model: str,
        threads: int,
        max_batch: int,
        max_delay_ms: float,
        device: str = "cpu",
        start_timeout_s: float = 120.0,
    ):
        self._args = (model, threads, max_batch, max_delay_ms, device)
        self._timeout = start_timeout_s
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(*self._args, child_conn), name="prelabel-server", daemon=True)
        self._child_conn = child_conn
        self.port = 0

    def cpu_seconds(self) -> float:
        """CPU seconds the server process has used so far (all its threads)."""
        self._conn.send("cpu")
        return float(self._conn.recv())

    def __enter__(self) -> ServerProcess:
        self._proc.start()
        self._child_conn.close()
        if not self._conn.poll(self._timeout):
            self._proc.kill()
            raise RuntimeError(f"server did not report its port within {self._timeout:.0f} s")
        msg = self._conn.recv()
        if not isinstance(msg, int):
            self._proc.join(5)
            raise RuntimeError(f"server failed to start: {msg}")
        self.port = msg
        return self

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


def run_direct(model: Any, frames: Sequence[Frame], batch: int, imgsz: int, device: str = "cpu") -> DirectRun:
    """The reference loop: ``model.predict`` on chunks of ``batch`` frames (the service's default filters; FP16 on
    CUDA, as the service runs there)."""
    c0, t0 = time.process_time(), time.perf_counter()
    found = 0
    for chunk in _chunks(frames, batch):
        results = model.predict(
            chunk,
            imgsz=imgsz,
            batch=batch,
            conf=0.25,
            iou=0.7,
            max_det=300,
            device=device,
            quantize=16 if device != "cpu" else None,
            verbose=False,
        )
        found += sum(len(r.boxes) for r in results)
    return DirectRun(time.perf_counter() - t0, time.process_time() - c0, found)


def run_service(
    client: Any, server: ServerProcess, model: str, frames: Sequence[Frame], batch: int, imgsz: int, max_side: int = 0
) -> ServiceRun:
    """One ``Detect`` request per chunk of ``batch`` frames, prepared as the client does (optionally shrunk to
    ``max_side``, then JPEG quality 95)."""
    from prelabel.client import prepare_image

    encode_s = wait_s = client_cpu = server_cpu = 0.0
    found = 0
    for chunk in _chunks(frames, batch):
        s0 = server.cpu_seconds()
        c0, t0 = time.process_time(), time.perf_counter()
        payload = [prepare_image(f, ".jpg", JPEG_QUALITY, max_side)[0] for f in chunk]
        t1 = time.perf_counter()
        dets = client.detect(payload, model, imgsz=imgsz)
        t2, c1 = time.perf_counter(), time.process_time()
        server_cpu += server.cpu_seconds() - s0
        client_cpu += c1 - c0
        encode_s += t1 - t0
        wait_s += t2 - t1
        found += sum(len(d) for d in dets)
    return ServiceRun(encode_s + wait_s, encode_s, wait_s, client_cpu, server_cpu, found)


def measure_round(
    direct_model: Any,
    client: Any,
    server: ServerProcess,
    server_model: str,
    frames: Sequence[Frame],
    batch: int,
    imgsz: int,
    round_idx: int,
    max_side: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Push ``frames`` through both sides in chunks of ``batch``, alternating sides chunk by chunk.

    Chunk ``k`` of round ``r`` runs direct first when ``k + r`` is even, else the service first, so both sides see
    the same moments of a shared machine's load. Returns the round's row: per side the summed wall and CPU seconds,
    detections, frames/s and frames per CPU-second (the service also its encode and wait seconds).
    """
    direct: list[DirectRun] = []
    service: list[ServiceRun] = []
    for k, chunk in enumerate(_chunks(frames, batch)):
        if (k + round_idx) % 2 == 0:
            direct.append(run_direct(direct_model, chunk, batch, imgsz, device))
            service.append(run_service(client, server, server_model, chunk, batch, imgsz, max_side))
        else:
            service.append(run_service(client, server, server_model, chunk, batch, imgsz, max_side))
            direct.append(run_direct(direct_model, chunk, batch, imgsz, device))
    d = DirectRun(sum(x.seconds for x in direct), sum(x.cpu_s for x in direct), sum(x.detections for x in direct))
    s = ServiceRun(
        sum(x.seconds for x in service),
        sum(x.encode_s for x in service),
        sum(x.wait_s for x in service),
        sum(x.client_cpu_s for x in service),
        sum(x.server_cpu_s for x in service),
        sum(x.detections for x in service),
    )
    n = len(frames)
    return {
        "round": round_idx,
        "batch": batch,
        "interleave": "per request, alternating which side goes first",
        "direct": {**asdict(d), "fps": n / d.seconds, "frames_per_cpu_s": n / d.cpu_s},
        "service": {**asdict(s), "cpu_s": s.cpu_s, "fps": n / s.seconds, "frames_per_cpu_s": n / s.cpu_s},
    }


def component_costs(frames: Sequence[Frame], batch: int, repeats: int = 3) -> dict[str, float]:
    """Median per-frame costs of what the service adds to inference, measured in this process (single-threaded).

    Keys, each as ``<part>_ms`` (wall) and ``<part>_cpu_ms`` (CPU time, what the part costs when the machine is
    loaded by others): ``jpeg_encode`` (client), ``jpeg_decode`` (server, ``convert.decode_image``),
    ``proto_serialize`` and ``proto_parse`` (a ``DetectRequest`` of ``batch`` images); ``jpeg_kib`` is the mean
    encoded size.
    """
    from prelabel.client import encode_image
    from prelabel.images import decode_image
    from prelabel.v1 import prelabel_pb2 as pb

    def per_frame(name: str, fn: Any, n: int) -> dict[str, float]:
        wall, cpu = [], []
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall.append((time.perf_counter() - t0) * 1000.0 / n)
            cpu.append((time.process_time() - c0) * 1000.0 / n)
        return {f"{name}_ms": float(statistics.median(wall)), f"{name}_cpu_ms": float(statistics.median(cpu))}

    encoded = [encode_image(f, ".jpg", JPEG_QUALITY) for f in frames]
    chunk = encoded[:batch]
    wire = pb.DetectRequest(model="m", images=chunk).SerializeToString()
    return {
        **per_frame("jpeg_encode", lambda: [encode_image(f, ".jpg", JPEG_QUALITY) for f in frames], len(frames)),
        **per_frame("jpeg_decode", lambda: [decode_image(b, i) for i, b in enumerate(encoded)], len(frames)),
        **per_frame(
            "proto_serialize", lambda: pb.DetectRequest(model="m", images=chunk).SerializeToString(), len(chunk)
        ),
        **per_frame("proto_parse", lambda: pb.DetectRequest.FromString(wire), len(chunk)),
        "jpeg_kib": float(np.mean([len(b) for b in encoded]) / 1024.0),
    }


# ---------------------------------------------------------------------------------------------------- summary


def _ratios(rows: list[dict[str, Any]], key: str) -> tuple[float, float, float, float, float, float]:
    """Median ``key`` of each side, the ratio of those medians, and median/min/max of per-round ratios."""
    direct = [float(r["direct"][key]) for r in rows]
    service = [float(r["service"][key]) for r in rows]
    paired = [sv / dv for sv, dv in zip(service, direct, strict=True)]
    med_d, med_s = statistics.median(direct), statistics.median(service)
    return med_d, med_s, med_s / med_d, statistics.median(paired), min(paired), max(paired)


def summarize(rounds: list[dict[str, Any]], batches: Sequence[int], n_frames: int) -> dict[str, dict[str, float]]:
    """Medians over rounds per batch size.

    Wall clock: frames/s of each side, ratio service/direct of the medians, median/min/max of per-round ratios.
    CPU: frames per CPU-second (direct: this process; service: client plus server process), the same ratios, and
    the server's and client's shares of the service's CPU time. Also the client's encode/wait shares of its wall
    time and the service's extra wall milliseconds per frame.
    """
    out: dict[str, dict[str, float]] = {}
    for b in batches:
        rows = [r for r in rounds if r["batch"] == b]
        d_fps, s_fps, r_fps, p_fps, p_fps_min, p_fps_max = _ratios(rows, "fps")
        d_cpu, s_cpu, r_cpu, p_cpu, p_cpu_min, p_cpu_max = _ratios(rows, "frames_per_cpu_s")
        enc_share = [r["service"]["encode_s"] / r["service"]["seconds"] for r in rows]
        client_cpu_share = [r["service"]["client_cpu_s"] / r["service"]["cpu_s"] for r in rows]
        overhead_ms = [(r["service"]["seconds"] - r["direct"]["seconds"]) * 1000.0 / n_frames for r in rows]
        cpu_overhead_ms = [(r["service"]["cpu_s"] - r["direct"]["cpu_s"]) * 1000.0 / n_frames for r in rows]
        out[str(b)] = {
            "direct_fps_median": d_fps,
            "service_fps_median": s_fps,
            "ratio_of_medians": r_fps,
            "paired_ratio_median": p_fps,
            "paired_ratio_min": p_fps_min,
            "paired_ratio_max": p_fps_max,
            "direct_frames_per_cpu_s_median": d_cpu,
            "service_frames_per_cpu_s_median": s_cpu,
            "cpu_ratio_of_medians": r_cpu,
            "cpu_paired_ratio_median": p_cpu,
            "cpu_paired_ratio_min": p_cpu_min,
            "cpu_paired_ratio_max": p_cpu_max,
            "client_encode_share_median": statistics.median(enc_share),
            "client_wait_share_median": statistics.median(1.0 - e for e in enc_share),
            "service_cpu_client_share_median": statistics.median(client_cpu_share),
            "overhead_ms_per_frame_median": statistics.median(overhead_ms),
            "cpu_overhead_ms_per_frame_median": statistics.median(cpu_overhead_ms),
            "direct_cpu_ms_per_frame_median": 1000.0 / d_cpu,
        }
    return out


def _device_words(result: dict[str, Any]) -> str:
    """ "CPU", or the GPU's name and FP16."""
    if result.get("device", "cpu") == "cpu":
        return "CPU"
    return f"{result['device']} ({result.get('gpu')}, FP16)"


def markdown(result: dict[str, Any]) -> str:
    """The Markdown report of a result dict."""
    m, fr, goal = result["model"], result["frames"], result["goal"]
    lines = [
        "# Detection throughput: `Detect` over gRPC vs direct Ultralytics",
        "",
        f"Model `{m['name']}` ({m['note']}), imgsz {m['imgsz']}, {_device_words(result)}, "
        f"torch {result['versions']['torch']}, "
        f"ultralytics {result['versions']['ultralytics']}, {result['threads']['torch']} torch thread(s) on each side; "
        f"{fr['count']} frames ({fr['source']}, {fr['width']}x{fr['height']}); {result['rounds_count']} rounds, "
        "the two sides interleaved request by request; "
        f"machine: {result['machine']['processor']}, {result['machine']['cpu_count']} cores "
        f"(load average {result['machine']['loadavg_start'][0]:.1f} at start, "
        f"{result['machine']['loadavg_end'][0]:.1f} at end).",
        "",
        f"Client: frames shrunk to a longer side of {result['client']['max_side']} px before JPEG encoding "
        "(0: full frames; the model never sees more than its input size), boxes scaled back by the client. The direct "
        "side gets the full decoded frames.",
        "",
        "Wall clock (what a caller sees; on a shared, loaded machine each round swings with other processes' load):",
        "",
        "| batch | direct frames/s | service frames/s | service/direct (medians) | per-round ratio median [min, max] "
        "| client encode share | client wait share | extra ms/frame |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b, s in result["summary"].items():
        lines.append(
            f"| {b} | {s['direct_fps_median']:.3f} | {s['service_fps_median']:.3f} | {s['ratio_of_medians']:.3f} "
            f"| {s['paired_ratio_median']:.3f} [{s['paired_ratio_min']:.3f}, {s['paired_ratio_max']:.3f}] "
            f"| {s['client_encode_share_median']:.1%} | {s['client_wait_share_median']:.1%} "
            f"| {s['overhead_ms_per_frame_median']:.1f} |"
        )
    lines += [
        "",
        "CPU time (frames per CPU-second; direct: the calling process, service: client plus server process; "
        "insensitive to other processes' load):",
        "",
        "| batch | direct frames/CPU-s | service frames/CPU-s | service/direct (medians) "
        "| per-round ratio median [min, max] | client share of service CPU | extra CPU ms/frame |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b, s in result["summary"].items():
        lines.append(
            f"| {b} | {s['direct_frames_per_cpu_s_median']:.3f} | {s['service_frames_per_cpu_s_median']:.3f} "
            f"| {s['cpu_ratio_of_medians']:.3f} | {s['cpu_paired_ratio_median']:.3f} "
            f"[{s['cpu_paired_ratio_min']:.3f}, {s['cpu_paired_ratio_max']:.3f}] "
            f"| {s['service_cpu_client_share_median']:.1%} | {s['cpu_overhead_ms_per_frame_median']:.1f} |"
        )
    c = result["components_ms"]
    verdict = {True: "met", False: "not met"}
    lines += [
        "",
        f"Goal: service/direct >= {goal['min_ratio']} at batch {goal['batch']} (median of per-round ratios): "
        f"wall clock {goal['ratio']:.3f} -> **{verdict[goal['met']]}**; "
        f"CPU time {goal['cpu_ratio']:.3f} -> **{verdict[goal['cpu_met']]}**.",
        "",
        "What the service adds per frame (measured in-process on the same frames, medians, CPU ms with wall ms in "
        f"brackets): JPEG encode {c['jpeg_encode_cpu_ms']:.2f} [{c['jpeg_encode_ms']:.2f}] (client), "
        f"JPEG decode {c['jpeg_decode_cpu_ms']:.2f} [{c['jpeg_decode_ms']:.2f}] (server), "
        f"protobuf serialise {c['proto_serialize_cpu_ms']:.3f} [{c['proto_serialize_ms']:.3f}] and parse "
        f"{c['proto_parse_cpu_ms']:.3f} [{c['proto_parse_ms']:.3f}]; "
        f"{c['jpeg_kib']:.0f} KiB per JPEG; cross-request batching waits up to "
        f"{result['server']['batch_max_delay_ms']:.0f} ms for company when a request is smaller than "
        f"{result['server']['batch_max_size']} images.",
        "",
        "Extra ms/frame = (service - direct) / frames per round, median. Detections found (direct / service, all "
        f"rounds): {result['detections']['direct']} / {result['detections']['service']}.",
        "",
        "Reproduce: `python benchmarks/detect_throughput.py` "
        f"(`--frames {fr['count']} --rounds {result['rounds_count']} --threads {result['threads']['torch']}"
        f"{'' if result.get('device', 'cpu') == 'cpu' else ' --device ' + result['device']}`).",
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
        max_side = choice.imgsz if args.client_max_side < 0 else args.client_max_side
        with (
            ServerProcess(
                choice.server_model, args.threads, args.server_max_batch, args.server_delay_ms, args.device
            ) as server,
            PrelabelClient(f"127.0.0.1:{server.port}", timeout_s=600.0) as client,
        ):
            client.wait_until_serving(60.0)
            for b in batches:  # warm both sides at every batch size (lazy set-up, allocator growth)
                run_direct(direct_model, frames[:b], b, choice.imgsz, args.device)
                run_service(client, server, choice.server_model, frames[:b], b, choice.imgsz, max_side)
            for r in range(args.rounds):
                for b in batches:
                    row = measure_round(
                        direct_model,
                        client,
                        server,
                        choice.server_model,
                        frames,
                        b,
                        choice.imgsz,
                        r,
                        max_side,
                        args.device,
                    )
                    logger.info(
                        "round %d batch %d: direct %.3f fps, service %.3f fps (ratio %.3f); per CPU-s %.3f vs %.3f",
                        r,
                        b,
                        row["direct"]["fps"],
                        row["service"]["fps"],
                        row["service"]["fps"] / row["direct"]["fps"],
                        row["direct"]["frames_per_cpu_s"],
                        row["service"]["frames_per_cpu_s"],
                    )
                    rounds.append(row)
    machine["loadavg_end"] = list(os.getloadavg())
    summary = summarize(rounds, batches, len(frames))
    goal = summary.get(str(GOAL_BATCH), {})
    goal_ratio = goal.get("paired_ratio_median", float("nan"))
    goal_cpu_ratio = goal.get("cpu_paired_ratio_median", float("nan"))
    return {
        "benchmark": "detect_throughput",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine,
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device != "cpu" else None,
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
        "client": {
            "encoding": ".jpg",
            "jpeg_quality": JPEG_QUALITY,
            "max_side": max_side,
            "requests": "one Detect per batch, sequential",
        },
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
            "cpu_ratio": goal_cpu_ratio,
            "ratio_definition": "median over rounds of service / direct frames per wall second (paired in a round)",
            "cpu_ratio_definition": "median over rounds of service / direct frames per CPU-second (paired in a round)",
            "met": bool(goal_ratio >= GOAL_RATIO),
            "cpu_met": bool(goal_cpu_ratio >= GOAL_RATIO),
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
    parser.add_argument(
        "--client-max-side",
        type=int,
        default=-1,
        help="client shrinks frames to this longer side before sending (-1: the model input size; 0: full frames)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu, or cuda:N: both sides on that GPU in FP16 (results go to detect_throughput_cuda.{json,md})",
    )
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
    stem = "detect_throughput" if args.device == "cpu" else "detect_throughput_cuda"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    logger.info("wrote %s (%.0f s)", args.out / f"{stem}.{{json,md}}", result["wall_s"])
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
