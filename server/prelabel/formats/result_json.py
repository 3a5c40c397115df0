"""prelabel's own ``result.json`` (written by jobs and ``prelabel run``, :func:`prelabel.jobs.results.result_to_json`)
read back as :class:`~prelabel.formats.model.Annotations`: dense tracks with per-box source and skeletons, action
segments, timestamps. Raw detections are not part of Annotations and are left out.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.formats.model import Annotations
from prelabel.types import NUM_KEYPOINTS, Segment, Skeleton, Source, Track, TrackedBox, VideoInfo

logger = logging.getLogger(__name__)


def is_result_json(doc: object) -> bool:
    """Whether a parsed JSON document looks like prelabel's result (``info`` and ``tracks`` at the top)."""
    return isinstance(doc, dict) and isinstance(doc.get("info"), dict) and isinstance(doc.get("tracks"), list)


def _source(name: object, unknown: set[str]) -> Source:
    """A box's or segment's ``source``; a name this version does not know (a newer writer's) reads as UNSPECIFIED
    and is collected in ``unknown`` for one warning."""
    try:
        return Source[str(name).upper()]
    except KeyError:
        unknown.add(str(name))
        return Source.UNSPECIFIED


def _box(item: dict[str, Any], unknown: set[str]) -> TrackedBox:
    skeleton = None
    if "keypoints" in item:
        kp = np.asarray(item["keypoints"], np.float32)
        present = np.asarray(item.get("keypoints_present", [True] * NUM_KEYPOINTS), bool)
        try:
            skeleton = Skeleton(kp, present, float(item.get("score", 1.0)))
        except InvalidInputError as exc:
            raise InvalidInputError(f"frame {item.get('frame')}: {exc}") from exc
    try:
        return TrackedBox(
            int(item["frame"]),
            np.asarray(item["xyxy"], np.float32),
            float(item.get("score", 1.0)),
            _source(item.get("source", "unspecified"), unknown),
            float(item.get("ts_ms", 0.0)),
            skeleton,
        )
    except InvalidInputError as exc:
        raise InvalidInputError(f"frame {item.get('frame')}: {exc}") from exc


def read_result_json(path: Path, info: VideoInfo | None = None) -> Annotations:
    """Read prelabel's ``result.json``.

    Args:
        path: the file.
        info: the video's size and length (it must have the file's frame size); None takes the file's own ``info``.

    Raises:
        InvalidInputError: not JSON, not a result document, a malformed track, box or segment (named), the same
            frame twice in a track, or ``info`` of another frame size.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path.name}: not a readable JSON file ({exc})") from exc
    if not is_result_json(doc):
        raise InvalidInputError(f"{path.name}: not a prelabel result (expected 'info' and 'tracks' at the top)")
    meta = doc["info"]
    try:
        file_info = VideoInfo(
            int(meta["width"]),
            int(meta["height"]),
            int(meta["num_frames"]),
            float(meta["fps"]),
            bool(meta.get("variable_frame_rate", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{path.name}: info needs width, height, num_frames and fps ({exc})") from exc
    if info is not None and (info.width, info.height) != (file_info.width, file_info.height):
        raise InvalidInputError(
            f"{path.name}: labels of a {file_info.width}x{file_info.height} video, the video given is "
            f"{info.width}x{info.height}"
        )
    unknown: set[str] = set()
    tracks = []
    for n, t in enumerate(doc["tracks"]):
        where = f"{path.name} track {t.get('track_id', f'#{n}') if isinstance(t, dict) else f'#{n}'}"
        try:
            boxes = sorted((_box(item, unknown) for item in t["boxes"]), key=lambda b: b.frame_idx)
            twice = [a.frame_idx for a, b in itertools.pairwise(boxes) if a.frame_idx == b.frame_idx]
            if twice:
                raise InvalidInputError(f"frame {twice[0]} appears twice")
            tracks.append(Track(int(t["track_id"]), boxes, int(t.get("class_id", 0)), str(t.get("class_name", ""))))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"{where}: malformed ({exc!r})") from exc
    segments = []
    for n, s in enumerate(doc.get("segments") or []):
        try:
            fields = {k: v for k, v in s.items() if k in Segment.__dataclass_fields__}
            fields["source"] = _source(fields.get("source", "rule"), unknown)
            segments.append(Segment(**fields))
        except InvalidInputError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"{path.name} segment #{n}: malformed ({exc!r})") from exc
    if unknown:
        logger.warning("%s: sources %s unknown to this version, read as unspecified", path.name, sorted(unknown))
    ts = doc.get("ts_ms")
    ts_ms = np.asarray(ts, np.float64) if isinstance(ts, list) and len(ts) == file_info.num_frames else None
    names = [str(c) for c in doc.get("class_names") or []]
    labels = tuple(dict.fromkeys([*names, *(t.class_name for t in tracks if t.class_name)]))
    labelled = doc.get("frames_processed")
    part = None
    if labelled is not None:
        if not (
            isinstance(labelled, list)
            and len(labelled) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in labelled)
            and 0 <= labelled[0] < labelled[1]
        ):
            raise InvalidInputError(f"{path.name}: frames_processed must be [start, end] frames, got {labelled!r}")
        part = (labelled[0], labelled[1])
    ann = Annotations(
        info=info or file_info,
        tracks=tracks,
        segments=segments,
        ts_ms=ts_ms if info is None or info.num_frames == file_info.num_frames else None,
        labels=labels,
        action_labels=tuple(dict.fromkeys(s.label for s in segments)),
        name=str(doc.get("video") or path.stem),
        labelled=part,
    )
    logger.info("read %d tracks and %d segments from %s", len(tracks), len(segments), path)
    return ann
