"""Interpolation methods by name: a small registry object (no module-level mutable state)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import Float64Array, InterpolationMethod, RunEstimate, RunInput
from prelabel.interpolate.geometric import KalmanMethod, LinearMethod, SplineMethod
from prelabel.interpolate.guided import GuidedMethod

logger = logging.getLogger(__name__)

MethodFactory = Callable[[], InterpolationMethod]


def _iou_rows(a: Float64Array, b: Float64Array) -> Float64Array:
    """Row-wise IoU of (N, 4) ``xyxy`` boxes."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = ix * iy
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0))


@dataclass
class AutoMethod:
    """Picks, per run of keyframes, the method that best predicts the annotator's own keyframes.

    Leave-one-out on the keyframes: each inner keyframe ``j`` (up to ``max_checks`` of them, evenly spread) is
    predicted by every candidate from its neighbours ``j - 1`` and ``j + 1`` alone, and scored by IoU with the
    keyframe box. The candidate with the best mean IoU fills the run; a later candidate must win by ``margin`` to
    replace an earlier one. Candidates, in order: ``guided`` on frames only (when a video is given), ``kalman``,
    ``linear``, ``spline``, and ``guided`` with the detections (when given: a detector whose boxes are drawn
    differently from the annotator's can hurt, and only the keyframes can tell); ``guided`` with detections goes first
    when the detections match the keyframe boxes (:meth:`GuidedMethod.detections_fit`). With fewer than three
    keyframes there is nothing to check: the first candidate.

    Attributes:
        max_checks: most keyframes held out per run.
        margin: mean IoU a later candidate needs above an earlier one to be chosen.
    """

    name: str = "auto"
    needs_video: bool = False
    geometric: KalmanMethod = field(default_factory=KalmanMethod)
    guided: GuidedMethod = field(default_factory=GuidedMethod)
    linear: LinearMethod = field(default_factory=LinearMethod)
    spline: SplineMethod = field(default_factory=SplineMethod)
    max_checks: int = 16
    margin: float = 0.005

    def _candidates(self, run: RunInput) -> list[tuple[str, InterpolationMethod, RunInput]]:
        plain = replace(run, detections=None)
        out: list[tuple[str, InterpolationMethod, RunInput]] = []
        if run.video is not None:
            out.append(("guided", self.guided, plain))
        out += [("kalman", self.geometric, plain), ("linear", self.linear, plain), ("spline", self.spline, plain)]
        if run.video is not None and run.detections is not None:
            with_dets = ("guided+detections", self.guided, run)
            # Detections drawn like the keyframes go first (they win ties and runs too short to check).
            fits = self.guided.det_path is not None and self.guided.detections_fit(run, run.detections)
            out = [with_dets, *out] if fits else [*out, with_dets]
        return out

    def scores(self, run: RunInput) -> dict[str, float]:
        """Leave-one-out mean IoU of each candidate on the run's inner keyframes (empty with < 3 keyframes)."""
        kf, boxes = run.key_frames, run.key_xyxy
        if len(kf) < 3:
            return {}
        inner = np.arange(1, len(kf) - 1)
        if len(inner) > self.max_checks:
            inner = inner[np.unique(np.linspace(0, len(inner) - 1, self.max_checks).round().astype(np.int64))]
        out: dict[str, float] = {}
        for label, meth, base in self._candidates(run):
            pred = np.empty((len(inner), 4))
            for r, j in enumerate(inner.tolist()):
                sub = replace(base, key_frames=kf[[j - 1, j + 1]], key_xyxy=boxes[[j - 1, j + 1]])
                pred[r] = meth.interpolate_run(sub).xyxy[int(kf[j] - kf[j - 1])]
            out[label] = float(_iou_rows(pred, boxes[inner]).mean())
        return out

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """The chosen candidate's estimate (every frame labelled with its name)."""
        cands = self._candidates(run)
        scores = self.scores(run)
        label, meth, sub = cands[0]
        best = scores.get(label, -1.0)
        for lab, m, s in cands[1:]:
            if scores.get(lab, -1.0) > best + self.margin:
                label, meth, sub, best = lab, m, s, scores[lab]
        logger.debug(
            "auto: track %d run from frame %d: %s (scores %s)", run.track_id, int(run.key_frames[0]), label, scores
        )
        est = meth.interpolate_run(sub)
        est.method = [label.split("+")[0]] * len(est.xyxy)
        return est


class MethodRegistry:
    """Factories of interpolation methods by name; each call to :meth:`create` returns a fresh method object."""

    def __init__(self, factories: Mapping[str, MethodFactory] | None = None) -> None:
        self._factories: dict[str, MethodFactory] = dict(factories or {})

    def register(self, name: str, factory: MethodFactory) -> None:
        """Add or replace a method."""
        if not name:
            raise InvalidInputError("interpolation method name must not be empty")
        self._factories[name] = factory

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def create(self, name: str) -> InterpolationMethod:
        """A new method object.

        Raises:
            InvalidInputError: the name is not registered (the message lists the known names).
        """
        factory = self._factories.get(name)
        if factory is None:
            raise InvalidInputError(f"unknown interpolation method {name!r}; expected one of {self.names()}")
        return factory()


def default_registry() -> MethodRegistry:
    """``linear``, ``spline``, ``kalman`` (constant velocity), ``kalman-ca`` (constant acceleration), ``guided``,
    ``auto``."""
    return MethodRegistry(
        {
            "linear": LinearMethod,
            "spline": SplineMethod,
            "kalman": KalmanMethod,
            "kalman-ca": lambda: KalmanMethod(name="kalman-ca", model="ca"),
            "guided": GuidedMethod,
            "auto": AutoMethod,
        }
    )
