"""Command line: ``prelabel synth --preset NAME --seed S --out DIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from prelabel.errors import PrelabelError
from prelabel.synthetic.io import write_scene
from prelabel.synthetic.presets import PRESETS
from prelabel.synthetic.scene import generate

logger = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``synth`` options to ``parser`` and return it."""
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="scene preset")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same scene)")
    parser.add_argument("--out", type=Path, help="output folder (required unless --list)")
    parser.add_argument("--frames", type=int, default=None, help="number of frames (default: the preset's)")
    parser.add_argument("--width", type=int, default=None, help="frame width in pixels")
    parser.add_argument("--height", type=int, default=None, help="frame height in pixels")
    parser.add_argument("--fps", type=float, default=None, help="nominal frame rate")
    parser.add_argument("--no-video", action="store_true", help="write ground truth only")
    parser.add_argument("--list", action="store_true", help="list presets and exit")
    return parser


def add_subparser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``synth`` on a ``prelabel`` sub-command table; the handler is in ``defaults['func']``."""
    parser = subparsers.add_parser("synth", help="generate a synthetic scene with exact ground truth")
    configure_parser(parser)
    parser.set_defaults(func=run)
    return parser


def add_subcommands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``synth`` and ``train-synthetic`` on the ``prelabel`` sub-command table."""
    from prelabel.training import cli as training_cli

    add_subparser(subparsers)
    training_cli.add_subparser(subparsers)


def run(args: argparse.Namespace) -> int:
    """Generate and write one scene from parsed arguments; returns a process exit code."""
    if getattr(args, "list", False):
        for name, p in sorted(PRESETS.items()):
            print(f"{name:15s} {p.description}")
        return 0
    if args.out is None:
        print("error: --out is required (the folder to write the scene to)", file=sys.stderr)
        return 2
    try:
        scene = generate(
            args.preset,
            args.seed,
            num_frames=args.frames,
            width=args.width,
            height=args.height,
            fps=args.fps,
            render=not args.no_video,
        )
        paths = write_scene(scene, args.out)
    except PrelabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_people = sum(t.class_name == "person" for t in scene.tracks)
    print(
        f"{scene.preset} seed {scene.seed}: {scene.info.num_frames} frames {scene.info.width}x{scene.info.height} "
        f"@ {scene.info.fps:g} fps, {n_people} people, {len(scene.tracks) - n_people} balls, "
        f"{len(scene.segments)} segments -> {args.out}"
    )
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return 0


def synth_main(argv: list[str] | None = None) -> int:
    """Entry point of ``prelabel synth``; ``argv`` excludes the program and sub-command names."""
    parser = configure_parser(argparse.ArgumentParser(prog="prelabel synth", description=__doc__))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(synth_main())
