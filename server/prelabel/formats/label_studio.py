"""Label Studio JSON tasks: ``videorectangle`` tracks and ``timelinelabels`` action segments, as predictions.

Label Studio's video schema (the ``VideoRectangle`` and ``TimelineLabels`` tags):

- a track is one ``videorectangle`` result whose ``value.sequence`` lists keyframes ``{frame, enabled, x, y, width,
  height, rotation, time}``: ``frame`` is 1-based, ``x, y, width, height`` are percent of the frame size, ``time`` is
  seconds. Between a keyframe and the next one the box moves linearly; a keyframe with ``enabled: false`` is still
  drawn at its own frame and ends the span, so the object is absent until the next keyframe
  (``label_studio_tools.postprocessing.video.extract_key_frames`` renders it this way);
- an action segment is one ``timelinelabels`` result with ``value.ranges = [{start, end}]`` (1-based frames, both
  inclusive) and ``value.timelinelabels = [label]``.

Label Studio has no track ids and no per-track timeline rows, so the writer names each region ``track-<id>`` (and
``track-<id>-<action>-<n>`` for segments) and shows ``track <id>`` as the region's meta text; the reader takes the id
back from there. Skeletons are not written: Label Studio's video tags have no keypoint tracks.

An annotator's export is filled in place (:func:`patch_label_studio`): each task keeps what it holds and gains a
prediction with its tracks filled in, for the annotator to accept or edit.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.formats.keyframes import (
    AUTO,
    KeyframeReducer,
    compression_reducer,
    densify,
    keyframe_frames,
    resolve_reducer,
)
from prelabel.formats.model import Annotations, KeyframeTrack, frame_runs
from prelabel.types import MAX_TRACK_FRAMES, Keyframe, Segment, Source, Track, VideoInfo

logger = logging.getLogger(__name__)

_TRACK_ID = re.compile(r"^track-(\d+)")
_META_TRACK = re.compile(r"^track (\d+)$")


@dataclass(frozen=True)
class LabelStudioOptions:
    """Export choices; the names must match the project's labeling config.

    Attributes:
        keyframe_reducer: picks each track's keyframes; None keeps every observed frame; ``"auto"`` uses prelabel's
            keyframe compression when available (else every observed frame), boxes within ``min_iou``.
        min_iou: with ``"auto"``, the least IoU of a box Label Studio interpolates with the track's.
        video_url: ``data.video`` of the task (defaults to the annotations' name).
        data_key: the ``$variable`` of the ``<Video value="$video">`` tag.
        box_from_name: ``name`` of the ``<VideoRectangle>`` (or ``<Labels>``) control.
        actions_from_name: ``name`` of the ``<TimelineLabels>`` control.
        to_name: ``name`` of the ``<Video>`` object tag.
        model_version: written on the prediction.
        as_annotations: write ``annotations`` (ground truth) instead of ``predictions``.
    """

    keyframe_reducer: KeyframeReducer | str | None = AUTO
    min_iou: float = 0.9
    video_url: str = ""
    data_key: str = "video"
    box_from_name: str = "box"
    actions_from_name: str = "actions"
    to_name: str = "video"
    model_version: str = "prelabel"
    as_annotations: bool = False


def _seq_item(ann: Annotations, f: int, xyxy: np.ndarray, enabled: bool) -> dict[str, Any]:
    w, h = ann.info.width, ann.info.height
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return {
        "frame": f + 1,
        "enabled": enabled,
        "rotation": 0,
        "x": x1 / w * 100.0,
        "y": y1 / h * 100.0,
        "width": (x2 - x1) / w * 100.0,
        "height": (y2 - y1) / h * 100.0,
        # Label Studio's own rule (it writes ``frame / framerate`` for every item, 1-based frames), so items added
        # beside an annotator's carry times that follow theirs.
        "time": (f + 1) / ann.info.fps if ann.info.fps > 0 else ann.frame_ts_ms(f) / 1000.0,
    }


def track_sequence(ann: Annotations, track: Track, reducer: KeyframeReducer | None) -> list[dict[str, Any]]:
    """Label Studio ``sequence`` of a track: its keyframes, the last frame of each visible run disabled."""
    run_ends = {b for _, b in frame_runs(track.frames)}
    out = []
    for f in keyframe_frames(track, reducer):
        box = track.at(f)
        assert box is not None
        out.append(_seq_item(ann, f, box.xyxy, enabled=f not in run_ends))
    return out


def _warn_variable_rate(ann: Annotations) -> None:
    """Label Studio's player puts frame ``i`` at ``(i - 1) / fps``: on a video whose frame rate varies, say how far
    that moves frames from their own times (boxes show on the wrong frames by as much)."""
    if not ann.info.variable_frame_rate or ann.ts_ms is None or ann.info.fps <= 0 or len(ann.ts_ms) < 2:
        return  # a constant rate's timestamps may still be rounded (30 fps as 33 and 34 ms): not worth a word
    ts = np.asarray(ann.ts_ms, np.float64)
    drift = np.abs((ts - ts[0]) * ann.info.fps / 1000.0 - np.arange(len(ts)))
    worst = int(np.argmax(drift))
    if drift[worst] >= 0.5:
        logger.warning(
            "Label Studio export of %s: the video's frame rate varies, and Label Studio places every frame at one "
            "rate (%.3g fps): frame %d shows %.1f frames away from its own time (boxes follow the frame numbers)",
            ann.name or "the video",
            ann.info.fps,
            worst,
            float(drift[worst]),
        )


def write_label_studio(annotations: Annotations, path: Path, options: LabelStudioOptions | None = None) -> Path:
    """Write ``annotations`` as a Label Studio task list (one task) with the tracks and segments as a prediction.

    Args:
        annotations: tracks and segments; ``info.width`` and ``info.height`` must be known (boxes go in percent).
        path: the .json file to write; parent folders are created.
        options: control names, keyframe reducer, prediction or annotation.

    Returns:
        ``path``.

    Raises:
        InvalidInputError: frame size unknown.
    """
    opts = options or LabelStudioOptions()
    ann = annotations
    if ann.info.width <= 0 or ann.info.height <= 0:
        raise InvalidInputError(
            f"Label Studio export: frame size must be known, got {ann.info.width}x{ann.info.height}"
        )
    reducer = resolve_reducer(opts.keyframe_reducer, opts.min_iou)
    n = ann.num_frames
    _warn_variable_rate(ann)
    duration_s = ann.info.duration_ms / 1000.0 if ann.info.duration_ms > 0 else ann.frame_ts_ms(n) / 1000.0
    results: list[dict[str, Any]] = []
    for track in sorted(ann.tracks, key=lambda t: t.track_id):
        if not track.boxes:
            continue
        results.append({
            "id": f"track-{track.track_id}",
            "type": "videorectangle",
            "from_name": opts.box_from_name,
            "to_name": opts.to_name,
            "origin": "prediction",
            "score": float(np.mean([b.score for b in track.boxes])),
            "meta": {"text": [f"track {track.track_id}"]},
            "value": {
                "framesCount": n,
                "duration": duration_s,
                "sequence": track_sequence(ann, track, reducer),
                "labels": [ann.class_name(track)],
            },
        })  # fmt: skip
    for i, s in enumerate(sorted(ann.segments, key=lambda s: (s.track_id, s.start_frame, s.label))):
        region: dict[str, Any] = {
            "id": f"track-{s.track_id}-{s.label}-{i}" if s.track_id > 0 else f"video-{s.label}-{i}",
            "type": "timelinelabels",
            "from_name": opts.actions_from_name,
            "to_name": opts.to_name,
            "origin": "prediction",
            "score": float(s.confidence),
            "value": {"ranges": [{"start": s.start_frame + 1, "end": s.end_frame + 1}], "timelinelabels": [s.label]},
        }
        if s.track_id > 0:
            region["meta"] = {"text": [f"track {s.track_id}"]}
        results.append(region)
    data = {
        opts.data_key: opts.video_url or ann.name,
        "width": ann.info.width,
        "height": ann.info.height,
        "fps": ann.info.fps,
        "frames_count": n,
    }
    scores = [r["score"] for r in results]
    body: dict[str, Any] = {"result": results}
    task: dict[str, Any] = {"data": data}
    if opts.as_annotations:
        task["annotations"] = [body]
    else:
        body.update({"model_version": opts.model_version, "score": float(np.mean(scores)) if scores else 0.0})
        task["predictions"] = [body]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([task], indent=1))
    logger.info("wrote Label Studio task with %d regions to %s", len(results), path)
    return path


# ---------------------------------------------------------------------------------------------------- reading


def _num(item: dict[str, Any], key: str, where: str) -> float:
    raw = item.get(key)
    if isinstance(raw, bool):  # float(True) is 1.0: a flag where a number belongs is a mistake, not a coordinate
        raise InvalidInputError(f"{where}: expected a number in {key!r}, got {raw!r}")
    try:
        value = float(item[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: expected a number in {key!r}, got {item.get(key)!r}") from exc
    if not np.isfinite(value):
        raise InvalidInputError(f"{where}: {key}={value} is not finite")
    return value


def sequence_keyframes(sequence: list[dict[str, Any]], info: VideoInfo, where: str) -> list[Keyframe]:
    """Label Studio keyframes -> prelabel keyframes (0-based, pixels, ``outside`` after each disabled keyframe).

    Raises:
        InvalidInputError: a non-numeric field, a fractional frame or a frame below 1, naming the region and item.
    """
    items = []
    for j, item in enumerate(sequence):
        w = f"{where} sequence[{j}]"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{w}: expected an object, got {type(item).__name__}")
        value = _num(item, "frame", w)
        if value != int(value):
            raise InvalidInputError(f"{w}: frame {value}, expected a whole frame number")
        frame = int(value)
        if frame < 1:
            raise InvalidInputError(f"{w}: frame {frame}, expected >= 1 (Label Studio frames are 1-based)")
        x, y = _num(item, "x", w), _num(item, "y", w)
        if item.get("rotation") is not None:
            _num(item, "rotation", w)  # copied into the prediction: a number there, and finite
        bw, bh = _num(item, "width", w), _num(item, "height", w)
        if bw < 0 or bh < 0:
            raise InvalidInputError(f"{w}: width {bw:g}, height {bh:g}; expected >= 0")
        scale = np.array([info.width, info.height, info.width, info.height], np.float64) / 100.0
        xyxy = (np.array([x, y, x + bw, y + bh], np.float64) * scale).astype(np.float32)
        items.append((frame - 1, xyxy, bool(item.get("enabled", True))))
    items.sort(key=lambda t: t[0])
    out: list[Keyframe] = []
    for j, (f, xyxy, enabled) in enumerate(items):
        if out and out[-1].frame_idx == f:
            raise InvalidInputError(f"{where}: two keyframes at frame {f + 1}")
        out.append(Keyframe(f, xyxy))
        next_f = items[j + 1][0] if j + 1 < len(items) else None
        at_end = info.num_frames > 0 and f + 1 >= info.num_frames
        if not enabled and next_f != f + 1 and not at_end:
            out.append(Keyframe(f + 1, outside=True))
    return out


def _annotation_entries(task: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A task's annotations (``annotations``, or ``completions`` of older exports), objects only, in file order, each
    with its place in the file (``annotations[1]``)."""
    return [
        (f"{key}[{j}]", a)
        for key in ("annotations", "completions")
        if isinstance(task.get(key), list)
        for j, a in enumerate(task[key])
        if isinstance(a, dict)
    ]


def task_annotations(task: dict[str, Any]) -> list[dict[str, Any]]:
    """A task's annotations (``annotations``, or ``completions`` of older exports), objects only, in file order."""
    return [a for _, a in _annotation_entries(task)]


def _pick(
    task: dict[str, Any], annotation_ids: Collection[Any] = ()
) -> tuple[str, list[dict[str, Any]], dict[str, Any]] | None:
    """What a task is read from: the annotation whose id is in ``annotation_ids`` (the user named it), else the first
    non-cancelled annotation with a result, else the first prediction with one (an export may list predictions by id
    only: those are skipped), else an empty non-cancelled annotation; ``(kind, result, what)`` with kind
    ``"annotation"`` or ``"prediction"`` and the annotation or prediction read, or None when the task holds none of
    these."""
    every = task_annotations(task)
    for a in every:
        if annotation_ids and a.get("id") is not None and a.get("id") in annotation_ids:
            return "annotation", _as_list(a.get("result") or []), a
    anns = [a for a in every if not a.get("was_cancelled", False)]
    for a in anns:
        if a.get("result"):
            return "annotation", _as_list(a["result"]), a
    predictions = task.get("predictions")
    for p in predictions if isinstance(predictions, list) else []:
        if isinstance(p, dict) and p.get("result"):
            return "prediction", _as_list(p["result"]), p
    return ("annotation", [], anns[0]) if anns else None


def _as_list(result: Any) -> Any:
    """A copy of a result list (anything else as it is, for :func:`_check_results` to name)."""
    return list(result) if isinstance(result, list) else result


def _pick_results(task: dict[str, Any], where: str, annotation_ids: Collection[Any] = ()) -> list[dict[str, Any]]:
    picked = _pick(task, annotation_ids)
    if picked is None:
        raise InvalidInputError(f"{where}: task has no annotation (other than cancelled ones) and no prediction")
    return picked[1]


def task_source(task: Any, annotation_ids: Collection[Any] = ()) -> str | None:
    """What :func:`read_label_studio` reads a task from: ``"annotation"``, ``"prediction"``, or None (nothing)."""
    picked = _pick(task, annotation_ids) if isinstance(task, dict) else None
    return None if picked is None else picked[0]


def task_name(task: dict[str, Any], index: int) -> str:
    """A task as messages name it: by its id (Label Studio's), else by its position in the file."""
    return f"task {task['id']}" if task.get("id") is not None else f"task #{index}"


@dataclass(frozen=True)
class TaskReading:
    """What :func:`read_label_studio_task` reads a task from (:func:`task_reading`).

    Attributes:
        source: ``"annotation"``, ``"prediction"``, or None (the task holds neither).
        read: the annotation or prediction read, as messages name it (its id, else its place in the task, such as
            ``annotations[1]``); None where nothing is read.
        read_id: its id (None: it has none).
        others: the task's other non-cancelled annotations with a result (several annotators labelled it), named so.
        others_have_ids: whether every one of those has an id (``--annotation`` can name them).
        named: whether the caller's ``annotation_ids`` named the annotation read.
    """

    source: str | None
    read: str | None = None
    read_id: Any = None
    others: tuple[str, ...] = ()
    others_have_ids: bool = False
    named: bool = False


def task_reading(task: Any, annotation_ids: Collection[Any] = (), index: int = 0) -> TaskReading:
    """What a task (at ``index`` in its file) is read from, and its other annotations a reader should be told of.

    Raises:
        InvalidInputError: ``annotation_ids`` names more than one annotation of the task.
    """
    if not isinstance(task, dict):
        return TaskReading(None)
    anns = task_annotations(task)
    named = [a.get("id") for a in anns if a.get("id") is not None and a.get("id") in annotation_ids]
    if len(named) > 1:
        raise InvalidInputError(f"{task_name(task, index)}: --annotation names {len(named)} of its annotations "
                                f"({named}); name one per task")  # fmt: skip
    picked = _pick(task, annotation_ids)
    if picked is None:
        return TaskReading(None)
    kind, _, what = picked
    # An annotation as messages name it: by its id, else by its place in the file.
    names = {id(a): f"annotation {a['id']}" if a.get("id") is not None else at for at, a in _annotation_entries(task)}
    others = [a for a in anns if a is not what and a.get("result") and not a.get("was_cancelled", False)]
    read = names.get(id(what)) or (f"prediction {what['id']}" if what.get("id") is not None else "a prediction")
    return TaskReading(
        kind,
        read,
        what.get("id"),
        tuple(names[id(a)] for a in others),
        all(a.get("id") is not None for a in others),
        bool(named),
    )


def missing_annotation_ids(annotation_ids: Collection[Any], tasks: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """The ``annotation_ids`` no task of ``tasks`` holds, and the ids the tasks' annotations have."""
    held = [a.get("id") for t in tasks if isinstance(t, dict) for a in task_annotations(t) if a.get("id") is not None]
    return [i for i in annotation_ids if i not in held], held


def _track_id_of(region: dict[str, Any]) -> int | None:
    m = _TRACK_ID.match(str(region.get("id", "")))
    if m:
        return int(m.group(1))
    for text in (region.get("meta") or {}).get("text") or []:
        m = _META_TRACK.match(str(text))
        if m:
            return int(m.group(1))
    return None


def load_tasks(path: Path) -> tuple[Any, list[Any]]:
    """The parsed file and its tasks (a task list, or one task)."""
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path.name}: not JSON: {exc}") from exc
    return doc, doc if isinstance(doc, list) else [doc]


def task_at(tasks: list[Any], index: int, path: Path) -> dict[str, Any]:
    """Task ``index`` of a file's ``tasks``, checked to be one (errors name ``path``'s file)."""
    if not 0 <= index < len(tasks):
        raise InvalidInputError(f"{path.name}: expected a task at index {index}, the file has {len(tasks)}")
    if not isinstance(tasks[index], dict):
        raise InvalidInputError(
            f"{path.name}: task {index} is a {type(tasks[index]).__name__}, expected an object (a Label Studio task)"
        )
    task: dict[str, Any] = tasks[index]
    return task


def _region_track_ids(rects: list[dict[str, Any]]) -> list[int]:
    """Track id per ``videorectangle`` region, in order: the one its id or meta text names (:func:`_track_id_of`),
    else the smallest id no region names or was given before."""
    used = {tid for r in rects if (tid := _track_id_of(r)) is not None}
    next_id = 1
    out = []
    for r in rects:
        tid = _track_id_of(r)
        if tid is None:
            while next_id in used:
                next_id += 1
            tid = next_id
            used.add(tid)
        out.append(tid)
    return out


def _check_results(results: Any, where: str) -> None:
    """A task's result list holds objects whose ``value`` is an object (and a rectangle's ``sequence`` a list)."""
    if not isinstance(results, list):
        raise InvalidInputError(f"{where}: result is {type(results).__name__}, expected a list")
    for j, r in enumerate(results):
        if not isinstance(r, dict):
            raise InvalidInputError(f"{where}: result[{j}] is {type(r).__name__}, expected an object")
        value = r.get("value", {})
        if not isinstance(value, dict):
            raise InvalidInputError(f"{where}: result[{j}] value is {type(value).__name__}, expected an object")
        if _is_rect(r) and not isinstance(value.get("sequence", []), list):
            raise InvalidInputError(f"{where}: result[{j}] value.sequence is not a list")


# Frames a browser may count more or fewer than the decoder (the last frame's duration, an audio track's end).
_COUNT_SLACK = 2


def _onto_last_frame(kfs: list[Keyframe], num_frames: int) -> list[Keyframe]:
    """Keyframes on the frames a browser counted past the decoder's last (within ``_COUNT_SLACK``) moved onto that
    last frame, where the annotator saw the video end; one there already is kept and the moved one dropped."""
    if num_frames <= 0:
        return kfs
    out: list[Keyframe] = []
    for k in kfs:
        if num_frames <= k.frame_idx < num_frames + _COUNT_SLACK:
            if out and out[-1].frame_idx >= num_frames - 1:
                continue
            k = Keyframe(num_frames - 1, k.xyxy, k.skeleton, k.outside)
        out.append(k)
    return out


def _frames_count(region: dict[str, Any], where: str) -> int:
    raw = (region.get("value") or {}).get("framesCount", 0) or 0
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: framesCount={raw!r}, expected a whole number") from exc


def _is_rect(region: dict[str, Any]) -> bool:
    return str(region.get("type", "")).lower() == "videorectangle"


def read_label_studio(
    path: Path, info: VideoInfo | None = None, ts_ms: np.ndarray | None = None, task_index: int = 0
) -> Annotations:
    """Read one task of a Label Studio JSON export (or of a file this module wrote).

    The first non-cancelled annotation with a result is read (where several annotators labelled the task, the
    caller names the one to read with :func:`read_label_studio_task`'s ``annotation_ids``); without one, the first
    prediction with a result.

    Args:
        path: the .json file (a task list, or one task).
        info: the video's info; None takes width/height/fps/frames_count from the task's ``data`` when present.
        ts_ms: optional (num_frames,) timestamps in ms.
        task_index: which task of the list.

    Returns:
        Annotations with the annotator's keyframes per track and the dense tracks rendered from them, and the
        ``timelinelabels`` segments (track id 0 when the region names no track).

    Raises:
        InvalidInputError: bad JSON, frame size unknown, non-numeric fields (naming region and item).
    """
    path = Path(path)
    _, tasks = load_tasks(path)
    return read_label_studio_task(task_at(tasks, task_index, path), path.name, info, ts_ms, task_index)


def read_label_studio_task(
    task: dict[str, Any],
    name: str,
    info: VideoInfo | None = None,
    ts_ms: np.ndarray | None = None,
    index: int = 0,
    annotation_ids: Collection[Any] = (),
) -> Annotations:
    """:func:`read_label_studio` on a task already parsed (``name``: the file's, for messages; ``index``: the
    task's position in it, naming a task without an id in messages and the tracks' :attr:`KeyframeTrack.source`;
    ``annotation_ids``: an annotation of the task with one of these ids is read in place of the first)."""
    path = Path(name)
    who = task_name(task, index)
    data = task.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path.name}: {who}: data is {type(data).__name__}, expected an object")
    if info is None:
        try:
            info = VideoInfo(
                width=int(data.get("width", 0)),
                height=int(data.get("height", 0)),
                num_frames=int(data.get("frames_count", 0)),
                fps=float(data.get("fps", 0.0)),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{path.name}: task data has a non-numeric width/height/fps: {exc}") from exc
    if info.width <= 0 or info.height <= 0:
        raise InvalidInputError(
            f"{path.name}: frame size unknown: give the video (Label Studio boxes are in percent of the frame)"
        )
    results = _pick_results(task, path.name, annotation_ids)
    _check_results(results, f"{path.name}: {who}")
    rects = [r for r in results if _is_rect(r)]
    counts = [_frames_count(r, f"{path.name}: region {r.get('id', '?')!r}") for r in rects]
    if info.num_frames <= 0:
        if counts and max(counts) > 0:
            info = VideoInfo(info.width, info.height, max(counts), info.fps, info.variable_frame_rate, info.duration_ms)
    else:
        for r, count in zip(rects, counts, strict=True):
            # Label Studio numbers frames at its labeling config's frameRate (24 unless set): at another rate than
            # the video's, its frame numbers are other moments of the video, and it counts other frames.
            if count > 0 and abs(count - info.num_frames) > _COUNT_SLACK:
                rate = (
                    f'{info.num_frames} ({info.fps:.3g} fps): set frameRate="{info.fps:.6g}"'
                    if info.fps > 0
                    else f"{info.num_frames}: set frameRate to the video's frame rate"
                )
                raise InvalidInputError(
                    f"{path.name}: region {r.get('id', '?')!r}: Label Studio counted {count} frames in the video, "
                    f"which has {rate} on the labeling config's <Video> tag (its frame numbers are other moments of "
                    "this video), or give the video the task refers to"
                )
    ann = Annotations(info=info, ts_ms=ts_ms, name=str(data.get("video", path.stem)))
    ts = ann.frame_ts_ms
    labels: list[str] = []
    tracks: list[Track] = []
    kts: list[KeyframeTrack] = []
    for r, tid in zip(rects, _region_track_ids(rects), strict=True):
        where = f"{path.name}: region {r.get('id', '?')!r}"
        value = r.get("value") or {}
        label = (value.get("labels") or ["object"])[0]
        if label not in labels:
            labels.append(label)
        kfs = sequence_keyframes(list(value.get("sequence") or []), info, where)
        kfs = _onto_last_frame(kfs, info.num_frames)
        past = [k.frame_idx for k in kfs if not k.outside and info.num_frames > 0 and k.frame_idx >= info.num_frames]
        if past:
            raise InvalidInputError(
                f"{where}: a keyframe at frame {past[0] + 1}, past the video's {info.num_frames} frames"
            )
        ids: dict[str, object] = {"region_id": r["id"]} if r.get("id") is not None else {}
        kt = KeyframeTrack(tid, label, kfs, f"{who} region {r.get('id', '?')!r}", ids)
        kts.append(kt)
        end = info.num_frames - 1 if info.num_frames > 0 else (kfs[-1].frame_idx if kfs else 0)
        cap = MAX_TRACK_FRAMES if info.num_frames <= 0 else None  # a known length bounds the keyframes already
        try:
            tracks.append(densify(kt, end, labels.index(label), ts, cap))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{path.name}: {exc}") from exc
    segments: list[Segment] = []
    for r in results:
        if str(r.get("type", "")).lower() != "timelinelabels":
            continue
        where = f"{path.name}: region {r.get('id', '?')!r}"
        value = r.get("value") or {}
        names = value.get("timelinelabels") or []
        tid = _track_id_of(r) or 0
        for rng in value.get("ranges") or []:
            start, end = int(_num(rng, "start", where)) - 1, int(_num(rng, "end", where)) - 1
            for name in names:
                conf = float(r.get("score", 1.0))
                seg = Segment(tid, str(name), start, end, ts(start), ts(end), conf, source=Source.KEYFRAME)
                seg.method = "label_studio"
                segments.append(seg)
    ann.tracks = sorted(tracks, key=lambda t: t.track_id)
    ann.keyframe_tracks = sorted(kts, key=lambda k: k.track_id)
    ann.segments = segments
    ann.labels = tuple(labels)
    ann.action_labels = tuple(dict.fromkeys(s.label for s in segments))
    ann.__post_init__()
    return ann


def patch_label_studio(
    src: Path,
    dst: Path,
    filled: Mapping[int, Annotations],
    keyframe_reducer: KeyframeReducer | str | None = AUTO,
    model_version: str = "prelabel-interpolate",
    min_iou: float = 0.9,
    annotation_ids: Collection[Any] = (),
) -> Path:
    """Write the Label Studio file ``src`` again to ``dst`` with a prediction of its filled tracks added to tasks.

    ``keyframe_reducer``: ``"auto"`` compresses each filled track piece by piece between the annotator's keyframes
    (:func:`compression_reducer` with them pinned, boxes rebuilt within ``min_iou``); None writes every frame; a
    reducer is used as it is.

    For each task index in ``filled`` (its annotations read by :func:`read_label_studio` from that task, tracks
    filled), the result the reader took (the annotation named in ``annotation_ids``, else the first non-cancelled
    annotation with one, else the first prediction with one) is copied
    into a new prediction in which each ``videorectangle`` region holds its track filled in: the annotator's
    keyframes exactly as they were, with the reducer's keyframes of the filled track (:func:`keyframe_frames`)
    added between them (enabled: inside a visible run). Region ids, labels, meta and every other result are kept;
    so are the task's id, data, annotations and other predictions, and tasks not in ``filled``; a prediction of an
    earlier run (same ``model_version``) is replaced, and predictions listed by id only (they name predictions of
    the source project, and cannot be imported) are dropped. The annotator accepts or edits the prediction in the
    tool; nothing they made is overwritten. Label Studio imports the file as new tasks.

    Raises:
        InvalidInputError: bad JSON or a task index the file does not have.
    """
    src, dst = Path(src), Path(dst)
    doc, tasks = load_tasks(src)
    for index, ann in sorted(filled.items()):
        task = task_at(tasks, index, src)
        results = _pick_results(task, src.name, annotation_ids)
        rects = [r for r in results if _is_rect(r)]
        tid_of = {id(r): tid for r, tid in zip(rects, _region_track_ids(rects), strict=True)}
        by_id = {t.track_id: t for t in ann.tracks}
        out: list[dict[str, Any]] = []
        scores = []
        for r in results:
            region = copy.deepcopy(r)
            region["origin"] = "prediction"  # what a prediction holds; the annotation keeps what they made
            track = by_id.get(tid_of[id(r)]) if id(r) in tid_of else None
            if track is not None and track.boxes:
                value = region.setdefault("value", {})
                sequence = list(value.get("sequence") or [])
                annotated = sorted({int(float(item.get("frame", 0))) - 1 for item in sequence})
                reducer = (
                    compression_reducer(min_iou, pinned={track.track_id: annotated})
                    if keyframe_reducer == AUTO
                    else resolve_reducer(keyframe_reducer)
                )
                value["sequence"] = _filled_sequence(ann, sequence, annotated, track, reducer)
                region["score"] = float(np.mean([b.score for b in track.boxes]))
                scores.append(region["score"])
            out.append(region)
        prediction = {"model_version": model_version, "score": float(np.mean(scores)) if scores else 0.0, "result": out}
        # An earlier run's prediction is replaced (running again does not pile them up); predictions an export lists
        # by id only refer to the source project and cannot be imported, so they are dropped.
        earlier = task.get("predictions")
        kept = [
            p
            for p in (earlier if isinstance(earlier, list) else [])
            if isinstance(p, dict) and p.get("model_version") != model_version
        ]
        task["predictions"] = [*kept, prediction]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(doc, indent=1))
    logger.info("wrote %s: %s with %d tasks' tracks filled in", dst, src.name, len(filled))
    return dst


