"""Per-prompt reward normalisation of DDPO (Black et al. 2023) and RLCM (Oertell et al. 2024):
advantages A = (r - mean) / (std + 1e-6), with mean and std over the last `buffer_size` rewards
of the same prompt, or over the whole batch while a prompt has fewer than `min_count` rewards.

DDPO's `PerPromptStatTracker` keeps a Python deque per prompt string; here prompts are integer
ids 0..P-1 and the deques are one ring buffer [P, buffer_size] in the training carry, so the
update is jittable and a checkpoint holds it. As in DDPO, a batch's rewards join the buffer before
the statistics are taken, and std is the population std (numpy's default).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class PromptStats(NamedTuple):
    buffer: jax.Array  # [P, B] float32: the last rewards of each prompt (ring buffer)
    count: jax.Array  # [P] int32: valid entries, at most B
    next: jax.Array  # [P] int32: where the next reward of each prompt goes


def prompt_stats_init(num_prompts: int, buffer_size: int) -> PromptStats:
    return PromptStats(jnp.zeros((num_prompts, buffer_size), jnp.float32),
                       jnp.zeros(num_prompts, jnp.int32), jnp.zeros(num_prompts, jnp.int32))


def push(stats: PromptStats, rewards, prompts) -> PromptStats:
    """Append each reward to its prompt's ring buffer, in batch order (the last B of a prompt
    survive when a batch holds more than B of it)."""
    num_prompts, size = stats.buffer.shape
    onehot = jax.nn.one_hot(prompts, num_prompts, dtype=jnp.int32)  # [N, P]
    rank = (jnp.cumsum(onehot, axis=0) * onehot).sum(-1) - 1  # i-th occurrence of its prompt in the batch
    n = onehot.sum(0)  # [P]
    keep = rank >= n[prompts] - size  # older ones would be overwritten within this batch anyway
    pos = (stats.next[prompts] + rank) % size
    rows = jnp.where(keep, prompts, num_prompts)  # out of range: dropped
    buffer = stats.buffer.at[rows, pos].set(rewards.astype(jnp.float32), mode="drop")
    return PromptStats(buffer, jnp.minimum(stats.count + n, size), (stats.next + n) % size)


def normalize(stats: PromptStats, rewards, prompts, min_count: int) -> tuple[PromptStats, jax.Array]:
    """(updated stats, advantages [N]) for a batch of rewards [N] with prompt ids [N]."""
    stats = push(stats, rewards, prompts)
    valid = jnp.arange(stats.buffer.shape[1])[None] < stats.count[:, None]  # [P, B]
    cnt = jnp.maximum(stats.count, 1)
    mean_p = jnp.where(valid, stats.buffer, 0.0).sum(1) / cnt
    var_p = jnp.where(valid, (stats.buffer - mean_p[:, None]) ** 2, 0.0).sum(1) / cnt
    use_buffer = stats.count[prompts] >= min_count
    mean = jnp.where(use_buffer, mean_p[prompts], rewards.mean())
    std = jnp.where(use_buffer, jnp.sqrt(var_p[prompts]), rewards.std())
    return stats, (rewards - mean) / (std + 1e-6)
