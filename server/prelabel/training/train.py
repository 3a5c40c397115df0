"""Train the synthetic pose+ball network and derive the shipped detector and pose model from it."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prelabel.errors import FailedPreconditionError
from prelabel.training.dataset import DatasetSpec, export_yolo_dataset, write_data_yaml
from prelabel.training.recipe import TrainRecipe

logger = logging.getLogger(__name__)


def _seeds(rng: tuple[int, int]) -> tuple[int, ...]:
    return tuple(range(rng[0], rng[0] + rng[1]))


def build_train_dataset(recipe: TrainRecipe, root: Path, jobs: int = 1) -> Path:
    """Export the training set (pose format, person + ball) with a small held-out val split; returns data.yaml.

    ``jobs`` processes generate the scenes (the files do not depend on it).
    """
    spec = DatasetSpec(_seeds(recipe.train_seeds), recipe.frames_per_scene, recipe.scene_frames, recipe.mix)
    export_yolo_dataset(spec, root, "train", pose=True, jobs=jobs)
    val = DatasetSpec(_seeds((recipe.heldout_seeds[0], min(8, recipe.heldout_seeds[1]))), 3, recipe.scene_frames)
    export_yolo_dataset(val, root, "val", pose=True)
    return write_data_yaml(root, pose=True)


def resolve_device(device: str) -> str:
    """Ultralytics device string for ``device`` (``auto``: CUDA device 0 when one is visible, else ``cpu``).

    Raises:
        FailedPreconditionError: a CUDA device was asked for and none is visible.
    """
    if device == "auto":
        return "0" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not torch.cuda.is_available():
        raise FailedPreconditionError(f"training device {device!r} asked for, but no CUDA device is visible")
    return device


def train_network(recipe: TrainRecipe, data_yaml: Path, project: Path, name: str = "pose-ball") -> Path:
    """Train ``recipe.arch`` from scratch (or continue from ``recipe.init``) on ``data_yaml`` with Ultralytics.

    Runs on ``recipe.device`` (GPU when there is one under ``auto``; the CPU path is the one the tests cover).
    Mixed precision stays off: Ultralytics' AMP self-check downloads a reference model, and nothing may download.

    Returns:
        The last checkpoint of the run.
    """
    from ultralytics import YOLO

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = YOLO(recipe.init or recipe.arch)
    kwargs: dict[str, Any] = dict(
        data=str(data_yaml),
        epochs=recipe.epochs,
        imgsz=recipe.imgsz,
        batch=recipe.batch,
        workers=recipe.workers,
        device=resolve_device(recipe.device),
        seed=recipe.seed,
        deterministic=False,
        # With ``pretrained=False`` Ultralytics rebuilds the network from its yaml and drops the weights of
        # ``recipe.init``; continuing a run needs them kept.
        pretrained=bool(recipe.init),
        amp=False,
        plots=False,
        val=False,
        cache="ram",
        project=str(project),
        name=name,
        exist_ok=True,
        close_mosaic=2,
        nbs=recipe.nbs,
        warmup_epochs=recipe.warmup_epochs,
        patience=0,
    )
    if recipe.time_hours > 0:
        kwargs["time"] = recipe.time_hours
    model.train(**kwargs)
    last = project / name / "weights" / "last.pt"
    if not last.exists():
        raise FailedPreconditionError(f"training finished without a checkpoint: expected {last}")
    return last


def _load(path: Path) -> nn.Module:
    from ultralytics import YOLO

    return YOLO(str(path)).model  # type: ignore[return-value]


def _save(model: nn.Module, path: Path, train_args: dict[str, Any]) -> None:
    """Save in Ultralytics checkpoint format (fp16 weights, loadable by ``YOLO(path)`` offline)."""
    import ultralytics

    path.parent.mkdir(parents=True, exist_ok=True)
    m = copy.deepcopy(model).half().eval()
    for p in m.parameters():
        p.requires_grad_(False)
    if hasattr(m, "pt_path"):  # where the trainer kept the checkpoint: a path of the training machine, not ours
        del m.pt_path
    ckpt = {"model": m, "train_args": train_args, "version": ultralytics.__version__, "epoch": -1}
    torch.save(ckpt, path)


def _keep_classes(head: Any, keep: list[int]) -> None:
    """Cut a Detect/Pose head's class outputs down to ``keep`` (in place)."""
    for seq in head.cv3:
        old = seq[-1]
        new: Any = nn.Conv2d(old.in_channels, len(keep), 1)
        with torch.no_grad():
            new.weight.copy_(old.weight[keep])
            new.bias.copy_(old.bias[keep])
        seq[-1] = new
    head.nc = len(keep)
    head.no = len(keep) + head.reg_max * 4


def derive_models(trained: Path, det_out: Path, pose_out: Path, imgsz: int) -> None:
    """Write the shipped detector (person + ball boxes) and pose model (person + 17 keypoints) from one network.

    The detector is a fresh YOLO11n detect model (same backbone, neck and box/class branches) with the trained
    weights copied in; the pose model drops the ball class from the class branch.

    Raises:
        FailedPreconditionError: the trained weights do not fit the detect architecture.
    """
    from ultralytics.nn.tasks import DetectionModel

    pose_model: Any = _load(trained).float()
    names = dict(pose_model.names)
    det = DetectionModel("yolo11n.yaml", nc=len(names), verbose=False)
    state = {k: v for k, v in pose_model.state_dict().items() if ".cv4." not in k}
    missing, unexpected = det.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FailedPreconditionError(
            f"detector weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    det.names = names
    det.args = {"imgsz": imgsz, "task": "detect"}  # type: ignore[assignment]
    _save(det, det_out, {"imgsz": imgsz, "task": "detect", "source": trained.name})
    person = copy.deepcopy(pose_model)
    _keep_classes(person.model[-1], [0])
    person.names = {0: names[0]}
    person.yaml["nc"] = 1
    person.args = {"imgsz": imgsz, "task": "pose"}
    _save(person, pose_out, {"imgsz": imgsz, "task": "pose", "source": trained.name})
    logger.info("wrote %s (%.1f MB) and %s (%.1f MB)", det_out, det_out.stat().st_size / 1e6, pose_out,
                pose_out.stat().st_size / 1e6)  # fmt: skip
