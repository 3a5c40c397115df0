"""Every tracker parameter in one dataclass; time-based values are in seconds so one config fits 5 to 60 fps."""

from __future__ import annotations

from dataclasses import dataclass

from prelabel.errors import InvalidInputError


@dataclass(frozen=True)
class TrackerConfig:
    """Parameters of the online tracker and of the offline refinement.

    Scores are detection confidences in [0, 1]; IoU thresholds are in [0, 1]; durations are seconds (converted to
    frames with the video's real timestamps / fps, so the same defaults work from 5 to 60 fps).

    The defaults are one configuration for every kind of footage; they were chosen by comparing a few settings on
    PETS09-S2L1's public detections (7 fps) and on generated ``fast-motion`` / ``crowd`` / ``occlusion`` scenes
    (12-30 fps, seeds 0..5), by the mean HOTA and IDF1 of each set (``benchmarks/tracking.py`` reports held-out
    seeds).

    Online association (per frame):
        high_score: detections at or above this score take part in the first matching pass.
        low_score: detections below this are dropped; those in ``[low_score, high_score)`` only feed the second
            (ByteTrack) pass that keeps tracks alive through partial occlusion.
        new_track_score: a track is born from an unmatched detection at or above this score.
        match_iou: least IoU between a track's predicted box and a detection in the first pass.
        low_match_iou: least IoU in the second pass with low-score detections.
        recovery_iou: least IoU between a lost track's last observed box and a detection in the observation-centric
            recovery pass (OC-SORT's OCR).
        recent_first: confirmed tracks observed within ``recent_s`` are associated before the others (a matching
            cascade), so a track coasting for longer, whose prediction drifts, cannot take a visible neighbour's
            detection.
        recent_s: see ``recent_first``.
        match_dist: last pass: confirmed tracks still unmatched vs high detections still free, by the distance
            between predicted and detected centres, at most this many box heights (fast objects whose boxes no
            longer overlap); 0 disables.
        direction_weight: weight of the motion-direction consistency term (OC-SORT's inertia), in IoU units.
        direction_window_s: the direction of a track is measured between its observations this far apart.
        max_lost_s: a track unmatched for longer than this is ended (track death).
        max_live_tracks: beyond this many live tracks, the ones lost longest end first: association compares every
            detection with every live track, and times that barely advance (a client's) would otherwise keep every
            track alive.
        min_hits: observations a track needs before the online tracker reports it (track birth); a track with
            fewer observations dies on its first missed frame. The offline pass sees every confirmed track.

    Kalman motion model (state: centre x, y, width, height and their velocities, pixels and pixels/s):
        accel_std: process noise, white acceleration of the centre in box heights per s².
        size_accel_std: the same for width and height.
        meas_std: measurement noise std of each of a detection's centre x, y, width and height at score 1, as a
            fraction of the box height.
        low_score_noise_gain: measurement noise std is multiplied by ``1 + gain * (1 - score)``.

    Camera-motion compensation (used when frames are given):
        cmc: ``"flow"`` (sparse optical flow + partial affine, OpenCV) or ``"none"``.
        cmc_max_side: frames are downscaled so their longest side is at most this many pixels before the flow.

    Offline refinement:
        max_gap_s: longest time gap that linking bridges.
        fill_max_s: longest gap filled with boxes; a linked track keeps longer gaps as gaps (the object is hidden).
        link_max_dist: largest allowed distance between a tracklet's extrapolated end and the next tracklet's start,
            in box heights, at zero gap.
        link_dist_per_s: how much that allowance grows per second of gap (box heights / s).
        link_max_size_ratio: largest allowed height ratio between the linked ends.
        link_overlap_s: a tracklet may link to one that starts up to this long before it ends (the later one's
            boxes are kept in the overlap).
        link_unmatched_cost: cost of leaving an end and a start unlinked, in units of the link cost (distance over
            allowance, plus the appearance term); one assignment minimises the total.
        appearance_weight: weight of the colour-histogram distance in the link cost (used when frames are given).
        min_track_s: tracklets shorter than this (after linking) are dropped as false positives.
        min_track_score: tracklets whose mean score is below this (after linking) are dropped.
        smooth_accel_std: process noise of the RTS smoother (box heights / s²); lower is smoother.
        smooth_size_accel_std: the same for width and height.
        smooth_noise_scales: per track, the smoother uses the multiple of the two above under which the track's
            observations are most likely (maximum likelihood over these candidates).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_iou: float = 0.2
    low_match_iou: float = 0.4
    recovery_iou: float = 0.3
    recent_first: bool = False
    recent_s: float = 0.15
    match_dist: float = 0.5
    direction_weight: float = 0.2
    direction_window_s: float = 0.3
    max_lost_s: float = 1.0
    max_live_tracks: int = 2000
    min_hits: int = 2
    accel_std: float = 1.0
    size_accel_std: float = 0.5
    meas_std: float = 0.1
    low_score_noise_gain: float = 2.0
    cmc: str = "flow"
    cmc_max_side: int = 480
    max_gap_s: float = 3.0
    fill_max_s: float = 0.5
    link_max_dist: float = 0.75
    link_dist_per_s: float = 0.75
    link_max_size_ratio: float = 1.6
    link_overlap_s: float = 0.5
    link_unmatched_cost: float = 1.0
    appearance_weight: float = 0.5
    min_track_s: float = 0.5
    min_track_score: float = 0.0
    smooth_accel_std: float = 4.0
    smooth_size_accel_std: float = 3.0
    smooth_noise_scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        for name in ("high_score", "low_score", "new_track_score", "match_iou", "low_match_iou", "recovery_iou"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InvalidInputError(f"TrackerConfig.{name}: expected a value in [0, 1], got {v}")
        if self.max_live_tracks < 1:
            raise InvalidInputError(f"TrackerConfig.max_live_tracks: expected >= 1, got {self.max_live_tracks}")
        if self.low_score > self.high_score:
            raise InvalidInputError(
                f"TrackerConfig: low_score ({self.low_score}) must not exceed high_score ({self.high_score})"
            )
        for name in (
            "direction_window_s",
            "max_lost_s",
            "accel_std",
            "size_accel_std",
            "meas_std",
            "max_gap_s",
            "fill_max_s",
            "link_max_dist",
            "min_track_s",
            "smooth_accel_std",
            "smooth_size_accel_std",
        ):
            v = getattr(self, name)
            if not v >= 0.0:
                raise InvalidInputError(f"TrackerConfig.{name}: expected a value >= 0, got {v}")
        if self.min_hits < 1:
            raise InvalidInputError(f"TrackerConfig.min_hits: expected >= 1, got {self.min_hits}")
        if self.cmc not in ("flow", "none"):
            raise InvalidInputError(f"TrackerConfig.cmc: expected 'flow' or 'none', got {self.cmc!r}")
        if not self.smooth_noise_scales or min(self.smooth_noise_scales) <= 0:
            raise InvalidInputError(
                f"TrackerConfig.smooth_noise_scales: expected positive values, got {self.smooth_noise_scales}"
            )
        if self.meas_std <= 0.0:
            raise InvalidInputError(f"TrackerConfig.meas_std: expected > 0, got {self.meas_std}")
