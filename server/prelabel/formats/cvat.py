"""CVAT for video 1.1 XML: tracks as keyframes, skeleton tracks, and action segments as checkbox attributes.

The layout follows what CVAT's own "CVAT for video 1.1" dumper writes (``cvat/apps/dataset_manager/formats/cvat.py``):

- one ``<track id label source group_id>`` per box track, with ``<box frame keyframe outside occluded xtl ytl xbr ybr
  z_order>`` shapes; only keyframes are written (CVAT's importer keeps only ``keyframe="1"`` shapes anyway) and an
  ``outside="1"`` shape starts every gap and follows the last box, unless the last box is on the video's last frame;
- a second track per skeleton-bearing object, of a label of type ``skeleton``, with ``<skeleton frame keyframe
  z_order>`` shapes holding one ``<points label="nose" keyframe outside occluded points="x,y">`` element per COCO-17
  keypoint (``outside="1"`` marks a missing keypoint; every element outside marks "no skeleton from here"); its
  keyframes are chosen on their own (``"auto"``: :func:`~prelabel.interpolate.compress_skeletons`, every keypoint
  rebuilt within ``max_keypoint_error`` of the box's longer side), so a skeleton swinging its limbs inside a box that
  moves straight keeps its keyframes and a still one does not get one per frame;
- CVAT for video has no per-track tags, so each action label is a mutable ``checkbox`` attribute of the object's
  label, ``true`` while a segment of that track is active (CVAT holds a mutable attribute's value from one keyframe to
  the next, so segment boundaries are written as keyframes);
- the box track and the skeleton track of one object share ``group_id`` = the prelabel track id, which is how the
  importer puts them back together.

:func:`patch_cvat` fills in the tracks of an annotator's own file instead (``prelabel interpolate``): their keyframe
shapes, attributes, tags and everything else stay as the annotator made them.

Coordinates are 0-based frames and pixels (CVAT writes two decimals). Parsing goes through defusedxml with DTDs
forbidden, so entity expansion and external entities are refused with :class:`~prelabel.errors.InvalidInputError`.
CVAT has no place for scores, keypoint confidences or timestamps: importers give them 1.0 / ``ts_ms`` from ``info``.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Comment, Element, ElementTree, ParseError, TreeBuilder
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

import defusedxml.ElementTree as DefusedET
import numpy as np
import numpy.typing as npt
from defusedxml import DefusedXmlException

from prelabel.errors import InvalidInputError
from prelabel.formats.keyframes import (
    AUTO,
    KeyframeReducer,
    compression_reducer,
    densify,
    keyframe_frames,
    resolve_reducer,
    skeleton_compression_reducer,
)
from prelabel.formats.model import Annotations, KeyframeTrack, frame_runs, segment_runs
from prelabel.types import (
    COCO17_EDGES,
    COCO17_KEYPOINTS,
    MAX_TRACK_FRAMES,
    NUM_KEYPOINTS,
    Keyframe,
    Segment,
    Skeleton,
    Source,
    Track,
)
from prelabel.types import VideoInfo as _VideoInfo

logger = logging.getLogger(__name__)

CVAT_VERSION = "1.1"
SKELETON_SUFFIX = "-skeleton"
_KEYPOINT_INDEX = {name: i for i, name in enumerate(COCO17_KEYPOINTS)}  # a skeleton element's label -> keypoint
# Attribute names CVAT reserves for itself; an action label may not take one of them.
CVAT_RESERVED = frozenset({"occluded", "outside", "keyframe", "track_id", "rotation"})
# Node positions (0..100) of the skeleton template CVAT draws when it creates the label from this file.
_TEMPLATE_XY: tuple[tuple[float, float], ...] = (
    (50, 10), (47, 8), (53, 8), (44, 10), (56, 10), (40, 25), (60, 25), (35, 40), (65, 40), (32, 55), (68, 55),
    (44, 55), (56, 55), (43, 75), (57, 75), (42, 95), (58, 95),
)  # fmt: skip


@dataclass(frozen=True)
class CvatOptions:
    """Export choices.

    Attributes:
        keyframe_reducer: picks each track's keyframes (box and skeleton tracks alike); None keeps every observed
            frame; ``"auto"`` uses prelabel's keyframe compression when available (else every observed frame), for
            boxes within ``min_iou`` and for skeletons within ``max_keypoint_error``.
        min_iou: with ``"auto"``, the least IoU of a box CVAT interpolates with the track's.
        max_keypoint_error: with ``"auto"``, how far a keypoint CVAT interpolates may be from the track's, as a
            fraction of the box's longer side (0.05: PCK@0.05 holds on every keypoint), before CVAT's rounding to
            two decimals (at most 0.01 pixels more).
        skeleton_suffix: the skeleton label is the object's label plus this suffix (CVAT label names are unique and a
            skeleton label cannot hold boxes).
        source: CVAT's ``source`` of the tracks ("auto" for machine proposals, "manual", "semi-auto", "file").
    """

    keyframe_reducer: KeyframeReducer | str | None = AUTO
    min_iou: float = 0.9
    max_keypoint_error: float = 0.05
    skeleton_suffix: str = SKELETON_SUFFIX
    source: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 < self.max_keypoint_error < float("inf"):  # NaN fails too
            raise InvalidInputError(f"CVAT options: max_keypoint_error must be above 0, got {self.max_keypoint_error}")
        if not 0.0 < self.min_iou <= 1.0:
            raise InvalidInputError(f"CVAT options: min_iou must be in (0, 1], got {self.min_iou}")


# ---------------------------------------------------------------------------------------------------- writing


class _Writer:
    """Indented SAX writer, the way CVAT's own dumper lays the file out."""

    def __init__(self, fh: Any) -> None:
        self._gen = XMLGenerator(fh, "utf-8")
        self._level = 0

    def _indent(self) -> None:
        self._gen.ignorableWhitespace("\n" + "  " * self._level)

    def open(self, tag: str, attrs: dict[str, str] | None = None) -> None:
        self._indent()
        self._gen.startElement(tag, AttributesImpl(attrs or {}))
        self._level += 1

    def close(self, tag: str, inline: bool = False) -> None:
        self._level -= 1
        if not inline:
            self._indent()
        self._gen.endElement(tag)

    def leaf(self, tag: str, text: str, attrs: dict[str, str] | None = None) -> None:
        self._indent()
        self._gen.startElement(tag, AttributesImpl(attrs or {}))
        self._gen.characters(text)
        self._gen.endElement(tag)

    def start_document(self) -> None:
        self._gen.startDocument()

    def end_document(self) -> None:
        self._gen.ignorableWhitespace("\n")
        self._gen.endDocument()


def _f2(v: float) -> str:
    return f"{float(v):.2f}"


def _skeleton_svg() -> str:
    parts = []
    for a, b in COCO17_EDGES:
        (x1, y1), (x2, y2) = _TEMPLATE_XY[a], _TEMPLATE_XY[b]
        parts.append(
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="black" data-type="edge" '
            f'data-node-from="{a + 1}" stroke-width="0.5" data-node-to="{b + 1}"></line>'
        )
    for i, name in enumerate(COCO17_KEYPOINTS):
        x, y = _TEMPLATE_XY[i]
        parts.append(
            f'<circle r="1.5" stroke="black" fill="#b3b3b3" cx="{x}" cy="{y}" stroke-width="0.1" '
            f'data-type="element node" data-element-id="{i + 1}" data-node-id="{i + 1}" '
            f'data-label-name="{name}"></circle>'
        )
    return "".join(parts)


def _write_labels(w: _Writer, labels: Iterable[str], skeleton_labels: Iterable[str], actions: tuple[str, ...]) -> None:
    w.open("labels")
    for name in labels:
        w.open("label")
        w.leaf("name", name)
        w.leaf("type", "rectangle")
        w.open("attributes")
        for action in actions:
            w.open("attribute")
            w.leaf("name", action)
            w.leaf("mutable", "True")
            w.leaf("input_type", "checkbox")
            w.leaf("default_value", "false")
            w.leaf("values", "false")
            w.close("attribute")
        w.close("attributes")
        w.close("label")
    for name in skeleton_labels:
        w.open("label")
        w.leaf("name", name)
        w.leaf("type", "skeleton")
        w.leaf("attributes", "")
        w.leaf("svg", _skeleton_svg())
        w.close("label")
        for kp in COCO17_KEYPOINTS:
            w.open("label")
            w.leaf("name", kp)
            w.leaf("type", "points")
            w.leaf("attributes", "")
            w.leaf("parent", name)
            w.close("label")
    w.close("labels")


def _action_mask(segments: list[Segment], label: str, start: int, stop: int) -> np.ndarray:
    """(stop - start,) bool: frames of [start, stop) inside a segment with ``label``."""
    mask = np.zeros(max(stop - start, 0), dtype=bool)
    for s in segments:
        if s.label == label:
            a, b = max(s.start_frame, start), min(s.end_frame, stop - 1)
            if a <= b:
                mask[a - start : b - start + 1] = True
    return mask


