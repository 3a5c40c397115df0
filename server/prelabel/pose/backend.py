"""Pose estimation on images: a thin layer over a pose :class:`~prelabel.detect.base.Detector`.

The detector (e.g. the Ultralytics backend with a ``task: pose`` model from the registry) does the batched forward pass;
this module checks the request, then turns each detection's ``(17, 3)`` keypoints into a :class:`PersonPose` with an
explicit per-keypoint ``present`` flag (confidence above ``min_kpt_conf``). Low-confidence keypoints keep their
confidence and are marked missing; nothing is invented.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from prelabel.detect.base import DetectOptions, Detector, Image
from prelabel.errors import FailedPreconditionError, InvalidInputError
from prelabel.images import check_images
from prelabel.types import NUM_KEYPOINTS, Detections, FloatArray, Skeleton

logger = logging.getLogger(__name__)

DEFAULT_MIN_KPT_CONF = 0.3


@dataclass(frozen=True)
class PoseOptions:
    """Options of one pose request.

    Attributes:
        detect: the detector's filters (person score threshold, NMS IoU, input size, most persons per image).
        min_kpt_conf: a keypoint whose confidence is below this (in [0, 1]) is marked missing (``present=False``).
    """

    detect: DetectOptions = field(default_factory=DetectOptions)
    min_kpt_conf: float = DEFAULT_MIN_KPT_CONF

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_kpt_conf <= 1.0:
            raise InvalidInputError(f"min_kpt_conf must be in [0, 1], got {self.min_kpt_conf}")


@dataclass
class PersonPose:
    """One person found in one image: box, score and skeleton.

    Attributes:
        xyxy: (4,) float32 box in pixels.
        score: person confidence in [0, 1].
        skeleton: COCO-17 keypoints (pixels) with per-keypoint confidence and presence.
        class_id: the detector's class id of the person class.
    """

    xyxy: FloatArray
    score: float
    skeleton: Skeleton
    class_id: int = 0


def skeleton_from_keypoints(kpts: npt.ArrayLike, min_conf: float, score: float) -> Skeleton:
    """A :class:`Skeleton` from a model's ``(17, 3)`` ``x, y, confidence`` array.

    A keypoint is present when it is finite and its confidence is at least ``min_conf``. A missing keypoint keeps its
    confidence (so a caller can see how unsure the model was) and its coordinates when finite (else 0); consumers must
    treat them as meaningless, per the ``present`` contract.

    Raises:
        InvalidInputError: when the array is not (17, 3).
    """
    arr = np.asarray(kpts, dtype=np.float32)
    if arr.shape != (NUM_KEYPOINTS, 3):
        raise InvalidInputError(f"keypoints: expected shape ({NUM_KEYPOINTS}, 3), got {arr.shape}")
    finite = np.isfinite(arr).all(axis=1)
    present = finite & (arr[:, 2] >= min_conf)
    arr = np.where(np.isfinite(arr), arr, 0.0).astype(np.float32)
    return Skeleton(arr, present, float(score))


def poses_from_detections(dets: Detections, min_kpt_conf: float = DEFAULT_MIN_KPT_CONF) -> list[PersonPose]:
    """Every detection with keypoints as a :class:`PersonPose`, in detection order.

    Raises:
        FailedPreconditionError: the detections carry no keypoints (the model is not a pose model).
    """
    if dets.keypoints is None:
        if len(dets) == 0:
            return []
        raise FailedPreconditionError(f"expected keypoints with {len(dets)} detections, got none (not a pose model?)")
    return [
        PersonPose(
            xyxy=dets.xyxy[i].copy(),
            score=float(dets.scores[i]),
            skeleton=skeleton_from_keypoints(dets.keypoints[i], min_kpt_conf, float(dets.scores[i])),
            class_id=int(dets.class_ids[i]),
        )
        for i in range(len(dets))
    ]


def estimate_pose(
    detector: Detector,
    images: Sequence[Image],
    options: PoseOptions | None = None,
) -> list[list[PersonPose]]:
    """Skeletons of every person in a batch of images, with one batched detector call.

    Args:
        detector: a pose detector (``task == "pose"``), e.g. the Ultralytics backend loaded from the registry.
        images: BGR uint8 images (H, W, 3); see :func:`decode_image` for encoded bytes.
        options: detector filters and the keypoint confidence threshold.

    Returns:
        One list of :class:`PersonPose` per image, in input order.

    Raises:
        InvalidInputError: empty batch, a malformed image, or a detector that is not a pose model.
        FailedPreconditionError: the detector returned no keypoints, or not one result per image.
    """
    opts = options or PoseOptions()
    if detector.task != "pose":
        raise InvalidInputError(f"model {detector.name!r}: expected a pose model, got task {detector.task!r}")
    check_images(images)
    results = detector.detect(images, opts.detect)
    if len(results) != len(images):
        raise FailedPreconditionError(
            f"model {detector.name!r}: expected {len(images)} results, one per image, got {len(results)}"
        )
    out = [poses_from_detections(d, opts.min_kpt_conf) for d in results]
    logger.debug("estimate_pose: %d images, %d persons", len(images), sum(len(p) for p in out))
    return out
