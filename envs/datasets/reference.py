"""D4RL's reference returns (the random and expert scores of `d4rl/infos.py`, whose v0 values D4RL
reuses for v1 and v2) and the brax env that stands in for each D4RL MuJoCo task.

    reference_scores("hopper-medium-v2")   # (-20.272305, 3234.3)
    d4rl_name_parts("halfcheetah_medium_expert-v2.hdf5")  # ("halfcheetah", "medium-expert", "v2")
    BRAX_EQUIVALENT["hopper"]              # "brax/hopper"

A D4RL locomotion file evaluated in brax is scored with these references, but brax's dynamics,
contact model and reward terms differ from gym MuJoCo's, so such scores are labelled approximate.
"""
from __future__ import annotations

import os
import re

# task -> (random return, expert return), as d4rl/infos.py lists them
D4RL_REFERENCE: dict[str, tuple[float, float]] = {
    # gym MuJoCo locomotion
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
    # Adroit
    "pen": (96.262799, 3076.8331017826877),
    "hammer": (-274.856578, 12794.134825156867),
    "door": (-56.512833, 2880.5693087298737),
    "relocate": (-6.425911, 4233.877797728884),
    # Maze2D
    "maze2d-open": (0.01, 20.66),
    "maze2d-umaze": (23.85, 161.86),
    "maze2d-medium": (13.13, 277.39),
    "maze2d-large": (6.7, 273.99),
    # AntMaze and Kitchen (success counts)
    "antmaze-umaze": (0.0, 1.0),
    "antmaze-medium": (0.0, 1.0),
    "antmaze-large": (0.0, 1.0),
    "kitchen": (0.0, 4.0),
}

# D4RL task -> the brax env with the same observation and action layout (checked at load time).
# Ant is absent on purpose: D4RL's ant observes 111 numbers (with contact forces), brax's 27.
BRAX_EQUIVALENT: dict[str, str] = {
    "halfcheetah": "brax/halfcheetah",
    "hopper": "brax/hopper",
    "walker2d": "brax/walker2d",
}


def d4rl_name_parts(name: str) -> tuple[str, str, str] | None:
    """(task, level, version) of a D4RL dataset name or file name ("hopper-medium-v2",
    "halfcheetah_medium_expert-v2.hdf5"); None if it does not look like one."""
    base = os.path.basename(str(name))
    base = re.sub(r"\.(hdf5|h5|npz)$", "", base).replace("_", "-").lower()
    for task in sorted(D4RL_REFERENCE, key=len, reverse=True):
        if base == task or base.startswith(task + "-"):
            rest = base[len(task) + 1:]
            m = re.match(r"^(?P<level>.*?)(?:-?(?P<version>v\d+))?$", rest)
            level = m.group("level").strip("-") if m else rest
            return task, level, (m.group("version") or "") if m else ""
    return None


def reference_scores(name: str) -> tuple[float, float] | None:
    """D4RL's (random, expert) reference returns for a dataset or task name; None if unknown."""
    parts = d4rl_name_parts(name)
    return None if parts is None else D4RL_REFERENCE[parts[0]]


def normalized_score(returns, ref_min: float, ref_max: float):
    """100 (R - ref_min) / (ref_max - ref_min), as D4RL's get_normalized_score (times 100)."""
    return 100.0 * (returns - ref_min) / (ref_max - ref_min)