def _box_shapes(
    track: Track,
    segments: list[Segment],
    actions: tuple[str, ...],
    num_frames: int,
    reducer: KeyframeReducer | None,
    min_iou: float | None = None,
) -> list[tuple[int, bool, np.ndarray, dict[str, bool]]]:
    """(frame, outside, xyxy, action flags) for every shape of a box track, in frame order. With ``min_iou`` (the
    ``"auto"`` reducer), the track is compressed piece by piece between its segment boundaries, which CVAT needs as
    keyframes: a boundary added to a compressed track afterwards would bend CVAT's line past the tolerance."""
    frames = track.frames
    first, last = int(frames[0]), int(frames[-1])
    end = last + 1 if num_frames <= 0 or last + 1 < num_frames else last  # frame of the closing outside shape
    clipped = []
    for s in segments:
        a, b = max(s.start_frame, first), min(s.end_frame, last)
        if (a, b) != (s.start_frame, s.end_frame):
            logger.warning(
                "track %d: segment %r %d..%d clipped to the track's frames %d..%d",
                track.track_id,
                s.label,
                s.start_frame,
                s.end_frame,
                first,
                last,
            )
        if a <= b:
            clipped.append(Segment(s.track_id, s.label, a, b))
    boundaries = {s.start_frame for s in clipped} | {s.end_frame + 1 for s in clipped}
    if min_iou is not None:
        reducer = compression_reducer(min_iou, pinned={track.track_id: boundaries})
    observed = set(frames.tolist())
    keys = set(keyframe_frames(track, reducer, boundaries))
    gap_starts = {b[1] + 1 for b in frame_runs(frames)}
    outside = {f for f in gap_starts if f <= end and f not in observed}
    outside |= {f for f in boundaries if first <= f <= end and f not in observed}
    if end == last:
        outside.discard(last + 1)
    masks = {a: _action_mask(clipped, a, first, end + 1) for a in actions}
    shapes = []
    prev_xyxy = track.boxes[0].xyxy
    for f in sorted(keys | outside):
        box = track.at(f)
        if box is not None:
            prev_xyxy = box.xyxy
        flags = {a: bool(masks[a][f - first]) if f - first < len(masks[a]) else False for a in actions}
        shapes.append((f, box is None, prev_xyxy, flags))
    return shapes


def _skeleton_shapes(
    track: Track, num_frames: int, reducer: KeyframeReducer | None
) -> list[tuple[int, Skeleton | None]]:
    """(frame, skeleton or None for "no skeleton from here") for a skeleton track; empty when the track has none.
    Keyframes: the reducer's frames (None: every frame) and the first and last frame of each run with a skeleton."""
    with_skel = [b.frame_idx for b in track.boxes if b.skeleton is not None and b.skeleton.present.any()]
    if not with_skel:
        return []
    keep = None if reducer is None else {int(f) for f in reducer(track)}
    out: list[tuple[int, Skeleton | None]] = []
    for a, b in frame_runs(np.asarray(with_skel, dtype=np.int64)):
        for f in range(a, b + 1):
            if keep is not None and f not in keep and f not in (a, b):
                continue
            box = track.at(f)
            assert box is not None and box.skeleton is not None
            out.append((f, box.skeleton))
        if num_frames <= 0 or b + 1 < num_frames:
            out.append((b + 1, None))
    return out


def write_cvat(annotations: Annotations, path: Path, options: CvatOptions | None = None) -> Path:
    """Write ``annotations`` as a CVAT for video 1.1 XML file.

    Args:
        annotations: tracks (boxes, optional skeletons) and segments.
        path: the .xml file to write; parent folders are created.
        options: keyframe reducer, skeleton label suffix, track source.

    Returns:
        ``path``.

    Raises:
        InvalidInputError: an action label collides with a CVAT attribute name or an object label.
    """
    opts = options or CvatOptions()
    actions = annotations.all_action_labels()
    bad = [a for a in actions if a in CVAT_RESERVED]
    if bad:
        raise InvalidInputError(f"CVAT export: action label {bad[0]!r} is a reserved CVAT attribute name")
    reducer = resolve_reducer(opts.keyframe_reducer, opts.min_iou)
    skeleton_reducer = (
        skeleton_compression_reducer(opts.max_keypoint_error) if opts.keyframe_reducer == AUTO else reducer
    )
    n = annotations.num_frames
    labels = annotations.all_labels()
    with_skeleton = [t for t in annotations.tracks if any(b.skeleton is not None for b in t.boxes)]
    skel_names = (annotations.class_name(t) + opts.skeleton_suffix for t in with_skeleton)
    skeleton_labels = list(OrderedDict.fromkeys(skel_names))
    clash = set(skeleton_labels) & (set(labels) | set(COCO17_KEYPOINTS))
    if clash:
        raise InvalidInputError(f"CVAT export: skeleton label {sorted(clash)[0]!r} is also an object or keypoint label")
    track_ids = {t.track_id for t in annotations.tracks}
    orphans = [s for s in annotations.segments if s.track_id not in track_ids]
    if orphans:
        logger.warning(
            "CVAT export: %d segments name no exported track (e.g. track %d) and are left out",
            len(orphans),
            orphans[0].track_id,
        )

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        w = _Writer(fh)
        w.start_document()
        w.open("annotations")
        w.leaf("version", CVAT_VERSION)
        w.open("meta")
        w.open("task")
        for key, value in (
            ("id", "0"),
            ("name", annotations.name),
            ("size", str(n)),
            ("mode", "interpolation"),
            ("overlap", "0"),
            ("bugtracker", ""),
            ("flipped", "False"),
            ("start_frame", "0"),
            ("stop_frame", str(max(n - 1, 0))),
            ("frame_filter", ""),
        ):
            w.leaf(key, value)
        _write_labels(w, labels, skeleton_labels, actions)
        w.open("original_size")
        w.leaf("width", str(annotations.info.width))
        w.leaf("height", str(annotations.info.height))
        w.close("original_size")
        w.close("task")
        w.close("meta")

        counter = 0
        for track in sorted(annotations.tracks, key=lambda t: t.track_id):
            if not track.boxes:
                continue
            label = annotations.class_name(track)
            head = {"id": str(counter), "label": label, "source": opts.source, "group_id": str(track.track_id)}
            counter += 1
            w.open("track", head)
            segs = annotations.segments_of(track.track_id)
            auto_iou = opts.min_iou if opts.keyframe_reducer == AUTO and reducer is not None else None
            for f, outside, xyxy, flags in _box_shapes(track, segs, actions, n, reducer, auto_iou):
                w.open("box", {
                    "frame": str(f), "keyframe": "1", "outside": str(int(outside)), "occluded": "0",
                    "xtl": _f2(xyxy[0]), "ytl": _f2(xyxy[1]), "xbr": _f2(xyxy[2]), "ybr": _f2(xyxy[3]),
                    "z_order": "0",
                })  # fmt: skip
                for a in actions:
                    w.leaf("attribute", "true" if flags[a] else "false", {"name": a})
                w.close("box")
            w.close("track")

            skel_shapes = _skeleton_shapes(track, n, skeleton_reducer)
            if not skel_shapes:
                continue
            head = {"id": str(counter), "label": label + opts.skeleton_suffix, "source": opts.source,
                    "group_id": str(track.track_id)}  # fmt: skip
            counter += 1
            w.open("track", head)
            last_xy = np.zeros((NUM_KEYPOINTS, 2), np.float32)
            for f, skel in skel_shapes:
                w.open("skeleton", {"frame": str(f), "keyframe": "1", "z_order": "0"})
                for k, name in enumerate(COCO17_KEYPOINTS):
                    present = skel is not None and bool(skel.present[k])
                    if present and skel is not None:
                        last_xy[k] = skel.keypoints[k, :2]
                    x, y = last_xy[k]
                    w.open("points", {
                        "label": name, "keyframe": "1", "outside": str(int(not present)), "occluded": "0",
                        "points": f"{_f2(x)},{_f2(y)}",
                    })  # fmt: skip
                    w.close("points")
                w.close("skeleton")
            w.close("track")
        w.close("annotations")
        w.end_document()
    logger.info("wrote CVAT video XML with %d tracks to %s", counter, path)
    return path


# ---------------------------------------------------------------------------------------------------- reading


