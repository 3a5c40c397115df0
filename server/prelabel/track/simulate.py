"""Ground-truth trajectories and realistic detector noise for testing and benchmarking trackers.

:func:`noisy_detections` turns ground-truth tracks (from :mod:`prelabel.synthetic` or :func:`toy_scene`) into what a
detector would give: box jitter scaled with box size, missed detections in bursts (more when the object is partly
hidden), false positives, and a score distribution that separates true from false positives only partly.
:func:`toy_scene` is a small trajectory simulator (people as boxes walking, crossing, passing behind pillars) used by
the tests and as a fallback when :mod:`prelabel.synthetic` is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.types import Detections, Track, TrackedBox

F64 = npt.NDArray[np.float64]

TOY_SCENES: tuple[str, ...] = ("crossing", "fast-motion", "crowd", "occlusion")
"""Names :func:`toy_scene` accepts."""


@dataclass(frozen=True)
class DetectorNoise:
    """How :func:`noisy_detections` degrades ground truth.

    Attributes:
        jitter: std of each box edge, as a fraction of the box height.
        recall: probability of detecting a fully visible object outside a dropout burst.
        min_visible: objects less visible than this fraction are never detected.
        burst_rate_s: dropout bursts starting per object per second.
        burst_len_s: mean length of a dropout burst, seconds.
        fp_per_frame: mean number of false positives per frame.
        tp_score_mean, tp_score_std: score distribution of true detections (times visibility).
        fp_score_low, fp_score_high: false positives' scores are uniform in this range.
    """

    jitter: float = 0.04
    recall: float = 0.95
    min_visible: float = 0.3
    burst_rate_s: float = 0.3
    burst_len_s: float = 0.4
    fp_per_frame: float = 0.5
    tp_score_mean: float = 0.85
    tp_score_std: float = 0.1
    fp_score_low: float = 0.1
    fp_score_high: float = 0.75


def noisy_detections(
    tracks: list[Track],
    num_frames: int,
    width: int,
    height: int,
    fps: float,
    seed: int,
    noise: DetectorNoise | None = None,
) -> list[Detections]:
    """Detections per frame derived from ground truth with seeded, realistic noise.

    Args:
        tracks: ground truth; ``TrackedBox.score`` is read as the visible fraction in [0, 1].
        num_frames: frames in the video.
        width, height: frame size in pixels (boxes are clipped to it).
        fps: frames per second (burst rates are per second).
        seed: RNG seed; the same inputs and seed give the same detections.
        noise: noise model; defaults to :class:`DetectorNoise()`.

    Returns:
        ``num_frames`` :class:`Detections` in frame order; class ids index the sorted distinct ``class_name`` values
        of ``tracks`` (false positives take the most common class).
    """
    if not fps > 0:
        raise InvalidInputError(f"fps: expected > 0, got {fps}")
    nz = noise or DetectorNoise()
    rng = np.random.default_rng(seed)
    names = tuple(sorted({t.class_name or "object" for t in tracks})) or ("object",)
    counts = [sum(len(t) for t in tracks if (t.class_name or "object") == n) for n in names]
    fp_class = int(np.argmax(counts))
    boxes: list[list[F64]] = [[] for _ in range(num_frames)]
    scores: list[list[float]] = [[] for _ in range(num_frames)]
    cls: list[list[int]] = [[] for _ in range(num_frames)]
    p_start = 1.0 - np.exp(-nz.burst_rate_s / fps)
    p_stop = 1.0 - np.exp(-1.0 / max(nz.burst_len_s * fps, 1e-6))
    heights: list[float] = []
    for tr in tracks:
        cid = names.index(tr.class_name or "object")
        in_burst = False
        for b in tr.boxes:
            in_burst = (rng.random() >= p_stop) if in_burst else (rng.random() < p_start)
            vis = float(np.clip(b.score, 0.0, 1.0))
            h = float(b.xyxy[3] - b.xyxy[1])
            if cid == fp_class:
                heights.append(h)
            if b.frame_idx >= num_frames or in_burst or vis < nz.min_visible:
                continue
            if rng.random() > nz.recall * min(1.0, 0.4 + vis):
                continue
            xyxy = b.xyxy.astype(np.float64) + rng.normal(0.0, nz.jitter * max(h, 1.0), 4)
            xyxy = np.clip(xyxy, 0.0, [width, height, width, height])
            if xyxy[2] - xyxy[0] < 2 or xyxy[3] - xyxy[1] < 2:
                continue
            boxes[b.frame_idx].append(xyxy)
            cls[b.frame_idx].append(cid)
            s = rng.normal(nz.tp_score_mean, nz.tp_score_std) * (0.6 + 0.4 * vis)
            scores[b.frame_idx].append(float(np.clip(s, 0.01, 1.0)))
    h_med = float(np.median(heights)) if heights else 0.2 * height
    for f in range(num_frames):
        for _ in range(int(rng.poisson(nz.fp_per_frame))):
            h = h_med * rng.uniform(0.5, 1.5)
            w = h * rng.uniform(0.3, 0.6)
            x, y = rng.uniform(0, max(width - w, 1.0)), rng.uniform(0, max(height - h, 1.0))
            boxes[f].append(np.array([x, y, x + w, y + h]))
            scores[f].append(float(rng.uniform(nz.fp_score_low, nz.fp_score_high)))
            cls[f].append(fp_class)
    out = []
    for f in range(num_frames):
        order = rng.permutation(len(boxes[f]))
        det_xyxy = np.array(boxes[f], np.float32).reshape(-1, 4)[order]
        sc = np.array(scores[f], np.float32)[order]
        out.append(Detections(det_xyxy, sc, np.array(cls[f], np.int64)[order], names))
    return out


def _visible_boxes(
    centres: F64, sizes: F64, pillars: list[tuple[float, float]], width: int, height: int
) -> tuple[F64, F64]:
    """Per person: visible part of the box (xyxy, clipped) and visible fraction, given pillars and nearer people."""
    n = len(centres)
    full = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    vis = np.ones(n)
    out = full.copy()
    for i in range(n):
        x1, y1, x2, y2 = full[i]
        area = max((x2 - x1) * (y2 - y1), 1e-6)
        # Horizontal visible extent after pillars (full-height occluders) and the frame border.
        lo, hi = max(x1, 0.0), min(x2, float(width))
        for px1, px2 in pillars:
            if px1 <= lo and px2 >= hi:
                lo, hi = hi, hi
            elif px1 <= lo < px2:
                lo = px2
            elif px1 < hi <= px2:
                hi = px1
        top, bot = max(y1, 0.0), min(y2, float(height))
        if hi <= lo or bot <= top:
            vis[i] = 0.0
            continue
        covered = 0.0
        for j in range(n):  # nearer people (lower feet in the image) hide farther ones
            if j == i or full[j, 3] <= y2:
                continue
            iw = min(hi, full[j, 2]) - max(lo, full[j, 0])
            ih = min(bot, full[j, 3]) - max(top, full[j, 1])
            if iw > 0 and ih > 0:
                covered += iw * ih
        vis[i] = max(0.0, ((hi - lo) * (bot - top) - covered) / area)
        out[i] = [lo, top, hi, bot]
    return out, vis


def toy_scene(
    kind: str, seed: int, *, num_frames: int = 150, fps: float = 25.0, width: int = 960, height: int = 540
) -> list[Track]:
    """Ground-truth person tracks of a small generated scene (no pixels).

    Args:
        kind: one of :data:`TOY_SCENES`: ``"crossing"`` (two people cross, one passes behind a pillar),
            ``"fast-motion"`` (few people, fast turns), ``"crowd"`` (many people crossing), ``"occlusion"``
            (people passing behind pillars and each other).
        seed: RNG seed (same seed, same scene).
        num_frames, fps, width, height: video geometry; speeds are in pixels per second.

    Returns:
        Tracks with a box wherever the person is at least 15 % visible (score = visible fraction).
    """
    if kind not in TOY_SCENES:
        raise InvalidInputError(f"toy scene: expected one of {TOY_SCENES}, got {kind!r}")
    rng = np.random.default_rng(seed)
    dt = 1.0 / fps
    pillars: list[tuple[float, float]] = []
    if kind == "crossing":
        hgt = np.array([150.0, 150.0])
        pos = np.array([[100.0, 300.0], [860.0, 320.0]])
        vel = np.array([[160.0, 5.0], [-160.0, -5.0]])
        pillars = [(580.0, 700.0)]
        turn, speed_sd = 0.0, 0.0
    else:
        n, speed, turn, speed_sd = {
            "fast-motion": (5, 420.0, 6.0, 0.5),
            "crowd": (22, 90.0, 0.8, 0.3),
            "occlusion": (10, 120.0, 0.6, 0.2),
        }[kind]
        hgt = rng.uniform(90.0, 170.0, n)
        pos = np.stack([rng.uniform(50, width - 50, n), rng.uniform(hgt / 2 + 10, height - hgt / 2 - 10)], axis=1)
        ang = rng.uniform(0, 2 * np.pi, n)
        vel = np.stack([np.cos(ang), np.sin(ang) * 0.5], axis=1) * speed * rng.uniform(0.6, 1.4, (n, 1))
        if kind == "occlusion":
            pillars = [(250.0, 320.0), (620.0, 700.0)]
    sizes = np.stack([hgt * 0.4, hgt], axis=1)
    per_track: list[list[TrackedBox]] = [[] for _ in range(len(hgt))]
    for f in range(num_frames):
        boxes, vis = _visible_boxes(pos, sizes, pillars, width, height)
        for i in range(len(hgt)):
            if vis[i] >= 0.15:
                per_track[i].append(TrackedBox(f, boxes[i], float(min(vis[i], 1.0)), ts_ms=f * 1000.0 / fps))
        # Turning motion: the heading rotates at a random angular rate; speed drifts; walls reflect.
        if turn > 0:
            w = rng.normal(0.0, turn, len(hgt)) * dt
            c, s = np.cos(w), np.sin(w)
            vel = np.stack([c * vel[:, 0] - s * vel[:, 1], s * vel[:, 0] + c * vel[:, 1]], axis=1)
            vel *= np.exp(rng.normal(0.0, speed_sd * np.sqrt(dt), (len(hgt), 1)))
        pos = pos + vel * dt
        lo = sizes / 2
        hi = np.array([width, height]) - sizes / 2
        bounce = (pos < lo) | (pos > hi)
        vel = np.where(bounce, -vel, vel)
        pos = np.clip(pos, lo, hi)
    return [Track(i + 1, b, 0, "person") for i, b in enumerate(per_track) if b]
