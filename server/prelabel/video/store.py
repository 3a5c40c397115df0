"""Chunked upload store: uploaded videos land in ``data_dir/uploads/<upload_id>/`` after their checksum checks out.

Chunks go to a temporary file; only when the size and SHA-256 match the header, and the file decodes as a video,
is it moved into place atomically. A failed upload leaves nothing behind, and never touches stored uploads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prelabel.errors import InvalidInputError, NotFoundError, ResourceExhaustedError
from prelabel.types import VideoInfo
from prelabel.video.decode import probe

log = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_NAME_FILE = "name.txt"  # the client's file name, beside the stored video
_USED_FILE = "used"  # its modification time is the upload's last use
# Marking an upload used and sweeping it take turns (a call naming an upload as the sweep judges it keeps it).
_USE_LOCK = threading.Lock()


def mark_used(video: Path) -> None:
    """Record now as the last use of the upload whose stored video is ``video`` (a job reading it, as it starts and
    as it ends); nothing where it is gone."""
    with _USE_LOCK:
        if video.is_file():
            try:
                (video.parent / _USED_FILE).touch()
            except OSError as exc:
                log.debug("cannot mark upload %s used: %s", video.parent.name, exc)


@dataclass(frozen=True)
class StoredUpload:
    """An upload that passed its checks."""

    upload_id: str
    path: Path
    size_bytes: int
    sha256: str
    info: VideoInfo


class UploadStore:
    """Stores uploaded videos under ``root``.

    Args:
        root: folder for uploads (created when missing).
        max_bytes: largest accepted upload.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, filename: str, expected_size: int, expected_sha256: str, chunks: Iterable[bytes]) -> StoredUpload:
        """Write ``chunks``, verify them against the header, and store the video.

        Args:
            filename: the client's file name: its suffix names the stored file, its base name is kept for results
                (:meth:`original_name`).
            expected_size: bytes announced by the client (0: unknown).
            expected_sha256: hex SHA-256 the content must have.
            chunks: the file content in pieces.

        Raises:
            InvalidInputError: missing or malformed checksum, a negative size, size or checksum mismatch, not a
                video.
            ResourceExhaustedError: larger than ``max_bytes``.
        """
        expected = expected_sha256.lower().strip()
        if not re.fullmatch(r"[0-9a-f]{64}", expected):
            raise InvalidInputError("upload header: sha256 must be 64 hex digits")
        if expected_size < 0:
            raise InvalidInputError(f"upload header: size_bytes must be >= 0 (0: unknown), got {expected_size}")
        if expected_size > self.max_bytes:
            raise ResourceExhaustedError(f"upload of {expected_size} bytes exceeds the limit of {self.max_bytes}")
        suffix = Path(filename).suffix.lower()
        suffix = suffix if _SAFE_SUFFIX.match(suffix) else ".bin"
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ResourceExhaustedError(f"upload exceeds the limit of {self.max_bytes} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
            if expected_size and size != expected_size:
                raise InvalidInputError(f"upload size mismatch: header says {expected_size} bytes, got {size}")
            actual = digest.hexdigest()
            if actual != expected:
                raise InvalidInputError(f"upload checksum mismatch: header says {expected}, content is {actual}")
            upload_id = uuid.uuid4().hex
            final_dir = self.root / upload_id
            final_dir.mkdir()
            final = final_dir / f"video{suffix}"
            os.replace(tmp, final)
            name = "".join(c for c in Path(filename.replace("\\", "/")).name if c.isprintable())[:255]
            if name:
                (final_dir / _NAME_FILE).write_text(name, encoding="utf-8")
            try:
                info, _ = probe(final)
            except InvalidInputError as exc:  # named as the client named the file, not as it is stored
                shutil.rmtree(final_dir, ignore_errors=True)
                raise InvalidInputError(str(exc).replace(final.name, name or final.name, 1)) from exc
            except Exception:
                shutil.rmtree(final_dir, ignore_errors=True)
                raise
            log.info(
                "stored upload %s (%d bytes, %dx%d, %d frames)",
                upload_id,
                size,
                info.width,
                info.height,
                info.num_frames,
            )
            return StoredUpload(upload_id, final, size, actual, info)
        finally:
            tmp.unlink(missing_ok=True)

    def original_name(self, upload_id: str) -> str | None:
        """The client's file name of an upload (base name only), or None when it gave none.

        Raises:
            NotFoundError: unknown or malformed id.
        """
        folder = self.path(upload_id).parent
        named = folder / _NAME_FILE
        return named.read_text(encoding="utf-8") if named.is_file() else None

    def path(self, upload_id: str, use: bool = False) -> Path:
        """The stored video of ``upload_id``; ``use`` records now as its last use (see :meth:`sweep`).

        Raises:
            NotFoundError: unknown or malformed id.
        """
        if not _ID_RE.match(upload_id):
            raise NotFoundError(f"unknown upload id {upload_id!r}")
        folder = self.root / upload_id
        with _USE_LOCK:
            files = sorted(folder.glob("video.*")) if folder.is_dir() else []
            if not files:
                raise NotFoundError(f"unknown upload id {upload_id!r}")
            if use:
                try:
                    (folder / _USED_FILE).touch()
                except OSError as exc:  # removed meanwhile
                    raise NotFoundError(f"unknown upload id {upload_id!r}") from exc
        return files[0]

    def last_used(self, upload_id: str) -> float:
        """When ``upload_id`` was last used (stored, or named by a call or job), as a Unix time.

        Raises:
            NotFoundError: unknown or malformed id.
        """
        return self._last_used(self.path(upload_id).parent)

    @staticmethod
    def _last_used(folder: Path) -> float:
        used = folder / _USED_FILE
        return max(folder.stat().st_mtime, used.stat().st_mtime if used.exists() else 0.0)

    def sweep(self, max_idle_s: float, keep: Iterable[str] = (), now: float | None = None) -> list[str]:
        """Delete the uploads not used for ``max_idle_s`` seconds, except the ids in ``keep``; also the partial files
        of uploads that broke off that long ago. Returns the ids deleted."""
        now = time.time() if now is None else now
        kept = set(keep)
        gone = []
        for entry in sorted(self.root.iterdir()):
            try:
                if entry.is_file() and entry.name.startswith(".upload-"):
                    if now - entry.stat().st_mtime > max_idle_s:
                        entry.unlink(missing_ok=True)
                    continue
                if not (entry.is_dir() and _ID_RE.match(entry.name)) or entry.name in kept:
                    continue
                with _USE_LOCK:  # judged and removed with no use marked in between
                    if now - self._last_used(entry) > max_idle_s:
                        shutil.rmtree(entry)
                        gone.append(entry.name)
            except (OSError, NotFoundError) as exc:  # removed meanwhile, or half-written: the next sweep sees it
                log.debug("upload sweep: %s: %s", entry.name, exc)
        if gone:
            log.info("deleted %d uploads unused for %.1f h", len(gone), max_idle_s / 3600.0)
        return gone