def parse_xml_safely(path: Path, comments: bool = False) -> Element:
    """Parse an XML file with DTDs, entity declarations and external references refused (``comments``: kept as
    elements, as :func:`strip_added_keyframes` reads them; dropped otherwise).

    Raises:
        InvalidInputError: the file is not well-formed XML or tries entity expansion / external entities.
        NotFoundError: propagated as OSError subclasses by the caller's open.
    """
    try:
        parser = DefusedET.DefusedXMLParser(
            target=TreeBuilder(insert_comments=comments), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        tree = DefusedET.parse(str(path), parser=parser)
    except DefusedXmlException as exc:
        raise InvalidInputError(f"{Path(path).name}: refused unsafe XML ({type(exc).__name__}: {exc})") from exc
    except ParseError as exc:
        raise InvalidInputError(f"{Path(path).name}: not well-formed XML: {exc}") from exc
    root = tree.getroot()
    if root is None:
        raise InvalidInputError(f"{Path(path).name}: empty XML document")
    return root


def _int_attr(el: Element, name: str, where: str) -> int:
    raw = el.get(name)
    if raw is None:
        raise InvalidInputError(f"{where}: <{el.tag}> is missing attribute {name!r}")
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: <{el.tag}> {name}={raw!r}, expected an integer") from exc


def _frame_attr(el: Element, where: str) -> int:
    f = _int_attr(el, "frame", where)
    if f < 0:
        raise InvalidInputError(f"{where}: <{el.tag}> frame={f}, expected >= 0")
    return f


def _float_attr(el: Element, name: str, where: str) -> float:
    raw = el.get(name)
    if raw is None:
        raise InvalidInputError(f"{where}: <{el.tag}> is missing attribute {name!r}")
    try:
        value = float(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: <{el.tag}> {name}={raw!r}, expected a number") from exc
    if not np.isfinite(value):
        raise InvalidInputError(f"{where}: <{el.tag}> {name}={raw!r} is not finite")
    return value


@dataclass
class _Meta:
    size: int = 0
    width: int = 0
    height: int = 0
    name: str = ""
    start: int = 0  # the task's first video frame (``start_frame``)
    stop: int = -1  # its last (``stop_frame``; -1: not given)
    step: int = 1  # ``frame_filter: step=N``: the task holds every N-th video frame from ``start``
    object_labels: list[str] = field(default_factory=list)
    skeleton_labels: set[str] = field(default_factory=set)
    checkbox_attrs: list[str] = field(default_factory=list)


def _text(el: Element | None, default: str = "") -> str:
    return el.text.strip() if el is not None and el.text is not None else default


def _parse_meta(root: Element) -> _Meta:
    meta = _Meta()
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")
    if task is None:
        task = root.find("meta/project")
    if task is None:
        return meta
    # A task export keeps the frame size in meta/task; a job export beside meta/job.
    size_el = task.find("original_size")
    if size_el is None:
        size_el = root.find("meta/original_size")
    try:
        meta.size = int(_text(task.find("size"), "0") or 0)
        meta.start = int(_text(task.find("start_frame"), "0") or 0)
        stop = _text(task.find("stop_frame"))
        meta.stop = int(stop) if stop else -1
        step = re.search(r"step\s*=\s*(\d+)", _text(task.find("frame_filter")))
        meta.step = max(1, int(step.group(1))) if step else 1
        meta.width = int(_text(size_el.find("width") if size_el is not None else None, "0") or 0)
        meta.height = int(_text(size_el.find("height") if size_el is not None else None, "0") or 0)
    except ValueError as exc:
        raise InvalidInputError(f"CVAT meta: expected integer size, frame range and frame size: {exc}") from exc
    meta.name = _text(task.find("name"))
    parents = {_text(lab.find("parent")) for lab in task.iter("label")}
    for lab in task.iter("label"):
        name = _text(lab.find("name"))
        kind = _text(lab.find("type"))
        if _text(lab.find("parent")):
            continue
        if kind == "skeleton" or name in parents:
            meta.skeleton_labels.add(name)
            continue
        meta.object_labels.append(name)
        for attr in lab.iter("attribute"):
            aname = _text(attr.find("name"))
            if _text(attr.find("input_type")) == "checkbox" and aname not in meta.checkbox_attrs:
                meta.checkbox_attrs.append(aname)
    return meta


@dataclass
class _RawTrack:
    cvat_id: int
    group: int
    label: str
    kind: str  # "box" or "skeleton"
    keyframes: list[Keyframe]
    attrs: list[dict[str, str]]  # per keyframe, the attribute values


def _parse_box_track(el: Element, where: str) -> tuple[list[Keyframe], list[dict[str, str]]]:
    kfs: list[Keyframe] = []
    attrs: list[dict[str, str]] = []
    for shape in el:
        if shape.tag != "box":
            continue
        if shape.get("keyframe", "1") != "1":
            continue
        f = _frame_attr(shape, where)
        xyxy = np.array([_float_attr(shape, k, f"{where} frame {f}") for k in ("xtl", "ytl", "xbr", "ybr")])
        outside = shape.get("outside", "0") == "1"
        try:
            kfs.append(Keyframe(frame_idx=f, xyxy=xyxy, outside=outside))
        except InvalidInputError as exc:  # a box with xbr < xtl or ybr < ytl
            raise InvalidInputError(f"{where} frame {f}: {exc}") from exc
        attrs.append({a.get("name", ""): _text(a) for a in shape.findall("attribute")})
    return kfs, attrs


def _point_xy(pt: Element) -> tuple[float, float] | None:
    """A skeleton element's position (``points="x,y"``; NaN or infinite as written), or None where it is not two
    numbers."""
    try:
        x, y = (float(v) for v in pt.get("points", "").split(";")[0].split(","))
    except ValueError:
        return None
    return x, y


def _parse_skeleton_track(el: Element, where: str, warn: bool = True) -> list[Keyframe]:
    """The keyframes of a skeleton track: its COCO-17 points as skeletons.

    A skeleton with other elements too (a team's own: a hand, an animal; or a head_top beside the 17) also gives, on
    each keyframe where an element shows, the box around all its elements there (shown or hidden, keyed or not: what
    the tool draws of the object), and shows where any element shows: without a box track in its group the object is
    filled as that box, and :func:`patch_cvat` moves those elements with the filled box.
    """
    kfs: list[Keyframe] = []
    unknown: set[str] = set()
    shapes = [s for s in el if s.tag == "skeleton" and s.get("keyframe", "1") == "1"]
    labels = {pt.get("label", "") for s in shapes for pt in s.findall("points")}
    others = any(label not in _KEYPOINT_INDEX for label in labels)
    coco = any(label in _KEYPOINT_INDEX for label in labels)
    for shape in shapes:
        f = _frame_attr(shape, where)
        kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        present = np.zeros(NUM_KEYPOINTS, bool)
        placed = np.zeros(NUM_KEYPOINTS, bool)  # with a position, outside or not
        drawn = []  # every element's position, for the box around the object
        other_shown = False
        for pt in shape.findall("points"):
            k = _KEYPOINT_INDEX.get(pt.get("label", ""))
            raw = pt.get("points", "")
            hidden = pt.get("outside", "0") == "1"
            xy = _point_xy(pt)
            parsed = xy is not None
            x, y = xy if xy is not None else (float("nan"), float("nan"))
            readable = bool(np.isfinite(x) and np.isfinite(y))
            if k is None:
                unknown.add(pt.get("label", ""))
                if readable:  # an unreadable element of the team's own is left as it was written
                    drawn.append((x, y))
                    other_shown |= not hidden
                continue
            if not readable:
                if hidden:
                    continue  # a hidden element's position is only where the skeleton moves toward before it hides
                what = "is not finite" if parsed else "expected 'x,y'"
                raise InvalidInputError(f"{where} frame {f}: keypoint {pt.get('label')!r} points={raw!r} {what}")
            kp[k] = (x, y, 1.0)
            placed[k] = True
            present[k] = not hidden
            drawn.append((x, y))
        if (present.any() or other_shown) and shape.get("outside", "0") != "1":
            kp[~present] = 0.0
            box = None
            if others:
                pts = np.array(drawn)
                box = np.r_[pts.min(axis=0), pts.max(axis=0)]
            # Only elements of the team's own shown: no COCO-17 keypoint from here (none at all in a skeleton of
            # the team's own).
            skeleton = Skeleton(kp, present, 1.0) if present.any() or coco else None
            kfs.append(Keyframe(frame_idx=f, xyxy=box, skeleton=skeleton))
        else:
            # Hidden from here on. CVAT moves the frames before it toward the positions its elements were left at.
            end = Skeleton(np.where(placed[:, None], kp, 0.0), placed, 1.0) if placed.any() else None
            kfs.append(Keyframe(frame_idx=f, skeleton=end, outside=True))
    if unknown and warn:
        logger.warning(
            "%s: skeleton elements %s are not COCO-17 keypoints: a conversion drops them, and prelabel interpolate "
            "moves them with the object's box (the box around all the skeleton's elements where no box track shares "
            "its group_id)",
            where,
            sorted(unknown),
        )
    return kfs


def _sorted_unique(kfs: list[Keyframe], attrs: list[dict[str, str]] | None, where: str) -> None:
    order = sorted(range(len(kfs)), key=lambda i: kfs[i].frame_idx)
    kfs[:] = [kfs[i] for i in order]
    if attrs is not None:
        attrs[:] = [attrs[i] for i in order]
    for a, b in itertools.pairwise(kfs):
        if a.frame_idx == b.frame_idx:
            raise InvalidInputError(f"{where}: two keyframes at frame {a.frame_idx}")


def _assign_ids(raw: list[_RawTrack]) -> list[tuple[int, _RawTrack]]:
    """Object id per raw track: its group_id when set (box and skeleton of one group share it), else a free id."""
    taken: dict[tuple[int, str], int] = {}
    used: set[int] = {r.group for r in raw if r.group > 0}
    out: list[tuple[int, _RawTrack]] = []
    pending: list[_RawTrack] = []
    for r in raw:
        if r.group > 0 and (r.group, r.kind) not in taken:
            taken[(r.group, r.kind)] = r.group
            out.append((r.group, r))
        else:
            pending.append(r)
    for r in pending:
        tid = r.cvat_id + 1
        while tid in used or tid <= 0:
            tid += 1
        used.add(tid)
        out.append((tid, r))
    return out


def _segments_from_attrs(
    tid: int, kfs: list[Keyframe], attrs: list[dict[str, str]], actions: list[str], last_frame: int
) -> list[tuple[str, int, int]]:
    """(label, start, end) of the runs where a checkbox attribute is true, holding values between keyframes."""
    if not kfs:
        return []
    first = kfs[0].frame_idx
    stop = kfs[-1].frame_idx - 1 if kfs[-1].outside else max(last_frame, kfs[-1].frame_idx)
    if stop < first:
        return []
    out = []
    names = list(actions) + sorted({k for a in attrs for k, v in a.items() if v in ("true", "false")} - set(actions))
    for name in names:
        flags = np.zeros(stop - first + 1, dtype=bool)
        for i, k in enumerate(kfs):
            end = kfs[i + 1].frame_idx - 1 if i + 1 < len(kfs) else stop
            if attrs[i].get(name, "false") == "true":
                flags[k.frame_idx - first : min(end, stop) - first + 1] = True
        out += [(name, a, b) for a, b in segment_runs(flags, first)]
    return out


def read_cvat(path: Path, info: _VideoInfo | None = None, ts_ms: np.ndarray | None = None) -> Annotations:
    """Read a CVAT for video 1.1 XML file: keyframes per object, dense tracks rendered from them, and segments.

    Args:
        path: the annotations.xml.
        info: the video's info; None takes size and frame count from the file's meta (fps unknown: 0).
        ts_ms: optional (num_frames,) timestamps in ms for the boxes and segments.

    Returns:
        Annotations whose ``keyframe_tracks`` hold the annotator's keyframes (boxes and skeletons merged per object by
        ``group_id``) and whose ``tracks`` are those keyframes rendered as CVAT renders them. Track ids are the
        ``group_id`` when set, else the CVAT track id + 1.

    Raises:
        InvalidInputError: unsafe or malformed XML, a root other than ``<annotations>``, bad numbers (naming the
            track and frame), duplicate keyframes, an ``original_size`` other than ``info``'s frame size.
    """
    path = Path(path)
    root = parse_xml_safely(path)
    if root.tag != "annotations":
        raise InvalidInputError(f"{path.name}: root element is <{root.tag}>, expected <annotations>")
    if root.find("track") is None and root.find("image") is not None:
        raise InvalidInputError(
            f"{path.name}: a 'CVAT for images' export (shapes per image): prelabel reads tracks, export the task as "
            "'CVAT for video 1.1'"
        )
    meta = _parse_meta(root)
    if info is None:
        # Frame numbers are the video's: a task made from part of a video (start_frame, a frame step) has frames up
        # to its stop_frame, more than its size.
        info = _VideoInfo(width=meta.width, height=meta.height, num_frames=max(meta.size, meta.stop + 1), fps=0.0)
    elif 0 < info.num_frames <= meta.stop:
        raise InvalidInputError(
            f"{path.name}: the task runs to frame {meta.stop} (stop_frame), but the video has {info.num_frames} "
            "frames: give the video the task was made from"
        )
    elif meta.width > 0 and meta.height > 0 and (meta.width, meta.height) != (info.width, info.height):
        # Boxes are in the pixels of the frames the task was annotated on: on frames of another size they are wrong.
        raise InvalidInputError(
            f"{path.name}: annotated on {meta.width}x{meta.height} frames (original_size), but the video is "
            f"{info.width}x{info.height}: give the video the task was made from"
        )
    raw = [r for _, r in _raw_tracks(root, path)]
    for r in raw:  # CVAT's importer refuses a shape off the task's frames ("Unknown frame")
        for k in r.keyframes:
            f = k.frame_idx
            if f < meta.start or (f - meta.start) % meta.step or (meta.stop >= 0 and f > meta.stop):
                stop = f", stop_frame {meta.stop}" if meta.stop >= 0 else ""
                raise InvalidInputError(
                    f"{path.name}: CVAT track id={r.cvat_id} ({r.label!r}) frame {f}: not a frame of the task "
                    f"(start_frame {meta.start}, step {meta.step}{stop}); CVAT would refuse it"
                )
    n = info.num_frames
    ann = Annotations(info=info, ts_ms=ts_ms, name=meta.name or path.stem)
    ts = ann.frame_ts_ms
    last_frame = n - 1 if n > 0 else -1
    objects: dict[int, dict[str, _RawTrack]] = {}
    for tid, r in _assign_ids(raw):
        objects.setdefault(tid, {})[r.kind] = r
    labels = list(meta.object_labels)
    segments: list[Segment] = []
    tracks: list[Track] = []
    keyframe_tracks: list[KeyframeTrack] = []
    for tid in sorted(objects):
        parts = objects[tid]
        box_raw, skel_raw = parts.get("box"), parts.get("skeleton")
        if box_raw is not None:
            label = box_raw.label
        else:
            assert skel_raw is not None
            label = skel_raw.label.removesuffix(SKELETON_SUFFIX)
        if label not in labels:
            labels.append(label)
        class_id = labels.index(label)
        end = max(last_frame, max((k.frame_idx for p in parts.values() for k in p.keyframes), default=0))
        source = " and ".join(f"CVAT track id={r.cvat_id}" for r in (box_raw, skel_raw) if r is not None)
        where = f"{path.name}: {source}"
        cap = MAX_TRACK_FRAMES if n <= 0 else None  # a stated length bounds the keyframes already
        box_track = (
            densify(KeyframeTrack(tid, label, box_raw.keyframes, where), end, class_id, ts, cap) if box_raw else None
        )
        skel_track = (
            densify(KeyframeTrack(tid, label, skel_raw.keyframes, where), end, class_id, ts, cap) if skel_raw else None
        )
        if box_track is not None and skel_track is not None:
            for tb in box_track.boxes:
                sb = skel_track.at(tb.frame_idx)
                tb.skeleton = sb.skeleton if sb is not None else None
            track = box_track
        else:
            track = box_track if box_track is not None else skel_track  # type: ignore[assignment]
        tracks.append(track)
        ids: dict[str, object] = {"cvat_track_ids": [r.cvat_id for r in (box_raw, skel_raw) if r is not None]}
        keyframe_tracks.append(KeyframeTrack(tid, label, _merge_keyframes(box_raw, skel_raw), source, ids))
        if box_raw is not None:
            for name, a, b in _segments_from_attrs(
                tid, box_raw.keyframes, box_raw.attrs, meta.checkbox_attrs, last_frame
            ):
                segments.append(Segment(tid, name, a, b, ts(a), ts(b), source=Source.KEYFRAME, method="cvat"))
    actions = [a for a in meta.checkbox_attrs if any(s.label == a for s in segments)]
    actions += [s.label for s in segments if s.label not in actions]
    ann.tracks = tracks
    ann.segments = segments
    ann.labels = tuple(labels)
    ann.action_labels = tuple(dict.fromkeys(actions))
    ann.keyframe_tracks = keyframe_tracks
    logger.info("read %d objects and %d segments from %s", len(tracks), len(segments), path)
    return ann


def cvat_unkeyed_points(path: Path) -> dict[int, dict[int, npt.NDArray[np.bool_]]]:
    """Skeleton points a CVAT file writes on a keyframe without keying them there.

    CVAT writes every element of a skeleton on each of its keyframes and flags those not keyed on that frame with
    ``keyframe="0"``: their positions are CVAT's fill (its importer drops them). :func:`read_cvat` reads them as
    drawn; this says which they are.

    Returns:
        Per object (the track ids :func:`read_cvat` gives) and skeleton keyframe holding such points, a (17,) bool
        mask of the COCO-17 points written with ``keyframe="0"``.

    Raises:
        InvalidInputError: unsafe or malformed XML, or a skeleton keyframe without a whole frame number.
    """
    path = Path(path)
    pairs = _raw_tracks(parse_xml_safely(path), path, warn=False)  # read_cvat has said what it skips
    element = {id(r): el for el, r in pairs}
    out: dict[int, dict[int, npt.NDArray[np.bool_]]] = {}
    for tid, r in _assign_ids([r for _, r in pairs]):
        if r.kind != "skeleton":
            continue
        where = f"{path.name}: track {r.cvat_id} ({r.label!r})"
        for shape in element[id(r)]:
            if shape.tag != "skeleton" or shape.get("keyframe", "1") != "1":
                continue
            mask = np.zeros(NUM_KEYPOINTS, bool)
            for pt in shape.findall("points"):
                k = _KEYPOINT_INDEX.get(pt.get("label", ""))
                if k is not None and pt.get("keyframe", "1") == "0":
                    mask[k] = True
            if mask.any():
                out.setdefault(tid, {})[_frame_attr(shape, where)] = mask
    return out


def cvat_details_not_read(path: Path) -> list[str]:
    """What of a CVAT file :func:`read_cvat` does not carry into :class:`Annotations` (and so a conversion drops), as
    phrases with counts: attribute values other than checkboxes, rotations, occluded and z-ordered shapes, skeleton
    elements that are not COCO-17 keypoints, tags."""
    root = parse_xml_safely(Path(path))
    checkbox = set(_parse_meta(root).checkbox_attrs)
    shapes = [el for track in root.iter("track") for el in track if el.tag in ("box", "skeleton")]
    counts = {
        "attribute values": sum(
            1 for el in shapes for a in el.findall("attribute") if a.get("name") not in checkbox and _text(a)
        ),
        "rotated boxes": sum(1 for el in shapes if _rotated(el.get("rotation", ""))),
        "occluded shapes": sum(1 for el in shapes if el.get("occluded", "0") == "1"),
        "shapes with a z_order": sum(1 for el in shapes if el.get("z_order", "0") not in ("0", "")),
        "skeleton points that are not COCO-17 keypoints": sum(
            1 for el in shapes for pt in el.findall("points") if pt.get("label", "") not in _KEYPOINT_INDEX
        ),
        "tags": sum(1 for _ in root.iter("tag")),
    }
    return [f"{n} {what}" for what, n in counts.items() if n]


def _rotated(text: str) -> bool:
    """Whether a shape's ``rotation`` turns it (an unreadable value counts: it is dropped all the same)."""
    try:
        return float(text or 0) % 360 != 0
    except ValueError:
        return True


def cvat_task_frames(path: Path) -> tuple[int, int, int]:
    """``(start_frame, step, stop_frame)`` of a CVAT file's task (stop -1 when not given): the video frames the task
    holds are ``start, start + step, ...`` up to ``stop``."""
    meta = _parse_meta(parse_xml_safely(Path(path)))
    return meta.start, meta.step, meta.stop


def _raw_tracks(root: Element, path: Path, warn: bool = True) -> list[tuple[Element, _RawTrack]]:
    """Each ``<track>`` element of boxes or skeletons with what it holds (others are skipped, with a warning unless
    ``warn`` is False: a second read of a file :func:`read_cvat` has read)."""
    out: list[tuple[Element, _RawTrack]] = []
    for el in root.findall("track"):
        cvat_id = int(el.get("id", str(len(out))) or 0)
        label = el.get("label", "")
        where = f"{path.name}: track {cvat_id} ({label!r})"
        try:
            group = int(el.get("group_id", "0") or 0)
        except ValueError as exc:
            raise InvalidInputError(f"{where}: group_id={el.get('group_id')!r}, expected an integer") from exc
        kinds = {child.tag for child in el}
        if "skeleton" in kinds:
            kfs = _parse_skeleton_track(el, where, warn)
            _sorted_unique(kfs, None, where)
            out.append((el, _RawTrack(cvat_id, group, label, "skeleton", kfs, [{} for _ in kfs])))
        elif "box" in kinds:
            kfs, attrs = _parse_box_track(el, where)
            _sorted_unique(kfs, attrs, where)
            out.append((el, _RawTrack(cvat_id, group, label, "box", kfs, attrs)))
        elif warn:
            logger.warning("%s: shapes %s are not boxes or skeletons; track skipped", where, sorted(kinds))
    return out


def patch_cvat(
    src: Path,
    dst: Path,
    tracks: Iterable[Track],
    keyframe_reducer: KeyframeReducer | str | None = AUTO,
    anchors: Mapping[int, Iterable[int]] | None = None,
    max_keypoint_error: float = 0.05,
    min_iou: float = 0.9,
) -> Path:
    """Write the CVAT file ``src`` again to ``dst`` with its tracks filled in from ``tracks`` (ids as
    :func:`read_cvat` gives them), changing nothing else an annotator made.

    Per box track: the annotator's keyframe shapes stay as they are (coordinates, ``occluded``, ``z_order``,
    attribute values); the reducer's keyframes of the filled track (:func:`keyframe_frames`; ``"auto"``: keyframe
    compression piece by piece between the annotator's keyframes, boxes within ``min_iou``) are added between them,
    on the task's frames only (``start_frame`` and the ``frame_filter`` step; a reducer sees the track numbered as the
    task numbers its frames), each carrying the ``occluded``, ``z_order`` and attributes of the annotator's keyframe
    before it (CVAT holds them until the next keyframe) and the rotation CVAT shows there (linear along the shorter
    arc); shapes CVAT interpolated (``keyframe="0"``) are dropped, as its importer does. Per skeleton track: the
    annotator's skeleton keyframes stay; between two of them that are both among the track's ``anchors`` (the
    keyframes the filled track was interpolated from; None: all), the filled skeleton is added as keyframes where the
    track has one: the reducer's frames of that piece on the task's frames (``"auto"``: skeleton compression, every
    keypoint within ``max_keypoint_error`` of the box's longer side; None: every frame), with the first and last frame
    of each stretch where it shows and a "no skeleton from here" keyframe where it stops showing (the box outside, or
    no keypoint). Elsewhere the filled skeleton did not see the annotator's keyframe, and the tool's own interpolation
    between them stays. The meta (labels and their attribute definitions), tags, shapes, track attributes and tracks
    not in ``tracks`` are kept.

    Raises:
        InvalidInputError: unsafe or malformed XML, a root other than ``<annotations>``, bad numbers or duplicate
            keyframes in ``src`` (as :func:`read_cvat`, which the caller ran with the video's size).
    """
    src, dst = Path(src), Path(dst)
    root = parse_xml_safely(src)
    if root.tag != "annotations":
        raise InvalidInputError(f"{src.name}: root element is <{root.tag}>, expected <annotations>")
    pairs = _raw_tracks(root, src, warn=False)  # read (and its skips said) before it was filled
    tid_of = {id(r): tid for tid, r in _assign_ids([r for _, r in pairs])}
    by_id = {t.track_id: t for t in tracks}
    meta = _parse_meta(root)
    grid = (meta.start, meta.step)
    reducer = keyframe_reducer if keyframe_reducer == AUTO else resolve_reducer(keyframe_reducer)
    for el, r in pairs:
        track = by_id.get(tid_of[id(r)])
        if track is None or not track.boxes:
            continue
        if r.kind == "box":
            _patch_box_track(el, track, reducer, grid, min_iou)
        else:
            keep = None if anchors is None else {int(f) for f in anchors.get(track.track_id, ())}
            _patch_skeleton_track(el, track, keep, reducer, max_keypoint_error, grid)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ElementTree(root).write(dst, encoding="utf-8", xml_declaration=True)  # writing parses nothing
    logger.info("wrote %s: %s with its tracks filled in", dst, src.name)
    return dst


def _keyframe_shapes(el: Element, tag: str) -> dict[int, Element]:
    """The annotator's keyframe shapes of a track element by frame; its ``keyframe="0"`` shapes are removed."""
    out: dict[int, Element] = {}
    for shape in list(el):
        if shape.tag != tag:
            continue
        if shape.get("keyframe", "1") != "1":
            el.remove(shape)
        else:
            out[int(shape.get("frame", "0"))] = shape
    return out


def _insert_sorted(el: Element, tag: str, new: list[Element]) -> None:
    """Add ``new`` shapes to a track element, its shapes of ``tag`` in frame order."""
    shapes = [c for c in el if c.tag == tag] + new
    for c in list(el):
        if c.tag == tag:
            el.remove(c)
    for c in sorted(shapes, key=lambda c: int(c.get("frame", "0"))):
        el.append(c)


def _on_grid(track: Track, grid: tuple[int, int]) -> Track:
    """``track`` on the task's frames only, numbered as the task numbers them (``(frame - start) / step``): CVAT
    interpolates between keyframes over these, and can import keyframes at these frames only."""
    start, step = grid
    boxes = [
        replace(b, frame_idx=(b.frame_idx - start) // step)
        for b in track.boxes
        if b.frame_idx >= start and (b.frame_idx - start) % step == 0
    ]
    return Track(track.track_id, boxes, track.class_id, track.class_name)


def _rotation_at(annotated: Mapping[int, Element], frames: list[int], f: int) -> str | None:
    """CVAT's rotation at frame ``f`` between the annotator's keyframes (linear along the shorter arc), or None where
    the track's boxes are not rotated."""
    if not any(annotated[g].get("rotation") for g in frames):
        return None
    before = [g for g in frames if g < f]
    after = [g for g in frames if g > f]
    if not before or not after:  # before the first keyframe or after the last: the nearest one's
        return _f2(float(annotated[before[-1] if before else after[0]].get("rotation", "0") or 0.0))
    a, b = before[-1], after[0]
    ra = float(annotated[a].get("rotation", "0") or 0.0)
    diff = (float(annotated[b].get("rotation", "0") or 0.0) - ra + 180.0) % 360.0 - 180.0
    diff = 180.0 if diff == -180.0 else diff  # half a turn: the angle grows, as in CVAT
    return _f2((ra + diff * (f - a) / (b - a)) % 360.0)


def _patch_box_track(
    el: Element,
    track: Track,
    reducer: KeyframeReducer | str | None,
    grid: tuple[int, int] = (0, 1),
    min_iou: float = 0.9,
) -> None:
    annotated = _keyframe_shapes(el, "box")
    if not annotated:
        return
    frames = sorted(annotated)
    start, step = grid
    on_grid = [(g - start) // step for g in frames if g >= start and (g - start) % step == 0]
    if reducer == AUTO:  # compressed piece by piece between the annotator's own keyframes
        visible = [(g - start) // step for g in frames if annotated[g].get("outside", "0") != "1"]
        reducer = compression_reducer(min_iou, pinned={track.track_id: [g for g in visible if g in on_grid]})
    assert not isinstance(reducer, str)
    new = []
    for rel in keyframe_frames(_on_grid(track, grid), reducer, on_grid):
        f = start + rel * step
        box = track.at(f)
        if f in annotated or box is None:
            continue
        before = [g for g in frames if g < f]
        shape = copy.deepcopy(annotated[before[-1] if before else frames[0]])
        shape.set("frame", str(f))
        shape.set("keyframe", "1")
        shape.set("outside", "0")
        for k, v in zip(("xtl", "ytl", "xbr", "ybr"), box.xyxy, strict=True):
            shape.set(k, _f2(v))
        rotation = _rotation_at(annotated, frames, f)
        if rotation is not None:
            shape.set("rotation", rotation)
        new.append(shape)
    _insert_sorted(el, "box", new)
    _mark_added(el, new)


def _patch_skeleton_track(
    el: Element,
    track: Track,
    anchors: set[int] | None,
    reducer: KeyframeReducer | str | None,
    max_keypoint_error: float,
    grid: tuple[int, int] = (0, 1),
) -> None:
    annotated = _keyframe_shapes(el, "skeleton")
    frames = sorted(annotated)
    start, step = grid
    extra_keys = _extra_point_keys(annotated)
    new = []
    for g0, g1 in itertools.pairwise(frames):
        if anchors is not None and not (g0 in anchors and g1 in anchors):
            continue
        inner = [f for f in range(g0 + 1, g1) if f >= start and (f - start) % step == 0]  # the task's frames
        shown = {
            f: box.skeleton
            for f in inner
            if (box := track.at(f)) is not None and box.skeleton is not None and box.skeleton.present.any()
        }
        # Elements that are not COCO-17 keypoints (a skeleton of the team's own) move with the filled box.
        extra = {f: _extra_points_at(extra_keys, track, f, (g0, g1)) for f in [g0, *inner, g1]} if extra_keys else {}
        extra_shown = {f for f in inner if extra and any(v is not None for v in extra[f].values())}
        showing = set(shown) | extra_shown
        # Where the filled skeleton stops showing before the next annotator keyframe: "no skeleton from here" (all
        # elements outside), with a keyframe on the frame before it and on the frame it shows again (skeleton
        # compression picks those itself; a reducer of the caller's may not).
        hidden = [f for f in inner if f not in showing and (f - step in showing or f - step == g0)]
        ends = {
            f
            for f in showing
            if (f + step < g1 and f + step not in showing) or (f - step > g0 and f - step not in showing)
        }
        chosen = set(showing)
        piece_reducer = skeleton_compression_reducer(max_keypoint_error) if reducer == AUTO else reducer
        if showing and piece_reducer is not None:
            assert not isinstance(piece_reducer, str)
            picked: set[int] = set()
            if shown:
                piece = Track(track.track_id, [b for b in track.boxes if g0 <= b.frame_idx <= g1])
                picked = {start + rel * step for rel in piece_reducer(_on_grid(piece, grid))}
            chosen = {f for f in showing if f in picked or f in ends}
            # Frames added for the COCO-17 keypoints alone could leave the other elements off their fill; with
            # compression (the default), more are keyed until CVAT's interpolation keeps them within its bound too.
            if extra and reducer == AUTO:
                chosen |= _extra_point_frames(extra, track, [g0, *inner, g1], chosen, max_keypoint_error) & showing
        # An annotator's keyframe holding points it does not key (keyframe="0"): CVAT drops those points on import
        # and interpolates them across that frame, so the frames next to it are keyed too, to hold them to the fill.
        chosen |= {f for f, g in ((g0 + step, g0), (g1 - step, g1)) if f in showing and _holds_unkeyed(annotated[g])}
        for f in sorted(chosen):
            shape = _skeleton_shape(annotated[g0], f, shown.get(f), extra.get(f, {}))
            if shape is not None:
                new.append(shape)
        for f in hidden:
            shape = _skeleton_shape(annotated[g0], f, None, {})
            if shape is not None:
                new.append(shape)
    _insert_sorted(el, "skeleton", new)
    _mark_added(el, new)


# The least box side (pixels) the elements' bound is a share of: a box around one shown element is a point.
_MIN_SIDE_PX = 10.0
# An element's keyed positions in a skeleton track: (frame, x, y, outside), x and y NaN where unreadable.
_ExtraKeys = dict[str, list[tuple[int, float, float, bool]]]


def _extra_point_keys(annotated: Mapping[int, Element]) -> _ExtraKeys:
    """Per element of a skeleton track that is not a COCO-17 keypoint, the annotator's skeleton keyframes keying it
    (a point written with ``keyframe="0"`` is CVAT's fill there, not keyed), in frame order."""
    out: _ExtraKeys = {}
    for f in sorted(annotated):
        for pt in annotated[f].findall("points"):
            label = pt.get("label", "")
            if label in _KEYPOINT_INDEX or pt.get("keyframe", "1") == "0":
                continue
            x, y = _point_xy(pt) or (float("nan"), float("nan"))
            outside = pt.get("outside", "0") == "1"
            if not outside and not (np.isfinite(x) and np.isfinite(y)):
                continue  # unreadable: left as the annotator wrote it, and not a keyframe of the fill
            out.setdefault(label, []).append((f, x, y, outside))
    return out


def _extra_points_at(
    keys: _ExtraKeys, track: Track, f: int, piece: tuple[int, int]
) -> dict[str, tuple[float, float] | None]:
    """Where each element of ``keys`` is at frame ``f`` (None: hidden there), moved with the filled ``track``.

    CVAT shows an element linearly between its keyframes ``e0 <= f < e1`` (toward ``e1``'s position even where it
    hides there; held after the last). That position, taken relative to CVAT's linear fill of the track's boxes at the
    annotator's keyframes ``piece = (g0, g1)`` around ``f``, is put at the same place in the filled box at ``f``: a
    head-top point moves along a guided box's curve instead of cutting across it, and where the fill is CVAT's line
    it is CVAT's own (an element keyed on its own frames moves no other element, as a box around them all would)."""
    box = track.at(f)
    g0, g1 = piece
    b0, b1 = track.at(g0), track.at(g1)
    ref = None
    if b0 is not None and b1 is not None:
        t = (f - g0) / (g1 - g0)
        ref = (1.0 - t) * np.asarray(b0.xyxy, np.float64) + t * np.asarray(b1.xyxy, np.float64)
    out: dict[str, tuple[float, float] | None] = {}
    for label, ks in keys.items():
        i = bisect.bisect_right(ks, f, key=lambda k: k[0]) - 1
        if i < 0 or ks[i][3] or box is None:
            out[label] = None  # before the element's first keyframe, hidden from its last one, or no box here
            continue
        e0, x0, y0, _ = ks[i]
        p = np.array([x0, y0])
        nxt = ks[i + 1] if i + 1 < len(ks) else None
        if nxt is not None and f > e0 and np.isfinite(nxt[1]) and np.isfinite(nxt[2]):
            t = (f - e0) / (nxt[0] - e0)
            p = (1.0 - t) * p + t * np.array([nxt[1], nxt[2]])
        out[label] = (float(p[0]), float(p[1])) if ref is None else _carried(p, ref, np.asarray(box.xyxy, np.float64))
    return out


def _carried(
    p: npt.NDArray[np.float64], ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """Point ``p`` relative to box ``ref`` (``xyxy``), put at the same place in box ``cur``; an axis on which ``ref``
    is under a pixel wide moves with its centre."""
    out = []
    for ax in (0, 1):
        side = ref[ax + 2] - ref[ax]
        if side >= 1.0:
            out.append(cur[ax] + (p[ax] - ref[ax]) * (cur[ax + 2] - cur[ax]) / side)
        else:
            out.append(p[ax] + 0.5 * (cur[ax] + cur[ax + 2] - ref[ax] - ref[ax + 2]))
    return float(out[0]), float(out[1])


def _extra_point_frames(
    extra: Mapping[int, Mapping[str, tuple[float, float] | None]],
    track: Track,
    frames: list[int],
    chosen: set[int],
    max_error: float,
) -> set[int]:
    """Frames to key, besides ``chosen``, so that CVAT's linear fill between keyframes keeps every element in
    ``extra`` (per frame of ``frames``, the piece from one annotator keyframe to the next on the task's frames)
    within ``max_error`` of the box's longer side of where it is: the worst frame of a stretch is keyed until none is
    off. A stretch where an element shows at one end and not the other is left as it is: the frames next to where it
    hides or shows again are keyed (:func:`_visibility_ends`)."""
    keys = set(chosen) | {frames[0], frames[-1]} | _visibility_ends(extra, frames)
    added: set[int] = set()
    at = {f: i for i, f in enumerate(frames)}
    stack = list(itertools.pairwise(sorted(keys)))
    while stack:
        a, b = stack.pop()
        ia, ib = at[a], at[b]
        worst, worst_err = None, 0.0
        for f in frames[ia + 1 : ib]:
            box = track.at(f)
            if box is None:
                continue
            side = float(max(box.xyxy[2] - box.xyxy[0], box.xyxy[3] - box.xyxy[1], _MIN_SIDE_PX))
            t = (f - a) / (b - a)
            for label, pos in extra[f].items():
                pa, pb = extra[a].get(label), extra[b].get(label)
                if pos is None or pa is None or pb is None:
                    continue
                err = float(np.hypot(pos[0] - ((1 - t) * pa[0] + t * pb[0]), pos[1] - ((1 - t) * pa[1] + t * pb[1])))
                if err > max_error * side and err / side > worst_err:
                    worst, worst_err = f, err / side
        if worst is not None:
            added.add(worst)
            stack += [(a, worst), (worst, b)]
    return added | (keys - set(chosen) - {frames[0], frames[-1]})


def _visibility_ends(extra: Mapping[int, Mapping[str, tuple[float, float] | None]], frames: list[int]) -> set[int]:
    """The frames of ``frames`` (after the first, before the last) next to where an element of ``extra`` hides or
    shows again: both sides are keyed, so CVAT neither shows it moving toward where it hides nor hides it early."""
    out: set[int] = set()
    for prev, cur in itertools.pairwise(frames):
        for label in extra[cur]:
            if (extra[prev].get(label) is None) != (extra[cur].get(label) is None):
                out |= {prev, cur}
    return out - {frames[0], frames[-1]}


def _holds_unkeyed(shape: Element) -> bool:
    """Whether a skeleton keyframe holds points written without a keyframe there (``keyframe="0"``)."""
    return any(pt.get("keyframe", "1") == "0" for pt in shape.findall("points"))


ADDED_MARK = "prelabel interpolate added the keyframes at frames:"


def _mark_added(el: Element, new: list[Element]) -> None:
    """Name the keyframes :func:`patch_cvat` added to a track element in a comment at its top (CVAT's importer skips
    comments), for :func:`strip_added_keyframes` to tell them from the annotator's on a later run."""
    if new:
        frames = " ".join(str(f) for f in sorted({int(c.get("frame", "0")) for c in new}))
        # No double hyphen: XML comments cannot hold one.
        el.insert(0, Comment(f" {ADDED_MARK} {frames} (given this file as the previous one, prelabel interpolate "
                             "fills again those a later export holds unchanged) "))  # fmt: skip


@dataclass(frozen=True)
class StrippedKeyframes:
    """What :func:`strip_added_keyframes` did.

    Attributes:
        removed: keyframes prelabel had added and the export still holds unchanged (taken out, to be filled again).
        edited: keyframes prelabel had added that the annotator changed (kept, as theirs now).
        held: keyframes prelabel had added, unchanged, kept all the same: the fill would not come back on their
            frames (a skeleton next to a skeleton keyframe with no box keyframe on its frame), the annotator keyed
            the skeleton on their frame (the box keyframe there pairs with it), or they start or end a part of the
            track (:func:`_hold_part_ends`).
        tracks: the export's tracks matched to a track of the previous file.
        unmatched: the export's tracks none of the previous file's matched (all their keyframes count as the
            annotator's).
        sliced: keyframes CVAT made at its jobs' first and last frames when the previous file was uploaded to a task
            of several jobs (each job stores its part of a track, with CVAT's fill as a keyframe where the part
            starts and ends), that hold that fill unchanged (taken out, to be filled again).
        joined: parts of a track that such a task exported apart (one per job), joined again into one track.
    """

    removed: int
    edited: int
    held: int
    tracks: int
    unmatched: int
    sliced: int = 0
    joined: int = 0


def _shape_key(shape: Element) -> tuple[object, ...]:
    """What an annotator can change on a keyframe shape: position, flags, attribute values (numbers to 0.01 px)."""

    def num(v: str | None) -> object:
        try:
            x = float(v) if v is not None else None
        except ValueError:
            return v
        return None if x is None or x != x else round(x, 2)  # NaN never equals itself

    corners = ("xtl", "ytl", "xbr", "ybr")
    coords = (*(num(shape.get(k)) for k in corners), num(shape.get("rotation", "0")))
    flags = tuple(shape.get(k, "0") for k in ("outside", "occluded", "z_order"))
    attrs = tuple(sorted((a.get("name", ""), (a.text or "").strip()) for a in shape.findall("attribute")))
    points = tuple(
        sorted(
            (pt.get("label", ""), pt.get("outside", "0"), pt.get("occluded", "0"),
             tuple(num(v) for v in (pt.get("points") or "").split(",")))
            for pt in shape.findall("points")
        )
    )  # fmt: skip
    return (shape.tag, coords, flags, attrs, points)


def _keyframe_shapes_by_frame(el: Element) -> dict[int, Element]:
    """A track element's keyframe shapes by frame; shapes without a whole-number frame are left to the reader,
    which names them."""
    out = {}
    for c in el:
        frame = c.get("frame", "")
        if c.tag in ("box", "skeleton") and c.get("keyframe", "1") == "1" and frame.strip().isdigit():
            out[int(frame)] = c
    return out


def _keyframe_keys(el: Element) -> dict[int, tuple[object, ...]]:
    """A track element's keyframe shapes by frame, as :func:`_shape_key` sees them."""
    return {f: _shape_key(c) for f, c in _keyframe_shapes_by_frame(el).items()}


def _hides(shape: Element) -> bool:
    """Whether a keyframe shape hides the object: a box outside, or a skeleton with every point outside."""
    if shape.tag == "skeleton":
        points = shape.findall("points")
        return shape.get("outside", "0") == "1" or (bool(points) and all(p.get("outside", "0") == "1" for p in points))
    return shape.get("outside", "0") == "1"


def _previous_tracks(previous: Path) -> list[tuple[str, dict[int, tuple[object, ...]], set[int]]]:
    """(label, keyframe shapes by frame, frames prelabel added) per track of a file :func:`patch_cvat` wrote."""
    root = parse_xml_safely(previous, comments=True)
    out = []
    for el in root.iter("track"):
        added: set[int] = set()
        for c in el:
            if c.tag is Comment and c.text and ADDED_MARK in c.text:
                listed = c.text.split(ADDED_MARK, 1)[1].split("(", 1)[0]
                added |= {int(f) for f in listed.split() if f.isdigit()}
        out.append((el.get("label", ""), _keyframe_keys(el), added))
    if not any(added for _, _, added in out):
        raise InvalidInputError(
            f"{previous.name}: names no keyframe prelabel added: not a file `prelabel interpolate` wrote, or one "
            "where it added none (then there is nothing to fill again: run without --previous)"
        )
    return out


def strip_added_keyframes(src: Path, previous: Path, dst: Path) -> StrippedKeyframes:
    """Take out of a CVAT export the keyframes an earlier ``prelabel interpolate`` added and nobody changed since.

    The loop this serves: an annotator keys a few frames, prelabel fills the rest (``previous``, which names the
    keyframes it added), the annotator corrects some frames in CVAT and exports again (``src``). Filled again from
    the annotator's keyframes alone, and their corrections, prelabel's fill follows the corrections over the whole
    gap; left in, its own earlier keyframes would pin the old fill around each correction.

    Each track of ``src`` is matched to the ``previous`` track of the same label sharing most identical keyframe
    shapes (CVAT numbers tracks afresh on export). A keyframe prelabel added is taken out where ``src`` holds it
    unchanged (position, outside/occluded/z-order, attribute values, skeleton points, to 0.01 px); one the annotator
    changed stays, as theirs. Box and skeleton tracks of one ``group_id`` are one object: a box keyframe prelabel
    added stays where the skeleton keyframe on its frame stays (an annotator's correction of the pose there pairs
    with it), and a skeleton keyframe prelabel added stays unless both skeleton keyframes around it that stay fall on
    box keyframes (only there is the skeleton filled again). Nothing else changes.

    Args:
        src: the new CVAT for video 1.1 export.
        previous: the file ``prelabel interpolate`` wrote before (uploaded to CVAT, then corrected there).
        dst: where to write ``src`` without those keyframes.

    Returns:
        What was taken out and kept (:class:`StrippedKeyframes`).

    Raises:
        InvalidInputError: either file unsafe or malformed, or ``previous`` naming no keyframe prelabel added.
    """
    src, previous, dst = Path(src), Path(previous), Path(dst)
    root = parse_xml_safely(src)
    prev = _previous_tracks(previous)
    bounds, starts, overlap = _job_bounds(root)
    matched = unmatched = 0
    # Per matched track: its element, keyframe shapes and their keys by frame, and the previous track it matched.
    parts: list[tuple[Element, dict[int, Element], dict[int, tuple[object, ...]], int]] = []
    for el in root.iter("track"):
        shapes = _keyframe_shapes_by_frame(el)
        keys = {f: _shape_key(c) for f, c in shapes.items()}
        label = el.get("label", "")
        # Not one to one: a task of several jobs can export a track as one part per job (CVAT joins the parts of
        # box tracks only where jobs overlap, never those of skeletons), each sharing the previous track's shapes.
        options = [
            (sum(1 for f in keys.keys() & prev[i][1].keys() if keys[f] == prev[i][1][f]), i)
            for i in range(len(prev))
            if prev[i][0] == label
        ]
        score, best = max(options, default=(0, -1))
        if score == 0:
            unmatched += 1
            continue
        matched += 1
        parts.append((el, shapes, keys, best))
    joined = _join_parts(root, parts, prev, starts, overlap)
    edited = sliced = held = 0
    found: list[tuple[Element, dict[int, Element], set[int]]] = []
    made_all: list[set[int]] = []
    for el, shapes, keys, best in parts:
        _, theirs, added = prev[best]
        unchanged = {f for f in added & shapes.keys() if f in theirs and keys[f] == theirs[f]}
        edited += len(added & shapes.keys()) - len(unchanged)
        made = _job_bound_fill(shapes, keys, theirs, bounds) - unchanged
        held += _hold_part_ends(shapes, keys, theirs, unchanged)
        found.append((el, shapes, unchanged | made))
        made_all.append(made)
    held += _hold_paired(found)
    removed = 0
    for (el, shapes, out), made in zip(found, made_all, strict=True):
        for f in out:
            el.remove(shapes[f])
        removed += len(out)
        sliced += len(made & out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ElementTree(root).write(dst, encoding="utf-8", xml_declaration=True)
    return StrippedKeyframes(removed - sliced, edited, held, matched, unmatched, sliced, joined)


def _join_parts(
    root: Element,
    parts: list[tuple[Element, dict[int, Element], dict[int, tuple[object, ...]], int]],
    prev: list[tuple[str, dict[int, tuple[object, ...]], set[int]]],
    starts: set[int],
    overlap: int,
) -> int:
    """Join again (in place) the parts CVAT exported of one track of the previous file, one per job: a part hidden
    from a frame the previous track showed (``overlap`` frames at most after the next job's first frame, which is
    where the next part starts, shown) takes the next part's shapes on the frames it has none, without that hide
    (earlier parts win where both have a shape, as CVAT's own merge of box parts). Returns how many parts were
    joined to an earlier one."""
    joined = 0
    chains: dict[tuple[int, str, str], list[int]] = {}
    for i, (el, shapes, _, best) in enumerate(parts):
        if shapes:
            kind = "skeleton" if any(c.tag == "skeleton" for c in el) else "box"
            chains.setdefault((best, kind, el.get("group_id", "")), []).append(i)
    drop: set[int] = set()
    for (best, kind, _), idx in chains.items():
        idx.sort(key=lambda i: min(parts[i][1]))
        theirs = prev[best][1]
        head = idx[0]
        for nxt in idx[1:]:
            el_a, shapes_a, keys_a, _ = parts[head]
            el_b, shapes_b, keys_b, _ = parts[nxt]
            h, s = max(shapes_a), min(shapes_b)
            if not (
                _hides(shapes_a[h])
                and theirs.get(h) != keys_a[h]
                and s in starts
                and s <= h <= s + overlap
                and not _hides(shapes_b[s])
            ):
                head = nxt
                continue
            el_a.remove(shapes_a.pop(h))
            keys_a.pop(h)
            moved = [f for f in sorted(shapes_b) if f not in shapes_a]
            for f in moved:
                shapes_a[f], keys_a[f] = shapes_b[f], keys_b[f]
            _insert_sorted(el_a, kind, [shapes_b[f] for f in moved])
            root.remove(el_b)
            drop.add(nxt)
            joined += 1
    parts[:] = [p for i, p in enumerate(parts) if i not in drop]
    return joined


def _hold_part_ends(
    shapes: Mapping[int, Element],
    keys: Mapping[int, tuple[object, ...]],
    theirs: Mapping[int, tuple[object, ...]],
    unchanged: set[int],
) -> int:
    """Take out of ``unchanged`` (in place) the keyframes that start or end a part of the track: its first keyframe,
    and the last one shown before a keyframe that hides it where the previous file did not (a task of jobs that do
    not overlap exports a track as one part per job, each hidden from the next job's first frame; an annotator's new
    hide is kept to the same way). Taken out, the part would start later or end moving toward where it hides.
    Returns how many."""
    frames = sorted(shapes)
    keep = {frames[0]} if frames else set()
    for prev, f in itertools.pairwise(frames):
        if _hides(shapes[f]) and not _hides(shapes[prev]) and theirs.get(f) != keys[f]:
            keep.add(prev)
    held = keep & unchanged
    unchanged -= held
    return len(held)


def _job_bounds(root: Element) -> tuple[set[int], set[int], int]:
    """The video frames where a job of the task starts or stops, those where one starts, and the task's overlap
    (``meta/task/segments`` and ``overlap``; segment bounds are task-relative, on the task's frames ``start_frame + i *
    step``); nothing for a task of one job."""
    segs = root.findall("meta/task/segments/segment")
    if len(segs) < 2:
        return set(), set(), 0
    meta = _parse_meta(root)
    bounds, starts = set(), set()
    for seg in segs:
        for tag in ("start", "stop"):
            text = _text(seg.find(tag)).strip()
            if text.isdigit():
                frame = meta.start + int(text) * meta.step
                bounds.add(frame)
                if tag == "start":
                    starts.add(frame)
    text = _text(root.find("meta/task/overlap")).strip()
    overlap = int(text) * meta.step if text.isdigit() else 0
    return bounds, starts, overlap


def _job_bound_fill(
    shapes: Mapping[int, Element],
    keys: Mapping[int, tuple[object, ...]],
    theirs: Mapping[int, tuple[object, ...]],
    bounds: set[int],
) -> set[int]:
    """The keyframes of an export's track that CVAT made at its jobs' bounds from the previous file's track: on a
    job's first or last frame, not a keyframe of the previous file, and holding CVAT's linear fill of the previous
    file's keyframes there (to 0.02 px; flags and attribute values as the keyframe before). Only those with a shown
    keyframe before and after them in the export: a part's first or last keyframe starts or ends what the tool
    shows."""
    frames = sorted(shapes)
    prev_frames = sorted(theirs)
    out = set()
    for i, f in enumerate(frames):
        if f not in bounds or f in theirs or i == 0 or i + 1 == len(frames):
            continue
        if _hides(shapes[frames[i - 1]]) or _hides(shapes[f]) or _hides(shapes[frames[i + 1]]):
            continue
        j = bisect.bisect_left(prev_frames, f)
        if j == 0 or j == len(prev_frames):
            continue
        a, b = prev_frames[j - 1], prev_frames[j]
        fill = _lerp_key(theirs[a], theirs[b], (f - a) / (b - a))
        if fill is not None and _same_key(keys[f], fill):
            out.add(f)
    return out


def _lerp_key(ka: tuple[Any, ...], kb: tuple[Any, ...], t: float) -> tuple[object, ...] | None:
    """CVAT's linear fill between two keyframe shapes as :func:`_shape_key` gives them: positions (boxes' corners,
    shown skeleton elements' points) linear, the rest the first's; None where it shows nothing (hidden from ``ka``),
    the two differ in kind, or a box is rotated."""
    tag, coords_a, flags_a, attrs_a, points_a = ka
    coords_b, points_b = kb[1], kb[4]
    if tag != kb[0] or flags_a[0] == "1":
        return None

    def mix(u: object, v: object) -> object:
        if isinstance(u, float) and isinstance(v, float):
            return (1.0 - t) * u + t * v
        return u

    if tag == "box":
        if coords_a[4] not in (0.0, None) or coords_b[4] not in (0.0, None):
            return None
        coords = tuple(mix(u, v) for u, v in zip(coords_a, coords_b, strict=True))
        return (tag, coords, flags_a, attrs_a, points_a)
    by_label = {p[0]: p for p in points_b}
    points = []
    for p in points_a:
        q = by_label.get(p[0])
        xy = p[3] if q is None or p[1] == "1" or len(p[3]) != len(q[3]) else tuple(map(mix, p[3], q[3]))
        points.append((p[0], p[1], p[2], xy))
    return (tag, coords_a, flags_a, attrs_a, tuple(points))


def _same_key(got: object, want: object, tol: float = 0.02) -> bool:
    """Whether two :func:`_shape_key` tuples agree, numbers to ``tol``."""
    if isinstance(got, tuple) and isinstance(want, tuple):
        return len(got) == len(want) and all(_same_key(u, v, tol) for u, v in zip(got, want, strict=True))
    if isinstance(got, float) and isinstance(want, float):
        return abs(got - want) <= tol
    return got == want


def _hold_paired(found: list[tuple[Element, dict[int, Element], set[int]]]) -> int:
    """Take out of the ``unchanged`` sets (in place) what :func:`strip_added_keyframes` keeps of a box and skeleton
    track pair; returns how many."""
    groups: dict[int, dict[str, tuple[dict[int, Element], set[int]]]] = {}
    held = 0
    for _, shapes, unchanged in found:
        # A keyframe that hides the object (outside, or every skeleton point outside) hides it up to the next one:
        # the added keyframe that shows it again stays, or taking it out would hide the frames after it too.
        stays = sorted(set(shapes) - unchanged)
        for f in stays:
            if _hides(shapes[f]):
                after = [g for g in unchanged if g > f]
                nxt = min(after, default=None)
                if nxt is not None and not any(f < s < nxt for s in stays):
                    unchanged.discard(nxt)
                    held += 1
    for el, shapes, unchanged in found:
        try:
            group = int(el.get("group_id", "0") or 0)
        except ValueError:
            group = 0
        if group > 0:  # the reader pairs the first box and the first skeleton track of a group
            kind = "skeleton" if any(c.tag == "skeleton" for c in el) else "box"
            groups.setdefault(group, {}).setdefault(kind, (shapes, unchanged))
    for pair in groups.values():
        if "box" not in pair or "skeleton" not in pair:
            continue  # a skeleton track alone is filled from its own keyframes: every piece comes back
        (box_shapes, box_out), (skel_shapes, skel_out) = pair["box"], pair["skeleton"]
        stays = sorted(set(skel_shapes) - skel_out)
        keep_box = box_out & set(stays)
        box_out -= keep_box
        anchors = set(box_shapes) - box_out
        keep_skel = set()
        for f in skel_out:
            i = bisect.bisect_left(stays, f)
            if i == 0 or i == len(stays) or stays[i - 1] not in anchors or stays[i] not in anchors:
                keep_skel.add(f)
        skel_out -= keep_skel
        held += len(keep_box) + len(keep_skel)
    return held


def _skeleton_shape(
    template: Element,
    f: int,
    skeleton: Skeleton | None,
    extra: Mapping[str, tuple[float, float] | None],
) -> Element | None:
    """A skeleton keyframe at frame ``f``: ``template`` (the annotator's keyframe before it) with ``skeleton``'s
    points (None: every COCO-17 point outside) and the other elements at ``extra``'s positions (outside where it has
    None or no entry); None where the template is the annotator's "no skeleton from here" (the tool shows none until
    the next keyframe)."""
    if all(pt.get("outside", "0") == "1" for pt in template.findall("points")):
        return None
    shape = copy.deepcopy(template)
    shape.set("frame", str(f))
    shape.set("keyframe", "1")
    for pt in shape.findall("points"):
        # Keyed on this frame, whatever the template's point says (CVAT's importer drops a point that is not).
        pt.set("keyframe", "1")
        k = _KEYPOINT_INDEX.get(pt.get("label", ""))
        xy = (
            extra.get(pt.get("label", ""))
            if k is None
            else (skeleton.keypoints[k, 0], skeleton.keypoints[k, 1])
            if skeleton is not None and bool(skeleton.present[k])
            else None
        )
        if xy is not None:
            pt.set("points", f"{_f2(xy[0])},{_f2(xy[1])}")
            pt.set("outside", "0")
        else:
            pt.set("outside", "1")
    return shape


def _hidden(skeleton: Skeleton | None) -> Skeleton:
    """A skeleton with no keypoint present (positions kept where ``skeleton`` has them)."""
    kp = skeleton.keypoints.copy() if skeleton is not None else np.zeros((NUM_KEYPOINTS, 3), np.float32)
    return Skeleton(kp, np.zeros(NUM_KEYPOINTS, bool), 1.0)


def _merge_keyframes(box_raw: _RawTrack | None, skel_raw: _RawTrack | None) -> list[Keyframe]:
    """One keyframe per frame: the box keyframe's box and outside flag, the skeleton keyframe's skeleton."""
    by_frame: dict[int, Keyframe] = {}
    if box_raw is not None:
        for k in box_raw.keyframes:
            by_frame[k.frame_idx] = Keyframe(k.frame_idx, k.xyxy, None, k.outside)
    if skel_raw is not None:
        for k in skel_raw.keyframes:
            cur = by_frame.get(k.frame_idx)
            if box_raw is None:  # its skeleton, or (a skeleton of the team's own) the box around its elements
                by_frame[k.frame_idx] = Keyframe(k.frame_idx, k.xyxy, k.skeleton, k.outside)
            elif cur is not None:
                # A skeleton hidden at a visible box keyframe: no keypoint from here (those before are held up to it).
                # So is one showing only elements that are not COCO-17 keypoints (:func:`_parse_skeleton_track`).
                hides = k.outside or k.skeleton is None
                cur.skeleton = _hidden(k.skeleton) if hides and not cur.outside else k.skeleton
            else:
                # A skeleton keyframe between box keyframes: the box there is the interpolator's to fill. One that hides
                # the skeleton there ("no skeleton from here") is kept too, as a skeleton without keypoints.
                hides = k.outside or k.skeleton is None
                by_frame[k.frame_idx] = Keyframe(k.frame_idx, None, _hidden(k.skeleton) if hides else k.skeleton)
    return [by_frame[f] for f in sorted(by_frame)]
