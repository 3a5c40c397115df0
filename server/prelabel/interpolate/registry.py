"""Interpolation methods by name: a small registry object (no module-level mutable state)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import Float64Array, IntArray, InterpolationMethod, RunEstimate, RunInput
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
    """Picks, per segment between two keyframes, the method that best predicts the annotator's own keyframes.

    Leave-one-out on the keyframes: each inner keyframe ``j`` (up to ``max_checks`` of them, evenly spread) is predicted
    by every candidate from its neighbours ``j - 1`` and ``j + 1`` alone (``kalman`` and ``spline`` from
    ``context_keyframes`` keyframes on either side, ``context_checks``: with a video, the worse of the two counts, as
    guided is checked from the neighbours alone), and scored by IoU with the keyframe box. A candidate's run score is
    its mean IoU over the run; its score on the segment ``[j, j + 1]`` is the mean of its IoUs at the segment's own end
    keyframes (those held out) shrunk towards the run score with ``prior`` pseudo-checks, so one lucky keyframe does not
    decide a segment. The run's best candidate fills every segment where no other candidate beats it by ``margin``;
    segments are joined at the keyframes, which every method passes through exactly. Candidates, in order: ``guided`` on
    frames only (when a video is given), ``kalman``, ``linear``, ``spline``, and ``guided`` with the detections (when
    given: a detector whose boxes are drawn differently from the annotator's can hurt, and only the keyframes can tell);
    ``guided`` with detections goes first when the detections match the keyframe boxes
    (:meth:`GuidedMethod.detections_fit`). With fewer than three keyframes there is nothing to check: the first
    candidate.

    Attributes:
        max_checks: most keyframes held out per run.
        margin: mean IoU a later candidate needs above an earlier one to be chosen.
        per_segment: choose per segment (False: one candidate for the whole run).
        prior: weight of the run score in a segment's score, in held-out keyframes.
        cache_checks: leave-one-out checks kept between calls (same video and detections).
        context_checks: candidates whose held-out keyframe is predicted from ``context_keyframes`` keyframes on
            either side (the geometric methods that read beyond a keyframe's neighbours; not cached): with a video,
            also from its neighbours, the worse of the two counting.
        context_keyframes: keyframes on either side of a held-out one in the second check.
    """

    name: str = "auto"
    needs_video: bool = False
    geometric: KalmanMethod = field(default_factory=KalmanMethod)
    guided: GuidedMethod = field(default_factory=GuidedMethod)
    linear: LinearMethod = field(default_factory=LinearMethod)
    spline: SplineMethod = field(default_factory=SplineMethod)
    max_checks: int = 64
    margin: float = 0.005
    per_segment: bool = True
    prior: float = 2.0
    cache_checks: int = 4096
    context_checks: tuple[str, ...] = ("kalman", "spline")
    context_keyframes: int = 3
    _loo_cache: OrderedDict[tuple[object, ...], float] = field(default_factory=OrderedDict, init=False, repr=False)
    _loo_owner: tuple[object, object] | None = field(default=None, init=False, repr=False)

    def release_frames(self) -> None:
        """Drop the decoded frames the guided candidate keeps (its results and the checks stay)."""
        self.guided.release_frames()

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

    def _held_out(self, num_keyframes: int) -> IntArray:
        """Indices of the inner keyframes that are held out (at most ``max_checks``, evenly spread)."""
        inner = np.arange(1, num_keyframes - 1, dtype=np.int64)
        if len(inner) > self.max_checks:
            inner = inner[np.unique(np.linspace(0, len(inner) - 1, self.max_checks).round().astype(np.int64))]
        return inner

    def _loo(
        self, run: RunInput, cands: list[tuple[str, InterpolationMethod, RunInput]], inner: IntArray
    ) -> dict[str, Float64Array]:
        """Leave-one-out IoU of each candidate at each held-out keyframe ``inner``.

        Each check depends only on the held-out keyframe and its two neighbours (frames and boxes), so checks are
        kept between calls on the same video and detections: an annotator who adds one keyframe and asks again
        re-runs the checks next to it only.
        """
        if self._loo_owner is None or self._loo_owner[0] is not run.video or self._loo_owner[1] is not run.detections:
            self._loo_cache.clear()
            self._loo_owner = (run.video, run.detections)
        kf, boxes = run.key_frames, run.key_xyxy
        out: dict[str, Float64Array] = {}
        for label, meth, base in cands:
            ious = np.empty(len(inner))
            wide_check = label in self.context_checks
            for r, j in enumerate(inner.tolist()):
                # Kalman and spline read beyond a keyframe's neighbours (a velocity carried through a keyframe, the
                # slopes of its neighbours): from the two neighbours alone they draw the straight line, and tie with
                # linear. They are checked from ``context_keyframes`` keyframes on either side, which shows how they
                # bend between keyframes (an overshoot where the motion turns); the window keeps a check's cost off
                # the run's length. Against guided, checked from the neighbours alone, the worse of the two counts
                # (the wider check knows more than guided's). Among the geometric methods alone the wider check is
                # how they run: the worse of the two never let kalman beat linear, so that without a video auto was
                # linear (PETS09-S2L1 k=20: 0.770 against kalman's 0.814).
                hit = self._neighbour_check(label, meth, base, j) if run.video is not None or not wide_check else 1.0
                if wide_check:
                    lo, hi = max(0, j - self.context_keyframes), min(len(kf), j + self.context_keyframes + 1)
                    near = [i for i in range(lo, hi) if i != j]
                    sub = replace(base, key_frames=kf[near], key_xyxy=boxes[near])
                    pred = meth.interpolate_run(sub).xyxy[int(kf[j] - kf[lo])]
                    hit = min(hit, float(_iou_rows(pred[None], boxes[j : j + 1])[0]))
                ious[r] = hit
            out[label] = ious
        return out

    def _neighbour_check(self, label: str, meth: InterpolationMethod, base: RunInput, j: int) -> float:
        """IoU of keyframe ``j`` as ``meth`` predicts it from keyframes ``j - 1`` and ``j + 1`` alone (cached)."""
        kf, boxes = base.key_frames, base.key_xyxy
        key = (label, *kf[j - 1 : j + 2].tolist(), boxes[j - 1 : j + 2].tobytes())
        hit = self._loo_cache.get(key)
        if hit is None:
            sub = replace(base, key_frames=kf[[j - 1, j + 1]], key_xyxy=boxes[[j - 1, j + 1]])
            pred = meth.interpolate_run(sub).xyxy[int(kf[j] - kf[j - 1])]
            hit = float(_iou_rows(pred[None], boxes[j : j + 1])[0])
            self._loo_cache[key] = hit
            if len(self._loo_cache) > self.cache_checks:
                self._loo_cache.popitem(last=False)
        return hit

    def scores(self, run: RunInput) -> dict[str, float]:
        """Leave-one-out mean IoU of each candidate on the run's inner keyframes (empty with < 3 keyframes)."""
        if len(run.key_frames) < 3:
            return {}
        loo = self._loo(run, self._candidates(run), self._held_out(len(run.key_frames)))
        return {label: float(v.mean()) for label, v in loo.items()}

    def _pick(self, labels: list[str], scores: dict[str, float], first: str) -> str:
        """``first`` unless a later candidate beats the best so far by ``margin``."""
        best_label, best = first, scores.get(first, -1.0)
        for lab in labels:
            if lab != first and scores.get(lab, -1.0) > best + self.margin:
                best_label, best = lab, scores[lab]
        return best_label

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """The chosen candidates' estimates, segment by segment (every frame labelled with its method's name)."""
        cands = self._candidates(run)
        by_label = {label: (meth, sub) for label, meth, sub in cands}
        labels = [c[0] for c in cands]
        kf = run.key_frames
        inner = self._held_out(len(kf)) if len(kf) >= 3 else np.zeros(0, np.int64)
        loo = self._loo(run, cands, inner) if len(inner) else {}
        run_scores = {label: float(v.mean()) for label, v in loo.items()}
        run_label = self._pick(labels, run_scores, labels[0])
        seg_labels = [run_label] * (len(kf) - 1)
        if self.per_segment and len(inner) >= 2:
            pos = {int(j): r for r, j in enumerate(inner.tolist())}
            for s in range(len(kf) - 1):
                local = [pos[j] for j in (s, s + 1) if j in pos]
                seg_scores = {
                    lab: (float(v[local].sum()) + self.prior * run_scores[lab]) / (len(local) + self.prior)
                    for lab, v in loo.items()
                }
                seg_labels[s] = self._pick(labels, seg_scores, run_label)
        logger.debug(
            "auto: track %d run from frame %d: %s (run scores %s)",
            run.track_id,
            int(kf[0]),
            run_label if len(set(seg_labels)) == 1 else seg_labels,
            run_scores,
        )
        ests: dict[str, RunEstimate] = {}
        for lab in dict.fromkeys([run_label, *seg_labels]):
            meth, sub = by_label[lab]
            ests[lab] = meth.interpolate_run(sub)
            ests[lab].method = [lab.split("+")[0]] * len(ests[lab].xyxy)
        est = ests[run_label]
        if len(ests) == 1:
            return est
        support = None  # visual support where a segment's method looked at the frames, 0 where it did not
        if any(e.support is not None for e in ests.values()):
            support = est.support.copy() if est.support is not None else np.zeros(len(est.xyxy))
        out = RunEstimate(
            est.xyxy.copy(), est.confidence.copy(), est.uncertainty.copy(), list(est.method), est.reason, support
        )
        for s, lab in enumerate(seg_labels):
            if lab == run_label:
                continue
            e = ests[lab]
            rows = slice(int(kf[s] - kf[0]), int(kf[s + 1] - kf[0]) + 1)
            out.xyxy[rows] = e.xyxy[rows]
            out.confidence[rows] = e.confidence[rows]
            out.uncertainty[rows] = e.uncertainty[rows]
            out.method[rows] = e.method[rows]
            if out.support is not None:
                out.support[rows] = e.support[rows] if e.support is not None else 0.0
        return out


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
