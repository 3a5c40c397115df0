"""Validation of an annotator's keyframes, with errors that name the track and the frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prelabel.errors import InvalidInputError
from prelabel.interpolate.base import FrameSource
from prelabel.types import Keyframe


def validate_keyframes(keyframes: Sequence[Keyframe], track_id: int, video: FrameSource | None = None) -> None:
    """Check one track's keyframes before interpolating.

    Rules: at least one keyframe; frame indices strictly increasing (no duplicates); inside the video when one is
    given; finite boxes and skeletons; among visible (non-outside) keyframes, either all or none carry a box.

    Raises:
        InvalidInputError: naming the track and the offending frame.
    """
    if track_id <= 0:
        raise InvalidInputError(f"track {track_id}: track_id must be positive")
    if len(keyframes) == 0:
        raise InvalidInputError(f"track {track_id}: no keyframes (expected at least one)")
    prev: int | None = None
    for kf in keyframes:
        f = int(kf.frame_idx)
        if f < 0:
            raise InvalidInputError(f"track {track_id}, frame {f}: frame index must be >= 0")
        if prev is not None and f <= prev:
            what = "duplicate keyframe" if f == prev else f"keyframes not sorted (frame {f} follows frame {prev})"
            raise InvalidInputError(f"track {track_id}, frame {f}: {what}; expected strictly increasing frame indices")
        prev = f
        if video is not None and f >= video.num_frames:
            raise InvalidInputError(
                f"track {track_id}, frame {f}: outside the video (expected 0 <= frame < {video.num_frames})"
            )
        if kf.xyxy is not None and not np.all(np.isfinite(kf.xyxy)):
            raise InvalidInputError(f"track {track_id}, frame {f}: box is not finite (NaN or inf): {kf.xyxy.tolist()}")
        if kf.skeleton is not None and not np.all(np.isfinite(kf.skeleton.keypoints[kf.skeleton.present])):
            raise InvalidInputError(f"track {track_id}, frame {f}: a present skeleton keypoint is not finite")
        if not kf.outside and kf.xyxy is None and kf.skeleton is None:
            raise InvalidInputError(f"track {track_id}, frame {f}: a visible keyframe needs a box or a skeleton")
    visible = [kf for kf in keyframes if not kf.outside]
    with_box = [kf.xyxy is not None for kf in visible]
    if any(with_box) and not all(with_box):
        bad = visible[with_box.index(False)]
        raise InvalidInputError(
            f"track {track_id}, frame {bad.frame_idx}: keyframe has no box while other keyframes of the track do "
            "(expected a box on every visible keyframe or on none)"
        )
