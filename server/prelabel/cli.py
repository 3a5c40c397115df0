"""The ``prelabel`` command.

Subcommands: ``serve`` (the gRPC server), ``detect`` (JSON detections for an image or a video), ``models``,
``demo`` (the main job on embedded defaults), plus the subcommands other modules register below.
The environment is read here only (``PRELABEL_TOKEN``), then passed down in :class:`Settings`.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prelabel import __version__
from prelabel.logs import setup_logging

if TYPE_CHECKING:
    from prelabel.formats.label_studio import TaskReading

FORMATS_HELP = "json, cvat, labelstudio, coco, mot, yolo"
RUNTIME_CHOICES = ("auto", "torch", "onnx", "openvino")
RUNTIME_HELP = "inference runtime; auto: PyTorch FP16 on CUDA, the fastest exported one on a CPU (default: auto)"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=50051, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--max-message-mb", type=int, default=64, help="largest message in MiB (default: %(default)s)")
    p.add_argument(
        "--max-concurrent", type=int, default=16,
        help="RPCs served at once, health and job control (get, cancel, list) not counted; more get "
        "RESOURCE_EXHAUSTED (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--token-file", type=Path, help="file holding the bearer token clients must send (or PRELABEL_TOKEN)"
    )
    p.add_argument("--tls-cert", type=Path, help="PEM certificate (with --tls-key: serve TLS only)")
    p.add_argument("--tls-key", type=Path, help="PEM private key")
    p.add_argument(
        "--allow-root", type=Path, action="append", default=[],
        help="folder whose videos and .pt weights clients may name by path (symlinks and .. resolved); repeatable",
    )  # fmt: skip
    p.add_argument(
        "--data-dir", type=Path, default=Path("prelabel-data"),
        help="uploads, jobs, results and exported models (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--models-dir", type=Path, help="folder with registry.yaml and weights")
    p.add_argument(
        "--preload", action="append", default=[],
        help="model to load and warm before SERVING; repeatable (the default detector is always warmed)",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    p.add_argument("--runtime", choices=RUNTIME_CHOICES, default="auto", help=RUNTIME_HELP)
    p.add_argument(
        "--precision",
        choices=("auto", "f32"),
        default="f32",
        help="exported runtimes on a CPU: f32 (matches PyTorch; default) or auto (bf16 where native, faster)",
    )
    p.add_argument(
        "--batch-size", type=int, default=8, help="most images of concurrent requests per forward pass (default: 8)"
    )
    p.add_argument("--batch-delay-ms", type=float, default=5.0, help="longest wait to fill a batch (default: 5)")
    p.add_argument(
        "--max-queued-jobs", type=int, default=32,
        help="jobs queued or running at once; more get RESOURCE_EXHAUSTED (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--job-workers", type=int, default=1, help="jobs run side by side (default: %(default)s)")
    p.add_argument(
        "--upload-ttl-h", type=float, default=0.0,
        help="delete uploads no call or job has used for this many hours, except those a queued or running job "
        "reads (default: 0, keep them)",
    )  # fmt: skip


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
        runtime=args.runtime,
        precision=args.precision,
        batch_max_size=args.batch_size,
        batch_max_delay_ms=args.batch_delay_ms,
        max_queued_jobs=args.max_queued_jobs,
        job_workers=args.job_workers,
        upload_ttl_h=args.upload_ttl_h,
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
        client = _client(args.server)
        model_name = args.model or "(server default)"

        def detect_fn(images: list[np.ndarray]) -> list[Any]:
            return client.detect(images, args.model, conf=args.conf, imgsz=args.imgsz, encoding=".png")
    else:
        from prelabel.detect.manager import ModelManager
        from prelabel.registry import ModelRegistry
        from prelabel.settings import default_models_dir

        registry = ModelRegistry.load((args.models_dir or default_models_dir()) / "registry.yaml")
        detector = ModelManager(registry, args.device, runtime=args.runtime).get(args.model, "detect")
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


def _tolerance(what: str, upper: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number above 0 (and at most ``upper``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: expected a number, got {text!r}") from None
        if not (0.0 < value < float("inf") and (upper is None or value <= upper)):  # NaN fails too
            bound = f"in (0, {upper:g}]" if upper is not None else "above 0"
            raise argparse.ArgumentTypeError(f"{what}: expected a number {bound}, got {text}")
        return value

    return parse


def _add_keyframe_args(p: argparse.ArgumentParser, what: str) -> None:
    """How CVAT and Label Studio files store ``what``: as few keyframes as the tolerances allow, or every frame."""
    p.add_argument(
        "--min-iou",
        type=_tolerance("IoU", upper=1.0),
        default=0.9,
        help=f"CVAT / Label Studio: the {what} are stored as the fewest keyframes from which the tool's linear "
        "interpolation rebuilds every box within this IoU (default: 0.9)",
    )
    p.add_argument(
        "--max-keypoint-error",
        type=_tolerance("keypoint error"),
        default=0.05,
        help="CVAT skeleton tracks: stored so that every keypoint is rebuilt within this fraction of the box's "
        "longer side (default: 0.05)",
    )
    p.add_argument(
        "--every-frame", action="store_true", help=f"store the {what} with a keyframe on every frame instead"
    )


# ``prelabel convert``: its names for the formats -> the registry's.
CONVERT_FORMATS = {
    "json": "json", "cvat": "cvat", "labelstudio": "label_studio", "coco": "coco", "mot": "mot", "mot-gt": "mot_gt",
    "yolo": "yolo",
}  # fmt: skip
CONVERT_TARGETS = {k: v for k, v in CONVERT_FORMATS.items() if k != "json"}


def _sniff_format(path: Path) -> str | None:
    """A labels file's format from its name and, for JSON, its top level (None when it cannot tell)."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".zip":
        return "yolo"
    if suffix == ".xml":
        return "cvat"
    if suffix == ".txt":
        return "mot-gt" if path.name == "gt.txt" or _mot_gt_columns(path) else "mot"
    if suffix != ".json":
        return None
    from prelabel.formats.result_json import is_result_json

    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if is_result_json(doc):
        return "json"
    if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
        return "coco"
    if isinstance(doc, list) or (isinstance(doc, dict) and "data" in doc):
        return "labelstudio"
    return None


