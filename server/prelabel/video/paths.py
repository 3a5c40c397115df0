"""Server-side paths: only files under the configured allowed roots may be read (no traversal, no symlink escape)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prelabel.errors import InvalidInputError, NotFoundError, PermissionDeniedError


def resolve_allowed_path(path: str, allowed_roots: Sequence[Path]) -> Path:
    """The real path of ``path`` when it lies under one of ``allowed_roots``.

    Symlinks and ``..`` are resolved before the check, so neither can escape a root.

    Raises:
        PermissionDeniedError: no roots are configured, or the path is outside all of them.
        NotFoundError: the path is allowed but does not exist. InvalidInputError: a NUL character in the path.
    """
    if "\x00" in path:
        raise InvalidInputError(f"{path!r}: a path cannot hold a NUL character")
    if not allowed_roots:
        raise PermissionDeniedError("server-side paths are disabled: the server has no allowed roots configured")
    real = Path(path).expanduser().resolve()
    for root in allowed_roots:
        root_real = Path(root).expanduser().resolve()
        if real == root_real or root_real in real.parents:
            if not real.exists():
                raise NotFoundError(f"{path} does not exist")
            return real
    raise PermissionDeniedError(f"{path} is outside the server's allowed roots")
