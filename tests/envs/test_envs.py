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
    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)  # brax's reset op by op is slow
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


def _rollout(step, reset, space, params, n=8, steps=300):
    """Random actions for `steps` batched steps: (obs, reward, terminated, truncated, final obs)."""
    def body(c, k):
        obs, s = c
        k_a, k_s = jax.random.split(k)
        a = jax.vmap(space.sample)(jax.random.split(k_a, n))
        obs, s, r, term, trunc, info = step(jax.random.split(k_s, n), s, a, params)
        return (obs, s), (obs, r, term, trunc, info["final_observation"])

    init = reset(jax.random.split(jax.random.PRNGKey(0), n), params)
    return jax.jit(lambda: jax.lax.scan(body, init, jax.random.split(jax.random.PRNGKey(1), steps))[1])()


@pytest.mark.parametrize("name,limit", [("CartPole-v1", 40), ("Breakout-MinAtar", 60)])
def test_vec_env_and_step_follow_gymnax_step(name, limit):
    """`VecEnv(env).step` and `vmap(env.step)` compute gymnax's own auto-resetting `step`: same
    random stream, same episode ends and rewards; observations equal up to float rounding (XLA
    fuses CartPole's physics differently in the two programs: at most a few ulp; MinAtar's integer
    grids are exact)."""
    import gymnax

    env, params = envs.make(name, max_steps_in_episode=limit)
    raw, _ = gymnax.make(name)
    space = env.action_space(params)
    ref = _rollout(jax.vmap(raw.step, in_axes=(0, 0, 0, None)), jax.vmap(raw.reset, in_axes=(0, None)), space, params)
    venv = envs.VecEnv(env)
    for got in (_rollout(venv.step, venv.reset, space, params),
                _rollout(jax.vmap(env.step, in_axes=(0, 0, 0, None)), jax.vmap(env.reset, in_axes=(0, None)),
                         space, params)):
        (o_ref, r_ref, te_ref, tr_ref, f_ref), (o, r, te, tr, f) = ref, got
        assert int((te_ref | tr_ref).sum()) > 20  # the check covers many resets
        for a, b in ((r_ref, r), (te_ref, te), (tr_ref, tr)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_allclose(np.asarray(o), np.asarray(o_ref), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(f), np.asarray(f_ref), rtol=1e-6, atol=1e-6)


class _CountResets(envs.Wrapper):
    """Counts (on the host) every reset that actually runs."""

    def __init__(self, env, counter):
        super().__init__(env)
        self.counter = counter

    def reset(self, key, params=None):
        jax.debug.callback(lambda: self.counter.append(1))
        return self._env.reset(key, params)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the reset is skipped on a CPU only")
def test_vec_env_resets_only_when_an_episode_ends():
    counter = []
    env, params = envs.make("CartPole-v1", max_steps_in_episode=10, episode_stats=False)
    venv = envs.VecEnv(_CountResets(env, counter))
    obs, state = venv.reset(jax.random.split(jax.random.PRNGKey(0), 4), params)
    jax.effects_barrier()
    assert len(counter) == 1  # one batched reset at the start
    step = jax.jit(venv.step)
    ends = 0
    for t in range(25):
        obs, state, r, term, trunc, info = step(jax.random.split(jax.random.PRNGKey(t), 4), state,
                                                jnp.ones(4, jnp.int32), params)
        ends += bool(jnp.any(term | trunc))
    jax.effects_barrier()
    assert 0 < ends < 25
    assert len(counter) == 1 + ends  # a reset ran exactly at the steps where some copy ended


def test_transition_does_not_reset():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=3)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    for t in range(3):
        obs, state, r, term, trunc, info = env.transition(jax.random.PRNGKey(t), state, 0, params)
    assert bool(trunc) and int(state.env_state.time) == 3  # still the finished episode
    assert float(info["episode_return"]) == 3.0 and int(state.episode_length) == 0
    obs2, state2, *_ , info2 = env.step(jax.random.PRNGKey(7), state, 0, params)
    assert int(state2.env_state.time) == 0 and bool(info2["truncated"])  # step auto-resets
