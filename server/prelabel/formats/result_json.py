"""prelabel's own ``result.json`` (written by jobs and ``prelabel run``, :func:`prelabel.jobs.results.result_to_json`)
read back as :class:`~prelabel.formats.model.Annotations`: dense tracks with per-box source and skeletons, action
segments, timestamps. Raw detections are not part of Annotations and are left out.
"""

from __future__ import annotations

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


def _source(name: object, where: str) -> Source:
    try:
        return Source[str(name).upper()]
    except KeyError:
        raise InvalidInputError(f"{where}: unknown source {name!r}") from None


def _box(item: dict[str, Any], where: str) -> TrackedBox:
    skeleton = None
    if "keypoints" in item:
        kp = np.asarray(item["keypoints"], np.float32)
        present = np.asarray(item.get("keypoints_present", [True] * NUM_KEYPOINTS), bool)
        skeleton = Skeleton(kp, present, float(item.get("score", 1.0)))
    return TrackedBox(
        int(item["frame"]),
        np.asarray(item["xyxy"], np.float32),
        float(item.get("score", 1.0)),
        _source(item.get("source", "unspecified"), where),
        float(item.get("ts_ms", 0.0)),
        skeleton,
    )


def read_result_json(path: Path, info: VideoInfo | None = None) -> Annotations:
    """Read prelabel's ``result.json``.

    Args:
        path: the file.
        info: the video's size and length; None takes the file's own ``info``.

    Raises:
        InvalidInputError: not JSON, not a result document, or a malformed track, box or segment (named).
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
    tracks = []
    for n, t in enumerate(doc["tracks"]):
        where = f"{path.name} track {t.get('track_id', f'#{n}') if isinstance(t, dict) else f'#{n}'}"
        try:
            boxes = [_box(item, f"{where} frame {item.get('frame')}") for item in t["boxes"]]
            tracks.append(Track(int(t["track_id"]), boxes, int(t.get("class_id", 0)), str(t.get("class_name", ""))))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"{where}: malformed ({exc!r})") from exc
    segments = []
    for n, s in enumerate(doc.get("segments") or []):
        try:
            fields = {k: v for k, v in s.items() if k in Segment.__dataclass_fields__}
            fields["source"] = _source(fields.get("source", "rule"), f"{path.name} segment #{n}")
            segments.append(Segment(**fields))
        except InvalidInputError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"{path.name} segment #{n}: malformed ({exc!r})") from exc
    ts = doc.get("ts_ms")
    ts_ms = np.asarray(ts, np.float64) if isinstance(ts, list) and len(ts) == file_info.num_frames else None
    names = [str(c) for c in doc.get("class_names") or []]
    labels = tuple(dict.fromkeys([*names, *(t.class_name for t in tracks if t.class_name)]))
    ann = Annotations(
        info=info or file_info,
        tracks=tracks,
        segments=segments,
        ts_ms=ts_ms if info is None or info.num_frames == file_info.num_frames else None,
        labels=labels,
        action_labels=tuple(dict.fromkeys(s.label for s in segments)),
        name=str(doc.get("video") or path.stem),
    )
    logger.info("read %d tracks and %d segments from %s", len(tracks), len(segments), path)
    return ann
