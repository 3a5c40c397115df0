"""The entry point: an annotator's keyframes for one track -> dense boxes/skeletons, confidence, suggestions.

Outside handling follows CVAT: every frame takes the ``outside`` flag of the keyframe at or before it, so an outside
keyframe hides the object until the next keyframe, and nothing is interpolated across an outside span. Frames after
a visible keyframe and before an outside keyframe move linearly toward the outside keyframe's box when it has one
(CVAT's rule), and hold the last box otherwise; skeletons likewise, keypoint by keypoint (a keypoint the outside
keyframe lacks holds its last position), so a skeleton stays on screen until its track is marked outside, as in CVAT.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from prelabel.errors import InvalidInputError
from prelabel.geometry import box_iou
from prelabel.interpolate.base import (
    Float64Array,
    FrameSource,
    InterpolationMethod,
    InterpolationResult,
    RunInput,
    SuggestedKeyframe,
)
from prelabel.interpolate.geometric import KalmanMethod, LinearMethod, SplineMethod, linear_boxes
from prelabel.interpolate.posefusion import fuse_pose_estimates
from prelabel.interpolate.registry import MethodRegistry, default_registry
from prelabel.interpolate.skeleton import kinematic_skeletons, linear_skeletons
from prelabel.interpolate.support import for_label
from prelabel.interpolate.validate import validate_keyframes
from prelabel.types import NUM_KEYPOINTS, Detections, Keyframe, Skeleton

logger = logging.getLogger(__name__)

#: The most suggested keyframes one call returns per track (an annotator places one at a time; more is refused).
MAX_SUGGESTIONS = 1000


def _visible_runs(outside: np.ndarray) -> list[range]:
    """Keyframe index ranges of the maximal runs of consecutive visible keyframes (``outside``: (K,) bool)."""
    vis = np.concatenate([[False], ~np.asarray(outside, bool), [False]])
    edges = np.flatnonzero(np.diff(vis.astype(np.int8)))
    return [range(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def suggest_keyframes(
    frames: np.ndarray,
    uncertainty: Float64Array,
    score: Float64Array,
    key_frames: np.ndarray,
    num: int,
    reason: str,
) -> list[SuggestedKeyframe]:
    """Rank frames for the next keyframe, best first: each pick is the most uncertain frame left, where the frames
    picked before it count as keyframes. A gap's second suggestion is then the most uncertain frame of what its first
    leaves (not the frame next to it), and it comes before a short gap's best frame only where it is worth more.

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
    unc = np.asarray(uncertainty, np.float64)
    kf = np.asarray(key_frames)
    # Gaps are contiguous runs of frames; cut at each keyframe inside the range.
    cuts = np.unique(np.searchsorted(frames, kf))
    cuts = cuts[(cuts > 0) & (cuts < len(frames))]
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([starts[1:], [len(frames)]])
    best = np.maximum.reduceat(unc, starts)
    # A heap of gaps by their most uncertain frame left. A frame taken counts as a keyframe for the later picks: the
    # uncertainty of its gap's frames is scaled by their distance to the nearest frame taken over their distance to
    # the nearest keyframe (uncertainty grows away from keyframes), and the gap goes back on the heap.
    # Only the ``num`` gaps first by their best frame can be picked from: before each pick fewer than ``num`` gaps
    # have been touched, so one of those is untouched and worth at least any gap after them.
    live = np.flatnonzero(best > 0)
    live = live[np.argsort(-best[live], kind="stable")[:num]]
    heap = [(-float(best[g]), g) for g in live.tolist()]
    heapq.heapify(heap)
    pos = np.asarray(frames, np.float64)
    eff = unc.copy()
    near = np.full(len(frames), np.inf)  # distance to the nearest frame taken in the same gap
    taken: list[int] = []
    while heap and len(taken) < num:
        _, g = heapq.heappop(heap)
        sl = slice(int(starts[g]), int(ends[g]))
        i = sl.start + int(np.argmax(eff[sl]))
        taken.append(i)
        # The gap runs from its keyframe (its first frame) to the next one (the next gap's first, or the last).
        left, right = pos[sl.start], pos[sl.stop] if sl.stop < len(pos) else pos[-1]
        old = np.maximum(np.minimum(pos[sl] - left, right - pos[sl]), 1.0)
        near[sl] = np.minimum(near[sl], np.abs(pos[sl] - pos[i]))
        eff[sl] = unc[sl] * np.minimum(near[sl], old) / old
        left_best = float(eff[sl].max())
        if left_best > 0:
            heapq.heappush(heap, (-left_best, g))
    return [SuggestedKeyframe(int(frames[i]), float(score[i]), f"{reason}: {unc[i]:.1f} px") for i in taken]


