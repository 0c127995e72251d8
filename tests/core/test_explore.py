"""Exploration schedules (jaxrl.core.explore) against hand-computed values."""
import numpy as np
import jax.numpy as jnp

from jaxrl.core.explore import epsilon_schedule


def test_epsilon_schedule_is_linear_then_flat():
    t = jnp.array([0, 250, 500, 1000, 5000])
    eps = epsilon_schedule(t, 1.0, 0.05, 1000.0)
    np.testing.assert_allclose(eps, [1.0, 0.7625, 0.525, 0.05, 0.05], rtol=1e-6)
