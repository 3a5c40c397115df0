"""Fit the action TCN from labelled skeleton tracks (generated scenes, or annotators' corrected segments)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from prelabel.actions.augment import mirror_track
from prelabel.actions.features import F32, compute_features, track_to_sequences
from prelabel.actions.taxonomy import Taxonomy, default_taxonomy
from prelabel.actions.tcn import TCNActionModel, TCNConfig
from prelabel.errors import InvalidInputError
from prelabel.types import Segment, Track

log = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class LabelledTrack:
    """One person's skeleton track with its action segments.

    Attributes:
        track: boxes with COCO-17 skeletons.
        segments: this track's segments (their ``track_id`` must equal the track's).
        fps: nominal frame rate of the video.
        ts_ms: optional (N,) timestamps of the whole video indexed by frame, in ms.
        width: frame width in pixels (for mirroring); 0 disables mirroring of this track.
    """

    track: Track
    segments: list[Segment]
    fps: float
    ts_ms: npt.NDArray[np.float64] | None = None
    width: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """Training settings.

    Attributes:
        epochs: optimiser steps, each on ``batch_size`` random crops of ``crop_frames`` frames.
        batch_size: sequences per step.
        crop_frames: length of each random crop (the whole sequence when shorter).
        lr: Adam learning rate.
        weight_decay: Adam L2.
        smooth_weight: weight of the MS-TCN smoothing loss (truncated MSE of log-probabilities between frames).
        mirror: also train on horizontally mirrored tracks.
        seed: torch and numpy seed (training is deterministic for a seed on one machine).
        threads: torch CPU threads.
        tcn: network shape.
    """

    epochs: int = 300
    batch_size: int = 24
    crop_frames: int = 96
    lr: float = 3e-3
    weight_decay: float = 1e-4
    smooth_weight: float = 0.15
    mirror: bool = True
    seed: int = 0
    threads: int = 2
    tcn: TCNConfig = field(default_factory=TCNConfig)


@dataclass
class TrainResult:
    """What :func:`train_action_model` returns: the model and its training curve (mean loss per epoch)."""

    model: TCNActionModel
    losses: list[float]
    seconds: float
    num_sequences: int
    num_frames: int


def layer_targets(
    segments: Sequence[Segment], frames: npt.NDArray[np.int64], taxonomy: Taxonomy
) -> list[npt.NDArray[np.int64]]:
    """Per-layer (T,) targets: 0 background, k+1 the layer's k-th class, :data:`IGNORE` where unknown.

    In the first (dense) layer frames without a label are ignored; in later layers they are background.
    """
    layers = taxonomy.layers()
    first = int(frames[0])
    out = []
    for li, layer in enumerate(layers):
        t = np.full(len(frames), IGNORE if li == 0 else 0, dtype=np.int64)
        for s in segments:
            if s.label in layer:
                a, b = max(s.start_frame - first, 0), min(s.end_frame - first, len(frames) - 1)
                if a <= b:
                    t[a : b + 1] = layer.index(s.label) + 1
        out.append(t)
    return out


def build_examples(data: Sequence[LabelledTrack], taxonomy: Taxonomy) -> list[tuple[F32, list[npt.NDArray[np.int64]]]]:
    """Features and targets per contiguous sequence.

    Raises:
        InvalidInputError: a segment has a label outside the taxonomy or a forbidden overlap, a segment belongs to
            another track, or a track has no skeletons (each message names the track and segment).
    """
    examples = []
    for item in data:
        tid = item.track.track_id
        for s in item.segments:
            if s.track_id != tid:
                raise InvalidInputError(
                    f"training data: segment {s.label!r} [{s.start_frame}, {s.end_frame}] has track_id {s.track_id}, "
                    f"expected {tid}"
                )
            if s.label not in taxonomy.names:
                raise InvalidInputError(
                    f"training data: track {tid}, segment [{s.start_frame}, {s.end_frame}]: unknown label "
                    f"{s.label!r}; taxonomy {taxonomy.name!r} has {list(taxonomy.names)}"
                )
        taxonomy.validate_segments(item.segments)
        tracks = [item.track]
        if item.width > 0:
            tracks.append(mirror_track(item.track, item.width))
        for tr in tracks:
            for seq in track_to_sequences(tr, fps=item.fps, ts_ms=item.ts_ms):
                targets = layer_targets(item.segments, seq.frames, taxonomy)
                if all(np.all((t == IGNORE) | (t == 0)) for t in targets):
                    continue
                examples.append((compute_features(seq), targets))
    return examples


def _batch(
    examples: Sequence[tuple[F32, list[npt.NDArray[np.int64]]]], model: TCNActionModel
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    n_layers = len(model.layers)
    t_max = max(len(f) for f, _ in examples)
    x = np.zeros((len(examples), t_max, model.feature_mean.size), np.float32)
    mask = np.zeros((len(examples), 1, t_max), np.float32)
    ys = [np.full((len(examples), t_max), IGNORE, np.int64) for _ in range(n_layers)]
    for i, (f, targets) in enumerate(examples):
        x[i, : len(f)] = model.normalise(f)
        mask[i, 0, : len(f)] = 1.0
        for li in range(n_layers):
            ys[li][i, : len(f)] = targets[li]
    return (
        torch.from_numpy(x).permute(0, 2, 1).contiguous(),
        torch.from_numpy(mask),
        [torch.from_numpy(y) for y in ys],
    )


def _crops(
    examples: Sequence[tuple[F32, list[npt.NDArray[np.int64]]]], cfg: TrainConfig, rng: np.random.Generator
) -> list[tuple[F32, list[npt.NDArray[np.int64]]]]:
    """``cfg.batch_size`` random windows of ``cfg.crop_frames`` frames from random sequences."""
    out = []
    for i in rng.integers(0, len(examples), size=cfg.batch_size):
        f, ys = examples[int(i)]
        a = int(rng.integers(0, max(1, len(f) - cfg.crop_frames + 1)))
        b = a + cfg.crop_frames
        out.append((f[a:b], [y[a:b] for y in ys]))
    return out


def _loss(logits: list[torch.Tensor], ys: list[torch.Tensor], mask: torch.Tensor, smooth_weight: float) -> torch.Tensor:
    total = torch.zeros(())
    for lg, y in zip(logits, ys, strict=True):
        if (y != IGNORE).any():
            total = total + F.cross_entropy(lg, y, ignore_index=IGNORE)
        # MS-TCN smoothing: truncated MSE between consecutive frames' log-probabilities.
        logp = F.log_softmax(lg, dim=1)
        diff = (logp[:, :, 1:] - logp[:, :, :-1].detach()) ** 2
        both = mask[:, :, 1:] * mask[:, :, :-1]
        total = total + smooth_weight * (torch.clamp(diff, max=16.0) * both).sum() / (both.sum() * lg.shape[1])
    return total


def train_action_model(
    data: Sequence[LabelledTrack],
    *,
    taxonomy: Taxonomy | None = None,
    config: TrainConfig | None = None,
    name: str = "tcn",
) -> TrainResult:
    """Train a :class:`TCNActionModel` on labelled skeleton tracks.

    Args:
        data: tracks with their segments (add skeleton noise beforehand, see
            :func:`prelabel.actions.augment.add_keypoint_noise`, so the model sees pose-model-like input).
        taxonomy: the classes; default: the package's taxonomy.
        config: training settings.
        name: the model's name (saved with it).

    Returns:
        A :class:`TrainResult` with the model in eval mode.

    Raises:
        InvalidInputError: no usable training data, or bad labels (see :func:`build_examples`).
    """
    cfg = config or TrainConfig()
    tax = taxonomy or default_taxonomy()
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        examples = build_examples(
            [d if cfg.mirror else LabelledTrack(d.track, d.segments, d.fps, d.ts_ms, 0.0) for d in data],
            tax,
        )
        if not examples:
            raise InvalidInputError(
                f"training data: expected labelled skeleton tracks, got {len(data)} tracks with no labelled frames"
            )
        allf = np.concatenate([f for f, _ in examples])
        model = TCNActionModel(tax, cfg.tcn, allf.mean(axis=0), allf.std(axis=0), name=name)
        opt = torch.optim.Adam(model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
        rng = np.random.default_rng(cfg.seed)
        losses = []
        model.net.train()
        for _ in range(cfg.epochs):
            x, mask, ys = _batch(_crops(examples, cfg, rng), model)
            opt.zero_grad()
            loss = _loss(model.net(x, mask), ys, mask, cfg.smooth_weight)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            losses.append(float(loss.item()))
        model.net.eval()
        model.meta.update(
            {"epochs": cfg.epochs, "lr": cfg.lr, "seed": cfg.seed, "sequences": len(examples), "frames": len(allf)}
        )
    finally:
        torch.set_num_threads(prev_threads)
    secs = time.perf_counter() - start
    log.info("trained action TCN on %d sequences (%d frames) in %.1f s", len(examples), len(allf), secs)
    return TrainResult(model, losses, secs, len(examples), len(allf))
