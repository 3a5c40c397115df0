"""Kinematic rules: per-frame class scores from motion features, no training needed.

Each class score is a product of soft thresholds ``sigmoid((x - threshold) / width)`` on features measured in torso
lengths and seconds (see :mod:`prelabel.actions.features`). The thresholds are written for people seen roughly
side-on or front-on by a static camera; they are a baseline that a trained model should beat, and a fallback that
always works. Classes of the taxonomy that the rules do not know score 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

from prelabel.actions.features import F32, MOTION_FEATURES
from prelabel.actions.taxonomy import Taxonomy

RULE_CLASSES: tuple[str, ...] = ("stand", "walk", "run", "jump", "squat", "bend", "fall", "wave")


def _sig(x: np.ndarray, threshold: float, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x - threshold) / width))


@dataclass(frozen=True)
class RuleThresholds:
    """Thresholds of the kinematic rules (torso lengths, seconds).

    Attributes:
        walk_speed: horizontal hip speed above which a person walks (torso lengths / s).
        run_speed: speed above which a person runs.
        jump_vel: upward and downward hip speed, both reached within +-``jump_window_s``, that mark a jump
            (torso lengths / s).
        jump_window_s: half-width of the window over which a take-off or landing marks the frames as a jump.
        jump_lift: ankle height above the local ground that marks a flight phase (torso lengths).
        squat_drop: hip drop below its typical height for a squat (torso lengths).
        squat_knee_cos: cos of the knee angle above which knees count as bent (-1 is straight).
        upright_cos: cos of the torso angle from vertical above which the torso counts as upright (0.6: 53 deg).
        fall_hip: hip height above the ground below which a leaning person counts as down (torso lengths).
        fall_aspect: width / height of the keypoints above which a person counts as lying.
        wave_up: height of the highest wrist above its shoulder for a wave (torso lengths).
    """

    walk_speed: float = 0.7
    run_speed: float = 3.6
    jump_vel: float = 2.0
    jump_window_s: float = 0.45
    jump_lift: float = 0.55
    squat_drop: float = 0.25
    squat_knee_cos: float = -0.65
    upright_cos: float = 0.6
    fall_hip: float = 1.2
    fall_aspect: float = 1.1
    wave_up: float = 0.4


def rule_scores(features: F32, taxonomy: Taxonomy, thresholds: RuleThresholds | None = None, fps: float = 30.0) -> F32:
    """Per-frame class scores from features.

    The body layer is decided in priority order fall > jump > bend > squat > run/walk/stand, each a soft
    threshold on posture and motion; a wave is a wrist well above its shoulder while upright and not jumping.

    Args:
        features: (T, F) from :func:`prelabel.actions.features.compute_features`.
        taxonomy: output columns follow ``taxonomy.names``.
        thresholds: rule parameters; defaults when None.
        fps: frame rate, for the jump window.

    Returns:
        (T, C) float32 scores in [0, 1]; the rule classes of the body layer sum to 1 per frame.
    """
    th = thresholds or RuleThresholds()
    f = {name: features[:, i].astype(np.float64) for i, name in enumerate(MOTION_FEATURES)}
    speed = f["speed_x"]
    upright = _sig(f["torso_cos"], th.upright_cos, 0.08)
    low = np.maximum(_sig(th.fall_hip - f["hip_above_ground"], 0.0, 0.15), _sig(f["aspect"], th.fall_aspect, 0.1))
    fall = (1.0 - upright) * low
    size = 2 * max(1, round(th.jump_window_s * fps)) + 1
    # A jump goes up and comes down within the window; a squat or a fall only goes down.
    rise = maximum_filter1d(f["vel_up"], size=size, mode="nearest")
    drop = maximum_filter1d(-f["vel_up"], size=size, mode="nearest")
    bounce = np.minimum(rise, drop)
    airborne = np.maximum(_sig(bounce, th.jump_vel, 0.3), _sig(f["feet_lift"], th.jump_lift, 0.08))
    jump = (1.0 - fall) * upright * airborne * (1.0 - _sig(speed, th.run_speed, 0.4))
    rest = (1.0 - fall) * (1.0 - jump)
    bend = rest * (1.0 - upright)
    crouched = _sig(f["knee_cos"], th.squat_knee_cos, 0.1) * _sig(-f["hip_drop"], th.squat_drop, 0.08)
    squat = rest * upright * crouched
    on_feet = rest * upright * (1.0 - crouched)
    moving = _sig(speed, th.walk_speed, 0.15)
    fast = _sig(speed, th.run_speed, 0.4)
    run = on_feet * moving * fast
    walk = on_feet * moving * (1.0 - fast)
    stand = on_feet * (1.0 - moving)
    wave = _sig(f["wrist_up"], th.wave_up, 0.1) * upright * (1.0 - jump) * (1.0 - fall)
    scores = {
        "stand": stand,
        "walk": walk,
        "run": run,
        "jump": jump,
        "squat": squat,
        "bend": bend,
        "fall": fall,
        "wave": wave,
    }
    out = np.zeros((len(features), len(taxonomy.names)), dtype=np.float32)
    for j, name in enumerate(taxonomy.names):
        if name in scores:
            out[:, j] = scores[name]
    return out
