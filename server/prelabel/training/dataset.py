"""Export generated scenes as Ultralytics YOLO datasets (detect or pose format).

Which objects become labels: an object is labelled in a frame when at least ``min_visible`` of it is visible and its
visible box is at least ``min_side`` pixels on each side; fainter slivers are left out of both training and
evaluation (the same rule is applied to held-out data).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from prelabel.errors import InvalidInputError
from prelabel.synthetic import CLASS_NAMES, generate
from prelabel.synthetic.scene import Scene
from prelabel.types import NUM_KEYPOINTS

logger = logging.getLogger(__name__)

# COCO-17 horizontal flip: left <-> right keypoints.
COCO17_FLIP_IDX: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("mixed", 0.4),
    ("default", 0.12),
    ("crowd", 0.1),
    ("fast-motion", 0.1),
    ("ball", 0.12),
    ("occlusion", 0.06),
    ("camera-motion", 0.05),
    ("actions", 0.05),
)
"""Preset mixture of the training data (name, share of scenes)."""


@dataclass(frozen=True)
class DatasetSpec:
    """Which scenes and frames make a dataset.

    Attributes:
        seeds: scene seeds, one scene each; the preset is drawn from ``mix`` by the seed.
        frames_per_scene: frames sampled from each scene (evenly, with a seeded offset).
        scene_frames: length of each generated scene in frames.
        mix: (preset, weight) pairs.
        min_visible: smallest visible fraction for an object to be labelled.
        min_side: smallest visible box side (pixels) for an object to be labelled.
    """

    seeds: tuple[int, ...]
    frames_per_scene: int = 6
    scene_frames: int = 60
    mix: tuple[tuple[str, float], ...] = DEFAULT_MIX
    min_visible: float = 0.2
    min_side: float = 4.0

    def __post_init__(self) -> None:
        if not self.seeds:
            raise InvalidInputError("dataset spec: expected at least one seed, got none")
        if not 1 <= self.frames_per_scene <= self.scene_frames:
            raise InvalidInputError(
                f"frames_per_scene must be in [1, scene_frames={self.scene_frames}], got {self.frames_per_scene}"
            )


def preset_for_seed(seed: int, mix: Sequence[tuple[str, float]]) -> str:
    """The preset a seed draws from the mixture (deterministic)."""
    rng = np.random.default_rng([seed, 7])
    names = [m[0] for m in mix]
    w = np.array([m[1] for m in mix], np.float64)
    return str(names[int(rng.choice(len(names), p=w / w.sum()))])


def sample_frames(seed: int, num_frames: int, k: int) -> list[int]:
    """``k`` evenly spaced frame indices in ``[0, num_frames)`` with a seeded offset."""
    step = num_frames / k
    off = float(np.random.default_rng([seed, 11]).uniform(0, step))
    return sorted({min(num_frames - 1, int(off + i * step)) for i in range(k)})


def frame_labels(
    scene: Scene, frame_idx: int, min_visible: float, min_side: float, pose: bool, person_only: bool = False
) -> list[str]:
    """YOLO label lines of one frame (normalised ``cls cx cy w h`` [+ 17 x ``x y v``] per object)."""
    w, h = scene.info.width, scene.info.height
    lines = []
    for t in scene.tracks:
        if person_only and t.class_name != "person":
            continue
        b = t.at(frame_idx)
        if b is None or b.score < min_visible:
            continue
        x1, y1, x2, y2 = (float(v) for v in b.xyxy)
        if x2 - x1 < min_side or y2 - y1 < min_side:
            continue
        vals = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
        if pose:
            kp = np.zeros((NUM_KEYPOINTS, 3))
            if b.skeleton is not None:
                pres = b.skeleton.present
                kp[pres, 0] = b.skeleton.keypoints[pres, 0] / w
                kp[pres, 1] = b.skeleton.keypoints[pres, 1] / h
                kp[pres, 2] = 2
            vals += kp.reshape(-1).tolist()
        lines.append(f"{t.class_id} " + " ".join(f"{v:.6f}" for v in vals))
    return lines


def _export_scene(
    seed: int, spec: DatasetSpec, img_dir: Path, lab_dir: Path, pose: bool, person_only: bool, jpeg_quality: int
) -> int:
    """Generate one scene and write its sampled frames and labels; returns the number of images."""
    preset = preset_for_seed(seed, spec.mix)
    idx = sample_frames(seed, spec.scene_frames, spec.frames_per_scene)
    stems = [f"{preset}_{seed}_{f:04d}" for f in idx]
    if all((img_dir / f"{s}.jpg").exists() and (lab_dir / f"{s}.txt").exists() for s in stems):
        return len(stems)  # already exported (resumed run); files are deterministic per seed
    scene = generate(preset, seed, num_frames=spec.scene_frames, paint_frames=idx)
    assert scene.frames is not None
    for f, stem in zip(idx, stems, strict=True):
        cv2.imwrite(str(img_dir / f"{stem}.jpg"), scene.frames[f], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        lines = frame_labels(scene, f, spec.min_visible, spec.min_side, pose, person_only)
        (lab_dir / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
    return len(stems)


def export_yolo_dataset(
    spec: DatasetSpec,
    out_dir: Path,
    split: str,
    *,
    pose: bool,
    person_only: bool = False,
    jpeg_quality: int = 92,
    jobs: int = 1,
) -> int:
    """Generate scenes and write sampled frames as ``out_dir/images/<split>/*.jpg`` + ``labels/<split>/*.txt``.

    Args:
        spec: scenes and sampling.
        out_dir: dataset root (created).
        split: ``train`` or ``val``.
        pose: write keypoints (pose format) as well as boxes.
        person_only: keep only persons (class 0).
        jpeg_quality: JPEG quality 1-100.
        jobs: processes generating scenes; every file depends on its seed alone, so the output does not depend
            on ``jobs``.

    Returns:
        Number of images written.
    """
    if jobs < 1:
        raise InvalidInputError(f"jobs must be at least 1, got {jobs}")
    img_dir = Path(out_dir) / "images" / split
    lab_dir = Path(out_dir) / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    args = (spec, img_dir, lab_dir, pose, person_only, jpeg_quality)
    if jobs == 1 or len(spec.seeds) < 2:
        count = sum(_export_scene(seed, *args) for seed in spec.seeds)
    else:
        n = len(spec.seeds)
        # spawn, not fork: the parent may hold torch's and OpenCV's thread pools
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, n), mp_context=ctx) as pool:
            futures = [pool.submit(_export_scene, seed, *args) for seed in spec.seeds]
            count = sum(f.result() for f in futures)
    logger.info("exported %d images (%d scenes) to %s/%s", count, len(spec.seeds), out_dir, split)
    return count


def write_data_yaml(out_dir: Path, *, pose: bool, person_only: bool = False, val_split: str = "val") -> Path:
    """Write ``data.yaml`` for a dataset exported by :func:`export_yolo_dataset`; returns its path."""
    names = {0: "person"} if person_only else dict(enumerate(CLASS_NAMES))
    data: dict[str, object] = {
        "path": str(Path(out_dir).resolve()),
        "train": "images/train",
        "val": f"images/{val_split}",
        "names": names,
    }
    if pose:
        data["kpt_shape"] = [NUM_KEYPOINTS, 3]
        data["flip_idx"] = list(COCO17_FLIP_IDX)
    path = Path(out_dir) / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