def _pose_estimates(
    detections: Mapping[int, Detections] | None, frames: np.ndarray, boxes: Float64Array
) -> tuple[Float64Array, Float64Array, Float64Array] | None:
    """Keypoints of the detection best overlapping the box path in each frame.

    Returns:
        (T, 17, 2) keypoints (NaN where none), (T, 17) confidence (keypoint confidence x the match IoU) and (T,)
        match IoU; None when no frame has a match of IoU >= 0.3 (loose: :func:`fuse_pose_estimates` gates each
        joint against the prediction and fills absent keypoints only from closer matches).
    """
    if detections is None:
        return None
    est = np.full((len(frames), NUM_KEYPOINTS, 2), np.nan)
    conf = np.zeros((len(frames), NUM_KEYPOINTS))
    match = np.zeros(len(frames))
    found = False
    for i, f in enumerate(frames.tolist()):
        d = detections.get(f)
        if d is None or d.keypoints is None or len(d) == 0 or not np.all(np.isfinite(boxes[i])):
            continue
        iou = box_iou(boxes[i : i + 1], d.xyxy.astype(np.float64))[0]
        j = int(np.argmax(iou))
        if iou[j] >= 0.3:
            est[i] = d.keypoints[j, :, :2]
            conf[i] = d.keypoints[j, :, 2] * float(iou[j])
            match[i] = float(iou[j])
            found = True
    return (est, conf, match) if found else None


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
    label: str = "",
) -> InterpolationResult:
    """Interpolate one track between an annotator's keyframes.

    Args:
        keyframes: strictly increasing by ``frame_idx``; each with a box and/or a skeleton, or ``outside``. A
            keyframe without a skeleton does not key it (the skeleton is interpolated across it); one with a skeleton
            whose keypoints are all absent hides them from there (CVAT's rules, per keypoint).
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
        label: the track's class name; when the detections' models know it, only that class's detections are used
            (:func:`prelabel.interpolate.support.for_label`).

    Returns:
        :class:`InterpolationResult` for every frame from the first to the last keyframe.

    Raises:
        InvalidInputError: unsorted/duplicate/negative keyframes, frames outside the video, NaN, no keyframes,
            unknown method, ``guided`` without a video, negative ``num_suggestions``; the message names the track
            and the frame.
    """
    arr = validate_keyframes(keyframes, track_id, video)
    if not 0 <= num_suggestions <= MAX_SUGGESTIONS:
        raise InvalidInputError(
            f"track {track_id}: num_suggestions must be in [0, {MAX_SUGGESTIONS}], got {num_suggestions}"
        )
    name = method or "auto"
    meth = method_object if method_object is not None else (registry or default_registry()).create(name)
    if meth.needs_video and video is None:
        raise InvalidInputError(f"track {track_id}: method {name!r} needs a video, none was given")
    linear_meth = name == "linear"
    if detections is not None:
        detections = for_label(detections, label)

    kframes = arr.frames
    t0 = int(kframes[0])
    frames = np.arange(t0, int(kframes[-1]) + 1, dtype=np.int64)
    n = len(frames)
    gaps = np.diff(kframes)
    kidx = np.repeat(np.arange(len(kframes) - 1), gaps) if len(kframes) > 1 else np.zeros(0, np.int64)
    kidx = np.concatenate([kidx, [len(kframes) - 1]])  # keyframe at or before each frame
    outside = arr.outside[kidx]
    is_key = np.zeros(n, bool)
    is_key[kframes - t0] = True
    xyxy = np.full((n, 4), np.nan)
    skel_path: Float64Array | None = None  # a skeleton-only track's box path (its keypoints' boxes) a method followed
    conf = np.zeros(n)
    unc = np.zeros(n)
    fmethods = [""] * n
    reason = "distance from keyframes"
    has_box_track = bool(arr.has_box[~arr.outside].any())

    runs = _visible_runs(arr.outside)
    # Tails: a visible keyframe followed by an outside keyframe, with frames between them (CVAT shows the object
    # there, moving toward the outside keyframe's shape or holding its last one).
    tails = np.flatnonzero(~arr.outside[:-1] & arr.outside[1:] & (gaps >= 2)).tolist()
    if has_box_track:
        for run in runs:
            kf = kframes[run.start : run.stop]
            est = meth.interpolate_run(RunInput(track_id, kf, arr.xyxy[run.start : run.stop], video, detections))
            sl = slice(int(kf[0]) - t0, int(kf[-1]) - t0 + 1)
            xyxy[sl], conf[sl], unc[sl] = est.xyxy, est.confidence, est.uncertainty
            fmethods[sl] = est.method
            reason = est.reason
        for i in tails:
            fa, fb = int(kframes[i]), int(kframes[i + 1])
            end = arr.xyxy[i + 1] if arr.has_box[i + 1] else arr.xyxy[i]
            lin = linear_boxes(np.array([fa, fb]), np.stack([arr.xyxy[i], end]))
            xyxy[fa + 1 - t0 : fb - t0] = lin[1:-1]

    elif arr.has_skeleton[~arr.outside].any():
        # With detections (poses), or frames for a method that follows them, the method runs on the boxes around
        # the skeletons' keypoints: the skeletons' root follows that path and the poses guide them, as on a box track.
        guide = None
        if not linear_meth and (
            detections is not None or (video is not None and not isinstance(meth, _KEYFRAMES_ONLY))
        ):
            guide = (meth, video, detections)
            skel_path = np.full((n, 4), np.nan)
        reason = _skeleton_only_runs(keyframes, kframes, runs, track_id, name, conf, unc, fmethods, guide, skel_path)
        tails = [i for i in tails if _has_keypoint(keyframes[i].skeleton)]
    for i in tails:
        fa, fb = int(kframes[i]), int(kframes[i + 1])
        sl = slice(fa + 1 - t0, fb - t0)
        steps = np.arange(1, fb - fa, dtype=np.float64)
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

    kp, kp_present, has_skel = _skeletons(
        keyframes, kframes, frames, runs, xyxy, conf, linear_meth, detections, skel_path
    )
    if kp is not None and kp_present is not None:
        _skeleton_tails(keyframes, kframes, tails, conf, kp, kp_present, has_skel)

    sk_scores = None
    if kp is not None:
        sk_scores = np.full(len(frames), np.nan, np.float32)
        for f, k in zip(kframes.tolist(), keyframes, strict=True):
            if k.skeleton is not None and not k.outside and has_skel[f - t0]:
                sk_scores[f - t0] = k.skeleton.score
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
        skeleton_scores=sk_scores,
    )
    result.suggestions = suggest_keyframes(frames, unc, 1.0 - conf, kframes, num_suggestions, reason)
    return result


