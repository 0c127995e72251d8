"""A pure-functional circular replay buffer (DQN, SAC, TD3; DrQ-v2/DrM store uint8 frames in it).

The buffer is a pytree: `data` mirrors one transition's pytree with a leading `capacity` axis,
each leaf in the dtype of the example transition (uint8 pixels stay uint8). `add` writes a batch
of transitions (leading axis = batch) at the write pointer, wrapping around; `sample` draws
uniformly among the filled slots. Everything is jittable and vmappable over seeds.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Buffer(NamedTuple):
    data: Any
    ptr: jax.Array  # next slot to write
    size: jax.Array  # number of filled slots

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def buffer_init(example, capacity: int) -> Buffer:
    """An empty buffer for transitions shaped like `example` (one transition, no batch axis)."""
    if not isinstance(capacity, int) or capacity <= 0:
        raise ValueError(f"capacity must be a positive int, got {capacity!r}")
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example
    )
    return Buffer(data, jnp.int32(0), jnp.int32(0))


def buffer_add(buf: Buffer, batch) -> Buffer:
    """Write a batch of transitions (leading axis = batch size <= capacity)."""
    cap = buf.capacity
    n = jax.tree.leaves(batch)[0].shape[0]
    if n > cap:
        raise ValueError(f"batch of {n} transitions exceeds buffer capacity {cap}")
    idx = (buf.ptr + jnp.arange(n)) % cap
    data = jax.tree.map(lambda d, x: d.at[idx].set(x.astype(d.dtype)), buf.data, batch)
    return Buffer(data, (buf.ptr + n) % cap, jnp.minimum(buf.size + n, cap))


def buffer_add_if(buf: Buffer, transition, write) -> Buffer:
    """`buf` with one transition (no batch axis) written at the pointer if `write` (a traced bool),
    else unchanged. One row is rewritten in place either way, so a scan whose iterations write only
    in some phase (RO2O's and IQL's offline iterations, which step no env into the buffer) does not
    copy the buffer."""
    idx = buf.ptr
    row = jax.tree.map(lambda new, d: jnp.where(write, new.astype(d.dtype), d[idx]), transition, buf.data)
    data = jax.tree.map(lambda d, r: d.at[idx].set(r), buf.data, row)
    cap = buf.capacity
    return Buffer(data, jnp.where(write, (idx + 1) % cap, idx), jnp.where(write, jnp.minimum(buf.size + 1, cap), buf.size))


def buffer_sample(buf: Buffer, key, batch_size: int):
    """`batch_size` transitions drawn uniformly with replacement from the filled slots."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buf.size, 1))
    return jax.tree.map(lambda d: d[idx], buf.data)
