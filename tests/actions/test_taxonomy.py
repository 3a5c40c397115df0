"""Taxonomy loading, validation errors and overlap rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prelabel.actions.taxonomy import Taxonomy, default_taxonomy
from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.types import Segment


def test_default_taxonomy_covers_generator_actions_and_layers() -> None:
    tax = default_taxonomy()
    assert set(tax.names) == {"stand", "walk", "run", "jump", "squat", "bend", "fall", "wave"}
    assert tax.layers() == [("stand", "walk", "run", "jump", "squat", "bend", "fall"), ("wave",)]
    assert tax.may_overlap("walk", "wave") and tax.may_overlap("wave", "walk")
    assert not tax.may_overlap("fall", "wave") and not tax.may_overlap("squat", "bend")
    for c in tax.classes:
        assert c.definition and c.include and c.exclude and c.min_duration_ms > 0
    assert tax.get("walk").min_frames(25.0) == 10


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    tax = default_taxonomy()
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(tax.to_dict()))
    assert Taxonomy.load(path) == tax


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        ([{"name": "a", "definition": "x"}, {"name": "a", "definition": "y"}], "'a' is defined twice"),
        (
            [{"name": "a", "definition": "x", "overlaps_with": ["zzz"]}],
            r"'a' overlaps_with unknown class\(es\) \['zzz'\]",
        ),
        ([{"name": "a", "definition": ""}], "'a': 'definition' must be a non-empty string"),
        ([{"name": "a", "definition": "x", "min_duration_ms": -1}], "'min_duration_ms' must be a number >= 0, got -1"),
        ([{"name": "a", "definition": "x", "colour": "red"}], r"unknown field\(s\) \['colour'\]"),
        ([{"definition": "x"}], "class 0: 'name' must be a non-empty string"),
        ([], "non-empty 'classes' list"),
    ],
)
def test_invalid_taxonomy_names_the_problem(classes: list[dict[str, object]], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Taxonomy.from_dict({"name": "t", "classes": classes})


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        Taxonomy.load(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [unclosed")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        Taxonomy.load(bad)


def test_validate_segments_rejects_forbidden_overlap_and_unknown_label() -> None:
    tax = default_taxonomy()
    tax.validate_segments([Segment(1, "walk", 0, 20), Segment(1, "wave", 5, 12), Segment(2, "fall", 0, 5)])
    with pytest.raises(InvalidInputError, match=r"track 1: segment 'wave' \[15, 30\] overlaps 'fall' \[10, 20\]"):
        tax.validate_segments([Segment(1, "fall", 10, 20), Segment(1, "wave", 15, 30)])
    with pytest.raises(InvalidInputError, match="unknown action label 'dance'"):
        tax.validate_segments([Segment(1, "dance", 0, 5)])
