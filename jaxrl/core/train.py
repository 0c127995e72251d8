"""The shape every algorithm's `make_train(config)` returns."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax


class Trainer(NamedTuple):
    """`init(key) -> carry` and `update(carry) -> (carry, metrics)`, both pure and jittable.

    One `update` call is one chunk of training (a `lax.scan` over env steps / updates) and returns
    a dict of scalar metrics summarising that chunk, always including `env_steps` (cumulative)
    and `return` (mean undiscounted return of the episodes that ended in the chunk; NaN if none).
    The carry holds everything, so a run can be checkpointed after any chunk and resumed exactly.
    """

    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, dict]]
    num_chunks: int

    def train(self, key):
        """The whole run as one program: init, then a scan over `num_chunks` updates.
        Returns (final carry, metrics stacked over chunks)."""
        carry = self.init(key)
        return jax.lax.scan(lambda c, _: self.update(c), carry, None, self.num_chunks)


def episode_metrics(info) -> dict:
    """Mean return / length of episodes that ended in a batch of `EpisodeStats` infos
    (any leading axes); NaN where none ended."""
    import jax.numpy as jnp

    done = info["episode_done"].astype(jnp.float32)
    n = done.sum()
    mean = lambda x: jnp.where(n > 0, (x * done).sum() / jnp.maximum(n, 1.0), jnp.nan)
    return {
        "return": mean(info["episode_return"]),
        "length": mean(info["episode_length"].astype(jnp.float32)),
        "episodes": n,
    }
