"""RARL and QARL: QARL's temperature curriculum, and robustness over a pole-length range on CartPole
against PPO trained on the nominal pole."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.robust import UncertaintySet, make_robust
from jaxrl.algos import ppo, qarl, rarl
from jaxrl.core.robust_eval import grid_returns

LENGTHS = UncertaintySet("CartPole-v1", (("length", 0.25, 2.5),))
PRO_STEPS = 300_000  # the protagonist's env steps; RARL's and QARL's adversaries take as many again
SEEDS = 32


def test_linear_schedule_is_monotone_and_reaches_the_target_at_its_fraction():
    cfg = qarl.Config(curriculum="linear", total_timesteps=2048 * 30, num_steps=128, num_chunks=1)
    n = cfg.num_iterations
    t = np.asarray(jax.vmap(lambda i: qarl.linear_temperature(cfg, i))(jnp.arange(n)))
    assert np.isclose(t[0], 0.05) and np.all(np.diff(t) <= 0)
    k = int(np.ceil(cfg.linear_fraction * n))
    assert np.allclose(t[k:], 0.001) and np.all(t[: k] > 0.001)


def test_spdl_moves_toward_the_target_within_its_kl_bound_and_never_back():
    cfg = qarl.Config()
    rng = np.random.default_rng(0)
    k, ks = jnp.float32(cfg.k_start), []
    step = jax.jit(lambda k, t, g: qarl.spdl_step(cfg, k, t, g))
    for i in range(40):
        temps = jnp.asarray(rng.gamma(float(k), 1 / cfg.gamma_rate, 8), jnp.float32)
        perf = jnp.asarray(rng.normal(50.0, 1.0, 8) * (i % 5 != 0), jnp.float32)  # every 5th: a failing protagonist
        k_new = step(k, temps, perf)
        assert float(qarl.gamma_kl(k_new, k)) <= cfg.kl_bound + 1e-4
        if i % 5 == 0:
            assert float(k_new) == float(k)  # performance under perf_lb: no move
        ks.append(float(k_new))
        k = k_new
    assert np.all(np.diff(ks) <= 0) and ks[-1] < 2.0  # monotone, and it gets near the target k = 1
    # the KL formula against a Monte-Carlo estimate
    x = rng.gamma(3.0, 1 / 1000.0, 200_000)
    mc = np.mean(qarl.gamma_logpdf(x, 3.0, 1000.0) - qarl.gamma_logpdf(x, 5.0, 1000.0))
    assert np.isclose(qarl.gamma_kl(3.0, 5.0), mc, atol=0.01)


def test_spdl_waits_for_30_pairs_then_steps_on_all_of_them():
    cfg = qarl.Config()  # 8 envs: 4 iterations of 8 pairs hold the code's 30
    assert qarl.spdl_rows(cfg) == 4
    buffer, filled, k = jnp.zeros((4, 2, 8)), jnp.int32(0), jnp.float32(cfg.k_start)
    rng = np.random.default_rng(1)
    temps = [jnp.asarray(rng.gamma(cfg.k_start, 1 / cfg.gamma_rate, 8), jnp.float32) for _ in range(4)]
    perf = [jnp.full(8, 50.0) for _ in range(4)]
    for i in range(4):
        k_next, buffer, filled = qarl.spdl_buffered(cfg, k, buffer, filled, temps[i], perf[i])
        assert (float(k_next) == float(k)) == (i < 3) and int(filled) == (i + 1) % 4
    assert float(k_next) == float(qarl.spdl_step(cfg, k, jnp.concatenate(temps), jnp.concatenate(perf)))


@pytest.mark.parametrize("bad, match", [(dict(curriculum="cosine"), "curriculum"),
                                        (dict(k_target=60.0), "k_target"), (dict(force_bound=0.0), "force_bound"),
                                        (dict(spdl_min_samples=0), "spdl_min_samples"),
                                        (dict(reward_scale=0.0), "reward_scale")])
def test_bad_config(bad, match):
    with pytest.raises(ValueError, match=match):
        qarl.Config(**bad)
    if "force_bound" in bad or "reward_scale" in bad:
        with pytest.raises(ValueError, match=match):
            rarl.Config(**bad)


def test_brax_foot_forces_are_channels_and_a_typo_lists_them():
    cfg = rarl.Config(env="brax/hopper", channels=("foot_force_x", "foot_force_z"))
    assert rarl.uncertainty_set(cfg).names == ("friction", "torso_mass", "thigh_mass")  # RRLS's hopper set
    with pytest.raises(ValueError, match="foot_force_x"):
        qarl.Config(env="brax/hopper", channels=("foot_force",))


def _grid(policy):
    """(worst, mean) return of `policy` over the 10-point length grid, 4 episodes per point."""
    env, p = make_robust("CartPole-v1")
    res = grid_returns(env, p, LENGTHS, LENGTHS.grid(10), policy, jax.random.key(9), 4, 500)
    return res.worst, res.mean


def _seed_worst(mod, cfg, player=lambda c: c, key=1, seeds=SEEDS):
    """Per seed (`seeds` keys split from `key`, vmapped in one program): `_grid` of the
    deterministic policy of `player(carry)`."""

    def one(k):
        carry, _ = mod.make_train(cfg).train(k)
        return _grid(mod.make_policy(cfg, player(carry)))

    worst, mean = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(key), seeds))
    return np.asarray(worst), np.asarray(mean)


SMALL = dict(num_envs=8, num_steps=128, hidden=(32, 32), num_chunks=1)


def _adversarial(**seeds):
    """{"rarl": (worst, mean), "qarl": ...} per seed, each protagonist at PRO_STEPS env steps (its
    adversary takes as many again: `total_timesteps` counts both players)."""
    return {name: _seed_worst(mod, mod.Config(total_timesteps=2 * PRO_STEPS, **SMALL), lambda c: c.pro, **seeds)
            for name, mod in (("rarl", rarl), ("qarl", qarl))}


@pytest.fixture(scope="module")
def ppo_nominal():
    return _seed_worst(ppo, ppo.Config(total_timesteps=PRO_STEPS, **SMALL))


def test_rarl_or_qarl_worst_case_over_pole_lengths_is_at_least_ppos(ppo_nominal):
    """The issue's claim: RARL's or QARL's (SPDL) worst-case return over the pole-length grid,
    mean over 32 seeds, is at least nominal PPO's; and both keep the pole up on average over the
    grid (mean return >= 200; random: about 20). Budgets as the RARL paper compares them: each
    method's protagonist gets the same env steps (300k), RARL's and QARL's adversaries take as
    many again (`total_timesteps` counts both players).

    Measured on the 2-core CPU (jax 0.9.2), mean worst case over seeds +- its standard error:
    QARL 402.0 +- 18.0, RARL 374.6 +- 20.0, PPO 351.3 +- 12.2; on the 16 seeds split from key 0,
    QARL 360.8, RARL 395.4, PPO 331.3. At equal total steps the gap is within the seeds' spread
    or reversed (16 seeds: at 300k RARL 358.6, QARL 339.4, PPO 331.3; at 150k QARL 271.0, RARL
    304.7, PPO 331.8): an earlier form of this test, QARL against PPO at 150k total steps on 4
    seeds, passed on one build (363.0 vs 334.5) and failed on another (241.9 vs 324.3), the
    training being chaotic in the last bits of XLA's CPU arithmetic."""
    ours = _adversarial()
    summary = {k: (round(float(w.mean()), 1), round(float(m.mean()), 1))
               for k, (w, m) in {**ours, "ppo": ppo_nominal}.items()}
    print("(mean worst, mean average) over seeds", summary)
    assert max(w.mean() for w, _ in ours.values()) >= ppo_nominal[0].mean(), summary
    assert all(m.mean() >= 200 for _, m in ours.values()), summary


