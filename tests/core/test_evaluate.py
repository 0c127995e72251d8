"""jaxrl.core.evaluate: episodes side by side; undiscounted and discounted returns."""
import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.core.evaluate import evaluate


def test_discounted_return_of_cartpole_is_the_geometric_sum_of_its_length():
    env, p = envs.make("CartPole-v1", episode_stats=False)

    def push_right(obs, key):
        return jnp.int32(1)  # the pole falls after some 10 steps, at a step that varies with the start

    run = jax.jit(lambda g: evaluate(env, p, push_right, jax.random.key(0), 6, 500, g)[1])
    lengths, disc = np.asarray(run(1.0)), np.asarray(run(0.9))
    assert np.all(lengths == np.round(lengths)) and 5 <= lengths.min() and lengths.max() < 40
    assert len(set(lengths.tolist())) > 1  # the starts differ
    np.testing.assert_allclose(disc, (1 - 0.9 ** lengths) / (1 - 0.9), rtol=1e-5)  # reward 1 per step
