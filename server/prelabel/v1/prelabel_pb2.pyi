from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    SOURCE_DETECTOR: _ClassVar[Source]
    SOURCE_TRACKER: _ClassVar[Source]
    SOURCE_FILLED: _ClassVar[Source]
    SOURCE_SMOOTHED: _ClassVar[Source]
    SOURCE_KEYFRAME: _ClassVar[Source]
    SOURCE_INTERPOLATED: _ClassVar[Source]
    SOURCE_RULE: _ClassVar[Source]
    SOURCE_MODEL: _ClassVar[Source]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
SOURCE_UNSPECIFIED: Source
SOURCE_DETECTOR: Source
SOURCE_TRACKER: Source
SOURCE_FILLED: Source
SOURCE_SMOOTHED: Source
SOURCE_KEYFRAME: Source
SOURCE_INTERPOLATED: Source
SOURCE_RULE: Source
SOURCE_MODEL: Source
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class Box(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("box", "class_id", "class_name", "score")
    BOX_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    box: Box
    class_id: int
    class_name: str
    score: float
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., class_id: _Optional[int] = ..., class_name: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class Keypoint(_message.Message):
    __slots__ = ("x", "y", "confidence", "present")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    confidence: float
    present: bool
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., confidence: _Optional[float] = ..., present: _Optional[bool] = ...) -> None: ...

