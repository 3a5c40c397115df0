"""Kinematic rules: per-frame class scores from motion features, no training needed.

Each class score is a product of soft thresholds ``sigmoid((x - threshold) / width)`` on features measured in torso
lengths and seconds (see :mod:`prelabel.actions.features`). The thresholds are written for people seen roughly
side-on or front-on by a static camera; they are a baseline that a trained model should beat, and a fallback that
always works. Classes of the taxonomy that the rules do not know score 0.

A threshold on a posture is crossed halfway through the movement into it, so each posture's evidence is then
carried back through the frames where the body was already moving toward it (:func:`extend_back`): a fall starts at
the loss of balance, a squat at the first lowering of the hips, standing up at the first rise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.special import expit

from prelabel.actions.features import F32, F64, FEATURE_NAMES, L_AN, L_SH, MOTION_FEATURES, R_AN, R_SH
from prelabel.actions.taxonomy import Taxonomy

RULE_CLASSES: tuple[str, ...] = ("stand", "walk", "run", "jump", "squat", "bend", "fall", "wave")


def _sig(x: np.ndarray, threshold: float, width: float) -> np.ndarray:
    return np.asarray(expit((x - threshold) / width), dtype=np.float64)


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
        squat_deep_drop: hip drop that alone makes an upright person a squat, whatever the knees look like.
        squat_hip: hip height above the ground (torso lengths) below which an upright person squats (standing
            hips are about 1.9 torso lengths up).
        squat_knee_cos: cos of the knee angle above which knees count as bent (-1 is straight).
        upright_cos: vertical extent of the torso (torso lengths; the cos of its lean in side view) above which the
            torso counts as upright (0.6: 53 deg).
        fall_hip: hip height above the ground below which a leaning person counts as down (torso lengths).
        floor_hip: hip height above the ground (torso lengths) below which a person is down whatever the torso's
            angle (squatting hips stay above about 0.8).
        fall_aspect: width / height of the keypoints above which a person counts as lying.
        wave_up: height of the highest wrist above its shoulder for a wave (torso lengths).
        onset_tilt_rate: torso tilt rate (rad / s) above which a person counts as leaning into a bend or fall.
        onset_drop_rate: downward hip speed (torso lengths / s) above which a person counts as going down.
        onset_rise_rate: upward hip speed or untilt rate above which a person counts as getting up.
        onset_wrist_rate: upward wrist speed (torso lengths / s) above which an arm counts as rising into a wave.
        onset_max_s: longest stretch (s) a boundary moves back to the onset of the movement that leads into it.
    """

    walk_speed: float = 0.7
    run_speed: float = 3.6
    jump_vel: float = 2.0
    jump_window_s: float = 0.45
    jump_lift: float = 0.55
    squat_drop: float = 0.25
    squat_deep_drop: float = 0.5
    squat_hip: float = 1.42
    squat_knee_cos: float = -0.65
    upright_cos: float = 0.6
    fall_hip: float = 1.2
    floor_hip: float = 0.65
    fall_aspect: float = 1.1
    wave_up: float = 0.4
    onset_tilt_rate: float = 0.3
    onset_drop_rate: float = 0.25
    onset_rise_rate: float = 1.2
    onset_wrist_rate: float = 1.0
    onset_max_s: float = 0.6


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
    speed = travel_speed(features, fps)
    upright = _sig(torso_vertical(features), th.upright_cos, 0.08)
    low = np.maximum(_sig(th.fall_hip - f["hip_above_ground"], 0.0, 0.15), _sig(f["aspect"], th.fall_aspect, 0.1))
    # Hips near the floor are a fall even when the torso looks upright (a fall toward or away from the camera).
    fall = np.maximum((1.0 - upright) * low, _sig(th.floor_hip - f["hip_above_ground"], 0.0, 0.06))
    size = 2 * max(1, round(th.jump_window_s * fps)) + 1
    # A jump goes up and comes down within the window; a squat or a fall only goes down.
    rise = maximum_filter1d(f["vel_up"], size=size, mode="nearest")
    drop = maximum_filter1d(-f["vel_up"], size=size, mode="nearest")
    bounce = np.minimum(rise, drop)
    # A bounce only counts near a flight phase (feet off the ground), so a quick squat is not a jump.
    lift_near = maximum_filter1d(f["feet_lift"], size=size, mode="nearest")
    airborne = np.maximum(
        _sig(bounce, th.jump_vel, 0.3) * _sig(lift_near, th.jump_lift, 0.08), _sig(f["feet_lift"], th.jump_lift, 0.08)
    )
    jump = (1.0 - fall) * upright * airborne * (1.0 - _sig(speed, th.run_speed, 0.4))
    rest = (1.0 - fall) * (1.0 - jump)
    bend = rest * (1.0 - upright)
    crouched = np.max(
        [
            _sig(f["knee_cos"], th.squat_knee_cos, 0.1) * _sig(-f["hip_drop"], th.squat_drop, 0.08),
            _sig(-f["hip_drop"], th.squat_deep_drop, 0.08),
            _sig(th.squat_hip - f["hip_above_ground"], 0.0, 0.08) * (1.0 - _sig(speed, th.run_speed, 0.4)),
        ],
        axis=0,
    )
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
    _move_onsets(scores, features, f, th, fps)
    out = np.zeros((len(features), len(taxonomy.names)), dtype=np.float32)
    for j, name in enumerate(taxonomy.names):
        if name in scores:
            out[:, j] = scores[name]
    return out


