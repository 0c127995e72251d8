"""`envs.make(name, **kwargs) -> (env, params)`: one factory for every environment jaxrl runs.

- gymnax names as gymnax registers them: `CartPole-v1`, `Pendulum-v1`, `Acrobot-v1`,
  `Breakout-MinAtar`, ... Keyword arguments override fields of the env's params
  (e.g. `max_steps_in_episode=200`, or `gravity=12.0` for CartPole).
- brax names as `brax/<name>` (`brax/hopper`, `brax/ant`, ...). Keyword arguments go to the brax
  env's constructor, except `max_steps_in_episode` (the time limit, default 1000).
- pixel names as `pixels/<task>` (`pixels/cartpole_swingup`, ..., `pixels/brax_hopper`): image
  observations rendered in JAX, see `envs.pixels` (keywords `image_size`, `frame_stack`,
  `action_repeat`, `max_steps_in_episode`).

Every env comes wrapped in `EpisodeStats` unless `episode_stats=False`. To step a batch of copies,
wrap it in `envs.VecEnv`: one reset per batch step, only when some copy's episode ended.
"""
from __future__ import annotations

import dataclasses
import difflib

import gymnax

from envs.wrappers import BraxParams, BraxToGymnax, EpisodeStats, GymnaxEnv

BRAX_ENVS = (
    "ant", "fast", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_pendulum",
    "inverted_double_pendulum", "pusher", "reacher", "swimmer", "walker2d",
)


def registered() -> list[str]:
    """All names `make` accepts."""
    from envs.pixels import NAMES as PIXEL_ENVS

    return list(gymnax.registered_envs) + [f"brax/{n}" for n in BRAX_ENVS] + list(PIXEL_ENVS)


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, registered(), n=5, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"unknown env {name!r}.{hint} Known envs: {', '.join(registered())}."
    )


def _override(params, name: str, kwargs: dict):
    fields = {f.name for f in dataclasses.fields(params)}
    bad = sorted(set(kwargs) - fields)
    if bad:
        raise ValueError(
            f"env {name!r} has no parameter(s) {bad}; its parameters are {sorted(fields)}"
        )
    return params.replace(**kwargs)


def make(name: str, *, episode_stats: bool = True, **kwargs):
    """Build env `name`; returns `(env, params)` in the gymnax interface."""
    if not isinstance(name, str):
        raise ValueError(f"env name must be a string, got {name!r}")
    if name.startswith("brax/"):
        short = name[len("brax/"):]
        if short not in BRAX_ENVS:
            raise _unknown(name)
        from brax import envs as brax_envs  # heavy import (mujoco): only when asked

        max_steps = int(kwargs.pop("max_steps_in_episode", 1000))
        if max_steps <= 0:
            raise ValueError(f"max_steps_in_episode must be > 0, got {max_steps}")
        env = BraxToGymnax(brax_envs.get_environment(short, **kwargs), name)
        params = BraxParams(max_steps_in_episode=max_steps)
    elif name.startswith("pixels/"):
        from envs.pixels import NAMES as PIXEL_ENVS, make_pixels

        if name not in PIXEL_ENVS:
            raise _unknown(name)
        env, params = make_pixels(name, **kwargs)
    elif name in gymnax.registered_envs:
        env, params = gymnax.make(name)
        env = GymnaxEnv(env)
        params = _override(params, name, kwargs)
    else:
        raise _unknown(name)
    if episode_stats:
        env = EpisodeStats(env)
    return env, params


def is_discrete(env, params) -> bool:
    """True when the env's action space is a finite set of integers."""
    from gymnax.environments import spaces

    return isinstance(env.action_space(params), spaces.Discrete)