#: Methods that use the keyframes alone (frames and detections do not change them).
_KEYFRAMES_ONLY = (LinearMethod, SplineMethod, KalmanMethod)


def _has_keypoint(sk: Skeleton | None) -> bool:
    return sk is not None and bool(sk.present.any())


def _skeleton_groups(keyframes: Sequence[Keyframe], run: range) -> list[list[int]]:
    """The keyframe indices of ``run`` split where a keyframe's skeleton has no present keypoint: runs of
    consecutive keyframes with one, each non-empty."""
    groups: list[list[int]] = [[]]
    for i in run:
        if _has_keypoint(keyframes[i].skeleton):
            groups[-1].append(i)
        else:
            groups.append([])
    return [g for g in groups if g]


def _skeleton_only_runs(
    keyframes: Sequence[Keyframe],
    kframes: np.ndarray,
    runs: list[range],
    track_id: int,
    name: str,
    conf: Float64Array,
    unc: Float64Array,
    fmethods: list[str],
    guide: tuple[InterpolationMethod, FrameSource | None, Mapping[int, Detections] | None] | None = None,
    path: Float64Array | None = None,
) -> str:
    """Confidence and uncertainty of a track with skeletons and no boxes, written into ``conf``, ``unc`` and
    ``fmethods`` (``name`` between keyframes): the geometric prior's bridge on the boxes around each keyframe's
    present keypoints, as for a box track, so its frames are scored and its gaps suggested like any other. Runs
    split where a keyframe's skeleton has no present keypoint; a group reaches on to such a keyframe, as its
    keypoints are held up to it (:func:`~prelabel.interpolate.skeleton.linear_skeletons`), with the box before it.

    ``guide``: a method that follows frames or detections (with them): it runs on each group's boxes instead, and
    its path, confidence and per-frame method are written into ``path`` ((T, 4), a box on every frame of each run:
    held from a group's last keyframe over the frames the skeleton holds or hides), ``conf``, ``unc`` and
    ``fmethods``. Returns the suggestions' reason."""
    t0 = int(kframes[0])
    prior = KalmanMethod()
    reason = "distance from keyframes (skeletons)"
    for run in runs:
        for g in _skeleton_groups(keyframes, run):
            shown = len(g)
            if g[-1] + 1 < run.stop:  # the next keyframe of the run shows no keypoint: held up to it
                g = [*g, g[-1] + 1]
            ext = np.full((len(g), 4), np.nan)
            for row, i in enumerate(g):
                sk = keyframes[i].skeleton
                box = sk.box() if sk is not None else None
                ext[row] = box if box is not None else ext[row - 1]  # the first always has one
            kf = kframes[g]
            est = prior.interpolate_run(RunInput(track_id, kf, ext))
            sl = slice(int(kf[0]) - t0, int(kf[-1]) - t0 + 1)
            conf[sl], unc[sl] = est.confidence, est.uncertainty
            fmethods[sl] = [name] * (sl.stop - sl.start)
            if guide is None or path is None:
                continue
            meth, video, detections = guide
            followed = meth.interpolate_run(RunInput(track_id, kf[:shown], ext[:shown], video, detections))
            own = slice(sl.start, int(kf[shown - 1]) - t0 + 1)
            path[own] = followed.xyxy
            conf[own], unc[own] = followed.confidence, followed.uncertainty
            fmethods[own] = list(followed.method)
            reason = followed.reason + " (boxes around the skeletons)"
        if guide is not None and path is not None:  # held where the skeleton holds or hides: nothing to follow
            rows = slice(int(kframes[run.start]) - t0, int(kframes[run.stop - 1]) - t0 + 1)
            held = path[rows]
            have = np.isfinite(held).all(axis=1)
            if have.any():  # (before the run's first shown keyframe, the skeleton hides: its box will do)
                last = np.maximum.accumulate(np.where(have, np.arange(len(held)), -1))
                path[rows] = held[np.where(last < 0, int(np.argmax(have)), last)]
    return reason


