"""Scene generation: a seeded plan (people, balls, occluders, camera, timing), simulated frame by frame, with exact
ground truth taken from the same silhouettes that are painted.

Determinism: every random choice comes from child streams of ``SeedSequence([seed, crc32(preset)])``; ground truth
never consumes the rendering streams, so ``render=False`` gives the same ground truth as ``render=True``.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError, NotFoundError
from prelabel.synthetic import body
from prelabel.synthetic import render as draw
from prelabel.synthetic.presets import PRESETS, Preset
from prelabel.types import NUM_KEYPOINTS, Segment, Skeleton, Source, Track, TrackedBox, VideoInfo

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = ("person", "ball")
"""Class names by class id (the shipped models use the same order)."""

BLEND_S = 0.3  # seconds over which one action's pose blends into the next
GT_METHOD = "synthetic-gt"


@dataclass
class Scene:
    """A generated clip with exact ground truth.

    Attributes:
        preset: preset name.
        seed: seed it was generated with.
        info: frame size, frame count, nominal fps, whether the frame rate varies.
        ts_ms: (T,) float64 per-frame timestamps in milliseconds.
        tracks: ground truth tracks (class ``person`` id 0, ``ball`` id 1); a box per frame where the object is at
            least partly visible, enclosing the visible part, clipped to the frame; ``score`` is the visible fraction;
            persons carry COCO-17 skeletons with ``present=False`` for hidden or out-of-frame keypoints.
        segments: action segments per person track, inclusive frame bounds, clipped to the track's span.
        frames: (T, H, W, 3) uint8 BGR frames, or None when not rendered / loaded from disk.
        visibility: track id -> (T,) float64 visible fraction per frame (0 where hidden or out of view).
    """

    preset: str
    seed: int
    info: VideoInfo
    ts_ms: npt.NDArray[np.float64]
    tracks: list[Track]
    segments: list[Segment]
    frames: npt.NDArray[np.uint8] | None = None
    visibility: dict[int, npt.NDArray[np.float64]] = field(default_factory=dict)


@dataclass
class _Person:
    track_id: int
    height: float  # world pixels
    ground_y: float  # world y of the feet
    x0: float  # world x of the feet at frame 0
    style: body.Style
    schedule: list[tuple[str, int, int, float]]  # (action, start, end inclusive, yaw)
    speed: float  # multiplier on body.MOVING_SPEED


@dataclass
class _Ball:
    track_id: int
    radius: float
    floor_y: float  # world y where it bounces (also its depth)
    pos: npt.NDArray[np.float64]  # (T, 2) world centre per frame


@dataclass
class _Occluder:
    poly: npt.NDArray[np.float64]  # (N, 2) world polygon
    depth: float
    color: npt.NDArray[np.float32]


@dataclass
class _Camera:
    scale: npt.NDArray[np.float64]  # (T,)
    offset: npt.NDArray[np.float64]  # (T, 2) pixels

    def matrix(self, f: int, width: int, height: int) -> npt.NDArray[np.float64]:
        """2x3 affine world -> image at frame ``f``: p_img = s (p_w - C) + C + o, C the frame centre."""
        s = float(self.scale[f])
        cx, cy = width / 2.0, height / 2.0
        ox, oy = self.offset[f]
        return np.array([[s, 0.0, cx - s * cx + ox], [0.0, s, cy - s * cy + oy]])


def _timestamps(rng: np.random.Generator, n: int, fps: float, vfr: bool) -> npt.NDArray[np.float64]:
    dt = np.full(n, 1000.0 / fps)
    if vfr:
        dt = dt * rng.uniform(0.5, 1.5, n)
    ts = np.concatenate([[0.0], np.cumsum(dt[:-1])])
    # A variable rate is written as millisecond timestamps: the ground truth holds the times the video stores.
    return np.round(ts) if vfr else np.round(ts, 3)


def _schedule(
    rng: np.random.Generator, preset: Preset, n: int, fps: float, forced: str | None, start_moving: bool
) -> list[tuple[str, int, int, float]]:
    out: list[tuple[str, int, int, float]] = []
    f = 0
    direction = 1.0 if rng.random() < 0.5 else -1.0
    forced_at = int(rng.integers(0, 3)) if forced else -1
    moving = tuple(a for a in preset.actions if a in body.MOVING_SPEED) or ("walk",)
    k = 0
    while f < n:
        if k == 0 and start_moving:
            action = str(rng.choice(moving))
        elif k == forced_at and forced:
            action = forced
        else:
            action = str(rng.choice(preset.actions))
        if k > 0 and out[-1][0] == action and action in ("squat", "bend", "fall"):
            action = "stand"
        dur = max(3, round(float(rng.uniform(*preset.action_seconds)) * fps))
        end = min(n - 1, f + dur - 1)
        if action in body.MOVING_SPEED:
            if rng.random() < 0.25:
                direction = -direction
            yaw = direction * float(rng.uniform(0.95, 1.45))
        else:
            yaw = float(rng.uniform(-1.4, 1.4))
        out.append((action, f, end, yaw))
        f = end + 1
        k += 1
    return out


def _plan_people(rng: np.random.Generator, preset: Preset, w: int, h: int, n: int, fps: float) -> list[_Person]:
    count = int(rng.integers(preset.people[0], preset.people[1] + 1))
    lo, hi = preset.height_frac
    forced_cycle = ["squat", "bend", "fall"] if preset.name == "actions" else []
    people = []
    for i in range(count):
        frac = float(rng.uniform(lo, hi))
        rel = (frac - lo) / max(hi - lo, 1e-6)
        ground = h * (0.55 + 0.43 * rel + float(rng.uniform(-0.04, 0.04)))
        enters = rng.random() < preset.enter_exit
        forced = forced_cycle[i % 3] if forced_cycle else None
        sched = _schedule(rng, preset, n, fps, forced, start_moving=enters)
        height = frac * h
        if enters:
            yaw0 = sched[0][3]
            x0 = -0.35 * height if yaw0 > 0 else w + 0.35 * height
        else:
            x0 = float(rng.uniform(0.08, 0.92)) * w
        style = body.Style(
            squat_lean=float(rng.uniform(0.15, 0.8)),
            squat_depth=float(rng.uniform(0.75, 1.0)),
            bend_knee=float(rng.uniform(0.1, 0.8)),
            bend_lean=float(rng.uniform(1.1, 1.55)),
            fall_dir=1.0 if rng.random() < 0.5 else -1.0,
            wave_left=bool(rng.random() < 0.5),
            gait_phase=float(rng.uniform(0, 2 * math.pi)),
        )
        speed = float(rng.uniform(0.7, 1.3)) * preset.speed_scale
        people.append(_Person(i + 1, height, ground, x0, style, sched, speed))
    return people


def _plan_balls(
    rng: np.random.Generator, preset: Preset, w: int, h: int, ts_ms: npt.NDArray[np.float64], first_id: int
) -> list[_Ball]:
    count = int(rng.integers(preset.balls[0], preset.balls[1] + 1))
    scale = w / 640.0
    gravity = 900.0 * scale  # px / s^2
    balls = []
    for i in range(count):
        radius = float(rng.uniform(6.0, 13.0)) * scale
        floor = h * float(rng.uniform(0.6, 0.97))
        pos = np.zeros((len(ts_ms), 2))
        p = np.array([rng.uniform(0.1, 0.9) * w, floor - rng.uniform(0.1, 0.5) * h])
        speed = float(rng.uniform(*preset.ball_speed)) * scale
        ang = float(rng.uniform(-math.pi, 0))
        v = speed * np.array([math.cos(ang), math.sin(ang)])
        kick_rate = 0.6  # sudden direction changes per second
        for f in range(len(ts_ms)):
            if f > 0:
                dt = (ts_ms[f] - ts_ms[f - 1]) / 1000.0
                v = v + np.array([0.0, gravity * dt])
                p = p + v * dt
                if p[1] > floor - radius:  # bounce
                    p[1] = 2 * (floor - radius) - p[1]
                    v[1] = -0.72 * abs(v[1])
                    v[0] *= 0.9
                resting = abs(v[1]) < 60 * scale and p[1] > floor - radius - 2
                if rng.random() < kick_rate * dt or resting:
                    ang = float(rng.uniform(-math.pi, 0))
                    # Kick back towards the middle when near the edges, so balls stay in play most of the time.
                    if (p[0] < 0.1 * w and math.cos(ang) < 0) or (p[0] > 0.9 * w and math.cos(ang) > 0):
                        ang = -math.pi - ang
                    v = float(rng.uniform(*preset.ball_speed)) * scale * np.array([math.cos(ang), math.sin(ang)])
            pos[f] = p
        balls.append(_Ball(first_id + i, radius, floor, pos))
    return balls


def _plan_occluders(rng: np.random.Generator, preset: Preset, w: int, h: int) -> list[_Occluder]:
    out = []
    for _ in range(int(rng.integers(preset.occluders[0], preset.occluders[1] + 1))):
        kind = int(rng.integers(0, 3))
        bottom = h * float(rng.uniform(0.78, 1.05))
        x = float(rng.uniform(0.05, 0.95)) * w
        if kind == 0:  # post
            ww, hh = float(rng.uniform(0.03, 0.07)) * w, float(rng.uniform(0.5, 0.9)) * h
        elif kind == 1:  # low wall / car
            ww, hh = float(rng.uniform(0.15, 0.35)) * w, float(rng.uniform(0.15, 0.35)) * h
        else:  # board / bush
            ww, hh = float(rng.uniform(0.08, 0.2)) * w, float(rng.uniform(0.3, 0.55)) * h
        poly = np.array(
            [[x - ww / 2, bottom - hh], [x + ww / 2, bottom - hh], [x + ww / 2, bottom], [x - ww / 2, bottom]]
        )
        color = rng.uniform(30, 220, 3).astype(np.float32)
        out.append(_Occluder(poly, bottom + 1000.0, color))  # always in front of everything standing above it
    return out


def _plan_camera(rng: np.random.Generator, preset: Preset, ts_ms: npt.NDArray[np.float64]) -> _Camera:
    t = ts_ms / 1000.0
    n = len(t)
    pan_v = float(rng.uniform(-1, 1)) * preset.pan_px_s
    pan_period = float(rng.uniform(3, 8))
    # Pan: steady drift that eases back and forth, so the view stays inside the textured world.
    pan_x = pan_v * pan_period / (2 * math.pi) * np.sin(2 * math.pi * t / pan_period)
    pan_y = 0.15 * pan_x
    shake = preset.shake_px * rng.standard_normal((n, 2)) if preset.shake_px > 0 else np.zeros((n, 2))
    if preset.shake_px > 0:
        shake = np.asarray(cv2.GaussianBlur(shake.astype(np.float64), (1, 5), 0), np.float64).reshape(n, 2)
    zoom_period = float(rng.uniform(2, 6))
    zoom_phase = float(rng.uniform(0, 2 * math.pi))
    scale = (1.0 + preset.zoom) ** np.sin(2 * math.pi * t / zoom_period + zoom_phase) if preset.zoom else np.ones(n)
    offset = np.stack([-pan_x, -pan_y], axis=1) + shake
    return _Camera(np.asarray(scale, np.float64), offset)


def _person_pose(person: _Person, f: int, ts_ms: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], str, float]:
    """Pose vector, current action and ground speed factor (blended) of ``person`` at frame ``f``."""
    sched = person.schedule
    k = next(i for i, s in enumerate(sched) if s[1] <= f <= s[2])
    action, start, _, yaw = sched[k]
    t = (ts_ms[f] - ts_ms[start]) / 1000.0
    p = body.action_pose(action, t, person.style, yaw)
    speed = body.MOVING_SPEED.get(action, 0.0) * (1.0 if math.sin(yaw) > 0 else -1.0)
    if k > 0 and t < BLEND_S:
        pa, ps, _, pyaw = sched[k - 1]
        prev = body.action_pose(pa, (ts_ms[f] - ts_ms[ps]) / 1000.0, person.style, pyaw)
        prev_speed = body.MOVING_SPEED.get(pa, 0.0) * (1.0 if math.sin(pyaw) > 0 else -1.0)
        u = body.smoothstep(t / BLEND_S)
        p = (1 - u) * prev + u * p
        speed = (1 - u) * prev_speed + u * speed
    return p, action, speed


def _resolve(preset: str) -> Preset:
    if preset not in PRESETS:
        raise NotFoundError(f"unknown synthetic preset {preset!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[preset]


def _check_args(num_frames: int, width: int, height: int, fps: float) -> None:
    if num_frames < 1:
        raise InvalidInputError(f"num_frames must be >= 1, got {num_frames}")
    if width < 32 or height < 32:
        raise InvalidInputError(f"frame size must be at least 32x32, got {width}x{height}")
    if not 1.0 <= fps <= 240.0:
        raise InvalidInputError(f"fps must be in [1, 240], got {fps}")


@dataclass
class _Obj:
    """One drawable object at one frame, in image coordinates."""

    oid: int  # id-buffer value
    track_id: int  # 0 for occluders
    kind: str  # person | ball | occluder
    index: int  # into the plan's list of that kind
    depth: float
    labels: npt.NDArray[np.uint8]  # local part-label map (0 = empty)
    off: tuple[int, int]
    velocity: tuple[float, float] = (0.0, 0.0)  # image pixels per frame, filled in by the frame loop
    keypoints: npt.NDArray[np.float64] | None = None  # (17, 2) for persons
    anchor: tuple[float, float] = (0.0, 0.0)  # image point that defines the object's motion (feet, ball centre)


def generate(
    preset: str,
    seed: int,
    *,
    num_frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    render: bool = True,
    paint_frames: Sequence[int] | None = None,
) -> Scene:
    """Generate a scene with exact ground truth, deterministically from ``preset`` and ``seed``.

    Args:
        preset: a name in :data:`PRESETS`.
        seed: any integer; the same preset and seed give identical ground truth and frames.
        num_frames, width, height, fps: override the preset (pixels, frames per second).
        render: also paint the frames (``Scene.frames``); ``False`` computes ground truth only (faster).
        paint_frames: with ``render``, paint only these frame indices (others stay black); for sampling training
            images without painting every frame. Ground truth is unaffected.

    Returns:
        The :class:`Scene`.

    Raises:
        NotFoundError: unknown preset.
        InvalidInputError: out-of-range overrides.
    """
    pre = _resolve(preset)
    w = int(pre.width if width is None else width)
    h = int(pre.height if height is None else height)
    n = int(pre.num_frames if num_frames is None else num_frames)
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(pre.name.encode())])
    r_time, r_people, r_balls, r_occ, r_cam, r_look = (np.random.default_rng(s) for s in ss.spawn(6))
    nominal = float(fps) if fps is not None else float(r_time.uniform(*pre.fps_range))
    nominal = round(nominal, 3)
    _check_args(n, w, h, nominal)
    ts = _timestamps(r_time, n, nominal, pre.variable_frame_rate)
    people = _plan_people(r_people, pre, w, h, n, nominal)
    balls = _plan_balls(r_balls, pre, w, h, ts, len(people) + 1)
    occluders = _plan_occluders(r_occ, pre, w, h)
    cam = _plan_camera(r_cam, pre, ts)

    look = _Look.draw(r_look, pre, people, balls, occluders, w, h, render)
    frames = np.zeros((n, h, w, 3), np.uint8) if render else None
    paint = None if paint_frames is None else {int(i) for i in paint_frames}
    boxes: dict[int, list[TrackedBox]] = {p.track_id: [] for p in people}
    boxes.update({b.track_id: [] for b in balls})
    vis = {tid: np.zeros(n) for tid in boxes}
    foot_x = {p.track_id: p.x0 for p in people}
    prev_anchor: dict[int, npt.NDArray[np.float64]] = {}
    for f in range(n):
        m = cam.matrix(f, w, h)
        s = float(cam.scale[f])
        objs: list[_Obj] = []
        for pi, person in enumerate(people):
            pose, _, speed = _person_pose(person, f, ts)
            if f > 0:
                foot_x[person.track_id] += speed * person.speed * person.height * (ts[f] - ts[f - 1]) / 1000.0
            obj = _person_obj(person, pi, pose, foot_x[person.track_id], m, s, w, h)
            if obj is not None:
                objs.append(obj)
        objs += [o for bi, ball in enumerate(balls) if (o := _ball_obj(ball, bi, f, m, s, w, h)) is not None]
        objs += [_occluder_obj(occ, oi, m) for oi, occ in enumerate(occluders)]
        for o in objs:
            if o.track_id:
                anchor = np.asarray(o.anchor, np.float64)
                prev = prev_anchor.get(o.track_id, anchor)
                o.velocity = (float(anchor[0] - prev[0]), float(anchor[1] - prev[1]))
                prev_anchor[o.track_id] = anchor
        objs.sort(key=lambda o: o.depth)
        idbuf = np.zeros((h, w), np.uint8)
        for i, o in enumerate(objs):
            o.oid = i + 1
            _paint_ids(idbuf, o)
        for o in objs:
            tb = _ground_truth_box(idbuf, o, f, float(ts[f]), w, h) if o.track_id else None
            if tb is not None:
                boxes[o.track_id].append(tb)
                vis[o.track_id][f] = tb.score
        if frames is not None and (paint is None or f in paint):
            frames[f] = look.paint(objs, m, f, float(ts[f]), occluders, pre.motion_blur)

    tracks = [
        Track(
            tid,
            tb_list,
            class_id=0 if tid <= len(people) else 1,
            class_name=CLASS_NAMES[0 if tid <= len(people) else 1],
        )
        for tid, tb_list in sorted(boxes.items())
        if tb_list
    ]
    segments = _segments(people, tracks, ts)
    info = VideoInfo(w, h, n, nominal, pre.variable_frame_rate, float(ts[-1] + 1000.0 / nominal))
    visibility = {t.track_id: vis[t.track_id] for t in tracks}
    logger.debug("generated %s seed %d: %d tracks, %d segments", preset, seed, len(tracks), len(segments))
    return Scene(pre.name, int(seed), info, ts, tracks, segments, frames, visibility)


def _paint_ids(idbuf: npt.NDArray[np.uint8], o: _Obj) -> None:
    """Write ``o.oid`` where the object covers the frame (later objects overwrite earlier, i.e. nearer wins)."""
    h, w = idbuf.shape
    lh, lw = o.labels.shape
    x0, y0 = max(o.off[0], 0), max(o.off[1], 0)
    x1, y1 = min(o.off[0] + lw, w), min(o.off[1] + lh, h)
    if x1 <= x0 or y1 <= y0:
        return
    local = o.labels[y0 - o.off[1] : y1 - o.off[1], x0 - o.off[0] : x1 - o.off[0]]
    region = idbuf[y0:y1, x0:x1]
    region[local > 0] = o.oid


def _ground_truth_box(idbuf: npt.NDArray[np.uint8], o: _Obj, f: int, ts_ms: float, w: int, h: int) -> TrackedBox | None:
    """Box of the visible pixels, visible fraction, and (persons) the skeleton with visibility; None if hidden."""
    lh, lw = o.labels.shape
    total = int(np.count_nonzero(o.labels))
    x0, y0 = max(o.off[0], 0), max(o.off[1], 0)
    x1, y1 = min(o.off[0] + lw, w), min(o.off[1] + lh, h)
    if total == 0 or x1 <= x0 or y1 <= y0:
        return None
    mine = idbuf[y0:y1, x0:x1] == o.oid
    visible = int(np.count_nonzero(mine))
    if visible == 0:
        return None
    rows = np.flatnonzero(mine.any(axis=1))
    cols = np.flatnonzero(mine.any(axis=0))
    xyxy = np.array([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1], np.float32)
    frac = round(min(1.0, visible / total), 4)
    skeleton = None
    if o.keypoints is not None:
        kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        present = np.zeros(NUM_KEYPOINTS, bool)
        for j, (x, y) in enumerate(o.keypoints):
            xi, yi = math.floor(x), math.floor(y)
            if 0 <= xi < w and 0 <= yi < h and idbuf[yi, xi] == o.oid:
                present[j] = True
                kp[j] = (x, y, 1.0)
        skeleton = Skeleton(kp, present, 1.0)
    return TrackedBox(f, xyxy, frac, Source.UNSPECIFIED, ts_ms, skeleton)


def _background_matrix(m: npt.NDArray[np.float64], w: int, h: int) -> npt.NDArray[np.float64]:
    """World->image affine composed with texture->world (the texture starts at world (-W/2, -H/2))."""
    shift = np.array([[1.0, 0.0, -w / 2.0], [0.0, 1.0, -h / 2.0], [0.0, 0.0, 1.0]])
    return np.asarray(np.vstack([m, [0.0, 0.0, 1.0]]) @ shift)[:2]


def _paint_color(
    frame: npt.NDArray[np.uint8],
    o: _Obj,
    looks: list[draw.Appearance],
    ball_colors: list[npt.NDArray[np.float32]],
    occluders: list[_Occluder],
    occ_tex: list[npt.NDArray[np.float32]],
    blur: bool,
) -> None:
    """Paint one object onto the frame (in depth order), with motion blur along its image velocity."""
    if o.kind == "person":
        color = draw.colorize(o.labels, looks[o.index], o.off)
    elif o.kind == "ball":
        lh, lw = o.labels.shape
        yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
        shade = 1.15 - 0.5 * (np.hypot(xx - lw * 0.35, yy - lh * 0.35) / max(lw, lh))
        seam = np.where(np.abs((xx + o.off[0]) - (yy + o.off[1]) * 0.3) % 7 < 1.2, 0.6, 1.0)
        color = ball_colors[o.index][None, None, :] * (shade * seam)[..., None]
    else:
        lh, lw = o.labels.shape
        tex = occ_tex[o.index]
        ys, xs = np.arange(lh) % tex.shape[0], np.arange(lw) % tex.shape[1]
        color = occluders[o.index].color[None, None, :] * tex[ys[:, None], xs[None, :]][..., None]
    kernel = draw.motion_kernel(0.5 * o.velocity[0], 0.5 * o.velocity[1]) if blur else None
    draw.composite(frame, color.astype(np.float32), o.labels, o.off, kernel)


def _segments(people: list[_Person], tracks: list[Track], ts: npt.NDArray[np.float64]) -> list[Segment]:
    """Each person's action schedule, clipped to the frames its track spans."""
    span = {t.track_id: (int(t.boxes[0].frame_idx), int(t.boxes[-1].frame_idx)) for t in tracks if t.boxes}
    out = []
    for p in people:
        if p.track_id not in span:
            continue
        first, last = span[p.track_id]
        for action, start, end, _ in p.schedule:
            a, b = max(start, first), min(end, last)
            if a > b:
                continue
            out.append(
                Segment(p.track_id, action, a, b, float(ts[a]), float(ts[b]), 1.0, 0, 0, Source.UNSPECIFIED, GT_METHOD)
            )
    return out


