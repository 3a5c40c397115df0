"""Scene presets, each named for what it tests."""

from __future__ import annotations

from dataclasses import dataclass

from prelabel.synthetic.body import ACTIONS


@dataclass(frozen=True)
class Preset:
    """How to draw a random scene. Ranges are inclusive ``(low, high)``; a seed picks values inside them.

    Attributes:
        name: preset name.
        description: what the preset tests.
        width, height: frame size in pixels.
        num_frames: clip length in frames.
        fps_range: nominal frame rate range (frames per second); one value is drawn per scene.
        variable_frame_rate: per-frame intervals jitter around the nominal rate.
        people: number of people.
        balls: number of thrown balls.
        actions: actions people choose from.
        action_seconds: duration range of one action.
        speed_scale: multiplier on walking/running speeds.
        height_frac: person standing height as a fraction of the frame height.
        occluders: number of static occluders (posts, walls, bushes).
        enter_exit: probability that a person starts outside the frame and walks through it.
        pan_px_s: maximum camera pan speed, pixels per second.
        shake_px: camera shake amplitude in pixels.
        zoom: camera zoom amplitude (0.2 zooms between 1/1.2 and 1.2).
        lighting: amplitude of brightness changes (0 none, 0.5 strong).
        motion_blur: blur fast objects along their motion.
        ball_speed: ball launch speed range, pixels per second at 30 fps scale (times frame width / 640).
    """

    name: str
    description: str
    width: int = 640
    height: int = 360
    num_frames: int = 200
    fps_range: tuple[float, float] = (30.0, 30.0)
    variable_frame_rate: bool = False
    people: tuple[int, int] = (3, 6)
    balls: tuple[int, int] = (0, 1)
    actions: tuple[str, ...] = ACTIONS
    action_seconds: tuple[float, float] = (1.2, 3.0)
    speed_scale: float = 1.0
    height_frac: tuple[float, float] = (0.22, 0.6)
    occluders: tuple[int, int] = (0, 1)
    enter_exit: float = 0.2
    pan_px_s: float = 0.0
    shake_px: float = 0.0
    zoom: float = 0.0
    lighting: float = 0.1
    motion_blur: bool = True
    ball_speed: tuple[float, float] = (250.0, 600.0)


def _presets() -> dict[str, Preset]:
    items = [
        Preset("default", "A bit of everything at moderate settings: a few people, actions, maybe a ball."),
        Preset(
            "fast-motion",
            "Very fast people and balls at low frame rates (more than half a box width per frame), motion blur.",
            fps_range=(10.0, 15.0),
            people=(2, 4),
            balls=(1, 2),
            actions=("run", "run", "jump", "walk"),
            speed_scale=2.5,
            height_frac=(0.3, 0.6),
            enter_exit=0.5,
            ball_speed=(700.0, 1200.0),
        ),
        Preset(
            "crowd",
            "Many people (10 to 15) walking across each other: crossings and mutual occlusion.",
            people=(10, 15),
            balls=(0, 0),
            actions=("walk", "walk", "walk", "stand", "run", "wave"),
            height_frac=(0.2, 0.5),
            enter_exit=0.5,
        ),
        Preset(
            "actions",
            "People performing all actions, with squat, bend and fall in every scene; static camera.",
            people=(2, 4),
            balls=(0, 0),
            action_seconds=(1.0, 2.2),
            height_frac=(0.4, 0.75),
            occluders=(0, 0),
            enter_exit=0.0,
            lighting=0.0,
        ),
        Preset(
            "occlusion",
            "People passing behind static occluders and each other.",
            people=(4, 8),
            balls=(0, 1),
            actions=("walk", "walk", "run", "stand"),
            occluders=(2, 4),
            enter_exit=0.4,
        ),
        Preset(
            "camera-motion",
            "Camera pan, shake and zoom over a textured background.",
            people=(3, 6),
            pan_px_s=80.0,
            shake_px=6.0,
            zoom=0.25,
        ),
        Preset(
            "ball",
            "Thrown balls: ballistic flight, bounces, sudden direction changes.",
            people=(1, 3),
            balls=(1, 3),
            ball_speed=(350.0, 900.0),
        ),
        Preset(
            "vfr",
            "Variable frame rate: per-frame intervals jitter between 0.5x and 1.5x the nominal interval.",
            fps_range=(10.0, 60.0),
            variable_frame_rate=True,
        ),
        Preset(
            "lighting",
            "Strong lighting changes (fades and flicker).",
            lighting=0.5,
        ),
        Preset(
            "mixed",
            "Randomised mixture of everything (training data): 1 to 15 people, 10 to 60 fps, camera motion.",
            fps_range=(10.0, 60.0),
            people=(1, 15),
            balls=(0, 3),
            height_frac=(0.18, 0.75),
            occluders=(0, 3),
            enter_exit=0.4,
            pan_px_s=60.0,
            shake_px=4.0,
            zoom=0.2,
            lighting=0.35,
            speed_scale=1.5,
            ball_speed=(250.0, 1100.0),
        ),
    ]
    return {p.name: p for p in items}


PRESETS: dict[str, Preset] = _presets()
"""Presets by name."""
