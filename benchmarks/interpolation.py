"""Interpolation benchmark: error against the keyframe interval, per method, on real and generated fast motion.

Scenes:
- ``pets09``: PETS09-S2L1 (real video and ground truth, ``../shared/data/pets09-s2l1``); ``guided`` also uses the
  sequence's public Faster R-CNN detections (``det/det.txt``) as its detector, ``guided-frames`` uses frames only.
- ``fast-motion``: generated scenes (``prelabel.synthetic``, preset ``fast-motion``), boxes and skeletons
  (``--preset`` takes another preset, e.g. ``actions``: everyday motion at 30 fps).
- ``custom``: your own ground truth in MOTChallenge format with its video (``--mot-gt gt.txt --video video.mp4``), or
  without one (``--mot-gt gt.txt``: the geometric methods and ``auto``; a ``seqinfo.ini`` beside it or one folder up
  gives the frame size and length); or a CVAT for video 1.1 export (``--cvat-gt annotations.xml``, boxes and
  skeletons), scored on the frames it keys, not on CVAT's fill between them (:func:`annotation_scene`; ``--ls-gt``
  reads a Label Studio export's first task the same way). ``--detector
  MODEL`` runs a registry model on your video as guided's detector (``--dets`` gives MOTChallenge detections instead).
- The geometric methods run on the keyframes alone; only ``guided`` and ``auto`` get detections.

Keyframes every ``k`` frames (plus the last frame of each contiguous ground-truth span); metrics on the frames in
between: mean / 10th-percentile IoU, centre error / box diagonal, skeleton PCK@0.05 and OKS, each split by motion
speed; keyframes an annotator needs until every frame has IoU >= 0.8; throughput. ``linear`` is CVAT's rule, the
reference. Writes ``benchmarks/results/interpolation.{json,md}`` and ``interpolation_error_vs_k.png``.

Run: ``python benchmarks/interpolation.py`` (``--quick`` for a short run; ``--mot15`` adds the MOT15 sequences of
``../shared/data/mot15``, ground truth without frames). Your own data only (``--video`` and ``--dets`` optional):
``python benchmarks/interpolation.py --mot-gt gt.txt --video video.mp4 --dets det.txt --no-pets --no-fast --out DIR``.
Ground truth and detections are MOTChallenge text (``frame,id,x,y,w,h[,conf,...]``, frames from 1; commas or
whitespace; a header line and ``#`` comments are skipped; UTF-8 or UTF-16 with its byte-order mark). Rows whose 7th
column is 0 are boxes MOTChallenge marks not to evaluate: the metrics leave them out, the track runs on across them.
The visibility column (9th) is not read unless ``--min-visibility V`` is given: boxes below ``V`` are then left out of
the metrics the same way. Ground truth needs whole-number ids from 1 and one box per track and frame; a box without
area (w or h <= 0) is left out and splits its track there, as a missing frame does. What the loader left out is
listed under "notes" in the JSON and the Markdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2

import prelabel
from prelabel.errors import InvalidInputError
from prelabel.interpolate import ArrayFrames, FrameSource, VideoFileFrames, interpolate_track
from prelabel.interpolate.api import with_unkeyed_points_filled
from prelabel.interpolate.others import OtherTracks
from prelabel.interpolate.registry import default_registry
from prelabel.metrics.interpolation import (
    SPEED_BINS,
    box_iou,
    box_speed,
    centre_error,
    oks,
    pck,
    speed_bin_masks,
    summarize_boxes,
)
from prelabel.synthetic.presets import PRESETS
from prelabel.types import Detections, Keyframe, Skeleton

logger = logging.getLogger("benchmarks.interpolation")


class InputError(ValueError):
    """A user's ground truth, video or detections cannot be used (the message says which file and why)."""


REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BOX_METHODS = ("linear", "spline", "kalman", "kalman-ca", "guided-frames", "guided", "auto")


@dataclass
class GtSpan:
    """One contiguous span of a ground-truth track."""

    track_id: int
    frames: np.ndarray  # (T,) consecutive
    xyxy: np.ndarray  # (T, 4)
    kp: np.ndarray | None = None  # (T, 17, 2)
    kp_present: np.ndarray | None = None  # (T, 17)
    class_name: str = ""  # generated scenes: "person" or "ball"
    evaluate: np.ndarray | None = None  # (T,) bool: False where MOTChallenge flags the box not to evaluate
    kp_scored: np.ndarray | None = None  # (T, 17) bool: the keypoints scored (None: every present one)
    box_allowed: np.ndarray | None = None  # indices where a box keyframe may go (None: any frame); span_keyframes
    kp_allowed: np.ndarray | None = None  # indices where a skeleton keyframe may go (None: as the boxes)
    label: str = ""  # the annotation's label: guided and auto keep the detections of that class, as the CLI does
    kp_unkeyed: dict[int, np.ndarray] | None = None  # frame -> (17,) points a skeleton keyframe holds unkeyed

    def scored(self) -> np.ndarray:
        """(T,) bool: the frames the metrics count."""
        return np.ones(len(self.frames), bool) if self.evaluate is None else self.evaluate


@dataclass
class Scene:
    name: str
    spans: list[GtSpan]
    video: FrameSource | None
    detections: Mapping[int, Detections] | None = None
    notes: list[str] = field(default_factory=list)


def _text(path: Path) -> str:
    """A text file's contents: UTF-8 (a byte-order mark dropped) or UTF-16 with its byte-order mark."""
    raw = path.read_bytes()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8-sig", errors="replace")


def read_mot_rows(path: Path, what: str, ids: bool = False) -> np.ndarray:
    """(N, C >= 6) float rows of a MOTChallenge text file: commas or whitespace between values; blank lines, lines
    starting with ``#`` and a header line (a first line whose first value is not a number) skipped. With ``ids``, the
    id column must hold whole numbers from 1 (ground truth). Raises :class:`InputError` naming the file and line."""
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    rows: list[list[float]] = []
    lines: list[int] = []  # each row's line in the file
    header_seen = False
    for n, line in enumerate(_text(path).splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            vals = [float(v) for v in parts]
        except ValueError:
            if not rows and not header_seen and not _is_number(parts[0]):
                header_seen = True
                continue  # a header line (a line of numbers with a typo in it is an error, below)
            raise InputError(f"{what} {path}, line {n}: not numbers: {line.strip()[:80]!r}") from None
        if len(vals) < 6:
            raise InputError(f"{what} {path}, line {n}: expected frame,id,x,y,w,h[,...], got {len(vals)} values")
        if rows and len(vals) != len(rows[0]):
            raise InputError(f"{what} {path}, line {n}: {len(vals)} values where line 1 has {len(rows[0])}")
        rows.append(vals)
        lines.append(n)
    if not rows:
        raise InputError(f"{what} {path}: no rows")
    arr = np.asarray(rows, np.float64)
    if not np.isfinite(arr[:, :6]).all():
        bad = int(np.flatnonzero(~np.isfinite(arr[:, :6]).all(axis=1))[0])
        raise InputError(f"{what} {path}, line {lines[bad]}: NaN or infinite values in frame, id or box columns")
    if (arr[:, 0] < 1).any() or (arr[:, 0] != np.round(arr[:, 0])).any():
        bad = int(np.flatnonzero((arr[:, 0] < 1) | (arr[:, 0] != np.round(arr[:, 0])))[0])
        raise InputError(
            f"{what} {path}, line {lines[bad]}: frame {arr[bad, 0]:g}; MOTChallenge frames are whole numbers "
            "from 1 (0-based files: add 1)"
        )
    if ids:
        wrong = (arr[:, 1] < 1) | (arr[:, 1] != np.round(arr[:, 1]))
        if wrong.any():
            bad = int(np.flatnonzero(wrong)[0])
            raise InputError(f"{what} {path}, line {lines[bad]}: id {arr[bad, 1]:g}; ids are whole numbers from 1")
        key = arr[:, 0] * (arr[:, 1].max() + 1) + arr[:, 1]
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        if (counts > 1).any():
            dup = key == key[first[counts > 1][0]]
            at = [lines[i] for i in np.flatnonzero(dup)]
            raise InputError(
                f"{what} {path}: track {int(arr[dup][0, 1])} has frame {int(arr[dup][0, 0])} more than once "
                f"(lines {', '.join(map(str, at))}): one box per track and frame"
            )
    return arr


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_mot(
    path: Path, notes: list[str] | None = None, min_visibility: float = 0.0
) -> dict[int, list[tuple[int, np.ndarray, bool]]]:
    """MOTChallenge gt -> {id: [(frame_idx 0-based, xyxy, evaluate)]}: rows whose 7th column is 0, and with
    ``min_visibility`` > 0 rows whose visibility (9th column) is below it, are boxes not to evaluate (``evaluate``
    False: the track runs on across them, the metrics leave them out); boxes without area (w or h <= 0) are left out,
    which splits their track as a missing frame does. What was left out is said in ``notes`` (and logged)."""
    rows = read_mot_rows(path, "ground truth", ids=True)
    keep = rows[:, 6] != 0 if rows.shape[1] > 6 else np.ones(len(rows), bool)
    if not keep.all():
        _note(notes, f"ground truth {path}: {int((~keep).sum())} rows flagged 0 (7th column) not scored")
    if min_visibility > 0:
        if rows.shape[1] < 9:
            raise InputError(f"ground truth {path}: --min-visibility needs a 9th column (visibility)")
        vis = rows[:, 8]
        if not ((vis >= 0) & (vis <= 1)).all():
            bad = vis[~((vis >= 0) & (vis <= 1))]
            held = f"{bad.min():g}" if bad.min() == bad.max() else f"{bad.min():g} to {bad.max():g}"
            raise InputError(
                f"ground truth {path}: --min-visibility reads the 9th column as a visibility in [0, 1], and it holds "
                f"{held} (MOT15 files keep world coordinates there): leave --min-visibility out"
            )
        low = keep & (rows[:, 8] < min_visibility)
        _note(notes, f"ground truth {path}: {int(low.sum())} boxes with visibility below {min_visibility:g} not scored")
        keep &= ~low
    flat = (rows[:, 4] <= 0) | (rows[:, 5] <= 0)
    if flat.any():
        _note(
            notes,
            f"ground truth {path}: {int(flat.sum())} boxes with w or h <= 0 left out; each splits its track there, as "
            "a missing frame does",
        )
    out: dict[int, list[tuple[int, np.ndarray, bool]]] = defaultdict(list)
    for r, k in zip(rows[~flat], keep[~flat], strict=True):
        x, y, w, h = r[2:6]
        out[int(r[1])].append((int(r[0]) - 1, np.array([x, y, x + w, y + h]), bool(k)))
    if not any(k for rows_ in out.values() for *_, k in rows_):
        raise InputError(f"ground truth {path}: no box to evaluate (every row has 0 in its 7th column or no area)")
    return out


def _note(notes: list[str] | None, text: str) -> None:
    """Log ``text`` and keep it in ``notes`` (they go into the results)."""
    logger.warning("%s", text)
    if notes is not None:
        notes.append(text)


def spans_from_mot(
    tracks: Mapping[int, list[tuple[int, np.ndarray, bool]]], min_len: int = 3, notes: list[str] | None = None
) -> list[GtSpan]:
    """Contiguous spans of each track (a frame missing from a track splits it; the same frame twice keeps the
    first row; a box not to evaluate does not split it), those shorter than ``min_len`` frames or with no box to
    evaluate left out (they have no frame between two keyframes to measure; said in ``notes``)."""
    spans: list[GtSpan] = []
    short = 0
    for tid, rows in sorted(tracks.items()):
        rows = sorted(rows, key=lambda r: r[0])
        f = np.array([r[0] for r in rows])
        b = np.stack([r[1] for r in rows])
        ev = np.array([r[2] for r in rows])
        first = np.r_[True, np.diff(f) != 0]
        f, b, ev = f[first], b[first], ev[first]
        cuts = np.flatnonzero(np.diff(f) != 1) + 1
        for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(f)], strict=True):
            if e - s >= min_len and ev[s:e].any():
                spans.append(GtSpan(tid, f[s:e], b[s:e], evaluate=None if ev[s:e].all() else ev[s:e]))
            else:
                short += 1
    if short:
        _note(notes, f"{short} ground-truth spans shorter than {min_len} frames or with no box to evaluate left out")
    return spans


