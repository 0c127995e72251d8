"""Tests of jaxrl.algos.td3: the smoothed target action (noise clipped, then the action) and the
clipped double-Q target against hand-computed values; the delayed actor updates; config errors
(before anything compiles); determinism; learning on Pendulum-v1; the CLI's error exit."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.algos import td3
from jaxrl.algos.td3 import Config, make_policy, make_train, smoothed_target_action, td3_target
from jaxrl.core.run import RunOptions, run, seed_keys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ----------------------------------------------------------------------------- formulas


def test_smoothed_target_action_clips_the_noise_then_the_action():
    """Pendulum's range [-2, 2] (scale 2): policy_noise 0.2 * 2 = 0.4, noise_clip 0.5 * 2 = 1.
    noise 0.4 * [3, -1, 0.1, -4] = [1.2, -0.4, 0.04, -1.6] -> clipped to [1, -0.4, 0.04, -1];
    mu'(s') + noise = [2.9, -0.9, 0.04, -2.5] -> clipped to the action range [2, -0.9, 0.04, -2]."""
    a = jax.jit(smoothed_target_action)(jnp.array([1.9, -0.5, 0.0, -1.5]), jnp.array([3.0, -1.0, 0.1, -4.0]),
                                        0.4, 1.0, -2.0, 2.0)
    np.testing.assert_allclose(a, [2.0, -0.9, 0.04, -2.0], rtol=1e-6)


def test_td3_target_takes_the_smaller_critic():
    """y = r + discount min(Q'_1, Q'_2): [1 + 0.99 * 1, 0.5 + 0 * (...), -1 + 0.9 * -4]."""
    y = td3_target(jnp.array([1.0, 0.5, -1.0]), jnp.array([0.99, 0.0, 0.9]),
                   jnp.array([[1.0, 5.0, -2.0], [3.0, 2.0, -4.0]]))
    np.testing.assert_allclose(y, [1.99, 0.5, -4.6], rtol=1e-6)
    g = jax.grad(lambda q: td3_target(jnp.ones(3), jnp.ones(3), q).sum())(jnp.ones((2, 3)))
    np.testing.assert_array_equal(g, 0.0)  # no gradient into the targets


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"env": "CartPole-v1"}, "td3 needs continuous actions; env 'CartPole-v1' has discrete actions"),
    ({"env": "Acrobot-v1"}, "td3 needs continuous actions"),
    ({"batch_size": 512, "buffer_size": 256}, "batch_size=512 must be <= buffer_size=256"),
    ({"tau": 0.0}, r"tau must be in \(0.0, 1.0\]"),
    ({"tau": -0.1}, r"tau must be in \(0.0, 1.0\]"),
    ({"learning_starts": 50_000}, "learning_starts=50000 must be < total_timesteps=50000"),
    ({"updates_per_step": 0}, "updates_per_step must be > 0"),
    ({"updates_per_step": -2}, "updates_per_step must be > 0"),
    ({"policy_delay": 0}, "policy_delay must be > 0"),
    ({"policy_noise": -0.2}, "policy_noise must be >= 0"),
    ({"hidden": (64, 0)}, "hidden must be non-empty positive ints"),
])
def test_bad_config_raises_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)


def test_cli_rejects_a_discrete_env():
    proc = subprocess.run([sys.executable, "-m", "jaxrl.algos.td3", "--env", "CartPole-v1"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "continuous" in proc.stderr


# ----------------------------------------------------------------------------- short runs

SHORT = dict(total_timesteps=1_000, learning_starts=500, num_chunks=2, hidden=(16, 16), batch_size=32,
             buffer_size=1_000, eval_episodes=2)


@pytest.fixture(scope="module")
def short_runs():
    """One short Pendulum config, its vmapped 2-seed program compiled once and run twice."""
    cfg = Config(**SHORT)
    train = jax.jit(jax.vmap(make_train(cfg).train))
    keys = seed_keys(0, 2)
    return cfg, jax.device_get(train(keys)), jax.device_get(train(keys))


def test_same_seed_same_metrics_and_counts(short_runs):
    cfg, (_, m1), (_, m2) = short_runs
    assert {"env_steps", "return", "eval_return", "critic_loss", "actor_loss", "q_mean", "updates"} <= set(m1)
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k], err_msg=k)
    np.testing.assert_array_equal(m1["env_steps"], [[750, 1000]] * 2)
    np.testing.assert_array_equal(m1["updates"], [[250, 500]] * 2)
    assert np.all(np.isfinite(m1["eval_return"])) and np.all(np.isfinite(m1["actor_loss"]))
    assert not np.array_equal(m1["critic_loss"][0], m1["critic_loss"][1])


def _adam_count(train_state):
    """The step counter of a TrainState's (flattened) Adam."""
    counts = [x for p, x in jax.tree_util.tree_flatten_with_path(train_state.opt_state)[0]
              if "count" in jax.tree_util.keystr(p)]
    return np.asarray(counts[0])


