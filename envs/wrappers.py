"""Wrappers over the gymnax functional interface.

Every environment in jaxrl speaks gymnax 1.0's interface:

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

`step` auto-resets: when `terminated | truncated`, the returned `obs`/`state` already belong to
the next episode and `info["final_observation"]` holds the last observation of the finished one
(needed to bootstrap a truncated episode correctly). We keep terminal and truncation apart instead
of gymnax 0.0.x's single `done` because bootstrapping differs between them.

Each layer defines `reset` and `transition` (one step *without* auto-reset); `step` is built from
the two in one place, `auto_reset_step`, exactly as gymnax's own `step` does it (the key splits into
a step key and a reset key), except that on a CPU the reset is computed only when an episode ended
(a `lax.cond`; on accelerators it is computed every step and selected, as gymnax does, because
there a `cond` costs a device-to-host copy per step). `VecEnv` steps a batch of copies the same way
with one reset per batch step, taken only when some copy's episode ended. Under an outer `vmap`
(over seeds) a `cond` becomes a select, so both branches run, which costs what gymnax's
select-based reset costs. Either way the values are gymnax's (up to the last bit of float rounding
where XLA fuses the physics differently).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces


def _select(done, fresh, stepped):
    """Leaf-wise `done ? fresh : stepped`, `done` broadcast over the leaves' trailing axes."""

    def pick(a, b):
        pred = jnp.reshape(done, done.shape + (1,) * (b.ndim - done.ndim))
        return jax.lax.select(jnp.broadcast_to(pred, b.shape), a, b)

    return jax.tree.map(pick, fresh, stepped)


def auto_reset_step(env, key, state, action, params=None, *, batched: bool = False):
    """`env.step` of every jaxrl env: `env.transition`, then `env.reset` where the episode ended.

    The key splits into (step key, reset key) as in gymnax 1.0's `Environment.step`, so a gymnax env
    follows the same random stream as its own `step`. With `batched`, `key` holds one key per copy and the
    reset runs once for the whole batch when any copy is done (then a select keeps the rest); on a
    CPU only, see the module docstring."""
    if batched:
        keys = jax.vmap(jax.random.split)(key)
        k_step, k_reset = keys[:, 0], keys[:, 1]
    else:
        k_step, k_reset = jax.random.split(key)
    obs, state, reward, terminated, truncated, info = env.transition(k_step, state, action, params)
    done = jnp.logical_or(terminated, truncated)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs}

    def always(stepped):  # gymnax's way: compute the reset, then select
        return _select(done, env.reset(k_reset, params), stepped)

    def when_done(stepped):  # skip the reset unless an episode ended
        return jax.lax.cond(jnp.any(done), always, lambda s: s, stepped)

    # A `cond` saves the reset's many small kernels on a CPU, but on a GPU its host-side branch
    # choice costs a device-to-host copy every step: there the select is faster.
    obs, state = jax.lax.platform_dependent((obs, state), cpu=when_done, default=always)
    return obs, state, reward, terminated, truncated, info


class Wrapper:
    """Forwards everything to the wrapped env; subclasses override `reset`/`transition`, and `step`
    (auto-reset) follows from them."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    @property
    def unwrapped(self):
        return getattr(self._env, "unwrapped", self._env)

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def transition(self, key, state, action, params=None):
        return self._env.transition(key, state, action, params)

    def step(self, key, state, action, params=None):
        return auto_reset_step(self, key, state, action, params)


class GymnaxEnv(Wrapper):
    """A gymnax `Environment` as a jaxrl layer: `transition` is gymnax's `step` without its
    auto-reset (`step_env`, then the time limit `is_truncated`)."""

    def transition(self, key, state, action, params=None):
        params = self._env.default_params if params is None else params
        obs, state, reward, terminated, info = self._env.step_env(key, state, action, params)
        truncated = self._env.is_truncated(state, params)
        return obs, state, reward, terminated, truncated, info


class VecEnv(Wrapper):
    """A batch of copies of `env`, stepped as one.

    Every argument of `reset`/`step` except `params` carries a leading axis over the copies, keys
    included (one key per copy), so `VecEnv(env).step` computes what `jax.vmap(env.step)` does, but
    on a CPU resets once per batch step and only when some copy's episode ended, instead of
    resetting every copy at every step (checked against gymnax's own step in tests/test_envs.py)."""

    def reset(self, keys, params=None):
        return jax.vmap(self._env.reset, in_axes=(0, None))(keys, params)

    def transition(self, keys, state, action, params=None):
        return jax.vmap(self._env.transition, in_axes=(0, 0, 0, None))(keys, state, action, params)

    def step(self, keys, state, action, params=None):
        return auto_reset_step(self, keys, state, action, params, batched=True)


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

    def transition(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.transition(
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


class BraxToGymnax(Wrapper):
    """Adapts a brax `Env` (`reset(rng)`, `step(state, action)`) to the gymnax interface.

    Adds a time limit (truncation); brax's own `done` is the natural terminal, and auto-reset comes
    from `Wrapper.step`. Actions live in [-1, 1]^action_size, as brax expects. A fresh episode
    starts from brax's `reset` state, whose tree (metrics and info included) equals the one its
    `step` returns for every env in `envs.BRAX_ENVS`.
    """

    def __init__(self, brax_env, name: str):
        super().__init__(brax_env)
        self.name = name
        self._obs_size = None

    @property
    def unwrapped(self):
        return self

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    def observation_space(self, params=None) -> spaces.Box:
        if self._obs_size is None:  # brax's `observation_size` runs `reset` eagerly (40 s for hopper
            # on a CPU, op by op); tracing it gives the same shape in a fraction of a second
            self._obs_size = jax.eval_shape(self._env.reset, jax.random.PRNGKey(0)).obs.shape[-1]
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._env.action_size,), jnp.float32)

    def reset(self, key, params=None):
        s = _strong(self._env.reset(key))
        return s.obs, BraxState(s, jnp.int32(0))

    def transition(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        s = _strong(self._env.step(state.brax_state, action))
        time = state.time + 1
        terminated = s.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, ~terminated)
        return s.obs, BraxState(s, time), jnp.asarray(s.reward, jnp.float32), terminated, truncated, {}