def load_dets(path: Path, notes: list[str] | None = None) -> dict[int, Detections]:
    """MOTChallenge detections -> {frame_idx 0-based: Detections}. Scores (7th column; 1 without one) outside
    [0, 1], as some detectors write them (log-odds, percentages), are mapped onto [0, 1] by their rank, which keeps
    their order; boxes without area are dropped (both said in ``notes``)."""
    rows = read_mot_rows(path, "detections")
    flat = (rows[:, 4] <= 0) | (rows[:, 5] <= 0)
    if flat.any():
        _note(notes, f"detections {path}: {int(flat.sum())} boxes with w or h <= 0 left out")
        rows = rows[~flat]
    score = rows[:, 6].copy() if rows.shape[1] > 6 else np.ones(len(rows))
    score[~np.isfinite(score)] = 0.0
    if len(score) and score.min() == score.max() and not 0.0 <= score[0] <= 1.0:
        _note(notes, f"detections {path}: every score is {score[0]:.3g} (no score): taken as 1")
        score = np.ones(len(score))
    elif len(score) and (score.min() < 0.0 or score.max() > 1.0):
        _note(
            notes, f"detections {path}: scores span {score.min():.3g} to {score.max():.3g}; mapped onto [0, 1] by rank"
        )
        values, inverse = np.unique(score, return_inverse=True)  # equal scores keep one rank
        score = (inverse + 1) / len(values)
    out: dict[int, Detections] = {}
    for f in np.unique(rows[:, 0]).astype(int):
        sel = rows[:, 0] == f
        r = rows[sel]
        xyxy = np.c_[r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]]
        out[f - 1] = Detections(xyxy, score[sel], np.zeros(len(r), np.int64), ("person",))
    return out


def load_video_gray(path: Path, max_frames: int | None = None) -> ArrayFrames:
    """Every frame of ``path`` (upright, as :mod:`prelabel.interpolate.frames` reads it), grey, in memory."""
    if path.is_dir():
        raise InputError(
            f"video {path} is a folder: give a video file (a MOTChallenge img1/ folder of frames can be made one, "
            "e.g. ffmpeg -framerate FPS -i img1/%06d.jpg -c:v libx264 -crf 10 video.mp4)"
        )
    if not path.is_file():
        raise InputError(f"video {path}: no such file")
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cap.release()
    if not frames:
        raise InputError(f"video {path}: no frame decodes (not a video, or a codec OpenCV lacks)")
    return ArrayFrames(np.stack(frames))


#: A video whose grey frames would take more than this is read from its file as needed, not decoded into memory.
MEMORY_FRAMES_BYTES = 1 << 30


def load_own_video(path: Path, notes: list[str]) -> FrameSource:
    """A user's video: decoded into memory (:func:`load_video_gray`) where its grey frames fit in
    :data:`MEMORY_FRAMES_BYTES` (as the default scenes are, so guided's speed is the code's, not the decoder's), else
    read from the file as needed (as the server and CLI read it; said in ``notes``). A 10-minute 1080p clip at 30 fps
    would need 37 GB in memory (and decoding it takes about twice its size at the peak)."""
    if path.is_file():
        cap = cv2.VideoCapture(str(path))
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) * int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        declared *= int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        cap.release()
        if declared > MEMORY_FRAMES_BYTES:
            try:
                video = VideoFileFrames(path)
                video.read(0)
                _ = video.num_frames
            except InvalidInputError as exc:
                raise InputError(f"video {path}: {str(exc).removeprefix(f'video {path.name}: ')}") from exc
            _note(
                notes,
                f"video {path}: {declared / 2**30:.1f} GB of grey frames, more than the "
                f"{MEMORY_FRAMES_BYTES / 2**30:.0f} GB decoded into memory: read from the file as needed (guided's "
                "frames/s then include decoding)",
            )
            return video
    return load_video_gray(path)


def _own_detections(dets: Path | None, n: int, notes: list[str]) -> dict[int, Detections] | None:
    """A user's MOTChallenge detections (None without a file), refused past the video's ``n`` frames (0: unknown)."""
    detections = load_dets(dets, notes) if dets is not None else None
    if detections is not None and n > 0:
        past = [f for f in detections if f >= n]
        if past:
            raise InputError(f"detections {dets}: frame {min(past) + 1} (1-based) is past the video's {n} frames")
    return detections


