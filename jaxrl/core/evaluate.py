"""Evaluation: a batch of episodes run in parallel (vmapped) with a given policy, inside jit
(SAC and TD3 in their metrics, the offline learners' normalised scores, dataset generation,
and the tests of PPO and DQN)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

import envs


def evaluate(env, env_params, act: Callable, key, num_episodes: int, max_steps: int, gamma: float = 1.0):
    """Mean return of `num_episodes` episodes run side by side (discounted by `gamma`; 1: undiscounted).

    `act(obs, key) -> action` acts on one observation (deterministically for a greedy policy; the key
    is there for stochastic ones). Each episode counts until its first end, capped at `max_steps`.
    `env` is a jaxrl env (from `envs.make`). Returns (mean_return, per-episode returns).
    """
    venv = envs.VecEnv(env)
    k_reset, k_run = jax.random.split(key)
    obs, state = venv.reset(jax.random.split(k_reset, num_episodes), env_params)

    def step(carry, key):
        obs, state, ret, alive, discount = carry
        k_act, k_env = jax.random.split(key)
        action = jax.vmap(act)(obs, jax.random.split(k_act, num_episodes))
        obs, state, r, term, trunc, _ = venv.step(jax.random.split(k_env, num_episodes), state, action, env_params)
        ret = ret + alive * discount * r
        alive = alive * (1.0 - jnp.logical_or(term, trunc))
        return (obs, state, ret, alive, discount * gamma), None

    init = (obs, state, jnp.zeros(num_episodes), jnp.ones(num_episodes), jnp.float32(1.0))
    (_, _, returns, _, _), _ = jax.lax.scan(step, init, jax.random.split(k_run, max_steps))
    return returns.mean(), returns
