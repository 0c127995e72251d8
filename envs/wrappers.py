"""Wrappers over the gymnax functional interface.

Every environment in jaxrl speaks gymnax 1.0's interface:

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

`step` auto-resets: when `terminated | truncated`, the returned `obs`/`state` already belong to
the next episode and `info["final_observation"]` holds the last observation of the finished one
(needed to bootstrap a truncated episode correctly). We keep terminal and truncation apart instead
of gymnax 0.0.x's single `done` because bootstrapping differs between them.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces


class Wrapper:
    """Forwards everything to the wrapped env; subclasses override `reset`/`step`."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    @property
    def unwrapped(self):
        return getattr(self._env, "unwrapped", self._env)


@struct.dataclass
class EpisodeStatsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStats(Wrapper):
    """Tracks undiscounted episode return and length of the raw reward.

    Adds to `info`: `episode_return` and `episode_length` (of the episode that ended at this step,
    valid where `episode_done`), and `episode_done` (= terminated | truncated).
    """

    def reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        return obs, EpisodeStatsState(env_state, jnp.float32(0.0), jnp.int32(0))

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        ret = state.episode_return + jnp.asarray(reward, jnp.float32)
        length = state.episode_length + 1
        info = {**info, "episode_return": ret, "episode_length": length, "episode_done": done}
        new_state = EpisodeStatsState(
            env_state, jnp.where(done, 0.0, ret), jnp.where(done, 0, length)
        )
        return obs, new_state, reward, terminated, truncated, info


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxState:
    brax_state: Any
    time: jax.Array


def _strong(tree):
    """Drop JAX's weak types (brax leaves some metrics weakly typed after a step), so the env
    state keeps one type across steps and a training carry does not trigger a recompile.
    Python scalars among the leaves become arrays of their default dtype."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)), tree)


class BraxToGymnax:
    """Adapts a brax `Env` (`reset(rng)`, `step(state, action)`) to the gymnax interface.

    Adds a time limit (truncation) and auto-reset; brax's own `done` is the natural terminal.
    Actions live in [-1, 1]^action_size, as brax expects.
    """

    def __init__(self, brax_env, name: str):
        self._env = brax_env
        self.name = name

    @property
    def unwrapped(self):
        return self

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self._env.observation_size,), jnp.float32)

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._env.action_size,), jnp.float32)

    def reset(self, key, params=None):
        s = _strong(self._env.reset(key))
        return s.obs, BraxState(s, jnp.int32(0))

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        s = _strong(self._env.step(state.brax_state, action))
        time = state.time + 1
        terminated = s.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, ~terminated)
        done = jnp.logical_or(terminated, truncated)
        s0 = _strong(self._env.reset(key))
        # brax's step keeps per-step info keys that reset may lack; reset only the common tree.
        s0 = s0.replace(metrics=s.metrics, info=s.info)
        new = jax.tree.map(lambda a, b: jnp.where(done, a, b), s0, s)
        info = {"final_observation": s.obs, "terminated": terminated, "truncated": truncated}
        return (
            new.obs,
            BraxState(new, jnp.where(done, 0, time)),
            jnp.asarray(s.reward, jnp.float32),
            terminated,
            truncated,
            info,
        )
