"""Protobuf messages <-> prelabel types for boxes, skeletons and detections: what the client and the servicers
both convert (this module imports numpy, prelabel's types and the generated messages only, so the client stays
light)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.types import NUM_KEYPOINTS, Detections, Keyframe, Skeleton
from prelabel.v1 import prelabel_pb2 as pb


def box_to_proto(xyxy: np.ndarray) -> pb.Box:
    """(4,) xyxy -> Box."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return pb.Box(x1=x1, y1=y1, x2=x2, y2=y2)


def box_from_proto(box: pb.Box) -> np.ndarray:
    """Box -> (4,) float32 xyxy."""
    return np.array([box.x1, box.y1, box.x2, box.y2], dtype=np.float32)


MAX_CLASS_ID = 65_535  # class ids index a names table: far more classes than any detector has


@lru_cache(maxsize=64)
def _class_names(named: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
    """The names table for ``(class id, name)`` pairs, ids without a name as text; shared by the frames of a request
    (a table per frame would cost its size per frame)."""
    by_id = dict(named)
    return tuple(by_id.get(i, str(i)) for i in range(max(by_id) + 1))


def detections_from_proto(items: Sequence[pb.Detection], where: str) -> Detections:
    """Detection messages (a client's, or a server's answer) -> :class:`Detections` (validated: NaN, negative size,
    a class id outside 0..``MAX_CLASS_ID`` -> InvalidInputError naming ``where``)."""
    if not items:
        return Detections.empty()
    xyxy = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in items], dtype=np.float32)
    scores = np.array([d.score for d in items], dtype=np.float32)
    classes = np.array([d.class_id for d in items], dtype=np.int64)
    bad = np.flatnonzero((classes < 0) | (classes > MAX_CLASS_ID))
    if len(bad):
        raise InvalidInputError(
            f"{where}: detection {int(bad[0])}: class_id {int(classes[bad[0]])} outside 0..{MAX_CLASS_ID}"
        )
    names_by_id = {d.class_id: d.class_name for d in items if d.class_name}
    names = _class_names(tuple(sorted(names_by_id.items()))) if names_by_id else ()
    try:
        return Detections(xyxy, scores, classes, names)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc


def skeleton_to_proto(sk: Skeleton, xyxy: np.ndarray | None = None) -> pb.Skeleton:
    """Skeleton -> proto (a missing keypoint has present=false and zero coordinates)."""
    msg = pb.Skeleton(score=float(sk.score))
    for (x, y, c), present in zip(sk.keypoints, sk.present, strict=True):
        msg.keypoints.append(pb.Keypoint(x=float(x), y=float(y), confidence=float(c), present=bool(present)))
    if xyxy is not None:
        msg.box.CopyFrom(box_to_proto(xyxy))
    return msg


def keyframe_to_proto(kf: Keyframe) -> pb.Keyframe:
    """Keyframe -> proto (``has_box`` / ``has_skeleton`` say which it holds)."""
    msg = pb.Keyframe(frame_idx=int(kf.frame_idx), outside=bool(kf.outside))
    if kf.xyxy is not None:
        msg.box.CopyFrom(box_to_proto(kf.xyxy))
        msg.has_box = True
    if kf.skeleton is not None:
        msg.skeleton.CopyFrom(skeleton_to_proto(kf.skeleton))
        msg.has_skeleton = True
    return msg


def skeleton_from_proto(msg: pb.Skeleton, where: str) -> Skeleton:
    """Proto -> Skeleton; requires exactly 17 keypoints."""
    if len(msg.keypoints) != NUM_KEYPOINTS:
        raise InvalidInputError(
            f"{where}: skeleton needs {NUM_KEYPOINTS} keypoints (COCO-17), got {len(msg.keypoints)}"
        )
    kp = np.array([[k.x, k.y, k.confidence] for k in msg.keypoints], dtype=np.float32)
    present = np.array([k.present for k in msg.keypoints], dtype=bool)
    try:
        return Skeleton(kp, present, float(msg.score))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