def _mot_gt_columns(path: Path) -> bool:
    """Whether a MOT text file's rows look like MOT16+ ground truth (``frame, id, x, y, w, h, flag, class,
    visibility``: a 0/1 flag, a class id of MOT's, a visibility in [0, 1]) rather than tracker results
    (``..., conf, -1, -1, -1``)."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines()[:200] if ln.strip()]
        rows = [[float(v) for v in ln.replace(",", " ").split()] for ln in lines]
    except (OSError, ValueError):
        return False
    return bool(rows) and all(
        len(r) >= 9 and r[6] in (0.0, 1.0) and r[7] in _MOT_CLASS_IDS and 0.0 <= r[8] <= 1.0 for r in rows
    )


_MOT_CLASS_IDS = frozenset(float(c) for c in range(1, 14))  # MOT16+ ground truth's classes


def cmd_convert(args: argparse.Namespace) -> int:
    """Read labels in one format and write them in another; CVAT and Label Studio get keyframes by compression."""
    import numpy as np

    from prelabel.errors import PrelabelError
    from prelabel.formats import export, load
    from prelabel.formats.keyframes import AUTO
    from prelabel.video.decode import probe

    if not args.input.exists():
        print(f"error: {args.input}: no such file or folder", file=sys.stderr)
        return 2
    source = args.source or _sniff_format(args.input)
    if args.source is None and source == "mot-gt" and args.input.name != "gt.txt":
        print(f"note: {args.input.name} read as MOT ground truth (its flag, class and visibility columns; rows "
              "flagged 0 are left out); give --from mot for tracker results", file=sys.stderr)  # fmt: skip
    if source is None:
        print(f"error: {args.input}: cannot tell its format; give --from ({', '.join(sorted(CONVERT_FORMATS))})",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.out.resolve() == args.input.resolve():
        print(f"error: --out {args.out} is the input; write the result elsewhere", file=sys.stderr)
        return 2
    info = ts = None
    if args.video is not None:
        info, ts = probe(args.video)
    if (args.task or args.annotation) and CONVERT_FORMATS[source] != "label_studio":
        option = "--task picks tasks" if args.task else "--annotation picks annotations"
        print(f"error: {option} of a Label Studio export; {args.input.name} is read as {source}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        if CONVERT_FORMATS[source] == "label_studio":
            ann = _convert_label_studio_task(args, info, ts)
        else:
            ann = load(CONVERT_FORMATS[source], args.input, info)
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # a malformed file (PrelabelError passes through)
        if isinstance(exc, PrelabelError):
            raise
        why = "not a text file" if isinstance(exc, UnicodeDecodeError) else f"{type(exc).__name__}: {str(exc)[:200]}"
        print(f"error: {args.input}: cannot be read as {source} ({why})", file=sys.stderr)
        return 2
    if not ann.tracks:
        hint = "give --from if that is not its format"
        if source == "yolo":
            hint = (
                "prelabel reads a folder (or a zip) of frame_NNNNNN.txt files and its data.yaml, as its YOLO export "
                "writes"
            )
        print(f"error: {args.input}: no track read as {source} ({hint})", file=sys.stderr)
        return 2
    if ts is not None and len(ts) == ann.num_frames:
        ann.ts_ms = np.asarray(ts, np.float64)
    if args.video is not None:
        ann.name = args.video.name
    target = CONVERT_TARGETS[args.target]
    # What the target needs and the source may not say: the frame size (all but MOT), the video's length (a
    # track alive on the last labelled frame is drawn to the video's end by CVAT and Label Studio) and its rate
    # (Label Studio's timeline).
    missing = [
        what
        for what, needed, known in (
            ("frame size", target not in ("mot", "mot_gt"), ann.info.width > 0 and ann.info.height > 0),
            ("length", target in ("cvat", "label_studio"), ann.info.num_frames > 0),
            ("frame rate", target == "label_studio", ann.info.fps > 0),
        )
        if needed and not known
    ]
    if missing:
        print(f"error: {args.input} does not say the video's {' and '.join(missing)}: give --video", file=sys.stderr)
        return 2
    if CONVERT_FORMATS[source] == "cvat":
        from prelabel.formats.cvat import cvat_details_not_read

        lost = cvat_details_not_read(args.input)
        if lost:
            print(f"warning: {args.input.name}: the conversion keeps boxes, skeletons, labels and checkbox "
                  f"actions; it drops {', '.join(lost)}", file=sys.stderr)  # fmt: skip
    if ann.labelled is not None and target not in ("coco", "yolo"):  # formats with no list of frames labelled
        first, stop = ann.labelled_frames.start, ann.labelled_frames.stop
        print(f"warning: {args.input.name} labels frames {first} to {stop - 1} (0-based) only; in {args.target} "
              "the other frames hold no labels because nobody looked, not because nothing is there",
              file=sys.stderr)  # fmt: skip
    reducer = None if args.every_frame else AUTO
    path = export(ann, target, args.out, reducer, min_iou=args.min_iou, max_keypoint_error=args.max_keypoint_error)
    if target == "label_studio" and any(b.skeleton is not None for t in ann.tracks for b in t.boxes):
        print("note: Label Studio's video labels hold no skeletons; they are left out", file=sys.stderr)
    boxes = sum(len(t) for t in ann.tracks)
    report = {"written": str(path), "from": source, "to": args.target, "tracks": len(ann.tracks), "boxes": boxes}
    print(json.dumps(report, indent=1))
    return 0


def _convert_label_studio_task(args: argparse.Namespace, info: Any, ts: Any) -> Any:
    """The one task of a Label Studio export that ``prelabel convert`` reads (:func:`_label_studio_tasks`, then the
    tasks with an annotation or a prediction): an export of several needs ``--video`` or ``--task`` to say which."""
    from prelabel.errors import InvalidInputError
    from prelabel.formats.label_studio import (
        load_tasks,
        read_label_studio_task,
        task_annotations,
        task_at,
        task_source,
    )

    _, tasks = load_tasks(args.input)
    if not tasks:
        raise InvalidInputError(f"{args.input.name} holds no task")
    chosen = _label_studio_tasks(tasks, args, args.input, fill=False)
    for i in chosen:
        task_at(tasks, i, args.input)  # each an object
    named = tuple(args.annotation)
    _check_annotation_ids(named, [tasks[i] for i in chosen], args.input.name)
    if named and not args.task:  # the annotation named says which task, too
        chosen = [i for i in chosen if any(a.get("id") in named for a in task_annotations(tasks[i]))]
    readable = [i for i in chosen if task_source(tasks[i], named) is not None]
    ids = [tasks[i].get("id", f"#{i}") for i in readable]
    if not readable:
        which = "the task read holds no" if len(chosen) == 1 else f"none of the {len(chosen)} tasks read holds an"
        raise InvalidInputError(f"{args.input.name}: {which} annotation (other than cancelled ones) or prediction")
    if len(readable) > 1:
        hint = "--task ID" if args.video is not None else "--video (the tasks that refer to it) or --task ID"
        raise InvalidInputError(
            f"{args.input.name}: {len(readable)} tasks hold labels (ids {ids[:10]}) and one is converted: give "
            f"{hint}" + ("" if named else " (or --annotation ID)")
        )
    _annotation_read(tasks[readable[0]], readable[0], named)
    return read_label_studio_task(tasks[readable[0]], args.input.name, info, ts, readable[0], named)


def _result_warnings(path: Path) -> list[str]:
    """The ``warnings`` a result.json carries (none where it cannot be read)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    warnings = doc.get("warnings") if isinstance(doc, dict) else None
    return [str(w) for w in warnings] if isinstance(warnings, list) else []


def _client(server: str) -> Any:
    """A client of ``server`` for a command: the token from ``PRELABEL_TOKEN``, and for a TLS server the CA
    certificate (PEM) named by ``PRELABEL_TLS_CA`` (unset: plain gRPC)."""
    from prelabel.client import PrelabelClient

    ca = os.environ.get("PRELABEL_TLS_CA")
    return PrelabelClient(server, token=os.environ.get("PRELABEL_TOKEN") or None, tls_ca=Path(ca) if ca else None)


def _formats(text: str) -> list[str]:
    from prelabel.jobs.results import canonical_format

    return [canonical_format(f.strip()) for f in text.split(",") if f.strip()]


def _output_folders(videos: Sequence[Path]) -> list[str]:
    """A distinct folder name per video (videos given as distinct files): its stem where no other video has it, else
    led by its parent folder (``a/video.mp4``, ``b/video.mp4`` -> ``a-video``, ``b-video``), else with its suffix too
    (``v.mp4``, ``v.avi`` -> ``v-mp4``, ``v-avi``), numbered where even that repeats."""
    real = [Path(v).resolve() for v in videos]
    levels = [
        [r.stem for r in real],
        [f"{r.parent.name}-{r.stem}" for r in real],
        [f"{r.parent.name}-{r.stem}-{r.suffix.lstrip('.')}" for r in real],
    ]
    out: list[str] = []
    taken: set[str] = set()
    for i in range(len(real)):
        name = next((lv[i] for lv in levels if lv.count(lv[i]) == 1 and lv[i] not in taken), levels[-1][i])
        base, n = name, 1
        while name in taken:  # another video's name already (at another level, or numbered)
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        out.append(name)
    return out


