"""Tests of jaxrl.algos.sac (its formulas are tested in tests/core/test_sac_players.py): config errors
(before anything compiles); determinism and what the buffer stores at time limits; the buffer's
size on device; learning on Pendulum-v1 and on a brax env; the CLI's error exit."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.algos import sac
from jaxrl.algos.sac import Config, make_policy, make_train
from jaxrl.core.buffer import buffer_init
from jaxrl.core.offpolicy import RowPacker, Transition
from jaxrl.core.run import RunOptions, run, seed_keys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"env": "CartPole-v1"}, "sac needs continuous actions; env 'CartPole-v1' has discrete actions"),
    ({"env": "Breakout-MinAtar"}, "sac needs continuous actions"),
    ({"env": "Pendulum-v9"}, "unknown env 'Pendulum-v9'"),
    ({"batch_size": 512, "buffer_size": 256}, "batch_size=512 must be <= buffer_size=256"),
    ({"tau": 0.0}, r"tau must be in \(0.0, 1.0\]"),
    ({"tau": 1.5}, r"tau must be in \(0.0, 1.0\]"),
    ({"learning_starts": 60_000}, "learning_starts=60000 must be < total_timesteps=50000"),
    ({"learning_starts": -1}, "learning_starts must be >= 0"),
    ({"updates_per_step": 0}, "updates_per_step must be > 0"),
    ({"updates_per_step": -0.5}, "updates_per_step must be > 0"),
    ({"gamma": 1.5}, "gamma must be in"),
    ({"num_envs": 0}, "num_envs must be > 0"),
    ({"n_step": 0}, "n_step must be > 0"),
    ({"log_std_min": 3.0}, "log_std_min=3.0 must be < log_std_max=2.0"),
    ({"hidden": ()}, "hidden must be non-empty"),
])
def test_bad_config_raises_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)


def test_cli_rejects_a_discrete_env():
    proc = subprocess.run([sys.executable, "-m", "jaxrl.algos.sac", "--env", "CartPole-v1"], cwd=REPO,
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
    assert {"env_steps", "return", "eval_return", "critic_loss", "actor_loss", "alpha", "entropy", "updates"} <= set(m1)
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k], err_msg=k)
    # 500 warm-up steps in init, then 250 env steps and 250 updates per chunk
    np.testing.assert_array_equal(m1["env_steps"], [[750, 1000]] * 2)
    np.testing.assert_array_equal(m1["updates"], [[250, 500]] * 2)
    assert np.all(np.isfinite(m1["eval_return"])) and np.all(np.isfinite(m1["critic_loss"]))
    assert not np.array_equal(m1["critic_loss"][0], m1["critic_loss"][1])  # the seeds differ


def test_buffer_bootstraps_time_limits_from_the_final_observation(short_runs):
    """Pendulum never terminates; its time limit (200 steps) truncates. Every stored transition
    keeps discount gamma, and its s' is the next stored s except at the episode ends (every 200th
    step), where s' is the final observation of the finished episode, not the next one's start."""
    cfg, (carry, _), _ = short_runs
    spec = envs.spec(cfg.env)
    rows = RowPacker(Transition(jnp.zeros(spec.obs_shape), jnp.zeros(spec.action_dim), 0.0, 0.0, jnp.zeros(spec.obs_shape)))
    t = rows.unpack(jnp.asarray(carry.buffer.data[0]))  # seed 0; the buffer holds all 1000 steps in order
    np.testing.assert_allclose(t.discount, cfg.gamma, rtol=1e-6)
    follows = np.all(np.isclose(t.next_obs[:-1], t.obs[1:]), axis=-1)
    ends = np.flatnonzero(~follows)
    np.testing.assert_array_equal(ends, [199, 399, 599, 799])
    # the final observations are real pendulum states (cos^2 + sin^2 = 1), not the next reset
    np.testing.assert_allclose(t.next_obs[ends, 0] ** 2 + t.next_obs[ends, 1] ** 2, 1.0, rtol=1e-5)
    assert np.all(np.abs(t.action) <= 2.0)


def test_n_step_and_fractional_update_ratio_run():
    """n_step = 3 primes its window in init; updates_per_step = 0.5 updates every second step."""
    cfg = Config(**{**SHORT, "n_step": 3, "updates_per_step": 0.5, "num_envs": 2, "eval_episodes": 0})
    carry, m = jax.jit(make_train(cfg).train)(jax.random.PRNGKey(0))
    # warm-up: 250 vectorised steps (500 env steps, the first 2 only priming the window); then
    # chunks of 125 vectorised steps (250 env steps) with one update each
    np.testing.assert_array_equal(m["env_steps"], [750, 1000])
    np.testing.assert_array_equal(m["updates"], [125, 250])
    assert np.all(np.isnan(m["eval_return"])) and np.all(np.isfinite(m["critic_loss"]))
    spec = envs.spec(cfg.env)
    rows = RowPacker(Transition(jnp.zeros(spec.obs_shape), jnp.zeros(spec.action_dim), 0.0, 0.0, jnp.zeros(spec.obs_shape)))
    discount = np.asarray(rows.unpack(carry.buffer.data[: int(carry.buffer.size)]).discount)
    assert int(carry.buffer.size) == 1000 - 2 * 2  # every env step but the 2 priming ones
    # 3-step discounts, shorter only where a time limit falls inside the window (no terminals)
    g = cfg.gamma
    assert np.isclose(discount, g**3).mean() > 0.95
    assert np.all(np.isclose(discount, g**3) | np.isclose(discount, g**2) | np.isclose(discount, g))


def test_policy_is_deterministic_and_in_bounds(short_runs):
    cfg, (carry, _), _ = short_runs
    one = jax.tree.map(lambda x: x[0], carry)
    act = make_policy(cfg, one)
    obs = jnp.array([1.0, 0.0, 0.5])
    a1, a2 = act(obs, jax.random.PRNGKey(0)), act(obs, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a1, a2)
    assert a1.shape == (1,) and float(jnp.abs(a1)[0]) <= 2.0
    noisy = make_policy(cfg, one, deterministic=False)
    assert not np.array_equal(noisy(obs, jax.random.PRNGKey(0)), noisy(obs, jax.random.PRNGKey(1)))


# ----------------------------------------------------------------------------- memory


def test_replay_buffer_bytes_for_a_million_17_dim_transitions():
    """brax/halfcheetah: 17-dim observations, 6-dim actions. One transition is one float32 row
    of 17 + 6 + 1 + 1 + 17 = 42 numbers, so 1M transitions take 168,000,000 bytes (160 MiB) per
    seed. (Shapes only: jax.eval_shape allocates nothing. Building the brax env takes minutes on a
    busy CPU, so its sizes are checked in the slow test below.)"""
    rows = RowPacker(Transition(jnp.zeros(17), jnp.zeros(6), 0.0, 0.0, jnp.zeros(17)))
    buf = jax.eval_shape(lambda: buffer_init(rows.row, 1_000_000))
    assert buf.data.shape == (1_000_000, 42) and buf.data.dtype == jnp.float32
    assert buf.data.size * buf.data.dtype.itemsize == 168_000_000


@pytest.mark.slow
def test_brax_halfcheetah_has_17_dim_observations_and_6_dim_actions():
    spec = envs.spec("brax/halfcheetah")
    assert spec.obs_shape == (17,) and spec.action_dim == 6


def test_the_carry_holds_one_buffer_and_little_else():
    """A 1M-transition SAC carry (Pendulum, the paper's 256x256 networks): one buffer of 1M rows,
    and everything else (networks, target, Adam states, env state) under 4 MB."""
    cfg = Config(buffer_size=1_000_000, learning_starts=1)
    carry = jax.eval_shape(make_train(cfg).init, jax.random.PRNGKey(0))
    big = [x for x in jax.tree.leaves(carry) if x.size >= 1_000_000]
    assert [x.shape for x in big] == [(1_000_000, 9)]
    others = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(carry)) - 1_000_000 * 9 * 4
    assert others < 4_000_000, others


def test_update_writes_the_buffer_in_place():
    """Compiled with the carry donated (as the run machinery does), one chunk needs temporary
    memory far below the buffer's size: XLA updates the buffer in place instead of copying it."""
    cfg = Config(**{**SHORT, "buffer_size": 1_000_000, "eval_episodes": 0})
    trainer = make_train(cfg)
    carry = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    compiled = jax.jit(trainer.update, donate_argnums=0).lower(carry).compile()
    mem = compiled.memory_analysis()
    buffer_bytes = 1_000_000 * 9 * 4  # Pendulum: 3 + 1 + 1 + 1 + 3 floats per row
    assert carry.buffer.data.size * 4 == buffer_bytes
    assert mem.temp_size_in_bytes < buffer_bytes / 10, mem


# ----------------------------------------------------------------------------- learning

PENDULUM_CI = dict(sac.PENDULUM, total_timesteps=10_000)


def _eval_returns(cfg, res):
    return np.asarray(res.final("eval_return"))


@pytest.mark.timeout(600)
def test_sac_learns_pendulum():
    """CI form: 4 vmapped seeds, 10k env steps per seed (1k of them random warm-up), `PENDULUM`
    settings. Threshold: mean over seeds of the final deterministic evaluation (10 episodes per
    seed) >= -250 (random actions score about -1200)."""
    cfg = Config(**PENDULUM_CI)
    res = run(make_train(cfg), RunOptions(num_seeds=4, progress=False))
    final = _eval_returns(cfg, res)
    print("SAC Pendulum eval return per seed", final, "curve (mean over seeds)",
          np.asarray(res.metrics["eval_return"]).mean(-1))
    assert final.mean() >= -250, final


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sac_learns_pendulum_full():
    """Full form: the paper's networks (256, 256), batch 256, lr 3e-4, 30k env steps, 4 seeds;
    mean final deterministic return >= -250."""
    cfg = Config(env="Pendulum-v1", total_timesteps=30_000, learning_starts=1_000, buffer_size=100_000)
    res = run(make_train(cfg), RunOptions(num_seeds=4, progress=False))
    final = _eval_returns(cfg, res)
    print("SAC Pendulum (paper nets) eval return per seed", final)
    assert final.mean() >= -250, final


BRAX = dict(env="brax/inverted_pendulum", total_timesteps=6_000, learning_starts=1_000, hidden=(64, 64),
            batch_size=128, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, buffer_size=50_000, eval_episodes=4,
            num_chunks=5)


BRAX_CI = dict(BRAX, total_timesteps=1_500, learning_starts=500, hidden=(32, 32), batch_size=64, buffer_size=1_500,
               eval_episodes=2, num_chunks=1)


@pytest.mark.timeout(900)
def test_sac_learns_brax_inverted_pendulum_ci():
    """CI form on brax: 4 vmapped seeds (one block: no dearer than 1), 1,500 env steps (500 random
    warm-up), (32, 32) networks. Random actions keep the pole up for about 11 steps; threshold: mean
    final deterministic return >= 30 (measured on seeds 0-3: 55.5, 64.0, 58.0, 51.0; 60.5, 63.0, 56.0,
    43.5 with XLA's default settings). Almost all of its cost is compiling brax's step, so it compiles
    with XLA's cheap settings: 116 CPU-s against 171 with the default ones."""
    res = run(make_train(Config(**BRAX_CI)), RunOptions(num_seeds=4, progress=False, fast_compile=True))
    final = _eval_returns(None, res)
    print("SAC brax/inverted_pendulum (CI form) eval return per seed", final)
    assert final.mean() >= 30, final


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sac_learns_brax_inverted_pendulum():
    """brax/inverted_pendulum (reward 1 per step until the pole falls, 1000-step limit), 4 vmapped
    seeds, 6k env steps per seed (1k random warm-up). Random actions keep the pole up for about
    11 steps (the first chunk's training return); threshold: mean final deterministic return over
    seeds >= 60. Measured (seeds 0-3): 99.8, 87.0, 125.2, 95.0. Slow form only: brax compiles and
    steps slowly on a CPU (about 250 CPU-seconds on 2 cores); CI runs the short form above."""
    cfg = Config(**BRAX)
    res = run(make_train(cfg), RunOptions(num_seeds=4, progress=False))
    final = _eval_returns(cfg, res)
    print("SAC brax/inverted_pendulum eval return per seed", final)
    assert final.mean() >= 60, final
