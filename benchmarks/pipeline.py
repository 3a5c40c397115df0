"""End-to-end speed of a prelabel job against Ultralytics ``model.track()``, and peak memory against video length.

Same weights, same video (PETS09-S2L1 from ../shared/data), same input size and confidence threshold, in one run:

* ``prelabel (auto)``: the pipeline (decode thread, batched detection, online tracker, offline refinement) with the
  runtime chosen automatically for this device (on a CPU: OpenVINO on an ONNX export, in OpenVINO's default
  precision for the CPU: bf16 where it is native);
* ``prelabel (openvino f32)``: the same on OpenVINO forced to FP32 (exact parity with PyTorch);
* ``prelabel (torch)``: the same pipeline forced onto PyTorch, to separate the runtime's gain from the rest;
* ``ultralytics track()``: ``YOLO(weights).track(video, stream=True)`` (ByteTrack, its default tracker).

The systems run in interleaved rounds on the first ``--frames`` frames; frames/s are medians over rounds and the
ratio is prelabel's median over track()'s median. Model loading and the one-off export are timed separately.
Memory: the auto job runs in a fresh subprocess per video length (``--mem-frames`` and 10x that, looped PETS09
frames written to a temporary file) and reports its peak RSS (``ru_maxrss``).

Weights: ``models/yolo11n.pt`` when present, else YOLO11n built from its architecture config (seeded) and saved to a
temporary file; an untrained model gives few boxes, so tracking costs little either way and the model dominates.

    python benchmarks/pipeline.py [--frames 96] [--rounds 3] [--mem-frames 40]

Writes benchmarks/results/pipeline.json and pipeline.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PETS = REPO.parent / "shared" / "data" / "pets09-s2l1" / "video.avi"
RESULTS = REPO / "benchmarks" / "results"
IMGSZ = 640
CONF = 0.1

log = logging.getLogger("benchmarks.pipeline")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else the platform's machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def make_weights(folder: Path) -> Path:
    """Local yolo11n weights, or an architecture-built YOLO11n saved into ``folder``."""
    shipped = REPO / "models" / "yolo11n.pt"
    if shipped.is_file():
        return shipped
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    path = folder / "yolo11n-arch.pt"
    YOLO("yolo11n.yaml").save(str(path))
    return path


def make_manager(weights: Path, runtime: str, cache: Path, precision: str = "auto", device: str = "cpu") -> Any:
    from prelabel.detect.manager import ModelManager, runtime_factory
    from prelabel.registry import ModelRegistry, ModelSpec

    spec = ModelSpec(name="bench", task="detect", weights=weights, imgsz=IMGSZ)
    registry = ModelRegistry([spec], {"detect": "bench"})
    return ModelManager(registry, device, factory=runtime_factory(runtime, cache, precision=precision))


def run_job(manager: Any, video: Path, frames: int | None) -> tuple[float, int]:
    """(seconds, frames) of one detect+track job on ``video`` (model already loaded)."""
    from prelabel.detect.base import DetectOptions
    from prelabel.pipeline import Pipeline, PipelineConfig

    cfg = PipelineConfig(
        stages=("detect", "track"), detect_options=DetectOptions(conf=CONF, imgsz=IMGSZ), end_frame=frames
    )
    t0 = time.perf_counter()
    result = Pipeline(manager.get, cfg).run(video)
    return time.perf_counter() - t0, len(result.detections)


def run_track(model: Any, video: Path, frames: int, device: str = "cpu") -> tuple[float, int]:
    """(seconds, frames) of Ultralytics' ``track()`` over the first ``frames`` frames (FP16 on CUDA, as prelabel)."""
    n = 0
    t0 = time.perf_counter()
    opts = {"imgsz": IMGSZ, "conf": CONF, "verbose": False, "persist": False, "device": device}
    opts["quantize"] = 16 if device != "cpu" else None
    for _ in model.track(str(video), stream=True, **opts):
        n += 1
        if n >= frames:
            break
    return time.perf_counter() - t0, n