@pytest.mark.slow
def test_long_form_the_same_claim_on_64_other_seeds():
    """The CI test's program on 64 seeds split from key 2, none of them the CI test's. Measured
    (2-core CPU, 309 s): mean worst case QARL 360.6, RARL 348.8, PPO 352.6.

    Not the claim at the default (64, 64) nets: there nominal PPO at 500k steps is at the
    ceiling of this set (16 seeds at 500k: mean worst case 497.3 of 500), and RARL and QARL at 1M
    total steps lose the long poles (mean worst case 18.8 and 17.5 over 16 seeds; on 4 RARL seeds
    the return falls to about 20 from a pole length of 1.25-1.75 up), their protagonists fitted to
    the cart-force adversary on the nominal pole; at 600k total, 2 of 4 such RARL seeds are perfect
    over the grid. The benchmark README has the table."""
    seeds = dict(key=2, seeds=64)
    ppo_worst = _seed_worst(ppo, ppo.Config(total_timesteps=PRO_STEPS, **SMALL), **seeds)[0]
    ours = {k: w for k, (w, _) in _adversarial(**seeds).items()}
    summary = {k: round(float(v.mean()), 1) for k, v in {**ours, "ppo": ppo_worst}.items()}
    print("mean worst case over seeds", summary)
    assert max(v.mean() for v in ours.values()) >= ppo_worst.mean(), summary


