"""Tests of jaxrl.algos.dqn: TD target and loss against hand-computed values, the epsilon schedule,
what the replay buffer stores at episode ends, config errors, determinism, the CNN (MinAtar) path,
and learning on CartPole-v1."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.algos.dqn import (
    Config, make_policy, make_train, td_loss, td_target, update_target,
)
from jaxrl.core.evaluate import evaluate
from jaxrl.core.run import RunOptions, run, seed_keys
from jaxrl.core.sweep import run_many

# a hand-built batch of three transitions with two actions
REWARD = jnp.array([1.0, 0.5, -1.0])
TERMINATED = jnp.array([False, True, False])
NEXT_Q_TARGET = jnp.array([[1.0, 3.0], [5.0, 2.0], [-2.0, -4.0]])
NEXT_Q_ONLINE = jnp.array([[5.0, 0.0], [0.0, 1.0], [0.0, 9.0]])
GAMMA = 0.9


def test_td_target_is_r_plus_gamma_max_target_q():
    y = td_target(REWARD, TERMINATED, GAMMA, NEXT_Q_TARGET)
    # y = r + gamma (1 - term) max_a' Q_target(s', a'); the terminal row keeps only r
    np.testing.assert_allclose(y, [1.0 + 0.9 * 3.0, 0.5, -1.0 + 0.9 * -2.0], rtol=1e-6)


def test_double_dqn_target_takes_argmax_from_online_net():
    y = td_target(REWARD, TERMINATED, GAMMA, NEXT_Q_TARGET, NEXT_Q_ONLINE)
    # online argmax: a* = [0, 1, 1]; evaluated by the target net: [1, (terminal), -4]
    np.testing.assert_allclose(y, [1.0 + 0.9 * 1.0, 0.5, -1.0 + 0.9 * -4.0], rtol=1e-6)


def test_td_target_has_no_gradient_through_next_q():
    g = jax.grad(lambda q: td_target(REWARD, TERMINATED, GAMMA, q).sum())(NEXT_Q_TARGET)
    np.testing.assert_array_equal(g, 0.0)


def test_td_loss_mse_and_huber():
    q = jnp.zeros(3)
    y = jnp.array([0.5, 2.0, -3.0])
    np.testing.assert_allclose(td_loss(q, y, "mse"), (0.25 + 4.0 + 9.0) / 3, rtol=1e-6)
    # Huber, delta 1: 0.5 e^2 where |e| <= 1, else |e| - 0.5
    np.testing.assert_allclose(td_loss(q, y, "huber"), (0.125 + 1.5 + 2.5) / 3, rtol=1e-6)


def test_update_target_hard_polyak_and_skip():
    online, target = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 6.0])}
    np.testing.assert_allclose(update_target(online, target, 1.0, True)["w"], [1.0, 2.0])
    np.testing.assert_allclose(update_target(online, target, 0.25, True)["w"], [2.5, 5.0])
    np.testing.assert_allclose(update_target(online, target, 0.25, False)["w"], [3.0, 6.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"env": "Pendulum-v1"}, "dqn needs discrete actions; env 'Pendulum-v1' has continuous actions. Use a discrete-action env"),
        ({"env": "brax/hopper"}, "dqn needs discrete actions; env 'brax/hopper' has continuous actions"),
        ({"env": "CartPole-v9"}, "unknown env 'CartPole-v9'"),
        ({"batch_size": 256, "buffer_size": 100}, "batch_size=256 must be <= buffer_size=100"),
        ({"num_envs": 0}, "num_envs must be > 0"),
        ({"buffer_size": -5}, "buffer_size must be > 0"),
        ({"batch_size": 0}, "batch_size must be > 0"),
        ({"total_timesteps": 0}, "total_timesteps must be > 0"),
        ({"target_update_interval": 0}, "target_update_interval must be > 0"),
        ({"learning_starts": -1}, "learning_starts must be >= 0"),
        ({"lr": -1e-3}, "lr must be > 0"),
        ({"start_e": 0.1, "end_e": 0.2}, r"end_e must be in \[0.0, 0.1\]"),
        ({"start_e": 1.5}, "start_e must be in"),
        ({"exploration_fraction": 0.0}, r"exploration_fraction must be in \(0.0, 1.0\]"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"tau": 0.0}, "tau must be in"),
        ({"loss": "l1"}, "loss must be one of"),
        ({"train_frequency": 3}, "train_frequency=3 must divide or be a multiple of num_envs=10"),
        ({"learning_starts": 200_000}, "learning_starts=200000 must be < total_timesteps"),
        ({"hidden": ()}, "hidden must be non-empty"),
    ],
)
def test_bad_config_raises_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)


def _short(**kw):
    base = dict(total_timesteps=3000, learning_starts=500, buffer_size=1000, num_chunks=2)
    return Config(**{**base, **kw})


@pytest.fixture(scope="module")
def short_runs():
    """One short CartPole config, its vmapped 2-seed program compiled once and run twice."""
    cfg = _short()
    train = jax.jit(jax.vmap(make_train(cfg).train))
    keys = seed_keys(0, 2)
    first = jax.device_get(train(keys))
    second = jax.device_get(train(keys))
    return cfg, keys, first, second


def test_hard_target_update_at_interval(short_runs):
    """The last step reaches 3000, a multiple of target_update_interval=500, so the target net must
    be an exact copy (tau = 1) of the online net, which has moved away from its initial value."""
    cfg, keys, (carry, _), _ = short_runs
    assert cfg.tau == 1.0 and 3000 % cfg.target_update_interval == 0
    online = jax.tree.map(lambda x: x[0], carry.train_state.params)
    target = jax.tree.map(lambda x: x[0], carry.target_params)
    jax.tree.map(np.testing.assert_array_equal, online, target)
    initial = jax.jit(make_train(cfg).init)(keys[0]).train_state.params
    assert all(not np.allclose(p, q) for p, q in zip(jax.tree.leaves(online), jax.tree.leaves(initial)))


def test_buffer_stores_final_observation_and_terminated(short_runs):
    """At an episode end the stored s' must be the last observation of the finished episode (which
    violates CartPole's bounds when terminated), not the reset observation that `step` returns."""
    cfg, _, (carry, _), _ = short_runs
    buf = jax.tree.map(lambda x: x[0], carry.buffer)
    # 3000 transitions went into 1000 slots: the buffer is full and its oldest slot is slot 0
    assert int(buf.size) == 1000 and int(buf.ptr) == 0
    data = buf.data
    x, theta = data.next_obs[:, 0], data.next_obs[:, 2]
    out_of_bounds = (np.abs(x) > 2.4) | (np.abs(theta) > 12 * 2 * math.pi / 360)
    term = data.terminated
    assert term.sum() > 10  # short episodes early in training; none can reach the 500-step limit
    np.testing.assert_array_equal(out_of_bounds, term)
    # within an episode s' is the next stored s of the same env (slots are step-major, env-minor)
    n = cfg.num_envs
    cont = ~term[:-n]
    np.testing.assert_array_equal(data.next_obs[:-n][cont], data.obs[n:][cont])
    assert not np.allclose(data.next_obs[:-n][term[:-n]], data.obs[n:][term[:-n]])


