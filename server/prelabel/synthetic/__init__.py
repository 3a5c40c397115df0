"""Synthetic scenes with exact ground truth: articulated people on the COCO-17 skeleton performing actions, thrown
balls, occluders, camera motion, lighting changes and variable frame rates.

Public API::

    from prelabel.synthetic import generate, write_scene, load_scene, PRESETS, Scene
"""

from __future__ import annotations

from prelabel.synthetic.body import ACTIONS
from prelabel.synthetic.io import load_scene, write_scene
from prelabel.synthetic.presets import PRESETS, Preset
from prelabel.synthetic.scene import CLASS_NAMES, Scene, generate

__all__ = ["ACTIONS", "CLASS_NAMES", "PRESETS", "Preset", "Scene", "generate", "load_scene", "write_scene"]