def _outside(x0: int, y0: int, x1: int, y1: int, w: int, h: int) -> bool:
    return x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h


def _person_obj(
    person: _Person,
    index: int,
    pose: npt.NDArray[np.float64],
    foot_x: float,
    m: npt.NDArray[np.float64],
    s: float,
    w: int,
    h: int,
) -> _Obj | None:
    """A person's part-label map at this frame (None when wholly outside the frame)."""
    foot = m @ np.array([foot_x, person.ground_y, 1.0])
    height = person.height * s
    posed = body.project(pose, (float(foot[0]), float(foot[1])), height)
    x0, y0, x1, y1 = draw.figure_extent(posed, height)
    if _outside(x0, y0, x1, y1, w, h):
        return None
    lab = np.zeros((y1 - y0, x1 - x0), np.uint8)
    draw.draw_figure(lab, posed, height, (x0, y0))
    return _Obj(
        0,
        person.track_id,
        "person",
        index,
        person.ground_y,
        lab,
        (x0, y0),
        keypoints=posed.keypoints,
        anchor=(float(foot[0]), float(foot[1])),
    )


def _ball_obj(ball: _Ball, index: int, f: int, m: npt.NDArray[np.float64], s: float, w: int, h: int) -> _Obj | None:
    """A ball's disc at frame ``f`` (None when wholly outside the frame)."""
    c = m @ np.array([ball.pos[f, 0], ball.pos[f, 1], 1.0])
    r = ball.radius * s
    x0, y0 = math.floor(c[0] - r - 2), math.floor(c[1] - r - 2)
    x1, y1 = math.ceil(c[0] + r + 2) + 1, math.ceil(c[1] + r + 2) + 1
    if _outside(x0, y0, x1, y1, w, h):
        return None
    lab = np.zeros((y1 - y0, x1 - x0), np.uint8)
    draw.disc(lab, c, r, 1, (x0, y0))
    return _Obj(0, ball.track_id, "ball", index, ball.floor_y, lab, (x0, y0), anchor=(float(c[0]), float(c[1])))


