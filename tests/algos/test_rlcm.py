"""RLCM: a short run raises the mean reward on every seed; the policy log-prob of a sampled step is
the Gaussian formula; same seed, same result; the pretrained hash is recorded; bad input fails
before anything compiles."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.generative import denoising as D
from jaxrl.algos import rlcm
from jaxrl.core.run import RunOptions, run
from jaxrl.models import pretrain
from jaxrl.models.generative import make_sampler, sample, step_log_prob


@pytest.fixture(scope="module")
def pre():
    return pretrain.ensure()


def start_reward(cfg, n=512):
    """Mean reward of the pretrained consistency model's samples (the run's starting value)."""
    from envs.generative import make_reward
    from envs.generative.prompts import sample_prompts

    p = pretrain.resolve(cfg.pretrained_hash, cfg.pretrain_seed)
    reward = make_reward(cfg.reward, classifier=p.classifier_logits, aesthetic=p.aesthetic_score)
    gen = rlcm.make_generate(cfg)
    prompts = sample_prompts(jax.random.PRNGKey(7), cfg.prompts, n)
    return float(jax.jit(lambda k: reward(gen(k, prompts), prompts).mean())(jax.random.PRNGKey(8)))


@pytest.mark.timeout(600)
def test_short_run_raises_reward_on_every_seed(pre):
    """1,024 samples per seed, 3 vmapped seeds, aesthetic reward: the last chunk's mean reward is
    above the pretrained model's by at least 2 (the scorer's spread over real digits is about 1.5)."""
    cfg = rlcm.Config(reward="aesthetic", total_samples=1024, num_chunks=2)
    res = run(rlcm.make_train(cfg), RunOptions(num_seeds=3, block_size=0, progress=False))
    before, after = start_reward(cfg), res.final("reward")
    print(f"aesthetic reward before {before:.2f}, after (per seed) {np.round(after, 2)}")
    assert res.metrics["samples"][-1].tolist() == [1024] * 3
    assert np.all(after >= before + 2.0), (before, after)
    assert np.all(np.isfinite(res.metrics["policy_loss"])) and np.all(res.metrics["clip_fraction"] <= 1)


def test_step_log_prob_is_the_gaussian_formula(pre):
    """log pi(a | s) of a sampled step, recomputed by the loss's path, equals the Gaussian
    log-density with the policy's mean and std, averaged over pixels."""
    sampler = make_sampler("consistency", 2)
    net = pre.denoiser()
    eps_fn = jax.jit(lambda x, t, c: net.apply(pre.consistency, x, t, c))
    prompts = jnp.array([0, 5, 9])
    traj = jax.jit(lambda k: sample(sampler, eps_fn, k, prompts))(jax.random.PRNGKey(1))
    t, t_next = int(sampler.timesteps[0]), int(sampler.next_timesteps[0])
    assert (t, t_next) == (999, 499)
    lp = step_log_prob(sampler, eps_fn, traj.states[0], traj.actions[0], jnp.full(3, t), jnp.full(3, t_next), prompts)
    ab = D.alphas_cumprod().astype(np.float64)
    x, a = np.asarray(traj.states[0], np.float64), np.asarray(traj.actions[0], np.float64)
    eps = np.asarray(eps_fn(traj.states[0], t, prompts), np.float64)
    f = np.clip((x - np.sqrt(1 - ab[t]) * eps) / np.sqrt(ab[t]), -1, 1)  # c_skip(999) ~ 2.5e-9: f = x0_hat
    mean, std = np.sqrt(ab[t_next]) * f, np.sqrt(1 - ab[t_next])
    want = (-0.5 * ((a - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).mean((-2, -1))
    np.testing.assert_allclose(np.asarray(lp), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(traj.log_probs[0]), want, rtol=1e-4, atol=1e-4)


@pytest.mark.timeout(600)
def test_same_seed_same_result(pre):
    cfg = rlcm.Config(total_samples=128, num_chunks=1, samples_per_iter=32, num_inference_steps=2)
    train = jax.jit(rlcm.make_train(cfg).train)
    (_, m1), (_, m2) = train(jax.random.PRNGKey(0)), train(jax.random.PRNGKey(0))
    for k in m1:
        np.testing.assert_array_equal(np.asarray(m1[k]), np.asarray(m2[k]), err_msg=k)
    _, m3 = train(jax.random.PRNGKey(1))
    assert float(m3["reward"][0]) != float(m1["reward"][0])


def test_pretrained_hash_recorded_and_checked(pre):
    assert rlcm.Config().pretrained_hash == pre.hash
    assert rlcm.Config(pretrained_hash=pre.hash).pretrained_hash == pre.hash
    cfg = rlcm.Config(pretrained_hash="0123456789abcdef")  # a config may name weights made elsewhere ...
    with pytest.raises(ValueError, match="0123456789abcdef"):
        rlcm.make_train(cfg)  # ... but training needs them in the cache


@pytest.mark.parametrize("kw, match", [
    (dict(reward="beauty"), "'beauty'"),
    (dict(num_inference_steps=0), "num_inference_steps.*got 0"),
    (dict(num_inference_steps=1), "num_inference_steps must be >= 2"),
    (dict(num_inference_steps=51), "got 51"),
    (dict(prompts=(3, 10)), "10 is outside"),
    (dict(prompts=()), "at least one"),
    (dict(num_minibatches=3), "num_minibatches=3"),
    (dict(clip_range=0.0), "clip_range"),
])
def test_bad_input(kw, match, monkeypatch):
    monkeypatch.setattr(pretrain, "resolve", lambda *a: pytest.fail("trained or loaded networks before checking"))
    with pytest.raises(ValueError, match=match):
        rlcm.Config(**kw)
