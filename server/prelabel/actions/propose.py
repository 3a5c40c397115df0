"""Segment proposals per person track: the entry point for the service, the pipeline and the CLI.

Usage::

    segmenter = load_segmenter("rules")                 # or a trained model's registry name, or a .pt path
    segments = segmenter.propose(tracks, fps=30.0, ts_ms=video_ts)

    # one-shot form
    segments = propose_segments(tracks, fps=30.0, model="actions-tcn-small")
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy.typing as npt
import yaml

from prelabel.actions.decode import DecodeOptions, decode_track
from prelabel.actions.features import F32, compute_features, track_to_sequences
from prelabel.actions.rules import RuleThresholds, rule_scores
from prelabel.actions.taxonomy import Taxonomy, default_taxonomy
from prelabel.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from prelabel.types import Segment, Source, Track

log = logging.getLogger(__name__)

RULES = "rules"
PERSON_CLASSES = ("", "person")


class FrameScorer(Protocol):
    """Turns (T, F) features into (T, C) class scores in the order of its ``taxonomy.names``."""

    taxonomy: Taxonomy
    method: str

    def scores(self, features: F32, fps: float = 30.0) -> F32:
        """Per-frame class scores of (T, F) features at ``fps`` frames per second."""
        ...


class RuleScorer:
    """The kinematic rules baseline as a :class:`FrameScorer`."""

    method = RULES

    def __init__(self, taxonomy: Taxonomy | None = None, thresholds: RuleThresholds | None = None) -> None:
        self.taxonomy = taxonomy or default_taxonomy()
        self.thresholds = thresholds or RuleThresholds()

    def scores(self, features: F32, fps: float = 30.0) -> F32:
        """See :func:`prelabel.actions.rules.rule_scores`."""
        return rule_scores(features, self.taxonomy, self.thresholds, fps)


class ActionSegmenter:
    """Proposes action segments for skeleton tracks with one scorer (rules or a trained model).

    Holds no per-call state: one instance can serve concurrent requests.
    """

    def __init__(self, scorer: FrameScorer, options: DecodeOptions | None = None, name: str | None = None) -> None:
        self.scorer = scorer
        self.options = options or DecodeOptions()
        self.name = name or scorer.method

    @property
    def taxonomy(self) -> Taxonomy:
        """The classes this segmenter labels."""
        return self.scorer.taxonomy

    def propose_track(self, track: Track, *, fps: float, ts_ms: npt.ArrayLike | None = None) -> list[Segment]:
        """Segments of one person track (see :meth:`propose`)."""
        source = Source.RULE if self.scorer.method == RULES else Source.MODEL
        out: list[Segment] = []
        for seq in track_to_sequences(track, fps=fps, ts_ms=ts_ms):
            scores = self.scorer.scores(compute_features(seq), fps)
            out.extend(
                decode_track(
                    scores,
                    seq.frames,
                    seq.ts_ms,
                    track_id=track.track_id,
                    taxonomy=self.taxonomy,
                    fps=fps,
                    source=source,
                    method=self.name,
                    options=self.options,
                )
            )
        return out

    def propose(self, tracks: Sequence[Track], *, fps: float, ts_ms: npt.ArrayLike | None = None) -> list[Segment]:
        """Action segments for every person track.

        Args:
            tracks: tracks whose boxes carry COCO-17 skeletons; tracks of other classes (``class_name`` not empty
                and not "person", e.g. balls) are skipped.
            fps: nominal frame rate (frames per second) of the video.
            ts_ms: optional (N,) per-frame timestamps of the whole video in ms, indexed by ``frame_idx``; without
                it each box's ``ts_ms`` is used (or ``frame_idx * 1000 / fps`` when those are not increasing).

        Returns:
            Segments sorted by track ID, then start frame. Gaps in a track longer than half a second split it;
            shorter gaps are bridged.

        Raises:
            InvalidInputError: a person track is empty or has no skeletons (naming its ID), duplicate track IDs,
                or ``fps`` is not positive.
        """
        seen: set[int] = set()
        out: list[Segment] = []
        for tr in tracks:
            if tr.track_id in seen:
                raise InvalidInputError(f"track {tr.track_id} appears twice; expected unique track IDs")
            seen.add(tr.track_id)
            if tr.class_name not in PERSON_CLASSES:
                continue
            if not tr.boxes:
                raise InvalidInputError(f"track {tr.track_id}: expected at least one frame, got an empty track")
            out.extend(self.propose_track(tr, fps=fps, ts_ms=ts_ms))
        out.sort(key=lambda s: (s.track_id, s.start_frame, s.label))
        return out


def _registry_weights(name: str, models_dir: Path) -> Path:
    """Weights path of the ``task: actions`` model ``name`` in ``models_dir/registry.yaml``."""
    path = models_dir / "registry.yaml"
    if not path.is_file():
        raise NotFoundError(f"action model {name!r}: model registry {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("models", []) if isinstance(data, dict) else []
    actions = [e for e in entries if isinstance(e, dict) and e.get("task") == "actions"]
    for e in actions:
        if e.get("name") == name:
            if not e.get("weights"):
                raise InvalidInputError(f"action model {name!r}: registry entry has no 'weights'")
            weights = Path(str(e["weights"]))
            return weights if weights.is_absolute() else (models_dir / weights)
    known = [RULES, *(str(e.get("name")) for e in actions)]
    raise NotFoundError(f"unknown action model {name!r}; known: {known}")


def default_models_dir() -> Path:
    """``models/`` of a source checkout when present, else ``./models``."""
    checkout = Path(__file__).resolve().parents[3] / "models"
    return checkout if (checkout / "registry.yaml").is_file() else Path.cwd() / "models"


def load_segmenter(
    model: str = RULES,
    *,
    taxonomy: Taxonomy | None = None,
    models_dir: Path | None = None,
    options: DecodeOptions | None = None,
) -> ActionSegmenter:
    """An :class:`ActionSegmenter` for ``model``.

    Args:
        model: ``"rules"`` (or empty), a ``task: actions`` name in ``models_dir/registry.yaml``, or a path to a
            ``.pt`` saved by :meth:`prelabel.actions.tcn.TCNActionModel.save`.
        taxonomy: classes for the rules (trained models carry their own taxonomy; passing a different one is an
            error).
        models_dir: folder of ``registry.yaml``; default: the checkout's ``models/``.
        options: decoding parameters.

    Raises:
        NotFoundError: unknown model name (lists the known ones).
        FailedPreconditionError: the model's files are missing.
        InvalidInputError: the model's taxonomy differs from ``taxonomy``.
    """
    if not model or model == RULES:
        return ActionSegmenter(RuleScorer(taxonomy), options)
    from prelabel.actions.tcn import TCNActionModel  # torch is imported only when a trained model is used

    path = Path(model)
    if path.suffix == ".pt" and path.is_file():
        weights, name = path, path.stem
    else:
        weights, name = _registry_weights(model, models_dir or default_models_dir()), model
    if not weights.is_file():
        raise FailedPreconditionError(
            f"action model {name!r}: weights file {weights} is missing; train it with `prelabel train-actions`"
        )
    scorer = TCNActionModel.load(weights, name=name)
    if taxonomy is not None and taxonomy.names != scorer.taxonomy.names:
        raise InvalidInputError(
            f"action model {name!r} was trained for classes {list(scorer.taxonomy.names)}, got a taxonomy with "
            f"{list(taxonomy.names)}"
        )
    return ActionSegmenter(scorer, options, name=name)


def propose_segments(
    tracks: Sequence[Track],
    *,
    fps: float,
    ts_ms: npt.ArrayLike | None = None,
    model: str = RULES,
    taxonomy: Taxonomy | None = None,
    models_dir: Path | None = None,
) -> list[Segment]:
    """Action segments for skeleton tracks in one call (loads the model each time; keep an
    :class:`ActionSegmenter` from :func:`load_segmenter` to serve many requests).

    See :meth:`ActionSegmenter.propose` for arguments, returns and errors, and :func:`load_segmenter` for ``model``.
    """
    return load_segmenter(model, taxonomy=taxonomy, models_dir=models_dir).propose(tracks, fps=fps, ts_ms=ts_ms)