def _skeleton_tails(
    keyframes: Sequence[Keyframe],
    kframes: np.ndarray,
    tails: Sequence[int],
    conf: Float64Array,
    kp: np.ndarray,
    present: np.ndarray,
    has_skel: np.ndarray,
) -> None:
    """Skeletons on the frames after visible keyframe ``i`` (each of ``tails``) and before the outside keyframe
    ``i + 1``, written into ``kp``, ``present`` and ``has_skel``: CVAT's rule, each keypoint shown at keyframe ``i``
    (keyed there or carried to it) linear toward its position in the outside keyframe's skeleton where that has it,
    held otherwise."""
    t0 = int(kframes[0])
    for i in tails:
        fa, fb = int(kframes[i]), int(kframes[i + 1])
        start = present[fa - t0].copy()
        if not has_skel[fa - t0] or not start.any():
            continue
        xy_a = kp[fa - t0, :, :2].astype(np.float64)
        xy_b = xy_a.copy()
        end = keyframes[i + 1].skeleton
        if end is not None:
            toward = start & end.present
            xy_b[toward] = end.keypoints[toward, :2]
        xy, _ = linear_skeletons(np.array([fa, fb]), np.stack([xy_a, xy_b]), np.stack([start, start]))
        sl = slice(fa + 1 - t0, fb - t0)
        kp[sl, :, :2] = xy[1:-1]
        kp[sl, :, 2] = np.where(start[None, :], conf[sl, None], 0.0)
        present[sl] = start
        has_skel[sl] = True


