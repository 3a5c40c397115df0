"""Shared fixtures: paths to the optional real data in ../shared/data, skipping cleanly where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data not available: {sub} is absent from ../shared/data")
    return path


@pytest.fixture(scope="session")
def pets09_dir() -> Path:
    """PETS09-S2L1 (video.avi, gt/gt.txt, det/det.txt), or skip."""
    return _shared("pets09-s2l1")


@pytest.fixture(scope="session")
def mot15_dir() -> Path:
    """MOT15 sequences without frames (gt and det), or skip."""
    return _shared("mot15")
