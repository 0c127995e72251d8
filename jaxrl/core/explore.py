"""Exploration schedules shared by the value-based learners (DQN, Stream Q(lambda))."""
from __future__ import annotations

import jax.numpy as jnp


def epsilon_schedule(t, start_e: float, end_e: float, duration: float):
    """Linear decay from `start_e` at env step 0 to `end_e` at env step `duration`, then flat."""
    frac = jnp.clip(jnp.asarray(t, jnp.float32) / duration, 0.0, 1.0)
    return start_e + frac * (end_e - start_e)
