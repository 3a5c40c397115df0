"""Offline refinement of online tracklets: link across gaps, fill the gaps, RTS-smooth every track.

1. Link: each tracklet's end is extrapolated forward and the next tracklet's start backward, with straight-line fits
   over their last / first ``_FIT_WINDOW_S`` seconds, to the middle of the gap; the pair may link when the gap is at
   most ``max_gap_s``, the two positions are within ``link_max_dist + link_dist_per_s · gap`` box heights and the
   heights differ by at most ``link_max_size_ratio``. The cost (distance over allowance, plus
   ``appearance_weight`` × colour-histogram distance when frames were seen) is minimised by one linear assignment of
   ends to starts, which builds chains of any length.
2. Filter: tracks shorter than ``min_track_s`` or with mean score below ``min_track_score`` are dropped.
3. Fill and smooth: a Kalman filter runs over a track's observed frames and the frames of its gaps of at most
   ``fill_max_s`` (prediction only), stepping across a longer gap without a state per frame of it, and filterpy's
   RTS smoother runs back; filled frames get ``Source.FILLED`` boxes (motion-aware: the smoother's
   constant-velocity bridge between both sides), observed frames ``Source.SMOOTHED`` boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError, ResourceExhaustedError
from prelabel.track import kalman
from prelabel.track.appearance import appearance_distance
from prelabel.track.association import linear_assignment
from prelabel.track.config import TrackerConfig
from prelabel.types import Source, Track, TrackedBox

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

_FIT_WINDOW_S = 1.0
_APPEARANCE_BOXES = 5
_FILLED_SCORE_FACTOR = 0.5


@dataclass(frozen=True)
class _End:
    """A straight-line motion model of one end of a tracklet: ``cxcywh(t) = pos + vel · (t − t_ref)``."""

    t_ref: float
    pos: F64
    vel: F64


def _fit_end(ts: F64, boxes: F64, at_end: bool, max_speed: float) -> _End:
    """Least-squares line through the boxes (cxcywh) within ``_FIT_WINDOW_S`` of one end of a tracklet."""
    if at_end:
        sel = ts >= ts[-1] - _FIT_WINDOW_S
        t_ref = float(ts[-1])
    else:
        sel = ts <= ts[0] + _FIT_WINDOW_S
        t_ref = float(ts[0])
    tt, bb = ts[sel] - t_ref, boxes[sel]
    if len(tt) < 2 or np.ptp(tt) < 1e-6:
        return _End(t_ref, bb[-1 if at_end else 0].copy(), np.zeros(4))
    a = np.stack([np.ones_like(tt), tt], axis=1)
    coef, *_ = np.linalg.lstsq(a, bb, rcond=None)
    vel = coef[1]
    speed = float(np.hypot(vel[0], vel[1]))
    h = float(np.mean(bb[:, 3]))
    if speed > max_speed * h:  # a wild fit over few points would throw the extrapolation far away
        vel = vel * (max_speed * h / speed)
    return _End(t_ref, coef[0], vel)


def _at(end: _End, t: float) -> F64:
    return end.pos + end.vel * (t - end.t_ref)


def _times(track: Track, fps: float) -> F64:
    ts = np.array([b.ts_ms for b in track.boxes], np.float64) / 1000.0
    if len(ts) > 1 and not np.all(np.diff(ts) > 0):
        ts = track.frames.astype(np.float64) / fps
    return ts


def _link_cost(
    tracks: Sequence[Track],
    times: Sequence[F64],
    config: TrackerConfig,
    appearance: Mapping[int, F32] | None,
) -> tuple[F64, npt.NDArray[np.bool_]]:
    n = len(tracks)
    boxes = [kalman.xyxy_to_cxcywh(t.xyxy) for t in tracks]
    ends = [_fit_end(ts, b, True, 3.0) for ts, b in zip(times, boxes, strict=True)]
    starts = [_fit_end(ts, b, False, 3.0) for ts, b in zip(times, boxes, strict=True)]
    first = np.array([int(t.frames[0]) for t in tracks])
    last = np.array([int(t.frames[-1]) for t in tracks])
    t_first = np.array([ts[0] for ts in times])
    t_last = np.array([ts[-1] for ts in times])
    cost = np.full((n, n), np.inf)
    for i in range(n):
        later = (first > first[i]) & (last > last[i]) & (t_first > t_last[i] - config.link_overlap_s)
        for j in np.nonzero(later & (t_first - t_last[i] <= config.max_gap_s))[0].tolist():
            if tracks[i].class_id != tracks[j].class_id:
                continue
            gap = max(float(t_first[j] - t_last[i]), 0.0)
            mid = float(min(t_last[i], t_first[j]) + gap / 2.0)
            pa, pb = _at(ends[i], mid), _at(starts[j], mid)
            ha, hb = max(float(ends[i].pos[3]), 1.0), max(float(starts[j].pos[3]), 1.0)
            if max(ha, hb) / min(ha, hb) > config.link_max_size_ratio:
                continue
            dist = float(np.hypot(*(pa[:2] - pb[:2]))) / ((ha + hb) / 2.0)
            allowance = config.link_max_dist + config.link_dist_per_s * gap
            if dist > allowance:
                continue
            c = dist / allowance
            if appearance is not None and config.appearance_weight > 0:
                ea, eb = appearance.get(tracks[i].track_id), appearance.get(tracks[j].track_id)
                if ea is not None and eb is not None:
                    da = appearance_distance(ea[-_APPEARANCE_BOXES:].mean(0), eb[:_APPEARANCE_BOXES].mean(0))
                    c += config.appearance_weight * da
            cost[i, j] = c
    valid = np.isfinite(cost)
    return np.where(valid, cost, 0.0), valid


def link_tracklets(
    tracks: Sequence[Track],
    config: TrackerConfig,
    fps: float,
    appearance: Mapping[int, F32] | None = None,
) -> list[list[Track]]:
    """Group tracklets into chains of one identity (each chain ordered by start; consecutive tracklets may overlap
    by up to ``link_overlap_s``, where the online tracker started a new track before ending the old one).

    Args:
        tracks: tracklets with ``ts_ms`` on their boxes (``frame_idx / fps`` is used where the times are missing).
        config: linking parameters (``max_gap_s``, ``link_*``, ``appearance_weight``).
        fps: nominal frame rate, frames per second.
        appearance: optional per-track (T, D) appearance vectors aligned with the boxes.

    Returns:
        Chains ordered by the first frame of their first tracklet.
    """
    live = [t for t in tracks if len(t)]
    if not live:
        return []
    times = [_times(t, fps) for t in live]
    cost, valid = _link_cost(live, times, config, appearance)
    rows, cols = linear_assignment(1.0 - cost, valid, config.link_unmatched_cost)
    nxt = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    has_prev = set(cols.tolist())
    chains: list[list[Track]] = []
    for i in range(len(live)):
        if i in has_prev:
            continue
        chain, k = [live[i]], i
        while k in nxt:
            k = nxt[k]
            chain.append(live[k])
        chains.append(chain)
    chains.sort(key=lambda c: int(c[0].frames[0]))
    return chains


def _concat(chain: Sequence[Track]) -> list[TrackedBox]:
    """The boxes of a chain in frame order; where a tracklet overlaps the next one, the next one's boxes win."""
    boxes: list[TrackedBox] = []
    for t in chain:
        start = t.boxes[0].frame_idx
        while boxes and boxes[-1].frame_idx >= start:
            boxes.pop()
        boxes.extend(t.boxes)
    return boxes


