"""A small temporal convolutional network (MS-TCN style, one stage) over per-frame features.

Per taxonomy layer the network predicts a softmax over ``[background, classes of the layer...]`` at every frame.
Dilated residual layers (dilation 1, 2, 4, ...) with kernel 3 give a receptive field of ``2**(L+1) - 1`` frames.
Saved as a ``state_dict`` (``.pt``) plus a JSON file next to it (same stem) with the configuration, the taxonomy and
the feature normalisation, so a model loads without the training code's defaults.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from prelabel.actions.features import F32, NUM_FEATURES
from prelabel.actions.taxonomy import Taxonomy
from prelabel.errors import FailedPreconditionError, InvalidInputError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TCNConfig:
    """Network shape.

    Attributes:
        channels: hidden channels.
        num_layers: dilated residual layers (receptive field ``2**(num_layers+1) - 1`` frames).
        dropout: dropout inside residual layers during training.
    """

    channels: int = 32
    num_layers: int = 6
    dropout: float = 0.2


class _DilatedResidual(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.out = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.out(torch.relu(self.conv(x))))
        return (x + h) * mask


class ActionTCN(nn.Module):
    """Features (B, F, T) -> per-layer logits, each (B, 1 + K_layer, T)."""

    def __init__(self, in_dim: int, layer_sizes: list[int], config: TCNConfig) -> None:
        super().__init__()
        self.inp = nn.Conv1d(in_dim, config.channels, 1)
        self.blocks = nn.ModuleList(
            [_DilatedResidual(config.channels, 2**i, config.dropout) for i in range(config.num_layers)]
        )
        self.heads = nn.ModuleList([nn.Conv1d(config.channels, 1 + k, 1) for k in layer_sizes])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Args: x (B, F, T) float32, mask (B, 1, T) float32 (1 on valid frames). Returns per-layer logits."""
        h = self.inp(x) * mask
        for block in self.blocks:
            h = block(h, mask)
        return [head(h) * mask for head in self.heads]


class TCNActionModel:
    """A trained TCN with its taxonomy and feature normalisation; turns features into per-frame class scores."""

    method = "tcn"

    def __init__(
        self,
        taxonomy: Taxonomy,
        config: TCNConfig,
        feature_mean: npt.ArrayLike,
        feature_std: npt.ArrayLike,
        net: ActionTCN | None = None,
        name: str = "tcn",
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.config = config
        self.name = name
        self.meta = dict(meta or {})
        self.feature_mean = np.asarray(feature_mean, dtype=np.float32).reshape(-1)
        self.feature_std = np.maximum(np.asarray(feature_std, dtype=np.float32).reshape(-1), 1e-3)
        if self.feature_mean.shape != (NUM_FEATURES,) or self.feature_std.shape != (NUM_FEATURES,):
            raise InvalidInputError(
                f"action model {name!r}: expected feature statistics of length {NUM_FEATURES}, got "
                f"{self.feature_mean.shape} and {self.feature_std.shape}"
            )
        self.layers = taxonomy.layers()
        self.net = net or ActionTCN(NUM_FEATURES, [len(layer) for layer in self.layers], config)

    def normalise(self, features: F32) -> F32:
        """(T, F) features standardised with the training statistics."""
        return ((features - self.feature_mean) / self.feature_std).astype(np.float32)

    def scores(self, features: F32, fps: float = 30.0) -> F32:
        """Per-frame class scores.

        Args:
            features: (T, F) from :func:`prelabel.actions.features.compute_features`.
            fps: frame rate (unused: the network works in frames at its training rate).

        Returns:
            (T, C) float32 in [0, 1], columns in ``taxonomy.names`` order. In the first layer the class scores are
            renormalised to sum to 1 (it labels every frame); later layers keep the softmax including background.
        """
        names = self.taxonomy.names
        out = np.zeros((len(features), len(names)), dtype=np.float32)
        if len(features) == 0:
            return out
        self.net.eval()
        x = torch.from_numpy(self.normalise(features)).T.unsqueeze(0)
        mask = torch.ones(1, 1, x.shape[-1])
        with torch.no_grad():
            logits = self.net(x, mask)
        for li, (layer, lg) in enumerate(zip(self.layers, logits, strict=True)):
            p = torch.softmax(lg[0], dim=0).T.numpy()  # (T, 1 + K)
            cls = p[:, 1:]
            if li == 0:
                cls = cls / np.maximum(cls.sum(axis=1, keepdims=True), 1e-6)
            for k, n in enumerate(layer):
                out[:, names.index(n)] = cls[:, k]
        return out

    def save(self, weights: Path) -> Path:
        """Write ``weights`` (state dict) and ``weights.with_suffix('.json')``; returns the JSON path."""
        weights.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), weights)
        meta_path = weights.with_suffix(".json")
        doc = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "method": self.method,
            "config": asdict(self.config),
            "taxonomy": self.taxonomy.to_dict(),
            "feature_mean": [float(v) for v in self.feature_mean],
            "feature_std": [float(v) for v in self.feature_std],
            "meta": self.meta,
        }
        meta_path.write_text(json.dumps(doc, indent=1) + "\n")
        return meta_path

    @classmethod
    def load(cls, weights: Path, name: str | None = None) -> TCNActionModel:
        """Load a model saved by :meth:`save`.

        Raises:
            FailedPreconditionError: the weights or their JSON file are missing (naming the file).
            InvalidInputError: the files do not describe a compatible model.
        """
        meta_path = weights.with_suffix(".json")
        for p in (weights, meta_path):
            if not p.is_file():
                raise FailedPreconditionError(
                    f"action model {name or weights.stem!r}: file {p} is missing; train one with "
                    "`prelabel train-actions`"
                )
        try:
            doc = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"action model file {meta_path} is not valid JSON: {exc}") from exc
        if doc.get("format_version") != FORMAT_VERSION:
            raise InvalidInputError(
                f"action model file {meta_path}: expected format_version {FORMAT_VERSION}, got "
                f"{doc.get('format_version')!r}"
            )
        taxonomy = Taxonomy.from_dict(doc["taxonomy"], source=str(meta_path.name))
        model = cls(
            taxonomy,
            TCNConfig(**doc["config"]),
            doc["feature_mean"],
            doc["feature_std"],
            name=name or str(doc.get("name", weights.stem)),
            meta=doc.get("meta", {}),
        )
        state = torch.load(weights, map_location="cpu", weights_only=True)
        try:
            model.net.load_state_dict(state)
        except RuntimeError as exc:
            raise InvalidInputError(f"action model {weights}: weights do not fit its configuration: {exc}") from exc
        model.net.eval()
        return model
