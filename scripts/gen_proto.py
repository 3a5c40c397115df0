#!/usr/bin/env python3
"""Regenerate the Python stubs of the API contract: ``proto/prelabel/v1/*.proto`` -> ``server/prelabel/v1/``.

Usage: ``python scripts/gen_proto.py [--out DIR]`` (default: the package). ``tests/test_proto_stubs.py`` runs it
into a temporary folder and fails when the committed stubs differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"


def generate(out: Path) -> list[Path]:
    """Run protoc on every .proto under ``proto/`` and write stubs (``_pb2``, ``_pb2_grpc``, ``.pyi``) into ``out``."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for proto in protos:
        pkg_dir = out / Path(proto).parent
        # Make every generated folder below the package root a package.
        d = pkg_dir
        while d != out and d != out / "prelabel":
            init = d / "__init__.py"
            if not init.exists():
                init.write_text('"""Generated gRPC stubs; regenerate with scripts/gen_proto.py."""\n')
            d = d.parent
        written.extend(sorted(pkg_dir.glob("*_pb2*.py*")))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "server", help="folder that holds the prelabel package")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path.relative_to(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
