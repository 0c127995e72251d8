"""Continuous-control tasks whose observation is an RGB image rendered in JAX (for DrQ-v2, DrM).

    env, params = envs.make("pixels/cartpole_swingup", image_size=84, frame_stack=3, action_repeat=2)
    obs, state = env.reset(key, params)       # obs: [84, 84, 9] uint8, last 3 frames, oldest first

Names: `pixels/pendulum_swingup`, `pixels/cartpole_swingup`, `pixels/point_mass_reach`,
`pixels/reacher` (DMC-style tasks of `envs.pixels.tasks`), and `pixels/brax_hopper`,
`pixels/brax_halfcheetah` (a side view of the brax env, `envs.pixels.brax_render`).
Keyword arguments: `image_size` (default 64, >= 32; 84 as DrQ-v2), `frame_stack` (3),
`action_repeat` (2), `max_steps_in_episode` in agent steps (default 1000 // action_repeat: DMC's
1000 control steps). Everything is jittable, vmappable and deterministic given the key.
"""
from __future__ import annotations

from envs.pixels.tasks import TASKS, PixelParams, PixelTask
from envs.pixels.wrappers import ActionRepeat, FrameStack, TimeLimit

BRAX_TASKS = ("hopper", "halfcheetah")
NAMES = tuple(f"pixels/{t}" for t in TASKS) + tuple(f"pixels/brax_{t}" for t in BRAX_TASKS)


def make_pixels(name: str, image_size: int = 64, frame_stack: int = 3, action_repeat: int = 2,
                max_steps_in_episode: int | None = None, **unknown):
    """`(env, params)` for a name in `NAMES` (without `EpisodeStats`; `envs.make` adds it)."""
    if unknown:
        raise ValueError(f"pixel env {name!r} has no parameter(s) {sorted(unknown)}; its parameters are "
                         "['action_repeat', 'frame_stack', 'image_size', 'max_steps_in_episode']")
    short = name[len("pixels/"):]
    if short.startswith("brax_") and short[len("brax_"):] in BRAX_TASKS:
        from brax import envs as brax_envs  # heavy import: only when asked
        from envs.pixels.brax_render import BraxPixels

        task = BraxPixels(brax_envs.get_environment(short[len("brax_"):]), name, image_size)
    elif short in TASKS:
        task = TASKS[short](image_size)
    else:
        raise ValueError(f"unknown pixel env {name!r}; known: {', '.join(NAMES)}")
    env = TimeLimit(FrameStack(ActionRepeat(task, action_repeat), frame_stack))
    if max_steps_in_episode is None:
        max_steps_in_episode = max(1, 1000 // action_repeat)
    if isinstance(max_steps_in_episode, bool) or not isinstance(max_steps_in_episode, int) or max_steps_in_episode < 1:
        raise ValueError(f"max_steps_in_episode must be an int >= 1, got {max_steps_in_episode!r}")
    return env, PixelParams(max_steps_in_episode=max_steps_in_episode)


__all__ = ["make_pixels", "NAMES", "TASKS", "PixelParams", "PixelTask", "ActionRepeat", "FrameStack", "TimeLimit"]