def _skeletons(
    keyframes: Sequence[Keyframe],
    kframes: np.ndarray,
    frames: np.ndarray,
    runs: list[range],
    xyxy: Float64Array,
    conf: Float64Array,
    linear_meth: bool,
    detections: Mapping[int, Detections] | None,
    skel_path: Float64Array | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Skeletons on every frame (keypoints (T, 17, 3), presence (T, 17), has skeleton (T,)); None, None where no
    keyframe has one. ``skel_path``: a skeleton-only track's box path (boxes around its keypoints, followed by a
    method), used as a box track's boxes are where it covers a run's skeleton keyframes."""
    n = len(frames)
    t0 = int(frames[0])
    has_skel = np.zeros(n, bool)
    if not any(k.skeleton is not None for k in keyframes if not k.outside):
        return None, None, has_skel
    kp = np.zeros((n, NUM_KEYPOINTS, 3), np.float32)
    present = np.zeros((n, NUM_KEYPOINTS), bool)
    for run in runs:
        # A keyframe without a skeleton did not key it (CVAT keeps skeletons in tracks of their own, keyed at other
        # frames than the boxes): the skeleton is interpolated across it. One hidden there has no keypoint present.
        g = [i for i in run if keyframes[i].skeleton is not None]
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
        if key_boxes is None and skel_path is not None and np.isfinite(skel_path[sl]).all():
            boxes, key_boxes = skel_path[sl], skel_path[kf - t0]
        if linear_meth:
            sxy, spr = linear_skeletons(kf, kxy, kpr)
        else:
            # The root follows the box path as far as the path is trusted (its confidence), else the keyframes.
            sxy, spr = kinematic_skeletons(
                kf, kxy, kpr, key_boxes, boxes if key_boxes is not None else None, box_weight=conf[sl]
            )
            est = _pose_estimates(detections, frames[sl], boxes) if key_boxes is not None else None
            if est is not None:
                sxy, spr = fuse_pose_estimates(kf, sxy, spr, est[0], est[1], boxes, est_match=est[2])
        kp[sl, :, :2] = sxy
        kp[sl, :, 2] = np.where(spr, conf[sl, None], 0.0)
        present[sl] = spr
        has_skel[sl] = True
        # After the run's last skeleton keyframe, to the run's last keyframe, the skeleton holds as CVAT holds a
        # track's last keyframe: in the image for linear, moving with the box path otherwise.
        last, end = int(kf[-1]) - t0, int(kframes[run.stop - 1]) - t0
        if end > last:
            after = slice(last + 1, end + 1)
            shift = np.zeros((end - last, 2))
            centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2.0
            if not linear_meth and np.isfinite(centre[last : end + 1]).all():
                shift = centre[after] - centre[last]
            kp[after, :, :2] = kp[last, :, :2][None] + shift[:, None, :]
            kp[after, :, 2] = np.where(present[last][None, :], conf[after, None], 0.0)
            present[after] = present[last]
            has_skel[after] = True
        # A keyframe that did not key the skeleton is no more certain of it than the frames beside it.
        for i in (i for i in run if keyframes[i].skeleton is None):
            row = int(kframes[i]) - t0
            if has_skel[row]:
                near = conf[[max(row - 1, 0), min(row + 1, n - 1)]].mean()
                kp[row, :, 2] = np.where(present[row], near, 0.0)
        kp[kf - t0, :, 2] = kconf
    return kp, present, has_skel


def with_unkeyed_points_filled(
    keyframes: Sequence[Keyframe],
    marks: Mapping[int, npt.NDArray[np.bool_]],
    fill: Callable[..., InterpolationResult],
) -> list[Keyframe]:
    """``keyframes`` with the skeleton points a keyframe holds without keying them (``marks``: frame -> (17,) bool)
    set to what the fill makes of them when their unkeyed frames' skeletons key nothing. ``fill(keyframes,
    num_suggestions=0)`` interpolates the track (:func:`interpolate_track` with the track's other arguments bound).

    CVAT writes every point of a skeleton keyframe and flags those not keyed there (``keyframe="0"``): their
    positions are CVAT's own fill, which its importer drops. Read as drawn, they would pin the fill there; in the
    ``--previous`` loop they are fill of keyframes prelabel has since taken out. Points are grouped by the frames
    where they are unkeyed; per group the track is filled once without those frames' skeletons (a box keyframe keeps
    its box, a skeleton-only keyframe is left out), so a point keyed on another marked frame still counts there, and
    each point of the group takes that fill's position and presence (one written hidden but unkeyed shows again
    where the fill shows it). The points keyed on each frame stay. A frame before the first or after the last
    remaining skeleton keyframe keeps its points as written.
    """
    at = {i: k for i, k in enumerate(keyframes) if k.skeleton is not None and k.frame_idx in marks and not k.outside}
    if not at:
        return list(keyframes)
    where = {i: np.asarray(marks[k.frame_idx], bool) for i, k in at.items()}
    groups: dict[tuple[int, ...], list[int]] = {}
    for p in range(NUM_KEYPOINTS):
        frames = tuple(i for i in sorted(at) if where[i][p])
        if frames:
            groups.setdefault(frames, []).append(p)
    xy = {i: np.array(k.skeleton.keypoints, np.float32) for i, k in at.items() if k.skeleton is not None}
    shown = {i: np.array(k.skeleton.present, bool) for i, k in at.items() if k.skeleton is not None}
    for frames, points in groups.items():
        drop = set(frames)
        first = [
            k if i not in drop else replace(k, skeleton=None)
            for i, k in enumerate(keyframes)
            if i not in drop or k.xyxy is not None
        ]
        if not any(k.skeleton is not None for k in first if not k.outside):
            continue  # no other skeleton keyframe to fill from: the points stay as written
        pre = fill(first, num_suggestions=0)
        if pre.keypoints is None or pre.keypoints_present is None:
            continue
        pts = np.array(points)
        for i in frames:
            row = int(keyframes[i].frame_idx - pre.frames[0])
            if not 0 <= row < len(pre.frames) or not pre.has_skeleton[row]:
                continue  # before the first or after the last other skeleton keyframe: nothing to fill from
            xy[i][pts, :2] = pre.keypoints[row, pts, :2]
            shown[i][pts] = pre.keypoints_present[row, pts]
    out = list(keyframes)
    for i, k in at.items():
        sk = k.skeleton
        if sk is not None and shown[i].any():  # (none shown would hide the skeleton from here: keep as written)
            out[i] = replace(k, skeleton=Skeleton(np.where(shown[i][:, None], xy[i], 0.0), shown[i], sk.score))
    return out
