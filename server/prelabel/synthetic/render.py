"""Drawing primitives for synthetic scenes: textures, figures as part-label maps, balls, occluders, motion blur.

Everything draws into a region of interest (ROI) given by an integer offset, so per-object work scales with the
object's size rather than the frame's. Part-label maps (uint8) are drawn first; colours and textures are applied from
them, and the same maps give the exact silhouettes used for ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.synthetic.body import Posed

U8Array = npt.NDArray[np.uint8]
F32Array = npt.NDArray[np.float32]

SHIFT = 2  # sub-pixel bits for OpenCV drawing
_SCALE = 1 << SHIFT

# Part labels of a figure's label map (0 = empty). "Far" parts are shaded darker.
SKIN, SHIRT, PANTS, SHOES, HAIR, FAR_SKIN, FAR_SHIRT, FAR_PANTS = 1, 2, 3, 4, 5, 6, 7, 8
NUM_LABELS = 9


@dataclass(frozen=True)
class Appearance:
    """A figure's colours and clothing textures.

    Attributes:
        palette: (NUM_LABELS, 3) float32 BGR colour per part label.
        textures: (NUM_LABELS, S, S) float32 multiplicative texture per label (1.0 = plain), tiled in image space.
    """

    palette: F32Array
    textures: F32Array


def noise_texture(rng: np.random.Generator, size: tuple[int, int], octaves: int = 4, base: int = 4) -> F32Array:
    """Smooth multi-octave value noise in [0, 1].

    Args:
        rng: random generator.
        size: (height, width) of the result in pixels.
        octaves: number of frequency doublings summed.
        base: grid cells along the shorter side at the coarsest octave.

    Returns:
        (height, width) float32 array in [0, 1].
    """
    h, w = size
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base * (2**o)
        gh, gw = max(2, cells * h // min(h, w)), max(2, cells * w // min(h, w))
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return ((out - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def clothing_texture(rng: np.random.Generator, size: int = 32) -> F32Array:
    """A (size, size) float32 multiplicative texture around 1.0: plain, stripes, checks or noise."""
    kind = int(rng.integers(0, 4))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 0:
        return np.ones((size, size), np.float32)
    if kind == 1:
        period = float(rng.uniform(4, 10))
        angle = float(rng.uniform(0, math.pi))
        t = xx * math.cos(angle) + yy * math.sin(angle)
        return (1.0 + 0.35 * np.sign(np.sin(2 * math.pi * t / period))).astype(np.float32)
    if kind == 2:
        period = int(rng.integers(4, 9))
        check = ((xx // period + yy // period) % 2).astype(np.float32)
        return (0.75 + 0.5 * check).astype(np.float32)
    return (0.7 + 0.6 * noise_texture(rng, (size, size), octaves=2, base=3)).astype(np.float32)


def random_appearance(rng: np.random.Generator) -> Appearance:
    """Random skin, hair and clothing colours and clothing textures for one figure."""
    skin_tones = np.array([[120, 160, 220], [90, 130, 190], [60, 95, 150], [40, 65, 110], [150, 185, 230]], np.float32)
    skin = skin_tones[int(rng.integers(0, len(skin_tones)))] * float(rng.uniform(0.9, 1.1))
    hair = np.array(rng.uniform(10, 90, 3), np.float32) * np.float32(rng.uniform(0.5, 1.5))
    shirt = rng.uniform(20, 240, 3).astype(np.float32)
    pants = rng.uniform(15, 200, 3).astype(np.float32)
    shoes = rng.uniform(10, 120, 3).astype(np.float32)
    palette = np.zeros((NUM_LABELS, 3), np.float32)
    palette[SKIN], palette[SHIRT], palette[PANTS], palette[SHOES], palette[HAIR] = skin, shirt, pants, shoes, hair
    palette[FAR_SKIN], palette[FAR_SHIRT], palette[FAR_PANTS] = 0.78 * skin, 0.75 * shirt, 0.75 * pants
    size = 32
    textures = np.ones((NUM_LABELS, size, size), np.float32)
    shirt_tex, pants_tex = clothing_texture(rng, size), clothing_texture(rng, size)
    textures[SHIRT] = textures[FAR_SHIRT] = shirt_tex
    textures[PANTS] = textures[FAR_PANTS] = pants_tex
    return Appearance(np.clip(palette, 0, 255), textures)


def fixed_point(xy: npt.ArrayLike, off: tuple[int, int]) -> tuple[int, int]:
    """Image point ``xy`` (pixels) relative to ``off``, in OpenCV fixed point with :data:`SHIFT` fractional bits."""
    x, y = np.asarray(xy, dtype=np.float64)
    return (round((x - off[0]) * _SCALE), round((y - off[1]) * _SCALE))


def _line(img: U8Array, a: npt.ArrayLike, b: npt.ArrayLike, thick: float, val: int, off: tuple[int, int]) -> None:
    cv2.line(img, fixed_point(a, off), fixed_point(b, off), val, max(1, round(thick)), cv2.LINE_8, SHIFT)


def disc(img: U8Array, c: npt.ArrayLike, r: float, val: int, off: tuple[int, int]) -> None:
    """Fill a disc of radius ``r`` pixels centred at image point ``c`` with ``val`` (``img`` origin at ``off``)."""
    cv2.circle(img, fixed_point(c, off), max(1, round(r * _SCALE)), val, -1, cv2.LINE_8, SHIFT)


def figure_extent(posed: Posed, height_px: float) -> tuple[int, int, int, int]:
    """Integer ``x0, y0, x1, y1`` (exclusive) bounding every pixel :func:`draw_figure` may touch."""
    kp = posed.keypoints
    pad = 0.08 * height_px + 3.0
    hc, hr = posed.head_center, posed.head_radius
    x0 = min(float(kp[:, 0].min()) - pad, hc[0] - hr - 2)
    y0 = min(float(kp[:, 1].min()) - pad, hc[1] - hr * 1.3 - 2)
    x1 = max(float(kp[:, 0].max()) + pad, hc[0] + hr + 2)
    y1 = max(float(kp[:, 1].max()) + pad, hc[1] + hr + 2)
    return math.floor(x0), math.floor(y0), math.ceil(x1) + 1, math.ceil(y1) + 1


def draw_figure(labels: U8Array, posed: Posed, height_px: float, off: tuple[int, int]) -> None:
    """Draw a figure's part labels into ``labels`` (uint8, (h, w)) whose pixel (0, 0) is image pixel ``off``.

    Far-side limbs are drawn first, then torso and head, then near-side limbs, so the map holds what a camera sees.
    """
    k = posed.keypoints
    d = posed.depth
    h = height_px
    left_near = (d[5] + d[11]) >= (d[6] + d[12])
    sides = [(6, 8, 10, 12, 14, 16), (5, 7, 9, 11, 13, 15)]
    if not left_near:
        sides.reverse()

    def limbs(side: tuple[int, ...], far: bool) -> None:
        sh, el, wr, hp, kn, an = side
        pants, shirt, skin = (FAR_PANTS, FAR_SHIRT, FAR_SKIN) if far else (PANTS, SHIRT, SKIN)
        _line(labels, k[hp], k[kn], 0.085 * h, pants, off)
        _line(labels, k[kn], k[an], 0.065 * h, pants, off)
        disc(labels, k[an] + np.array([0.0, 0.01 * h]), 0.036 * h, SHOES, off)
        _line(labels, k[sh], k[el], 0.058 * h, shirt, off)
        _line(labels, k[el], k[wr], 0.045 * h, skin, off)
        disc(labels, k[wr], 0.03 * h, skin, off)

    limbs(sides[0], far=True)
    torso = np.array([k[5], k[6], k[12], k[11]], np.float64)
    center = torso.mean(axis=0)
    torso = center + (torso - center) * 1.12
    pts = np.array([fixed_point(p, off) for p in torso], np.int32)
    cv2.fillConvexPoly(labels, pts, SHIRT, cv2.LINE_8, SHIFT)
    _line(labels, k[5], k[6], 0.06 * h, SHIRT, off)
    _line(labels, k[11], k[12], 0.08 * h, PANTS, off)
    neck = (k[5] + k[6]) / 2.0
    _line(labels, neck, posed.head_center, 0.05 * h, SKIN, off)
    disc(labels, posed.head_center, posed.head_radius, SKIN, off)
    # Hair: a cap on the back/top of the head.
    back = posed.head_center + (posed.head_center - k[0]) * 0.35
    disc(labels, back, posed.head_radius * 0.85, HAIR, off)
    disc(labels, k[0], posed.head_radius * 0.55, SKIN, off)
    limbs(sides[1], far=False)


def colorize(labels: U8Array, app: Appearance, off: tuple[int, int]) -> F32Array:
    """Colour a part-label map: (h, w) uint8 labels -> (h, w, 3) float32 BGR, textures tiled in image space."""
    h, w = labels.shape
    s = app.textures.shape[1]
    ys = (np.arange(h) + off[1]) % s
    xs = (np.arange(w) + off[0]) % s
    tex = app.textures[labels, ys[:, None], xs[None, :]]
    return app.palette[labels] * tex[..., None]


def motion_kernel(vx: float, vy: float) -> F32Array | None:
    """Normalised line kernel for motion blur along ``(vx, vy)`` pixels (None when under 2 pixels long)."""
    length = math.hypot(vx, vy)
    if length < 2.0:
        return None
    n = math.ceil(length) | 1
    ker = np.zeros((n, n), np.float32)
    c = n // 2
    ux, uy = vx / length, vy / length
    cv2.line(
        ker,
        (round((c - ux * length / 2) * _SCALE), round((c - uy * length / 2) * _SCALE)),
        (round((c + ux * length / 2) * _SCALE), round((c + uy * length / 2) * _SCALE)),
        1.0,
        1,
        cv2.LINE_AA,
        SHIFT,
    )
    total = float(ker.sum())
    if total <= 0:
        return None
    return ker / total


def composite(
    frame: U8Array,
    color: F32Array,
    mask: U8Array,
    off: tuple[int, int],
    kernel: F32Array | None,
) -> None:
    """Paint ``color`` where ``mask`` is set onto ``frame`` at ``off``, blurred by ``kernel`` when given (in place).

    Args:
        frame: (H, W, 3) uint8 BGR frame.
        color: (h, w, 3) float32 BGR layer.
        mask: (h, w) uint8 (non-zero = object).
        off: image position of the layer's pixel (0, 0); the layer may extend past the frame.
        kernel: motion-blur kernel or None.
    """
    alpha = (mask > 0).astype(np.float32)
    if kernel is not None:
        pad = kernel.shape[0] // 2 + 1
        alpha = np.asarray(cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), np.float32)
        color = np.asarray(
            cv2.copyMakeBorder(color, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)), np.float32
        )
        premult = color * alpha[..., None]
        alpha = np.asarray(cv2.filter2D(alpha, -1, kernel, borderType=cv2.BORDER_CONSTANT), np.float32)
        premult = np.asarray(cv2.filter2D(premult, -1, kernel, borderType=cv2.BORDER_CONSTANT), np.float32)
        off = (off[0] - pad, off[1] - pad)
    else:
        premult = color * alpha[..., None]
    fh, fw = frame.shape[:2]
    h, w = alpha.shape
    x0, y0 = max(off[0], 0), max(off[1], 0)
    x1, y1 = min(off[0] + w, fw), min(off[1] + h, fh)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - off[1] : y1 - off[1], x0 - off[0] : x1 - off[0]]
    p = premult[y0 - off[1] : y1 - off[1], x0 - off[0] : x1 - off[0]]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    out = region * (1.0 - a[..., None]) + p
    frame[y0:y1, x0:x1] = np.clip(out, 0, 255).astype(np.uint8)


def background_texture(rng: np.random.Generator, width: int, height: int, horizon: float) -> U8Array:
    """A (2H, 2W, 3) uint8 BGR world background covering world x in [-W/2, 1.5W), y in [-H/2, 1.5H).

    Sky/wall above ``horizon`` (world y, pixels) and textured ground (noise plus paving or grass) below.
    """
    h2, w2 = 2 * height, 2 * width
    n1 = noise_texture(rng, (h2, w2), octaves=5, base=3)
    n2 = noise_texture(rng, (h2, w2), octaves=3, base=12)
    top = rng.uniform(60, 230, 3).astype(np.float32)
    ground = rng.uniform(40, 200, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h2, 0:w2].astype(np.float32)
    world_y = yy - height / 2
    is_ground = (world_y >= horizon).astype(np.float32)[..., None]
    base = top * (1 - is_ground) + ground * is_ground
    tex = 0.65 + 0.5 * n1[..., None] + 0.15 * (n2[..., None] - 0.5)
    kind = int(rng.integers(0, 3))
    if kind == 0:  # paving
        period = float(rng.uniform(20, 60))
        lines = ((xx % period) < 2) | ((yy % (period * 0.6)) < 2)
        tex = tex * (1.0 - 0.25 * (lines.astype(np.float32)[..., None] * is_ground))
    elif kind == 1:  # windows / panels on the wall
        period = float(rng.uniform(40, 120))
        panel = ((xx % period) < period * 0.45) & ((yy % period) < period * 0.6)
        tex = tex * (1.0 - 0.2 * (panel.astype(np.float32)[..., None] * (1 - is_ground)))
    img = np.clip(base * tex, 0, 255).astype(np.uint8)
    return img