@pytest.mark.timeout(180)
def test_truncation_is_stored_as_non_terminal_with_final_observation(monkeypatch):
    """With an 8-step time limit and a random policy most episodes are truncated: their stored s' must
    be the final observation (differing from the next slot's reset observation) and their flag must
    stay False, so that the TD target bootstraps through the time limit."""
    real_make = envs.make
    monkeypatch.setattr(envs, "make", lambda name, **kw: real_make(name, **{"max_steps_in_episode": 8, **kw}))
    cfg = _short(total_timesteps=1000, learning_starts=990, start_e=1.0, end_e=1.0, num_chunks=1)
    res = run(make_train(cfg), RunOptions(num_seeds=1, block_size=0, progress=False))
    data = jax.tree.map(lambda x: np.asarray(x[0]), res.carry.buffer.data)
    x, theta = data.next_obs[:, 0], data.next_obs[:, 2]
    np.testing.assert_array_equal(data.terminated, (np.abs(x) > 2.4) | (np.abs(theta) > 12 * 2 * math.pi / 360))
    n = cfg.num_envs
    ended = np.any(data.next_obs[:-n] != data.obs[n:], axis=1)  # s' is not the next step's s
    truncated = ended & ~data.terminated[:-n]
    episodes = int(res.metrics["episodes"][0, 0])
    assert truncated.sum() > 0.5 * ended.sum() > 0
    # every episode end (terminal or truncation) shows up, except those in the last vectorised step
    assert episodes - n <= ended.sum() <= episodes


