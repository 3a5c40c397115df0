"""Protobuf <-> domain conversions. Validation of shapes and values happens in the domain types."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from prelabel.detect.base import DetectOptions
from prelabel.errors import InvalidInputError
from prelabel.interpolate import InterpolationResult
from prelabel.pipeline import OnlineFrame, Progress
from prelabel.service.messages import (
    box_from_proto,
    box_to_proto,
    skeleton_from_proto,
    skeleton_to_proto,
)
from prelabel.types import Detections, Keyframe, Segment, Source, Track, TrackedBox, VideoInfo
from prelabel.v1 import prelabel_pb2 as pb


def detect_options(msg: pb.DetectOptions) -> DetectOptions:
    """Request options with 0 meaning "server default"."""
    return DetectOptions(
        conf=msg.conf or 0.25,
        iou=msg.iou or 0.7,
        classes=tuple(int(c) for c in msg.classes),
        imgsz=int(msg.imgsz),
        max_det=int(msg.max_det) or 300,
    )


def detections_to_proto(dets: Detections, index: int, width: int, height: int) -> pb.ImageDetections:
    """One image's detections."""
    out = pb.ImageDetections(index=index, width=width, height=height)
    for i in range(len(dets)):
        out.detections.append(
            pb.Detection(
                box=box_to_proto(dets.xyxy[i]),
                class_id=int(dets.class_ids[i]),
                class_name=dets.class_name(i),
                score=float(dets.scores[i]),
            )
        )
    return out


def video_info_to_proto(info: VideoInfo) -> pb.VideoInfo:
    """VideoInfo -> proto."""
    return pb.VideoInfo(
        width=info.width,
        height=info.height,
        num_frames=info.num_frames,
        fps=info.fps,
        variable_frame_rate=info.variable_frame_rate,
        duration_ms=info.duration_ms,
        damaged_frames=list(info.damaged_frames),
    )


def tracked_to_proto(track: Track, box: TrackedBox) -> pb.TrackedObject:
    """One track's entry in one frame."""
    msg = pb.TrackedObject(
        track_id=track.track_id,
        box=box_to_proto(box.xyxy),
        score=float(box.score),
        class_id=track.class_id,
        class_name=track.class_name,
        source=pb.Source.Name(int(box.source)),
    )
    if box.skeleton is not None:
        msg.skeleton.CopyFrom(skeleton_to_proto(box.skeleton))
        msg.has_skeleton = True
    return msg


def tracks_to_frames(
    tracks: Sequence[Track], ts_ms: Sequence[float] | np.ndarray | None = None, frames: Iterable[int] = ()
) -> list[pb.FrameTracks]:
    """Per-track lists -> per-frame messages in frame order: the frames with an object, and every one of ``frames``
    (empty where nothing is there: a client learns each processed frame's time)."""
    by_frame: dict[int, list[pb.TrackedObject]] = {}
    ts_of: dict[int, float] = {}
    for track in tracks:
        for box in track.boxes:
            by_frame.setdefault(box.frame_idx, []).append(tracked_to_proto(track, box))
            ts_of[box.frame_idx] = box.ts_ms
    out = []
    for f in sorted(set(by_frame) | {int(x) for x in frames}):
        ts = float(ts_ms[f]) if ts_ms is not None and f < len(ts_ms) else ts_of.get(f, 0.0)
        out.append(pb.FrameTracks(frame_idx=f, ts_ms=ts, objects=by_frame.get(f, [])))
    return out


