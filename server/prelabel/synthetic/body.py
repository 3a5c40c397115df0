"""Articulated figures on the COCO-17 skeleton: per-action joint angles and forward kinematics.

A figure is described in its own body frame (units of its standing height, Y up, X towards the person's left, Z
forwards), posed by a small vector of joint angles, turned by a yaw about the vertical and projected orthographically
onto the image. Falls rotate the projected figure in the image plane about its feet, so a lying person stays visible.

Angles are radians; "forward" angles swing a limb from hanging straight down towards the person's front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prelabel.types import NUM_KEYPOINTS

FloatArray = npt.NDArray[np.float64]

ACTIONS: tuple[str, ...] = ("stand", "walk", "run", "jump", "squat", "bend", "fall", "wave")
"""Action labels the generator performs; segments use exactly these names."""

# Pose vector layout (all angles in radians, lengths in units of body height).
P_LEAN = 0  # torso pitch forward
P_HIP_L, P_KNEE_L, P_HIP_R, P_KNEE_R = 1, 2, 3, 4  # thigh forward swing, knee flexion
P_SH_L, P_EL_L, P_SH_R, P_EL_R = 5, 6, 7, 8  # upper-arm forward raise, elbow flexion
P_AB_L, P_AB_R = 9, 10  # arm abduction (sideways raise)
P_ELAT_L, P_ELAT_R = 11, 12  # forearm sideways bend (waving)
P_ROLL = 13  # image-plane rotation about the feet (falls), signed
P_LIFT = 14  # feet above the ground (jumps)
P_YAW = 15  # facing: 0 towards the camera, +pi/2 facing image right
NUM_PARAMS = 16

# Standing proportions (fractions of height).
SHIN, THIGH, TORSO, NECK_TO_NOSE = 0.24, 0.245, 0.30, 0.105
UPPER_ARM, FOREARM = 0.165, 0.16
SHOULDER_HALF, HIP_HALF = 0.105, 0.065
HEAD_RADIUS = 0.062
ANKLE_HEIGHT = 0.035


@dataclass(frozen=True)
class Posed:
    """A posed figure in image pixels.

    Attributes:
        keypoints: (17, 2) float64 image ``x, y`` of the COCO-17 keypoints.
        depth: (17,) float64 towards-the-camera depth of each keypoint (larger is nearer), for drawing order.
        head_center: (2,) float64 image centre of the head disc.
        head_radius: head radius in pixels.
    """

    keypoints: FloatArray
    depth: FloatArray
    head_center: FloatArray
    head_radius: float


def _rx(v: FloatArray, a: float) -> FloatArray:
    """Rotate 3-vector ``v`` about the X (lateral) axis by ``a`` (positive tips -Y towards +Z)."""
    c, s = math.cos(a), math.sin(a)
    x, y, z = v
    return np.array([x, y * c - z * s, y * s + z * c])


def _rz(v: FloatArray, a: float) -> FloatArray:
    """Rotate 3-vector ``v`` about the Z (forward) axis by ``a`` (positive tips -Y towards +X)."""
    c, s = math.cos(a), math.sin(a)
    x, y, z = v
    return np.array([x * c - y * s, x * s + y * c, z])


_DOWN = np.array([0.0, -1.0, 0.0])


def _limb(angle_fwd: float, angle_side: float) -> FloatArray:
    """Unit direction of a limb hanging down, swung forward by ``angle_fwd`` then sideways by ``angle_side``."""
    return _rz(_rx(_DOWN, -angle_fwd), angle_side)


def body_joints(p: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Forward kinematics in the body frame.

    Args:
        p: (NUM_PARAMS,) pose vector.

    Returns:
        ``(joints, head_center, lowest_y)``: (17, 3) joints with the pelvis at the origin, the (3,) head centre, and
        the lowest Y of the two ankles (minus the ankle height), used to put the feet on the ground.
    """
    j = np.zeros((NUM_KEYPOINTS, 3))
    lean = p[P_LEAN]
    up = np.array([0.0, math.cos(lean), math.sin(lean)])
    fwd = np.array([0.0, -math.sin(lean), math.cos(lean)])
    neck = TORSO * up
    j[5] = neck + np.array([SHOULDER_HALF, -0.01, 0.0])
    j[6] = neck + np.array([-SHOULDER_HALF, -0.01, 0.0])
    j[11] = np.array([HIP_HALF, 0.0, 0.0])
    j[12] = np.array([-HIP_HALF, 0.0, 0.0])
    nose = neck + NECK_TO_NOSE * up + 0.045 * fwd
    j[0] = nose
    j[1] = nose + np.array([0.024, 0.0, 0.0]) + 0.02 * up - 0.012 * fwd
    j[2] = nose + np.array([-0.024, 0.0, 0.0]) + 0.02 * up - 0.012 * fwd
    j[3] = nose + np.array([0.05, 0.0, 0.0]) + 0.008 * up - 0.05 * fwd
    j[4] = nose + np.array([-0.05, 0.0, 0.0]) + 0.008 * up - 0.05 * fwd
    head_center = nose - 0.04 * fwd + 0.012 * up
    # Legs: thigh swings forward by the hip angle, the shin folds back by the knee flexion.
    for hip_i, knee_i, ankle_i, ph, pk in ((11, 13, 15, P_HIP_L, P_KNEE_L), (12, 14, 16, P_HIP_R, P_KNEE_R)):
        j[knee_i] = j[hip_i] + THIGH * _limb(p[ph], 0.0)
        j[ankle_i] = j[knee_i] + SHIN * _limb(p[ph] - p[pk], 0.0)
    # Arms: forward raise + sideways abduction at the shoulder; elbow flexion forward, sideways bend for waves.
    for sh_i, el_i, wr_i, ps, pe, pa, pl, side in (
        (5, 7, 9, P_SH_L, P_EL_L, P_AB_L, P_ELAT_L, 1.0),
        (6, 8, 10, P_SH_R, P_EL_R, P_AB_R, P_ELAT_R, -1.0),
    ):
        j[el_i] = j[sh_i] + UPPER_ARM * _limb(p[ps], side * p[pa])
        j[wr_i] = j[el_i] + FOREARM * _limb(p[ps] + p[pe], side * (p[pa] + p[pl]))
    lowest = float(min(j[15, 1], j[16, 1])) - ANKLE_HEIGHT
    return j, head_center, lowest


