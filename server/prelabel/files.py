"""File identity: the SHA-256 that names a video's content (uploads are checked against it, results record it)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path | str, block_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks (a video of any size in constant memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(block_bytes), b""):
            digest.update(block)
    return digest.hexdigest()
