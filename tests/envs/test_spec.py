"""envs.spec: what an algorithm reads of an env before it builds networks."""
import numpy as np
import pytest
from gymnax.environments import spaces

import envs


def test_vector_discrete_continuous_and_image_envs():
    cp = envs.spec("CartPole-v1")
    assert (cp.obs_shape, cp.obs_dtype, cp.discrete, cp.action_dim, cp.max_steps) == ((4,), "float32", True, 2, 500)
    assert cp.action_low is None and cp.action_shape == () and not cp.image
    pend = envs.spec("Pendulum-v1")
    assert (pend.discrete, pend.action_dim, pend.action_shape, pend.max_steps) == (False, 1, (1,), 200)
    np.testing.assert_array_equal(pend.low(), [-2.0])
    np.testing.assert_array_equal(pend.high(), [2.0])
    assert pend.low().dtype == np.float32
    minatar = envs.spec("Breakout-MinAtar")
    assert minatar.image and minatar.obs_shape == (10, 10, 4) and minatar.action_dim == 3
    assert envs.spec("CartPole-v1", max_steps_in_episode=100).max_steps == 100  # make's overrides apply


def test_require_names_the_env_and_what_is_missing():
    with pytest.raises(ValueError, match=r"sac needs continuous actions; env 'CartPole-v1' has discrete actions"):
        envs.spec("CartPole-v1").require("sac", discrete=False)
    with pytest.raises(ValueError, match=r"dqn needs discrete actions; env 'Pendulum-v1' has continuous actions\. hint"):
        envs.spec("Pendulum-v1").require("dqn", discrete=True, hint="hint")
    with pytest.raises(ValueError, match=r"needs observations of rank 3; env 'CartPole-v1' has observations of shape \(4,\)"):
        envs.spec("CartPole-v1").require("drq", obs_ndim=(3,))
    assert envs.spec("Pendulum-v1").require("sac", discrete=False).action_dim == 1
    with pytest.raises(ValueError, match="unknown env 'CartPol'"):
        envs.spec("CartPol")


class _Duel(envs.Wrapper):
    """A two-player game: the protagonist pushes the cart, the adversary applies a bounded force."""

    num_players = 2

    def adversary_action_space(self, params=None):
        return spaces.Box(-0.5, 0.5, (2,))


def test_two_player_games_and_pixel_observations_fit():
    env, params = envs.make("CartPole-v1")
    s = envs.spec_of(_Duel(env), params, "duel")
    assert s.num_players == 2 and s.adversary.action_dim == 2 and not s.adversary.discrete
    np.testing.assert_array_equal(s.adversary.high(), [0.5, 0.5])

    class Pixels(envs.Wrapper):
        def observation_space(self, params=None):
            return spaces.Box(0, 255, (64, 64, 3), np.uint8)

    p = envs.spec_of(Pixels(env), params, "pixels")
    assert p.image and p.obs_dtype == "uint8" and p.obs_shape == (64, 64, 3)