def custom_scene(
    gt: Path,
    video: Path | None,
    dets: Path | None,
    min_visibility: float = 0.0,
    name: str = "custom",
    shown_as: str | None = None,
) -> Scene:
    """A user's MOTChallenge ground truth with its video (and detections): checked against each other.

    Without a video (ground truth alone, as the MOTChallenge sequences here come) the scene has no frames: the
    geometric methods and ``auto`` (choosing among them) run, ``guided`` cannot. The frame size and length then come
    from a ``seqinfo.ini`` beside the file or one folder up (``<seq>/gt/gt.txt``), where there is one. ``shown_as``:
    how notes name the ground truth (default: ``gt`` as given)."""
    from prelabel.formats.mot import read_seqinfo, seqinfo_path

    shown = shown_as or str(gt)
    if gt.is_dir():
        raise InputError(f"ground truth {gt} is a folder: give its MOTChallenge file (as <seq>/gt/gt.txt)")
    cleaning: list[str] = []
    tracks = load_mot(gt, cleaning, min_visibility)
    spans = spans_from_mot(tracks, notes=cleaning)
    if not spans:
        raise InputError(f"ground truth {gt}: no track has 3 consecutive frames (one between two keyframes)")
    frames = load_own_video(video, cleaning) if video is not None else None
    ini = seqinfo_path(gt)
    info = read_seqinfo(ini) if ini is not None else None
    if frames is not None and info is not None and info.width > 0 and info.height > 0:
        vh, vw = frames.read(0).shape[:2]
        if (vw, vh) != (info.width, info.height):
            raise InputError(
                f"ground truth {gt}: its seqinfo.ini ({ini}) says {info.width}x{info.height} frames, the video "
                f"{video} is {vw}x{vh}: give the video the boxes were drawn on"
            )
    if frames is not None:
        ini, info = None, None  # the video's frames and length count from here on
    n = frames.num_frames if frames is not None else (info.num_frames if info is not None else 0)
    source = f"the video's {n} frames ({video})" if video is not None else f"the {n} frames of its seqinfo.ini ({ini})"
    for tid, rows in sorted(tracks.items()):
        last = max(f for f, *_ in rows)
        if n > 0 and last >= n:
            raise InputError(f"ground truth {gt}: track {tid} has frame {last + 1} (1-based), past {source}")
    detections = _own_detections(dets, n, cleaning)
    spans_text = f"{len(spans)} span{'s' if len(spans) != 1 else ''}"
    if frames is not None:
        notes = [
            f"{name}: ground truth {shown} ({spans_text}), video {video} ({n} frames)"
            + (
                f", detections {dets} (guided uses them as its detector; guided-frames uses frames only)"
                if dets
                else ""
            )
        ]
    else:
        if info is None:
            about = (
                f"; its seqinfo.ini ({ini}) is not usable, so" if ini is not None else "; no seqinfo.ini beside it, so"
            ) + " boxes are not checked against the frame"
        else:
            size = f"frame size {info.width}x{info.height}" if info.width > 0 and info.height > 0 else ""
            length = f"length {n} frames" if n > 0 else ""
            about = f"; {' and '.join(x for x in (size, length) if x) or 'nothing usable'} from its seqinfo.ini"
        notes = [
            f"{name}: ground truth {shown} ({spans_text}) without a video: guided and guided-frames are left out, "
            "auto chooses among the geometric methods" + about
        ]
    notes += cleaning
    if frames is not None:
        h, w = frames.read(0).shape[:2]
    elif info is not None and info.width > 0 and info.height > 0:
        w, h = info.width, info.height
    else:
        return Scene(name, spans, None, None, notes)
    _check_frame_fits(gt, spans, w, h, f"video {video}" if video is not None else f"its seqinfo.ini ({ini})")
    off = _leave_out_off_frame(spans, w, h)
    if off:
        _note(
            notes,
            f"{name}: {off} ground-truth boxes lie wholly outside the {w}x{h} frame (nothing there to see or to "
            "interpolate toward): left out of the metrics, as rows flagged 0 are",
        )
        unseen = [sp for sp in spans if not sp.scored().any()]
        if unseen:
            spans = [sp for sp in spans if sp.scored().any()]
            _note(notes, f"{name}: {len(unseen)} spans lie wholly outside the frame: left out (keyframes needed too)")
    if not spans:
        raise InputError(f"ground truth {gt}: every track lies outside the {w}x{h} frame")
    return Scene(name, spans, frames, detections, notes)


def annotation_scene(
    gt: Path, video: Path | None, dets: Path | None, name: str = "custom", tool: str = "cvat"
) -> Scene:
    """A CVAT for video 1.1 export as ground truth (boxes, skeletons or both), with its video for guided; with
    ``tool="labelstudio"``, the first task of a Label Studio JSON export (``videorectangle`` boxes), read the same way.

    CVAT stores the keyframes people drew; the frames between them are CVAT's fill, not ground truth. So a box is
    scored on the export's box keyframes only, a keypoint on the skeleton keyframes that key it (CVAT writes every
    point of a skeleton keyframe, with ``keyframe="0"`` on those it did not key there), and the benchmark's own
    keyframes go on the export's box keyframes nearest every k frames, with the skeleton where the export keys it on
    the same frame (:func:`span_keyframes`, as ``prelabel interpolate`` fills CVAT's skeletons). An export keyed on
    every frame, as ground truth for fast motion usually is,
    scores every frame. A span runs from an object's first to its last box keyframe (skeleton keyframe, for a
    skeleton alone) before it goes outside: what CVAT holds after that is no drawing either."""
    from prelabel.formats.cvat import cvat_details_not_read, cvat_task_frames, cvat_unkeyed_points, read_cvat
    from prelabel.formats.label_studio import read_label_studio
    from prelabel.types import VideoInfo

    shown_tool = "CVAT" if tool == "cvat" else "Label Studio"
    if gt.is_dir():
        raise InputError(
            f"ground truth {gt} is a folder: give its "
            + ("CVAT for video 1.1 annotations.xml" if tool == "cvat" else "Label Studio JSON export")
        )
    if not gt.is_file():
        raise InputError(f"ground truth {gt}: no such file")
    video_notes: list[str] = []
    frames = load_own_video(video, video_notes) if video is not None else None
    info = None
    if frames is not None and video is not None:
        h, w = frames.read(0).shape[:2]
        cap = cv2.VideoCapture(str(video))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        cap.release()
        info = VideoInfo(width=w, height=h, num_frames=frames.num_frames, fps=fps if np.isfinite(fps) else 0.0)
    unkeyed: dict[int, dict[int, np.ndarray]] = {}
    not_read: list[str] = []
    step = 1
    try:
        if tool != "cvat":
            ann = read_label_studio(gt, info)
        else:
            ann = read_cvat(gt, info)
            unkeyed = cvat_unkeyed_points(gt)
            not_read = cvat_details_not_read(gt)
            _, step, _ = cvat_task_frames(gt)
    except InvalidInputError as exc:
        raise InputError(f"ground truth {gt}: {str(exc).removeprefix(gt.name + ': ')}") from exc
    n = info.num_frames if info is not None else 0
    spans: list[GtSpan] = []
    n_box = n_skel = skel_on_box = skel_apart = 0
    spacing: list[np.ndarray] = []
    skeleton_only = False
    for track, kt in zip(ann.tracks, ann.keyframe_tracks, strict=True):
        shown = [k for k in kt.keyframes if not k.outside]
        box_keys = np.array(sorted(k.frame_idx for k in shown if k.xyxy is not None), np.int64)
        skel_keys = np.array(
            sorted(k.frame_idx for k in shown if k.skeleton is not None and k.skeleton.present.any()), np.int64
        )
        main = box_keys if len(box_keys) else skel_keys
        f = track.frames
        if not len(f) or not len(main):
            continue  # never shown, or shown with no keypoint CVAT's labels name as COCO-17
        if n > 0 and int(main[-1]) >= n:
            raise InputError(
                f"ground truth {gt}: {kt.source or f'track {kt.track_id}'} has a keyframe at frame {int(main[-1])}, "
                f"past the video's {n} frames ({video}): give the video the task was made from"
            )
        cuts = np.flatnonzero(np.diff(f) != 1) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(f)], strict=True):
            inside = main[(main >= f[a]) & (main <= f[b - 1])]
            if len(inside) < 2:
                continue
            between = skel_keys[(skel_keys > inside[0]) & (skel_keys < inside[-1])]
            if len(inside) < 3 and not len(between):
                continue  # the benchmark keys both ends: no drawing left between them to score
            lo, hi = a + int(inside[0] - f[a]), a + int(inside[-1] - f[a]) + 1
            boxes = track.boxes[lo:hi]
            frames_ = f[lo:hi]
            span = GtSpan(track.track_id, frames_, np.stack([bx.xyxy for bx in boxes]).astype(np.float64))
            span.label = kt.label
            span.evaluate = np.isin(frames_, inside)
            span.box_allowed = np.flatnonzero(span.evaluate)
            if any(bx.skeleton is not None for bx in boxes):
                span.kp = np.stack(
                    [bx.skeleton.keypoints[:, :2] if bx.skeleton else np.zeros((17, 2)) for bx in boxes]
                ).astype(np.float64)
                span.kp_present = np.stack([bx.skeleton.present if bx.skeleton else np.zeros(17, bool) for bx in boxes])
                keyed = np.isin(frames_, skel_keys)
                span.kp_allowed = np.flatnonzero(keyed)
                scored = keyed[:, None] & span.kp_present
                marks = unkeyed.get(track.track_id, {})
                span.kp_unkeyed = {int(f): marks[int(f)] for f in frames_[keyed] if int(f) in marks} or None
                for i in np.flatnonzero(keyed).tolist():
                    if int(frames_[i]) in marks:
                        scored[i] &= ~marks[int(frames_[i])]
                span.kp_scored = scored
                n_skel += int(scored.any(axis=1).sum())
                on_box = np.isin(frames_[keyed], inside)
                skel_on_box += int(on_box.sum())
                skel_apart += int((~on_box).sum())
            n_box += int(span.evaluate.sum())
            spacing.append(np.diff(inside))
            spans.append(span)
            skeleton_only |= not len(box_keys)
    if not spans:
        raise InputError(
            f"ground truth {gt}: no object has a drawn frame between two keyframes (three box keyframes, or a "
            "skeleton keyframe between two: the benchmark keys both ends; skeletons count only with COCO-17 point "
            "names)"
        )
    n = n or ann.info.num_frames
    cleaning: list[str] = []
    detections = _own_detections(dets, n, cleaning)
    gap = float(np.median(np.concatenate(spacing)))
    spans_text = f"{len(spans)} span{'s' if len(spans) != 1 else ''} of {len(ann.keyframe_tracks)} objects"
    where = f"video {video} ({n} frames)" if video is not None else "without a video: guided is left out"
    notes = [
        f"{name}: {shown_tool} ground truth {gt} ({spans_text}), {where}; scored on what the export keys "
        f"({n_box} box and {n_skel} skeleton keyframes inside spans; keyframes median {gap:g} frames apart), not "
        f"on {shown_tool}'s fill between them; the benchmark's keyframes go on the export's keyframes nearest "
        "every k frames"
        + (f" (at k up to {gap:g}, few frames or none are left to score)" if gap > 1 else "")
        + (f"; detections {dets} guide guided" if dets else ""),
        *cleaning,
    ]
    if skel_apart and not skeleton_only:
        notes.append(
            f"{name}: {skel_apart} of {skel_on_box + skel_apart} skeleton keyframes lie on frames without a box "
            "keyframe: scored, never given to the methods (prelabel interpolate fills a skeleton from the skeleton "
            "keyframes on box keyframes; key both on the same frames)"
            + ("; no skeleton keyframe is on a box keyframe, so no skeleton is interpolated" if not skel_on_box else "")
        )
    if skeleton_only:
        notes.append(
            f"{name}: objects with skeletons and no boxes are scored on the box around their keypoints (IoU columns)"
        )
    if step > 1:
        notes.append(f"{name}: the task keeps every {step}th frame of the video: k counts the video's frames")
    if not_read:
        notes.append(
            f"{name}: not read from the export (boxes scored as axis-aligned, all alike): {', '.join(not_read)}"
        )
    w, h = ann.info.width, ann.info.height
    if w > 0 and h > 0:
        off = _leave_out_off_frame(spans, w, h)
        for sp in spans:
            if sp.kp_scored is not None:
                sp.kp_scored &= ~_wholly_outside(sp.xyxy, w, h)[:, None]
        if off:
            _note(notes, f"{name}: {off} ground-truth boxes lie wholly outside the {w}x{h} frame: not scored")
    return Scene(name, spans, frames, detections, notes + video_notes)