def speed(
    weights: Path, cache: Path, frames: int, rounds: int, video: Path = PETS, device: str = "cpu"
) -> dict[str, Any]:
    from ultralytics import YOLO

    loads: dict[str, float] = {}
    managers = {}
    runtimes = {}
    systems = (
        ("prelabel (auto)", "auto", "auto"),
        ("prelabel (openvino f32)", "openvino", "f32"),
        ("prelabel (torch)", "torch", "auto"),
    )
    if device != "cpu":  # PyTorch FP16 is the one runtime on CUDA
        systems = systems[:1]
    for name, runtime, precision in systems:
        t0 = time.perf_counter()
        managers[name] = make_manager(weights, runtime, cache, precision, device)
        det = managers[name].get("bench", "detect")
        det.warmup()
        run_job(managers[name], video, 16)  # compiles the job's input shape (OpenVINO), as track() warms up below
        loads[name] = time.perf_counter() - t0
        half = getattr(det.detector, "half", False)
        precision = getattr(det.detector, "precision", "fp16" if half else "f32")
        runtimes[name] = f"{getattr(det.detector, 'runtime', '?')} {precision}"
    t0 = time.perf_counter()
    yolo = YOLO(str(weights))
    run_track(yolo, video, 16, device)
    loads["ultralytics track()"] = time.perf_counter() - t0
    fps: dict[str, list[float]] = {k: [] for k in (*managers, "ultralytics track()")}
    order = [*managers, "ultralytics track()"]
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:  # alternate the order: load drifts on a shared machine
            if name in managers:
                dt, n = run_job(managers[name], video, frames)
            else:
                dt, n = run_track(yolo, video, frames, device)
            fps[name].append(n / dt)
        log.info("round %d: %s", r, {k: round(v[-1], 2) for k, v in fps.items()})
    for m in managers.values():
        m.close()
    ref = fps["ultralytics track()"]
    out: dict[str, Any] = {"systems": {}}
    for name, values in fps.items():
        out["systems"][name] = {
            "runtime": runtimes.get(name, "torch fp16" if device != "cpu" else "torch f32"),
            "fps_median": statistics.median(values),
            "fps_rounds": values,
            "ratio_vs_track_median": statistics.median(values) / statistics.median(ref),
            "ratio_vs_track_per_round": [a / b for a, b in zip(values, ref, strict=True)],
            "ratio_vs_track_median_of_rounds": statistics.median(a / b for a, b in zip(values, ref, strict=True)),
            "load_s": loads[name],
        }
    return out


