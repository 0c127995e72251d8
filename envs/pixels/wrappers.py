"""Action repeat, frame stack and time limit for the pixel tasks (layers of the `envs` interface).

The layers stack as `TimeLimit(FrameStack(ActionRepeat(task, k), n), max_steps)`, and `envs.make`
adds `EpisodeStats` and the auto-reset on top:

- `ActionRepeat(env, k)`: one agent step = k control steps with the same action; the reward is
  their sum, and the steps after a terminal within the k are skipped. Only the last control step
  is drawn (the inner env provides `transition_state` and `observe` apart).
- `FrameStack(env, n)`: the observation is the last n frames concatenated along the channels
  ([H, W, 3n] uint8, oldest first); a reset repeats its first frame n times.
- `TimeLimit(env)`: truncates after `params.max_steps_in_episode` agent steps.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from envs.wrappers import Wrapper


def _check_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


class ActionRepeat(Wrapper):
    def __init__(self, env, repeat: int):
        _check_int("action_repeat", repeat)
        super().__init__(env)
        self.repeat = repeat

    def transition_state(self, key, state, action, params=None):
        reward = jnp.float32(0.0)
        terminated = jnp.bool_(False)
        for k in jax.random.split(key, self.repeat):
            new, r, term = self._env.transition_state(k, state, action, params)
            state = jax.tree.map(lambda a, b: jnp.where(terminated, a, b), state, new)
            reward = reward + jnp.where(terminated, 0.0, r)
            terminated = jnp.logical_or(terminated, term)
        return state, reward, terminated

    def observe(self, state, params=None):
        return self._env.observe(state, params)

    def transition(self, key, state, action, params=None):
        state, reward, terminated = self.transition_state(key, state, action, params)
        return self.observe(state, params), state, reward, terminated, jnp.bool_(False), {}


@struct.dataclass
class FrameStackState:
    env_state: Any
    frames: jax.Array


class FrameStack(Wrapper):
    def __init__(self, env, num_frames: int):
        _check_int("frame_stack", num_frames)
        super().__init__(env)
        self.num_frames = num_frames

    def observation_space(self, params=None):
        h, w, c = self._env.observation_space(params).shape
        return spaces.Box(0, 255, (h, w, c * self.num_frames), jnp.uint8)

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        frames = jnp.concatenate([obs] * self.num_frames, -1)
        return frames, FrameStackState(state, frames)

    def transition(self, key, state, action, params=None):
        obs, env_state, reward, term, trunc, info = self._env.transition(key, state.env_state, action, params)
        frames = jnp.concatenate([state.frames[..., obs.shape[-1]:], obs], -1)
        return frames, FrameStackState(env_state, frames), reward, term, trunc, info


@struct.dataclass
class TimeLimitState:
    env_state: Any
    time: jax.Array


class TimeLimit(Wrapper):
    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return obs, TimeLimitState(state, jnp.int32(0))

    def transition(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        obs, env_state, reward, term, trunc, info = self._env.transition(key, state.env_state, action, params)
        time = state.time + 1
        trunc = jnp.logical_or(trunc, time >= params.max_steps_in_episode)
        return obs, TimeLimitState(env_state, time), reward, term, trunc, info
