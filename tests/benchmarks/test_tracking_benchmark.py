"""benchmarks/tracking.py: its options and a user's own MOTChallenge sequence."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from benchmark_loader import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("tracking")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--sets", "bogus"], "unknown set(s) ['bogus']"),
        (["--sets", "occlusion", "--seeds", "0"], "expected a whole number >= 1"),
    ],
)
def test_bad_options_are_refused(
    bench: ModuleType, args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown set had written an empty report with exit 0; --seeds 0 crashed with an IndexError."""
    with pytest.raises(SystemExit) as exit_:
        bench.main([*args, "--out", str(tmp_path)])
    assert exit_.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "tracking.json").exists()


def test_nothing_to_run_and_an_incomplete_sequence_are_errors(bench: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no set ran"):
        bench.main(["--sets", "--out", str(tmp_path)])
    (tmp_path / "seq" / "gt").mkdir(parents=True)
    with pytest.raises(SystemExit, match=r"--mot .*seq: no seqinfo.ini, gt/gt.txt, det/det.txt"):
        bench.main(["--sets", "--mot", str(tmp_path / "seq"), "--out", str(tmp_path)])


def test_own_sequence_is_scored(bench: ModuleType, tmp_path: Path) -> None:
    """A user's sequence (two people walking, detections = ground truth) scored beside the baselines."""
    pytest.importorskip("boxmot")
    seq = tmp_path / "walk"
    (seq / "gt").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "seqinfo.ini").write_text("[Sequence]\nframeRate=10\nseqLength=40\nimWidth=320\nimHeight=240\n")
    gt, det = [], []
    for f in range(1, 41):
        for tid, x in ((1, 10 + 3 * f), (2, 250 - 3 * f)):
            gt.append(f"{f},{tid},{x},60,30,80,1,1,1")
            det.append(f"{f},-1,{x},60,30,80,0.9")
    (seq / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    (seq / "det" / "det.txt").write_text("\n".join(det) + "\n")
    assert bench.main(["--sets", "--mot", str(seq), "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "tracking.json").read_text())
    assert list(doc["sets"]) == ["custom/walk"] and doc["generated_seeds"] == []
    assert np.isclose(doc["sets"]["custom/walk"]["prelabel"]["idf1"], 1.0, atol=0.05)