def _frame_times(tracks: Sequence[Track], fps: float) -> dict[int, float]:
    """Known timestamps (seconds) by frame from every box of every track."""
    out: dict[int, float] = {}
    for t in tracks:
        for b in t.boxes:
            out.setdefault(b.frame_idx, b.ts_ms / 1000.0)
    return out


_MAX_SUBSTEPS = 256  # prediction steps across one gap the filter does not fill (one per frame, at most this many)


def _forward(
    z: F64,
    rs: F64,
    ft: F64,
    k_obs: npt.NDArray[np.int64],
    accel: float,
    size_accel: float,
    meas_std: float,
    steps: npt.NDArray[np.int64] | None = None,
) -> tuple[F64, F64, F64, F64, float]:
    """Kalman forward pass over the frames at times ``ft`` (``k_obs[k]`` the observation at frame k, or -1) with its
    log-likelihood.

    ``steps[k]`` (default 1) is how many frames lie from frame k-1 to k: across a gap left unfilled the prediction
    still steps frame by frame (at most ``_MAX_SUBSTEPS`` equal steps), as the process noise grows with the box's
    height, and the step's transition and noise are those steps composed (so the smoother sees the same model as a
    frame-by-frame pass, at a cost and memory that do not grow with the gap).

    Returns (n, 8) states, (n, 8, 8) covariances, transitions and process noises from the previous frame into each
    (:func:`kalman.rts_smooth`'s convention; identity and zero for the first), and the
    summed log-likelihood of the observations' innovations (Gaussian, ``-½(yᵀS⁻¹y + log|2πS|)``).
    """
    n = len(k_obs)
    xs = np.zeros((n, 8))
    ps = np.zeros((n, 8, 8))
    fs = np.zeros((n, 8, 8))
    qs = np.zeros((n, 8, 8))
    x, p = kalman.initial_state(z[k_obs[0]], meas_std)
    loglik = 0.0
    for k in range(n):
        if k > 0:
            dt = float(ft[k] - ft[k - 1])
            m = 1 if steps is None else int(min(max(steps[k], 1), _MAX_SUBSTEPS))
            f = kalman.transition(dt / m)  # m of them compose to transition(dt) exactly; the noise is composed
            q_tot = np.zeros((8, 8))
            for _ in range(m):
                q = kalman.process_noise(dt / m, x[3], accel, size_accel)
                q_tot = q if m == 1 else f @ q_tot @ f.T + q
                x, p = kalman.predict(x, p, dt / m, accel, size_accel)
            fs[k], qs[k] = kalman.transition(dt), q_tot
        i = int(k_obs[k])
        if i >= 0:
            s = p[:4, :4] + rs[i]
            y = z[i] - x[:4]
            if k > 0:
                loglik -= 0.5 * float(y @ np.linalg.solve(s, y) + np.linalg.slogdet(2 * np.pi * s)[1])
            x, p = kalman.update(x, p, z[i], rs[i])
        xs[k], ps[k] = x, p
    fs[0] = np.eye(8)
    return xs, ps, fs, qs, loglik


