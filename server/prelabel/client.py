"""A typed Python client for the prelabel service.

Example::

    from prelabel.client import PrelabelClient

    with PrelabelClient("127.0.0.1:50051") as client:
        dets = client.detect([cv2.imread("frame.jpg")])
        print(dets[0].xyxy, dets[0].scores)

Errors arrive as :class:`grpc.RpcError` with the server's status code and message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from prelabel.files import file_sha256
from prelabel.images import map_images
from prelabel.service.messages import (
    box_from_proto,
    detections_from_proto,
    keyframe_to_proto,
    skeleton_from_proto,
)
from prelabel.types import Detections, Keyframe, Skeleton
from prelabel.v1 import prelabel_pb2 as pb
from prelabel.v1 import prelabel_pb2_grpc as pb_grpc

ImageLike = np.ndarray | bytes | str | Path


@dataclass(frozen=True)
class Pose:
    """One person found by a pose model: the box and its skeleton."""

    xyxy: np.ndarray
    skeleton: Skeleton


def encode_image(image: ImageLike, encoding: str = ".jpg", quality: int = 95) -> bytes:
    """Bytes for the wire: arrays (BGR uint8) are encoded; bytes pass through; paths are read.

    Args:
        image: a BGR uint8 array (H, W, 3), encoded bytes, or a file path.
        encoding: ".jpg" (fast, lossy) or ".png" (lossless).
        quality: JPEG quality 1..100.
    """
    if isinstance(image, bytes):
        return image
    if isinstance(image, (str, Path)):
        return Path(image).read_bytes()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if encoding == ".jpg" else []
    ok, buf = cv2.imencode(encoding, image, params)
    if not ok:
        raise ValueError(f"cannot encode an array of shape {image.shape} as {encoding}")
    return bytes(buf.tobytes())


def prepare_image(
    image: ImageLike, encoding: str = ".jpg", quality: int = 95, max_side: int = 0
) -> tuple[bytes, tuple[float, float]]:
    """Encode an image for the wire, first shrinking an array whose longer side exceeds ``max_side`` (0: never).

    A model that runs at ``imgsz`` pixels letterboxes every frame to that size, so sending frames shrunk to ``imgsz``
    changes only the resampling, and costs the client's encoder and the server's decoder a fraction of the full
    frame (boxes then come back in the shrunk frame's pixels: divide by the returned scale).

    Returns:
        (bytes, (sx, sy)): the sent image's size over the original's, per axis (divide box x and y by them).
    """
    if isinstance(image, np.ndarray) and max_side > 0 and max(image.shape[:2]) > max_side:
        h, w = image.shape[:2]
        f = max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        # INTER_LINEAR, as the model's own letterbox resizes: at max_side == imgsz the model sees the same pixels.
        small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        return encode_image(small, encoding, quality), (size[0] / w, size[1] / h)
    return encode_image(image, encoding, quality), (1.0, 1.0)


def frames_of(tracks: Sequence[pb.InterpolatedTrack], labels: Mapping[int, str] | None = None) -> list[pb.FrameTracks]:
    """``Interpolate``'s answer as per-frame tracks, what ``CompressTracks`` takes (the frames where a track is in
    view, with its box and skeleton; a skeleton-only track's frames without a box, which the server boxes around
    the present keypoints, where one is present: a skeleton hidden there is out of view; ``labels``: per track id,
    its class name)."""
    by_frame: dict[int, list[pb.TrackedObject]] = {}
    for track in tracks:
        for f in track.frames:
            shown = f.has_skeleton and any(k.present for k in f.skeleton.keypoints)
            if f.outside or not (f.has_box or shown):
                continue
            obj = pb.TrackedObject(
                track_id=track.track_id,
                score=f.confidence,
                class_name=(labels or {}).get(track.track_id, ""),
                source=f.source,
            )
            if f.has_box:
                obj.box.CopyFrom(f.box)
            if f.has_skeleton:
                obj.skeleton.CopyFrom(f.skeleton)
                obj.has_skeleton = True
            by_frame.setdefault(f.frame_idx, []).append(obj)
    return [pb.FrameTracks(frame_idx=f, objects=objs) for f, objs in sorted(by_frame.items())]


class PrelabelClient:
    """Connects to a prelabel server.

    Args:
        target: ``host:port``.
        token: bearer token when the server requires one.
        tls_ca: PEM file of the CA that signed the server's certificate; set to use TLS.
        timeout_s: default deadline per call.
        max_message_mb: largest message sent or received.
    """

    def __init__(
        self,
        target: str,
        token: str | None = None,
        tls_ca: Path | None = None,
        timeout_s: float = 120.0,
        max_message_mb: int = 64,
    ) -> None:
        options = [
            ("grpc.max_send_message_length", max_message_mb * 1024 * 1024),
            ("grpc.max_receive_message_length", max_message_mb * 1024 * 1024),
        ]
        if tls_ca is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = pb_grpc.PrelabelStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self.timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __enter__(self) -> PrelabelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def _kw(self, timeout_s: float | None) -> dict[str, object]:
        return {"timeout": timeout_s or self.timeout_s, "metadata": self._metadata}

    # ------------------------------------------------------------------ health and models

    def health(self, service: str = "", timeout_s: float | None = 10.0) -> str:
        """The server's health status name: SERVING, NOT_SERVING, ..."""
        resp = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))

    def wait_until_serving(self, timeout_s: float = 120.0) -> None:
        """Block until health says SERVING (raises TimeoutError otherwise)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.health() == "SERVING":
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not SERVING after {timeout_s} s")

    def list_models(self, task: str = "") -> list[pb.ModelInfo]:
        """Models the server knows (optionally of one task)."""
        return list(self.stub.ListModels(pb.ListModelsRequest(task=task), **self._kw(None)).models)

    # ------------------------------------------------------------------ detection and pose

    @staticmethod
    def _options(conf: float, iou: float, classes: Sequence[int], imgsz: int, max_det: int) -> pb.DetectOptions:
        return pb.DetectOptions(conf=conf, iou=iou, classes=list(classes), imgsz=imgsz, max_det=max_det)

    def detect(
        self,
        images: Sequence[ImageLike],
        model: str = "",
        *,
        conf: float = 0.0,
        iou: float = 0.0,
        classes: Sequence[int] = (),
        imgsz: int = 0,
        max_det: int = 0,
        encoding: str = ".jpg",
        max_side: int = 0,
        timeout_s: float | None = None,
    ) -> list[Detections]:
        """Detections per image (0 for a filter means the server default), boxes in the given images' pixels.

        ``max_side`` > 0 shrinks larger arrays before sending (see :func:`prepare_image`; the model's input size is
        a good value); boxes are scaled back.
        """
        prepared = map_images(lambda img: prepare_image(img, encoding, max_side=max_side), list(images))
        req = pb.DetectRequest(
            model=model,
            images=[data for data, _ in prepared],
            options=self._options(conf, iou, classes, imgsz, max_det),
        )
        resp = self.stub.Detect(req, **self._kw(timeout_s))
        out = []
        for r, (_, (sx, sy)) in zip(resp.results, prepared, strict=True):
            dets = detections_from_proto(r.detections, "Detect answer")
            if (sx, sy) != (1.0, 1.0) and len(dets):
                xyxy = (dets.xyxy / np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)
                dets = Detections(xyxy, dets.scores, dets.class_ids, dets.class_names)
            out.append(dets)
        return out

    def estimate_pose(
        self,
        images: Sequence[ImageLike],
        model: str = "",
        *,
        conf: float = 0.0,
        imgsz: int = 0,
        encoding: str = ".jpg",
        timeout_s: float | None = None,
    ) -> list[list[Pose]]:
        """Skeletons per image."""
        req = pb.EstimatePoseRequest(
            model=model,
            images=[encode_image(img, encoding) for img in images],
            options=self._options(conf, 0.0, (), imgsz, 0),
        )
        resp = self.stub.EstimatePose(req, **self._kw(timeout_s))
        out = []
        for r in resp.results:
            out.append(
                [Pose(box_from_proto(s.box), skeleton_from_proto(s, "EstimatePose answer")) for s in r.skeletons]
            )
        return out

    # ------------------------------------------------------------------ interpolation

    def interpolate(
        self,
        tracks: Mapping[int, Sequence[Keyframe]],
        method: str = "auto",
        *,
        video: Path | str | None = None,
        upload_id: str = "",
        labels: Mapping[int, str] | None = None,
        num_suggestions: int | None = None,
        detector_models: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> list[pb.InterpolatedTrack]:
        """Boxes (and skeletons) for every frame between each track's keyframes, with a confidence and the method
        per frame, and suggested frames for the next keyframe.

        Args:
            tracks: an annotator's keyframes per track id (ids > 0), e.g.
                ``{1: [Keyframe(0, np.array([10, 20, 60, 120])), Keyframe(30, np.array([200, 20, 250, 120]))]}``.
            method: ``linear``, ``spline``, ``kalman``, ``kalman-ca``, ``guided`` or ``auto``.
            video: a path on the server (under its allowed roots), for ``guided`` and ``auto``; or ``upload_id``.
            labels: per track id, its class name (a track uses that class's detections only).
            num_suggestions: suggested keyframes per track (None: the server's default, 3; 0: none).
            detector_models: registry models run on the frames the tracks span (needs a video).

        Returns:
            One ``InterpolatedTrack`` per track, in the order of ``tracks``.
        """
        req = pb.InterpolateRequest(method=method, detector_models=list(detector_models))
        for track_id, keyframes in tracks.items():
            msg = req.tracks.add(track_id=int(track_id), label=(labels or {}).get(track_id, ""))
            msg.keyframes.extend(keyframe_to_proto(kf) for kf in keyframes)
        if video is not None:
            req.video.path = str(video)
        elif upload_id:
            req.video.upload_id = upload_id
        if num_suggestions is not None:
            req.num_suggestions = int(num_suggestions)
        return list(self.stub.Interpolate(req, **self._kw(timeout_s)).tracks)

    def compress_tracks(
        self,
        frames: Sequence[pb.FrameTracks],
        min_iou: float = 0.9,
        max_keypoint_error: float = 0.05,
        keep: Mapping[int, Sequence[int]] | None = None,
        num_frames: int = 0,
        timeout_s: float | None = None,
    ) -> list[pb.KeyframeTrack]:
        """The fewest keyframes from which an annotation tool's linear interpolation rebuilds dense tracks.

        Args:
            frames: per-frame tracks, e.g. the ``frames`` of ``TrackVideo``'s or ``TrackDetections``' answers.
            min_iou: every box rebuilt with at least this IoU.
            max_keypoint_error: every keypoint rebuilt within this fraction of its box's longer side.
            keep: per track id, frames that stay keyframes (an annotator's own).
            num_frames: the video's frame count (0: unknown); a track that ends before it gets an outside keyframe.

        Returns:
            One ``KeyframeTrack`` per track id, in increasing id order (as ``interpolate`` takes them).
        """
        req = pb.CompressTracksRequest(
            frames=list(frames), min_iou=min_iou, max_keypoint_error=max_keypoint_error, num_frames=num_frames
        )
        for track_id, kept in (keep or {}).items():
            req.keep.add(track_id=int(track_id), frame_idx=[int(f) for f in kept])
        return list(self.stub.CompressTracks(req, **self._kw(timeout_s)).tracks)

    # ------------------------------------------------------------------ video

    def upload_video(
        self, path: Path | str, chunk_bytes: int = 1 << 20, timeout_s: float | None = None, sha256: str | None = None
    ) -> str:
        """Upload a local video; returns its upload id. ``sha256``: the file's, when the caller has it already (the
        server checks it against what arrives)."""
        path = Path(path)
        sha256 = sha256 or file_sha256(path)

        def messages() -> Iterator[pb.UploadVideoRequest]:
            header = pb.UploadHeader(filename=path.name, size_bytes=path.stat().st_size, sha256=sha256)
            yield pb.UploadVideoRequest(header=header)
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(chunk_bytes), b""):
                    yield pb.UploadVideoRequest(chunk=block)

        return str(self.stub.UploadVideo(messages(), **self._kw(timeout_s)).upload_id)

    def track_video(
        self, request: pb.TrackVideoRequest, timeout_s: float | None = None
    ) -> Iterator[pb.TrackVideoResponse]:
        """Stream of video info, progress and per-frame tracks."""
        yield from self.stub.TrackVideo(request, **self._kw(timeout_s))

    # ------------------------------------------------------------------ jobs

    def submit_job(
        self,
        *,
        path: str = "",
        upload_id: str = "",
        stages: Sequence[str] = (),
        detector_model: str = "",
        pose_model: str = "",
        action_model: str = "",
        options: dict[str, str] | None = None,
        idempotency_key: str = "",
        timeout_s: float | None = None,
    ) -> pb.Job:
        """Queue a pre-labeling job for a server path (under its allowed roots) or an uploaded video."""
        video = pb.VideoSource(upload_id=upload_id) if upload_id else pb.VideoSource(path=path)
        req = pb.SubmitJobRequest(
            video=video,
            stages=list(stages),
            detector_model=detector_model,
            pose_model=pose_model,
            action_model=action_model,
            options=options or {},
            idempotency_key=idempotency_key,
        )
        return self.stub.SubmitJob(req, **self._kw(timeout_s))

    def watch_job(self, job_id: str, timeout_s: float | None = None) -> Any:
        """The job's state each time it changes, ending with its final state: an iterator of ``pb.Job`` whose
        ``cancel()`` ends the watch (the job runs on)."""
        return self.stub.WatchJob(pb.WatchJobRequest(job_id=job_id), **self._kw(timeout_s or 24 * 3600.0))

    def get_job(self, job_id: str) -> pb.Job:
        """One job."""
        return self.stub.GetJob(pb.GetJobRequest(job_id=job_id), **self._kw(None))

    def list_jobs(self, state: int = 0, page_size: int = 50) -> list[pb.Job]:
        """Every job (newest first), following pages."""
        out: list[pb.Job] = []
        token = ""
        while True:
            req = pb.ListJobsRequest(state=state, page_size=page_size, page_token=token)  # type: ignore[arg-type]
            resp = self.stub.ListJobs(req, **self._kw(None))
            out.extend(resp.jobs)
            token = resp.next_page_token
            if not token:
                return out

    def cancel_job(self, job_id: str) -> pb.Job:
        """Cancel a queued or running job."""
        return self.stub.CancelJob(pb.CancelJobRequest(job_id=job_id), **self._kw(None))

    def download_result(self, job_id: str, fmt: str, dest: Path | str, timeout_s: float | None = None) -> Path:
        """Save a finished job's result in ``fmt`` (json, cvat, labelstudio, coco, mot, yolo).

        ``dest`` is a folder (an existing one, or a path without a suffix; the server's file name is kept) or a
        file path.
        """
        dest = Path(dest)
        chunks = self.stub.DownloadResult(pb.DownloadResultRequest(job_id=job_id, format=fmt), **self._kw(timeout_s))
        first = next(iter(chunks))
        target = dest / first.filename if dest.is_dir() or not dest.suffix else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:
            fh.write(first.data)
            for chunk in chunks:
                fh.write(chunk.data)
        return target
