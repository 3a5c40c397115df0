"""Appearance measurements for guided interpolation on a static camera: the keyframes' foreground matched in between.

On a static camera the *foreground difference* ``D = I - background`` is close to zero wherever nothing moves, so a
keyframe box cut from ``D`` holds the object's appearance without the background it encloses (a plain image template
would be pulled back to where that background stays). Between keyframes ``a`` and ``b`` frame ``t`` is searched near
a prior centre with both keyframes' templates; their normalised sum-of-squared-differences maps are blended with
weights ``1 - s`` and ``s`` (``s = (t - a) / (b - a)``, the nearer keyframe's appearance counts more), and the best
position is refined to sub-pixel precision by a parabola through its neighbours. Unlike the foreground centroid this
tells a person from a neighbour that walks beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from prelabel.interpolate.base import Float64Array
from prelabel.interpolate.foreground import Float32Array, Gray


@dataclass(frozen=True)
class TemplateParams:
    """Template search settings.

    Attributes:
        radius: search radius around the prior centre (pixels).
        noise: expected grey-level noise of ``D`` (added to the template's energy in the normaliser, so a template
            with little foreground does not make every position look alike).
    """

    radius: int = 8
    noise: float = 5.0


@dataclass(frozen=True)
class Template:
    """A keyframe's box cut from the foreground difference.

    Attributes:
        pixels: (h, w) float32 ``I - background``.
        frac: (2,) keyframe centre minus the template's own pixel centre (sub-pixel rounding, pixels).
    """

    pixels: Float32Array
    frac: Float64Array


def cut_template(gray: Gray, bg: Float32Array, centre: Float64Array, size: tuple[int, int]) -> Template | None:
    """The ``size = (w, h)`` box of ``gray - bg`` ((H, W) uint8 and float32) around ``centre`` (x, y); None when it
    leaves the frame."""
    w, h = size
    x0 = round(float(centre[0]) - w / 2)
    y0 = round(float(centre[1]) - h / 2)
    if w < 4 or h < 4 or x0 < 0 or y0 < 0 or x0 + w > gray.shape[1] or y0 + h > gray.shape[0]:
        return None
    frac = np.asarray(centre, np.float64) - np.array([x0 + w / 2, y0 + h / 2])
    pixels = gray[y0 : y0 + h, x0 : x0 + w].astype(np.float32) - bg[y0 : y0 + h, x0 : x0 + w]
    return Template(np.ascontiguousarray(pixels), frac)


def _parabola(lo: float, mid: float, hi: float) -> float:
    den = lo - 2.0 * mid + hi
    return float(np.clip(0.5 * (lo - hi) / den, -0.5, 0.5)) if den > 1e-12 else 0.0


def match_centre(
    gray: Gray,
    bg: Float32Array,
    ta: Template,
    tb: Template,
    s: float,
    prior: Float64Array,
    params: TemplateParams,
    edge_ok: bool = False,
) -> tuple[Float64Array | None, float]:
    """Best centre of the blended templates within ``params.radius`` of ``prior``.

    Args:
        gray, bg: (H, W) uint8 frame and float32 background.
        ta, tb: templates of the gap's two keyframes, same shape.
        s: position in the gap, 0 at ``ta``'s keyframe and 1 at ``tb``'s.
        prior: (2,) prior centre (x, y) in pixels.
        params: see :class:`TemplateParams`.
        edge_ok: return the best position even on the window's edge (without sub-pixel refinement there).

    Returns:
        ``(centre, cost)``: the (x, y) centre in pixels (None where the window leaves the frame or the best position
        lies on the window's edge, i.e. the object is not within reach) and its blended normalised SSD (0 is a
        perfect match, about 1 is no better than empty background).
    """
    h, w = ta.pixels.shape
    r = params.radius
    x0 = round(float(prior[0]) - w / 2) - r
    y0 = round(float(prior[1]) - h / 2) - r
    if x0 < 0 or y0 < 0 or x0 + w + 2 * r > gray.shape[1] or y0 + h + 2 * r > gray.shape[0]:
        return None, float("inf")
    rows, cols = slice(y0, y0 + h + 2 * r), slice(x0, x0 + w + 2 * r)
    region = np.ascontiguousarray(gray[rows, cols].astype(np.float32) - bg[rows, cols])
    cost = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    for tpl, wt in ((ta, 1.0 - s), (tb, s)):
        if wt <= 0.0:
            continue
        ssd = cv2.matchTemplate(region, tpl.pixels, cv2.TM_SQDIFF).astype(np.float64)
        cost += wt * ssd / (float(np.square(tpl.pixels).sum()) + tpl.pixels.size * params.noise**2)
    j, i = np.unravel_index(int(np.argmin(cost)), cost.shape)
    inside = 0 < j < 2 * r and 0 < i < 2 * r
    if not inside and not edge_ok:
        return None, float(cost[j, i])
    dx = _parabola(cost[j, i - 1], cost[j, i], cost[j, i + 1]) if 0 < i < 2 * r else 0.0
    dy = _parabola(cost[j - 1, i], cost[j, i], cost[j + 1, i]) if 0 < j < 2 * r else 0.0
    frac = (1.0 - s) * ta.frac + s * tb.frac
    centre = np.array([x0 + i + dx + w / 2, y0 + j + dy + h / 2]) + frac
    return centre, float(cost[j, i])


def path_cost(
    gray: Gray, bg: Float32Array, ta: Template, tb: Template, s: float, centre: Float64Array, params: TemplateParams
) -> float:
    """Blended normalised SSD of both templates at ``centre`` (x, y), the best of the 3x3 integer positions around
    it (rounding); ``inf`` where the box leaves the frame. See :func:`match_centre` for the scale."""
    _, cost = match_centre(gray, bg, ta, tb, s, centre, TemplateParams(radius=1, noise=params.noise), edge_ok=True)
    return cost
