"""Online multi-object tracker: Kalman motion, IoU + direction association, ByteTrack's low-score pass, OC-SORT's
observation-centric recovery and re-update, and camera-motion compensation when frames are given.

Per frame (``OnlineTracker.update``):

1. camera warp from the frame (optional) applied to every track's state;
2. Kalman prediction of every track to the frame's timestamp;
3. pass 1: all tracks vs detections with ``score >= high_score`` on ``IoU + direction_weight · score · cos``
   (the cosine between a track's recent motion direction and the direction to the detection), gated by
   ``IoU >= match_iou`` and equal class;
4. pass 2 (ByteTrack): tracks matched in the previous frame vs detections in ``[low_score, high_score)``, gated by
   ``IoU >= low_match_iou``;
5. pass 3 (OC-SORT recovery): still-unmatched tracks vs still-unmatched high detections, IoU against the track's last
   *observed* box rather than its prediction, gated by ``recovery_iou``;
6. matched tracks are updated; a track that comes back after missed frames is first re-updated along a virtual
   trajectory from its last observation to the new one (OC-SORT's re-update), so its velocity is not the drift of
   blind predictions;
7. death: a tentative track (fewer than ``min_hits`` observations) dies on its first miss; any track dies after
   ``max_lost_s`` seconds without an observation;
8. birth: an unmatched detection with ``score >= new_track_score`` starts a tentative track; it gets its ID and is
   reported from its ``min_hits``-th observation on.

Prediction and update of all tracks run batched (:func:`kalman.predict_batch` / :func:`kalman.update_batch`, the
filterpy equations vectorised); the re-update after a gap uses filterpy per track.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from prelabel.geometry import box_iou as iou_matrix
from prelabel.track import kalman
from prelabel.track.appearance import colour_histogram
from prelabel.track.association import direction_consistency, linear_assignment
from prelabel.track.cmc import SparseFlowCMC, warp_state, warp_xyxy
from prelabel.track.config import TrackerConfig
from prelabel.track.validate import check_detections, check_order
from prelabel.types import Detections, Source, Track, TrackedBox

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

_DIR_HISTORY = 32


@dataclass(frozen=True)
class TrackedObject:
    """One track's box in one frame, as the online tracker reports it.

    Attributes:
        track_id: positive, stable for the video.
        frame_idx, ts_ms: the frame.
        xyxy: (4,) float64 pixels, the matched detection's box.
        score: the detection's score in [0, 1].
        class_id, class_name: the detection's class.
        source: ``Source.DETECTOR`` (an observed box).
    """

    track_id: int
    frame_idx: int
    ts_ms: float
    xyxy: F64
    score: float
    class_id: int
    class_name: str
    source: Source = Source.DETECTOR

    @property
    def box(self) -> TrackedBox:
        """The same as a :class:`TrackedBox`."""
        return TrackedBox(self.frame_idx, self.xyxy.astype(np.float32), self.score, self.source, self.ts_ms)


@dataclass
class _Tracklet:
    class_id: int
    class_name: str
    x: F64
    p: F64
    last_obs: F64  # (4,) xyxy of the last matched detection, camera-compensated
    last_obs_t: float
    last_score: float
    snap_x: F64
    snap_p: F64
    hits: int = 1
    track_id: int = 0
    matched_prev: bool = True
    direction: F64 = field(default_factory=lambda: np.zeros(2))
    missed_t: list[float] = field(default_factory=list)
    obs_t: list[float] = field(default_factory=list)
    obs_c: list[F64] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    times_ms: list[float] = field(default_factory=list)
    boxes: list[F64] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    embeds: list[F32] = field(default_factory=list)

    def update_direction(self, window_s: float) -> None:
        """Unit vector of the recent motion of the observed centre (zeros when unknown)."""
        if len(self.obs_t) < 2:
            return
        ts = self.obs_t
        target = ts[-1] - window_s
        i = len(ts) - 2  # the earliest observation within the window, but not the last one
        while i > 0 and ts[i - 1] >= target:
            i -= 1
        (ax, ay), (bx, by) = self.obs_c[i], self.obs_c[-1]
        dx, dy = float(bx - ax), float(by - ay)
        n = (dx * dx + dy * dy) ** 0.5
        self.direction = np.array([dx / n, dy / n]) if n > 1e-3 * max(float(self.x[3]), 1.0) else np.zeros(2)


class OnlineTracker:
    """Incremental tracker, fed one frame at a time while a video is decoded.

    Args:
        config: all parameters (:class:`TrackerConfig`).
        class_names: names by class id, used when detections carry none.

    Use :meth:`update` per frame, then :meth:`tracklets` for everything it saw (input to :func:`refine`).
    """

    def __init__(self, config: TrackerConfig | None = None, class_names: Sequence[str] = ()) -> None:
        self.config = config or TrackerConfig()
        self._class_names = tuple(class_names)
        self._active: list[_Tracklet] = []
        self._finished: list[_Tracklet] = []
        self._next_id = 1
        self._prev_frame: int | None = None
        self._prev_ts: float | None = None
        self._cmc = SparseFlowCMC(max_side=self.config.cmc_max_side)
        self._with_appearance = False

    # ------------------------------------------------------------------ public API

    def update(
        self,
        frame_idx: int,
        ts_ms: float,
        detections: Detections,
        image: npt.NDArray[np.uint8] | None = None,
    ) -> list[TrackedObject]:
        """Advance to ``frame_idx`` with its detections and return the confirmed tracks observed in it.

        Args:
            frame_idx: 0-based, strictly increasing between calls.
            ts_ms: the frame's timestamp in milliseconds, non-decreasing.
            detections: this frame's detections (``xyxy`` pixels, scores in [0, 1]).
            image: the (H, W, 3) uint8 BGR frame; enables camera-motion compensation and appearance.

        Returns:
            One :class:`TrackedObject` per confirmed track matched in this frame, ordered by ``track_id``.

        Raises:
            InvalidInputError: frames out of order, or a detection with NaN/inf, negative size or a bad score
                (the message names the frame and row).
        """
        cfg = self.config
        check_order(frame_idx, ts_ms, self._prev_frame, self._prev_ts)
        check_detections(frame_idx, detections)
        t = ts_ms / 1000.0
        dt = 0.0 if self._prev_ts is None else t - self._prev_ts / 1000.0
        self._prev_frame, self._prev_ts = frame_idx, ts_ms

        if image is not None and cfg.cmc == "flow":
            self._compensate(self._cmc.estimate(image))
        tracks = self._active
        n_tr = len(tracks)
        if n_tr:
            xs, ps = kalman.predict_batch(
                np.stack([tr.x for tr in tracks]), np.stack([tr.p for tr in tracks]), dt, cfg.accel_std,
                cfg.size_accel_std,
            )  # fmt: skip
        else:
            xs, ps = np.zeros((0, 8)), np.zeros((0, 8, 8))

        det_xyxy = np.asarray(detections.xyxy, np.float64)
        scores = np.asarray(detections.scores, np.float64)
        classes = np.asarray(detections.class_ids, np.int64)
        high = np.nonzero(scores >= cfg.high_score)[0]
        low = np.nonzero((scores >= cfg.low_score) & (scores < cfg.high_score))[0]
        track_cls = np.array([tr.class_id for tr in tracks], np.int64)
        matched: dict[int, int] = {}  # track index -> detection index
        pred = kalman.cxcywh_to_xyxy(xs[:, :4])

        if n_tr and len(high):
            matched.update(self._match_first(tracks, pred, det_xyxy, scores, classes, high, track_cls, t))
        if len(low):
            matched.update(self._match_low(tracks, pred, det_xyxy, classes, low, track_cls, matched))
        matched.update(self._match_recovery(tracks, det_xyxy, classes, high, track_cls, matched))
        if cfg.match_dist > 0:
            self._match_by_distance(tracks, xs, matched, det_xyxy[high], high, classes, track_cls)

        self._apply_updates(tracks, xs, ps, matched, t, det_xyxy, scores)
        embeds = self._embeddings(image, det_xyxy) if image is not None and cfg.appearance_weight > 0 else None
        out: list[TrackedObject] = []
        survivors: list[_Tracklet] = []
        for i, tr in enumerate(tracks):
            d = matched.get(i)
            if d is not None:
                self._record(tr, frame_idx, ts_ms, det_xyxy[d], float(scores[d]), None if embeds is None else embeds[d])
                survivors.append(tr)
                if tr.track_id:
                    out.append(self._output(tr))
                continue
            tr.matched_prev = False
            tr.missed_t.append(t)
            if tr.hits < cfg.min_hits:
                continue  # a tentative track dies on its first miss
            if t - tr.last_obs_t > cfg.max_lost_s:
                self._finished.append(tr)
                continue
            survivors.append(tr)

        used = set(matched.values())
        for d in high.tolist():
            if d in used or scores[d] < cfg.new_track_score:
                continue
            tr = self._birth(frame_idx, ts_ms, det_xyxy[d], float(scores[d]), int(classes[d]), detections)
            if embeds is not None:
                tr.embeds.append(embeds[d])
            survivors.append(tr)
            if tr.track_id:
                out.append(self._output(tr))
        excess = len(survivors) - cfg.max_live_tracks
        if excess > 0:  # the tracks lost longest end first (those seen in this frame stay)
            lost = sorted((tr for tr in survivors if tr.frames[-1] < frame_idx), key=lambda tr: tr.frames[-1])[:excess]
            ended = {id(tr) for tr in lost}
            self._finished.extend(tr for tr in lost if tr.hits >= cfg.min_hits)
            survivors = [tr for tr in survivors if id(tr) not in ended]
        self._active = survivors
        out.sort(key=lambda o: o.track_id)
        return out

    def tracklets(self) -> list[Track]:
        """Every confirmed track seen so far with all its observed boxes (``Source.DETECTOR``), by ``track_id``."""
        out = []
        for tr in sorted(self._confirmed(), key=lambda tr: tr.track_id):
            boxes = [
                TrackedBox(f, b.astype(np.float32), s, Source.DETECTOR, ts)
                for f, ts, b, s in zip(tr.frames, tr.times_ms, tr.boxes, tr.scores, strict=True)
            ]
            out.append(Track(tr.track_id, boxes, tr.class_id, tr.class_name))
        return out

    def appearance(self) -> dict[int, F32] | None:
        """Per confirmed track, (T, 64) float32 colour histograms aligned with its boxes; None without frames."""
        if not self._with_appearance:
            return None
        return {tr.track_id: np.stack(tr.embeds) for tr in self._confirmed() if len(tr.embeds) == len(tr.boxes)}

    # ------------------------------------------------------------------ internals

    def _confirmed(self) -> list[_Tracklet]:
        return [tr for tr in (*self._finished, *self._active) if tr.track_id]

    @staticmethod
    def _output(tr: _Tracklet) -> TrackedObject:
        return TrackedObject(
            tr.track_id, tr.frames[-1], tr.times_ms[-1], tr.boxes[-1], tr.scores[-1], tr.class_id, tr.class_name
        )

    def _embeddings(self, image: npt.NDArray[np.uint8], det_xyxy: F64) -> list[F32]:
        self._with_appearance = True
        return [colour_histogram(image, b) for b in det_xyxy]

    def _compensate(self, warp: F64) -> None:
        if np.allclose(warp, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-4):
            return
        for tr in self._active:
            tr.x, tr.p = warp_state(tr.x, tr.p, warp)
            tr.snap_x, tr.snap_p = warp_state(tr.snap_x, tr.snap_p, warp)
            tr.last_obs = warp_xyxy(tr.last_obs, warp)
            tr.obs_c = [c @ warp[:, :2].T + warp[:, 2] for c in tr.obs_c]
            tr.direction = tr.direction @ warp[:, :2].T
            n = float(np.hypot(*tr.direction))
            tr.direction = tr.direction / n if n > 0 else tr.direction

    def _match_first(
        self,
        tracks: list[_Tracklet],
        pred: F64,
        det_xyxy: F64,
        scores: F64,
        classes: npt.NDArray[np.int64],
        high: npt.NDArray[np.int64],
        track_cls: npt.NDArray[np.int64],
        t: float,
    ) -> dict[int, int]:
        """Pass 1: every track vs the high-score detections on IoU + direction consistency."""
        cfg = self.config
        ious = iou_matrix(pred, det_xyxy[high])
        score = ious
        if cfg.direction_weight > 0.0:
            dirs = np.stack([tr.direction for tr in tracks])
            anchors = np.stack([tr.obs_c[-1] for tr in tracks])
            centres = (det_xyxy[high, :2] + det_xyxy[high, 2:]) / 2.0
            cos = direction_consistency(dirs, anchors, centres)
            score = ious + cfg.direction_weight * cos * scores[high][None, :]
        valid = (ious >= cfg.match_iou) & (track_cls[:, None] == classes[high][None, :])
        if cfg.recent_first:
            # Confirmed tracks seen within recent_s choose first; tracks coasting for longer, or tentative ones,
            # may not steal their detections.
            lost = np.array([t - tr.last_obs_t > cfg.recent_s or tr.hits < cfg.min_hits for tr in tracks])
            rows, cols = linear_assignment(score, valid & ~lost[:, None])
            taken = np.zeros(len(high), bool)
            taken[cols] = True
            rows2, cols2 = linear_assignment(score, valid & lost[:, None] & ~taken[None, :])
            rows, cols = np.concatenate([rows, rows2]), np.concatenate([cols, cols2])
        else:
            rows, cols = linear_assignment(score, valid)
        return dict(zip(rows.tolist(), high[cols].tolist(), strict=True))

    def _match_low(
        self,
        tracks: list[_Tracklet],
        pred: F64,
        det_xyxy: F64,
        classes: npt.NDArray[np.int64],
        low: npt.NDArray[np.int64],
        track_cls: npt.NDArray[np.int64],
        matched: dict[int, int],
    ) -> dict[int, int]:
        """Pass 2 (ByteTrack): unmatched tracks seen in the previous frame vs the low-score detections, on IoU."""
        cand = [i for i in range(len(tracks)) if i not in matched and tracks[i].matched_prev]
        if not cand:
            return {}
        ious = iou_matrix(pred[cand], det_xyxy[low])
        valid = (ious >= self.config.low_match_iou) & (track_cls[cand][:, None] == classes[low][None, :])
        rows, cols = linear_assignment(ious, valid)
        return {cand[r]: int(low[c]) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)}

    def _match_recovery(
        self,
        tracks: list[_Tracklet],
        det_xyxy: F64,
        classes: npt.NDArray[np.int64],
        high: npt.NDArray[np.int64],
        track_cls: npt.NDArray[np.int64],
        matched: dict[int, int],
    ) -> dict[int, int]:
        """Pass 3 (OC-SORT recovery): unmatched tracks' last observed boxes vs free high-score detections."""
        used = set(matched.values())
        rest = np.array([d for d in high.tolist() if d not in used], np.int64)
        cand = [i for i in range(len(tracks)) if i not in matched]
        if not cand or not len(rest):
            return {}
        last = np.stack([tracks[i].last_obs for i in cand])
        ious = iou_matrix(last, det_xyxy[rest])
        valid = (ious >= self.config.recovery_iou) & (track_cls[cand][:, None] == classes[rest][None, :])
        rows, cols = linear_assignment(ious, valid)
        return {cand[r]: int(rest[c]) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)}

    def _match_by_distance(
        self,
        tracks: list[_Tracklet],
        xs: F64,
        matched: dict[int, int],
        high_xyxy: F64,
        high: npt.NDArray[np.int64],
        classes: npt.NDArray[np.int64],
        track_cls: npt.NDArray[np.int64],
    ) -> None:
        """Last pass for fast objects that no longer overlap their prediction: predicted centre distance.

        Gate: distance at most ``match_dist`` box heights (of the track) and heights within a factor 1.5.
        """
        used = set(matched.values())
        rest = [k for k, d in enumerate(high.tolist()) if d not in used]
        cand = [i for i in range(len(tracks)) if i not in matched and tracks[i].hits >= self.config.min_hits]
        if not cand or not rest:
            return
        pc = xs[cand, :2]
        ph = np.maximum(xs[cand, 3], 1.0)
        db = high_xyxy[rest]
        dc = (db[:, :2] + db[:, 2:]) / 2.0
        dh = np.maximum(db[:, 3] - db[:, 1], 1.0)
        dist = np.linalg.norm(pc[:, None, :] - dc[None, :, :], axis=2) / ph[:, None]
        ratio = np.maximum(ph[:, None] / dh[None, :], dh[None, :] / ph[:, None])
        valid = (dist <= self.config.match_dist) & (ratio <= 1.5)
        valid &= track_cls[cand][:, None] == classes[high[rest]][None, :]
        rows, cols = linear_assignment(1.0 - dist, valid)
        matched.update({cand[r]: int(high[rest[c]]) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)})

    def _apply_updates(
        self,
        tracks: list[_Tracklet],
        xs: F64,
        ps: F64,
        matched: dict[int, int],
        t: float,
        det_xyxy: F64,
        scores: F64,
    ) -> None:
        """Kalman-update matched tracks (batched; with the re-update first for tracks back from a gap)."""
        cfg = self.config
        for i, tr in enumerate(tracks):
            tr.x, tr.p = xs[i], ps[i]
        if not matched:
            return
        idx = np.fromiter(matched.keys(), np.int64, len(matched))
        det = np.fromiter(matched.values(), np.int64, len(matched))
        zs = kalman.xyxy_to_cxcywh(det_xyxy[det])
        for k, i in enumerate(idx.tolist()):
            if tracks[i].missed_t:
                xs[i], ps[i] = self._reupdate(tracks[i], zs[k], t)
        rs = kalman.measurement_noise_batch(zs[:, 3], scores[det], cfg.meas_std, cfg.low_score_noise_gain)
        xu, pu = kalman.update_batch(xs[idx], ps[idx], zs, rs)
        for k, i in enumerate(idx.tolist()):
            tr = tracks[i]
            tr.x, tr.p = xu[k], pu[k]
            tr.snap_x, tr.snap_p = tr.x, tr.p

    def _class_name(self, cid: int, detections: Detections) -> str:
        names = tuple(detections.class_names) or self._class_names
        return names[cid] if 0 <= cid < len(names) else str(cid)

    def _birth(
        self, frame_idx: int, ts_ms: float, xyxy: F64, score: float, class_id: int, detections: Detections
    ) -> _Tracklet:
        cfg = self.config
        z = kalman.xyxy_to_cxcywh(xyxy)
        x, p = kalman.initial_state(z, cfg.meas_std)
        t = ts_ms / 1000.0
        tr = _Tracklet(
            class_id=class_id,
            class_name=self._class_name(class_id, detections),
            x=x,
            p=p,
            last_obs=xyxy,
            last_obs_t=t,
            last_score=score,
            snap_x=x,
            snap_p=p,
        )
        tr.obs_t.append(t)
        tr.obs_c.append(z[:2])
        tr.frames.append(frame_idx)
        tr.times_ms.append(ts_ms)
        tr.boxes.append(xyxy)
        tr.scores.append(score)
        if cfg.min_hits <= 1:
            tr.track_id = self._new_id()
        return tr

    def _new_id(self) -> int:
        tid = self._next_id
        self._next_id += 1
        return tid

    def _record(self, tr: _Tracklet, frame_idx: int, ts_ms: float, xyxy: F64, score: float, embed: F32 | None) -> None:
        cfg = self.config
        t = ts_ms / 1000.0
        tr.last_obs, tr.last_obs_t, tr.last_score = xyxy, t, score
        tr.hits += 1
        tr.matched_prev = True
        tr.missed_t = []
        tr.obs_t.append(t)
        tr.obs_c.append((xyxy[:2] + xyxy[2:]) / 2.0)
        if len(tr.obs_t) > _DIR_HISTORY:
            del tr.obs_t[0], tr.obs_c[0]
        tr.update_direction(cfg.direction_window_s)
        tr.frames.append(frame_idx)
        tr.times_ms.append(ts_ms)
        tr.boxes.append(xyxy)
        tr.scores.append(score)
        if embed is not None:
            tr.embeds.append(embed)
        if not tr.track_id and tr.hits >= cfg.min_hits:
            tr.track_id = self._new_id()

    def _reupdate(self, tr: _Tracklet, z: F64, t: float) -> tuple[F64, F64]:
        """OC-SORT re-update: replay the missed frames with observations interpolated between the last and new box.

        Returns the state and covariance predicted to ``t``, ready for the update with ``z``.
        """
        cfg = self.config
        x, p = tr.snap_x, tr.snap_p
        z0 = kalman.xyxy_to_cxcywh(tr.last_obs)
        t0, prev = tr.last_obs_t, tr.last_obs_t
        span = max(t - t0, 1e-9)
        r = kalman.measurement_noise(z0[3], tr.last_score, cfg.meas_std, cfg.low_score_noise_gain)
        for tm in tr.missed_t:
            x, p = kalman.predict(x, p, tm - prev, cfg.accel_std, cfg.size_accel_std)
            a = (tm - t0) / span
            x, p = kalman.update(x, p, z0 + a * (z - z0), r)
            prev = tm
        return kalman.predict(x, p, t - prev, cfg.accel_std, cfg.size_accel_std)
