"""Model registry parsing and lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from prelabel.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from prelabel.registry import ModelRegistry

REPO = Path(__file__).resolve().parents[1]


def test_shipped_registry_loads_and_resolves_defaults() -> None:
    reg = ModelRegistry.load(REPO / "models" / "registry.yaml")
    assert reg.resolve("", "detect").task == "detect"
    assert reg.get("arch-yolo11n").available
    with pytest.raises(NotFoundError, match="unknown model"):
        reg.get("nope")
    with pytest.raises(NotFoundError, match="not a pose model"):
        reg.resolve("arch-yolo11n", "pose")


def test_missing_weights_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "registry.yaml").write_text(
        "models:\n  - {name: m, task: detect, weights: m.pt, how_to_get: copy it from the release page}\n"
    )
    reg = ModelRegistry.load(tmp_path / "registry.yaml")
    with pytest.raises(FailedPreconditionError, match=r"m\.pt.*copy it from the release page"):
        reg.get("m").require_available()


@pytest.mark.parametrize(
    "body, match",
    [
        ("models: 3\n", "models"),
        ("models:\n  - {task: detect, arch: a.yaml}\n", "missing 'name'"),
        ("models:\n  - {name: a, task: segment, arch: a.yaml}\n", "task must be"),
        ("models:\n  - {name: a, task: detect}\n", "needs 'weights' or 'arch'"),
        ("models:\n  - {name: a, task: detect, arch: x}\n  - {name: a, task: detect, arch: y}\n", "duplicate"),
    ],
)
def test_malformed_registry(tmp_path: Path, body: str, match: str) -> None:
    (tmp_path / "registry.yaml").write_text(body)
    with pytest.raises(InvalidInputError, match=match):
        ModelRegistry.load(tmp_path / "registry.yaml")