def _short_gaps(frames: npt.NDArray[np.int64], times: F64, max_s: float) -> npt.NDArray[np.int64]:
    """Indices ``i`` of the gaps ``frames[i] .. frames[i + 1]`` with frames missing that last at most ``max_s``."""
    return np.flatnonzero((np.diff(frames) > 1) & (np.diff(times) <= max_s))


def fill_count(frames: npt.NDArray[np.int64], times: F64, max_s: float) -> int:
    """How many frames :func:`fill_frames` returns, without building them."""
    short = _short_gaps(frames, times, max_s)
    return len(frames) + int(np.sum(frames[short + 1] - frames[short] - 1))


def fill_frames(frames: npt.NDArray[np.int64], times: F64, max_s: float) -> npt.NDArray[np.int64]:
    """The frames a track's boxes go on: its observed ``frames`` (T,) (times ``times`` in seconds) and every frame of
    each gap that lasts at most ``max_s`` seconds; a longer gap stays a gap (the object is hidden)."""
    short = _short_gaps(frames, times, max_s)
    if not len(short):
        return frames.copy()
    fills = [np.arange(frames[i] + 1, frames[i + 1], dtype=np.int64) for i in short.tolist()]
    return np.sort(np.concatenate([frames, *fills]))


def smooth_track(
    frames: npt.NDArray[np.int64],
    times: F64,
    xyxy: F64,
    scores: F64,
    config: TrackerConfig,
    all_times: Mapping[int, float],
    fps: float,
) -> tuple[npt.NDArray[np.int64], F64, F64, npt.NDArray[np.bool_]]:
    """Fill the short gaps of one track and RTS-smooth it.

    The process noise is chosen per track: the forward pass runs with ``smooth_accel_std`` times each of
    ``smooth_noise_scales`` and the one under which the observations are most likely is smoothed (a walking person
    gets a smooth track, a ball that bounces a responsive one). The filter steps frame by frame where it fills and
    across a longer gap in at most 256 steps (the same prediction, at a cost that does not grow with the gap).

    Args:
        frames: (T,) strictly increasing frame indices of the observations.
        times: (T,) their timestamps, seconds.
        xyxy: (T, 4) observed boxes, pixels.
        scores: (T,) observation scores in [0, 1].
        config: ``smooth_accel_std``, ``smooth_size_accel_std``, ``meas_std``, ``low_score_noise_gain``,
            ``fill_max_s``.
        all_times: known timestamps (seconds) of other frames, used for gap frames.
        fps: frames per second, for gap frames whose time is unknown.

    Returns:
        ``frames`` (F,) the observed frames and those of the gaps it fills (:func:`fill_frames`), ``xyxy`` (F, 4)
        smoothed boxes, ``scores`` (F,) and ``observed`` (F,) bool.
    """
    f0 = int(frames[0])
    all_frames = fill_frames(frames, times, config.fill_max_s)
    obs_pos = {int(f): i for i, f in enumerate(frames)}
    ft = np.empty(len(all_frames))
    for k, f in enumerate(all_frames):
        i = obs_pos.get(int(f))
        if i is not None:
            ft[k] = times[i]
        elif int(f) in all_times:
            ft[k] = all_times[int(f)]
        else:
            ft[k] = times[0] + (f - f0) / fps
    ft = np.maximum.accumulate(ft)
    z = kalman.xyxy_to_cxcywh(xyxy)
    n = len(all_frames)
    k_obs = np.array([obs_pos.get(f, -1) for f in all_frames.tolist()], np.int64)
    steps = np.r_[1, np.diff(all_frames)]
    observed = k_obs >= 0
    out_scores = np.where(observed, scores[np.maximum(k_obs, 0)], 0.0)
    rs = kalman.measurement_noise_batch(z[:, 3], scores, config.meas_std, config.low_score_noise_gain)
    best: tuple[float, F64] | None = None
    for scale in config.smooth_noise_scales:
        accel, size_accel = config.smooth_accel_std * scale, config.smooth_size_accel_std * scale
        xs, ps, fs, qs, loglik = _forward(z, rs, ft, k_obs, accel, size_accel, config.meas_std, steps)
        if best is None or loglik > best[0]:
            best = (loglik, kalman.rts_smooth(xs, ps, fs, qs) if n > 1 else xs)
    assert best is not None
    sm = best[1]
    # Gap frames inherit the lower of the neighbouring observations' scores, discounted.
    obs_idx = np.nonzero(observed)[0]
    prev_i = obs_idx[np.clip(np.searchsorted(obs_idx, np.arange(n), side="right") - 1, 0, None)]
    next_i = obs_idx[np.clip(np.searchsorted(obs_idx, np.arange(n), side="left"), None, len(obs_idx) - 1)]
    filled = np.minimum(out_scores[prev_i], out_scores[next_i]) * _FILLED_SCORE_FACTOR
    out_scores = np.where(observed, out_scores, filled)
    return all_frames, kalman.cxcywh_to_xyxy(sm[:, :4]), out_scores, observed


