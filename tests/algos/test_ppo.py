"""PPO: learning thresholds, determinism, vmap == single runs, no hang, bad input."""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.algos import ppo
from jaxrl.core.evaluate import evaluate
from jaxrl.core.run import RunOptions, run, seed_keys

import envs


def _run(num_seeds=4, **kw):
    cfg = ppo.Config(**kw)
    return cfg, run(ppo.make_train(cfg), RunOptions(num_seeds=num_seeds, progress=False))


@pytest.mark.timeout(300)
def test_ppo_learns_cartpole():
    """Full form (the issue's): mean final training return >= 475 over 4 vmapped seeds in 500k steps."""
    cfg, res = _run(4)
    final = res.final("return")
    assert res.metrics["env_steps"][-1, 0] >= 500_000
    assert final.mean() >= 475, final
    # the greedy policy of seed 0 also balances: deterministic evaluation on 8 episodes
    carry0 = jax.tree.map(lambda x: x[0], res.carry)
    env, params = envs.make("CartPole-v1")
    mean, _ = jax.jit(lambda k: evaluate(env, params, ppo.make_policy(cfg, carry0), k, 8, 500))(jax.random.PRNGKey(9))
    assert float(mean) >= 475


@pytest.mark.timeout(300)
def test_ppo_learns_pendulum_short():
    """CI form: 300k steps, mean return >= -300 over 2 seeds (random policy: about -1200)."""
    cfg, res = _run(2, **{**ppo.PENDULUM, "total_timesteps": 300_000, "num_chunks": 5})
    first, final = np.nanmean(res.metrics["return"][0]), res.final("return")
    assert final.mean() >= -300, (first, final)
    assert first < -700  # it started from a poor policy: the threshold measures learning


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ppo_learns_pendulum_full():
    """Full form (the issue's): mean return >= -250 over 4 seeds within 1M steps."""
    cfg, res = _run(4, **ppo.PENDULUM)
    assert res.final("return").mean() >= -250, res.final("return")


SHORT = dict(total_timesteps=8192, num_chunks=2)


@pytest.mark.timeout(300)
def test_same_seed_same_metrics():
    _, a = _run(2, **SHORT)
    _, b = _run(2, **SHORT)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    _, c = _run(2, **{**SHORT, "lr": 1e-3})
    assert not np.array_equal(a.metrics["loss"], c.metrics["loss"])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("extra", [{}, {"env": "Pendulum-v1", "normalize_obs": True, "normalize_reward": True}])
def test_vmapped_seeds_equal_single_runs(extra):
    """4 vmapped seeds match 4 single runs of the same keys, update by update.

    Not bitwise: XLA:CPU compiles the batched (vmapped) program's matmuls and reductions into
    other loop nests than the unbatched one, so float32 sums are taken in another order. The first
    update differs by about one ulp; training then amplifies the difference, by how much depending
    on the seed and on the CPU's code paths (measured on Pendulum with normalisation, relative to
    each metric's scale: at most 2e-7 over the first 4 updates, up to 6e-5 after 12 and 3e-3 after
    13 on one seed, on a 2-core AMD EPYC; an earlier comparison after 16 updates held on one host and
    failed on another). So the comparison runs 4 updates, one chunk each: counts (env steps,
    episodes, CartPole's integer returns) are identical, every metric agrees to 1e-5 of its scale
    plus 1e-6 (policy_loss averages O(1) normalised-advantage terms down to ~1e-4, so its rounding
    follows the terms, not the mean), and the parameters to 1e-5 relative. Re-running the same program is bitwise identical
    (test_same_seed_same_metrics)."""
    cfg = ppo.Config(total_timesteps=4 * 512, num_chunks=4, **extra)
    trainer = ppo.make_train(cfg)
    keys = seed_keys(0, 4)
    carry_b, batched = jax.jit(jax.vmap(trainer.train))(keys)
    single = jax.jit(trainer.train)
    for i in range(4):
        carry_s, m = single(keys[i])
        assert m["env_steps"].shape == (4,)
        exact = ("env_steps", "episodes") + (() if extra else ("return",))  # CartPole returns are counts
        for k in exact:
            np.testing.assert_array_equal(np.asarray(batched[k][i]), np.asarray(m[k]), err_msg=f"seed {i} {k}")
        for k in m:  # NaN where no episode ended in a chunk, in both
            scale = float(np.nanmax(np.abs(np.asarray(m[k]))))
            np.testing.assert_allclose(np.asarray(batched[k][i]), np.asarray(m[k]), rtol=0, atol=1e-5 * scale + 1e-6,
                                       err_msg=f"seed {i} {k}")
        for a, b in zip(jax.tree.leaves(carry_b.train_state.params), jax.tree.leaves(carry_s.train_state.params)):
            np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.timeout(300)
