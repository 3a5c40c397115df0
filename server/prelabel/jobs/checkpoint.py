"""A job's checkpoint: per-frame model outputs saved batch by batch, so a restarted job skips inference it did.

Each batch is one ``.npz`` file written to a temporary name and renamed (atomic on POSIX), so a crash leaves
either the whole batch or nothing. Arrays are stored exactly (float32), so a resumed run sees the same numbers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prelabel.types import NUM_KEYPOINTS, Detections

log = logging.getLogger(__name__)


def _pack(prefix: str, dets: Sequence[Detections]) -> dict[str, np.ndarray]:
    counts = np.array([len(d) for d in dets], np.int64)
    has_kp = np.array([d.keypoints is not None for d in dets], bool)
    kps = [d.keypoints if d.keypoints is not None else np.zeros((len(d), NUM_KEYPOINTS, 3), np.float32) for d in dets]
    return {
        f"{prefix}counts": counts,
        f"{prefix}has_kp": has_kp,
        f"{prefix}xyxy": np.concatenate([d.xyxy for d in dets]) if dets else np.zeros((0, 4), np.float32),
        f"{prefix}scores": np.concatenate([d.scores for d in dets]) if dets else np.zeros(0, np.float32),
        f"{prefix}cls": np.concatenate([d.class_ids for d in dets]) if dets else np.zeros(0, np.int64),
        f"{prefix}kp": np.concatenate(kps) if dets else np.zeros((0, NUM_KEYPOINTS, 3), np.float32),
    }


def _unpack(prefix: str, data: dict[str, np.ndarray], names: Sequence[str]) -> list[Detections]:
    counts = data[f"{prefix}counts"]
    ends = np.cumsum(counts)
    out = []
    for i, (n, end) in enumerate(zip(counts, ends, strict=True)):
        s = slice(int(end - n), int(end))
        kp = data[f"{prefix}kp"][s] if data[f"{prefix}has_kp"][i] else None
        out.append(Detections(data[f"{prefix}xyxy"][s], data[f"{prefix}scores"][s], data[f"{prefix}cls"][s], names, kp))
    return out


class FileDetectionCache:
    """:class:`prelabel.pipeline.DetectionCache` in a folder of ``.npz`` batches.

    Args:
        folder: created when missing; existing batches are loaded.
        class_names: names to attach to loaded detections.
    """

    def __init__(self, folder: Path, class_names: Sequence[str] = ()) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._names = tuple(class_names)
        self._items: dict[int, tuple[Detections, Detections | None]] = {}
        for path in sorted(self.folder.glob("batch-*.npz")):
            try:
                self._load(path)
            except (OSError, ValueError, KeyError) as exc:  # a torn file cannot exist (atomic rename), but be safe
                log.warning("ignoring unreadable checkpoint %s: %s", path.name, exc)

    def __len__(self) -> int:
        return len(self._items)

    def _load(self, path: Path) -> None:
        with np.load(path) as npz:
            data = {k: npz[k] for k in npz.files}
        frames = data["frames"]
        dets = _unpack("d_", data, self._names)
        has_pose = data["has_pose"]
        poses = _unpack("p_", data, ()) if has_pose.any() else [None] * len(frames)
        for f, d, p, hp in zip(frames, dets, poses, has_pose, strict=True):
            self._items[int(f)] = (d, p if hp else None)

    def get(self, frame_idx: int) -> tuple[Detections, Detections | None] | None:
        """Cached outputs of a frame, or None."""
        return self._items.get(frame_idx)

    def put(self, items: Sequence[tuple[int, Detections, Detections | None]]) -> None:
        """Save one batch durably (fsync, then atomic rename)."""
        if not items:
            return
        frames = np.array([i for i, _, _ in items], np.int64)
        has_pose = np.array([p is not None for _, _, p in items], bool)
        data = {"frames": frames, "has_pose": has_pose, **_pack("d_", [d for _, d, _ in items])}
        if has_pose.any():
            data.update(_pack("p_", [p if p is not None else Detections.empty() for _, _, p in items]))
        final = self.folder / f"batch-{int(frames.min()):08d}.npz"
        tmp = final.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, **data)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        for f, d, p in items:
            self._items[f] = (d, p)
