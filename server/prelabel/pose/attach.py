"""Attach pose detections to person tracks: at most one skeleton per track per frame, none claimed twice.

Per frame, every (track box, pose detection) pair gets an affinity (a weighted sum of terms in [0, 1])::

    a = w_iou * IoU(track box, pose box)
      + w_in  * (fraction of the pose's present keypoints inside the track box, grown by `box_margin`)
      + w_id  * OKS(track's last skeleton, moved at its recent velocity, pose skeleton)

The last term keeps identities through crossings, where two persons' boxes overlap and IoU alone is ambiguous; it
counts only for candidates whose IoU is within ``identity_iou_margin`` of the track's best, so it breaks near-ties
and never outvotes a clearly better box match. Pairs
below the gates (``min_iou``, ``min_inside``) are infeasible; the rest are assigned globally per frame by
``scipy.optimize.linear_sum_assignment`` (maximum total affinity), so no skeleton is attached twice.

When the pose model is also the person detector for the tracker, its boxes are (after the tracker's smoothing, nearly)
the track boxes, and the assignment recovers each track's own detection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from prelabel.errors import InvalidInputError
from prelabel.geometry import box_iou
from prelabel.pose.backend import DEFAULT_MIN_KPT_CONF, skeleton_from_keypoints
from prelabel.types import COCO17_SIGMAS, BoolArray, Detections, FloatArray, Skeleton, Track, TrackedBox

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttachConfig:
    """How pose detections are matched to tracks.

    Attributes:
        min_iou: least IoU between the track box and the pose box for a pair to be feasible.
        min_inside: least fraction of the pose's present keypoints inside the (grown) track box.
        box_margin: the track box grows by this fraction of its width/height on each side for the inside test.
        iou_weight, inside_weight, identity_weight: weights of the affinity terms (module docstring).
        identity_max_gap: the identity term uses the track's last skeleton when it is at most this many frames old.
        identity_iou_margin: the identity term only counts for candidates whose IoU with the track box is within this
            of the track's best candidate IoU: it breaks near-ties (crossings) but never outvotes a clearly better box
            match, so one wrong attachment (or a tracker ID switch) does not pull the next frames along with it.
        min_kpt_conf: keypoints of a pose detection below this confidence are marked missing.
        min_pose_score: pose detections scored below this are ignored.
        person_classes: track class names that can get skeletons; tracks with an empty class name always can;
            empty means every track.
    """

    min_iou: float = 0.3
    min_inside: float = 0.5
    box_margin: float = 0.1
    iou_weight: float = 1.0
    inside_weight: float = 0.5
    identity_weight: float = 1.0
    identity_max_gap: int = 5
    identity_iou_margin: float = 0.2
    min_kpt_conf: float = DEFAULT_MIN_KPT_CONF
    min_pose_score: float = 0.0
    person_classes: tuple[str, ...] = ("person",)

    def __post_init__(self) -> None:
        for name in ("min_iou", "min_inside", "min_kpt_conf", "min_pose_score"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InvalidInputError(f"{name} must be in [0, 1], got {v}")
        for name in ("box_margin", "iou_weight", "inside_weight", "identity_weight", "identity_iou_margin"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.identity_max_gap < 0:
            raise InvalidInputError(f"identity_max_gap must be >= 0, got {self.identity_max_gap}")


def keypoints_inside(boxes: FloatArray, skeletons: Sequence[Skeleton], margin: float) -> FloatArray:
    """(N, M) fraction of each skeleton's present keypoints inside each box grown by ``margin`` (0 with none)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.zeros((len(boxes), len(skeletons)), np.float32)
    if not len(boxes) or not skeletons:
        return out
    wh = boxes[:, 2:] - boxes[:, :2]
    lo = boxes[:, :2] - margin * wh
    hi = boxes[:, 2:] + margin * wh
    for j, sk in enumerate(skeletons):
        xy = sk.keypoints[sk.present, :2]
        if not len(xy):
            continue
        inside = ((xy[None, :, :] >= lo[:, None, :]) & (xy[None, :, :] <= hi[:, None, :])).all(axis=2)
        out[:, j] = inside.mean(axis=1)
    return out


def skeleton_similarity(a: Skeleton, b: Skeleton, area: float) -> float:
    """OKS-style similarity of two skeletons over keypoints present in both (0 when none), ``area`` in px^2."""
    both = a.present & b.present
    if not both.any() or area <= 0:
        return 0.0
    k2 = (2.0 * np.asarray(COCO17_SIGMAS, np.float64)) ** 2
    d2 = ((a.keypoints[:, :2].astype(np.float64) - b.keypoints[:, :2]) ** 2).sum(axis=1)
    return float(np.exp(-d2[both] / (2.0 * area * k2[both])).mean())


def _shifted(sk: Skeleton, dxy: FloatArray) -> Skeleton:
    kp = sk.keypoints.copy()
    kp[:, :2] += dxy
    return Skeleton(kp, sk.present.copy(), sk.score)


def _centroid(sk: Skeleton, mask: BoolArray) -> FloatArray:
    return np.asarray(sk.keypoints[mask, :2].mean(axis=0), np.float32)


def _velocity(prev: tuple[int, Skeleton] | None, cur: tuple[int, Skeleton]) -> FloatArray:
    """px/frame motion of the keypoints' centroid between two skeletons of one track (0 when unknown).

    The skeleton centroid averages 17 keypoints, so it is far steadier than a tracker box's centre."""
    if prev is None or cur[0] <= prev[0]:
        return np.zeros(2, np.float32)
    both = prev[1].present & cur[1].present
    if not both.any():
        return np.zeros(2, np.float32)
    return (_centroid(cur[1], both) - _centroid(prev[1], both)) / float(cur[0] - prev[0])