def _folder_holds(folder: Path, sha256: str | None) -> str:
    """Whose results ``folder`` holds: ``"none"`` (no result.json), ``"this"`` (it records the content hash
    ``sha256``) or ``"other"`` (another hash, none: an older version's result, or ``sha256`` unknown). Only the file's
    head is read: the hash is its second field, and a long video's result.json runs to hundreds of MB."""
    path = folder / "result.json"
    if not path.is_file():
        return "none"
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return "other"  # not ours to overwrite
    m = re.search(r'"video_sha256":\s*"([0-9a-f]{64})"', head)
    return "this" if m is not None and sha256 is not None and m.group(1) == sha256 else "other"


def _result_folders(out: Path, videos: Sequence[Path]) -> dict[Path, tuple[str, str | None]]:
    """The folder under ``out`` each video's results go to, and the video's SHA-256 (None: unreadable).

    The folder is the one an earlier run wrote this video's results to (known by its content, whatever name it got
    then: run alone, ``day2/cam.mp4`` finds the ``day2-cam/`` of a batch run), else its name from
    :func:`_output_folders` where that holds no other video's results, else the next of its longer names (parent
    folder, suffix, a number) that is free. Another video's results are never overwritten: a result.json that
    records no hash (an earlier version's), or a video this machine cannot read, counts as another's."""
    from prelabel.files import file_sha256

    taken: set[str] = set()
    chosen: dict[Path, tuple[str, str | None]] = {}
    for video, preferred in zip(videos, _output_folders(videos), strict=True):
        r = video.resolve()
        names = [preferred, r.stem, f"{r.parent.name}-{r.stem}", f"{r.parent.name}-{r.stem}-{r.suffix.lstrip('.')}"]
        candidates = [c for c in dict.fromkeys(names) if c not in taken]
        try:
            sha: str | None = file_sha256(video)
        except OSError:  # unreadable here (the run reports it, or a server reads it): a folder without results
            sha = None
        holds = {c: _folder_holds(out / c, sha) for c in candidates}
        pick = next((c for c in candidates if holds[c] == "this"), None)
        if pick is None:
            pick = next((c for c in candidates if holds[c] == "none"), None)
            n = 2
            while pick is None:
                c = f"{preferred}-{n}"
                if c not in taken and _folder_holds(out / c, sha) != "other":
                    pick = c
                n += 1
            if holds.get(preferred) == "other":
                print(f"note: {out / preferred} holds other results (another video's, or an earlier version's "
                      f"without the video's hash); {video} goes to {out / pick}", file=sys.stderr)  # fmt: skip
        chosen[video] = (pick, sha)
        taken.add(pick)
    return chosen


def cmd_run(args: argparse.Namespace) -> int:
    """Pre-label videos in-process or through a server; write the requested formats per video. A video that fails
    is reported and the others go on; the exit status is 1 when any failed."""
    import grpc
    from tqdm import tqdm

    from prelabel.errors import PrelabelError

    formats = _formats(args.format)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if "track" not in stages and any(f != "json" for f in formats):
        print("warning: the export formats hold tracks, and --stages has no 'track': they will be empty "
              "(result.json holds the detections)", file=sys.stderr)  # fmt: skip
    options = {"imgsz": str(args.imgsz)} if args.imgsz else {}
    if args.conf is not None:
        options["conf"] = str(args.conf)
    videos: list[Path] = []
    for video in args.videos:  # a file named twice is labelled once
        if any(video.resolve() == v.resolve() for v in videos):
            print(f"warning: {video} is given more than once; labelled once", file=sys.stderr)
        else:
            videos.append(video)
    failed: list[str] = []
    try:  # options every video would fail on: said once, before any work
        from prelabel.jobs.runner import pipeline_config
        from prelabel.jobs.store import JobRequest

        pipeline_config(JobRequest(video={}, stages=tuple(stages), options=options))
    except PrelabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def report(video: Path, reason: str) -> None:
        print(f"error: {video}: {reason}", file=sys.stderr)
        failed.append(str(video))

    if args.server:
        from prelabel.v1 import prelabel_pb2 as pb

        folders = _result_folders(args.out, videos)
        cancel = threading.Event()
        watching: list[Any] = []  # the job stream being read: a first Ctrl-C ends it at once

        def stop_watching() -> None:
            for stream in watching:
                stream.cancel()

        with _interrupts(cancel, on_first=stop_watching), _client(args.server) as client:
            for video in videos:
                if cancel.is_set():
                    report(video, "not labelled: interrupted")
                    continue
                dest = args.out / folders[video][0]
                job = None
                try:
                    if args.server_paths:  # the server resolves a relative path against its own folder
                        job = client.submit_job(path=str(video.absolute()), stages=stages, detector_model=args.detector,
                                                pose_model=args.pose_model, action_model=args.action_model,
                                                options=options)  # fmt: skip
                    else:
                        upload_id = client.upload_video(video, sha256=folders[video][1])  # hashed above
                        if cancel.is_set():
                            report(video, "not labelled: interrupted")
                            continue
                        job = client.submit_job(upload_id=upload_id, stages=stages, detector_model=args.detector,
                                                pose_model=args.pose_model, action_model=args.action_model,
                                                options=options)  # fmt: skip
                    bar = tqdm(total=0, desc=video.name, unit="frame", disable=args.quiet)
                    final = job
                    stream = client.watch_job(job.job_id)
                    watching[:] = [stream]
                    if cancel.is_set():
                        stream.cancel()
                    for final in stream:
                        bar.total = final.frames_total
                        bar.n = final.frames_done
                        bar.set_postfix_str(final.stage)
                        bar.refresh()
                    watching.clear()
                    bar.close()
                    if final.state != pb.JOB_STATE_SUCCEEDED:
                        report(video, f"job {final.job_id} {pb.JobState.Name(final.state)}: {final.error}")
                        continue
                    dest.mkdir(parents=True, exist_ok=True)
                    keys = list(dict.fromkeys(["json", *formats]))
                    for fmt in keys:
                        client.download_result(job.job_id, fmt, dest)
                    _print_written(dest, keys)
                    # The server logged them; say them here (a server of an earlier version has them in the file only).
                    for warning in list(final.warnings) or _result_warnings(dest / "result.json"):
                        print(f"warning: {video}: {warning}", file=sys.stderr)
                except grpc.RpcError as exc:
                    watching.clear()
                    if cancel.is_set() and job is not None:  # the interrupted job is cancelled on the server too
                        try:
                            client.cancel_job(job.job_id)
                            report(video, f"interrupted; job {job.job_id} cancelled, its results were not written")
                        except grpc.RpcError as cancel_exc:
                            report(video, f"interrupted; job {job.job_id} may run on (cancelling it failed: "
                                          f"{cancel_exc.code().name}): prelabel jobs cancel {job.job_id}")  # type: ignore[attr-defined]  # fmt: skip
                    else:
                        where = (
                            f" (job {job.job_id} is the server's: prelabel jobs watch / download {job.job_id})"
                            if job is not None
                            else ""
                        )
                        report(video, f"{exc.code().name}: {exc.details()}{where}")  # type: ignore[attr-defined]
                except (PrelabelError, OSError) as exc:
                    report(video, str(exc))
        status = _run_status(failed, len(videos))
        return 130 if cancel.is_set() else status

    from prelabel.detect.manager import ModelManager
    from prelabel.jobs.results import result_warnings, write_results
    from prelabel.jobs.runner import pipeline_config
    from prelabel.jobs.store import JobRequest
    from prelabel.pipeline import CancelledError as PipelineCancelled
    from prelabel.pipeline import Pipeline, PipelineResult, Progress
    from prelabel.registry import ModelRegistry
    from prelabel.settings import default_models_dir

    models_dir = args.models_dir or default_models_dir()
    registry = ModelRegistry.load(models_dir / "registry.yaml")
    # Models every video would fail on: said once, before any work.
    for option, name, stage in (
        ("--detector", args.detector, "detect"),
        ("--pose-model", args.pose_model, "pose"),
        ("--action-model", args.action_model, "actions"),
    ):
        if not name or stage not in stages:
            continue
        try:
            if stage == "actions":
                from prelabel.actions.propose import load_segmenter

                load_segmenter(name, models_dir=models_dir)
            else:
                registry.get(name)
        except PrelabelError as exc:
            print(f"error: {option}: {exc}", file=sys.stderr)
            return 2
    folders = _result_folders(args.out, videos)
    cancel = threading.Event()
    with _interrupts(cancel):
        manager = ModelManager(registry, args.device, runtime=args.runtime)
        try:
            for video in videos:
                if cancel.is_set():
                    report(video, "not labelled: interrupted")
                    continue
                request = JobRequest(
                    video={"path": str(video)},
                    stages=tuple(stages),
                    detector_model=args.detector,
                    pose_model=args.pose_model,
                    action_model=args.action_model,
                    options=options,
                )
                try:
                    pipeline = Pipeline(manager.get, pipeline_config(request), models_dir)
                    bar = tqdm(total=0, desc=video.name, unit="frame", disable=args.quiet)
                    result = None
                    for event in pipeline.events(video, cancel):
                        if isinstance(event, Progress):
                            bar.total, bar.n = event.total, event.done
                            bar.refresh()
                        elif isinstance(event, PipelineResult):
                            result = event
                    bar.close()
                    assert result is not None
                    dest = args.out / folders[video][0]
                    written = write_results(result, video.name, dest, formats, video_sha256=folders[video][1])
                    for warning in result_warnings(result):
                        print(f"warning: {video}: {warning}", file=sys.stderr)
                except PipelineCancelled:
                    report(video, "interrupted; its results were not written")
                    continue
                except (PrelabelError, OSError) as exc:
                    report(video, str(exc))
                    continue
                _print_written(dest, written)
        finally:
            manager.close()
    status = _run_status(failed, len(videos))
    return 130 if cancel.is_set() else status


