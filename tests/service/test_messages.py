"""Detection messages from clients: class names cost what the client sent, whatever the ids."""

from __future__ import annotations

import tracemalloc

import pytest

from prelabel.errors import InvalidInputError
from prelabel.service.messages import MAX_CLASS_ID, detections_from_proto
from prelabel.v1 import prelabel_pb2 as pb


def _det(class_id: int, name: str) -> pb.Detection:
    return pb.Detection(box=pb.Box(x1=1, y1=1, x2=10, y2=20), score=0.9, class_id=class_id, class_name=name)


def test_class_names_of_high_ids_are_looked_up_not_tabulated() -> None:
    dets = detections_from_proto([_det(MAX_CLASS_ID, "kite"), _det(2, "")], "frame 0")
    assert dets.class_name(0) == "kite" and dets.class_name(1) == "2"
    assert len(dets.class_names) == MAX_CLASS_ID + 1 and dets.class_names[7] == "7"
    # 200 frames, each naming the highest id differently: a dense table each would be 65,536 strings per frame.
    cache: dict = {}
    tracemalloc.start()
    held = [detections_from_proto([_det(MAX_CLASS_ID, f"name {i}")], f"frame {i}", cache) for i in range(200)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(held) == 200 and peak < 5_000_000
    with pytest.raises(InvalidInputError, match=r"frame 3: detection 0: class_id 65536 outside 0\.\.65535"):
        detections_from_proto([_det(MAX_CLASS_ID + 1, "x")], "frame 3")
