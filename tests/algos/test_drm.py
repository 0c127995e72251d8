"""Tests of jaxrl.algos.drm: the perturbation, awaken-std, lambda and expectile formulas against
hand-computed values; config errors; learning point-mass reach from pixels (a small form: one
conv layer on 32x32 images) and state-based Pendulum-v1. DrQ-v2's shared pieces are tested in
tests/core; benchmarks/drm_pixels.py compares DrM with DrQ-v2 on the swing-up tasks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.algos import drm
from jaxrl.core.drq import Actor, Critic
from jaxrl.core.evaluate import evaluate
from jaxrl.core.run import RunOptions, run


def test_perturb_interpolates_dense_layers_and_keeps_layernorm():
    actor = Actor(2, 4, (3,))
    x = jnp.ones((1, 5))
    theta = actor.init(jax.random.PRNGKey(0), x)
    phi = actor.init(jax.random.PRNGKey(1), x)
    out = drm.perturb(theta, phi, 0.3)
    for layer in ("Dense_0", "Dense_1", "Dense_2"):
        for leaf in ("kernel", "bias"):
            want = 0.3 * theta["params"][layer][leaf] + 0.7 * phi["params"][layer][leaf]
            np.testing.assert_allclose(out["params"][layer][leaf], want, rtol=1e-6)
    for leaf in ("scale", "bias"):  # LayerNorm keeps theta
        np.testing.assert_array_equal(out["params"]["LayerNorm_0"][leaf], theta["params"]["LayerNorm_0"][leaf])
    np.testing.assert_array_equal(drm.perturb(theta, phi, 1.0)["params"]["Dense_1"]["kernel"],
                                  theta["params"]["Dense_1"]["kernel"])


def test_perturb_covers_both_critic_heads():
    critic = Critic(4, (3,))
    theta = critic.init(jax.random.PRNGKey(0), jnp.ones((1, 5)), jnp.ones((1, 2)))
    phi = jax.tree.map(jnp.zeros_like, theta)
    out = drm.perturb(theta, phi, 0.5)
    dense = [k for k in theta["params"] if k.startswith("Dense")]
    assert len(dense) == 5  # trunk + 2 layers per head
    for k in dense:
        np.testing.assert_allclose(out["params"][k]["kernel"], 0.5 * theta["params"][k]["kernel"], rtol=1e-6)


def test_perturb_factor_awaken_std_and_lambda_by_hand():
    # alpha = clip(1 - 2 beta, 0.2, 0.9): beta 0 -> 0.9 (the max), 0.2 -> 0.6, 0.5 -> 0.2 (the min)
    np.testing.assert_allclose([float(drm.perturb_factor(b, 2.0, 0.2, 0.9)) for b in (0.0, 0.2, 0.5)],
                               [0.9, 0.6, 0.2], rtol=1e-6)
    # sigma_beta = 1 / (1 + exp(-10 (beta - 0.2))): 0.5 at the target, 1/(1+e^2) at beta 0
    np.testing.assert_allclose(float(drm.awaken_std(0.2, 0.2, 10.0)), 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(drm.awaken_std(0.0, 0.2, 10.0)), 1 / (1 + np.exp(2.0)), rtol=1e-6)
    # lambda = 0.6 / (1 + exp(50 (beta - 0.2))): 0.3 at the target, 0.6 / (1 + e^-5) at beta 0.1
    np.testing.assert_allclose(float(drm.exploit_lambda(0.2, 0.6, 0.2, 50.0)), 0.3, rtol=1e-6)
    np.testing.assert_allclose(float(drm.exploit_lambda(0.1, 0.6, 0.2, 50.0)), 0.6 / (1 + np.exp(-5.0)), rtol=1e-6)


def test_expectile_loss_weights_by_sign():
    u = jnp.array([-2.0, 1.0])  # V below Q weighs 0.9, above 0.1
    np.testing.assert_allclose(float(drm.expectile_loss(u, 0.9)), (0.9 * 4 + 0.1 * 1) / 2, rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"env": "CartPole-v1"}, "drm needs continuous actions; env 'CartPole-v1' has discrete actions"),
    ({"env": "Breakout-MinAtar"}, "drm needs continuous actions"),
    ({"image_size": 20}, "image_size must be an int >= 32, got 20"),
    ({"frame_stack": 0}, "frame_stack must be > 0"),
    ({"alpha_min": 0.9, "alpha_max": 0.5}, "alpha_min=0.9 must be <= alpha_max=0.5"),
    ({"expectile": 1.5}, r"expectile must be in \[0.0, 1.0\]"),
    ({"perturb_interval": 0}, "perturb_interval must be > 0"),
])
def test_bad_config_raises_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        drm.Config(**kwargs)


# CI form: 3k agent steps; the full form (`slow`) runs drm.PENDULUM (8k steps) on 4 seeds.
CI = dict(drm.PENDULUM, total_timesteps=3_000, num_chunks=2, perturb_interval=2_000)


@pytest.fixture(scope="module")
def pendulum_run():
    return run(drm.make_train(drm.Config(**CI)), RunOptions(progress=False, num_seeds=2, block_size=0))


def test_learns_pendulum_from_states(pendulum_run):
    final = np.asarray(pendulum_run.metrics["eval_return"][-1])
    assert np.all(final >= -400), final


def test_logs_dormant_ratio_std_and_perturbs(pendulum_run):
    m = pendulum_run.metrics
    for k in ("actor_dormant", "critic_dormant", "lambda", "std"):
        r = np.asarray(m[k])
        assert r.shape == (2, 2) and np.all((r >= 0) & (r <= 1)), k
    assert np.all(np.asarray(m["perturbations"][-1]) == 1)  # one multiple of 2000 steps in 3000
    assert np.all(np.asarray(m["awake_at"][-1]) > CI["learning_starts"])


@pytest.mark.slow
def test_learns_pendulum_full():
    res = run(drm.make_train(drm.Config(**drm.PENDULUM)), RunOptions(progress=False, num_seeds=4))
    assert np.all(np.asarray(res.metrics["eval_return"][-1]) >= -400)


# CI form from pixels: point-mass reach (target at the centre; the easiest pixel task), 32x32 RGB,
# one frame per observation, 50-step episodes, a one-conv-layer encoder, 4k agent steps, 2 seeds.
# A conv update costs about 35 ms for the 2 vmapped seeds on a 2-core CPU: about 110 s alone
# (block_size=0: one batch of 2 seeds, not a block of 4 with 2 fillers).
PIXELS_CI = dict(env="pixels/point_mass_reach", image_size=32, frame_stack=1, action_repeat=2, episode_steps=50,
                 total_timesteps=4_000, learning_starts=500, buffer_size=4_000, batch_size=64, feature_dim=32,
                 hidden=(64, 64), encoder_features=(8,), lr=1e-3, std_duration=2_500, perturb_interval=2_000,
                 eval_episodes=8, num_chunks=1)


def random_return(config: drm.Config, episodes: int = 64) -> float:
    """Mean return of uniform random actions on the config's env."""
    env, params = envs.make(config.env, **config.env_kwargs)
    spec = envs.spec(config.env, **config.env_kwargs)
    act = lambda obs, key: jax.random.uniform(key, (spec.action_dim,), jnp.float32, spec.low(), spec.high())
    ret, _ = jax.jit(lambda k: evaluate(env, params, act, k, episodes, spec.max_steps))(jax.random.PRNGKey(7))
    return float(ret)


@pytest.mark.timeout(600)
def test_learns_point_mass_reach_from_pixels():
    """Threshold: each seed's deterministic return (8 episodes) beats uniform random actions' (64
    episodes) by >= 10 and their mean by >= 25 (the return is at most 100: reward <= 1 per control
    step). Measured: random 41.1; DrM seeds 0-1 81.3 and 89.2, seeds 2-3 86.0 and 88.1. At 3k steps
    seed 0 is on the edge (79.0 in one run, 9.3 after a change of random streams), hence 4k."""
    cfg = drm.Config(**PIXELS_CI)
    res = run(drm.make_train(cfg), RunOptions(progress=False, num_seeds=2, block_size=0))
    final, rand = np.asarray(res.metrics["eval_return"][-1]), random_return(cfg)
    print(f"DrM point-mass reach from 32x32 pixels: {final} vs random {rand:.1f}")
    assert np.all(final >= rand + 10) and final.mean() >= rand + 25, (final, rand)
    dormant = np.asarray(res.metrics["actor_dormant"])
    assert dormant.shape == (1, 2) and np.all((dormant >= 0) & (dormant <= 1))