def _occluder_obj(occ: _Occluder, index: int, m: npt.NDArray[np.float64]) -> _Obj:
    """A static occluder's polygon in the image."""
    poly = np.c_[occ.poly, np.ones(len(occ.poly))] @ m.T
    x0, y0 = math.floor(poly[:, 0].min()) - 1, math.floor(poly[:, 1].min()) - 1
    x1, y1 = math.ceil(poly[:, 0].max()) + 2, math.ceil(poly[:, 1].max()) + 2
    lab = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.array([draw.fixed_point(p, (x0, y0)) for p in poly], np.int32)
    cv2.fillConvexPoly(lab, pts, 1, cv2.LINE_8, draw.SHIFT)
    return _Obj(0, 0, "occluder", index, occ.depth, lab, (x0, y0))


@dataclass
class _Look:
    """Everything that only affects pixels: appearances, background, lighting, sensor noise."""

    people: list[draw.Appearance]
    ball_colors: list[npt.NDArray[np.float32]]
    occluder_textures: list[npt.NDArray[np.float32]]
    background: npt.NDArray[np.uint8] | None
    lighting: float
    lighting_phase: float
    lighting_period_s: float
    noise: npt.NDArray[np.int16] | None

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        pre: Preset,
        people: list[_Person],
        balls: list[_Ball],
        occluders: list[_Occluder],
        w: int,
        h: int,
        render: bool,
    ) -> _Look:
        looks = [draw.random_appearance(rng) for _ in people]
        ball_colors = [rng.uniform(30, 255, 3).astype(np.float32) for _ in balls]
        occ_tex = [
            (0.75 + 0.5 * draw.noise_texture(rng, (64, 64), octaves=2, base=3)).astype(np.float32) for _ in occluders
        ]
        background = draw.background_texture(rng, w, h, h * 0.45) if render else None
        phase = float(rng.uniform(0, 2 * math.pi))
        period = float(rng.uniform(1.5, 5.0))
        noise = rng.normal(0, 3.0, (3, h, w, 3)).astype(np.int16) if render else None
        return cls(looks, ball_colors, occ_tex, background, pre.lighting, phase, period, noise)

    def paint(
        self,
        objs: list[_Obj],
        m: npt.NDArray[np.float64],
        f: int,
        ts_ms: float,
        occluders: list[_Occluder],
        blur: bool,
    ) -> npt.NDArray[np.uint8]:
        """One (H, W, 3) uint8 BGR frame: background through the camera, objects far to near, lighting, noise."""
        if self.background is None or self.noise is None:
            raise InvalidInputError("scene was planned without rendering; nothing to paint")
        h, w = self.noise.shape[1:3]
        frame = np.asarray(
            cv2.warpAffine(
                self.background,
                _background_matrix(m, w, h),
                (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            ),
            np.uint8,
        )
        for o in objs:
            _paint_color(frame, o, self.people, self.ball_colors, occluders, self.occluder_textures, blur)
        gain = 1.0 + self.lighting * math.sin(
            2 * math.pi * ts_ms / 1000.0 / self.lighting_period_s + self.lighting_phase
        )
        frame = np.asarray(cv2.convertScaleAbs(frame, alpha=gain, beta=0.0), np.uint8)
        return np.clip(frame.astype(np.int16) + self.noise[f % 3], 0, 255).astype(np.uint8)