def test_truncation_bootstrap_only_changes_truncated_episodes():
    """Without time limits reached (short CartPole episodes early in training) bootstrapping from
    final_observation and PureJaxRL's shifted values agree; on Pendulum every episode is truncated
    at 200 steps, and the two must differ. Pendulum runs with reward scaling, as `ppo.PENDULUM` trains
    it, so that the critic's values are on the scale of the scaled returns (measured: value losses
    0.7% apart after 4096 steps; 0.07% without scaling, where the untrained critic's values are tiny
    next to the raw returns)."""
    def metrics(**kw):
        _, m = jax.jit(ppo.make_train(ppo.Config(total_timesteps=4096, num_chunks=1, **kw)).train)(jax.random.PRNGKey(0))
        return m
    a, b = metrics(), metrics(bootstrap_truncation=False)
    for k in a:  # V(s') computed in another batched pass: equal up to float32 rounding
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-4, atol=1e-6, err_msg=k)
    pendulum = dict(env="Pendulum-v1", normalize_reward=True)
    a, b = metrics(**pendulum), metrics(**pendulum, bootstrap_truncation=False)
    assert int(a["episodes"][0]) > 0
    assert abs(float(a["value_loss"][0]) - float(b["value_loss"][0])) > 1e-3 * abs(float(a["value_loss"][0]))


@pytest.mark.timeout(240)
def test_orthogonal_init_vmapped_does_not_hang():
    """jaxlib 0.10.0-0.10.2 deadlock on CPU in jit(vmap(init)) of orthogonal-init nets.
    Run in a subprocess so a hang fails this test by timeout instead of stalling the suite."""
    code = (
        "import jax, jax.numpy as jnp\n"
        "from jaxrl.algos import ppo\n"
        "from jaxrl.core.run import seed_keys\n"
        "t = ppo.make_train(ppo.Config(total_timesteps=512, num_chunks=1))\n"
        "for n in (2, 4, 16):\n"
        "    c = jax.jit(jax.vmap(t.init))(seed_keys(0, n))\n"
        "    jax.block_until_ready(c)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=200)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


@pytest.mark.parametrize("kw,match", [
    ({"env": "CartPol-v1"}, r"unknown env 'CartPol-v1'.*CartPole-v1"),
    ({"num_envs": 0}, r"num_envs must be > 0, got 0"),
    ({"num_steps": -5}, r"num_steps must be > 0, got -5"),
    ({"total_timesteps": 0}, r"total_timesteps must be > 0"),
    ({"lr": 0.0}, r"lr must be > 0"),
    ({"num_minibatches": 3}, r"num_minibatches=3 must divide num_envs \* num_steps=512; allowed values: \[1, 2, 4"),
    ({"gamma": 1.5}, r"gamma must be in \[0.0, 1.0\]"),
    ({"hidden": ()}, r"hidden must be non-empty"),
])
def test_bad_config_raises_before_compilation(kw, match):
    with pytest.raises(ValueError, match=match):
        ppo.Config(**kw)


@pytest.mark.timeout(300)
def test_cli_prints_config_and_final_table(capsys):
    ppo.main(["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "4096",
              "--num-chunks", "2", "--progress", "False"])
    out = capsys.readouterr().out
    import re
    assert re.search(r"total_timesteps\s+= 4096", out) and "final return" in out and "mean" in out
