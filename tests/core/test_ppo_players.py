"""jaxrl.core.ppo_players: the reward scale reaches the GAE targets, and only them."""
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.ppo_players import Player, advantages, check_settings

SETTINGS = dict(num_envs=2, num_steps=3, update_epochs=1, num_minibatches=1, gamma=0.9, gae_lambda=1.0,
                clip_eps=0.2, vf_coef=0.5)


def test_reward_scale_multiplies_the_targets():
    net = Player(1, False, (4,))
    params = jax.tree.map(jnp.zeros_like, net.init(jax.random.key(0), jnp.zeros((1, 2))))  # V = 0 everywhere
    t, n = 3, 2
    obs, zeros = jnp.ones((t, n, 2)), jnp.zeros((t, n))
    reward = jnp.array([[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]])
    done = jnp.zeros((t, n), bool)

    def batch(scale):
        s = types.SimpleNamespace(**SETTINGS, reward_scale=scale)
        return advantages(net, params, obs, jnp.zeros((t, n, 1)), zeros, zeros, obs, reward, done, done, s, 0.0)

    one, tenth = batch(1.0), batch(0.1)
    # V = 0 and lambda = 1: the target is the discounted sum of the rest of the rollout's rewards
    np.testing.assert_allclose(one.target[0, 0], 1.0 + 0.9 * 3.0 + 0.81 * -1.0, rtol=1e-6)
    np.testing.assert_allclose(tenth.target, 0.1 * one.target, rtol=1e-6)
    np.testing.assert_allclose(tenth.adv, 0.1 * one.adv, rtol=1e-6)


def test_check_settings_names_a_bad_reward_scale():
    with pytest.raises(ValueError, match="reward_scale"):
        check_settings(types.SimpleNamespace(**SETTINGS, reward_scale=0.0))