def project(p: FloatArray, foot_xy: tuple[float, float], height_px: float) -> Posed:
    """Pose, turn and project a figure into the image.

    Args:
        p: (NUM_PARAMS,) pose vector.
        foot_xy: image position (pixels) of the point on the ground between the feet.
        height_px: standing height in pixels.

    Returns:
        The posed figure in image pixels.
    """
    joints, head, lowest = body_joints(p)
    yaw = p[P_YAW]
    c, s = math.cos(yaw), math.sin(yaw)

    def to_img(v: FloatArray) -> tuple[FloatArray, FloatArray]:
        v = np.atleast_2d(v)
        x = v[:, 0] * c + v[:, 2] * s
        depth = -v[:, 0] * s + v[:, 2] * c
        y = v[:, 1] - lowest + p[P_LIFT]
        return np.stack([x, y], axis=1), depth

    kp, depth = to_img(joints)
    hc, _ = to_img(head)
    roll = p[P_ROLL]
    if roll != 0.0:
        # Rotate about the feet (body origin on the ground) in the image plane.
        cr, sr = math.cos(roll), math.sin(roll)
        rot = np.array([[cr, -sr], [sr, cr]])
        kp = kp @ rot.T
        hc = hc @ rot.T
    fx, fy = foot_xy
    kp_img = np.stack([fx + kp[:, 0] * height_px, fy - kp[:, 1] * height_px], axis=1)
    hc_img = np.array([fx + hc[0, 0] * height_px, fy - hc[0, 1] * height_px])
    return Posed(kp_img, depth, hc_img, HEAD_RADIUS * height_px)