_NUMERIC = ("frame", "x", "y", "width", "height", "rotation", "time")


def _as_number(key: str, value: Any) -> Any:
    """A sequence item's numeric field written as text (``"12.5"``), as a number (``frame`` whole); anything else as
    it is."""
    if key not in _NUMERIC or not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if key == "frame" and number.is_integer() else number


def _filled_sequence(
    ann: Annotations,
    sequence: list[dict[str, Any]],
    annotated: list[int],
    track: Track,
    reducer: KeyframeReducer | None,
) -> list[dict[str, Any]]:
    """The annotator's ``sequence`` items (at the 0-based frames ``annotated``) as they are (a number written as
    text made a number: Label Studio's JavaScript would join "12.5" to a number rather than add it), plus an enabled
    item at each of the reducer's keyframes of the filled ``track`` that the annotator has none at, in frame order."""
    sequence = [{k: _as_number(k, v) for k, v in item.items()} for item in sequence]
    # The rotation Label Studio shows at a frame: linear between the keyframes around it (as every property of a
    # rectangle), held before the first and after the last.
    keys = sorted((float(i.get("frame", 0)), float(i.get("rotation", 0) or 0.0)) for i in sequence) or [(1.0, 0.0)]
    key_frames, key_rotations = zip(*keys, strict=True)
    added = []
    for f in keyframe_frames(track, reducer, annotated):
        box = track.at(f)
        if f not in annotated and box is not None:
            item = _seq_item(ann, f, box.xyxy, enabled=True)
            item["rotation"] = float(np.interp(f + 1, key_frames, key_rotations))
            added.append(item)
    return sorted([*sequence, *added], key=lambda item: float(item.get("frame", 0)))
