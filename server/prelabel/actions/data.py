"""Labelled training data for the action model: generated scenes and annotation-tool imports."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from prelabel.actions.augment import KeypointNoise, add_keypoint_noise
from prelabel.actions.train import LabelledTrack
from prelabel.errors import InvalidInputError
from prelabel.types import Segment, Track

log = logging.getLogger(__name__)

TRACK_ID_STRIDE = 1000
"""Scene ``i`` of a batch renumbers its tracks ``id + i * TRACK_ID_STRIDE`` so IDs stay unique across scenes."""


def parse_seeds(text: str) -> list[int]:
    """``"0-9,20,30-31"`` -> [0, 1, ..., 9, 20, 30, 31].

    Raises:
        InvalidInputError: malformed text (names the bad part).
    """
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError as exc:
            raise InvalidInputError(f"seeds: expected 'A-B' or an integer, got {part!r}") from exc
    return out


def labelled_tracks(
    tracks: Sequence[Track],
    segments: Sequence[Segment],
    *,
    fps: float,
    ts_ms: np.ndarray | None,
    width: float,
    offset: int = 0,
    noise: KeypointNoise | None = None,
    rng: np.random.Generator | None = None,
) -> list[LabelledTrack]:
    """Person tracks with skeletons paired with their segments; track IDs shifted by ``offset``.

    Raises:
        InvalidInputError: a segment refers to a track that is not among ``tracks`` (naming both).
    """
    by_id = {t.track_id: t for t in tracks}
    for s in segments:
        if s.track_id not in by_id:
            raise InvalidInputError(
                f"segment {s.label!r} [{s.start_frame}, {s.end_frame}] refers to track {s.track_id}, which is not "
                f"in the data (tracks: {sorted(by_id)})"
            )
    out = []
    for t in tracks:
        if t.class_name not in ("", "person") or not any(b.skeleton is not None for b in t.boxes):
            continue
        if noise is not None:
            t = add_keypoint_noise(t, noise, rng or np.random.default_rng(0))
        tid = t.track_id + offset
        segs = [replace(s, track_id=tid) for s in segments if s.track_id == t.track_id]
        out.append(LabelledTrack(Track(tid, t.boxes, t.class_id, t.class_name), segs, fps, ts_ms, width))
    return out


def synthetic_data(
    seeds: Iterable[int], *, preset: str = "actions", noise: KeypointNoise | None = None, noise_seed: int = 0
) -> list[LabelledTrack]:
    """Labelled person tracks from generated scenes (ground truth only, no rendering).

    Args:
        seeds: scene seeds; keep training and evaluation seeds disjoint.
        preset: a :data:`prelabel.synthetic.PRESETS` name.
        noise: pose-model-like keypoint noise added to the exact skeletons (None: exact).
        noise_seed: base seed of the noise (scene seed added).
    """
    from prelabel.synthetic import generate  # the generator is only needed for synthetic data

    out: list[LabelledTrack] = []
    for i, seed in enumerate(seeds):
        scene = generate(preset, seed, render=False)
        rng = np.random.default_rng(noise_seed * 1_000_003 + seed)
        out.extend(
            labelled_tracks(
                scene.tracks,
                scene.segments,
                fps=scene.info.fps,
                ts_ms=scene.ts_ms,
                width=scene.info.width,
                offset=i * TRACK_ID_STRIDE,
                noise=noise,
                rng=rng,
            )
        )
    return out


def imported_data(
    fmt: str, path: Path, offset: int = 0, skeletons: tuple[str, Path] | None = None, fps: float | None = None
) -> list[LabelledTrack]:
    """Labelled tracks from an annotation-tool export that holds action segments.

    Args:
        fmt: a :data:`prelabel.formats.registry.IMPORTERS` key, e.g. ``"cvat"`` (boxes, skeleton tracks and
            segments) or ``"label_studio"`` (boxes and segments; Label Studio has no keypoint tracks).
        path: the export.
        offset: added to every track ID (keeps IDs unique across files).
        skeletons: optional ``(format, path)`` of the skeleton tracks the segments refer to (by track ID), e.g.
            ``("coco", keypoints.json)`` from the job that produced the proposals; needed when ``fmt``'s file
            carries no skeletons.
        fps: the video's frame rate (frames / s) where the files do not store one (CVAT XML does not); overrides
            the files' when given.

    Raises:
        InvalidInputError: the file has no segments, no skeletons anywhere, a segment names a track without
            skeletons (naming the file, track and segment), or no frame rate is known.
    """
    from prelabel.formats.registry import load  # formats are only needed for imports

    ann = load(fmt, path)
    if not ann.segments:
        raise InvalidInputError(f"{fmt} file {path}: expected action segments to train on, found none")
    tracks, info, ts_ms = ann.tracks, ann.info, ann.ts_ms
    if skeletons is not None:
        sk_fmt, sk_path = skeletons
        sk = load(sk_fmt, sk_path, ann.info)
        tracks, info = sk.tracks, sk.info
        ts_ms = sk.ts_ms if sk.ts_ms is not None else ann.ts_ms
    source = f"{fmt} file {path}" if skeletons is None else f"{skeletons[0]} file {skeletons[1]}"
    rate = float(fps) if fps is not None else float(info.fps)
    if not np.isfinite(rate) or rate <= 0:
        raise InvalidInputError(
            f"{source}: expected a positive frame rate, the file stores {info.fps}; give the video's (--fps)"
        )
    with_skeletons = {t.track_id for t in tracks if any(b.skeleton is not None for b in t.boxes)}
    if not with_skeletons:
        raise InvalidInputError(
            f"{source}: expected person tracks with skeletons, found none in {len(tracks)} tracks; give the "
            "skeleton tracks the segments refer to, e.g. --import label_studio:tasks.json@coco:keypoints.json"
        )
    for s in ann.segments:
        if s.track_id not in with_skeletons:
            raise InvalidInputError(
                f"{fmt} file {path}: segment {s.label!r} [{s.start_frame}, {s.end_frame}] refers to track "
                f"{s.track_id}, which has no skeletons in {source} (tracks with skeletons: {sorted(with_skeletons)})"
            )
    return labelled_tracks(tracks, ann.segments, fps=rate, ts_ms=ts_ms, width=float(info.width), offset=offset)
