"""jaxrl.core.prompt_stats: DDPO's per-prompt advantage normalisation, against hand-computed numbers."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.prompt_stats import normalize, prompt_stats_init


def test_batch_stats_below_min_count_then_buffer_stats():
    stats = prompt_stats_init(3, buffer_size=2)
    stats, adv = normalize(stats, jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 0, 1]), min_count=2)
    # prompt 0 has 2 rewards >= min_count: its own mean 1.5, std 0.5; prompt 1 has 1: batch mean 2, std sqrt(2/3)
    np.testing.assert_allclose(np.asarray(adv), [-1.0, 1.0, 1.0 / (math.sqrt(2 / 3) + 1e-6)], rtol=1e-5)
    # the ring buffer of prompt 0 now holds [1, 2]; a new 5 replaces the oldest (1): mean 3.5, std 1.5
    stats, adv = normalize(stats, jnp.array([5.0]), jnp.array([0]), min_count=2)
    assert float(adv[0]) == pytest.approx(1.5 / (1.5 + 1e-6), rel=1e-6)
    assert stats.count.tolist() == [2, 1, 0] and sorted(np.asarray(stats.buffer[0]).tolist()) == [2.0, 5.0]


def test_more_rewards_than_buffer_keep_the_last_ones():
    stats = prompt_stats_init(2, buffer_size=3)
    stats, _ = normalize(stats, jnp.arange(1.0, 6.0), jnp.zeros(5, jnp.int32), min_count=1)
    assert sorted(np.asarray(stats.buffer[0]).tolist()) == [3.0, 4.0, 5.0]
    assert stats.count.tolist() == [3, 0] and stats.next.tolist() == [2, 0]


def test_jits_and_vmaps():
    f = jax.jit(jax.vmap(lambda r, p: normalize(prompt_stats_init(10, 4), r, p, 2)[1]))
    r = jnp.arange(12.0).reshape(2, 6)
    p = jnp.array([[0, 0, 1, 1, 2, 2], [3, 3, 3, 3, 3, 3]])
    out = np.asarray(f(r, p))
    np.testing.assert_allclose(out[0], [-1, 1, -1, 1, -1, 1], rtol=1e-5)
    np.testing.assert_allclose(out[1], (np.arange(6.0, 12.0) - 9.5) / (np.std(np.arange(8.0, 12.0)) + 1e-6), rtol=1e-5)
