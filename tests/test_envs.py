"""The env factory: gymnax and brax names, wrappers, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs


@pytest.mark.parametrize("name,obs_shape,discrete", [
    ("CartPole-v1", (4,), True),
    ("Pendulum-v1", (3,), False),
    ("Acrobot-v1", (6,), True),
    ("Breakout-MinAtar", (10, 10, 4), True),
])
def test_gymnax_envs(name, obs_shape, discrete):
    env, params = envs.make(name)
    assert env.observation_space(params).shape == obs_shape
    assert envs.is_discrete(env, params) == discrete
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == obs_shape
    action = env.action_space(params).sample(jax.random.PRNGKey(1))
    obs, state, r, term, trunc, info = jax.jit(env.step)(jax.random.PRNGKey(2), state, action, params)
    assert obs.shape == obs_shape and {"episode_return", "episode_done", "final_observation"} <= set(info)


def test_episode_stats_and_auto_reset():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=10)  # param override
    assert params.max_steps_in_episode == 10
    obs, state = env.reset(jax.random.PRNGKey(0), params)

    def step(c, k):
        s, = c
        obs, s, r, term, trunc, info = env.step(k, s, 0, params)
        return (s,), (r, term, trunc, info["episode_done"], info["episode_return"])

    _, (r, term, trunc, done, ret) = jax.lax.scan(step, (state,), jax.random.split(jax.random.PRNGKey(1), 40))
    first = int(np.argmax(np.asarray(done)))
    # always pushing left ends the episode by termination or the 10-step limit
    assert 0 < first + 1 <= 10
    assert float(ret[first]) == float(r[: first + 1].sum())  # return of the finished episode
    assert float(ret[first + 1]) == float(r[first + 1])  # the next episode starts from zero
    assert bool(jnp.all(done == jnp.logical_or(term, trunc)))


def test_unknown_env_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown env 'CartPol-v1'\. Did you mean: CartPole-v1"):
        envs.make("CartPol-v1")
    with pytest.raises(ValueError, match="brax/hoper"):
        envs.make("brax/hoper")
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['gravityy'\]"):
        envs.make("CartPole-v1", gravityy=1.0)


@pytest.mark.timeout(600)
def test_brax_env_through_gymnax_interface():
    env, params = envs.make("brax/inverted_pendulum", max_steps_in_episode=5)
    assert not envs.is_discrete(env, params)
    assert env.action_space(params).shape == (1,)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(env.step)
    # the state keeps its dtypes and weak types across a step, so a training carry compiles once
    after = step(jax.random.PRNGKey(9), state, jnp.zeros(1), params)[1]
    types = lambda t: jax.tree.map(lambda x: (x.dtype, x.weak_type), t)
    assert types(after) == types(state)
    truncs = []
    for i in range(6):
        obs, state, r, term, trunc, info = step(jax.random.PRNGKey(i), state, jnp.zeros(1), params)
        truncs.append(bool(trunc))
    assert obs.shape == env.observation_space(params).shape
    assert truncs[4] and not any(truncs[:4])  # time limit of 5 steps, then auto-reset