class Skeleton(_message.Message):
    __slots__ = ("keypoints", "score", "box")
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    keypoints: _containers.RepeatedCompositeFieldContainer[Keypoint]
    score: float
    box: Box
    def __init__(self, keypoints: _Optional[_Iterable[_Union[Keypoint, _Mapping]]] = ..., score: _Optional[float] = ..., box: _Optional[_Union[Box, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: str
    def __init__(self, task: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "task", "classes", "imgsz", "weights", "available", "license", "description", "how_to_get")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    IMGSZ_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HOW_TO_GET_FIELD_NUMBER: _ClassVar[int]
    name: str
    task: str
    classes: _containers.RepeatedScalarFieldContainer[str]
    imgsz: int
    weights: str
    available: bool
    license: str
    description: str
    how_to_get: str
    def __init__(self, name: _Optional[str] = ..., task: _Optional[str] = ..., classes: _Optional[_Iterable[str]] = ..., imgsz: _Optional[int] = ..., weights: _Optional[str] = ..., available: _Optional[bool] = ..., license: _Optional[str] = ..., description: _Optional[str] = ..., how_to_get: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class DetectOptions(_message.Message):
    __slots__ = ("conf", "iou", "classes", "imgsz", "max_det")
    CONF_FIELD_NUMBER: _ClassVar[int]
    IOU_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    IMGSZ_FIELD_NUMBER: _ClassVar[int]
    MAX_DET_FIELD_NUMBER: _ClassVar[int]
    conf: float
    iou: float
    classes: _containers.RepeatedScalarFieldContainer[int]
    imgsz: int
    max_det: int
    def __init__(self, conf: _Optional[float] = ..., iou: _Optional[float] = ..., classes: _Optional[_Iterable[int]] = ..., imgsz: _Optional[int] = ..., max_det: _Optional[int] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("model", "images", "options")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    images: _containers.RepeatedScalarFieldContainer[bytes]
    options: DetectOptions
    def __init__(self, model: _Optional[str] = ..., images: _Optional[_Iterable[bytes]] = ..., options: _Optional[_Union[DetectOptions, _Mapping]] = ...) -> None: ...

class ImageDetections(_message.Message):
    __slots__ = ("index", "width", "height", "detections")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    index: int
    width: int
    height: int
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    def __init__(self, index: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("model", "results")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    results: _containers.RepeatedCompositeFieldContainer[ImageDetections]
    def __init__(self, model: _Optional[str] = ..., results: _Optional[_Iterable[_Union[ImageDetections, _Mapping]]] = ...) -> None: ...

class EstimatePoseRequest(_message.Message):
    __slots__ = ("model", "images", "options")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    images: _containers.RepeatedScalarFieldContainer[bytes]
    options: DetectOptions
    def __init__(self, model: _Optional[str] = ..., images: _Optional[_Iterable[bytes]] = ..., options: _Optional[_Union[DetectOptions, _Mapping]] = ...) -> None: ...

class ImagePoses(_message.Message):
    __slots__ = ("index", "width", "height", "skeletons")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SKELETONS_FIELD_NUMBER: _ClassVar[int]
    index: int
    width: int
    height: int
    skeletons: _containers.RepeatedCompositeFieldContainer[Skeleton]
    def __init__(self, index: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., skeletons: _Optional[_Iterable[_Union[Skeleton, _Mapping]]] = ...) -> None: ...

class EstimatePoseResponse(_message.Message):
    __slots__ = ("model", "results")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    results: _containers.RepeatedCompositeFieldContainer[ImagePoses]
    def __init__(self, model: _Optional[str] = ..., results: _Optional[_Iterable[_Union[ImagePoses, _Mapping]]] = ...) -> None: ...

class VideoSource(_message.Message):
    __slots__ = ("path", "upload_id")
    PATH_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    path: str
    upload_id: str
    def __init__(self, path: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("filename", "size_bytes", "sha256")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    filename: str
    size_bytes: int
    sha256: str
    def __init__(self, filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class UploadVideoRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadVideoResponse(_message.Message):
    __slots__ = ("upload_id", "size_bytes", "sha256", "info")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    size_bytes: int
    sha256: str
    info: VideoInfo
    def __init__(self, upload_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., info: _Optional[_Union[VideoInfo, _Mapping]] = ...) -> None: ...

class VideoInfo(_message.Message):
    __slots__ = ("width", "height", "num_frames", "fps", "variable_frame_rate", "duration_ms", "damaged_frames")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    DAMAGED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    num_frames: int
    fps: float
    variable_frame_rate: bool
    duration_ms: float
    damaged_frames: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., num_frames: _Optional[int] = ..., fps: _Optional[float] = ..., variable_frame_rate: _Optional[bool] = ..., duration_ms: _Optional[float] = ..., damaged_frames: _Optional[_Iterable[int]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "done", "total", "frames_per_s", "eta_s")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    stage: str
    done: int
    total: int
    frames_per_s: float
    eta_s: float
    def __init__(self, stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., frames_per_s: _Optional[float] = ..., eta_s: _Optional[float] = ...) -> None: ...

class TrackedObject(_message.Message):
    __slots__ = ("track_id", "box", "score", "class_id", "class_name", "source", "skeleton", "has_skeleton")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SKELETON_FIELD_NUMBER: _ClassVar[int]
    HAS_SKELETON_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    box: Box
    score: float
    class_id: int
    class_name: str
    source: Source
    skeleton: Skeleton
    has_skeleton: bool
    def __init__(self, track_id: _Optional[int] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., class_id: _Optional[int] = ..., class_name: _Optional[str] = ..., source: _Optional[_Union[Source, str]] = ..., skeleton: _Optional[_Union[Skeleton, _Mapping]] = ..., has_skeleton: _Optional[bool] = ...) -> None: ...

class FrameTracks(_message.Message):
    __slots__ = ("frame_idx", "ts_ms", "objects")
    FRAME_IDX_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    frame_idx: int
    ts_ms: float
    objects: _containers.RepeatedCompositeFieldContainer[TrackedObject]
    def __init__(self, frame_idx: _Optional[int] = ..., ts_ms: _Optional[float] = ..., objects: _Optional[_Iterable[_Union[TrackedObject, _Mapping]]] = ...) -> None: ...

class TrackerOptions(_message.Message):
    __slots__ = ("offline_refine", "max_gap_s", "tracker")
    OFFLINE_REFINE_FIELD_NUMBER: _ClassVar[int]
    MAX_GAP_S_FIELD_NUMBER: _ClassVar[int]
    TRACKER_FIELD_NUMBER: _ClassVar[int]
    offline_refine: bool
    max_gap_s: float
    tracker: str
    def __init__(self, offline_refine: _Optional[bool] = ..., max_gap_s: _Optional[float] = ..., tracker: _Optional[str] = ...) -> None: ...

class TrackVideoRequest(_message.Message):
    __slots__ = ("video", "detector_model", "detect_options", "tracker_options", "with_pose", "pose_model", "start_frame", "end_frame")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    DETECT_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TRACKER_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    WITH_POSE_FIELD_NUMBER: _ClassVar[int]
    POSE_MODEL_FIELD_NUMBER: _ClassVar[int]
    START_FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FRAME_FIELD_NUMBER: _ClassVar[int]
    video: VideoSource
    detector_model: str
    detect_options: DetectOptions
    tracker_options: TrackerOptions
    with_pose: bool
    pose_model: str
    start_frame: int
    end_frame: int
    def __init__(self, video: _Optional[_Union[VideoSource, _Mapping]] = ..., detector_model: _Optional[str] = ..., detect_options: _Optional[_Union[DetectOptions, _Mapping]] = ..., tracker_options: _Optional[_Union[TrackerOptions, _Mapping]] = ..., with_pose: _Optional[bool] = ..., pose_model: _Optional[str] = ..., start_frame: _Optional[int] = ..., end_frame: _Optional[int] = ...) -> None: ...

class TrackVideoResponse(_message.Message):
    __slots__ = ("info", "progress", "frame")
    INFO_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    info: VideoInfo
    progress: Progress
    frame: FrameTracks
    def __init__(self, info: _Optional[_Union[VideoInfo, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., frame: _Optional[_Union[FrameTracks, _Mapping]] = ...) -> None: ...

class FrameDetections(_message.Message):
    __slots__ = ("frame_idx", "ts_ms", "detections")
    FRAME_IDX_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    frame_idx: int
    ts_ms: float
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    def __init__(self, frame_idx: _Optional[int] = ..., ts_ms: _Optional[float] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ...) -> None: ...

class TrackDetectionsRequest(_message.Message):
    __slots__ = ("frames", "fps", "width", "height", "tracker_options")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TRACKER_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameDetections]
    fps: float
    width: int
    height: int
    tracker_options: TrackerOptions
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameDetections, _Mapping]]] = ..., fps: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., tracker_options: _Optional[_Union[TrackerOptions, _Mapping]] = ...) -> None: ...

class TrackDetectionsResponse(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameTracks]
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameTracks, _Mapping]]] = ...) -> None: ...

class Keyframe(_message.Message):
    __slots__ = ("frame_idx", "box", "has_box", "skeleton", "has_skeleton", "outside")
    FRAME_IDX_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    HAS_BOX_FIELD_NUMBER: _ClassVar[int]
    SKELETON_FIELD_NUMBER: _ClassVar[int]
    HAS_SKELETON_FIELD_NUMBER: _ClassVar[int]
    OUTSIDE_FIELD_NUMBER: _ClassVar[int]
    frame_idx: int
    box: Box
    has_box: bool
    skeleton: Skeleton
    has_skeleton: bool
    outside: bool
    def __init__(self, frame_idx: _Optional[int] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., has_box: _Optional[bool] = ..., skeleton: _Optional[_Union[Skeleton, _Mapping]] = ..., has_skeleton: _Optional[bool] = ..., outside: _Optional[bool] = ...) -> None: ...

class KeyframeTrack(_message.Message):
    __slots__ = ("track_id", "label", "keyframes")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KEYFRAMES_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    label: str
    keyframes: _containers.RepeatedCompositeFieldContainer[Keyframe]
    def __init__(self, track_id: _Optional[int] = ..., label: _Optional[str] = ..., keyframes: _Optional[_Iterable[_Union[Keyframe, _Mapping]]] = ...) -> None: ...

class InterpolatedFrame(_message.Message):
    __slots__ = ("frame_idx", "box", "has_box", "skeleton", "has_skeleton", "outside", "is_keyframe", "confidence", "method", "source")
    FRAME_IDX_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    HAS_BOX_FIELD_NUMBER: _ClassVar[int]
    SKELETON_FIELD_NUMBER: _ClassVar[int]
    HAS_SKELETON_FIELD_NUMBER: _ClassVar[int]
    OUTSIDE_FIELD_NUMBER: _ClassVar[int]
    IS_KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    frame_idx: int
    box: Box
    has_box: bool
    skeleton: Skeleton
    has_skeleton: bool
    outside: bool
    is_keyframe: bool
    confidence: float
    method: str
    source: Source
    def __init__(self, frame_idx: _Optional[int] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., has_box: _Optional[bool] = ..., skeleton: _Optional[_Union[Skeleton, _Mapping]] = ..., has_skeleton: _Optional[bool] = ..., outside: _Optional[bool] = ..., is_keyframe: _Optional[bool] = ..., confidence: _Optional[float] = ..., method: _Optional[str] = ..., source: _Optional[_Union[Source, str]] = ...) -> None: ...

class SuggestedKeyframe(_message.Message):
    __slots__ = ("frame_idx", "score", "reason")
    FRAME_IDX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    frame_idx: int
    score: float
    reason: str
    def __init__(self, frame_idx: _Optional[int] = ..., score: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class InterpolatedTrack(_message.Message):
    __slots__ = ("track_id", "frames", "suggestions")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    frames: _containers.RepeatedCompositeFieldContainer[InterpolatedFrame]
    suggestions: _containers.RepeatedCompositeFieldContainer[SuggestedKeyframe]
    def __init__(self, track_id: _Optional[int] = ..., frames: _Optional[_Iterable[_Union[InterpolatedFrame, _Mapping]]] = ..., suggestions: _Optional[_Iterable[_Union[SuggestedKeyframe, _Mapping]]] = ...) -> None: ...

class InterpolateRequest(_message.Message):
    __slots__ = ("tracks", "method", "video", "num_suggestions", "detector_models", "detect_options")
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    NUM_SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_MODELS_FIELD_NUMBER: _ClassVar[int]
    DETECT_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    tracks: _containers.RepeatedCompositeFieldContainer[KeyframeTrack]
    method: str
    video: VideoSource
    num_suggestions: int
    detector_models: _containers.RepeatedScalarFieldContainer[str]
    detect_options: DetectOptions
    def __init__(self, tracks: _Optional[_Iterable[_Union[KeyframeTrack, _Mapping]]] = ..., method: _Optional[str] = ..., video: _Optional[_Union[VideoSource, _Mapping]] = ..., num_suggestions: _Optional[int] = ..., detector_models: _Optional[_Iterable[str]] = ..., detect_options: _Optional[_Union[DetectOptions, _Mapping]] = ...) -> None: ...

class InterpolateResponse(_message.Message):
    __slots__ = ("tracks",)
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    tracks: _containers.RepeatedCompositeFieldContainer[InterpolatedTrack]
    def __init__(self, tracks: _Optional[_Iterable[_Union[InterpolatedTrack, _Mapping]]] = ...) -> None: ...

class KeepFrames(_message.Message):
    __slots__ = ("track_id", "frame_idx")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_IDX_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    frame_idx: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, track_id: _Optional[int] = ..., frame_idx: _Optional[_Iterable[int]] = ...) -> None: ...

class CompressTracksRequest(_message.Message):
    __slots__ = ("frames", "min_iou", "max_keypoint_error", "keep", "num_frames")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    MIN_IOU_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYPOINT_ERROR_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameTracks]
    min_iou: float
    max_keypoint_error: float
    keep: _containers.RepeatedCompositeFieldContainer[KeepFrames]
    num_frames: int
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameTracks, _Mapping]]] = ..., min_iou: _Optional[float] = ..., max_keypoint_error: _Optional[float] = ..., keep: _Optional[_Iterable[_Union[KeepFrames, _Mapping]]] = ..., num_frames: _Optional[int] = ...) -> None: ...

