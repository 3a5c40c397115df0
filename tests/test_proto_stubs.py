"""The committed gRPC stubs match what the contract generates (regenerate: python scripts/gen_proto.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen_proto.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*.py*"))
    assert generated, "protoc generated nothing"
    committed_dir = REPO / "server"
    stale = [
        str(rel) for rel in generated
        if not (committed_dir / rel).exists() or (committed_dir / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]  # fmt: skip
    assert not stale, f"stale stubs (run python scripts/gen_proto.py): {stale}"