def torso_vertical(features: F32) -> F64:
    """(T,) height of the shoulder centre above the hip centre, in torso lengths (1 upright, 0 horizontal).

    Unlike the torso's angle in the image this also drops when a person leans toward or away from the camera
    (the torso is foreshortened instead of tilted).
    """
    cols = [FEATURE_NAMES.index(f"y_{k}") for k in (L_SH, R_SH)]
    return -features[:, cols].astype(np.float64).mean(axis=1)


def travel_speed(features: F32, fps: float, rate_gate: float = 1.0) -> F64:
    """(T,) how fast the feet travel, torso lengths / s.

    The hip's horizontal speed, less the speed of the ankles' mean position relative to the hip while the body
    changes posture (hips moving up or down, or the torso tilting, faster than ``rate_gate`` per second): when the
    feet stay put while the body swings over them (falling, getting up) the two cancel. In steady gaits the hip
    speed is used as is, since the legs' swing would otherwise be subtracted from it.
    """
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    rel_x = features[:, [col[f"x_{L_AN}"], col[f"x_{R_AN}"]]].astype(np.float64).mean(axis=1)
    rel_speed = np.abs(_rate(rel_x, fps, 0.25))
    tilt = np.arccos(np.clip(torso_vertical(features), -1.0, 1.0))
    change = np.maximum(
        np.abs(_rate(features[:, col["hip_drop"]].astype(np.float64), fps, 0.25)), np.abs(_rate(tilt, fps, 0.25))
    )
    gate = _sig(change, rate_gate, 0.25 * rate_gate)
    return np.maximum(features[:, col["speed_x"]].astype(np.float64) - gate * rel_speed, 0.0)


BODY_CLASSES: tuple[str, ...] = ("stand", "walk", "run", "jump", "squat", "bend", "fall")


def _rate(x: F64, fps: float, seconds: float = 0.1) -> F64:
    """Central-difference rate of change of ``x`` per second over +-``seconds`` (indices clipped at the ends)."""
    k = max(1, round(seconds * fps))
    n = len(x)
    hi = np.minimum(np.arange(n) + k, n - 1)
    lo = np.maximum(np.arange(n) - k, 0)
    span = np.maximum(hi - lo, 1) / fps
    return (x[hi] - x[lo]) / span


def extend_back(score: F64, moving: F64, max_frames: int) -> F64:
    """Carry a class's evidence back in time through frames where the body moves toward that class.

    ``out[t] = max(score[t], moving[t] * out[t + 1])`` for at most ``max_frames`` consecutive carried frames:
    a posture is reported from the onset of the movement into it (the loss of balance, the first lowering of the
    hips) instead of from the moment a threshold on the posture is crossed, which lags by half the movement.

    Args:
        score: (T,) class evidence in [0, 1].
        moving: (T,) degree in [0, 1] to which the body moves toward the class at each frame.
        max_frames: cap on how far a boundary moves back.

    Returns:
        (T,) float64 evidence, >= ``score`` everywhere.
    """
    out = np.asarray(score, dtype=np.float64).copy()
    carried_run = 0
    for t in range(len(out) - 2, -1, -1):
        carried = float(moving[t]) * out[t + 1]
        if carried > out[t] and carried_run < max_frames:
            out[t] = carried
            carried_run += 1
        else:
            carried_run = 0
    return out


def _move_onsets(scores: dict[str, F64], features: F32, f: dict[str, F64], th: RuleThresholds, fps: float) -> None:
    """Move posture boundaries back to the onset of the movement (in place; body classes renormalised).

    Going down (squat, bend, fall) starts when the hips start to drop or the torso starts to tilt; getting up
    (back to stand, walk or run) starts when the hips start to rise or the torso to straighten; a wave starts
    when the arm starts to rise.
    """
    tilt = np.arccos(np.clip(torso_vertical(features), -1.0, 1.0))
    tilt_rate = uniform_filter1d(_rate(tilt, fps), size=max(1, round(0.1 * fps)) | 1, mode="nearest")
    tilting = _sig(tilt_rate, th.onset_tilt_rate, 0.25 * th.onset_tilt_rate)
    straightening = _sig(-tilt_rate, th.onset_rise_rate, 0.25 * th.onset_rise_rate)
    hip_rate = uniform_filter1d(_rate(f["hip_drop"], fps), size=max(1, round(0.1 * fps)) | 1, mode="nearest")
    dropping = _sig(-hip_rate, th.onset_drop_rate, 0.25 * th.onset_drop_rate)
    rising = _sig(hip_rate, th.onset_rise_rate, 0.25 * th.onset_rise_rate)
    arm_up = _sig(_rate(f["wrist_up"], fps), th.onset_wrist_rate, 0.25 * th.onset_wrist_rate)
    cap = max(1, round(th.onset_max_s * fps))
    toward = {
        "fall": np.maximum(tilting, dropping),
        "bend": tilting,
        "squat": dropping,
        "stand": np.maximum(rising, straightening),
        "walk": np.maximum(rising, straightening),
        "run": np.maximum(rising, straightening),
    }
    for name, moving in toward.items():
        ext = extend_back(scores[name], moving, cap)
        gain = np.clip(ext - scores[name], 0.0, 1.0)
        for other in BODY_CLASSES:
            if other != name:
                scores[other] = scores[other] * (1.0 - gain)
        scores[name] = ext
        total = np.maximum(sum(scores[c] for c in BODY_CLASSES), 1e-9)
        for c in BODY_CLASSES:
            scores[c] = scores[c] / total
    scores["wave"] = extend_back(scores["wave"], arm_up, cap)
