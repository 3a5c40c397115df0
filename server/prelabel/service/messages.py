"""Protobuf messages <-> prelabel types for boxes, skeletons and detections: what the client and the servicers
both convert (this module imports numpy, prelabel's types and the generated messages only, so the client stays
light)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import overload

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


class ClassNames(Sequence[str]):
    """A names table for the ids a client named: ``names[i]`` is id ``i``'s name, or the id as text; it holds only the
    names given, however high the ids (a dense table for id 65535 would cost 65,536 strings per frame)."""

    def __init__(self, named: Mapping[int, str]) -> None:
        self._named = dict(named)
        self._len = max(self._named) + 1 if self._named else 0

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        if not -self._len <= i < self._len:
            raise IndexError(i)
        i %= self._len
        return self._named.get(i, str(i))


def detections_from_proto(
    items: Sequence[pb.Detection], where: str, names_cache: dict[tuple[tuple[int, str], ...], ClassNames] | None = None
) -> Detections:
    """Detection messages (a client's, or a server's answer) -> :class:`Detections` (validated: NaN, negative size,
    a class id outside 0..``MAX_CLASS_ID`` -> InvalidInputError naming ``where``). ``names_cache``: one per request,
    so that its frames share their names tables."""
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
    names: Sequence[str] = ()
    if names_by_id:
        key = tuple(sorted(names_by_id.items()))
        cached = names_cache.get(key) if names_cache is not None else None
        names = cached if cached is not None else ClassNames(names_by_id)
        if names_cache is not None and cached is None:
            names_cache[key] = names
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
