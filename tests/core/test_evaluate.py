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


def test_recurrent_policy_keeps_its_memory_across_steps():
    """A policy that alternates right, left, right, ... from its memory: the episode lengths equal
    those of a Python loop stepping the same starts with the same alternation."""
    from jaxrl.core.evaluate import Recurrent

    env, p = envs.make("CartPole-v1", episode_stats=False)
    alternate = Recurrent(lambda obs: jnp.int32(1), lambda obs, m, k: (m, 1 - m))
    key = jax.random.key(4)
    lengths = np.asarray(jax.jit(lambda k: evaluate(env, p, alternate, k, 3, 500)[1])(key))
    k_reset, _ = jax.random.split(key)
    step = jax.jit(env.step)
    for i, k in enumerate(jax.random.split(k_reset, 3)):
        obs, state = env.reset(k, p)
        for t in range(500):
            obs, state, r, term, trunc, _ = step(jax.random.key(0), state, jnp.int32(1 - t % 2), p)
            if term or trunc:
                break
        assert lengths[i] == t + 1, (i, lengths[i], t + 1)
    pushes = np.asarray(evaluate(env, p, lambda o, k: jnp.int32(1), key, 3, 500)[1])
    assert lengths.min() > pushes.max()  # alternating keeps the pole up longer than always pushing
