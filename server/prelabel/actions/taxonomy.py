"""Action taxonomy: classes with annotator rules, minimum durations and which classes may overlap.

The YAML format (see ``taxonomy.yaml`` next to this module, the default)::

    name: default
    version: 1
    classes:
      - name: wave
        definition: ...            # one sentence for annotators
        include: [...]             # what counts
        exclude: [...]             # what does not
        min_duration_ms: 400       # shorter proposals are merged into a neighbour
        overlaps_with: [walk]      # classes it may co-occur with; every other pair excludes each other

Overlap is symmetric: listing ``wave`` under ``walk`` or ``walk`` under ``wave`` is the same. Classes that exclude
each other are grouped into *layers* (see :meth:`Taxonomy.layers`): the first layer labels every frame of a track,
later layers only the frames where their action happens.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.types import Segment

log = logging.getLogger(__name__)

_CLASS_KEYS = {"name", "definition", "include", "exclude", "min_duration_ms", "overlaps_with"}


@dataclass(frozen=True)
class ActionClass:
    """One action class.

    Attributes:
        name: label text (lower-case identifier).
        definition: one sentence for annotators.
        include, exclude: annotator rules: what counts as this class and what does not.
        min_duration_ms: shortest valid segment, in milliseconds.
        overlaps_with: classes this one may co-occur with.
    """

    name: str
    definition: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_duration_ms: float = 0.0
    overlaps_with: frozenset[str] = field(default_factory=frozenset)

    def min_frames(self, fps: float) -> int:
        """Minimum duration in frames at ``fps`` (at least 1)."""
        return max(1, round(self.min_duration_ms * fps / 1000.0))


@dataclass(frozen=True)
class Taxonomy:
    """A validated set of action classes (build with :meth:`from_dict`, :meth:`load` or :func:`default_taxonomy`)."""

    name: str
    classes: tuple[ActionClass, ...]
    version: int = 1

    def __post_init__(self) -> None:
        if not self.classes:
            raise InvalidInputError(f"taxonomy {self.name!r}: expected at least one class, got none")
        seen: set[str] = set()
        for c in self.classes:
            if c.name in seen:
                raise InvalidInputError(f"taxonomy {self.name!r}: class {c.name!r} is defined twice")
            seen.add(c.name)
        for c in self.classes:
            unknown = sorted(c.overlaps_with - seen)
            if unknown:
                raise InvalidInputError(
                    f"taxonomy {self.name!r}: class {c.name!r} overlaps_with unknown class(es) {unknown}; "
                    f"known: {sorted(seen)}"
                )
            if c.name in c.overlaps_with:
                raise InvalidInputError(f"taxonomy {self.name!r}: class {c.name!r} lists itself in overlaps_with")

    @property
    def names(self) -> tuple[str, ...]:
        """Class names in file order."""
        return tuple(c.name for c in self.classes)

    def get(self, name: str) -> ActionClass:
        """The class called ``name``.

        Raises:
            InvalidInputError: unknown label (names the label and the known ones).
        """
        for c in self.classes:
            if c.name == name:
                return c
        raise InvalidInputError(f"unknown action label {name!r}; taxonomy {self.name!r} has {list(self.names)}")

    def may_overlap(self, a: str, b: str) -> bool:
        """True when labels ``a`` and ``b`` may cover the same frame of one track."""
        ca, cb = self.get(a), self.get(b)
        return b in ca.overlaps_with or a in cb.overlaps_with

    def layers(self) -> list[tuple[str, ...]]:
        """Classes grouped so that classes within a layer pairwise exclude each other (greedy, in file order).

        The first layer is the *dense* one: every frame of a track carries one of its labels.
        """
        out: list[list[str]] = []
        for c in self.classes:
            for layer in out:
                if all(not self.may_overlap(c.name, other) for other in layer):
                    layer.append(c.name)
                    break
            else:
                out.append([c.name])
        return [tuple(layer) for layer in out]

    def validate_segments(self, segments: Iterable[Segment]) -> None:
        """Check labels are known and that no two segments of a track overlap when their classes exclude each other.

        Raises:
            InvalidInputError: naming the track, labels and frames of the first problem.
        """
        by_track: dict[int, list[Segment]] = {}
        for s in segments:
            self.get(s.label)
            by_track.setdefault(s.track_id, []).append(s)
        for tid, segs in by_track.items():
            segs.sort(key=lambda s: (s.start_frame, s.end_frame))
            for i, a in enumerate(segs):
                for b in segs[i + 1 :]:
                    if b.start_frame > a.end_frame:
                        break
                    if a.label == b.label or not self.may_overlap(a.label, b.label):
                        raise InvalidInputError(
                            f"track {tid}: segment {b.label!r} [{b.start_frame}, {b.end_frame}] overlaps "
                            f"{a.label!r} [{a.start_frame}, {a.end_frame}]; taxonomy {self.name!r} forbids "
                            "that overlap"
                        )

    @classmethod
    def from_dict(cls, data: Any, source: str = "taxonomy") -> Taxonomy:
        """Build and validate from parsed YAML/JSON.

        Raises:
            InvalidInputError: naming the offending class and field, with expected vs actual.
        """
        if not isinstance(data, dict):
            raise InvalidInputError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
        raw = data.get("classes")
        if not isinstance(raw, list) or not raw:
            raise InvalidInputError(f"{source}: expected a non-empty 'classes' list, got {raw!r}")
        classes = [_parse_class(entry, i, source) for i, entry in enumerate(raw)]
        version = data.get("version", 1)
        if not isinstance(version, int):
            raise InvalidInputError(f"{source}: 'version' must be an integer, got {version!r}")
        return cls(name=str(data.get("name", source)), classes=tuple(classes), version=version)

    @classmethod
    def load(cls, path: Path) -> Taxonomy:
        """Read a taxonomy YAML file.

        Raises:
            NotFoundError: the file does not exist.
            InvalidInputError: the file is not valid YAML or fails validation.
        """
        if not path.is_file():
            raise NotFoundError(f"taxonomy file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"taxonomy {path}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, source=str(path.name))

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (round-trips through :meth:`from_dict`)."""
        return {
            "name": self.name,
            "version": self.version,
            "classes": [
                {
                    "name": c.name,
                    "definition": c.definition,
                    "include": list(c.include),
                    "exclude": list(c.exclude),
                    "min_duration_ms": c.min_duration_ms,
                    "overlaps_with": sorted(c.overlaps_with),
                }
                for c in self.classes
            ],
        }


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _parse_class(entry: Any, index: int, source: str) -> ActionClass:
    if not isinstance(entry, dict):
        raise InvalidInputError(f"{source}: class {index}: expected a mapping, got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{source}: class {index}: 'name' must be a non-empty string, got {name!r}")
    where = f"{source}: class {name!r}"
    unknown = sorted(set(entry) - _CLASS_KEYS)
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {unknown}; expected among {sorted(_CLASS_KEYS)}")
    definition = entry.get("definition")
    if not isinstance(definition, str) or not definition.strip():
        raise InvalidInputError(f"{where}: 'definition' must be a non-empty string, got {definition!r}")
    dur = entry.get("min_duration_ms", 0)
    if isinstance(dur, bool) or not isinstance(dur, int | float) or dur < 0:
        raise InvalidInputError(f"{where}: 'min_duration_ms' must be a number >= 0, got {dur!r}")
    return ActionClass(
        name=name,
        definition=definition.strip(),
        include=_str_list(entry.get("include"), f"{where}: 'include'"),
        exclude=_str_list(entry.get("exclude"), f"{where}: 'exclude'"),
        min_duration_ms=float(dur),
        overlaps_with=frozenset(_str_list(entry.get("overlaps_with"), f"{where}: 'overlaps_with'")),
    )


def default_taxonomy() -> Taxonomy:
    """The taxonomy shipped with the package (stand, walk, run, jump, squat, bend, fall, wave)."""
    text = resources.files("prelabel.actions").joinpath("taxonomy.yaml").read_text()
    return Taxonomy.from_dict(yaml.safe_load(text), source="default taxonomy")


def check_labels(labels: Sequence[str], taxonomy: Taxonomy, where: str) -> None:
    """Raise :class:`InvalidInputError` naming ``where`` when a label is not in ``taxonomy``."""
    known = set(taxonomy.names)
    for lab in labels:
        if lab not in known:
            raise InvalidInputError(f"{where}: unknown action label {lab!r}; taxonomy has {list(taxonomy.names)}")
