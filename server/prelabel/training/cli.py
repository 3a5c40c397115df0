"""Command line: ``prelabel train-synthetic`` (train, derive and evaluate the shipped synthetic models)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.training.recipe import TrainRecipe

logger = logging.getLogger(__name__)

DET_NAME = "prelabel-synth-det.pt"
POSE_NAME = "prelabel-synth-pose.pt"
EVAL_NAME = "prelabel-synth-eval.json"


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``train-synthetic`` options to ``parser`` and return it."""
    d = TrainRecipe()
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="where the weights are written")
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "prelabel-synth", help="datasets and runs"
    )
    parser.add_argument("--eval-only", action="store_true", help="only measure the weights in --models-dir")
    parser.add_argument(
        "--no-eval", action="store_true", help="train and derive the models, record the recipe, skip the measurement"
    )
    parser.add_argument(
        "--device", default=d.device, help="training device: auto (a CUDA GPU when there is one), cpu, or 0, 1, ..."
    )
    parser.add_argument("--workers", type=int, default=d.workers, help="dataloader workers")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes generating the training scenes"
    )
    parser.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs")
    parser.add_argument("--time-hours", type=float, default=d.time_hours, help="wall-clock budget (0: use epochs)")
    parser.add_argument("--train-scenes", type=int, default=d.train_seeds[1], help="training scenes")
    parser.add_argument("--heldout-scenes", type=int, default=d.heldout_seeds[1], help="held-out scenes")
    parser.add_argument("--imgsz", type=int, default=d.imgsz, help="image size (pixels)")
    parser.add_argument("--batch", type=int, default=d.batch, help="batch size")
    parser.add_argument(
        "--init", type=str, default="", help="continue from this person+ball pose checkpoint (a previous run's last.pt)"
    )
    return parser


def add_subparser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``train-synthetic`` on a ``prelabel`` sub-command table; the handler is in ``defaults['func']``."""
    parser = subparsers.add_parser("train-synthetic", help="train and evaluate the offline default models")
    configure_parser(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train (unless ``--eval-only``), derive the shipped models, evaluate them; returns an exit code."""
    from prelabel.logs import route_library_logs
    from prelabel.training.train import build_train_dataset, derive_models, train_network

    route_library_logs("ultralytics", logging.INFO)  # Ultralytics' training progress, on stderr

    d = TrainRecipe()
    recipe = replace(
        d,
        epochs=args.epochs,
        time_hours=args.time_hours,
        train_seeds=(d.train_seeds[0], args.train_scenes),
        heldout_seeds=(d.heldout_seeds[0], args.heldout_scenes),
        imgsz=args.imgsz,
        batch=args.batch,
        nbs=args.batch,
        init=args.init,
        device=args.device,
        workers=args.workers,
    )
    models_dir: Path = args.models_dir
    det_path, pose_path = models_dir / DET_NAME, models_dir / POSE_NAME
    work: Path = args.work
    if recipe.init and not Path(recipe.init).is_file():
        raise NotFoundError(f"--init checkpoint not found: {recipe.init}")
    if args.eval_only and args.no_eval:
        raise InvalidInputError("--eval-only and --no-eval exclude each other")
    out = models_dir / EVAL_NAME
    trained_by = recipe.as_dict()
    if not args.eval_only:
        data = build_train_dataset(recipe, work / "train-data", jobs=args.jobs)
        trained = train_network(recipe, data, work / "runs")
        derive_models(trained, det_path, pose_path, recipe.imgsz)
        if args.no_eval:
            out.write_text(json.dumps({"recipe": trained_by}, indent=1))
            print(f"wrote {det_path}, {pose_path} and the recipe in {out} (not measured: --no-eval)")
            return 0
    elif out.is_file():
        # measure the weights in place, but keep the record of the run that trained them
        trained_by = json.loads(out.read_text()).get("recipe", trained_by)
    from prelabel.training.evaluate import evaluate_models

    result = evaluate_models(det_path, pose_path, recipe, work / "heldout")
    result["recipe"] = trained_by
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["metrics"], indent=1))
    print(f"wrote {out}")
    return 0


def train_synthetic_main(argv: list[str] | None = None) -> int:
    """Entry point of ``prelabel train-synthetic``; ``argv`` excludes the program and sub-command names."""
    parser = configure_parser(argparse.ArgumentParser(prog="prelabel train-synthetic", description=__doc__))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(train_synthetic_main())