def _eligible(track: Track, config: AttachConfig) -> bool:
    return not config.person_classes or not track.class_name or track.class_name in config.person_classes


def match_skeletons(
    tracks: Sequence[Track],
    poses: Mapping[int, Detections],
    config: AttachConfig | None = None,
) -> dict[int, dict[int, int]]:
    """Which pose detection goes with which track, frame by frame.

    Args:
        tracks: person tracks (boxes in increasing frame order).
        poses: per frame index, the pose model's detections with ``keypoints`` (N, 17, 3).
        config: gates and weights.

    Returns:
        ``{frame_idx: {track_id: detection index in poses[frame_idx]}}``; a track missing from a frame's dict got no
        skeleton there. Each detection index appears at most once per frame.

    Raises:
        InvalidInputError: a frame's detections carry no keypoints, or two tracks share a track ID.
    """
    cfg = config or AttachConfig()
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InvalidInputError(f"track {dup}: expected unique track IDs, got it {ids.count(dup)} times")
    by_frame: dict[int, list[tuple[int, TrackedBox]]] = {}
    for ti, t in enumerate(tracks):
        if not _eligible(t, cfg):
            continue
        for b in t.boxes:
            if b.frame_idx in poses:
                by_frame.setdefault(b.frame_idx, []).append((ti, b))
    last: dict[int, tuple[int, Skeleton, FloatArray]] = {}  # track index -> (frame, skeleton, px/frame velocity)
    out: dict[int, dict[int, int]] = {}
    for f in sorted(by_frame):
        dets = poses[f]
        if len(dets) and dets.keypoints is None:
            raise InvalidInputError(f"frame {f}: expected pose detections with keypoints, got {len(dets)} without")
        keep = np.flatnonzero(dets.scores >= cfg.min_pose_score)
        out[f] = {}
        if not len(keep):
            continue
        assert dets.keypoints is not None
        cand = [skeleton_from_keypoints(dets.keypoints[j], cfg.min_kpt_conf, float(dets.scores[j])) for j in keep]
        entries = by_frame[f]
        tboxes = np.stack([b.xyxy for _, b in entries])
        iou = box_iou(tboxes, dets.xyxy[keep])
        inside = keypoints_inside(tboxes, cand, cfg.box_margin)
        ident = np.zeros_like(iou)
        for r, (ti, b) in enumerate(entries):
            prev = last.get(ti)
            if prev is None or f - prev[0] > cfg.identity_max_gap:
                continue
            moved = _shifted(prev[1], prev[2] * float(f - prev[0]))
            area = float(np.prod(np.clip(b.xyxy[2:] - b.xyxy[:2], 0, None)))
            near_best = iou[r].max() - cfg.identity_iou_margin
            for c, sk in enumerate(cand):
                if iou[r, c] >= cfg.min_iou and iou[r, c] >= near_best:
                    ident[r, c] = skeleton_similarity(moved, sk, area)
        feasible = (iou >= cfg.min_iou) & (inside >= cfg.min_inside)
        if not feasible.any():
            continue
        affinity = cfg.iou_weight * iou + cfg.inside_weight * inside + cfg.identity_weight * ident
        # Infeasible pairs get a strongly negative affinity so the solver never prefers them; any it still returns
        # (only when nothing else is left) are dropped below.
        cost = np.where(feasible, -affinity, 1e6)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if not feasible[r, c]:
                continue
            ti, b = entries[r]
            out[f][tracks[ti].track_id] = int(keep[c])
            prev = last.get(ti)
            recent = None if prev is None or f - prev[0] > cfg.identity_max_gap else (prev[0], prev[1])
            last[ti] = (f, cand[c], _velocity(recent, (f, cand[c])))
    return out


def attach_skeletons(
    tracks: Sequence[Track],
    poses: Mapping[int, Detections],
    config: AttachConfig | None = None,
) -> list[Track]:
    """Tracks with ``TrackedBox.skeleton`` set from the pose detections matched to them (see :func:`match_skeletons`).

    Frames present in ``poses`` are reassigned (a box there with no matched detection gets ``skeleton=None``); frames
    absent from ``poses`` keep whatever skeleton they had. Inputs are not modified.

    Args:
        tracks: person tracks.
        poses: per frame index, pose detections (N, 17, 3 keypoints), e.g. from a pose model run on those frames.
        config: gates, weights and the keypoint confidence threshold.

    Returns:
        New tracks, same order, IDs and boxes.

    Raises:
        InvalidInputError: see :func:`match_skeletons`.
    """
    cfg = config or AttachConfig()
    matches = match_skeletons(tracks, poses, cfg)
    out: list[Track] = []
    n_attached = 0
    for t in tracks:
        boxes: list[TrackedBox] = []
        for b in t.boxes:
            if b.frame_idx not in poses:
                boxes.append(replace(b))
                continue
            j = matches.get(b.frame_idx, {}).get(t.track_id)
            sk: Skeleton | None = None
            if j is not None:
                dets = poses[b.frame_idx]
                assert dets.keypoints is not None
                sk = skeleton_from_keypoints(dets.keypoints[j], cfg.min_kpt_conf, float(dets.scores[j]))
                n_attached += 1
            boxes.append(replace(b, skeleton=sk))
        out.append(Track(t.track_id, boxes, t.class_id, t.class_name))
    logger.debug("attach_skeletons: %d tracks, %d skeletons attached", len(out), n_attached)
    return out