@pytest.mark.timeout(180)
def test_numeric_hyperparameters_vmap_in_run_many():
    """lr, gamma, tau, epsilon, learning_starts, target interval and grad clip vary inside one
    vmapped program; learning_starts (traced) must still gate the gradient steps: learning follows
    the vectorised steps whose env_steps exceed it, 2 gradient steps each."""
    base = dict(total_timesteps=2000, buffer_size=1000, num_chunks=1)
    cfgs = [
        Config(**base, learning_starts=500, lr=2.5e-4, gamma=0.99, tau=1.0, end_e=0.05,
               target_update_interval=500, max_grad_norm=10.0),
        Config(**base, learning_starts=300, lr=1e-3, gamma=0.9, tau=0.5, end_e=0.1,
               target_update_interval=300, max_grad_norm=5.0),
    ]
    res = run_many(make_train, cfgs, RunOptions(num_seeds=1, progress=False))
    np.testing.assert_array_equal(res.metrics["grad_steps"][-1, :, 0], [2 * 150, 2 * 170])
    np.testing.assert_allclose(res.metrics["epsilon"][-1, :, 0], [0.05, 0.1], rtol=1e-5)
    assert np.isfinite(res.metrics["loss"]).all()


@pytest.mark.timeout(180)
def test_minatar_uses_cnn_torso_and_trains():
    cfg = _short(env="Breakout-MinAtar", total_timesteps=1000, learning_starts=200, num_chunks=1)
    res = run(make_train(cfg), RunOptions(num_seeds=1, block_size=0, progress=False))
    params = jax.tree.map(lambda x: x[0], res.carry.train_state.params)
    conv = params["params"]["CNN_0"]["Conv_0"]["kernel"]
    assert conv.shape == (3, 3, 4, cfg.conv_features[0])
    assert np.isfinite(res.metrics["loss"]).all() and res.metrics["loss"][-1, 0] > 0
    env, env_params = envs.make(cfg.env)
    obs, _ = env.reset(jax.random.PRNGKey(0), env_params)
    carry = jax.tree.map(lambda x: x[0], res.carry)
    a = make_policy(cfg, carry)(obs, jax.random.PRNGKey(1))
    assert a.shape == () and 0 <= int(a) < env.action_space(env_params).n


def _greedy_returns(cfg, carry, num_episodes=32):
    """Per seed, the mean return of the greedy policy over `num_episodes` full episodes."""
    env, env_params = envs.make(cfg.env)
    max_steps = int(env_params.max_steps_in_episode)

    def one(c):
        return evaluate(env, env_params, make_policy(cfg, c), jax.random.PRNGKey(123),
                        num_episodes, max_steps)[0]

    return np.asarray(jax.jit(jax.vmap(one))(carry))


@pytest.mark.timeout(420)
def test_dqn_learns_cartpole():
    """CI form (the default config: 150k env steps per seed). Threshold: mean over 4 vmapped seeds
    of the greedy policy's return (32 evaluation episodes per seed, 500-step cap) >= 400.
    Measured on seed sets 0..3: means 498, 445, 500, 500."""
    cfg = Config()
    res = run(make_train(cfg), RunOptions(num_seeds=4, progress=False))
    greedy = _greedy_returns(cfg, res.carry)
    print("greedy return per seed", greedy, "final training return", res.final("return"))
    assert greedy.mean() >= 400, (greedy, res.final("return"))


@pytest.mark.timeout(420)
def test_double_dqn_learns_cartpole():
    """The Double DQN flag, same budget and threshold as test_dqn_learns_cartpole (greedy policy,
    mean over 4 vmapped seeds >= 400). Measured on seed sets 0..3: means 480, 500, 500, 481."""
    cfg = Config(double_dqn=True)
    res = run(make_train(cfg), RunOptions(num_seeds=4, progress=False))
    greedy = _greedy_returns(cfg, res.carry)
    print("double DQN greedy return per seed", greedy, "final training return", res.final("return"))
    assert greedy.mean() >= 400, (greedy, res.final("return"))
