"""The README's main job, end to end on a short clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prelabel.demo import run_demo


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(tmp_path, seed=3, frames=24) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    for rel in summary["files"].values():
        assert (tmp_path / rel).stat().st_size > 0
    assert summary["frames"] == 24
    assert summary["proposals"]["person_tracks"] >= 1  # the shipped detector finds people in a generated clip
    assert 0.0 <= summary["tracking"]["hota"] <= 1.0
    assert summary["segments_from_ground_truth_skeletons"]["f1@50"] is not None
