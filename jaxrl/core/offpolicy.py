"""What the off-policy learners share: the update-to-data schedule, uniform warm-up actions,
Polyak-averaged target networks and n-step transitions for the replay buffer.

`jaxrl.algos.sac` and `jaxrl.algos.td3` call every piece here; DQN can use `polyak_update`
(its hard copy is tau = 1), `random_actions` (its epsilon-greedy draws) and `nstep_push` (n-step
targets). The loop itself (collect into the buffer with the current policy, then some gradient
updates) stays in each algorithm file, where it reads top to bottom.

- `update_schedule(updates_per_step, num_envs)`: an update-to-data ratio as a fixed pattern,
  `vec_steps` vectorised env steps followed by `updates` gradient updates, so that
  updates / (vec_steps * num_envs) = updates_per_step exactly (0.5 with one env: one update
  every second step; 2 with 4 envs: 8 updates after every vectorised step).
- `polyak_update(online, target, tau)`: theta^- <- tau theta + (1 - tau) theta^-.
- `random_actions(key, spec, num)`: uniform actions over the env's action box (or actions).
- `RowPacker(example)`: a `Transition` as one float32 row of the replay buffer. One buffer array
  means one write and one gather per minibatch instead of one per field, and XLA then writes the
  buffer in place: with one array per field, XLA:CPU fused some fields' writes into the minibatch
  gather that follows and copied those fields' whole arrays every iteration (measured: 6 copies of
  buffer-sized arrays per env step on Pendulum-v1, under jax 0.9.2).
- `nstep_push(window, step, gamma)`: keeps the last n - 1 steps of every env and turns the
  oldest step of the window plus the new one into one n-step `Transition`

      R = sum_{k=0}^{m} gamma^k r_{t+k},   discount = gamma^(m+1) (1 - terminated_{t+m}),
      next_obs = s'_{t+m}

  where m = n - 1, or the first k at which the episode ended (terminated or truncated) if
  earlier. A target is then y = R + discount * V(next_obs); with n = 1 this is the one-step
  y = r + gamma (1 - terminated) V(s'), and `next_obs` is the pre-reset (final) observation, so
  a time limit bootstraps.
"""
from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

MAX_PATTERN = 64  # longest pattern of env steps or updates an update-to-data ratio may need


class Transition(NamedTuple):
    """One replay-buffer entry: y = reward + discount * V(next_obs) is its bootstrapped target."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # the (n-step) discounted reward sum
    discount: jax.Array  # gamma^n (1 - terminated), 0 after a true terminal
    next_obs: jax.Array  # pre-reset observation n steps on (or where the episode ended)


class Step(NamedTuple):
    """One vectorised env step as the collector sees it (leading axis = envs)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array  # terminated | truncated
    next_obs: jax.Array  # info["final_observation"]


def update_schedule(updates_per_step: float, num_envs: int) -> tuple[int, int]:
    """`(vec_steps, updates)`: collect `vec_steps` vectorised env steps, then run `updates`
    gradient updates, so that updates per env step (summed over envs) is `updates_per_step`.
    Raises ValueError naming `updates_per_step` when it is not positive or needs a pattern longer
    than MAX_PATTERN."""
    if isinstance(updates_per_step, bool) or not isinstance(updates_per_step, (int, float)) or not (
        updates_per_step > 0
    ):
        raise ValueError(f"updates_per_step must be > 0, got {updates_per_step!r}")
    per_vec_step = Fraction(updates_per_step).limit_denominator(MAX_PATTERN) * num_envs
    if per_vec_step.numerator > MAX_PATTERN * num_envs or abs(
        float(per_vec_step) - updates_per_step * num_envs
    ) > 1e-9 * updates_per_step * num_envs:
        raise ValueError(
            f"updates_per_step={updates_per_step!r} with num_envs={num_envs} needs a pattern longer than "
            f"{MAX_PATTERN} steps or updates; use a ratio like 0.25, 0.5, 1, 2 or a fraction p/q with q <= {MAX_PATTERN}"
        )
    return per_vec_step.denominator, per_vec_step.numerator


