"""Fixtures for the format tests."""

from __future__ import annotations

import pytest
from formats_fixtures import make_annotations

from prelabel.formats.model import Annotations


@pytest.fixture()
def annotations() -> Annotations:
    """The hand-made Annotations (fresh per test)."""
    return make_annotations()
