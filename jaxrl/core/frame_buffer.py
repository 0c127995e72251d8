"""A replay buffer that stores each observation frame once and rebuilds frame stacks by index
(DrQ-v2 and DrM; for state observations it is an ordinary replay with n-step targets).

A stacked pixel observation [H, W, 3k] shares k - 1 frames with the next one, so a buffer of
(obs, next_obs) pairs would hold every frame 2k times. Here each env's stream is a sequence of
records, one per observation the env emitted: its newest frame `frames[i]` ([H, W, C], uint8 for
pixels), the action taken from it, the reward and terminal flag of that step, `done` (the step
ended the episode), `last` (the record is an episode's final observation: no action follows),
and `start[i]`, the record index where its episode began. A step that ends an episode writes
two records (the step's and the final observation's), other steps one.

The stack of record j is frames[max(j - k + 1 + s, start[j])] for s = 0..k-1 (oldest first), so
the first observations of an episode repeat its first frame, as the frame-stack wrapper does.
A sample draws an env and a record i uniformly (a `last` record is replaced by the one before
it) and returns the n-step `Transition`

    R = sum_{s=0}^{m} gamma^s r_{i+s},  discount = gamma^(m+1) (1 - terminated_{i+m}),
    next_obs = stack(i + m + 1)

with m = n - 1, or the first s at which the episode ended. Frames stay in their dtype until the
learner converts a minibatch; nothing converts the whole buffer.

Arrays have a leading axis of `capacity` records and a second of `num_envs`; each env has its own
write counter. Memory per seed is about capacity * num_envs * prod(frame_shape) bytes of uint8
frames plus 4 * (action_dim + 2) + 3 bytes per record: `frame_buffer_nbytes` computes it.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core.offpolicy import Transition


class FrameBuffer(NamedTuple):
    frames: jax.Array  # [capacity, envs, *frame_shape]
    action: jax.Array  # [capacity, envs, action_dim] float32
    reward: jax.Array  # [capacity, envs] float32
    terminated: jax.Array  # [capacity, envs] bool
    done: jax.Array  # [capacity, envs] bool: the step from this record ended the episode
    last: jax.Array  # [capacity, envs] bool: an episode's final observation (no action)
    start: jax.Array  # [capacity, envs] int32: record count where the record's episode began
    count: jax.Array  # [envs] int32: records written per env
    episode_start: jax.Array  # [envs] int32: record count where the running episode began

    @property
    def capacity(self) -> int:
        return self.frames.shape[0]


def frame_buffer_init(frame, action_dim: int, num_envs: int, capacity: int) -> FrameBuffer:
    """An empty buffer of `capacity` records per env for frames shaped and typed like `frame`."""
    for name, v in (("capacity", capacity), ("num_envs", num_envs), ("action_dim", action_dim)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    frame = jnp.asarray(frame)
    per = lambda shape, dtype: jnp.zeros((capacity, num_envs) + shape, dtype)
    return FrameBuffer(
        per(frame.shape, frame.dtype), per((action_dim,), jnp.float32), per((), jnp.float32), per((), bool),
        per((), bool), per((), bool), per((), jnp.int32), jnp.zeros(num_envs, jnp.int32),
        jnp.zeros(num_envs, jnp.int32),
    )


def frame_buffer_nbytes(frame, action_dim: int, num_envs: int, capacity: int) -> int:
    """Bytes of a buffer `frame_buffer_init` would build, from its arrays' shapes (allocates nothing)."""
    shapes = jax.eval_shape(lambda: frame_buffer_init(frame, action_dim, num_envs, capacity))
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def frame_buffer_add(buf: FrameBuffer, frame, action, reward, terminated, done, final_frame) -> FrameBuffer:
    """Record one vectorised step (leading axis = envs): `frame` is the newest frame of the
    observation acted on, `final_frame` the newest frame of the step's pre-reset next observation
    (stored as a `last` record where `done`). Where not done, the second record is written past
    the counter and overwritten by the next step."""
    cap = buf.capacity
    envs = jnp.arange(buf.count.shape[0])
    slot, nxt = buf.count % cap, (buf.count + 1) % cap
    write = lambda arr, a, b: arr.at[slot, envs].set(a.astype(arr.dtype)).at[nxt, envs].set(b.astype(arr.dtype))
    done = jnp.asarray(done, bool)
    count = buf.count + 1 + done.astype(jnp.int32)
    return FrameBuffer(
        frames=write(buf.frames, frame, final_frame),
        action=write(buf.action, action, jnp.zeros_like(action)),
        reward=write(buf.reward, reward, jnp.zeros_like(reward)),
        terminated=write(buf.terminated, terminated, jnp.zeros_like(done)),
        done=write(buf.done, done, jnp.zeros_like(done)),
        last=write(buf.last, jnp.zeros_like(done), jnp.ones_like(done)),
        start=write(buf.start, buf.episode_start, buf.episode_start),
        count=count,
        episode_start=jnp.where(done, count, buf.episode_start),
    )


def stack_frames(buf: FrameBuffer, env, record, num_stack: int):
    """The stacked observation of `record` (absolute record counts, any batch shape) of `env`:
    its last `num_stack` frames, oldest first, concatenated along the last axis."""
    cap = buf.capacity
    start = buf.start[record % cap, env]
    frames = [buf.frames[jnp.maximum(record - num_stack + 1 + s, start) % cap, env] for s in range(num_stack)]
    return jnp.concatenate(frames, -1)


def frame_buffer_sample(buf: FrameBuffer, key, batch_size: int, num_stack: int, n_step: int, gamma) -> Transition:
    """`batch_size` n-step transitions with stacked observations (see the module docstring).
    Records are drawn among those whose stack and n-step future are both still stored."""
    cap = buf.capacity
    k_env, k_rec = jax.random.split(key)
    env = jax.random.randint(k_env, (batch_size,), 0, buf.count.shape[0])
    count = buf.count[env]
    lo = jnp.maximum(count - cap + num_stack + 2, 1)  # the record before lo and its stack are intact
    hi = jnp.maximum(count - 1 - n_step, lo)  # record i + n_step must exist
    i = lo + jnp.floor(jax.random.uniform(k_rec, (batch_size,)) * (hi - lo + 1)).astype(jnp.int32)
    i = jnp.where(buf.last[i % cap, env], i - 1, i)
    steps = i[:, None] + jnp.arange(n_step)[None, :]  # [batch, n]
    done = buf.done[steps % cap, env[:, None]].astype(jnp.float32)
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[:, :1]), 1.0 - done[:, :-1]], 1), 1)
    powers = jnp.asarray(gamma, jnp.float32) ** jnp.arange(n_step, dtype=jnp.float32)
    reward = (alive * powers * buf.reward[steps % cap, env[:, None]]).sum(1)
    m = (alive.sum(1) - 1).astype(jnp.int32)
    terminated = buf.terminated[(i + m) % cap, env].astype(jnp.float32)
    discount = jnp.asarray(gamma, jnp.float32) ** (m + 1).astype(jnp.float32) * (1.0 - terminated)
    return Transition(stack_frames(buf, env, i, num_stack), buf.action[i % cap, env], reward, discount,
                      stack_frames(buf, env, i + m + 1, num_stack))