def write_looped_video(src: Path, dst: Path, frames: int) -> None:
    """``frames`` frames of ``src`` (looped from its start) written as MJPG AVI."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    pool = []
    for _ in range(min(frames, 200)):
        ok, img = cap.read()
        if not ok:
            break
        pool.append(img)
    cap.release()
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(frames):
        writer.write(pool[i % len(pool)])
    writer.release()


def child_memory(args: argparse.Namespace) -> int:
    """Subprocess body: one job on ``args.child_video``; prints peak RSS and frames/s as JSON.

    ``peak_rss_mb`` is the process's peak (``ru_maxrss``, loading included); ``job_peak_rss_mb`` the highest RSS
    sampled every 20 ms while the job ran; ``rss_before_job_mb`` the RSS when it started.
    """
    import threading

    import psutil

    manager = make_manager(Path(args.weights), args.runtime, Path(args.cache), device=args.device)
    manager.get("bench", "detect").warmup()
    proc = psutil.Process()
    before = proc.memory_info().rss
    samples = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            samples.append(proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    dt, n = run_job(manager, Path(args.child_video), None)
    done.set()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    manager.close()
    mib = 1024 * 1024
    row = {
        "frames": n,
        "seconds": dt,
        "peak_rss_mb": peak / 1024,
        "job_peak_rss_mb": max(samples) / mib,
        "rss_before_job_mb": before / mib,
    }
    print(json.dumps(row))
    return 0


def memory(weights: Path, cache: Path, tmp: Path, short: int, src: Path = PETS, device: str = "cpu") -> dict[str, Any]:
    rows = []
    for n in (short, 10 * short):
        video = tmp / f"loop-{n}.avi"
        write_looped_video(src, video, n)
        cmd = [sys.executable, __file__, "--child-video", str(video), "--weights", str(weights), "--cache", str(cache)]
        cmd += ["--device", device]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        log.info("memory %d frames: %s", n, row)
        video.unlink()
    return {
        "runs": rows,
        "peak_ratio_10x": rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"],
        "job_peak_ratio_10x": rows[1]["job_peak_rss_mb"] / rows[0]["job_peak_rss_mb"],
        "limit_ratio": 1.2,
    }


def _device_words(res: dict[str, Any]) -> str:
    """Where both systems ran."""
    cpu = f"CPU: {res['cpu']} ({res['cpu_count']} cores visible, shared)"
    if res.get("device", "cpu") == "cpu":
        return cpu
    return f"{res['device']}: {res['gpu']} (FP16 on both sides); {cpu}"


def video_words(video: Path) -> str:
    """ "name (WxH)" of a video."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return "PETS09-S2L1 (768x576)" if video == PETS else f"{video.name} ({w}x{h})"


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "# Pipeline: prelabel job vs Ultralytics `model.track()`",
        "",
        f"Video: {res.get('video', 'PETS09-S2L1 (768x576)')}, first {res['frames']} frames, imgsz {IMGSZ}, "
        f"conf {CONF}, {res['rounds']} interleaved rounds, {_device_words(res)}. "
        f"Weights: {res['weights']}.",
        "",
        "| system | runtime | frames/s (median) | per round | x track() (ratio of medians) | x track() (median of "
        "per-round ratios) | load+warm-up s |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, s in res["speed"]["systems"].items():
        rounds = ", ".join(f"{v:.2f}" for v in s["fps_rounds"])
        lines.append(
            f"| {name} | {s['runtime']} | {s['fps_median']:.2f} | {rounds} | {s['ratio_vs_track_median']:.2f} | "
            f"{s['ratio_vs_track_median_of_rounds']:.2f} | {s['load_s']:.1f} |"
        )
    mem = res["memory"]
    auto = res["speed"]["systems"]["prelabel (auto)"]
    lines += [
        "",
        f"Goal: prelabel (auto) >= 1.5x track(); measured {auto['ratio_vs_track_median']:.2f}x (ratio of medians), "
        f"{auto['ratio_vs_track_median_of_rounds']:.2f}x (median of per-round ratios)."
        + (f" One-off ONNX export: {res['export_s']:.1f} s." if res.get("export_s") is not None else ""),
        "",
        "## Peak memory against video length (prelabel (auto), one subprocess per length)",
        "",
        "| frames | process peak RSS MiB | peak RSS during the job MiB | RSS before the job MiB | frames/s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in mem["runs"]:
        lines.append(
            f"| {row['frames']} | {row['peak_rss_mb']:.0f} | {row['job_peak_rss_mb']:.0f} | "
            f"{row['rss_before_job_mb']:.0f} | {row['frames'] / row['seconds']:.2f} |"
        )
    lines += [
        "",
        f"10x longer video: process peak ratio {mem['peak_ratio_10x']:.3f}, peak during the job ratio "
        f"{mem['job_peak_ratio_10x']:.3f} (limit {mem['limit_ratio']}).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=48, help="frames per speed run")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--mem-frames", type=int, default=40, help="short video length; the long one is 10x")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--video", type=Path, default=PETS, help="video to measure on (default: PETS09-S2L1)")
    p.add_argument(
        "--device", default="cpu", help="cpu, or cuda:N: both systems on that GPU in FP16 (writes pipeline_cuda.*)"
    )
    p.add_argument("--child-video", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    p.add_argument("--runtime", default="auto", help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("prelabel").setLevel(logging.WARNING)
    if args.child_video:
        return child_memory(args)
    if not args.video.is_file():
        print(f"video not found: {args.video}; nothing measured (PETS09 lives in ../shared/data)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="prelabel-bench-") as tmp_s:
        tmp = Path(tmp_s)
        weights = make_weights(tmp)
        cache = tmp / "runtime-cache"
        from prelabel.detect.runtime import export_onnx

        export_s = None
        if args.device == "cpu":
            t0 = time.perf_counter()
            export_onnx(weights, IMGSZ, cache)
            export_s = time.perf_counter() - t0
        res: dict[str, Any] = {
            "video": video_words(args.video),
            "device": args.device,
            "gpu": None if args.device == "cpu" else __import__("torch").cuda.get_device_name(0),
            "frames": args.frames,
            "rounds": args.rounds,
            "cpu": cpu_name(),
            "cpu_count": len(__import__("os").sched_getaffinity(0)),
            "weights": "models/yolo11n.pt" if weights.parent == REPO / "models" else "YOLO11n architecture, untrained",
            "export_s": export_s,
        }
        res["speed"] = speed(weights, cache, args.frames, args.rounds, args.video, args.device)
        res["memory"] = memory(weights, cache, tmp, args.mem_frames, args.video, args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "pipeline" if args.device == "cpu" else "pipeline_cuda"
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=1))
    (args.out / f"{stem}.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
