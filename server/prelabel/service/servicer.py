"""The ``prelabel.v1.Prelabel`` servicer: converts protobuf <-> domain types and delegates.

Errors are raised as domain exceptions; :mod:`prelabel.service.interceptors` maps them to status codes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import grpc

from prelabel.errors import InvalidInputError, NotImplementedYetError
from prelabel.registry import ModelSpec
from prelabel.service import convert
from prelabel.service.context import ServiceContext
from prelabel.v1 import prelabel_pb2 as pb
from prelabel.v1 import prelabel_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

# Most images one Detect / EstimatePose request may carry (larger batches: split them client-side).
MAX_IMAGES_PER_REQUEST = 256
# Keypoints whose confidence is at or below this are reported as missing.
MIN_KEYPOINT_CONF = 0.3


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


def _unimplemented(what: str, issue: str) -> NotImplementedYetError:
    return NotImplementedYetError(f"{what} is part of the API but not available in this server version ({issue})")


class PrelabelServicer(pb_grpc.PrelabelServicer):  # type: ignore[misc]
    """Serves every RPC of the contract; capabilities not built yet answer UNIMPLEMENTED."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ models

    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        specs = self.ctx.registry.list(request.task)
        return pb.ListModelsResponse(models=[_model_info(s) for s in specs])

    # ------------------------------------------------------------------ detection and pose

    def _decode_batch(self, images: list[bytes]) -> list[convert.Image]:
        if not images:
            raise InvalidInputError("the request has no images")
        if len(images) > MAX_IMAGES_PER_REQUEST:
            raise InvalidInputError(f"{len(images)} images in one request; at most {MAX_IMAGES_PER_REQUEST}")
        return [convert.decode_image(data, i) for i, data in enumerate(images)]

    def Detect(self, request: pb.DetectRequest, context: grpc.ServicerContext) -> pb.DetectResponse:
        options = convert.detect_options(request.options)
        detector = self.ctx.models.get(request.model, "detect")
        images = self._decode_batch(list(request.images))
        results = detector.detect(images, options)
        out = pb.DetectResponse(model=detector.name)
        for i, (img, dets) in enumerate(zip(images, results, strict=True)):
            out.results.append(convert.detections_to_proto(dets, i, img.shape[1], img.shape[0]))
        return out

    def EstimatePose(self, request: pb.EstimatePoseRequest, context: grpc.ServicerContext) -> pb.EstimatePoseResponse:
        options = convert.detect_options(request.options)
        detector = self.ctx.models.get(request.model, "pose")
        images = self._decode_batch(list(request.images))
        results = detector.detect(images, options)
        out = pb.EstimatePoseResponse(model=detector.name)
        for i, (img, dets) in enumerate(zip(images, results, strict=True)):
            out.results.append(convert.poses_to_proto(dets, i, img.shape[1], img.shape[0], MIN_KEYPOINT_CONF))
        return out

    # ------------------------------------------------------------------ video

    def UploadVideo(
        self, request_iterator: Iterator[pb.UploadVideoRequest], context: grpc.ServicerContext
    ) -> pb.UploadVideoResponse:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidInputError("UploadVideo: the first message must be the header")
        header = first.header

        def chunks() -> Iterator[bytes]:
            for msg in request_iterator:
                if msg.WhichOneof("part") != "chunk":
                    raise InvalidInputError("UploadVideo: only the first message may be a header")
                yield msg.chunk

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

    def TrackVideo(
        self, request: pb.TrackVideoRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.TrackVideoResponse]:
        self.resolve_video(request.video)
        raise _unimplemented("TrackVideo", "multi-object tracking")
        yield  # pragma: no cover - makes this a generator

    def TrackDetections(
        self, request: pb.TrackDetectionsRequest, context: grpc.ServicerContext
    ) -> pb.TrackDetectionsResponse:
        raise _unimplemented("TrackDetections", "multi-object tracking")

    def Interpolate(self, request: pb.InterpolateRequest, context: grpc.ServicerContext) -> pb.InterpolateResponse:
        raise _unimplemented("Interpolate", "keyframe interpolation")

    def ProposeSegments(
        self, request: pb.ProposeSegmentsRequest, context: grpc.ServicerContext
    ) -> pb.ProposeSegmentsResponse:
        raise _unimplemented("ProposeSegments", "action segments")

    # ------------------------------------------------------------------ jobs

    def SubmitJob(self, request: pb.SubmitJobRequest, context: grpc.ServicerContext) -> pb.Job:
        raise _unimplemented("SubmitJob", "batch jobs")

    def WatchJob(self, request: pb.WatchJobRequest, context: grpc.ServicerContext) -> Iterator[pb.Job]:
        raise _unimplemented("WatchJob", "batch jobs")
        yield  # pragma: no cover

    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.Job:
        raise _unimplemented("GetJob", "batch jobs")

    def ListJobs(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> pb.ListJobsResponse:
        raise _unimplemented("ListJobs", "batch jobs")

    def CancelJob(self, request: pb.CancelJobRequest, context: grpc.ServicerContext) -> pb.Job:
        raise _unimplemented("CancelJob", "batch jobs")

    def DownloadResult(
        self, request: pb.DownloadResultRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ResultChunk]:
        raise _unimplemented("DownloadResult", "batch jobs")
        yield  # pragma: no cover
