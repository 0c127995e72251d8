"""jaxrl.models: the pretrained generator is good enough to fine-tune (one-step consistency samples
are recognisable digits, the classifier is accurate), it is cached and loaded by content hash,
a corrupt cache is refused, and the same recipe gives the same weights."""
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.models import generative as G
from jaxrl.models import pretrain

CHANCE = 0.1


@pytest.fixture(scope="module")
def pre():
    return pretrain.ensure()  # trained once per cache (JAXRL_CACHE, default ~/.cache/jaxrl), then read back


def _accuracy(pre, kind, params, steps, n=500):
    prompts = jnp.tile(jnp.arange(10), n // 10)
    sampler = G.make_sampler(kind, steps)
    net = pre.denoiser()
    images = jax.jit(lambda k: G.sample(sampler, lambda x, t, c: net.apply(params, x, t, c), k, prompts).images)(
        jax.random.PRNGKey(123))
    return float((pre.classifier_logits(images).argmax(-1) == prompts).mean())


@pytest.mark.timeout(600)
def test_one_step_consistency_samples_are_recognisable_digits(pre):
    acc = _accuracy(pre, "consistency", pre.consistency, 1)
    print(f"classifier agrees with the asked digit on {acc:.3f} of one-step samples (chance {CHANCE})")
    assert acc >= 4 * CHANCE, acc
    assert pre.info["classifier_test_accuracy"] >= 0.95  # the judge itself is accurate on held-out digits
    assert pre.info["scorer_pair_agreement"] >= 0.9  # the aesthetic scorer orders pairs as the rater does


@pytest.mark.timeout(600)
def test_ddim_samples_of_the_diffusion_model_are_digits(pre):
    assert _accuracy(pre, "ddim", pre.diffusion, 20) >= 0.8


def test_trajectory_log_probs_are_the_gaussian_formula(pre):
    sampler = G.make_sampler("consistency", 4)
    net = pre.denoiser()
    eps_fn = jax.jit(lambda x, t, c: net.apply(pre.consistency, x, t, c))
    prompts = jnp.array([3, 7])
    traj = G.sample(sampler, eps_fn, jax.random.PRNGKey(0), prompts)
    assert traj.states.shape == (4, 2, 8, 8) and traj.log_probs.shape == (4, 2)
    np.testing.assert_allclose(np.asarray(traj.states[1:]), np.asarray(traj.actions[:-1]))
    from envs.generative import denoising as D

    ab = D.alphas_cumprod().astype(np.float64)
    for t in range(4):
        tau, nxt = int(sampler.timesteps[t]), int(sampler.next_timesteps[t])
        x = np.asarray(traj.states[t], np.float64)
        eps = np.asarray(eps_fn(traj.states[t], tau, prompts), np.float64)
        x0 = np.clip((x - np.sqrt(1 - ab[tau]) * eps) / np.sqrt(ab[tau]), -1, 1)
        s = 10.0 * tau
        f = 0.25 / (s**2 + 0.25) * x + s / np.sqrt(s**2 + 0.25) * x0
        mean, var = np.sqrt(ab[nxt]) * f, 1 - ab[nxt]
        a = np.asarray(traj.actions[t], np.float64)
        want = (-(a - mean) ** 2 / (2 * var) - 0.5 * np.log(2 * np.pi * var)).mean((-2, -1))
        np.testing.assert_allclose(np.asarray(traj.log_probs[t]), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(traj.images), np.asarray(D.consistency_fn(
        eps_fn(traj.states[-1], 279, prompts), traj.states[-1], 279, ab.astype(np.float32))), atol=1e-6)
    with pytest.raises(ValueError, match="'euler'"):
        G.make_sampler("euler", 4)


def test_cache_load_by_hash_and_corruption(pre, tmp_path, monkeypatch):
    folder = pretrain.cache_root() / pre.recipe.hash
    monkeypatch.setenv(pretrain.CACHE_ENV, str(tmp_path))
    copy = pretrain.cache_root() / pre.recipe.hash
    shutil.copytree(folder, copy)
    loaded = pretrain.load_by_hash(pre.hash)
    assert loaded.hash == pre.hash and loaded.recipe == pre.recipe
    np.testing.assert_array_equal(jax.tree.leaves(loaded.consistency)[0], jax.tree.leaves(pre.consistency)[0])
    with pytest.raises(ValueError, match="no pretrained networks with that content hash"):
        pretrain.load_by_hash("0123456789abcdef")
    blob = bytearray((copy / "classifier.msgpack").read_bytes())
    blob[-1] ^= 1
    (copy / "classifier.msgpack").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="does not match its manifest"):
        pretrain.load_by_hash(pre.hash)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_same_recipe_same_weights(tmp_path, monkeypatch):
    """A lost cache rebuilds the same bytes (slow: one compile of the whole pretraining program)."""
    tiny = pretrain.Recipe(seed=3, hidden=16, depth=1, batch_size=16, diffusion_steps=3, distill_steps=3,
                           classifier_steps=3, scorer_steps=3)
    hashes = []
    for sub in ("a", "b"):
        monkeypatch.setenv(pretrain.CACHE_ENV, str(tmp_path / sub))
        hashes.append(pretrain.ensure(tiny).hash)
    assert hashes[0] == hashes[1]
    other = pretrain.ensure(pretrain.Recipe(**{**tiny.__dict__, "seed": 4})).hash
    assert other != hashes[0]
    with pytest.raises(ValueError, match="distill_ema"):
        pretrain.Recipe(distill_ema=1.0)