class CompressTracksResponse(_message.Message):
    __slots__ = ("tracks",)
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    tracks: _containers.RepeatedCompositeFieldContainer[KeyframeTrack]
    def __init__(self, tracks: _Optional[_Iterable[_Union[KeyframeTrack, _Mapping]]] = ...) -> None: ...

class SkeletonTrackFrame(_message.Message):
    __slots__ = ("frame_idx", "ts_ms", "box", "skeleton")
    FRAME_IDX_FIELD_NUMBER: _ClassVar[int]
    TS_MS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    SKELETON_FIELD_NUMBER: _ClassVar[int]
    frame_idx: int
    ts_ms: float
    box: Box
    skeleton: Skeleton
    def __init__(self, frame_idx: _Optional[int] = ..., ts_ms: _Optional[float] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., skeleton: _Optional[_Union[Skeleton, _Mapping]] = ...) -> None: ...

class SkeletonTrack(_message.Message):
    __slots__ = ("track_id", "frames")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    frames: _containers.RepeatedCompositeFieldContainer[SkeletonTrackFrame]
    def __init__(self, track_id: _Optional[int] = ..., frames: _Optional[_Iterable[_Union[SkeletonTrackFrame, _Mapping]]] = ...) -> None: ...

class ActionSegment(_message.Message):
    __slots__ = ("track_id", "label", "start_frame", "end_frame", "start_ts_ms", "end_ts_ms", "confidence", "start_uncertainty_frames", "end_uncertainty_frames", "source", "method")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    START_FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FRAME_FIELD_NUMBER: _ClassVar[int]
    START_TS_MS_FIELD_NUMBER: _ClassVar[int]
    END_TS_MS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    START_UNCERTAINTY_FRAMES_FIELD_NUMBER: _ClassVar[int]
    END_UNCERTAINTY_FRAMES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    label: str
    start_frame: int
    end_frame: int
    start_ts_ms: float
    end_ts_ms: float
    confidence: float
    start_uncertainty_frames: int
    end_uncertainty_frames: int
    source: Source
    method: str
    def __init__(self, track_id: _Optional[int] = ..., label: _Optional[str] = ..., start_frame: _Optional[int] = ..., end_frame: _Optional[int] = ..., start_ts_ms: _Optional[float] = ..., end_ts_ms: _Optional[float] = ..., confidence: _Optional[float] = ..., start_uncertainty_frames: _Optional[int] = ..., end_uncertainty_frames: _Optional[int] = ..., source: _Optional[_Union[Source, str]] = ..., method: _Optional[str] = ...) -> None: ...

