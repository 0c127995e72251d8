"""Pure-functional running statistics.

`RunningMeanStd` is Welford's algorithm (one sample at a time, as stream-x's SampleMeanStd) with
Chan et al.'s parallel merge for batches. The variance is the unbiased sample variance, and 1 until
two samples were seen (stream-x's convention, so normalising the first observation is harmless).

`RewardScaler` is stream-x's reward scaling (Elsayed et al. 2024, Sec. 4 "ScaleReward"): keep the
discounted return u <- gamma * u * (1 - done) + r, track its variance, divide rewards by its std.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class RunningMeanStd(NamedTuple):
    count: jax.Array  # float32 scalar
    mean: jax.Array
    m2: jax.Array  # sum of squared deviations


def rms_init(shape=()) -> RunningMeanStd:
    return RunningMeanStd(jnp.float32(0.0), jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32))


def rms_update(state: RunningMeanStd, x) -> RunningMeanStd:
    """Add one sample `x` (same shape as the mean)."""
    count = state.count + 1.0
    delta = x - state.mean
    mean = state.mean + delta / count
    return RunningMeanStd(count, mean, state.m2 + delta * (x - mean))


def rms_update_batch(state: RunningMeanStd, xs) -> RunningMeanStd:
    """Add a batch of samples stacked on axis 0 (Chan et al.'s parallel merge)."""
    n = jnp.float32(xs.shape[0])
    b_mean = xs.mean(0)
    b_m2 = ((xs - b_mean) ** 2).sum(0)
    count = state.count + n
    delta = b_mean - state.mean
    mean = state.mean + delta * n / count
    m2 = state.m2 + b_m2 + delta**2 * state.count * n / count
    return RunningMeanStd(count, mean, m2)


def rms_var(state: RunningMeanStd) -> jax.Array:
    return jnp.where(state.count < 2, jnp.ones_like(state.m2), state.m2 / jnp.maximum(state.count - 1, 1))


def rms_normalize(state: RunningMeanStd, x, eps: float = 1e-8):
    return (x - state.mean) / jnp.sqrt(rms_var(state) + eps)


class RewardScaler(NamedTuple):
    ret: jax.Array  # discounted return trace u
    rms: RunningMeanStd


def reward_scaler_init(num_envs: int | None = None) -> RewardScaler:
    """One return trace (or one per env when `num_envs` is given, sharing one variance)."""
    shape = () if num_envs is None else (num_envs,)
    return RewardScaler(jnp.zeros(shape, jnp.float32), rms_init())


def reward_scale(state: RewardScaler, reward, done, gamma: float, eps: float = 1e-8):
    """Update with this step's (reward, done) and return (new_state, scaled_reward).
    `reward`/`done` are scalars, or [num_envs] arrays for a batched scaler."""
    ret = gamma * state.ret * (1.0 - done.astype(jnp.float32)) + reward
    rms = rms_update(state.rms, ret) if ret.ndim == 0 else rms_update_batch(state.rms, ret)
    return RewardScaler(ret, rms), reward / jnp.sqrt(rms_var(rms) + eps)
