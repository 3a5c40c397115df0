"""The model registry: ``models/registry.yaml`` names every model the service can load.

Nothing here downloads. A model is *available* when its weights file exists locally (or it is built from an
architecture config). Asking for an unknown name raises :class:`NotFoundError`; asking for a model whose weights
are missing raises :class:`FailedPreconditionError` naming the file and how to obtain it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prelabel.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from prelabel.video.paths import resolve_allowed_path

log = logging.getLogger(__name__)

TASKS = ("detect", "pose", "actions")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        name: the name clients use.
        task: "detect", "pose" or "actions".
        weights: path of the weights file (absolute once resolved), or None for ``arch`` models.
        arch: an Ultralytics architecture config (e.g. ``yolo11n.yaml``) to build an untrained model from.
        classes: class names, or ("coco80",) for the COCO classes.
        imgsz: default inference size in pixels.
        extra: fields this module does not interpret (kept for task-specific loaders).
    """

    name: str
    task: str
    weights: Path | None = None
    arch: str | None = None
    classes: tuple[str, ...] = ()
    imgsz: int = 640
    license: str = ""
    description: str = ""
    how_to_get: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """True when the model can be loaded without a download."""
        return self.arch is not None or (self.weights is not None and self.weights.is_file())

    def require_available(self) -> None:
        """Raise :class:`FailedPreconditionError` naming the missing file when the weights are absent."""
        if not self.available:
            hint = f"; to obtain it: {self.how_to_get}" if self.how_to_get else ""
            raise FailedPreconditionError(f"model {self.name!r}: weights file {self.weights} is missing{hint}")


class ModelRegistry:
    """Models by name, read from a YAML file (see ``models/registry.yaml`` for the fields)."""

    def __init__(self, specs: Sequence[ModelSpec], defaults: dict[str, str] | None = None) -> None:
        #: Where a weights file named by its path may lie: None, anywhere (a local user); a server sets its allowed
        #: roots, so that a remote caller can neither load nor probe files outside them.
        self.path_roots: list[Path] | None = None
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise InvalidInputError(f"model registry: duplicate name {spec.name!r}")
            self._specs[spec.name] = spec
        self.defaults = dict(defaults or {})

    @classmethod
    def load(cls, path: Path) -> ModelRegistry:
        """Parse and validate a registry file; relative weight paths resolve against its folder.

        Raises:
            NotFoundError: the file does not exist.
            InvalidInputError: an entry is malformed (the message names it).
        """
        if not path.is_file():
            raise NotFoundError(f"model registry {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            raise InvalidInputError(f"model registry {path}: expected a mapping with a 'models' list")
        specs = [_parse_entry(entry, i, path.parent) for i, entry in enumerate(data["models"])]
        defaults = {
            task: str(data[f"default_{key}"])
            for task, key in (("detect", "detector"), ("pose", "pose"), ("actions", "actions"))
            if data.get(f"default_{key}")
        }
        return cls(specs, defaults)

    def get(self, name: str) -> ModelSpec:
        """The entry called ``name``; a path to an existing ``.pt``/``.onnx`` file is accepted as an ad-hoc model
        (with ``path_roots`` set, only under one of them).

        Raises:
            NotFoundError: no such model.
            PermissionDeniedError: a weights path outside ``path_roots`` (or ``path_roots`` empty).
        """
        spec = self._specs.get(name)
        if spec is not None:
            return spec
        path = self.weights_path(name, (".pt", ".onnx"))
        if path is not None and path.is_file():
            task = "pose" if "pose" in path.stem else "detect"
            return ModelSpec(name=name, task=task, weights=path.resolve(), description="local weights file")
        known = ", ".join(sorted(self._specs))
        raise NotFoundError(f"unknown model {name!r}; known models: {known}")

    def weights_path(self, name: str, suffixes: Sequence[str]) -> Path | None:
        """The weights file ``name`` names by its path (a suffix among ``suffixes``), or None for a model name. With
        ``path_roots`` set, the real path under one of them (detectors, pose and action models alike).

        Raises:
            PermissionDeniedError: outside ``path_roots``. NotFoundError: under them but missing.
        """
        path = Path(name)
        if path.suffix not in suffixes:
            return None
        return path if self.path_roots is None else resolve_allowed_path(name, self.path_roots)

    def default(self, task: str) -> ModelSpec:
        """The default model for ``task``.

        Raises:
            NotFoundError: the registry names no default for the task.
        """
        name = self.defaults.get(task)
        if not name:
            raise NotFoundError(f"the model registry names no default model for task {task!r}")
        return self.get(name)

    def default_if_available(self, task: str) -> str | None:
        """The task's default model name when its weights are present, else None."""
        name = self.defaults.get(task)
        return name if name and name in self._specs and self._specs[name].available else None

    def resolve(self, name: str, task: str) -> ModelSpec:
        """``name`` (or the task's default when empty), checked to be a model for ``task``."""
        spec = self.default(task) if not name else self.get(name)
        if spec.task != task:
            raise NotFoundError(f"model {spec.name!r} is a {spec.task} model, not a {task} model")
        return spec

    def list(self, task: str = "") -> list[ModelSpec]:
        """All entries, optionally only those of one task."""
        return [s for s in self._specs.values() if not task or s.task == task]


def _parse_entry(entry: object, index: int, base: Path) -> ModelSpec:
    if not isinstance(entry, dict):
        raise InvalidInputError(f"model registry entry {index}: expected a mapping, got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"model registry entry {index}: missing 'name'")
    task = entry.get("task")
    if task not in TASKS:
        raise InvalidInputError(f"model {name!r}: task must be one of {TASKS}, got {task!r}")
    weights_field = entry.get("weights")
    arch = entry.get("arch")
    if weights_field is None and arch is None:
        raise InvalidInputError(f"model {name!r}: needs 'weights' or 'arch'")
    weights = None
    if weights_field is not None:
        weights = Path(str(weights_field))
        if not weights.is_absolute():
            weights = _find_weights(weights, base)
    classes = entry.get("classes") or ()
    if isinstance(classes, str):
        classes = (classes,)
    known = {"name", "task", "weights", "arch", "classes", "imgsz", "license", "description", "how_to_get"}
    return ModelSpec(
        name=name,
        task=str(task),
        weights=weights,
        arch=str(arch) if arch is not None else None,
        classes=tuple(str(c) for c in classes),
        imgsz=int(entry.get("imgsz", 640)),
        license=str(entry.get("license", "")),
        description=str(entry.get("description", "")),
        how_to_get=str(entry.get("how_to_get", "")),
        extra={k: v for k, v in entry.items() if k not in known},
    )


def _find_weights(rel: Path, base: Path) -> Path:
    """Resolve a relative weights path: against the registry folder, the repository root, then the working dir."""
    for root in (base, base.parent, Path.cwd()):
        candidate = (root / rel).resolve()
        if candidate.is_file():
            return candidate
    return (base / rel).resolve()
