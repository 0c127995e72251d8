"""The shape every algorithm's `make_train(config)` returns, and the one episode-return metric."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class Trainer(NamedTuple):
    """`init(key) -> carry` and `update(carry) -> (carry, metrics)`, both pure and jittable.

    One `update` call is one chunk of training (a `lax.scan` over env steps, gradient updates or
    samples) and returns a dict of scalar metrics summarising that chunk. Exactly two metrics are
    required, and the trainer names them:

    - `progress`: a cumulative counter of the trainer's own unit ("env_steps" for online RL,
      "updates" for offline RL, "samples" for a generator being fine-tuned), shown by the progress
      bar and used as the x-axis of tracking and plots;
    - `score`: the headline number of the chunk ("return": the mean undiscounted return of the
      episodes that ended in the chunk, NaN if none; "normalized_score" for offline RL; "reward"
      for generative fine-tuning), shown by the bar and summarised per seed in `final.json`.

    The carry holds everything, so a run can be checkpointed after any chunk and resumed exactly.
    """

    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, dict]]
    num_chunks: int
    score: str = "return"
    progress: str = "env_steps"

    def train(self, key):
        """The whole run as one program: init, then a scan over `num_chunks` updates.
        Returns (final carry, metrics stacked over chunks)."""
        carry = self.init(key)
        return jax.lax.scan(lambda c, _: self.update(c), carry, None, self.num_chunks)


def episode_metrics(returns, done) -> dict:
    """`return`: mean of `returns` over the entries where `done` (any shape, e.g. [steps, envs]
    of `info["episode_return"]` and `info["episode_done"]`), NaN where no episode ended;
    `episodes`: how many ended."""
    done = jnp.asarray(done, jnp.float32)
    n = done.sum()
    total = (jnp.asarray(returns, jnp.float32) * done).sum()
    return {"return": jnp.where(n > 0, total / jnp.maximum(n, 1.0), jnp.nan), "episodes": n}