def run_detectors(names: Sequence[str], video: Path, spans: Sequence[GtSpan]) -> dict[int, Detections]:
    """The registry models ``names`` (detect or pose; ``models/registry.yaml``, or ``.pt`` paths) run on the colour
    frames of ``video`` that ``spans`` cover, merged per frame, as ``prelabel interpolate --detector`` runs them."""
    from prelabel.detect.manager import ModelManager
    from prelabel.errors import PrelabelError
    from prelabel.interpolate import VideoFileFrames
    from prelabel.interpolate.support import detect_frames, span_frames
    from prelabel.registry import ModelRegistry

    registry = ModelRegistry.load(REPO / "models" / "registry.yaml")
    manager = ModelManager(registry, "auto")
    try:
        models = [manager.get(spec.name, spec.task) for spec in (registry.get(n) for n in names)]
        frames = span_frames((int(sp.frames[0]), int(sp.frames[-1])) for sp in spans)
        return detect_frames(models, VideoFileFrames(video), frames)
    except PrelabelError as exc:
        raise InputError(f"--detector: {exc}") from exc
    finally:
        manager.close()


def _check_frame_fits(gt: Path, spans: Sequence[GtSpan], width: int, height: int, source: str) -> None:
    """Refuse ground truth that does not fit the frame, over the boxes to be scored: most of them wholly outside it (a
    frame size for another video, such as a wide frame's width and height swapped), or the signature of columns
    x1,y1,x2,y2 read as x,y,w,h (the "w" column at least the "x" one and "h" at least "y" on nearly every row) with
    many boxes reaching past the frame's edges. Boxes that legitimately reach past an edge (full bodies of people the
    frame cuts, as MOT16 and later draw them) pass: their w and h columns are mostly smaller than x and y.

    Raises:
        InputError: naming the share of boxes and the frame size.
    """
    b = np.concatenate([sp.xyxy[sp.scored()] for sp in spans])
    if not len(b):
        return
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    outside = _wholly_outside(b, width, height)
    slack = 1.0  # MOTChallenge coordinates start at 1: a box touching the far edge ends a pixel past it
    past = ~outside & ((b[:, 0] < -slack) | (b[:, 1] < -slack) | (b[:, 2] > width + slack) | (b[:, 3] > height + slack))
    as_corners = float(np.mean((w >= b[:, 0]) & (h >= b[:, 1])))
    hint = "a frame size for another video, or columns other than MOTChallenge's frame,id,x,y,w,h"
    if outside.mean() > 0.25:
        raise InputError(
            f"ground truth {gt}: {outside.mean():.0%} of its boxes lie wholly outside the {width}x{height} frame of "
            f"{source}: {hint}"
        )
    if as_corners > 0.95 and past.mean() > 0.25:
        raise InputError(
            f"ground truth {gt}: {past.mean():.0%} of its boxes reach past the edges of the {width}x{height} frame of "
            f"{source}, and on {as_corners:.0%} of rows the w and h columns are at least x and y: x2,y2 written for "
            "w,h? (MOTChallenge's columns are frame,id,x,y,w,h)"
        )


def _wholly_outside(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) whether each of (N, 4) boxes lies wholly outside a ``width`` x ``height`` frame."""
    x1, y1, x2, y2 = np.asarray(xyxy, np.float64).reshape(-1, 4).T
    return np.asarray((x2 <= 0) | (y2 <= 0) | (x1 >= width) | (y1 >= height))


def _leave_out_off_frame(spans: Sequence[GtSpan], width: int, height: int) -> int:
    """Mark the boxes of ``spans`` that lie wholly outside a ``width`` x ``height`` frame as not to evaluate (the
    track runs on across them); returns how many were scored before."""
    count = 0
    for sp in spans:
        off = _wholly_outside(sp.xyxy, width, height)
        newly = off & sp.scored()
        if newly.any():
            count += int(newly.sum())
            sp.evaluate = sp.scored() & ~off
    return count


def pets09_scene(quick: bool) -> Scene | None:
    d = DATA / "pets09-s2l1"
    if not d.exists():
        logger.warning("PETS09-S2L1 absent from ../shared/data: skipped")
        return None
    spans = spans_from_mot(load_mot(d / "gt" / "gt.txt"))
    if quick:
        spans = spans[:6]
    return Scene(
        "pets09",
        spans,
        load_video_gray(d / "video.avi"),
        load_dets(d / "det" / "det.txt"),
        [
            "guided uses det/det.txt (public Faster R-CNN detections) as its detector; guided-frames uses frames "
            "only, the geometric methods the keyframes alone"
        ],
    )


MOT15_SEQUENCES = ("ADL-Rundle-6", "ETH-Sunnyday", "KITTI-17")  # ground truth only; no default was chosen on them
VIDEO_METHODS = ("guided", "guided-frames")  # methods that need the frames (auto runs without them)


def _runs_on(method: str, group: Sequence[Scene]) -> bool:
    """Whether ``method`` can run on every scene of ``group`` (auto without the frames chooses among the geometric
    methods)."""
    return method not in VIDEO_METHODS or all(sc.video is not None for sc in group)


SYNTH_DET = "prelabel-synth-det"
BALL_IMGSZ = 480  # the shipped detector finds small balls better at 480 px than at its default 320 (model card)
SYNTH_POSE = "prelabel-synth-pose"


def synth_detector_support(frames: np.ndarray) -> dict[int, Detections] | None:
    """Detections of the shipped models on every frame of a generated scene (run once per scene, kept in memory).

    Persons (boxes and COCO-17 keypoints) come from ``prelabel-synth-pose``, balls from ``prelabel-synth-det``; None
    when the registry's weights are absent.
    """
    import torch

    from prelabel.detect.base import DetectOptions
    from prelabel.detect.ultralytics import UltralyticsDetector
    from prelabel.errors import NotFoundError
    from prelabel.registry import ModelRegistry

    reg = ModelRegistry.load(REPO / "models" / "registry.yaml")
    try:
        det_spec, pose_spec = reg.get(SYNTH_DET), reg.get(SYNTH_POSE)
    except NotFoundError:  # an older registry without the shipped models
        return None
    if not (det_spec.available and pose_spec.available):
        return None
    torch.set_num_threads(1)
    det, pose = UltralyticsDetector(det_spec, "cpu"), UltralyticsDetector(pose_spec, "cpu")
    out: dict[int, Detections] = {}
    for i0 in range(0, len(frames), 16):
        batch = list(frames[i0 : i0 + 16])
        balls_at = DetectOptions(imgsz=BALL_IMGSZ)
        for j, (d, p) in enumerate(zip(det.detect(batch, balls_at), pose.detect(batch), strict=True)):
            balls = [n == "ball" for n in d.class_names]
            keep = np.array([balls[c] for c in d.class_ids], bool) if len(d) else np.zeros(0, bool)
            kp_p = p.keypoints if p.keypoints is not None else np.zeros((len(p), 17, 3), np.float32)
            out[i0 + j] = Detections(
                np.concatenate([p.xyxy, d.xyxy[keep]]),
                np.concatenate([p.scores, d.scores[keep]]),
                np.concatenate([np.zeros(len(p), np.int64), np.ones(int(keep.sum()), np.int64)]),
                ("person", "ball"),
                np.concatenate([kp_p, np.zeros((int(keep.sum()), 17, 3), np.float32)]),
            )
    return out


def synthetic_scenes(preset: str, seeds: Sequence[int], detector: bool = False) -> list[Scene]:
    """Generated scenes; with ``detector``, each also carries the shipped models' detections (when present)."""
    from prelabel.synthetic import generate

    scenes = []
    for seed in seeds:
        sc = generate(preset, seed)
        spans: list[GtSpan] = []
        for tr in sc.tracks:
            f = tr.frames
            cuts = np.flatnonzero(np.diff(f) != 1) + 1
            for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(f)], strict=True):
                if e - s < 3:
                    continue
                boxes = tr.boxes[s:e]
                span = GtSpan(tr.track_id, f[s:e], tr.xyxy[s:e].astype(np.float64), class_name=tr.class_name)
                if all(b.skeleton is not None for b in boxes):
                    span.kp = np.stack([b.skeleton.keypoints[:, :2] for b in boxes if b.skeleton]).astype(np.float64)
                    span.kp_present = np.stack([b.skeleton.present for b in boxes if b.skeleton])
                spans.append(span)
        assert sc.frames is not None
        dets = synth_detector_support(sc.frames) if detector else None
        scenes.append(Scene(f"{preset}-{seed}", spans, ArrayFrames(sc.frames), dets))
    return scenes