def tracks_from_frames(frames: Sequence[pb.FrameTracks]) -> list[Track]:
    """Per-frame messages (as TrackVideo and TrackDetections return them, frames in any order) -> one track per
    track id, in id order, of the class most of its boxes have (the earliest on a tie); errors name the track and
    frame."""
    rows: dict[int, dict[int, TrackedBox]] = {}
    classes: dict[int, Counter[tuple[int, str]]] = {}
    for fr in sorted(frames, key=lambda fr: fr.frame_idx):
        if fr.frame_idx < 0:
            raise InvalidInputError(f"frame {fr.frame_idx}: frame indices must be >= 0")
        for obj in fr.objects:
            where = f"track {obj.track_id} frame {fr.frame_idx}"
            if obj.track_id <= 0:
                raise InvalidInputError(f"{where}: track ids must be positive")
            per = rows.setdefault(obj.track_id, {})
            if fr.frame_idx in per:
                raise InvalidInputError(f"{where}: the track appears twice in this frame")
            skeleton = skeleton_from_proto(obj.skeleton, where) if obj.has_skeleton else None
            # Without a box, a skeleton's present keypoints give one (a skeleton-only track).
            xyxy = box_from_proto(obj.box) if obj.HasField("box") else skeleton.box() if skeleton is not None else None
            if xyxy is None:
                raise InvalidInputError(f"{where}: no box, and no skeleton with a present keypoint")
            if not np.isfinite(obj.score):  # any finite score passes: tracker files write -1 for "none"
                raise InvalidInputError(f"{where}: score must be a finite number, got {obj.score}")
            if not np.isfinite(fr.ts_ms) or fr.ts_ms < 0:
                raise InvalidInputError(f"{where}: ts_ms must be a finite time >= 0, got {fr.ts_ms}")
            try:
                per[fr.frame_idx] = TrackedBox(
                    fr.frame_idx, xyxy, float(obj.score), _source(obj.source), fr.ts_ms, skeleton
                )
            except InvalidInputError as exc:
                raise InvalidInputError(f"{where}: {exc}") from exc
            classes.setdefault(obj.track_id, Counter())[(int(obj.class_id), obj.class_name)] += 1
    return [
        Track(tid, [per[f] for f in sorted(per)], *classes[tid].most_common(1)[0][0])
        for tid, per in sorted(rows.items())
    ]


def _source(value: int) -> Source:
    """A proto ``Source`` value (an open enum: a newer client's value reads as UNSPECIFIED)."""
    try:
        return Source(value)
    except ValueError:
        return Source.UNSPECIFIED


def keyframes_from_proto(track: pb.KeyframeTrack) -> list[Keyframe]:
    """An annotator's keyframes; errors name the track and frame."""
    out = []
    for kf in track.keyframes:
        where = f"track {track.track_id} keyframe at frame {kf.frame_idx}"
        xyxy = None
        if kf.has_box:
            xyxy = box_from_proto(kf.box)
            if not np.all(np.isfinite(xyxy)):
                raise InvalidInputError(f"{where}: box is not finite")
            if xyxy[2] < xyxy[0] or xyxy[3] < xyxy[1]:
                raise InvalidInputError(f"{where}: box has negative width or height")
        skeleton = skeleton_from_proto(kf.skeleton, where) if kf.has_skeleton else None
        try:
            out.append(Keyframe(kf.frame_idx, xyxy, skeleton, kf.outside))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from exc
    return out


def segment_to_proto(seg: Segment) -> pb.ActionSegment:
    """Segment -> proto."""
    return pb.ActionSegment(
        track_id=seg.track_id,
        label=seg.label,
        start_frame=seg.start_frame,
        end_frame=seg.end_frame,
        start_ts_ms=seg.start_ts_ms,
        end_ts_ms=seg.end_ts_ms,
        confidence=seg.confidence,
        start_uncertainty_frames=seg.start_uncertainty_frames,
        end_uncertainty_frames=seg.end_uncertainty_frames,
        source=pb.Source.Name(int(seg.source)),
        method=seg.method,
    )


def progress_to_proto(p: Progress) -> pb.Progress:
    """Pipeline progress -> proto."""
    return pb.Progress(stage=p.stage, done=p.done, total=p.total, frames_per_s=p.frames_per_s, eta_s=p.eta_s)