def smoothstep(x: float) -> float:
    """Hermite ease 3x^2 - 2x^3 of ``x`` clipped to [0, 1]."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class Style:
    """Per-person variation of how actions are performed (keeps squat, bend and fall overlapping in looks)."""

    squat_lean: float = 0.45
    squat_depth: float = 1.0
    bend_knee: float = 0.35
    bend_lean: float = 1.35
    fall_dir: float = 1.0
    wave_left: bool = False
    gait_phase: float = 0.0


def action_pose(action: str, t: float, style: Style, yaw: float) -> FloatArray:
    """Pose vector of ``action`` at ``t`` seconds after it started.

    Args:
        action: one of :data:`ACTIONS`.
        t: seconds since the action started (>= 0).
        style: the person's way of moving.
        yaw: facing angle (radians) for this action.

    Returns:
        (NUM_PARAMS,) float64 pose vector.
    """
    p = np.zeros(NUM_PARAMS)
    p[P_YAW] = yaw
    p[P_AB_L] = p[P_AB_R] = 0.12
    p[P_EL_L] = p[P_EL_R] = 0.15
    two_pi = 2.0 * math.pi
    if action == "stand":
        sway = 0.04 * math.sin(two_pi * 0.4 * t + style.gait_phase)
        p[P_SH_L], p[P_SH_R] = sway, -sway
    elif action in ("walk", "run"):
        run = action == "run"
        freq, amp = (1.45, 0.75) if run else (0.95, 0.4)
        ph = two_pi * freq * t + style.gait_phase
        sw = math.sin(ph)
        p[P_HIP_L], p[P_HIP_R] = amp * sw, -amp * sw
        p[P_KNEE_L] = (1.5 if run else 0.6) * max(0.0, math.sin(ph + math.pi / 2)) + 0.1
        p[P_KNEE_R] = (1.5 if run else 0.6) * max(0.0, math.sin(ph - math.pi / 2)) + 0.1
        p[P_SH_L], p[P_SH_R] = -(1.2 * amp) * sw, (1.2 * amp) * sw
        p[P_EL_L] = p[P_EL_R] = 1.5 if run else 0.3
        p[P_LEAN] = 0.25 if run else 0.05
        p[P_LIFT] = 0.04 * abs(math.sin(ph)) if run else 0.0
    elif action == "jump":
        period = 0.9
        u = (t % period) / period
        if u < 0.3:  # crouch
            c = smoothstep(u / 0.3)
            p[P_HIP_L] = p[P_HIP_R] = 0.7 * c
            p[P_KNEE_L] = p[P_KNEE_R] = 1.3 * c
            p[P_LEAN] = 0.4 * c
            p[P_SH_L] = p[P_SH_R] = -0.6 * c
        elif u < 0.75:  # flight, parabola
            f = (u - 0.3) / 0.45
            p[P_LIFT] = 0.3 * 4.0 * f * (1.0 - f)
            p[P_HIP_L] = p[P_HIP_R] = 0.15
            p[P_KNEE_L] = p[P_KNEE_R] = 0.3
            p[P_SH_L] = p[P_SH_R] = 2.7
            p[P_LEAN] = 0.05
        else:  # land
            c = 1.0 - smoothstep((u - 0.75) / 0.25)
            p[P_HIP_L] = p[P_HIP_R] = 0.5 * c
            p[P_KNEE_L] = p[P_KNEE_R] = 0.9 * c
            p[P_LEAN] = 0.3 * c
    elif action == "squat":
        c = smoothstep(t / 0.6) * style.squat_depth
        p[P_HIP_L] = p[P_HIP_R] = 1.45 * c
        p[P_KNEE_L] = p[P_KNEE_R] = 2.3 * c
        p[P_LEAN] = style.squat_lean * c
        p[P_SH_L] = p[P_SH_R] = 1.1 * c
        p[P_EL_L] = p[P_EL_R] = 0.3 + 0.6 * c
    elif action == "bend":
        c = smoothstep(t / 0.6)
        p[P_LEAN] = style.bend_lean * c
        p[P_HIP_L] = p[P_HIP_R] = 0.25 * style.bend_knee * c
        p[P_KNEE_L] = p[P_KNEE_R] = style.bend_knee * c
        p[P_SH_L] = p[P_SH_R] = 0.45 * c
        p[P_EL_L] = p[P_EL_R] = 0.2 + 0.3 * c
        # Hands working at the shoes.
        p[P_EL_L] += 0.15 * math.sin(two_pi * 2.0 * t) * c
    elif action == "fall":
        c = min(1.0, t / 0.55) ** 2
        p[P_ROLL] = style.fall_dir * 1.45 * c
        p[P_KNEE_L], p[P_KNEE_R] = 0.5 * c, 0.2 * c
        p[P_HIP_L] = 0.3 * c
        p[P_SH_L] = p[P_SH_R] = 1.3 * c
        p[P_AB_L] = p[P_AB_R] = 0.12 + 0.6 * c
        p[P_LEAN] = 0.25 * c
    elif action == "wave":
        c = smoothstep(t / 0.35)
        osc = 0.5 * math.sin(two_pi * 2.2 * t)
        ab, lat = (P_AB_L, P_ELAT_L) if style.wave_left else (P_AB_R, P_ELAT_R)
        p[ab] = 0.12 + 2.3 * c
        p[lat] = (0.6 + osc) * c
    else:
        raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
    return p


MOVING_SPEED: dict[str, float] = {"walk": 0.75, "run": 2.4, "jump": 0.25}
"""Ground speed of each moving action, in body heights per second (others stand still)."""
