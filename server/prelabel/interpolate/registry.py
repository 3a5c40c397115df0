"""Interpolation methods by name: a small registry object (no module-level mutable state)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import InterpolationMethod, RunEstimate, RunInput
from prelabel.interpolate.geometric import KalmanMethod, LinearMethod, SplineMethod
from prelabel.interpolate.guided import GuidedMethod

MethodFactory = Callable[[], InterpolationMethod]


@dataclass
class AutoMethod:
    """Picks per gap between keyframes: ``guided`` where frames are given and they support its boxes on enough of
    the gap (foreground measurements that agree with the smoothed path, or, with optical flow, confident passes),
    else the geometric method (constant-velocity RTS smoother, identical to linear with only two keyframes).

    Attributes:
        min_guided_support: mean visual support over a gap that ``guided`` needs to be chosen there.
    """

    name: str = "auto"
    needs_video: bool = False
    geometric: KalmanMethod = field(default_factory=KalmanMethod)
    guided: GuidedMethod = field(default_factory=GuidedMethod)
    min_guided_support: float = 0.5

    def interpolate_run(self, run: RunInput) -> RunEstimate:
        """Per-gap choice between guided and geometric; both pass through the keyframes, so the stitch is seamless."""
        geo = self.geometric.interpolate_run(run)
        if run.video is None:
            return geo
        gui = self.guided.interpolate_run(run)
        kf = run.key_frames - run.key_frames[0]
        out = RunEstimate(gui.xyxy.copy(), gui.confidence.copy(), gui.uncertainty.copy(), list(gui.method), gui.reason)
        for a, b in zip(kf[:-1].tolist(), kf[1:].tolist(), strict=True):
            if b - a < 2:
                continue
            inner = slice(a + 1, b)
            support = gui.support if gui.support is not None else gui.confidence
            if float(np.mean(support[inner])) < self.min_guided_support:
                out.xyxy[inner] = geo.xyxy[inner]
                out.confidence[inner] = geo.confidence[inner]
                out.uncertainty[inner] = geo.uncertainty[inner]
                out.method[inner] = geo.method[inner]
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