def interpolation_to_proto(res: InterpolationResult) -> pb.InterpolatedTrack:
    """Dense interpolation of one track, with its suggestions."""
    out = pb.InterpolatedTrack(track_id=res.track_id)
    for i in range(len(res)):
        frame = pb.InterpolatedFrame(
            frame_idx=int(res.frames[i]),
            outside=bool(res.outside[i]),
            is_keyframe=bool(res.is_keyframe[i]),
            confidence=float(res.confidence[i]),
            method=res.frame_methods[i],
            source=pb.Source.Name(int(_interpolated_source(bool(res.is_keyframe[i]), bool(res.outside[i])))),
        )
        if res.has_box[i]:
            frame.box.CopyFrom(box_to_proto(res.xyxy[i]))
            frame.has_box = True
        skeleton = res.skeleton_at(i)
        # A skeleton hidden from a keyframe on (no keypoint present) is that keyframe's, as sent; the frames after
        # it show none, as those before an outside keyframe do.
        if skeleton is not None and (bool(skeleton.present.any()) or bool(res.is_keyframe[i])):
            frame.skeleton.CopyFrom(skeleton_to_proto(skeleton))
            frame.has_skeleton = True
        out.frames.append(frame)
    for s in res.suggestions:
        out.suggestions.append(pb.SuggestedKeyframe(frame_idx=s.frame_idx, score=float(s.score), reason=s.reason))
    return out


def _interpolated_source(is_keyframe: bool, outside: bool) -> Source:
    """An annotator's keyframe; a frame hidden between keyframes shows nothing, so nothing produced it."""
    if is_keyframe:
        return Source.KEYFRAME
    return Source.UNSPECIFIED if outside else Source.INTERPOLATED


def skeleton_track_from_proto(msg: pb.SkeletonTrack) -> Track:
    """A client's skeleton track -> a person :class:`Track` (errors name the track and frame)."""
    boxes = []
    # Frame times are the client's where any is set (then they must increase with the frames), else from the rate.
    timed = any(f.ts_ms != 0.0 for f in msg.frames)
    prev: pb.SkeletonTrackFrame | None = None
    for f in msg.frames:
        where = f"track {msg.track_id} frame {f.frame_idx}"
        if f.frame_idx < 0:
            raise InvalidInputError(f"{where}: frame_idx must be >= 0 (0-based)")
        if prev is not None and f.frame_idx <= prev.frame_idx:
            raise InvalidInputError(f"{where}: frames must be strictly increasing (frame {prev.frame_idx} before it)")
        if not np.isfinite(f.ts_ms) or f.ts_ms < 0:
            raise InvalidInputError(f"{where}: ts_ms must be a finite time >= 0 (0: from the rate), got {f.ts_ms}")
        if timed and prev is not None and f.ts_ms <= prev.ts_ms:
            raise InvalidInputError(
                f"{where}: ts_ms {f.ts_ms} after {prev.ts_ms} at frame {prev.frame_idx}: frame times must increase "
                "with the frames (or be 0 throughout: from the rate)"
            )
        prev = f
        sk = skeleton_from_proto(f.skeleton, where)
        if f.HasField("box"):
            xyxy = box_from_proto(f.box)
        elif sk.present.any():
            pts = sk.keypoints[sk.present, :2]
            xyxy = np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float32)
        else:
            raise InvalidInputError(f"{where}: no box and no present keypoint")
        try:
            boxes.append(TrackedBox(f.frame_idx, xyxy, float(sk.score), Source.DETECTOR, f.ts_ms, sk))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from exc
    try:
        return Track(int(msg.track_id), boxes, 0, "person")
    except InvalidInputError as exc:
        raise InvalidInputError(f"track {msg.track_id}: {exc}") from exc


def online_frame_to_proto(frame: OnlineFrame) -> pb.FrameTracks:
    """The online tracker's objects in one frame."""
    out = pb.FrameTracks(frame_idx=frame.frame_idx, ts_ms=frame.ts_ms)
    for obj in frame.objects:
        out.objects.append(
            pb.TrackedObject(
                track_id=obj.track_id,
                box=box_to_proto(obj.xyxy),
                score=float(obj.score),
                class_id=int(obj.class_id),
                class_name=obj.class_name,
                source=pb.Source.Name(int(obj.source)),
            )
        )
    return out
