"""The entry point: an annotator's keyframes for one track -> dense boxes/skeletons, confidence, suggestions.

Outside handling follows CVAT: every frame takes the ``outside`` flag of the keyframe at or before it, so an outside
keyframe hides the object until the next keyframe, and nothing is interpolated across an outside span. Frames after
a visible keyframe and before an outside keyframe move linearly toward the outside keyframe's box when it has one
(CVAT's rule), and hold the last box otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import (
    Float64Array,
    FrameSource,
    InterpolationMethod,
    InterpolationResult,
    RunInput,
    SuggestedKeyframe,
)
from prelabel.interpolate.geometric import linear_boxes
from prelabel.interpolate.guided import box_iou_matrix
from prelabel.interpolate.registry import MethodRegistry, default_registry
from prelabel.interpolate.skeleton import blend_pose_estimates, kinematic_skeletons, linear_skeletons
from prelabel.interpolate.validate import validate_keyframes
from prelabel.types import NUM_KEYPOINTS, Detections, Keyframe

logger = logging.getLogger(__name__)


def _visible_runs(keyframes: Sequence[Keyframe]) -> list[list[int]]:
    """Indices of maximal runs of consecutive visible keyframes."""
    runs: list[list[int]] = []
    cur: list[int] = []
    for i, kf in enumerate(keyframes):
        if kf.outside:
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append(i)
    if cur:
        runs.append(cur)
    return runs


def suggest_keyframes(
    frames: np.ndarray,
    uncertainty: Float64Array,
    score: Float64Array,
    key_frames: np.ndarray,
    num: int,
    reason: str,
) -> list[SuggestedKeyframe]:
    """Rank frames for the next keyframe: the most uncertain frame of each gap first, at most one per gap per round.

    Args:
        frames: (T,) frame indices.
        uncertainty: (T,) pixels; frames with 0 (keyframes, outside) are never suggested.
        score: (T,) in [0, 1], reported with each suggestion.
        key_frames: keyframe indices (gap boundaries).
        num: how many suggestions.
        reason: text for each suggestion.
    """
    if num <= 0:
        return []
    cand = np.flatnonzero(uncertainty > 0)
    if cand.size == 0:
        return []
    gap = np.searchsorted(np.asarray(key_frames), frames[cand])
    order = cand[np.argsort(-uncertainty[cand], kind="stable")]
    gap_of = dict(zip(cand.tolist(), gap.tolist(), strict=True))
    out: list[SuggestedKeyframe] = []
    used: set[int] = set()
    taken: set[int] = set()
    while len(out) < num and len(taken) < len(order):
        progressed = False
        for i in order.tolist():
            if i in taken or gap_of[i] in used:
                continue
            taken.add(i)
            used.add(gap_of[i])
            progressed = True
            out.append(SuggestedKeyframe(int(frames[i]), float(score[i]), f"{reason}: {uncertainty[i]:.1f} px"))
            if len(out) >= num:
                break
        if not progressed:
            used.clear()
    return out


def _pose_estimates(
    detections: Mapping[int, Detections] | None, frames: np.ndarray, boxes: Float64Array
) -> tuple[Float64Array, Float64Array] | None:
    """Keypoints of the detection best overlapping the box path in each frame: (T, 17, 2) and (T, 17) confidence."""
    if detections is None:
        return None
    est = np.full((len(frames), NUM_KEYPOINTS, 2), np.nan)
    conf = np.zeros((len(frames), NUM_KEYPOINTS))
    found = False
    for i, f in enumerate(frames.tolist()):
        d = detections.get(f)
        if d is None or d.keypoints is None or len(d) == 0 or not np.all(np.isfinite(boxes[i])):
            continue
        iou = box_iou_matrix(boxes[i : i + 1], d.xyxy.astype(np.float64))[0]
        j = int(np.argmax(iou))
        if iou[j] >= 0.5:
            est[i] = d.keypoints[j, :, :2]
            conf[i] = d.keypoints[j, :, 2] * float(iou[j])
            found = True
    return (est, conf) if found else None


def interpolate_track(
    keyframes: Sequence[Keyframe],
    method: str = "auto",
    *,
    video: FrameSource | None = None,
    detections: Mapping[int, Detections] | None = None,
    num_suggestions: int = 3,
    track_id: int = 1,
    registry: MethodRegistry | None = None,
    method_object: InterpolationMethod | None = None,
) -> InterpolationResult:
    """Interpolate one track between an annotator's keyframes.

    Args:
        keyframes: strictly increasing by ``frame_idx``; each with a box and/or a skeleton, or ``outside``.
        method: a registry name (``linear``, ``spline``, ``kalman``, ``kalman-ca``, ``guided``, ``auto``); empty
            means ``auto``.
        video: frames for ``guided`` (and ``auto``, which uses them where they help).
        detections: optional detector output per frame index (boxes, and keypoints for pose models) used by
            ``guided``/``auto`` as support near the path and to guide skeletons.
        num_suggestions: how many suggested keyframes to return (>= 0).
        track_id: the track (positive), named in errors.
        registry: where to look methods up; the default registry when None.
        method_object: an already built method to use instead of looking ``method`` up (lets callers keep caches,
            e.g. the guided method's optical-flow passes, across calls on the same video).

    Returns:
        :class:`InterpolationResult` for every frame from the first to the last keyframe.

    Raises:
        InvalidInputError: unsorted/duplicate/negative keyframes, frames outside the video, NaN, no keyframes,
            unknown method, ``guided`` without a video, negative ``num_suggestions``; the message names the track
            and the frame.
    """
    validate_keyframes(keyframes, track_id, video)
    if num_suggestions < 0:
        raise InvalidInputError(f"track {track_id}: num_suggestions must be >= 0, got {num_suggestions}")
    name = method or "auto"
    meth = method_object if method_object is not None else (registry or default_registry()).create(name)
    if meth.needs_video and video is None:
        raise InvalidInputError(f"track {track_id}: method {name!r} needs a video, none was given")
    linear_meth = name == "linear"

    kframes = np.array([k.frame_idx for k in keyframes], dtype=np.int64)
    t0 = int(kframes[0])
    frames = np.arange(t0, int(kframes[-1]) + 1, dtype=np.int64)
    n = len(frames)
    kidx = np.searchsorted(kframes, frames, side="right") - 1  # keyframe at or before each frame
    outside = np.array([keyframes[i].outside for i in kidx], dtype=bool)
    is_key = frames == kframes[kidx]
    xyxy = np.full((n, 4), np.nan)
    conf = np.zeros(n)
    unc = np.zeros(n)
    fmethods = [""] * n
    reason = "distance from keyframes"
    has_box_track = any(k.xyxy is not None for k in keyframes if not k.outside)

    runs = _visible_runs(keyframes)
    if has_box_track:
        for run in runs:
            kf = kframes[run]
            boxes = np.stack([np.asarray(keyframes[i].xyxy, np.float64) for i in run])
            est = meth.interpolate_run(RunInput(track_id, kf, boxes, video, detections))
            sl = slice(int(kf[0]) - t0, int(kf[-1]) - t0 + 1)
            xyxy[sl], conf[sl], unc[sl] = est.xyxy, est.confidence, est.uncertainty
            fmethods[sl] = est.method
            reason = est.reason
        # Tails: a visible keyframe followed by an outside keyframe (CVAT: linear toward its box, or hold).
        for i in range(len(keyframes) - 1):
            a, b = keyframes[i], keyframes[i + 1]
            if a.outside or not b.outside or b.frame_idx - a.frame_idx < 2:
                continue
            end = b.xyxy if b.xyxy is not None else a.xyxy
            pair = np.stack([np.asarray(a.xyxy, np.float64), np.asarray(end, np.float64)])
            lin = linear_boxes(np.array([a.frame_idx, b.frame_idx]), pair)
            sl = slice(a.frame_idx + 1 - t0, b.frame_idx - t0)
            xyxy[sl] = lin[1:-1]
            steps = np.arange(1, b.frame_idx - a.frame_idx, dtype=np.float64)
            conf[sl] = np.exp(-steps / 10.0)
            unc[sl] = 0.0  # nothing to anchor a new keyframe against: the object is leaving view
            fmethods[sl] = ["linear"] * len(steps)

    has_box = has_box_track & ~outside
    xyxy[~has_box] = np.nan
    conf[outside] = 0.0
    unc[outside | is_key] = 0.0
    conf[is_key & ~outside] = 1.0
    for i in np.flatnonzero(is_key).tolist():
        fmethods[i] = "keyframe" if not outside[i] else ""
    for i in np.flatnonzero(outside & ~is_key).tolist():
        fmethods[i] = ""

    kp, kp_present, has_skel = _skeletons(keyframes, kframes, frames, runs, xyxy, conf, linear_meth, detections)

    result = InterpolationResult(
        track_id=track_id,
        method=name,
        frames=frames,
        xyxy=xyxy.astype(np.float32),
        has_box=has_box,
        outside=outside,
        is_keyframe=is_key,
        confidence=np.clip(conf, 0.0, 1.0).astype(np.float32),
        frame_methods=fmethods,
        keypoints=kp,
        keypoints_present=kp_present,
        has_skeleton=has_skel,
    )
    result.suggestions = suggest_keyframes(frames, unc, 1.0 - conf, kframes, num_suggestions, reason)
    return result


def _skeletons(
    keyframes: Sequence[Keyframe],
    kframes: np.ndarray,
    frames: np.ndarray,
    runs: list[list[int]],
    xyxy: Float64Array,
    conf: Float64Array,
    linear_meth: bool,
    detections: Mapping[int, Detections] | None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    n = len(frames)
    t0 = int(frames[0])
    has_skel = np.zeros(n, bool)
    if not any(k.skeleton is not None for k in keyframes if not k.outside):
        return None, None, has_skel
    kp = np.zeros((n, NUM_KEYPOINTS, 3), np.float32)
    present = np.zeros((n, NUM_KEYPOINTS), bool)
    for run in runs:
        # Split the run where a keyframe has no skeleton.
        groups: list[list[int]] = [[]]
        for i in run:
            if keyframes[i].skeleton is None:
                groups.append([])
            else:
                groups[-1].append(i)
        for g in groups:
            if not g:
                continue
            kf = kframes[g]
            skels = [keyframes[i].skeleton for i in g]
            kxy = np.stack([s.keypoints[:, :2].astype(np.float64) for s in skels if s is not None])
            kpr = np.stack([s.present for s in skels if s is not None])
            kconf = np.stack([s.keypoints[:, 2] for s in skels if s is not None])
            sl = slice(int(kf[0]) - t0, int(kf[-1]) - t0 + 1)
            boxes = xyxy[sl]
            key_boxes = (
                np.stack([np.asarray(keyframes[i].xyxy, np.float64) for i in g])
                if (all(keyframes[i].xyxy is not None for i in g) and np.isfinite(boxes).all())
                else None
            )
            if linear_meth:
                sxy, spr = linear_skeletons(kf, kxy, kpr)
            else:
                sxy, spr = kinematic_skeletons(kf, kxy, kpr, key_boxes, boxes if key_boxes is not None else None)
                est = _pose_estimates(detections, frames[sl], boxes) if key_boxes is not None else None
                if est is not None:
                    w = conf[sl] / np.maximum(1.0 - conf[sl], 1e-6)
                    w[kf - kf[0]] = np.inf
                    sxy = blend_pose_estimates(sxy, spr, w, est[0], est[1])
            kp[sl, :, :2] = sxy
            kp[sl, :, 2] = np.where(spr, conf[sl, None], 0.0)
            kp[kf - t0, :, 2] = kconf
            present[sl] = spr
            has_skel[sl] = True
    return kp, present, has_skel