def test_actor_updates_once_per_policy_delay_critic_updates(short_runs):
    cfg, (carry, _), _ = short_runs
    np.testing.assert_array_equal(_adam_count(carry.critic), [500, 500])
    np.testing.assert_array_equal(_adam_count(carry.actor), [500 // cfg.policy_delay] * 2)
    # the targets moved with the actor updates (Polyak), and stay behind the online networks
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), carry.actor.params, carry.actor_target))
    assert 0 < max(moved)


def test_policy_delay_rounds_chunks_to_whole_rounds():
    """With one update per iteration and delay 3, a chunk holds a multiple of 3 iterations."""
    cfg = Config(**{**SHORT, "policy_delay": 3})
    assert cfg.iters_per_chunk % 3 == 0 and cfg.iters_per_chunk >= 250


def test_policy_is_deterministic_and_in_bounds(short_runs):
    cfg, (carry, _), _ = short_runs
    one = jax.tree.map(lambda x: x[0], carry)
    act = make_policy(cfg, one)
    obs = jnp.array([1.0, 0.0, 0.5])
    np.testing.assert_array_equal(act(obs, jax.random.PRNGKey(0)), act(obs, jax.random.PRNGKey(1)))
    assert act(obs, None).shape == (1,) and float(jnp.abs(act(obs, None))[0]) <= 2.0
    noisy = make_policy(cfg, one, deterministic=False)
    assert float(jnp.abs(noisy(obs, jax.random.PRNGKey(0)))[0]) <= 2.0


# ----------------------------------------------------------------------------- learning

PENDULUM_CI = dict(td3.PENDULUM, total_timesteps=15_000)


@pytest.mark.timeout(600)
def test_td3_learns_pendulum():
    """CI form: 4 vmapped seeds, 15k env steps per seed (1k of them random warm-up), `PENDULUM`
    settings. Threshold: mean over seeds of the final deterministic evaluation (10 episodes per
    seed) >= -250 (random actions score about -1200)."""
    cfg = Config(**PENDULUM_CI)
    res = run(make_train(cfg), RunOptions(num_seeds=4, progress=False))
    final = np.asarray(res.final("eval_return"))
    print("TD3 Pendulum eval return per seed", final, "curve (mean over seeds)",
          np.asarray(res.metrics["eval_return"]).mean(-1))
    assert final.mean() >= -250, final


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_td3_learns_pendulum_full():
    """Full form: the official networks (256, 256), batch 256, lr 3e-4, 30k env steps, 4 seeds;
    mean final deterministic return >= -250."""
    cfg = Config(env="Pendulum-v1", total_timesteps=30_000, learning_starts=1_000, buffer_size=100_000)
    res = run(make_train(cfg), RunOptions(num_seeds=4, progress=False))
    final = np.asarray(res.final("eval_return"))
    print("TD3 Pendulum (official nets) eval return per seed", final)
    assert final.mean() >= -250, final


@pytest.mark.timeout(600)
def test_runs_on_mountain_car_continuous():
    """MountainCarContinuous-v0 (terminal at the goal, 999-step limit): a short run trains and
    evaluates with finite numbers."""
    cfg = Config(env="MountainCarContinuous-v0", total_timesteps=600, learning_starts=300, num_chunks=1,
                 hidden=(8, 8), batch_size=16, buffer_size=600, eval_episodes=1)
    _, m = jax.jit(make_train(cfg).train)(jax.random.PRNGKey(0))
    assert int(m["env_steps"][-1]) == 600 and int(m["updates"][-1]) == 300
    assert np.isfinite(m["critic_loss"]).all() and np.isfinite(m["eval_return"]).all()