def _clip_to_frame(xyxy: F64, frame_size: tuple[int, int]) -> tuple[F64, F64]:
    """Boxes clipped to ``(width, height)`` and the fraction of each box's area that was inside."""
    w, h = frame_size
    clipped = np.clip(xyxy, 0.0, [w, h, w, h])
    area = np.prod(np.clip(xyxy[:, 2:] - xyxy[:, :2], 1e-9, None), axis=1)
    inside = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0.0, None), axis=1) / area
    return clipped, inside


def refine(
    tracks: Sequence[Track],
    config: TrackerConfig | None = None,
    fps: float = 30.0,
    *,
    appearance: Mapping[int, F32] | None = None,
    frame_size: tuple[int, int] | None = None,
    max_boxes: int | None = None,
) -> list[Track]:
    """Offline pass over a whole video's tracklets: link, drop short/weak tracks, fill gaps, RTS-smooth.

    Args:
        tracks: tracklets (e.g. :meth:`OnlineTracker.tracklets`), boxes carrying ``ts_ms``.
        config: parameters; defaults to :class:`TrackerConfig()`.
        fps: nominal frame rate (frames per second), used only for frames whose timestamp is unknown.
        appearance: optional per-track (T, D) appearance vectors aligned with the boxes
            (:meth:`OnlineTracker.appearance`), used in linking.
        frame_size: ``(width, height)`` in pixels when known: boxes are clipped to the frame and filled boxes less
            than half inside it are left out (the object is out of view there).
        max_boxes: most boxes over all tracks, gaps filled included (None: no limit).

    Returns:
        Tracks with new consecutive IDs (ordered by first frame); every box's ``source`` is ``SMOOTHED`` (observed)
        or ``FILLED`` (gap of at most ``fill_max_s``; longer gaps of a linked track stay gaps), its ``ts_ms`` set.

    Raises:
        InvalidInputError: ``fps`` not positive and finite. ResourceExhaustedError: more than ``max_boxes`` boxes.
    """
    cfg = config or TrackerConfig()
    if not 0 < fps < float("inf"):
        raise InvalidInputError(f"fps: expected a positive frame rate, got {fps}")
    chains = link_tracklets(tracks, cfg, fps, appearance)
    all_times = _frame_times(tracks, fps)
    out: list[Track] = []
    n_boxes = 0
    for chain in chains:
        boxes = _concat(chain)
        frames = np.array([b.frame_idx for b in boxes], np.int64)
        times = np.array([b.ts_ms for b in boxes], np.float64) / 1000.0
        scores = np.array([b.score for b in boxes], np.float64)
        if times[-1] - times[0] < cfg.min_track_s or float(scores.mean()) < cfg.min_track_score:
            continue
        xyxy = np.stack([b.xyxy for b in boxes]).astype(np.float64)
        n_boxes += fill_count(frames, times, cfg.fill_max_s)  # counted before anything is built
        if max_boxes is not None and n_boxes > max_boxes:
            raise ResourceExhaustedError(
                f"the tracks would hold more than {max_boxes} boxes with their gaps filled (track {len(out) + 1} "
                f"reaches frame {int(frames[-1])}): track fewer frames per request"
            )
        f_all, sm, sc, observed = smooth_track(frames, times, xyxy, scores, cfg, all_times, fps)
        ts_all = np.array([all_times.get(int(f), times[0] + (int(f) - int(frames[0])) / fps) for f in f_all])
        keep = np.ones(len(f_all), bool)
        if frame_size is not None:
            sm, inside = _clip_to_frame(sm, frame_size)
            keep &= observed | (inside >= 0.5)
        track = Track(len(out) + 1, [], chain[0].class_id, chain[0].class_name)
        track.boxes = [
            TrackedBox(
                int(f_all[k]),
                sm[k].astype(np.float32),
                float(sc[k]),
                Source.SMOOTHED if observed[k] else Source.FILLED,
                float(ts_all[k] * 1000.0),
            )
            for k in np.nonzero(keep)[0].tolist()
        ]
        out.append(track)
    logger.debug("refine: %d tracklets -> %d chains -> %d tracks", len(tracks), len(chains), len(out))
    return out