@contextlib.contextmanager
def _interrupts(cancel: threading.Event, on_first: Callable[[], None] | None = None) -> Iterator[None]:
    """Ctrl-C while labelling: the first sets ``cancel`` (the run stops after its current frames and says which video
    was cut off) and calls ``on_first`` (through a server: ends the job stream being read), a second quits at once.

    No KeyboardInterrupt is raised: one raised wherever the main thread happened to be left the models' worker
    threads waiting on work that never came, and the process stuck. A watcher thread reads the signals off the
    interpreter's wakeup pipe, so it acts at once even while the main thread waits on a model (the signal may land
    on any thread)."""
    if os.name != "posix" or threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def watch() -> None:
        count = 0
        while data := os.read(read_fd, 64):
            for signum in data:
                if signum != signal.SIGINT:
                    continue
                count += 1
                if count > 1:
                    os._exit(130)
                print("\ninterrupted: stopping after the current frames (Ctrl-C again: at once)", file=sys.stderr)
                cancel.set()
                if on_first is not None:
                    on_first()

    previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: None)  # the watcher acts
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name="prelabel-interrupts", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        # None: a handler installed outside Python; Python's own is the nearest to put back.
        signal.signal(signal.SIGINT, signal.default_int_handler if previous_handler is None else previous_handler)
        os.close(write_fd)  # the watcher reads the end of the pipe and returns
        watcher.join(timeout=1.0)
        os.close(read_fd)


def _print_written(dest: Path, written: Sequence[str]) -> None:
    """The files of this run's formats (``written``: download names), and a note on result files in ``dest`` from an
    earlier run that this one did not rewrite (they may not match the new result)."""
    from prelabel.jobs.results import RESULT_FORMATS

    for key in written:
        print(dest / RESULT_FORMATS[key][1])
    stale = [name for key, (_, name, _) in RESULT_FORMATS.items() if key not in written and (dest / name).exists()]
    if stale:
        print(f"note: {dest} also holds {', '.join(stale)} from an earlier run, not rewritten now", file=sys.stderr)


