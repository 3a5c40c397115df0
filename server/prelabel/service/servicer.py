"""The ``prelabel.v1.Prelabel`` servicer: converts protobuf <-> domain types and delegates.

Errors are raised as domain exceptions; :mod:`prelabel.service.interceptors` maps them to status codes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from prelabel.detect.base import DetectOptions
from prelabel.errors import (
    CancelledError,
    FailedPreconditionError,
    InvalidInputError,
    NotFoundError,
    ResourceExhaustedError,
)
from prelabel.images import Image, decode_images
from prelabel.interpolate.api import MAX_SUGGESTIONS
from prelabel.jobs import JobRecord, JobRequest, JobState
from prelabel.jobs.results import result_file
from prelabel.jobs.runner import pipeline_config
from prelabel.pipeline import STAGES, OnlineFrame, Pipeline, PipelineConfig, Progress
from prelabel.registry import ModelSpec
from prelabel.service import convert, messages
from prelabel.service.context import ServiceContext
from prelabel.service.sessions import InterpolationSession, InterpolationSessions
from prelabel.v1 import prelabel_pb2 as pb
from prelabel.v1 import prelabel_pb2_grpc as pb_grpc
from prelabel.video.decode import probe

if TYPE_CHECKING:
    from prelabel.actions.propose import ActionSegmenter

log = logging.getLogger(__name__)

# Most images one Detect / EstimatePose request may carry (larger batches: split them client-side).
MAX_IMAGES_PER_REQUEST = 256
# Keypoints whose confidence is at or below this are reported as missing.
MIN_KEYPOINT_CONF = 0.3
# Most frames one Interpolate request may have its detector_models run on (larger spans: split the request).
MAX_SUPPORT_FRAMES = 10_000
# Most frames one Interpolate request may ask boxes for, summed over its tracks (each from its first to its last
# keyframe, within the video when one is given): without a video nothing else bounds the frame numbers, and a
# keyframe at frame 2e9 would have the server build 2e9 boxes; with one, many tracks over a long video add up.
# Larger requests: split the tracks over several requests.
MAX_INTERPOLATED_FRAMES = 1_000_000
# Most boxes one TrackDetections answer may hold, gaps filled by the offline pass included (frames far apart whose
# times lie close, or a client-given rate of thousands of frames per second, would otherwise fill without bound).
# A filled box costs about 3 KB while the tracks are smoothed: filled boxes may number at most
# MIN_FILLED_BOXES or FILLED_PER_DETECTION per detection sent, whichever is more (a 310-byte request had filled
# 900,000 frames and taken the server past 4 GB).
MAX_TRACKED_BOXES = 1_000_000
MIN_FILLED_BOXES = 100_000
FILLED_PER_DETECTION = 10
# Most detections in one TrackDetections frame: association compares each with every live track (at most
# TrackerConfig.max_live_tracks, 2,000), at about 100 bytes a pair: two frames of 5,000 boxes each took 1.6 GB.
# Detectors give at most a few hundred (Ultralytics: 300).
MAX_DETECTIONS_PER_FRAME = 1_000
# Trackers a request may name (TrackerOptions.tracker; empty is the default).
TRACKERS = ("prelabel",)
# Videos the Interpolate RPC keeps a session of between calls (reader, detections, method caches).
MAX_INTERPOLATION_SESSIONS = 8
# Result downloads are streamed in pieces of this size.
DOWNLOAD_CHUNK_BYTES = 1 << 20


def _check_tracker_options(opts: pb.TrackerOptions) -> tuple[float, bool]:
    """A request's tracker options, checked: returns ``max_gap_s`` (0: the default) and whether to refine offline
    (unset: yes; naming the default tracker or setting ``max_gap_s`` alone changes nothing else).

    Raises:
        InvalidInputError: ``max_gap_s`` negative or not finite, or set with ``offline_refine`` false (it is the
            offline linking's). NotFoundError: a tracker this server does not have.
    """
    if not 0.0 <= opts.max_gap_s < float("inf"):
        raise InvalidInputError(f"tracker_options.max_gap_s: expected seconds >= 0 (0: default), got {opts.max_gap_s}")
    if opts.tracker and opts.tracker not in TRACKERS:
        raise NotFoundError(f"unknown tracker {opts.tracker!r}; this server has {', '.join(TRACKERS)} (empty: default)")
    offline = opts.offline_refine if opts.HasField("offline_refine") else True
    if opts.max_gap_s > 0 and not offline:
        raise InvalidInputError(
            "tracker_options.max_gap_s is the longest gap offline linking bridges, and offline_refine=false turns "
            "that off: set one or the other"
        )
    return float(opts.max_gap_s), offline


def _caller_gone(context: grpc.ServicerContext) -> bool:
    """Whether the caller cancelled or its deadline passed. The deadline is read too: when it passes, a client's
    stream can end before the context says it is no longer active (an abandoned upload was taken for a short one)."""
    if not context.is_active():
        return True
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def _check_active(context: grpc.ServicerContext) -> None:
    """Between pieces of a long answer: stop when the caller has gone (cancelled, or its deadline passed)."""
    if not context.is_active():
        raise CancelledError("the caller cancelled the request or its deadline passed; the work stopped")


def _model_info(spec: ModelSpec) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=spec.name,
        task=spec.task,
        classes=list(spec.classes),
        imgsz=spec.imgsz,
        weights=str(spec.weights.name) if spec.weights is not None else f"arch:{spec.arch}",
        available=spec.available,
        license=spec.license,
        description=spec.description,
        how_to_get="" if spec.available else spec.how_to_get,
    )


class PrelabelServicer(pb_grpc.PrelabelServicer):  # type: ignore[misc]
    """Serves every RPC of the contract."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._segmenters: dict[str, ActionSegmenter] = {}  # loaded once per model (they hold no per-call state)
        self._segmenters_lock = threading.Lock()
        # What Interpolate keeps of each video between calls (reader and frame index, detections, method caches),
        # for clients that call it after every keyframe.
        self._sessions = InterpolationSessions(MAX_INTERPOLATION_SESSIONS)

    def _action_model(self, model: str) -> str:
        """``model``, or where a caller names weights by path, the real path they resolve to under the allowed roots
        (:meth:`ModelRegistry.weights_path`, as for detectors: the file checked is the file loaded)."""
        path = self.ctx.registry.weights_path(model, (".pt",))
        return model if path is None else str(path)

    def _segmenter(self, model: str) -> ActionSegmenter:
        from prelabel.actions.propose import load_segmenter

        model = self._action_model(model)
        with self._segmenters_lock:
            if model not in self._segmenters:
                self._segmenters[model] = load_segmenter(model, models_dir=self.ctx.settings.models_dir)
            return self._segmenters[model]

    # ------------------------------------------------------------------ models

    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        specs = self.ctx.registry.list(request.task)
        return pb.ListModelsResponse(models=[_model_info(s) for s in specs])

    # ------------------------------------------------------------------ detection and pose

    def _decode_batch(self, images: list[bytes]) -> list[Image]:
        if not images:
            raise InvalidInputError("the request has no images")
        if len(images) > MAX_IMAGES_PER_REQUEST:
            raise InvalidInputError(f"{len(images)} images in one request; at most {MAX_IMAGES_PER_REQUEST}")
        return decode_images(images)

    def Detect(self, request: pb.DetectRequest, context: grpc.ServicerContext) -> pb.DetectResponse:
        options = convert.detect_options(request.options)
        detector = self.ctx.models.get(request.model, "detect")
        options.check_classes(detector.class_names)
        images = self._decode_batch(list(request.images))
        results = detector.detect(images, options)
        out = pb.DetectResponse(model=detector.name)
        for i, (img, dets) in enumerate(zip(images, results, strict=True)):
            out.results.append(convert.detections_to_proto(dets, i, img.shape[1], img.shape[0]))
        return out

    def EstimatePose(self, request: pb.EstimatePoseRequest, context: grpc.ServicerContext) -> pb.EstimatePoseResponse:
        from prelabel.pose import PoseOptions, estimate_pose

        options = PoseOptions(detect=convert.detect_options(request.options), min_kpt_conf=MIN_KEYPOINT_CONF)
        detector = self.ctx.models.get(request.model, "pose")
        options.detect.check_classes(detector.class_names)
        images = self._decode_batch(list(request.images))
        out = pb.EstimatePoseResponse(model=detector.name)
        for i, (img, people) in enumerate(zip(images, estimate_pose(detector, images, options), strict=True)):
            result = pb.ImagePoses(index=i, width=img.shape[1], height=img.shape[0])
            result.skeletons.extend(messages.skeleton_to_proto(p.skeleton, p.xyxy) for p in people)
            out.results.append(result)
        return out

    # ------------------------------------------------------------------ video

    def UploadVideo(
        self, request_iterator: Iterator[pb.UploadVideoRequest], context: grpc.ServicerContext
    ) -> pb.UploadVideoResponse:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidInputError("UploadVideo: the first message must be the header")
        header = first.header

        # The client cancelled or its deadline passed mid-stream: not a server error, nor a short upload.
        gone = CancelledError("UploadVideo: the client went away before the upload ended")

        def chunks() -> Iterator[bytes]:
            try:
                for msg in request_iterator:
                    if msg.WhichOneof("part") != "chunk":
                        raise InvalidInputError("UploadVideo: only the first message may be a header")
                    yield msg.chunk
            except Exception as exc:
                if not _caller_gone(context):
                    raise
                raise gone from exc
            if _caller_gone(context):  # the stream just ends when the caller goes
                raise gone

        stored = self.ctx.uploads.put(header.filename, header.size_bytes, header.sha256, chunks())
        return pb.UploadVideoResponse(
            upload_id=stored.upload_id,
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            info=convert.video_info_to_proto(stored.info),
        )

    def resolve_video(self, source: pb.VideoSource) -> Path:
        """A request's video: an upload id, or a server path under the allowed roots."""
        return self.ctx.resolve_video(source.WhichOneof("source"), source.path or source.upload_id)

    def _pipeline_config(self, request: pb.TrackVideoRequest) -> PipelineConfig:
        stages: tuple[str, ...] = ("detect", "track", "pose") if request.with_pose else ("detect", "track")
        if request.start_frame < 0 or request.end_frame < 0:
            raise InvalidInputError(f"bad frame range [{request.start_frame}, {request.end_frame})")
        max_gap_s, offline = _check_tracker_options(request.tracker_options)
        opts = convert.detect_options(request.detect_options)
        if not request.detect_options.conf:
            opts = DetectOptions(0.1, opts.iou, opts.classes, opts.imgsz, opts.max_det)  # tracker sees low scores
        return PipelineConfig(
            stages=stages,
            detector_model=request.detector_model,
            pose_model=request.pose_model,
            detect_options=opts,
            offline_refine=offline,
            max_gap_s=max_gap_s,
            start_frame=request.start_frame,
            end_frame=request.end_frame or None,
        )

    def TrackVideo(
        self, request: pb.TrackVideoRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.TrackVideoResponse]:
        path = self.resolve_video(request.video)
        config = self._pipeline_config(request)
        info, _ = probe(path)
        yield pb.TrackVideoResponse(info=convert.video_info_to_proto(info))
        cancel = threading.Event()
        context.add_callback(cancel.set)  # client went away: stop decoding and inference
        pipeline = Pipeline(self.ctx.models.get, config, self.ctx.settings.models_dir)
        for event in pipeline.events(path, cancel):
            if isinstance(event, Progress):
                yield pb.TrackVideoResponse(progress=convert.progress_to_proto(event))
            elif isinstance(event, OnlineFrame):  # online mode: frames as they are tracked
                yield pb.TrackVideoResponse(frame=convert.online_frame_to_proto(event))
            elif config.offline_refine:  # offline refinement needs the whole video: frames come at the end
                for frame in convert.tracks_to_frames(event.tracks, event.ts_ms, frames=event.detections):
                    yield pb.TrackVideoResponse(frame=frame)

    def TrackDetections(
        self, request: pb.TrackDetectionsRequest, context: grpc.ServicerContext
    ) -> pb.TrackDetectionsResponse:
        from prelabel.track import TrackerConfig, track_detections

        if not request.frames:
            raise InvalidInputError("no frames given")
        for i, f in enumerate(request.frames):  # before anything is decoded
            if len(f.detections) > MAX_DETECTIONS_PER_FRAME:
                raise ResourceExhaustedError(
                    f"frame {f.frame_idx} (message {i}): {len(f.detections)} detections, at most "
                    f"{MAX_DETECTIONS_PER_FRAME} per frame: keep the best-scoring ones"
                )
        names: dict[tuple[tuple[int, str], ...], messages.ClassNames] = {}  # shared by the request's frames
        frames = [
            (
                f.frame_idx,
                f.ts_ms,
                messages.detections_from_proto(f.detections, f"frame {f.frame_idx} (message {i})", names),
            )
            for i, f in enumerate(request.frames)
        ]
        if request.width < 0 or request.height < 0:
            raise InvalidInputError(f"frame size {request.width}x{request.height}: expected >= 0 (0: unknown)")
        max_gap_s, offline = _check_tracker_options(request.tracker_options)
        config = TrackerConfig(max_gap_s=max_gap_s) if max_gap_s > 0 else TrackerConfig()
        sent = sum(len(d) for _, _, d in frames)
        max_boxes = min(MAX_TRACKED_BOXES, sent + max(MIN_FILLED_BOXES, FILLED_PER_DETECTION * sent))
        size = (request.width, request.height) if request.width > 0 and request.height > 0 else None
        tracks = track_detections(
            frames, config, fps=request.fps, offline=offline, frame_size=size, max_boxes=max_boxes
        )
        return pb.TrackDetectionsResponse(frames=convert.tracks_to_frames(tracks))

    def Interpolate(self, request: pb.InterpolateRequest, context: grpc.ServicerContext) -> pb.InterpolateResponse:
        if not request.tracks:
            raise InvalidInputError("no tracks given")
        if not 0 <= request.num_suggestions <= MAX_SUGGESTIONS:
            raise InvalidInputError(f"num_suggestions must be in [0, {MAX_SUGGESTIONS}], got {request.num_suggestions}")
        if not request.HasField("video"):
            return self._interpolate(request, None, context)
        session = self._sessions.get(self.resolve_video(request.video))
        with session.lock:
            try:
                return self._interpolate(request, session, context)
            finally:
                session.release_frames()

    def _interpolate(
        self, request: pb.InterpolateRequest, session: InterpolationSession | None, context: grpc.ServicerContext
    ) -> pb.InterpolateResponse:
        from prelabel.interpolate import interpolate_track
        from prelabel.interpolate.support import span_frames

        ids = [t.track_id for t in request.tracks]
        if len(set(ids)) != len(ids):
            raise InvalidInputError(f"duplicate track ids in the request: {sorted(ids)}")
        keyframes = {}
        for track in request.tracks:
            if track.track_id <= 0:
                raise InvalidInputError(f"track {track.track_id}: track ids must be positive")
            if not track.keyframes:
                raise InvalidInputError(f"track {track.track_id}: no keyframes")
            keyframes[track.track_id] = convert.keyframes_from_proto(track)
        # Within the video when one is given (a keyframe past its end is invalid input, named by its track, below).
        end = session.reader.num_frames - 1 if session is not None else None
        spans = {}
        for tid, kfs in keyframes.items():
            first, last = min(k.frame_idx for k in kfs), max(k.frame_idx for k in kfs)
            spans[tid] = max(0, (last if end is None else min(last, end)) - first + 1)
        if sum(spans.values()) > MAX_INTERPOLATED_FRAMES:
            widest = max(spans, key=lambda tid: spans[tid])
            raise ResourceExhaustedError(
                f"the request spans {sum(spans.values())} frames over its tracks (track {widest}: {spans[widest]}); "
                f"at most {MAX_INTERPOLATED_FRAMES} per request: split the tracks over several requests"
            )
        detections = None
        det_key: tuple[tuple[str, ...], str] = ((), "")
        if request.detector_models:
            if session is None:
                raise InvalidInputError("detector_models need a video to run on")
            ranges = [(min(k.frame_idx for k in kfs), max(k.frame_idx for k in kfs)) for kfs in keyframes.values()]
            span = span_frames(ranges, MAX_SUPPORT_FRAMES)
            specs = [self.ctx.registry.get(name) for name in request.detector_models]
            for spec in specs:
                if spec.task not in ("detect", "pose"):
                    raise InvalidInputError(f"detector_models: {spec.name!r} is a {spec.task} model, not a detector")
            detectors = [self.ctx.models.get(spec.name, spec.task) for spec in specs]
            options = convert.detect_options(request.detect_options)
            det_key = (tuple(request.detector_models), repr(options))
            detections = session.detections(det_key, detectors, span, options)
        method = request.method or "auto"
        num_suggestions = request.num_suggestions if request.HasField("num_suggestions") else 3
        others = None
        if detections is not None and len(request.tracks) > 1:
            from prelabel.interpolate.others import OtherTracks

            # Each track leaves to its neighbours of its label the detections they sit on (as the tool draws them).
            others = OtherTracks(keyframes, {t.track_id: t.label for t in request.tracks})
        out = pb.InterpolateResponse()
        for track in request.tracks:
            _check_active(context)
            label = track.label
            dets = detections
            if session is not None and detections is not None:
                dets, label = session.for_label(det_key, detections, track.label), ""  # filtered once per label
            use, left = (dets, b"") if others is None or dets is None else others.detections_for(track.track_id, dets)
            # The answer depends on the track and on the detections its neighbours took (a digest): both make the key.
            key = (method, det_key, num_suggestions, track.SerializeToString(deterministic=True) + left)
            cached = session.result(key, dets) if session is not None else None
            if cached is not None:  # the track as an earlier call sent it: its answer then
                out.tracks.add().ParseFromString(cached)
                continue
            result = interpolate_track(
                keyframes[track.track_id],
                method,
                video=session.reader if session is not None else None,
                detections=use,
                num_suggestions=num_suggestions,
                track_id=track.track_id,
                method_object=session.method(method, track.label) if session is not None else None,
                label=label,
            )
            answer = convert.interpolation_to_proto(result)
            if session is not None:
                session.store_result(key, dets, answer.SerializeToString(deterministic=True))
            out.tracks.append(answer)
        size, limit = out.ByteSize(), self.ctx.settings.max_message_bytes
        if size > limit:  # refused here, where the caller and the access log see why, not by the transport after
            raise ResourceExhaustedError(
                f"the answer is {size} bytes, more than the largest message ({limit} bytes, max_message_mb): "
                "split the tracks over several requests"
            )
        return out

    def CompressTracks(
        self, request: pb.CompressTracksRequest, context: grpc.ServicerContext
    ) -> pb.CompressTracksResponse:
        from prelabel.interpolate import compress_track

        min_iou = request.min_iou or 0.9
        max_error = request.max_keypoint_error or 0.05
        if not 0.0 < min_iou <= 1.0:  # NaN fails too
            raise InvalidInputError(f"min_iou must be in (0, 1], got {request.min_iou}")
        if not 0.0 < max_error < float("inf"):  # NaN fails too
            raise InvalidInputError(
                f"max_keypoint_error must be a finite number above 0, got {request.max_keypoint_error}"
            )
        boxes = sum(len(f.objects) for f in request.frames)
        if boxes > MAX_INTERPOLATED_FRAMES:
            raise ResourceExhaustedError(
                f"the request holds {boxes} boxes; at most {MAX_INTERPOLATED_FRAMES} per request: split the tracks "
                "over several requests"
            )
        if request.num_frames < 0:
            raise InvalidInputError(f"num_frames must be >= 0 (0: unknown), got {request.num_frames}")
        num_frames = request.num_frames or None
        tracks = convert.tracks_from_frames(request.frames)
        if not tracks:
            raise InvalidInputError("no tracks given (every frame is empty)")
        known = {t.track_id for t in tracks}
        last = num_frames - 1 if num_frames is not None else None
        if num_frames is not None:
            for t in tracks:
                if t.boxes[-1].frame_idx >= num_frames:
                    raise InvalidInputError(
                        f"track {t.track_id} frame {t.boxes[-1].frame_idx}: past the video's {num_frames} frames"
                    )
        keep: dict[int, list[int]] = {}
        for k in request.keep:
            if k.track_id not in known:
                raise InvalidInputError(f"keep: track {k.track_id} is in no frame of the request")
            bad = [f for f in k.frame_idx if f < 0 or (last is not None and f > last)]
            if bad:
                raise InvalidInputError(f"keep: track {k.track_id} frame {bad[0]} is not a frame of the video")
            keep.setdefault(k.track_id, []).extend(k.frame_idx)
        out = pb.CompressTracksResponse()
        for track in tracks:
            _check_active(context)
            kfs = compress_track(
                track,
                min_iou,
                max_keypoint_error=max_error,
                keep=keep.get(track.track_id, ()),
                num_frames=num_frames,
                stop=lambda: not context.is_active(),
            )
            msg = out.tracks.add(track_id=track.track_id, label=track.class_name)
            msg.keyframes.extend(messages.keyframe_to_proto(k) for k in kfs)
        return out

    def ProposeSegments(
        self, request: pb.ProposeSegmentsRequest, context: grpc.ServicerContext
    ) -> pb.ProposeSegmentsResponse:
        kind = request.WhichOneof("input")
        if kind == "skeleton_tracks":
            st = request.skeleton_tracks
            if not 0 < st.fps < float("inf"):
                raise InvalidInputError(f"skeleton_tracks.fps must be positive, got {st.fps}")
            tracks = [convert.skeleton_track_from_proto(t) for t in st.tracks]
            if not tracks:
                raise InvalidInputError("no skeleton tracks given")
            model = request.model or self.ctx.registry.default_if_available("actions") or "rules"
            segments = self._segmenter(model).propose(tracks, fps=st.fps)
        elif kind == "video":
            path = self.resolve_video(request.video)
            self._segmenter(request.model or self.ctx.registry.default_if_available("actions") or "rules")  # first
            config = PipelineConfig(stages=STAGES, action_model=self._action_model(request.model))
            result = Pipeline(self.ctx.models.get, config, self.ctx.settings.models_dir).run(path, None)
            segments = result.segments
        else:
            raise InvalidInputError("set either video or skeleton_tracks")
        return pb.ProposeSegmentsResponse(segments=[convert.segment_to_proto(s) for s in segments])

    # ------------------------------------------------------------------ jobs

    def _job_to_proto(self, job: JobRecord) -> pb.Job:
        video = pb.VideoSource(**{k: v for k, v in job.request.video.items() if k in ("path", "upload_id")})
        return pb.Job(
            job_id=job.job_id,
            state=pb.JobState.Name(int(job.state)),
            stage=job.stage,
            frames_done=job.frames_done,
            frames_total=job.frames_total,
            frames_per_s=job.frames_per_s,
            eta_s=job.eta_s,
            error=job.error,
            created_unix_s=job.created,
            updated_unix_s=job.updated,
            formats=list(job.formats),
            warnings=list(job.warnings),
            video=video,
            stages=list(job.request.stages),
        )

    def SubmitJob(self, request: pb.SubmitJobRequest, context: grpc.ServicerContext) -> pb.Job:
        kind = request.video.WhichOneof("source")
        path = self.resolve_video(request.video)
        video = {kind: getattr(request.video, kind)} if kind else {}
        if kind == "upload_id" and (name := self.ctx.uploads.original_name(request.video.upload_id)):
            video["name"] = name  # results name the client's file, not the stored copy
        job_request = JobRequest(
            video=video,
            stages=tuple(request.stages) or STAGES,
            detector_model=request.detector_model,
            pose_model=request.pose_model,
            action_model=self._action_model(request.action_model),
            options=dict(sorted(request.options.items())),
        )
        # Unknown models, bad options and a path that is no file fail now, not later in a worker.
        config = pipeline_config(job_request)
        if not path.is_file():
            raise InvalidInputError(f"video {path.name} is not a file")
        if "detect" in config.stages:
            self.ctx.registry.resolve(config.detector_model, "detect").require_available()
        if "pose" in config.stages:
            self.ctx.registry.resolve(config.pose_model, "pose").require_available()
        if "actions" in config.stages:
            self._segmenter(request.action_model)
        job = self.ctx.jobs.submit(job_request, path, request.idempotency_key or None)
        return self._job_to_proto(job)

    def WatchJob(self, request: pb.WatchJobRequest, context: grpc.ServicerContext) -> Iterator[pb.Job]:
        job = self.ctx.jobs.store.get(request.job_id)
        yield self._job_to_proto(job)
        while not job.state.terminal and context.is_active():
            changed = self.ctx.jobs.store.wait_change(job.job_id, job.seq, timeout_s=1.0)
            if changed.seq != job.seq:
                job = changed
                yield self._job_to_proto(job)

    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.Job:
        return self._job_to_proto(self.ctx.jobs.store.get(request.job_id))

    def ListJobs(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> pb.ListJobsResponse:
        size = request.page_size or 50
        if not 0 < size <= 1000:
            raise InvalidInputError(f"page_size must be in 1..1000, got {request.page_size}")
        after: tuple[float, str] | None = None
        if request.page_token:  # the last job of the page before: "<created>/<job_id>"
            created, _, job_id = request.page_token.partition("/")
            try:
                after = (float(created), job_id)
                if not job_id or not math.isfinite(after[0]):
                    raise ValueError("no job")
            except ValueError as exc:
                raise InvalidInputError(f"bad page_token {request.page_token[:40]!r}") from exc
        try:
            state = JobState(request.state) if request.state else None
        except ValueError as exc:
            raise InvalidInputError(f"unknown job state {request.state}") from exc
        jobs = self.ctx.jobs.store.list(state, limit=size + 1, after=after)
        last = jobs[size - 1] if len(jobs) > size else None
        token = f"{last.created!r}/{last.job_id}" if last is not None else ""
        return pb.ListJobsResponse(jobs=[self._job_to_proto(j) for j in jobs[:size]], next_page_token=token)

    def CancelJob(self, request: pb.CancelJobRequest, context: grpc.ServicerContext) -> pb.Job:
        return self._job_to_proto(self.ctx.jobs.cancel(request.job_id))

    def DownloadResult(
        self, request: pb.DownloadResultRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ResultChunk]:
        job = self.ctx.jobs.store.get(request.job_id)
        if job.state != JobState.SUCCEEDED:
            raise FailedPreconditionError(f"job {job.job_id} is {job.state.name}, results exist once it SUCCEEDED")
        path, ctype = result_file(self.ctx.jobs.result_folder(job.job_id), request.format or "json")
        first = True
        with path.open("rb") as fh:
            while True:
                block = fh.read(DOWNLOAD_CHUNK_BYTES)
                if not block and not first:
                    return
                if first:
                    yield pb.ResultChunk(filename=path.name, content_type=ctype, data=block)
                    first = False
                else:
                    yield pb.ResultChunk(data=block)
