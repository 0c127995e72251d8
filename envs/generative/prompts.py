"""Prompts of the digit generator: a prompt is a class label 0..9 ("draw a 3")."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

NUM_CLASSES = 10


def check_prompts(prompts, name: str = "prompts") -> tuple[int, ...]:
    """The prompts as a tuple of ints; ValueError naming the bad value unless every one is an
    integer class in 0..9 and there is at least one."""
    values = np.asarray(prompts).reshape(-1)
    if values.size == 0:
        raise ValueError(f"{name} must hold at least one digit class, got {prompts!r}")
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.equal(np.mod(values, 1), 0)):
            raise ValueError(f"{name} must be integer digit classes 0..{NUM_CLASSES - 1}, got {prompts!r}")
    bad = [v for v in values.tolist() if not 0 <= v < NUM_CLASSES]
    if bad:
        raise ValueError(f"{name} must be digit classes 0..{NUM_CLASSES - 1}; {bad[0]!r} is outside the classes")
    return tuple(int(v) for v in values)


def sample_prompts(key, prompts: tuple[int, ...], n: int) -> jax.Array:
    """`n` prompts drawn uniformly, with replacement, from `prompts` (int32 [n])."""
    return jnp.asarray(prompts, jnp.int32)[jax.random.randint(key, (n,), 0, len(prompts))]
