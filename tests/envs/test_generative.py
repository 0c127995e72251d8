"""envs.generative: schedule and timestep grids, the sampler steps and Gaussian log-prob against
hand-computed numbers, rewards (PNG size through a host callback under jit/vmap, the proxy's
ranking), prompts and bad input."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.generative import data, denoising as D, rewards as R
from envs.generative.prompts import check_prompts


def test_digits_data():
    x, y = data.load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    tr, te = data.load_digits("train"), data.load_digits("test")
    assert len(tr[0]) + len(te[0]) == 1797 and len(te[0]) == 359
    assert not set(map(bytes, tr[0])) & set(map(bytes, te[0]))  # no image in both (digits has no duplicates)
    with pytest.raises(ValueError, match="'valid'"):
        data.load_digits("valid")


def test_timestep_grids():
    t, prev = D.ddim_timesteps(20)
    assert t.tolist() == list(range(999, 0, -50)) and prev.tolist() == list(range(949, -2, -50))
    t, nxt = D.consistency_timesteps(8)
    assert t.tolist() == [999, 879, 759, 639, 519, 399, 279, 159]
    assert nxt.tolist() == [879, 759, 639, 519, 399, 279, 159, 159]
    assert D.consistency_timesteps(2)[0].tolist() == [999, 499]
    assert D.consistency_timesteps(4)[0].tolist() == [999, 759, 519, 279]
    assert D.consistency_timesteps(1)[0].tolist() == [999]
    for bad in (0, -1, 51, 2.0, True):
        with pytest.raises(ValueError, match="num_inference_steps"):
            D.consistency_timesteps(bad)
    with pytest.raises(ValueError, match="got 0"):
        D.ddim_timesteps(0)


def test_schedule_and_boundary_scalings():
    ab = D.alphas_cumprod()
    assert ab[0] == pytest.approx(1 - 1e-4) and ab[1] == pytest.approx((1 - 1e-4) * (1 - (1e-4 + 0.0199 / 999)))
    c_skip, c_out = D.boundary_scalings(0)
    assert float(c_skip) == 1.0 and float(c_out) == 0.0
    c_skip, c_out = D.boundary_scalings(999)
    assert float(c_skip) == pytest.approx(0.25 / (9990**2 + 0.25), rel=1e-5)
    assert float(c_out) == pytest.approx(9990 / math.sqrt(9990**2 + 0.25), rel=1e-6)


def test_gaussian_log_prob_hand_computed():
    x = jnp.array([[[1.0, 0.0], [2.0, -1.0]]])  # one 2x2 image
    mean = jnp.zeros_like(x)
    lp = D.gaussian_log_prob(x, mean, 2.0)
    per_pixel = [-0.5 * (v / 2) ** 2 - math.log(2.0) - 0.5 * math.log(2 * math.pi) for v in (1.0, 0.0, 2.0, -1.0)]
    assert lp.shape == (1,) and float(lp[0]) == pytest.approx(sum(per_pixel) / 4, rel=1e-6)


def test_ddim_and_consistency_steps_hand_computed():
    alphas = jnp.array([0.9, 0.5], jnp.float32)
    x, eps = jnp.full((1, 1, 1), 0.3), jnp.full((1, 1, 1), 0.2)
    x0 = (0.3 - math.sqrt(0.5) * 0.2) / math.sqrt(0.5)
    sigma = math.sqrt((1 - 0.9) / (1 - 0.5) * (1 - 0.5 / 0.9))
    mean, std, x0_hat = D.ddim_step(eps, x, 1, 0, alphas, eta=1.0, clip_x0=False)
    assert float(x0_hat.squeeze()) == pytest.approx(x0, rel=1e-6)
    assert float(std) == pytest.approx(sigma, rel=1e-6)
    assert float(mean.squeeze()) == pytest.approx(math.sqrt(0.9) * x0 + math.sqrt(1 - 0.9 - sigma**2) * 0.2, rel=1e-6)
    # eta = 0 is deterministic DDIM
    assert float(D.ddim_step(eps, x, 1, 0, alphas, eta=0.0, clip_x0=False)[1]) == 0.0
    # consistency step from t = 1 to t = 0
    s = 10.0 * 1
    c_skip, c_out = 0.25 / (s**2 + 0.25), s / math.sqrt(s**2 + 0.25)
    mean, std, den = D.consistency_step(eps, x, 1, 0, alphas, clip_x0=False)
    assert float(den.squeeze()) == pytest.approx(c_skip * 0.3 + c_out * x0, rel=1e-6)
    assert float(mean.squeeze()) == pytest.approx(math.sqrt(0.9) * (c_skip * 0.3 + c_out * x0), rel=1e-6)
    assert float(std) == pytest.approx(math.sqrt(0.1), rel=1e-6)
    # clipping x0_hat to the pixel range
    assert float(D.ddim_step(jnp.full((1, 1, 1), -2.0), x, 1, 0, alphas)[2].squeeze()) == 1.0


def test_png_reward_is_the_real_size_under_jit_and_vmap():
    x, _ = data.load_digits()
    blank = -np.ones((8, 8), np.float32)
    assert R.png_bytes_np(blank) == 69.0  # an 8x8 black greyscale PNG
    batch = jnp.asarray(x[:6]).reshape(2, 3, 8, 8)
    got = jax.jit(jax.vmap(R.png_bytes))(batch)
    np.testing.assert_array_equal(np.asarray(got), R.png_bytes_np(x[:6]).reshape(2, 3))
    prompts = jnp.zeros(3, jnp.int32)
    comp = R.make_reward("compressibility")
    np.testing.assert_array_equal(np.asarray(jax.vmap(comp, (0, None))(batch, prompts)), -np.asarray(got))
    np.testing.assert_array_equal(np.asarray(R.make_reward("incompressibility")(batch[0], prompts)), np.asarray(got[0]))


def _spearman(a, b):
    ra, rb = (np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float) for v in (a, b))
    return np.corrcoef(ra, rb)[0, 1]


def test_compression_proxy_ranks_like_png_size():
    x, _ = data.load_digits()
    rng = np.random.default_rng(0)
    noisy = np.clip(x[:500] + rng.normal(0, 0.3, (500, 8, 8)), -1, 1).astype(np.float32)
    faded = np.clip(x[500:1000] * rng.uniform(0.2, 1, (500, 1, 1)), -1, 1).astype(np.float32)
    mix = np.concatenate([x[:500], noisy, faded])
    for images, floor in ((x[:800], 0.4), (mix, 0.8)):
        assert _spearman(R.png_bytes_np(images), np.asarray(R.compression_proxy(images))) >= floor


def test_prompt_alignment_and_clipping():
    logits = jnp.log(jnp.array([[0.7, 0.2, 0.1] + [1e-9] * 7]))
    assert float(R.prompt_alignment(logits, jnp.array([1]))[0]) == pytest.approx(0.2, rel=1e-5)
    seen = []
    reward = R.make_reward("aesthetic", aesthetic=lambda im: (seen.append(1), im.max((-2, -1)))[1])
    assert float(reward(jnp.full((1, 8, 8), 3.0), jnp.zeros(1, jnp.int32))[0]) == 1.0  # clipped to [-1, 1]
    assert float(R.rater_utility(jnp.full((8, 8), 1.0))) == 0.0
    centre = (-jnp.ones((8, 8))).at[2:6, 2:6].set(1.0)
    assert float(R.rater_utility(centre)) == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="'beauty'"):
        R.make_reward("beauty")
    with pytest.raises(ValueError, match="classifier"):
        R.make_reward("prompt_alignment")
    with pytest.raises(ValueError, match="aesthetic network"):
        R.make_reward("aesthetic")
    with pytest.raises(ValueError, match="10 is outside"):
        check_prompts([3, 10])
    with pytest.raises(ValueError, match="-1 is outside"):
        check_prompts(-1)
    with pytest.raises(ValueError, match="at least one"):
        check_prompts([])
    with pytest.raises(ValueError, match="integer"):
        check_prompts([1.5])
    assert check_prompts([1, 2.0]) == (1, 2)
