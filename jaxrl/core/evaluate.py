"""Evaluation: a batch of episodes run in parallel (vmapped) with a given policy, inside jit
(SAC and TD3 in their metrics, the offline learners' normalised scores, dataset generation,
the robust grid evaluation, and the tests of PPO and DQN)."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

import envs


class Recurrent(NamedTuple):
    """A policy with memory (IWOCS's composite policy, which looks at the last transition):
    `init(obs) -> memory` at an episode's first observation, `step(obs, memory, key) -> (action,
    memory)` at every step. Both act on one observation; the memory is any pytree."""

    init: Callable
    step: Callable


def evaluate(env, env_params, act: Callable | Recurrent, key, num_episodes: int, max_steps: int, gamma: float = 1.0):
    """Mean return of `num_episodes` episodes run side by side (discounted by `gamma`; 1: undiscounted).

    `act(obs, key) -> action` acts on one observation (deterministically for a greedy policy; the key
    is there for stochastic ones), or is a `Recurrent` policy. Each episode counts until its first
    end, capped at `max_steps` (a recurrent policy's memory is not reset at the env's auto-reset:
    those steps do not count). `env` is a jaxrl env (from `envs.make`). Returns (mean_return,
    per-episode returns).
    """
    policy = act if isinstance(act, Recurrent) else Recurrent(lambda obs: (), lambda obs, m, k: (act(obs, k), m))
    venv = envs.VecEnv(env)
    k_reset, k_run = jax.random.split(key)
    obs, state = venv.reset(jax.random.split(k_reset, num_episodes), env_params)

    def step(carry, key):
        obs, memory, state, ret, alive, discount = carry
        k_act, k_env = jax.random.split(key)
        action, memory = jax.vmap(policy.step)(obs, memory, jax.random.split(k_act, num_episodes))
        obs, state, r, term, trunc, _ = venv.step(jax.random.split(k_env, num_episodes), state, action, env_params)
        ret = ret + alive * discount * r
        alive = alive * (1.0 - jnp.logical_or(term, trunc))
        return (obs, memory, state, ret, alive, discount * gamma), None

    init = (obs, jax.vmap(policy.init)(obs), state, jnp.zeros(num_episodes), jnp.ones(num_episodes), jnp.float32(1.0))
    (_, _, _, returns, _, _), _ = jax.lax.scan(step, init, jax.random.split(k_run, max_steps))
    return returns.mean(), returns