def _run_status(failed: list[str], total: int) -> int:
    if failed:
        print(f"error: {len(failed)} of {total} videos failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """Inspect and control a server's jobs."""
    from google.protobuf.json_format import MessageToDict

    with _client(args.server) as client:
        if args.action == "list":
            jobs = client.list_jobs()
            for job in jobs:
                print(json.dumps(MessageToDict(job)))
        elif args.action in ("get", "cancel", "watch"):
            if not args.job_id:
                print("error: a job id is needed", file=sys.stderr)
                return 2
            if args.action == "watch":
                from prelabel.v1 import prelabel_pb2 as pb

                last = None
                for last in client.watch_job(args.job_id):
                    print(json.dumps(MessageToDict(last)), flush=True)
                if last is not None and last.state in (pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
                    # ``watch && download`` must not go on to a job that left no result
                    print(f"error: job {last.job_id} {pb.JobState.Name(last.state)}: {last.error}", file=sys.stderr)
                    return 1
            else:
                job = client.get_job(args.job_id) if args.action == "get" else client.cancel_job(args.job_id)
                print(json.dumps(MessageToDict(job), indent=1))
        elif args.action == "download":
            if not args.job_id:
                print("error: a job id is needed", file=sys.stderr)
                return 2
            args.out.mkdir(parents=True, exist_ok=True)
            for fmt in _formats(args.format):
                print(client.download_result(args.job_id, fmt, args.out))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Draw a result over its video (MP4 or GIF)."""
    from prelabel.render import render_overlay

    print(render_overlay(args.video, args.result, args.out, max_frames=args.max_frames, every=args.every,
                         max_side=args.max_side))  # fmt: skip
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Fill an annotation tool's keyframes (CVAT XML or Label Studio JSON) with prelabel's interpolation and write
    the result back in the same format, so the annotator opens it in their tool. With ``--previous`` (CVAT), the
    keyframes an earlier run added and the export still holds unchanged are filled again."""
    if args.previous is None:
        return _interpolate(args)
    import tempfile

    from prelabel.formats.cvat import strip_added_keyframes

    given = args.format or ("labelstudio" if args.input.suffix.lower() == ".json" else "cvat")
    problem = (
        "--previous reads a CVAT file prelabel interpolate wrote; Label Studio keeps prelabel's fill apart as a "
        "prediction already" if given != "cvat"
        else f"{args.input}: not a file (expected a CVAT XML export)" if not args.input.is_file()
        else f"--previous {args.previous}: not a file" if not args.previous.is_file()
        else f"--out {args.out} is the annotator's file; write the filled file elsewhere"
        if args.out.resolve() == args.input.resolve() else None
    )  # fmt: skip
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    original = args.input
    with tempfile.TemporaryDirectory(prefix="prelabel-") as tmp:
        # The export without prelabel's unchanged keyframes, under its own name (messages name the file as given).
        args.input = Path(tmp) / original.name
        stripped = args.stripped = strip_added_keyframes(original, args.previous, args.input)
        print(f"note: --previous {args.previous.name}: {stripped.removed} keyframe(s) prelabel added there and left "
              f"unchanged are filled again; {stripped.edited} changed since are kept as the annotator's"
              + (f"; {stripped.held} unchanged kept all the same (their frames pair with a skeleton keyframe of "
                 "yours, start or end a part of a track, or would not be filled again)" if stripped.held else "")
              + (f"; {stripped.unmatched} track(s) match none of its tracks (all their keyframes kept)"
                 if stripped.unmatched else "")
              + (f"; {stripped.sliced} keyframe(s) CVAT made where its jobs start and end, holding the earlier fill, "
                 "are filled again too" if stripped.sliced else "")
              + (f"; {stripped.joined} part(s) of tracks CVAT exported one per job are joined again"
                 if stripped.joined else ""), file=sys.stderr)  # fmt: skip
        if stripped.removed + stripped.held == 0 and stripped.edited > 0:
            print(f"warning: none of the keyframes prelabel added in {args.previous.name} is unchanged in "
                  f"{original.name}: is it the file this export was made from?", file=sys.stderr)  # fmt: skip
        try:
            return _interpolate(args, shown=original)
        finally:
            args.input = original


def _interpolate(args: argparse.Namespace, shown: Path | None = None) -> int:
    """:func:`cmd_interpolate` on ``args.input``; messages name it ``shown`` (the annotator's file) where given."""
    shown = shown or args.input
    from prelabel.formats import load
    from prelabel.formats.cvat import cvat_task_frames, cvat_unkeyed_points, patch_cvat
    from prelabel.formats.keyframes import AUTO
    from prelabel.formats.label_studio import (
        load_tasks,
        patch_label_studio,
        read_label_studio_task,
        task_at,
        task_name,
    )
    from prelabel.interpolate import VideoFileFrames
    from prelabel.interpolate.base import InterpolationMethod
    from prelabel.video.decode import probe

    if not args.input.is_file():
        print(f"error: {shown}: not a file (expected a CVAT XML or Label Studio JSON export)", file=sys.stderr)
        return 2
    if args.out.resolve() == args.input.resolve():
        print(f"error: --out {args.out} is the annotator's file; write the filled file elsewhere", file=sys.stderr)
        return 2
    # The format: as given, else from the file's extension (Label Studio exports JSON, CVAT XML).
    given = args.format or ("labelstudio" if args.input.suffix.lower() == ".json" else "cvat")
    fmt = {"cvat": "cvat", "labelstudio": "label_studio", "label_studio": "label_studio"}[given]
    info = ts = None
    frames = None
    if args.video is not None:
        info, ts = probe(args.video)
        frames = VideoFileFrames(args.video)
    skipped: list[dict[str, object]] = []
    sources: dict[int, str | None] = {}
    grid = None  # the video frames a CVAT task holds: suggestions go on them
    if (args.task or args.annotation) and fmt != "label_studio":
        option = "--task picks tasks" if args.task else "--annotation picks annotations"
        print(f"error: {option} of a Label Studio export; a CVAT file is one task", file=sys.stderr)
        return 2
    if fmt == "cvat":
        anns = {0: load(fmt, args.input, info)}
        grid = cvat_task_frames(args.input)
    else:
        # A Label Studio export holds every task of a project: each task with an annotation (or a prediction) is
        # filled; with a video, only the tasks that refer to it.
        _, tasks = load_tasks(args.input)
        if not tasks:
            print(f"error: {shown} holds no task", file=sys.stderr)
            return 2
        wanted = _label_studio_tasks(tasks, args, args.input, fill=True)
        for i in wanted:
            task_at(tasks, i, args.input)  # each an object
        chosen = tuple(args.annotation)
        _check_annotation_ids(chosen, [tasks[i] for i in wanted], args.input.name)
        readings = {i: _annotation_read(tasks[i], i, chosen) for i in wanted}
        sources = {i: readings[i].source for i in wanted}
        skipped = [{"task": i, "reason": "no annotation (other than cancelled ones) and no prediction"}
                   for i in wanted if sources[i] is None]  # fmt: skip
        anns = {i: read_label_studio_task(tasks[i], args.input.name, info, ts, i, chosen)
                for i in wanted if sources[i]}  # fmt: skip
        skipped += [{"task": i, "reason": f"its {sources[i]} holds no track with a visible keyframe"}
                    for i, ann in anns.items() if not _fillable(ann)]  # fmt: skip
        anns = {i: ann for i, ann in anns.items() if _fillable(ann)}
    if not any(_fillable(ann) for ann in anns.values()):
        if fmt == "label_studio":  # name the tasks read and why each had nothing (others were not read)
            names: dict[object, str] = {i: task_name(tasks[i], i) for i in wanted}
            why = "; ".join(f"{names[r['task']]}: {r['reason']}" for r in skipped[:5])
            left = len(tasks) - len(wanted)
            print(f"error: {shown}: no keyframed track in the {len(wanted)} task(s) read ({why})"
                  + (f"; {left} other task(s) were not read ({_task_choice(args)})" if left else ""),
                  file=sys.stderr)  # fmt: skip
        else:
            print(f"error: {shown} holds no keyframed tracks", file=sys.stderr)
        return 2
    detections = None
    if args.detector:
        if frames is None:
            print("error: --detector needs --video", file=sys.stderr)
            return 2
        ranges = [(min(k.frame_idx for k in kt.keyframes), max(k.frame_idx for k in kt.keyframes))
                  for ann in anns.values() for kt in ann.keyframe_tracks if kt.keyframes]  # fmt: skip
        detections = _interpolate_detections(args, frames, ranges)
    # One method object per label serves all its tracks: the work a method does on the video (backgrounds,
    # propagation passes) is shared, never an answer (its caches are keyed by what they were computed from).
    methods: dict[str, InterpolationMethod] = {}
    reducer = None if args.every_frame else AUTO  # how the filled frames are stored: every one, or compressed
    summary: list[dict[str, object]] = []
    filled = {}
    for index, ann in anns.items():
        out_ann, anchors, rows = _fill_keyframe_tracks(
            ann, args, frames, detections, ts, methods, label_studio=fmt == "label_studio", grid=grid,
            unkeyed=cvat_unkeyed_points(args.input) if fmt == "cvat" else None,
        )  # fmt: skip
        for row in rows:
            if fmt == "label_studio":
                task_id = tasks[index].get("id")
                read = readings[index].read_id
                row = {"task": index, **({"task_id": task_id} if task_id is not None else {}),
                       "read_from": sources[index], **({f"{sources[index]}_id": read} if read is not None else {}),
                       **row}  # fmt: skip
            summary.append(row)
        filled[index] = out_ann
        if fmt == "cvat":  # the annotator's file with its tracks filled in: attributes, tags and shapes stay
            path = patch_cvat(
                args.input, args.out, out_ann.tracks, reducer, anchors, args.max_keypoint_error, args.min_iou
            )
    if fmt == "label_studio":  # the annotator's tasks with a prediction added: their annotations stay
        path = patch_label_studio(args.input, args.out, filled, reducer, min_iou=args.min_iou, annotation_ids=chosen)
    report: dict[str, object] = {"written": str(path), "method": args.method, "tracks": summary}
    if getattr(args, "stripped", None) is not None:
        from dataclasses import asdict

        report["previous"] = {"file": str(args.previous), **asdict(args.stripped)}
    if skipped:
        report["skipped_tasks"] = skipped
    print(json.dumps(report, indent=1))
    return 0


def _box_shown(box_keyframes: Sequence[Any], frame: int) -> bool:
    """Whether the box track shows the object at ``frame``: its keyframe at or before it is not outside."""
    before = [k for k in box_keyframes if k.frame_idx <= frame]
    return bool(before) and not before[-1].outside


def _task_choice(args: argparse.Namespace) -> str:
    """How the Label Studio tasks read were chosen, for messages."""
    if args.task:
        return f"--task {' '.join(str(t) for t in args.task)}"
    return f"only the tasks that refer to {args.video.name} are read" if args.video is not None else "all tasks"


def _annotation_read(task: dict[str, Any], index: int, chosen: Sequence[Any]) -> TaskReading:
    """What a Label Studio task (at ``index`` in its file) is read from
    (:func:`~prelabel.formats.label_studio.task_reading`), with a warning where several annotators labelled it and
    ``--annotation`` did not say which (the first is read)."""
    from prelabel.formats.label_studio import task_name, task_reading

    reading = task_reading(task, chosen, index)
    if reading.source == "annotation" and reading.others and not reading.named:
        hint = " (--annotation ID reads another)" if reading.others_have_ids else ""
        print(f"warning: {task_name(task, index)}: {len(reading.others) + 1} annotators labelled it; {reading.read} "
              f"is read, not {', '.join(reading.others)}{hint}", file=sys.stderr)  # fmt: skip
    return reading


def _check_annotation_ids(chosen: Sequence[Any], tasks: Sequence[Any], name: str) -> None:
    """Every ``--annotation`` id names an annotation of one of the tasks read.

    Raises:
        InvalidInputError: naming the ids no task read holds, and the annotation ids those tasks do hold.
    """
    from prelabel.errors import InvalidInputError
    from prelabel.formats.label_studio import missing_annotation_ids

    missing, held = missing_annotation_ids(chosen, tasks)
    if missing:
        raise InvalidInputError(
            f"{name}: no task read holds an annotation with id {missing} (their annotations: {held[:10]})"
        )


def _fillable(ann: Any) -> bool:
    """Whether an annotation holds a track with a visible keyframe."""
    return any(not k.outside for kt in ann.keyframe_tracks for k in kt.keyframes)


def _label_studio_tasks(tasks: list[Any], args: argparse.Namespace, path: Path, fill: bool) -> list[int]:
    """Which tasks of a Label Studio export to read (indices): those ``--task`` names by id; else, with a video, the
    tasks that refer to it by file name (to ``convert``, which takes only the frame size and timestamps from the
    video, ``fill`` False, a file of one task is that task); else all. With ``fill`` (``interpolate``, which follows
    the video's frames) a task named by ``--task`` that refers to another file gets a warning.

    Raises:
        InvalidInputError: a ``--task`` id the file does not have, no task refers to the video (with ``fill``, a file
            of one task included: its id is the ``--task`` that reads it anyway), or the tasks that name its file
            name refer to different files (two cameras' ``clip.mp4``): ``--task`` says which.
    """
    from prelabel.errors import InvalidInputError

    ids = [t.get("id") if isinstance(t, dict) else None for t in tasks]
    datas = [t.get("data") if isinstance(t, dict) else None for t in tasks]
    refs = [str(d.get(args.data_key, "") or "") if isinstance(d, dict) else "" for d in datas]
    if args.task:
        missing = [i for i in args.task if i not in ids]
        if missing:
            known = [i for i in ids if i is not None]
            raise InvalidInputError(f"{path.name}: no task with id {missing} (ids: {known[:10]})")
        chosen = [i for i, tid in enumerate(ids) if tid in args.task]
        if args.video is not None and fill:
            # The user named the task: it is filled from this video, but a task made for another file says so.
            for i in chosen:
                if refs[i] and not _same_video(refs[i], args.video):
                    print(f"warning: task {ids[i]} refers to {refs[i]!r}, not {args.video.name}: its keyframes are "
                          f"filled from the frames of {args.video.name} as --task asks", file=sys.stderr)  # fmt: skip
        return chosen
    if args.video is None:
        return list(range(len(tasks)))
    if len(tasks) == 1:
        if refs[0] and not _same_video(refs[0], args.video):
            if not fill or ids[0] is None:  # convert; or nothing for --task to name (a file this program wrote)
                done = "filled from the frames" if fill else "taken at the frame size and timestamps"
                print(f"warning: the task of {path.name} refers to {refs[0]!r}, not {args.video.name}: its "
                      f"{'keyframes are' if fill else 'boxes are'} {done} of {args.video.name}",
                      file=sys.stderr)  # fmt: skip
                return [0]
            raise InvalidInputError(
                f"{path.name}: its task {ids[0]} refers to {refs[0]!r} (data.{args.data_key}), not "
                f"{args.video.name}; give --task {ids[0]} to fill it from {args.video.name} anyway (the same video "
                "under another name)"
            )
        return [0]
    wanted = [i for i, ref in enumerate(refs) if _same_video(ref, args.video)]
    if not wanted:
        raise InvalidInputError(
            f"no task of {path.name} refers to {args.video.name} (data.{args.data_key}: {sorted(set(refs))[:5]}); "
            "give --task ID"
        )
    distinct = sorted({refs[i] for i in wanted})
    if len(distinct) > 1:
        named = ", ".join(f"task {ids[i] if ids[i] is not None else f'#{i}'}: {refs[i]}" for i in wanted[:6])
        raise InvalidInputError(
            f"{path.name}: tasks refer to {len(distinct)} different files named {args.video.name} ({named}); "
            "give --task ID for the one that is this video"
        )
    return wanted


def _same_video(ref: str, video: Path) -> bool:
    """Whether a task's video reference names ``video`` by its file name: a URL or path (percent-encoded or not),
    Label Studio's local-files link (``/data/local-files/?d=dir/clip.mp4``) or its upload, stored as
    ``<8 hex digits>-clip.mp4``."""
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(ref)
    local = parse_qs(parts.query).get("d")
    path = local[0] if local else unquote(parts.path)
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name == video.name or re.fullmatch(r"[0-9a-f]{8}-" + re.escape(video.name), name) is not None


def _interpolate_detections(args: argparse.Namespace, frames: Any, ranges: list[tuple[int, int]]) -> Any:
    """The ``--detector`` models' output on the frames the tracks span."""
    from prelabel.detect.manager import ModelManager
    from prelabel.interpolate.support import detect_frames, span_frames
    from prelabel.registry import ModelRegistry
    from prelabel.settings import default_models_dir

    registry = ModelRegistry.load((args.models_dir or default_models_dir()) / "registry.yaml")
    manager = ModelManager(registry, args.device)
    try:
        detectors = [manager.get(spec.name, spec.task) for spec in (registry.get(n) for n in args.detector)]
        return detect_frames(detectors, frames, span_frames(ranges))
    finally:
        manager.close()


def _fill_keyframe_tracks(
    ann: Any,
    args: argparse.Namespace,
    frames: Any,
    detections: Any,
    ts: Any,
    methods: dict[str, Any],
    label_studio: bool = False,
    grid: tuple[int, int, int] | None = None,
    unkeyed: dict[int, dict[int, Any]] | None = None,
) -> tuple[Any, dict[int, list[int]], list[dict[str, object]]]:
    """Interpolate every keyframed track of one task: the filled annotations, the keyframes each track was
    interpolated from, and a summary row each. The rows speak the annotator's tool: with ``label_studio``, frames
    from 1 and the keyframes the annotator placed (the reader's "hidden from the next frame" markers are not
    theirs); CVAT's frames from 0, suggestions on the task's frames (``grid``: start, step, stop). ``unkeyed``:
    CVAT's skeleton points written on a keyframe without being keyed there (:func:`cvat_unkeyed_points`), which
    take the fill's positions (:func:`~prelabel.interpolate.api.with_unkeyed_points_filled`)."""
    from dataclasses import replace
    from functools import partial

    from prelabel.errors import InvalidInputError
    from prelabel.formats import Annotations
    from prelabel.interpolate import interpolate_track
    from prelabel.interpolate.api import with_unkeyed_points_filled
    from prelabel.interpolate.registry import default_registry
    from prelabel.interpolate.validate import KeyframeError

    tracks = []
    summary: list[dict[str, object]] = []
    anchors: dict[int, list[int]] = {}
    others = None
    if detections is not None and len(ann.keyframe_tracks) > 1:
        from prelabel.interpolate.others import OtherTracks

        # Each track leaves to its neighbours of its label the detections they sit on (as the tool draws them).
        others = OtherTracks(
            {kt.track_id: _box_keyframes(kt.keyframes) for kt in ann.keyframe_tracks},
            {kt.track_id: kt.label for kt in ann.keyframe_tracks},
        )
    for kt in ann.keyframe_tracks:
        if all(k.outside for k in kt.keyframes):
            where = kt.source or f"track {kt.track_id}"
            print(f"warning: {where} ({kt.label!r}) has no visible keyframe: nothing to fill", file=sys.stderr)
            continue
        # CVAT keeps skeletons in tracks of their own, keyed at other frames than the boxes: interpolate the box
        # keyframes (with the skeletons they carry); skeleton-only keyframes are left to the skeleton track. An
        # object annotated with skeletons only is filled from its skeleton keyframes.
        keyframes = _box_keyframes(kt.keyframes)
        skeleton_only = not any(k.xyxy is not None for k in keyframes)
        if not skeleton_only:
            # (a skeleton hidden where the box is not shown either is no keyframe to pair with a box)
            apart = [k.frame_idx for k in kt.keyframes if not k.outside and k.xyxy is None and k.skeleton is not None
                     and (k.skeleton.present.any() or _box_shown(keyframes, k.frame_idx))]  # fmt: skip
            if apart:  # the skeleton track is filled only between two box keyframes (formats.cvat's anchors)
                where = kt.source or f"track {kt.track_id}"
                print(f"warning: {where} ({kt.label!r}): {len(apart)} skeleton keyframe(s) on frames without a box "
                      f"keyframe (first: {apart[0]}): the skeleton next to them is not filled (CVAT interpolates it "
                      "there as before); key the box on the same frames", file=sys.stderr)  # fmt: skip
        if kt.label not in methods:
            methods[kt.label] = default_registry().create(args.method or "auto")
        # One label's method keeps decoded frames at a time (256 grey frames: about 115 MB at 768x576 each).
        for label, other in methods.items():
            if label != kt.label and hasattr(other, "release_frames"):
                other.release_frames()
        where = f"{args.input.name}: {kt.source or f'track {kt.track_id}'}"  # the object as the file names it
        if label_studio:
            _check_label_studio_boxes(keyframes, ann.info, where)
        try:
            dets = detections if others is None else others.detections_for(kt.track_id, detections)[0]
            fill = partial(interpolate_track, method=args.method, video=frames, track_id=kt.track_id,
                           detections=dets, label=kt.label, method_object=methods[kt.label])  # fmt: skip
            marks = (unkeyed or {}).get(kt.track_id)
            if marks:
                keyframes = with_unkeyed_points_filled(keyframes, marks, fill)
            res = fill(keyframes, num_suggestions=args.suggestions)
        except KeyframeError as exc:  # name the track and frame as the annotator's file does
            raise InvalidInputError(f"{where}, frame {exc.frame + (1 if label_studio else 0)}: {exc.reason}") from exc
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from exc
        track = res.to_track(skeleton_boxes=skeleton_only)
        anchors[kt.track_id] = [k.frame_idx for k in keyframes]
        tracks.append(replace(track, class_name=kt.label))
        summary.append({
            "track_id": kt.track_id,
            **kt.tool_ids,  # the file's own ids of the object: track_id is prelabel's
            "label": kt.label,
            "keyframes": sum(not k.outside for k in keyframes) if label_studio else len(keyframes),
            "frames": len(track),
            "mean_confidence": round(float(res.confidence[~res.outside].mean()), 3) if (~res.outside).any() else 0.0,
            "suggested_keyframes": _suggested_frames(res, keyframes, grid, 1 if label_studio else 0),
        })  # fmt: skip
    labels = tuple(dict.fromkeys([*ann.labels, *(t.class_name for t in tracks)]))
    out_ann = Annotations(
        info=ann.info,
        tracks=tracks,
        segments=ann.segments,
        ts_ms=ts if ts is not None else ann.ts_ms,
        labels=labels,
        action_labels=ann.action_labels,
        name=ann.name,
    )
    for t in out_ann.tracks:
        t.class_id = labels.index(t.class_name)
    return out_ann, anchors, summary


def _box_keyframes(keyframes: Sequence[Any]) -> list[Any]:
    """The keyframes a track is filled from: those with a box (and the outside ones), or all of an object annotated
    with skeletons only."""
    boxed = [k for k in keyframes if k.outside or k.xyxy is not None]
    return boxed if any(k.xyxy is not None for k in boxed) else list(keyframes)


def _check_label_studio_boxes(keyframes: Sequence[Any], info: Any, where: str) -> None:
    """The interpolation's check of keyframe boxes far outside the frame (coordinates for another frame size), said
    in Label Studio's terms: its frame numbers (from 1), percent of the frame, disabled boxes.

    Raises:
        InvalidInputError: the first visible keyframe box outside the frame by more than its own width or height.
    """
    import numpy as np

    from prelabel.errors import InvalidInputError
    from prelabel.interpolate.validate import boxes_far_outside

    shown = [k for k in keyframes if not k.outside and k.xyxy is not None]
    far = np.flatnonzero(boxes_far_outside(np.array([k.xyxy for k in shown]).reshape(-1, 4), info.width, info.height))
    if far.size:
        k = shown[int(far[0])]
        x0, y0, x1, y1 = (float(v) for v in k.xyxy)
        sx, sy = 100.0 / info.width, 100.0 / info.height
        raise InvalidInputError(
            f"{where}, frame {k.frame_idx + 1}: box x={x0 * sx:.4g}, y={y0 * sy:.4g}, width={(x1 - x0) * sx:.4g}, "
            f"height={(y1 - y0) * sy:.4g} lies outside the frame by more than its own size (Label Studio boxes are "
            "in percent of the frame, 0-100; where the object has left, the box before is disabled)"
        )


def _suggested_frames(res: Any, keyframes: Sequence[Any], grid: tuple[int, int, int] | None, base: int) -> list[int]:
    """The suggested next keyframes, counted from ``base``; with a CVAT task's ``grid`` (start, step, stop), each moved
    to the nearest frame of the task in the same gap between keyframes where the object shows and no keyframe is yet
    (a task of every other frame cannot take the rest), or dropped where the gap has none."""
    import numpy as np

    frames = [s.frame_idx for s in res.suggestions]
    if grid is not None:
        start, step, stop = grid
        first = min(k.frame_idx for k in keyframes)
        keyed = sorted({k.frame_idx for k in keyframes})
        outside = np.asarray(res.outside, bool)
        taken = set(keyed)
        snapped: list[int] = []
        for f in frames:
            i = bisect.bisect_left(keyed, f)
            if not 0 < i < len(keyed):
                continue
            lo, hi = keyed[i - 1], keyed[i]
            if stop >= 0:
                hi = min(hi, stop + 1)
            g0 = start + -(-(lo + 1 - start) // step) * step  # the gap's first frame of the task
            options = [g for g in range(max(g0, start), hi, step) if g not in taken and not outside[g - first]]
            if options:
                best = min(options, key=lambda g: (abs(g - f), g))
                snapped.append(best)
                taken.add(best)
        frames = snapped
    return [f + base for f in frames]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``prelabel`` command."""
    parser = argparse.ArgumentParser(prog="prelabel", description="Model-assisted video labeling.")
    parser.add_argument("--version", action="version", version=f"prelabel {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="least severe log messages shown (default: INFO)",
    )  # fmt: skip
    parser.add_argument(
        "--log-format", choices=("text", "json"), default="text",
        help="json: one object per line (the server's access log: method, peer, status, latency); before the command",
    )  # fmt: skip
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
    p.add_argument("--conf", type=float, default=0.25, help="least detection score reported (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=0, help="input size in pixels (default: the model's)")
    p.add_argument("--every", type=int, default=1, help="video: detect on every N-th frame")
    p.add_argument("--max-frames", type=int, default=0, help="video: stop after this many frames (0: all)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    p.add_argument("--runtime", choices=RUNTIME_CHOICES, default="auto", help=RUNTIME_HELP)
    p.add_argument("--models-dir", type=Path, help="folder with registry.yaml and weights")
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("run", help="pre-label videos (in-process, or through --server) and export results")
    p.add_argument("videos", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True, help="one folder per video is written under this")
    p.add_argument(
        "--format", default="cvat,labelstudio,coco,mot",
        help="comma-separated: " + FORMATS_HELP + " (default: %(default)s; result.json is always written)",
    )  # fmt: skip
    p.add_argument(
        "--stages", default="detect,track,pose,actions",
        help="comma-separated of detect, track, pose, actions (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--detector", default="", help="detector name (default: the registry's)")
    p.add_argument("--pose-model", default="", help="pose model name (default: the registry's)")
    p.add_argument("--action-model", default="", help="rules, or a trained action model (default: the registry's)")
    p.add_argument("--imgsz", type=int, default=0, help="detector input size in pixels (default: the model's)")
    p.add_argument("--conf", type=float, default=None, help="least detection score kept (default: the pipeline's)")
    p.add_argument("--server", help="host:port; without it the pipeline runs in this process")
    p.add_argument("--server-paths", action="store_true", help="send paths (under the server's roots), not uploads")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    p.add_argument("--runtime", choices=RUNTIME_CHOICES, default="auto", help=RUNTIME_HELP)
    p.add_argument("--models-dir", type=Path, help="folder with registry.yaml and weights")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "jobs", help="list, watch, cancel or download a server's jobs (watch exits 1 if the job failed or is cancelled)"
    )
    p.add_argument("action", choices=("list", "get", "watch", "cancel", "download"))
    p.add_argument("job_id", nargs="?", default="", help="the job (as SubmitJob or jobs list gave it); not for list")
    p.add_argument("--server", default="127.0.0.1:50051", help="host:port (default: %(default)s)")
    p.add_argument(
        "--format", default="json,cvat,labelstudio", help="download: comma-separated formats (default: %(default)s)"
    )
    p.add_argument("--out", type=Path, default=Path("."), help="download: destination folder")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("render", help="draw a result.json over its video (MP4 or GIF)")
    p.add_argument("video", type=Path)
    p.add_argument("result", type=Path, help="result.json from a job or `prelabel run`")
    p.add_argument("--out", type=Path, required=True, help="overlay.mp4 or overlay.gif")
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument("--max-side", type=int, default=0)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("interpolate", help="fill CVAT / Label Studio keyframes with prelabel's interpolation")
    p.add_argument("input", type=Path, help="CVAT for video 1.1 XML or Label Studio JSON export")
    p.add_argument("--format", choices=("cvat", "labelstudio"), help="default: labelstudio for .json, else cvat")
    p.add_argument(
        "--video",
        type=Path,
        help="the video: its frames guide guided and auto, and it gives exact timestamps and, for Label Studio "
        "exports (boxes in percent of a frame size they do not state), the frame size",
    )
    p.add_argument(
        "--data-key", default="video", help="Label Studio: the task data key of the video (<Video value=$KEY>)"
    )
    _add_task_arg(p)
    p.add_argument("--method", default="auto", help="linear | spline | kalman | kalman-ca | guided | auto")
    p.add_argument("--suggestions", type=int, default=3, help="suggested next keyframes per track")
    p.add_argument(
        "--detector",
        action="append",
        default=[],
        help="registry model (detect or pose) run on the frames to guide guided/auto; repeat for several",
    )
    p.add_argument("--models-dir", type=Path, help="folder with registry.yaml and weights")
    p.add_argument("--device", default="auto")
    _add_keyframe_args(p, "filled frames")
    p.add_argument(
        "--previous",
        type=Path,
        help="CVAT: the file an earlier run wrote (and you corrected in CVAT, then exported as INPUT): the keyframes "
        "it added that INPUT holds unchanged are filled again, around your corrections",
    )
    p.add_argument("--out", type=Path, required=True, help="where to write the result, same format as the input")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser(
        "convert",
        help="convert labels between formats; dense tracks (a tracker's, prelabel's result.json) go into CVAT and "
        "Label Studio as the fewest keyframes their interpolation rebuilds them from",
    )
    p.add_argument(
        "input", type=Path, help="result.json, CVAT XML, Label Studio JSON, COCO JSON, MOT txt, YOLO folder or zip"
    )
    p.add_argument("--from", dest="source", choices=sorted(CONVERT_FORMATS), help="default: read off the file")
    p.add_argument("--to", dest="target", choices=sorted(CONVERT_TARGETS), required=True)
    p.add_argument("--video", type=Path, help="frame size, length and timestamps (formats without them: MOT, YOLO)")
    p.add_argument(
        "--data-key", default="video", help="Label Studio input: the task data key of the video (<Video value=$KEY>)"
    )
    _add_task_arg(p)
    _add_keyframe_args(p, "tracks")
    p.add_argument("--out", type=Path, required=True, help="the file to write (a folder for yolo)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("demo", help="the main job: generate a clip, label it through a real server, summarise")
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--frames", type=int, default=90)
    p.set_defaults(func=cmd_demo)

    for register in _plugin_registrars():
        register(sub)
    return parser


def _add_task_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="Label Studio input: the task with this id (repeat for several); default: the tasks that refer to --video",
    )
    p.add_argument(
        "--annotation",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="Label Studio input: read the annotation with this id where several annotators labelled a task (repeat "
        "for several tasks; convert also reads the task that holds it); default: each task's first annotation with "
        "a result that is not cancelled",
    )


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
    except OSError as exc:  # a file that cannot be read or written (a folder given as --out, no permission, disk full)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        import grpc

        if not isinstance(exc, grpc.RpcError):
            raise
        # A server's answer (an unknown job, a refused request): its status and message, not a traceback.
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1


if __name__ == "__main__":
    sys.exit(main())
