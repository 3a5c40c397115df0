"""One video through decode -> detect -> track -> pose -> actions, as a stream of events.

Decoding runs in its own thread, a bounded queue ahead of inference, so the two overlap. Frames are not kept:
memory grows with the number of detections, not with the number of frames. Detections can be read from and
written to a :class:`DetectionCache` (jobs use it as their checkpoint: a resumed run skips inference for frames
already done and, the rest being deterministic, ends with the same result as an uninterrupted run).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from prelabel.detect.base import DetectOptions, Detector
from prelabel.errors import InvalidInputError, PrelabelError
from prelabel.types import Detections, Segment, Track, VideoInfo
from prelabel.video.decode import Frame, VideoReader, probe

log = logging.getLogger(__name__)

STAGES = ("detect", "track", "pose", "actions")
# Most frames one detector call takes (they are held decoded until it runs).
MAX_BATCH_FRAMES = 256


@dataclass(frozen=True)
class PipelineConfig:
    """What to run on a video.

    Attributes:
        stages: subset of :data:`STAGES`; "track" needs "detect", "pose" needs "track" (skeletons are attached to
            tracks: without them the results hold none), "actions" needs "pose".
        detector_model, pose_model: registry names ("" = the registry default). When the detector is itself a pose
            model, one pass gives boxes and skeletons.
        action_model: "rules", a trained action model's registry name, or "" for the registry's default (the
            rules when its weights are absent).
        detect_options: detector filters; ``conf`` should be at most the tracker's ``low_score`` so the tracker's
            second pass sees low-score boxes.
        offline_refine: link, fill and smooth tracks (pre-labeling); False keeps online output only.
        batch_frames: frames per detector call.
        start_frame, end_frame: the range to process (end exclusive; None = to the end).
        person_class: class name whose tracks get skeletons and actions.
    """

    stages: tuple[str, ...] = STAGES
    detector_model: str = ""
    pose_model: str = ""
    action_model: str = ""
    detect_options: DetectOptions = field(default_factory=lambda: DetectOptions(conf=0.1))
    offline_refine: bool = True
    max_gap_s: float = 0.0
    batch_frames: int = 8
    start_frame: int = 0
    end_frame: int | None = None
    person_class: str = "person"

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise InvalidInputError(f"unknown stages {unknown}; expected a subset of {list(STAGES)}")
        if not self.stages:
            raise InvalidInputError("no stages selected")
        needs = {"track": ("detect",), "pose": ("detect", "track"), "actions": ("detect", "track", "pose")}
        for stage in self.stages:
            missing = [n for n in needs.get(stage, ()) if n not in self.stages]
            if missing:
                raise InvalidInputError(f"stage {stage!r} needs {missing}")
        if not 0 < self.batch_frames <= MAX_BATCH_FRAMES:
            raise InvalidInputError(f"batch_frames must be in 1..{MAX_BATCH_FRAMES}, got {self.batch_frames}")
        if not 0.0 <= self.max_gap_s < float("inf"):
            raise InvalidInputError(f"max_gap_s must be seconds >= 0 (0: the default), got {self.max_gap_s}")
        if self.start_frame < 0:
            raise InvalidInputError(f"start_frame must be >= 0, got {self.start_frame}")
        if self.end_frame is not None and self.end_frame <= self.start_frame:
            raise InvalidInputError(
                f"end_frame ({self.end_frame}, exclusive) must be after start_frame ({self.start_frame})"
            )


@dataclass(frozen=True)
class Progress:
    """Where a run is: ``done`` of ``total`` frames in ``stage``, at ``frames_per_s``, ``eta_s`` left."""

    stage: str
    done: int
    total: int
    frames_per_s: float
    eta_s: float


@dataclass(frozen=True)
class OnlineFrame:
    """The online tracker's confirmed objects in one frame (emitted only when offline refinement is off, so
    callers can stream tracks while the video is still being processed)."""

    frame_idx: int
    ts_ms: float
    objects: tuple[Any, ...]  # prelabel.track.TrackedObject


@dataclass
class PipelineResult:
    """Everything a run produced; frames are 0-based indices into the decoded stream."""

    info: VideoInfo
    ts_ms: np.ndarray
    detections: dict[int, Detections]
    tracks: list[Track]
    segments: list[Segment]
    class_names: tuple[str, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    frame_range: tuple[int, int] | None = None  # (start, end exclusive) of a run over part of the video


class DetectionCache(Protocol):
    """Per-frame model outputs kept across restarts (a job's checkpoint)."""

    def get(self, frame_idx: int) -> tuple[Detections, Detections | None] | None:
        """Cached (detections, pose detections) of a frame, or None."""
        ...

    def put(self, items: Sequence[tuple[int, Detections, Detections | None]]) -> None:
        """Store a batch's outputs durably."""
        ...


class CancelledError(PrelabelError):
    """The run was cancelled by its caller."""


ModelGetter = Callable[[str, str], Detector]


def _decode_thread(
    path: Path, start: int, end: int | None, out: queue.Queue[Frame | BaseException | None], stop: threading.Event
) -> None:
    try:
        with VideoReader(path) as reader:
            for frame in reader.frames(start, end):
                while not stop.is_set():
                    try:
                        out.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        out.put(None)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def iter_frames(path: Path, start: int = 0, end: int | None = None, prefetch: int = 16) -> Iterator[Frame]:
    """Decoded frames from a background thread (decoding overlaps the consumer's work)."""
    q: queue.Queue[Frame | BaseException | None] = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    t = threading.Thread(target=_decode_thread, args=(path, start, end, q, stop), daemon=True, name="decode")
    t.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


class Pipeline:
    """Runs :class:`PipelineConfig` on videos.

    Args:
        get_model: ``(name, task) -> Detector`` (e.g. :meth:`ModelManager.get`).
        config: stages and models.
        models_dir: where trained action models live.
    """

    def __init__(self, get_model: ModelGetter, config: PipelineConfig, models_dir: Path | None = None) -> None:
        self.get_model = get_model
        self.config = config
        self.models_dir = models_dir

    def run(
        self, video: Path, cancel: threading.Event | None = None, cache: DetectionCache | None = None
    ) -> PipelineResult:
        """Run to completion; see :meth:`events`."""
        result = None
        for event in self.events(video, cancel, cache):
            if isinstance(event, PipelineResult):
                result = event
        assert result is not None
        return result

    def events(
        self, video: Path, cancel: threading.Event | None = None, cache: DetectionCache | None = None
    ) -> Iterator[Progress | OnlineFrame | PipelineResult]:
        """Progress events while frames are processed (and :class:`OnlineFrame` per frame when offline refinement
        is off), then the :class:`PipelineResult`.

        Raises:
            InvalidInputError: unreadable video, bad frame range.
            NotFoundError, FailedPreconditionError: unknown model, missing weights.
            CancelledError: ``cancel`` was set.
        """
        cfg = self.config
        info, ts_all = probe(video)
        end = info.num_frames if cfg.end_frame is None else min(cfg.end_frame, info.num_frames)
        if cfg.start_frame >= end:
            raise InvalidInputError(
                f"frame range [{cfg.start_frame}, {end}) is empty for a {info.num_frames}-frame video"
            )
        total = end - cfg.start_frame
        detector = self.get_model(cfg.detector_model, "detect") if "detect" in cfg.stages else None
        pose_model: Detector | None = None
        if "pose" in cfg.stages:
            pose_model = self.get_model(cfg.pose_model, "pose")
        models = {"detector": detector.name if detector else "", "pose": pose_model.name if pose_model else ""}

        from prelabel.track import OnlineTracker, TrackerConfig, refine
        from prelabel.track.api import for_clip

        tcfg = TrackerConfig(max_gap_s=cfg.max_gap_s) if cfg.max_gap_s > 0 else TrackerConfig()
        tracker = OnlineTracker(tcfg, detector.class_names if detector else ())
        detections: dict[int, Detections] = {}
        poses: dict[int, Detections] = {}
        done = 0
        t0 = time.perf_counter()
        batch: list[Frame] = []

        online: list[OnlineFrame] = []
        stream_online = "track" in cfg.stages and not cfg.offline_refine

        def start(frames: list[Frame]) -> _Pending:
            """Queue inference for the frames not in the cache (runs on the models' own worker threads). Damaged
            frames (a packet that did not decode: their image is the last good frame's) are not inferred: they get no
            detections, and tracks bridge them as they bridge any missed frame."""
            assert detector is not None
            todo = [f for f in frames if not f.damaged and (cache is None or cache.get(f.frame_idx) is None)]
            images = [f.image for f in todo]
            det_future = _submit(detector, images, cfg.detect_options) if todo else None
            pose_future = _submit(pose_model, images, cfg.detect_options) if todo and pose_model else None
            return _Pending(frames, todo, det_future, pose_future)

        def finish(pending: _Pending) -> None:
            """Collect a batch's outputs, checkpoint them, and track its frames in order."""
            fresh: dict[int, tuple[Detections, Detections | None]] = {}
            computed[0] += len(pending.todo)
            if pending.det_future is not None:
                dets = pending.det_future.result()
                pdets: list[Detections | None] = [None] * len(pending.todo)
                if pending.pose_future is not None:
                    pdets = list(pending.pose_future.result())
                fresh = {f.frame_idx: (d, p) for f, d, p in zip(pending.todo, dets, pdets, strict=True)}
                if cache is not None:
                    cache.put([(i, d, p) for i, (d, p) in fresh.items()])
            for f in pending.frames:
                if f.damaged:
                    cached: tuple[Detections, Detections | None] | None = (
                        Detections.empty(detector.class_names if detector is not None else ()),
                        Detections.empty(pose_model.class_names) if pose_model is not None else None,
                    )
                else:
                    cached = fresh.get(f.frame_idx) or (cache.get(f.frame_idx) if cache is not None else None)
                assert cached is not None
                d, p = cached
                detections[f.frame_idx] = d
                if p is not None:
                    poses[f.frame_idx] = p
                if "track" in cfg.stages:
                    objects = tracker.update(f.frame_idx, f.ts_ms, d, f.image)
                    if stream_online:
                        online.append(OnlineFrame(f.frame_idx, f.ts_ms, tuple(objects)))

        computed = [0]  # frames this run ran the models on (the rest came from the checkpoint)
        # Software pipelining: batch N+1's inference runs while batch N is tracked on this thread.
        stage = "detect+track" if "track" in cfg.stages else "detect"
        previous: _Pending | None = None
        for frame in iter_frames(video, cfg.start_frame, end):
            batch.append(frame)
            if len(batch) < cfg.batch_frames:
                continue
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled")
            current = start(batch)
            batch = []
            if previous is not None:
                finish(previous)
                done += len(previous.frames)
                yield from online
                online.clear()
                yield _progress(stage, done, total, t0, computed[0])
            previous = current
        for pending in (previous, start(batch) if batch else None):
            if pending is not None:
                finish(pending)
                done += len(pending.frames)
                yield from online
                online.clear()
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled")
        yield _progress(stage, done, total, t0, computed[0])

        tracks: list[Track] = []
        fps = info.fps or 25.0
        if "track" in cfg.stages:
            raw = tracker.tracklets()
            size = (info.width, info.height)
            processed = ts_all[cfg.start_frame : cfg.start_frame + done]
            rcfg = for_clip(tcfg, float(processed[-1] - processed[0]) / 1000.0 if len(processed) else 0.0)
            tracks = (
                refine(raw, rcfg, fps, appearance=tracker.appearance(), frame_size=size) if cfg.offline_refine else raw
            )
            if done == 1 and not tracks:  # a still (one frame): each confident detection is a track of one box
                tracks = _single_frame_tracks(detections, tcfg.new_track_score, ts_all)
            n_dets = sum(len(d) for d in detections.values())
            if n_dets and not tracks:
                log.warning(
                    "%s: %d detections but no track: a track needs %d frames in a row and %.2f s in all",
                    Path(video).name,
                    n_dets,
                    rcfg.min_hits,
                    rcfg.min_track_s,
                )
        if "pose" in cfg.stages:
            tracks = self._attach_pose(tracks, poses, (info.width, info.height))
        segments: list[Segment] = []
        if "actions" in cfg.stages:
            from prelabel.actions.propose import propose_segments

            people = [t for t in tracks if t.class_name == cfg.person_class]
            action_model = self._action_model()
            segments = propose_segments(people, fps=fps, ts_ms=ts_all, model=action_model, models_dir=self.models_dir)
            models["actions"] = action_model
        class_names = tuple(detector.class_names) if detector else ()
        part = (cfg.start_frame, cfg.start_frame + done) if (cfg.start_frame, done) != (0, info.num_frames) else None
        yield PipelineResult(info, ts_all, detections, tracks, segments, class_names, models, part)

    def _action_model(self) -> str:
        """The configured action model, else the registry's default when its weights exist, else the rules."""
        if self.config.action_model:
            return self.config.action_model
        from prelabel.registry import ModelRegistry
        from prelabel.settings import default_models_dir

        registry = ModelRegistry.load((self.models_dir or default_models_dir()) / "registry.yaml")
        return registry.default_if_available("actions") or "rules"

    def _attach_pose(
        self, tracks: list[Track], poses: dict[int, Detections], frame_size: tuple[int, int]
    ) -> list[Track]:
        from prelabel.pose import attach_skeletons, smooth_skeleton_tracks

        person = self.config.person_class
        people = [t for t in tracks if t.class_name == person]
        others = [t for t in tracks if t.class_name != person]
        people = smooth_skeleton_tracks(attach_skeletons(people, poses))
        _keypoints_in_frame(people, *frame_size)
        return sorted([*people, *others], key=lambda t: t.track_id)


def _keypoints_in_frame(tracks: list[Track], width: int, height: int) -> None:
    """Keypoints outside the frame are not present (as COCO labels them): the pose model and the smoothing put
    some a few pixels past a person at the edge, and exports wrote them as visible."""
    from prelabel.types import Skeleton

    for track in tracks:
        for box in track.boxes:
            sk = box.skeleton
            if sk is None or width <= 0 or height <= 0:
                continue
            x, y = sk.keypoints[:, 0], sk.keypoints[:, 1]
            inside = (x >= 0) & (x <= width) & (y >= 0) & (y <= height)
            if (sk.present & ~inside).any():
                present = sk.present & inside
                box.skeleton = Skeleton(sk.keypoints, present, sk.score) if present.any() else None


def _single_frame_tracks(detections: dict[int, Detections], min_score: float, ts_ms: Any) -> list[Track]:
    """Tracks of one box each, from the detections of a one-frame video scoring at least ``min_score`` (a track
    needs two frames in a row otherwise, so a still gave no label at all), best first."""
    from prelabel.types import TrackedBox

    ((frame, dets),) = detections.items()
    order = [int(i) for i in np.argsort(-dets.scores, kind="stable") if dets.scores[i] >= min_score]
    names = dets.class_names
    return [
        Track(
            n,
            [TrackedBox(frame, dets.xyxy[i], float(dets.scores[i]), ts_ms=float(ts_ms[frame]))],
            int(dets.class_ids[i]),
            names[int(dets.class_ids[i])] if int(dets.class_ids[i]) < len(names) else "",
        )
        for n, i in enumerate(order, 1)
    ]


@dataclass
class _Pending:
    """A batch whose inference is in flight."""

    frames: list[Frame]
    todo: list[Frame]
    det_future: Future[list[Detections]] | None
    pose_future: Future[list[Detections]] | None


def _submit(model: Detector, images: list[Any], options: DetectOptions) -> Future[list[Detections]]:
    """Start inference without waiting: through the model's queue when it has one (the batching front), else
    right away on this thread (the returned future is already done)."""
    submit = getattr(model, "submit", None)
    if submit is not None:
        return cast("Future[list[Detections]]", submit(images, options))
    future: Future[list[Detections]] = Future()
    try:
        future.set_result(model.detect(images, options))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _progress(stage: str, done: int, total: int, t0: float, computed: int | None = None) -> Progress:
    """``done`` of ``total`` frames; the rate counts the ``computed`` ones (a resumed run's frames restored from its
    checkpoint take no time, and counting them made the rate high and the time left far too short)."""
    elapsed = max(time.perf_counter() - t0, 1e-9)
    rate = (done if computed is None or computed <= 0 else computed) / elapsed
    return Progress(stage, done, total, rate, (total - done) / rate if rate > 0 else 0.0)