class RowPacker:
    """Packs transitions shaped like `example` (one transition, float leaves) into float32 rows of
    `width` numbers, and unpacks them: `pack(batch) -> [batch, width]`, `unpack(rows) -> batch`."""

    def __init__(self, example):
        row, self._unravel = ravel_pytree(jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), example))
        self.row = jnp.zeros_like(row)  # the buffer's example entry
        self.width = int(row.shape[0])

    def pack(self, batch):
        return jax.vmap(lambda t: ravel_pytree(jax.tree.map(lambda x: x.astype(jnp.float32), t))[0])(batch)

    def unpack(self, rows):
        return jax.vmap(self._unravel)(rows)


def polyak_update(online, target, tau):
    """theta^- <- tau theta + (1 - tau) theta^-, leaf by leaf (tau = 1 copies `online`)."""
    return jax.tree.map(lambda p, t: tau * p + (1.0 - tau) * t, online, target)


def random_actions(key, spec, num: int):
    """`num` actions drawn uniformly: over [low, high]^action_dim for a continuous env, over
    {0, ..., n - 1} for a discrete one (`spec` is an `envs.EnvSpec`)."""
    if spec.discrete:
        return jax.random.randint(key, (num,), 0, spec.action_dim)
    return jax.random.uniform(key, (num, spec.action_dim), jnp.float32, spec.low(), spec.high())


def nstep_window(example: Step, n: int):
    """An empty window of the last n - 1 steps, shaped like `example` (a `Step` with the env axis):
    leaves of shape [n - 1, num_envs, ...]. For n = 1 the leaves are empty."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n_step must be an int >= 1, got {n!r}")
    return jax.tree.map(lambda x: jnp.zeros((n - 1,) + jnp.shape(x), jnp.asarray(x).dtype), example)


def nstep_return(steps: Step, gamma):
    """The n-step (reward, discount, next_obs) of the first step of `steps` (leaves [n, envs, ...],
    oldest first), cut at the first episode end (see the module docstring)."""
    done = steps.done.astype(jnp.float32)
    n = done.shape[0]
    # alive[k] = 1 while no episode end happened before step k (alive[0] = 1)
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[:1]), 1.0 - done[:-1]]), axis=0)
    powers = jnp.asarray(gamma, jnp.float32) ** jnp.arange(n, dtype=jnp.float32)
    powers = powers.reshape((n,) + (1,) * (done.ndim - 1))
    reward = (alive * powers * steps.reward.astype(jnp.float32)).sum(0)
    last = (alive.sum(0) - 1).astype(jnp.int32)  # m: index of the step that closes the window
    take = lambda x: jnp.take_along_axis(x, last.reshape((1,) + last.shape + (1,) * (x.ndim - 2)), 0)[0]
    terminated = take(steps.terminated).astype(jnp.float32)
    discount = jnp.asarray(gamma, jnp.float32) ** (last + 1).astype(jnp.float32) * (1.0 - terminated)
    return reward, discount, take(steps.next_obs)


def nstep_push(window, step: Step, gamma) -> tuple:
    """Add `step` to `window`; return (new window, the n-step `Transition` of the window's oldest
    step). With n = 1 (an empty window) this is the one-step transition of `step` itself. The
    first n - 1 pushes of a run return transitions of the empty window's placeholders: the caller
    primes the window with n - 1 steps before it writes transitions to the buffer."""
    if jax.tree.leaves(window)[0].shape[0] == 0:  # n = 1: no window to keep
        discount = gamma * (1.0 - step.terminated.astype(jnp.float32))
        return window, Transition(step.obs, step.action, step.reward.astype(jnp.float32), discount, step.next_obs)
    steps = jax.tree.map(lambda w, x: jnp.concatenate([w, x[None].astype(w.dtype)]), window, step)
    reward, discount, next_obs = nstep_return(steps, gamma)
    first = jax.tree.map(lambda x: x[0], steps)
    return jax.tree.map(lambda x: x[1:], steps), Transition(first.obs, first.action, reward, discount, next_obs)
