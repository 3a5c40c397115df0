"""``prelabel train-actions`` and ``prelabel qa``: the command-line side of action segments."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from prelabel.actions.augment import KeypointNoise
from prelabel.actions.data import TRACK_ID_STRIDE, imported_data, parse_seeds, synthetic_data
from prelabel.actions.taxonomy import Taxonomy, default_taxonomy
from prelabel.actions.tcn import TCNConfig
from prelabel.actions.train import LabelledTrack, TrainConfig, train_action_model
from prelabel.errors import InvalidInputError, PrelabelError
from prelabel.metrics.segments import qa_compare
from prelabel.types import Segment, Source

log = logging.getLogger(__name__)


TRAIN_HELP = "Train the action TCN from generated scenes and/or annotators' corrections (CVAT, Label Studio)."
QA_HELP = "Compare action segments: an annotator against a gold set, or two annotators."
QA_FORMAT = """\
Segments JSON: {"segments": [{"track_id": 1, "label": "walk", "start_frame": 0, "end_frame": 49}, ...],
"tracks": {"1": [0, 99]}} or a bare list of segments (prelabel synth's segments.json as it is). Frames are 0-based
integers, end_frame inclusive; labels come from the taxonomy (--taxonomy; default: prelabel's). "tracks" gives each
track's frame range (first, last); a track without one is compared over the frames its segments cover in either
file. Metrics are per layer of labels that exclude each other: frame accuracy, segmental edit score, F1 at segment
IoU 0.10 / 0.25 / 0.50, and the boundary offsets (candidate minus reference, frames) of segments matched at IoU 0.10.
An F1 where neither file has a segment of the layer, and offsets where nothing matched, are n/a (null in --out)."""


def _train_parser() -> argparse.ArgumentParser:
    return _add_train_args(argparse.ArgumentParser(prog="prelabel train-actions", description=TRAIN_HELP))


def _add_train_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--out", type=Path, required=True, help="weights file to write (.pt; a .json is written beside)")
    p.add_argument("--name", default="", help="model name stored with it (default: the file stem)")
    p.add_argument("--synthetic-seeds", default="", help="generated scene seeds, e.g. 1000-1059 (disjoint from eval)")
    p.add_argument("--preset", default="actions", help="generator preset for --synthetic-seeds")
    p.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="FORMAT:PATH",
        help="annotation export with action segments and skeleton tracks, e.g. cvat:annotations.xml; when the file "
        "has no skeletons (Label Studio) name where they are: label_studio:tasks.json@coco:keypoints.json "
        "(repeatable)",
    )  # fmt: skip
    p.add_argument("--fps", type=float, help="frame rate of the imported videos where the files store none (CVAT XML)")
    p.add_argument("--taxonomy", type=Path, help="taxonomy YAML (default: the package's)")
    p.add_argument("--jitter", type=float, default=0.02, help="keypoint noise std, fraction of box height")
    p.add_argument("--drift", type=float, default=0.01, help="slow keypoint drift std, fraction of box height")
    p.add_argument("--drop", type=float, default=0.05, help="probability a keypoint is missing")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--channels", type=int, default=TCNConfig.channels)
    p.add_argument("--layers", type=int, default=TCNConfig.num_layers)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    return p


def train_actions_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``prelabel train-actions``; returns the exit code (0 ok, 2 bad input)."""
    return _train(_train_parser().parse_args(argv), argv)


def _train(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        taxonomy = Taxonomy.load(args.taxonomy) if args.taxonomy else default_taxonomy()
        noise = KeypointNoise(args.jitter, args.drift, args.drop)
        data: list[LabelledTrack] = []
        seeds = parse_seeds(args.synthetic_seeds)
        if seeds:
            data.extend(synthetic_data(seeds, preset=args.preset, noise=noise, noise_seed=args.seed))
        for i, spec in enumerate(args.imports):
            main, _, extra = spec.partition("@")
            fmt, path = _format_path(main, spec)
            skeletons = _format_path(extra, spec) if extra else None
            offset = (len(seeds) + i + 1) * TRACK_ID_STRIDE
            data.extend(imported_data(fmt, path, offset=offset, skeletons=skeletons, fps=args.fps))
        if not data:
            raise InvalidInputError("no training data: give --synthetic-seeds and/or --import")
        cfg = TrainConfig(
            epochs=args.epochs,
            lr=args.lr,
            seed=args.seed,
            threads=args.threads,
            tcn=TCNConfig(channels=args.channels, num_layers=args.layers),
        )
        result = train_action_model(data, taxonomy=taxonomy, config=cfg, name=args.name or args.out.stem)
        used = list(argv if argv is not None else sys.argv[1:])
        if used[:1] == ["train-actions"]:  # called as `prelabel train-actions ...`
            used = used[1:]
        result.model.meta["recipe"] = "prelabel train-actions " + " ".join(used)
        meta = result.model.save(args.out)
    except PrelabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"trained on {result.num_sequences} sequences ({result.num_frames} frames) in {result.seconds:.1f} s; "
        f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}; wrote {args.out} and {meta}"
    )
    return 0


def _format_path(text: str, spec: str) -> tuple[str, Path]:
    """``"FORMAT:PATH"`` -> (format, path); raises InvalidInputError naming the ``--import`` value."""
    fmt, _, path = text.partition(":")
    if not fmt or not path:
        raise InvalidInputError(f"--import: expected FORMAT:PATH or FORMAT:PATH@FORMAT:PATH, got {spec!r}")
    return fmt, Path(path)


def read_segments(path: Path) -> tuple[list[Segment], dict[int, tuple[int, int]]]:
    """Segments from JSON: ``{"segments": [{track_id, label, start_frame, end_frame, ...}], "tracks": {id: [a, b]}}``
    or a bare list of segments (the generator's ``segments.json`` is accepted as is).

    Returns:
        The segments and the inclusive frame span per track given in the file (may be empty).

    Raises:
        InvalidInputError: unreadable JSON or a malformed segment (naming its index).
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read segments JSON: {exc}") from exc
    items = doc.get("segments", []) if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InvalidInputError(f"{path}: expected a list of segments, got {type(items).__name__}")
    segs = []
    for i, it in enumerate(items):
        try:
            start, end = _frame_number(it["start_frame"]), _frame_number(it["end_frame"])
            segs.append(
                Segment(
                    track_id=int(it["track_id"]),
                    label=str(it["label"]),
                    start_frame=start,
                    end_frame=end,
                    start_ts_ms=float(it.get("start_ts_ms", 0.0)),
                    end_ts_ms=float(it.get("end_ts_ms", 0.0)),
                    confidence=float(it.get("confidence", 1.0)),
                    source=Source(int(it.get("source", 0))) if isinstance(it.get("source", 0), int) else Source(0),
                    method=str(it.get("method", "")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{path}: segment {i} is malformed ({exc!r}); needs track_id, label, frames"
            ) from exc
    spans: dict[int, tuple[int, int]] = {}
    if isinstance(doc, dict) and isinstance(doc.get("tracks"), dict):
        for k, v in doc["tracks"].items():
            try:
                first, last = (_frame_number(f) for f in v)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"{path}: tracks {k!r}: expected [first, last] frames ({exc})") from exc
            if last < first:
                raise InvalidInputError(f"{path}: tracks {k!r}: last frame {last} before first {first}")
            spans[int(k)] = (first, last)
    return segs, spans


def _frame_number(value: object) -> int:
    """A frame number as JSON holds one: a whole number >= 0 (7.0 passes; 0.7, "7", true and -1 do not)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer() or value < 0:
        raise ValueError(f"frame {value!r}: expected a whole number >= 0")
    return int(value)


def _qa_parser() -> argparse.ArgumentParser:
    return _add_qa_args(
        argparse.ArgumentParser(
            prog="prelabel qa",
            description=QA_HELP,
            epilog=QA_FORMAT,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def _add_qa_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("reference", type=Path, help="gold (or first annotator) segments JSON")
    p.add_argument("candidate", type=Path, help="segments JSON to check")
    p.add_argument("--taxonomy", type=Path, help="taxonomy YAML; metrics are reported per layer")
    p.add_argument("--out", type=Path, help="write the full report as JSON here")
    return p


def qa_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``prelabel qa``; prints a summary, returns the exit code (0 ok, 2 bad input)."""
    return _qa(_qa_parser().parse_args(argv))


def _qa(args: argparse.Namespace) -> int:
    try:
        taxonomy = Taxonomy.load(args.taxonomy) if args.taxonomy else default_taxonomy()
        ref, ref_spans = read_segments(args.reference)
        cand, cand_spans = read_segments(args.candidate)
        for name, segs in (("reference", ref), ("candidate", cand)):
            for s in segs:
                taxonomy.get(s.label)
            try:
                taxonomy.validate_segments(segs)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{name}: {exc}") from exc
        spans = dict(cand_spans)
        spans.update(ref_spans)
        for s in (*ref, *cand):
            a, b = spans.get(s.track_id, (s.start_frame, s.end_frame))
            if s.track_id not in ref_spans and s.track_id not in cand_spans:
                spans[s.track_id] = (min(a, s.start_frame), max(b, s.end_frame))
        report = {
            "layers": {
                "+".join(layer): qa_compare(ref, cand, spans, labels=list(layer)).to_dict()
                for layer in taxonomy.layers()
            }
        }
    except PrelabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def num(value: object, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    for name, r in report["layers"].items():
        f1 = r["f1"]
        assert isinstance(f1, dict)
        print(
            f"[{name}] frame accuracy {r['frame_accuracy']:.3f}  edit {r['edit']:.3f}  "
            + "  ".join(f"F1@{k} {num(v, '.3f')}" for k, v in f1.items())
            + f"  mean |boundary offset| {num(r['mean_abs_boundary_offset'], '.2f')} frames"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``train-actions`` and ``qa`` on the ``prelabel`` sub-command table."""
    p = _add_train_args(subparsers.add_parser("train-actions", help=TRAIN_HELP, description=TRAIN_HELP))
    p.set_defaults(func=_train)
    q = _add_qa_args(
        subparsers.add_parser(
            "qa",
            help=QA_HELP,
            description=QA_HELP,
            epilog=QA_FORMAT,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    q.set_defaults(func=_qa)
