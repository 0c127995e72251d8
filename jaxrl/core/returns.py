"""Returns and advantages over time-major trajectories (shape [T, ...]).

Users: `gae` in PPO (and the on-policy learners of the robust-RL family, RARL and QARL, when they
run PPO); `lambda_returns` and `nstep_returns` for the off-policy and pixel learners (DrQ-v2's
n-step targets).

Terminal and truncation are kept apart: `terminated[t]` cuts bootstrapping after step t;
`done[t]` (= terminated or truncated) cuts the recursion into step t+1, which belongs to another
episode. `next_values[t]` is V of the observation that followed step t, which for a truncated step
is the final observation of the finished episode (gymnax's `info["final_observation"]`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, done, gamma: float, lambda_: float):
    """Generalised advantage estimation (Schulman et al. 2016, Eq. 16).

    delta_t = r_t + gamma (1 - term_t) V(s'_t) - V(s_t)
    A_t     = delta_t + gamma lambda_ (1 - done_t) A_{t+1}
    Returns (advantages, value targets = advantages + values).
    """
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_term * next_values - values

    def step(adv_next, xs):
        delta, nd = xs
        adv = delta + gamma * lambda_ * nd * adv_next
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True)
    return adv, adv + values


def lambda_returns(rewards, next_values, terminated, done, gamma: float, lambda_: float):
    """TD(lambda) returns (Sutton & Barto 2018, Eq. 12.18, recursive form).

    G_t = r_t + gamma (1 - term_t) [(1 - lambda_t) V(s'_t) + lambda_t G_{t+1}],  lambda_t = lambda_ (1 - done_t)
    with G_T bootstrapped from V(s'_{T-1}).
    """
    not_term = 1.0 - terminated.astype(jnp.float32)
    lambda_t = lambda_ * (1.0 - done.astype(jnp.float32))

    def step(g_next, xs):
        r, v_next, nt, lt = xs
        g = r + gamma * nt * ((1.0 - lt) * v_next + lt * g_next)
        return g, g

    _, g = jax.lax.scan(step, next_values[-1], (rewards, next_values, not_term, lambda_t), reverse=True)
    return g


def nstep_returns(rewards, next_values, terminated, done, gamma: float, n: int):
    """n-step returns G_t = sum_{k<m} gamma^k r_{t+k} + gamma^m V(s'_{t+m-1}) (1 - term),
    where m <= n stops at the episode end or the trajectory end."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    T = rewards.shape[0]
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)

    def one(t):
        def body(k, acc):
            g, disc, alive, boot = acc
            idx = jnp.minimum(t + k, T - 1)
            valid = alive * (t + k < T)
            g = g + valid * disc * rewards[idx]
            last = valid * jnp.logical_or(k == n - 1, t + k == T - 1)
            ends = valid * (1.0 - not_done[idx])
            # bootstrap at the last step of the window, or where the episode is truncated
            boot = boot + (last * (1.0 - ends) + ends) * disc * gamma * not_term[idx] * next_values[idx]
            alive = alive * not_done[idx]
            return g, disc * gamma, alive, boot

        zero = jnp.zeros_like(rewards[0])
        g, _, _, boot = jax.lax.fori_loop(0, n, body, (zero, jnp.ones_like(zero), jnp.ones_like(zero), zero))
        return g + boot

    return jax.vmap(one)(jnp.arange(T))