def keyframes_for(span: GtSpan, key_idx: Sequence[int]) -> list[Keyframe]:
    """Keyframes at ``key_idx`` of ``span``: the box where ``box_allowed`` allows it, the skeleton where
    ``kp_allowed`` (else ``box_allowed``) does. A skeleton keyframe's points CVAT wrote without keying them there
    are given as written; :func:`method_call` moves them to the fill, as ``prelabel interpolate`` does (they are
    not scored)."""
    out = []
    kp_where = span.kp_allowed if span.kp_allowed is not None else span.box_allowed
    for i in key_idx:
        sk = None
        if span.kp is not None and span.kp_present is not None and _allowed(kp_where, i):
            kp = np.c_[span.kp[i], np.ones(17)]
            sk = Skeleton(np.where(span.kp_present[i][:, None], kp, 0.0), span.kp_present[i])
        box = span.xyxy[i] if _allowed(span.box_allowed, i) else None
        out.append(Keyframe(int(span.frames[i]), box, sk))
    return out


def every_k(n: int, k: int) -> list[int]:
    idx = list(range(0, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return idx


def span_keyframes(span: GtSpan, k: int) -> list[int]:
    """The keyframe indices of ``span`` at interval ``k``: every ``k`` frames and its last, each moved to the nearest
    frame the ground truth allows a keyframe on (``box_allowed``: a CVAT export's own box keyframes), so that the
    benchmark's keyframes are boxes people drew, not CVAT's fill between them. :func:`keyframes_for` gives the
    skeleton there only where the export keys it too (``kp_allowed``), as ``prelabel interpolate`` fills CVAT's
    skeletons from the skeleton keyframes on box keyframes."""
    idx = every_k(len(span.frames), k)
    if span.box_allowed is None:
        return idx
    return sorted(set(_nearest(idx, span.box_allowed)))


def _nearest(idx: Sequence[int], allowed: np.ndarray) -> list[int]:
    """Each of ``idx`` moved to the nearest of the sorted, non-empty ``allowed``."""
    a = np.asarray(allowed, np.int64)
    i = np.asarray(idx, np.int64)
    if not len(a):
        raise ValueError("no frame allowed")
    if len(a) == 1:
        return [int(a[0])] * len(i)
    pos = np.clip(np.searchsorted(a, i), 1, len(a) - 1)
    left, right = a[pos - 1], a[pos]
    return [int(v) for v in np.where(i - left <= right - i, left, right)]


def _allowed(where: np.ndarray | None, i: int) -> bool:
    return where is None or bool(np.isin(i, where))


def method_call(
    method: str,
    scene: Scene,
    kfs: list[Keyframe],
    track_id: int,
    cache: dict[str, object],
    label: str = "",
    unkeyed: Mapping[int, np.ndarray] | None = None,
    detections: Mapping[int, Detections] | None = None,
):
    """Run one method; guided-frames is guided without detections (frames only).

    Only ``guided`` and ``auto`` get the scene's detections (``detections`` in their place: the scene's less those
    the other spans claim, :class:`~prelabel.interpolate.others.OtherTracks`): the geometric methods run on the
    keyframes alone, as their rows say (given detections, :func:`interpolate_track` would also fuse pose estimates
    into their skeletons). ``label``: the track's class name, whose detections alone guided keeps where the detector
    knows it. ``unkeyed``: frame -> the skeleton points a keyframe holds without keying them, moved to the fill
    (:func:`~prelabel.interpolate.api.with_unkeyed_points_filled`, as ``prelabel interpolate`` moves CVAT's).
    """
    reg = default_registry()
    name = "guided" if method == "guided-frames" else method
    obj = cache.get(method)
    if obj is None:
        obj = cache[method] = reg.create(name)
    dets = (scene.detections if detections is None else detections) if method in ("guided", "auto") else None
    video = scene.video if name in ("guided", "auto") else None
    fill = partial(
        interpolate_track,
        method=name,
        video=video,
        detections=dets,
        track_id=track_id,
        method_object=obj,
        label=label,
    )
    if unkeyed:
        kfs = with_unkeyed_points_filled(kfs, unkeyed, fill)
    return fill(kfs)


def other_spans(scene: Scene, k: int) -> OtherTracks | None:
    """The scene's spans as keyed every ``k`` frames, for each span to leave to the others the detections they sit
    on, as ``prelabel interpolate`` and the ``Interpolate`` RPC leave each track's neighbours theirs (None without
    detections)."""
    if scene.detections is None:
        return None
    keys = {j: keyframes_for(sp, span_keyframes(sp, k)) for j, sp in enumerate(scene.spans)}
    return OtherTracks(keys, {j: sp.label or sp.class_name for j, sp in enumerate(scene.spans)})


def evaluate(
    group: Sequence[Scene], methods: Sequence[str], ks: Sequence[int], per_class: bool = False
) -> dict[str, dict[str, dict[str, object]]]:
    """{method: {k: metrics}} over all spans of all scenes in ``group`` (frames pooled); with ``per_class``, also
    ``by_class``: mean IoU and the detector ceiling (:func:`best_detection_iou`) on the in-between frames per class."""
    out: dict[str, dict[str, dict[str, object]]] = {}
    for m in methods:
        if not _runs_on(m, group):
            continue
        out[m] = {}
        for k in ks:
            ious, cerrs, speeds, pcks, okss, pspeed, confs = [], [], [], [], [], [], []
            by_class: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = defaultdict(lambda: ([], []))
            t_total = 0.0
            n_frames = 0
            caches: dict[str, dict[str, object]] = {sc.name: {} for sc in group}  # method objects per video
            others = {sc.name: other_spans(sc, k) for sc in group} if m in ("guided", "auto") else {}
            for scene, j, sp in ((sc, j, sp) for sc in group for j, sp in enumerate(sc.spans)):
                cache = caches[scene.name]
                n = len(sp.frames)
                kidx = span_keyframes(sp, k)
                kfs = keyframes_for(sp, kidx)
                own = others.get(scene.name)
                t = time.perf_counter()  # leaving the other spans' detections is part of the method's time
                dets = own.detections_for(j, scene.detections)[0] if own and scene.detections is not None else None
                res = method_call(m, scene, kfs, sp.track_id, cache, sp.label, sp.kp_unkeyed, dets)
                t_total += time.perf_counter() - t
                n_frames += n
                inner = sp.scored().copy()
                inner[kidx] = False
                ious.append(box_iou(res.xyxy[inner], sp.xyxy[inner]))
                if per_class and scene.detections is not None:
                    by_class[sp.class_name or "all"][0].append(ious[-1])
                    by_class[sp.class_name or "all"][1].append(best_detection_iou(scene, sp)[inner])
                confs.append(res.confidence[inner].astype(np.float64))
                cerrs.append(centre_error(res.xyxy[inner], sp.xyxy[inner]))
                spd = box_speed(sp.xyxy)[inner]
                speeds.append(spd)
                if sp.kp is not None and res.keypoints is not None and res.keypoints_present is not None:
                    assert sp.kp_present is not None
                    shown = sp.kp_present if sp.kp_scored is None else sp.kp_present & sp.kp_scored
                    kin = inner.copy() if sp.kp_scored is None else shown.any(axis=1)
                    kin[kidx] = False
                    pred = np.where(res.keypoints_present[..., None], res.keypoints[..., :2], np.nan)[kin]
                    pcks.append(pck(pred, sp.kp[kin], shown[kin], sp.xyxy[kin], 0.05))
                    okss.append(oks(pred, sp.kp[kin], shown[kin], sp.xyxy[kin]))
                    pspeed.append(box_speed(sp.xyxy)[kin])
            iou, cerr, spd = np.concatenate(ious), np.concatenate(cerrs), np.concatenate(speeds)
            res_k: dict[str, object] = {
                "all": summarize_boxes(iou, cerr).as_dict(),
                "by_speed": {
                    b: summarize_boxes(iou[msk], cerr[msk]).as_dict() for b, msk in speed_bin_masks(spd).items()
                },
                "frames_per_s": n_frames / max(t_total, 1e-9),
                "spearman_conf_iou": spearman(np.concatenate(confs), iou),
            }
            if by_class:
                res_k["by_class"] = {
                    c: {
                        "n": int(sum(len(v) for v in got)),
                        "mean_iou": float(np.mean(np.concatenate(got))),
                        "detector_ceiling": float(np.mean(np.concatenate(ceil))),
                    }
                    for c, (got, ceil) in sorted(by_class.items())
                }
            if pcks:
                pk, ok, ps = np.concatenate(pcks), np.concatenate(okss), np.concatenate(pspeed)
                limbs = [7, 8, 9, 10, 13, 14, 15, 16]  # elbows, wrists, knees, ankles
                res_k["skeleton"] = {
                    "n": int(np.isfinite(pk).any(axis=1).sum()),
                    "pck05": _nanmean(pk),
                    "pck05_limbs": _nanmean(pk[:, limbs]),
                    "oks": _nanmean(ok),
                    "by_speed": {
                        b: {"pck05_limbs": _nanmean(pk[msk][:, limbs])} for b, msk in speed_bin_masks(ps).items()
                    },
                }
            out[m][str(k)] = res_k
            logger.info("%s %s k=%d: %s", group[0].name, m, k, res_k["all"])
    return out


def _nanmean(values: np.ndarray) -> float:
    """Mean over the finite entries; NaN (without numpy's warning) where there are none."""
    v = np.asarray(values, np.float64)
    ok = np.isfinite(v)
    return float(v[ok].mean()) if ok.any() else float("nan")


def best_detection_iou(scene: Scene, span: GtSpan) -> np.ndarray:
    """(T,) IoU of each ground-truth box of ``span`` with the best overlapping detection in its frame (0 without)."""
    from prelabel.geometry import box_iou as iou_matrix

    out = np.zeros(len(span.frames))
    for i, f in enumerate(span.frames.tolist()):
        d = scene.detections.get(int(f)) if scene.detections is not None else None
        if d is not None and len(d) > 0:
            out[i] = float(iou_matrix(span.xyxy[i : i + 1], d.xyxy.astype(np.float64)).max())
    return out


def detector_ceiling(group: Sequence[Scene]) -> float:
    """Mean over every ground-truth box of its best IoU with any detection in its frame (what the detector allows)."""
    best: list[float] = []
    for sc in group:
        assert sc.detections is not None
        for sp in sc.spans:
            for i, f in enumerate(sp.frames.tolist()):
                if not sp.scored()[i]:
                    continue
                d = sc.detections.get(int(f))
                ok = d is not None and len(d) > 0
                best.append(float(box_iou(d.xyxy, np.repeat(sp.xyxy[i : i + 1], len(d), 0)).max()) if ok else 0.0)  # type: ignore[union-attr, arg-type]
    return float(np.mean(best)) if best else float("nan")


def pose_ceiling(group: Sequence[Scene]) -> float:
    """Limb PCK@0.05 (elbows, wrists, knees, ankles) of the pose model's raw keypoints, taking in each frame the
    person detection whose box overlaps the ground-truth box best (what the pose model allows a guided skeleton)."""
    from prelabel.geometry import box_iou as iou_matrix

    limbs = [7, 8, 9, 10, 13, 14, 15, 16]
    scores: list[np.ndarray] = []
    for sc in group:
        assert sc.detections is not None
        for sp in sc.spans:
            if sp.kp is None or sp.kp_present is None:
                continue
            est = np.full(sp.kp.shape, np.nan)
            for i, f in enumerate(sp.frames.tolist()):
                d = sc.detections.get(int(f))
                if d is None or d.keypoints is None or not (d.class_ids == 0).any():
                    continue
                person = d.class_ids == 0
                iou = iou_matrix(sp.xyxy[i : i + 1], d.xyxy[person])[0]
                if iou.max() > 0:
                    est[i] = d.keypoints[person][int(np.argmax(iou)), :, :2]
            scores.append(pck(est, sp.kp, sp.kp_present, sp.xyxy, 0.05)[:, limbs])
    return float(np.nanmean(np.concatenate(scores))) if scores else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (NaN when either side is constant)."""
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def keyframes_needed(scene: Scene, method: str, policy: str, min_iou: float = 0.8, max_spans: int | None = None) -> int:
    """Simulated annotator: start with first and last frame, add a keyframe until every frame has IoU >= min_iou.

    ``policy="suggested"``: add the method's top suggestion that is not a keyframe yet, even where that frame is
    already fine (the worst frame when there is none); ``"worst"``: add the frame with the lowest IoU.
    """
    return sum(keyframes_needed_per_span(scene, method, policy, min_iou, max_spans))


def keyframes_needed_per_span(
    scene: Scene, method: str, policy: str, min_iou: float = 0.8, max_spans: int | None = None
) -> list[int]:
    """:func:`keyframes_needed` for each of the first ``max_spans`` spans of ``scene``."""
    cache: dict[str, object] = {}
    total: list[int] = []
    for sp in scene.spans[:max_spans]:
        n = len(sp.frames)
        kidx = sorted({0, n - 1})
        while True:
            res = method_call(method, scene, keyframes_for(sp, kidx), sp.track_id, cache, sp.label, sp.kp_unkeyed)
            iou = box_iou(res.xyxy, sp.xyxy)
            iou[kidx] = 1.0
            iou[~sp.scored()] = 1.0  # boxes not to evaluate ask for no keyframe
            bad = iou < min_iou
            if not bad.any():
                break
            pick = int(np.argmin(iou))
            if policy == "suggested" and res.suggestions:
                cand = [int(s.frame_idx - sp.frames[0]) for s in res.suggestions]
                if sp.box_allowed is not None:  # the annotator keys the frame nearest it that the truth has drawn
                    cand = _nearest(cand, sp.box_allowed)
                cand = [c for c in cand if c not in kidx]
                if cand:
                    pick = cand[0]
            kidx = sorted({*kidx, pick})
        total.append(len(kidx))
    return total


def throughput_geometric(methods: Sequence[str], n_frames: int = 200_000, k: int = 20) -> dict[str, dict[str, float]]:
    """Box-frames per second of each geometric method on one long generated track (keyframe every k frames).

    Median of 5 runs, by wall clock and by this process's CPU time (the CPU figure is what the code costs when the
    machine is shared with other work).
    """
    rng = np.random.default_rng(0)
    f = np.arange(0, n_frames, k)
    c = np.cumsum(rng.normal(0, 5, (len(f), 2)), axis=0) + 500
    kfs = [Keyframe(int(t), [x - 20, y - 40, x + 20, y + 40]) for t, (x, y) in zip(f, c, strict=True)]
    out = {}
    for m in methods:
        wall, cpu = [], []
        for _ in range(5):
            t, p = time.perf_counter(), time.process_time()
            interpolate_track(kfs, m, num_suggestions=3)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - p)
        frames = int(f[-1]) + 1
        out[m] = {"wall": frames / float(np.median(wall)), "cpu": frames / float(np.median(cpu))}
    return out


def throughput_guided_file(seq_dir: Path, k: int = 20, repeats: int = 3) -> float:
    """Frames per second of ``guided`` (frames only) on the longest ground-truth span of a sequence, read from its
    video file as a server does (a fresh reader and method per call; median of ``repeats``)."""
    from prelabel.interpolate import VideoFileFrames

    span = max(spans_from_mot(load_mot(seq_dir / "gt" / "gt.txt")), key=lambda s: len(s.frames))
    kfs = keyframes_for(span, every_k(len(span.frames), k))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        interpolate_track(kfs, "guided", video=VideoFileFrames(seq_dir / "video.avi"), track_id=span.track_id)
        times.append(time.perf_counter() - t)
    return len(span.frames) / float(np.median(times))


def _num(value: object, digits: int = 3) -> str:
    """``value`` to ``digits`` decimals; "-" where there is none (NaN: an empty speed bin, no skeleton)."""
    if value is None or not np.isfinite(float(value)):  # type: ignore[arg-type]
        return "-"
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


COLUMNS = (
    "Columns: **frames**, the frames scored: those between keyframes, less boxes the ground truth marks not to "
    "evaluate (a larger k leaves more); **mean IoU** and **p10 IoU**, the mean and 10th percentile of the box IoU with "
    "the ground truth over them; **centre err/diag**, the mean distance between box centres over the ground-truth "
    "box's diagonal; **IoU fast**, the mean IoU over the frames whose ground-truth box moves at least "
    f"{SPEED_BINS[2][1]:g} of its diagonal per frame, with their count (slow: below {SPEED_BINS[1][1]:g}, medium: "
    "between; the JSON has each bin); **PCK@.05 limbs**, the share of elbow, wrist, knee and ankle keypoints within "
    "0.05 of the box's longer side of the ground truth; **OKS**, COCO's object keypoint similarity; "
    "**rho(conf, IoU)**, the Spearman correlation of the method's per-frame confidence with its IoU (how well the "
    "confidence ranks frames). "
    "**Keyframes needed**: from each span's first and last frames, a simulated annotator adds one keyframe at a time "
    "until every frame has IoU >= 0.8: *suggested* takes the method's top suggestion that is not a keyframe yet (even "
    "where that frame is already right), *worst* the frame with the lowest IoU (the best an annotator checking every "
    "frame could do)."
)


def markdown(results: dict[str, object]) -> str:
    lines = ["# Interpolation benchmark", ""]
    for note in results.get("notes", []):  # type: ignore[union-attr]
        lines.append(f"- {note}")
    lines += ["", COLUMNS, ""]
    scenes: dict[str, dict[str, dict[str, dict[str, object]]]] = results["scenes"]  # type: ignore[assignment]
    for sname, per_m in scenes.items():
        lines += [
            f"## {sname}",
            "",
            "| method | k | frames | mean IoU | p10 IoU | centre err/diag | IoU fast (frames) | PCK@.05 limbs | OKS | "
            "rho(conf, IoU) |",
        ]
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for m, per_k in per_m.items():
            for k, r in per_k.items():
                a = r["all"]  # type: ignore[index]
                fast = r["by_speed"]["fast"]  # type: ignore[index]
                sk = r.get("skeleton")
                pk = _num(sk["pck05_limbs"]) if sk else "-"  # type: ignore[index]
                ok = _num(sk["oks"]) if sk else "-"  # type: ignore[index]
                lines.append(
                    f"| {m} | {k} | {a['n']} | {_num(a['mean_iou'])} | {_num(a['p10_iou'])} | "  # type: ignore[index]
                    f"{_num(a['mean_centre_error'])} | {_num(fast['mean_iou'])} ({fast['n']}) | {pk} | {ok} | "  # type: ignore[index]
                    f"{_num(r.get('spearman_conf_iou'), 2)} |"  # type: ignore[union-attr]
                )
        lines.append("")
    rows = [
        (sname, m, k, c, v)
        for sname, per_m in scenes.items()
        for m, per_k in per_m.items()
        for k, r in per_k.items()
        for c, v in r.get("by_class", {}).items()  # type: ignore[attr-defined]
    ]
    if rows:
        lines += [
            "## Per class (in-between frames)",
            "",
            "| scene | method | k | class | frames | mean IoU | detector ceiling |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for sname, m, k, c, v in rows:
            lines.append(
                f"| {sname} | {m} | {k} | {c} | {v['n']} | {v['mean_iou']:.3f} | {v['detector_ceiling']:.3f} |"
            )
        lines.append("")
    eff = results.get("keyframes_needed", {})
    if eff:
        lines += [
            "## Keyframes needed for IoU >= 0.8 on every frame",
            "",
            "| scene | method | policy | keyframes | ratio to linear |",
            "| --- | --- | --- | --- | --- |",
        ]
        for sname, per_m in eff.items():  # type: ignore[union-attr]
            for m, per_p in per_m.items():
                for pol, v in per_p.items():
                    base = per_m.get("linear", {}).get(pol)
                    ratio = f"{v / base:.2f}" if base else "-"
                    lines.append(f"| {sname} | {m} | {pol} | {v} | {ratio} |")
        lines.append("")
    by_cls = results.get("keyframes_needed_fast_motion_by_class", {})
    if by_cls:
        lines += [
            "| class (generated scenes) | method | policy | keyframes | ratio to linear |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c, per_m in by_cls.items():  # type: ignore[attr-defined]
            for m, per_p in per_m.items():
                for pol, v in per_p.items():
                    base = per_m.get("linear", {}).get(pol)
                    ratio = f"{v / base:.2f}" if base else "-"
                    lines.append(f"| {c} | {m} | {pol} | {v} | {ratio} |")
        lines.append("")
    for sname, v in results.get("detector_ceiling_mean_iou", {}).items():  # type: ignore[union-attr]
        lines.append(f"- detector ceiling on {sname}: mean over boxes of the best detection's IoU = {v:.3f}")
    for sname, v in results.get("pose_ceiling_pck05_limbs", {}).items():  # type: ignore[union-attr]
        lines.append(
            f"- pose model ceiling on {sname}: limb PCK@.05 of the raw keypoints of the person detection best "
            f"overlapping each ground-truth box = {v:.3f}"
        )
    lines += ["", "## Throughput", ""]
    for m, v in results.get("throughput_box_frames_per_s", {}).items():  # type: ignore[union-attr]
        lines.append(
            f"- {m}: {v['wall'] / 1e6:.2f} M box-frames/s wall clock, {v['cpu'] / 1e6:.2f} M per CPU second "
            "(one 200k-frame track, keyframe every 20, median of 5)"
        )
    from_file = set(results.get("frames_read_from_file", []))  # type: ignore[call-overload]
    for s, v in results.get("guided_frames_per_s", {}).items():  # type: ignore[union-attr]
        how = "frames read from the video file as needed" if s in from_file else "frames decoded in memory beforehand"
        lines.append(f"- guided (frames only) on {s}: {v:.0f} frames/s per track ({how})")
    for s, v in results.get("guided_file_frames_per_s", {}).items():  # type: ignore[union-attr]
        lines.append(
            f"- guided (frames only) on {s}, read from the video file with a fresh reader per call (as the server and "
            f"CLI do; includes counting the frames and the background model): {v:.0f} frames/s on its longest track"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes: dict[str, dict[str, dict[str, dict[str, object]]]] = results["scenes"]  # type: ignore[assignment]
    fig, axes = plt.subplots(1, len(scenes), figsize=(6 * len(scenes), 4), squeeze=False)
    for ax, (sname, per_m) in zip(axes[0], scenes.items(), strict=True):
        for m, per_k in per_m.items():
            ks = [int(k) for k in per_k]
            ax.plot(ks, [1 - per_k[str(k)]["all"]["mean_iou"] for k in ks], marker="o", label=m)  # type: ignore[index]
        ax.set_xlabel("keyframe interval k (frames)")
        ax.set_ylabel("1 - mean IoU")
        ax.set_title(sname)
        ax.set_xscale("log", base=2)
        all_ks = sorted({int(k) for per_k in per_m.values() for k in per_k})
        ax.set_xticks(all_ks, [str(k) for k in all_ks])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _interval(text: str) -> int:
    k = int(text)
    if k < 2:
        raise argparse.ArgumentTypeError(f"keyframe interval {k}: expected 2 or more (a frame between keyframes)")
    return k


def _without_out(argv: Sequence[str]) -> list[str]:
    """The command's arguments without ``--out DIR`` (where the files went says nothing about the numbers, and a
    machine's folders do not belong in a shared result)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            out.append(a)
    return out


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: expected 1 or more")
    return n


def _json_safe(value: object) -> object:
    """``value`` with NaN and infinities as null (standard JSON; an empty speed bin has no mean)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", type=_interval, nargs="+", default=[5, 10, 20, 40], help="keyframe intervals (>= 2)")
    ap.add_argument(
        "--methods",
        nargs="+",
        default=list(BOX_METHODS),
        choices=BOX_METHODS,
        metavar="METHOD",
        help=f"any of {', '.join(BOX_METHODS)} (default: all)",
    )
    ap.add_argument(
        "--fast-seeds",
        type=int,
        nargs="+",
        default=[20, 21, 22, 23, 24, 25],
        help="seeds of the generated scenes (default: seeds no default was chosen on)",
    )
    ap.add_argument(
        "--mot-gt",
        type=Path,
        help="your own MOTChallenge ground truth (with --video for guided; without, the geometric methods and auto)",
    )
    ap.add_argument(
        "--cvat-gt",
        type=Path,
        help="your own ground truth as a CVAT for video 1.1 export (boxes and skeletons; scored on its keyframes, "
        "not on CVAT's fill between them), with --video for guided",
    )
    ap.add_argument(
        "--ls-gt",
        type=Path,
        help="your own ground truth as a Label Studio JSON export (its first task's videorectangle tracks; scored on "
        "the frames keyed, not on Label Studio's fill), with --video for guided",
    )
    ap.add_argument("--video", type=Path, help="the video of --mot-gt, --cvat-gt or --ls-gt")
    ap.add_argument("--dets", type=Path, help="optional MOTChallenge detections for --mot-gt, --cvat-gt or --ls-gt")
    ap.add_argument(
        "--detector",
        action="append",
        default=[],
        metavar="MODEL",
        help="with --video: a registry model (detect or pose) run on the video as guided's and auto's detector, in "
        "place of --dets; a pose model also guides their skeletons (e.g. prelabel-synth-pose); repeatable",
    )
    ap.add_argument(
        "--min-visibility",
        type=float,
        default=0.0,
        help="with --mot-gt: boxes whose visibility (9th column) is below this are not scored, as rows flagged 0 are "
        "(default 0: every box is scored, the visibility column is not read)",
    )
    ap.add_argument("--no-pets", action="store_true", help="leave out PETS09-S2L1 (used when ../shared/data has it)")
    ap.add_argument(
        "--mot15",
        action="store_true",
        help="add the MOT15 sequences of ../shared/data/mot15 (ground truth, no frames: geometric methods and auto; "
        "--min-visibility does not apply, their visibility column is -1)",
    )
    ap.add_argument("--no-fast", action="store_true", help="leave out the generated scenes")
    ap.add_argument(
        "--preset",
        default="fast-motion",
        choices=sorted(PRESETS),
        help="the generated scenes' preset (default fast-motion; e.g. actions: people squatting, bending and falling "
        "at 30 fps, where keyframes every few frames leave little for the frames to add)",
    )
    ap.add_argument("--no-detector", action="store_true", help="no shipped-detector support on generated scenes")
    ap.add_argument("--no-effort", action="store_true")
    ap.add_argument(
        "--effort-spans",
        type=_positive,
        default=6,
        help="ground-truth spans per real scene in the effort simulation (>= 1)",
    )
    ap.add_argument("--quick", action="store_true", help="fewer tracks and seeds")
    ap.add_argument(
        "--per-class",
        action="store_true",
        help="generated scenes: mean IoU and detector ceiling per class (person, ball), and keyframes needed per class",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    args.ks = sorted(set(args.ks))
    try:  # before any work: a run that cannot write its results is lost at the end
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        ap.error(f"--out {args.out}: cannot make the results folder there ({exc.strerror or exc})")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cv2.setNumThreads(1)

    scenes: list[Scene] = []
    if sum(x is not None for x in (args.mot_gt, args.cvat_gt, args.ls_gt)) > 1:
        ap.error("give one ground truth: --mot-gt, --cvat-gt or --ls-gt (run the benchmark once for each)")
    if (args.video or args.dets) and not (args.mot_gt or args.cvat_gt or args.ls_gt):
        ap.error("--video and --dets go with --mot-gt, --cvat-gt or --ls-gt (your ground truth)")
    if args.dets and not args.video:
        ap.error("--dets needs --video (detections guide guided, which follows the frames)")
    if args.detector and not args.video:
        ap.error("--detector needs --video (with --mot-gt, --cvat-gt or --ls-gt): it runs on the video's frames")
    if args.detector and args.dets:
        ap.error("give --dets or --detector, not both")
    if args.mot_gt:
        try:
            scenes.append(custom_scene(args.mot_gt, args.video, args.dets, args.min_visibility))
        except InputError as exc:
            ap.exit(2, f"{ap.prog}: error: {exc}\n")
    if args.cvat_gt or args.ls_gt:
        try:
            tool = "cvat" if args.cvat_gt else "labelstudio"
            scenes.append(annotation_scene(args.cvat_gt or args.ls_gt, args.video, args.dets, tool=tool))
        except InputError as exc:
            ap.exit(2, f"{ap.prog}: error: {exc}\n")
    if args.detector:
        own = scenes[-1]
        try:
            own.detections = run_detectors(args.detector, args.video, own.spans)
        except InputError as exc:
            ap.exit(2, f"{ap.prog}: error: {exc}\n")
        own.notes.append(f"{own.name}: guided and auto use {', '.join(args.detector)} run on the video as detector")
    if not args.no_pets and (sc := pets09_scene(args.quick)) is not None:
        scenes.append(sc)
    if args.mot15:
        for seq in MOT15_SEQUENCES:
            gt = DATA / "mot15" / seq / "gt" / "gt.txt"
            if not gt.is_file():
                logger.warning("%s absent from ../shared/data/mot15: skipped", seq)
                continue
            try:
                shown = f"../shared/data/mot15/{seq}/gt/gt.txt"
                scenes.append(custom_scene(gt, None, None, name=f"mot15/{seq}", shown_as=shown))
            except InputError as exc:
                ap.exit(2, f"{ap.prog}: error: {exc}\n")
    seeds = [] if args.no_fast else args.fast_seeds[:2] if args.quick else args.fast_seeds
    gen = args.preset  # the generated scenes' name in the results
    fast = synthetic_scenes(gen, seeds, detector=not args.no_detector)
    if not scenes and not fast:
        ap.error("nothing to measure: PETS09 is absent or left out, --no-fast, and no --mot-gt, --cvat-gt or --ls-gt")
    if not fast and all(sc.video is None for sc in scenes) and set(args.methods) <= set(VIDEO_METHODS):
        needs = "needs" if len(args.methods) == 1 else "need"
        ap.error(f"nothing to measure: {' and '.join(args.methods)} {needs} a video, and no scene has one")
    with_det = bool(fast) and all(sc.detections is not None for sc in fast)
    # Pool the generated seeds into one scene (named after the preset): spans of each seed keep their own frames.
    results: dict[str, object] = {
        "notes": [
            f"run: methods {' '.join(args.methods)}; k {' '.join(map(str, args.ks))}"
            + ("; --quick (fewer PETS09 spans and seeds)" if args.quick else "")
        ],
        "scenes": {},
        "keyframes_needed": {},
        "command": ["benchmarks/interpolation.py", *_without_out(sys.argv[1:] if argv is None else argv)],
        "prelabel_version": prelabel.__version__,
    }
    for sc in scenes:
        shorter = {k: sum(len(sp.frames) <= k + 1 for sp in sc.spans) for k in args.ks}
        if any(shorter.values()):
            sc.notes.append(
                f"{sc.name}: spans with no keyframe inside them (at most k + 1 frames long), per k: "
                + ", ".join(f"k={k}: {n} of {len(sc.spans)}" for k, n in shorter.items())
                + " (their keyframes are their two ends, whatever k)"
            )
    for sc in scenes:
        results["notes"].extend(sc.notes)  # type: ignore[union-attr]
        results["scenes"][sc.name] = evaluate([sc], args.methods, args.ks)  # type: ignore[index]
    groups = ([(gen, fast)] if fast else []) + [(s.name, [s]) for s in scenes]
    if fast:
        results["scenes"][gen] = evaluate(fast, args.methods, args.ks, args.per_class)  # type: ignore[index]
    results["detector_ceiling_mean_iou"] = {
        name: detector_ceiling(group) for name, group in groups if all(sc.detections is not None for sc in group)
    }
    if with_det:
        results["pose_ceiling_pck05_limbs"] = {gen: pose_ceiling(fast)}
    if fast:
        results["notes"].append(  # type: ignore[union-attr]
            f"{gen}: prelabel.synthetic preset '{gen}', seeds {list(seeds)}; "
            + (
                f"guided and auto use the shipped {SYNTH_POSE} (persons, keypoints) and {SYNTH_DET} (balls, at "
                f"{BALL_IMGSZ} px), run once per scene; guided-frames uses frames only, the geometric methods the "
                "keyframes alone"
                if with_det
                else "no detector support (shipped models absent or --no-detector): guided equals guided-frames"
            )
        )
    eff_methods = [m for m in ("linear", "spline", "kalman", "guided-frames", "guided", "auto") if m in args.methods]
    measured = [m for m in eff_methods if m not in VIDEO_METHODS or fast or any(sc.video for sc in scenes)]
    if not args.no_effort and eff_methods:
        results["notes"].append(  # type: ignore[union-attr]
            f"keyframes needed ({', '.join(measured)}"
            + ("; kalman-ca is left out of it" if "kalman-ca" in args.methods else "")
            + "): "
            + (f"all {gen} spans; " if fast else "")
            + (f"the first {args.effort_spans} spans of each " if args.effort_spans > 1 else "the first span of each ")
            + ("other " if fast else "")
            + "scene"
        )
    no_dets = [sc.name for sc in scenes if sc.detections is None and sc.video is not None]
    if no_dets and any(m in args.methods for m in ("guided", "auto")):
        results["notes"].append(  # type: ignore[union-attr]
            f"{', '.join(no_dets)}: no detections given, so guided equals guided-frames there"
        )
    if any(sc.detections is not None and len(sc.spans) > 1 for sc in scenes) and any(
        m in args.methods for m in ("guided", "auto")
    ):
        results["notes"].append(  # type: ignore[union-attr]
            "guided and auto leave to the other spans of a scene (keyed every k frames too, as an annotator keys "
            "every object) the detections those sit on, as prelabel interpolate and the Interpolate RPC leave to a "
            "file's or request's other tracks; the keyframes-needed simulation does not (its other spans have no "
            "keyframes between their ends)"
        )
    results["notes"].append(  # type: ignore[union-attr]
        "tuning: the defaults of guided, its detection path and pose fusion were chosen on PETS09-S2L1"
        + (" (so its numbers here are not held out)" if any(s.name == "pets09" for s in scenes) else "")
        + " and on generated fast-motion seeds 0-5, with seeds 10-15 used to check choices; the default "
        "--fast-seeds 20-25 served neither"
        + (
            f" (on the {gen} preset: the correction of the pose model's offset on still keypoints was first seen on "
            "seed 5, and kalman's limit on gaps at rest was checked on seeds 20-22 before it became the default; "
            "nothing else was chosen on it)"
            if gen != "fast-motion"
            else ""
        )
        + ". Expect smaller gains on footage none of it resembles (--mot-gt or --cvat-gt with --video takes your own)"
    )

    if not args.no_effort and eff_methods:
        eff: dict[str, dict[str, dict[str, int]]] = {}
        eff_class: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for name, group in groups:
            eff[name] = {}
            for m in eff_methods:
                if not _runs_on(m, group):
                    continue
                cap = None if name == gen else args.effort_spans
                eff[name][m] = {}
                for pol in ("suggested", "worst"):
                    per_span = [
                        (sp, n)
                        for s in group
                        for sp, n in zip(s.spans, keyframes_needed_per_span(s, m, pol, max_spans=cap), strict=False)
                    ]
                    eff[name][m][pol] = sum(n for _, n in per_span)
                    if args.per_class and name == gen:
                        for c in sorted({sp.class_name for sp, _ in per_span}):
                            eff_class[c][m][pol] = sum(n for sp, n in per_span if sp.class_name == c)
                logger.info("keyframes needed %s %s: %s", name, m, eff[name][m])
        results["keyframes_needed"] = eff
        if eff_class:
            results["keyframes_needed_fast_motion_by_class"] = {c: dict(v) for c, v in eff_class.items()}

    geo = [m for m in ("linear", "spline", "kalman", "kalman-ca") if m in args.methods]
    results["throughput_box_frames_per_s"] = throughput_geometric(geo)
    results["frames_read_from_file"] = [sc.name for sc in scenes if isinstance(sc.video, VideoFileFrames)]
    results["guided_frames_per_s"] = {
        s: per_m["guided-frames"][str(args.ks[-1])]["frames_per_s"]  # type: ignore[index]
        for s, per_m in results["scenes"].items()  # type: ignore[union-attr]
        if "guided-frames" in per_m
    }
    if not args.no_pets and (DATA / "pets09-s2l1").exists():
        results["guided_file_frames_per_s"] = {"pets09": throughput_guided_file(DATA / "pets09-s2l1")}
    (args.out / "interpolation.json").write_text(json.dumps(_json_safe(results), indent=1, allow_nan=False))
    (args.out / "interpolation.md").write_text(markdown(results))
    plot(results, args.out / "interpolation_error_vs_k.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