# ----------------------------------------------------------------------------- QARL's SAC learner

PENDULUM = dict(env="Pendulum-v1", learner="sac", channels=("m", "l"), force_bound=0.3, num_envs=1)
SAC_TINY = dict(PENDULUM, num_steps=16, total_timesteps=128, num_chunks=2, learning_starts=24, buffer_size=64,
                batch_size=16, hidden=(8,), spdl_min_samples=2, perf_lb=-1e6)


def test_sac_learner_bad_config():
    with pytest.raises(ValueError, match="qarl with learner='sac' needs continuous actions"):
        qarl.Config(learner="sac")  # CartPole-v1
    with pytest.raises(ValueError, match="learner"):
        qarl.Config(learner="td3")
    with pytest.raises(ValueError, match="learning_starts=128 must be in"):
        qarl.Config(**{**SAC_TINY, "learning_starts": 128})
    with pytest.raises(ValueError, match="batch_size=128 must be <= buffer_size=64"):
        qarl.Config(**{**SAC_TINY, "batch_size": 128})


def test_sac_learner_keeps_the_contract(tmp_path):
    """The SAC players' carry (the replay buffer included) resumes exactly, and seed i does not
    depend on the number of seeds (the registry's contract runs the PPO learner); SPDL moves the
    temperature (perf_lb below any return). Compiled with XLA's default settings: with the cheap
    ones (`fast_compile`) this program's adversary updates turn NaN on some seeds (measured: 10 of
    16 after 64 steps, none of 16 with the default settings). XLA's backend optimisation level 0
    alone does it (the other cheap flag alone does not), plain SAC at the same sizes stays finite,
    and a debug callback inside the gradient step makes it vanish. The replay rows of both builds
    are equal to the bit until one gradient step returns NaN parameters; that step, compiled alone
    at level 0 on the same inputs, stays finite; checkify finds no out-of-bounds index; jaxlib 0.10.2
    does the same. A code-generation fault of XLA's unoptimised CPU build of the whole program, not
    of the arithmetic; run() names fast_compile when its NaN guard stops such a run."""
    from jaxrl.core.run import RunOptions, run
    from tests.algos.contract import assert_same_runs

    def opts(**kw):
        return RunOptions(progress=False, **kw)

    cfg = qarl.Config(**SAC_TINY)
    t = qarl.make_train(cfg)
    ref = run(t, opts(num_seeds=2, log_dir=str(tmp_path / "ref")), config=cfg)
    run(t, opts(num_seeds=2, log_dir=str(tmp_path / "run"), checkpoint_every=1, stop_after=1), config=cfg)
    assert_same_runs(run(t, opts(num_seeds=2, resume=str(tmp_path / "run")), config=cfg), ref, [0, 1], [0, 1])
    assert_same_runs(run(t, opts(num_seeds=1), seeds=[1]), ref, [0], [1])
    m = ref.metrics
    assert np.isfinite(m["pro_critic_loss"]).all() and np.isfinite(m["adv_critic_loss"]).all()
    assert (np.asarray(m["temperature_mean"])[:, -1] < 0.05).all()  # k_start's mean is 0.05


def test_sac_learner_learns_pendulum_over_the_set():
    """Protagonist and adversary (mass and length pushed by up to +-0.3) as SAC, 6k env steps over
    both players, 2 seeds: the protagonist's average return over a 4x4 grid of mass x length in
    [0.5, 2]^2 is far above a random policy's (-1405), and the SPDL curriculum has moved the
    temperature below its start (perf_lb -1000, about a failing swing-up's discounted return).
    Measured: averages -817 / -808, mean temperature 0.032 (start 0.05)."""
    cfg = qarl.Config(**PENDULUM, num_steps=200, total_timesteps=6_000, num_chunks=1, batch_size=128,
                      learning_starts=1_000, actor_lr=1e-3, critic_lr=1e-3, hidden=(64, 64), spdl_min_samples=4,
                      perf_lb=-1000.0)
    grid = UncertaintySet("Pendulum-v1", (("m", 0.5, 2.0), ("l", 0.5, 2.0)))
    env, params = make_robust("Pendulum-v1")

    def one(key):
        carry, m = qarl.make_train(cfg).train(key)
        res = grid_returns(env, params, grid, grid.grid(4), qarl.make_policy(cfg, carry.pro), jax.random.key(7), 2, 200)
        return res.mean, m["temperature_mean"][-1]

    mean, temp = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 2))
    assert float(mean.mean()) >= -1100, mean
    assert (np.asarray(temp) < 0.045).all(), temp