class SkeletonTracks(_message.Message):
    __slots__ = ("tracks", "fps")
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    tracks: _containers.RepeatedCompositeFieldContainer[SkeletonTrack]
    fps: float
    def __init__(self, tracks: _Optional[_Iterable[_Union[SkeletonTrack, _Mapping]]] = ..., fps: _Optional[float] = ...) -> None: ...

class ProposeSegmentsRequest(_message.Message):
    __slots__ = ("video", "skeleton_tracks", "model")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    SKELETON_TRACKS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    video: VideoSource
    skeleton_tracks: SkeletonTracks
    model: str
    def __init__(self, video: _Optional[_Union[VideoSource, _Mapping]] = ..., skeleton_tracks: _Optional[_Union[SkeletonTracks, _Mapping]] = ..., model: _Optional[str] = ...) -> None: ...

class ProposeSegmentsResponse(_message.Message):
    __slots__ = ("segments",)
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[ActionSegment]
    def __init__(self, segments: _Optional[_Iterable[_Union[ActionSegment, _Mapping]]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("video", "stages", "detector_model", "pose_model", "action_model", "options", "idempotency_key")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    POSE_MODEL_FIELD_NUMBER: _ClassVar[int]
    ACTION_MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    video: VideoSource
    stages: _containers.RepeatedScalarFieldContainer[str]
    detector_model: str
    pose_model: str
    action_model: str
    options: _containers.ScalarMap[str, str]
    idempotency_key: str
    def __init__(self, video: _Optional[_Union[VideoSource, _Mapping]] = ..., stages: _Optional[_Iterable[str]] = ..., detector_model: _Optional[str] = ..., pose_model: _Optional[str] = ..., action_model: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "stage", "frames_done", "frames_total", "frames_per_s", "eta_s", "error", "created_unix_s", "updated_unix_s", "formats", "video", "stages", "warnings")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DONE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    stage: str
    frames_done: int
    frames_total: int
    frames_per_s: float
    eta_s: float
    error: str
    created_unix_s: float
    updated_unix_s: float
    formats: _containers.RepeatedScalarFieldContainer[str]
    video: VideoSource
    stages: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., stage: _Optional[str] = ..., frames_done: _Optional[int] = ..., frames_total: _Optional[int] = ..., frames_per_s: _Optional[float] = ..., eta_s: _Optional[float] = ..., error: _Optional[str] = ..., created_unix_s: _Optional[float] = ..., updated_unix_s: _Optional[float] = ..., formats: _Optional[_Iterable[str]] = ..., video: _Optional[_Union[VideoSource, _Mapping]] = ..., stages: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("state", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DownloadResultRequest(_message.Message):
    __slots__ = ("job_id", "format")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    format: str
    def __init__(self, job_id: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class ResultChunk(_message.Message):
    __slots__ = ("filename", "content_type", "data")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    filename: str
    content_type: str
    data: bytes
    def __init__(self, filename: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
