"""The pieces DrQ-v2 and DrM share: random shift, dormant ratio, noisy actions, schedule."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.drq import Actor, dormant_ratio, dormant_ratio_of, linear_schedule, random_shift, sample_action, shift_image


def test_integer_shift_is_a_crop_of_the_padded_image():
    img = jax.random.randint(jax.random.PRNGKey(0), (12, 10, 3), 0, 256).astype(jnp.uint8)
    padded = np.pad(np.asarray(img, np.float32), ((4, 4), (4, 4), (0, 0)), mode="edge")
    for dy, dx in [(0, 0), (8, 8), (3, 5), (7, 0)]:
        out = shift_image(img, jnp.array([dy, dx], jnp.float32), 4)
        np.testing.assert_array_equal(np.asarray(out), padded[dy:dy + 12, dx:dx + 10])


def test_fractional_shift_interpolates_bilinearly():
    img = jnp.arange(36, dtype=jnp.float32).reshape(6, 6, 1)
    out = np.asarray(shift_image(img, jnp.array([2.5, 2.25]), 2))  # pad 2: shift 2 is the identity
    # the image is linear in (row, col), so bilinear resampling returns it at the shifted points
    rows, cols = np.meshgrid(np.arange(6) + 0.5, np.arange(6) + 0.25, indexing="ij")
    want = np.clip(rows, 0, 5) * 6 + np.clip(cols, 0, 5)
    np.testing.assert_allclose(out[:5, :5, 0], want[:5, :5], rtol=1e-6)


def test_random_shift_draws_integer_shifts_within_the_pad():
    imgs = jax.random.randint(jax.random.PRNGKey(1), (24, 8, 8, 3), 0, 256).astype(jnp.uint8)
    out = np.asarray(random_shift(jax.random.PRNGKey(2), imgs, 2))
    padded = np.pad(np.asarray(imgs, np.float32), ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    found = set()
    for i in range(24):
        match = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.array_equal(out[i], padded[i, dy:dy + 8, dx:dx + 8])]
        assert match, i
        found.add(match[0])
    assert len(found) > 8  # many different shifts


def test_dormant_ratio_counts_the_dead_units_of_a_hand_built_network():
    actor = Actor(action_dim=2, feature_dim=8, hidden=(6, 6))
    feats = jax.random.normal(jax.random.PRNGKey(0), (32, 5))
    params = actor.init(jax.random.PRNGKey(1), feats)
    p = jax.tree.map(np.array, params)["params"]
    # kill units: 3 of the trunk's 8 (zero kernel columns and biases) and 2 of the first hidden 6
    p["Dense_0"]["kernel"][:, [0, 3, 5]] = 0.0
    p["Dense_0"]["bias"][[0, 3, 5]] = 0.0
    p["Dense_1"]["kernel"][:, [1, 4]] = 0.0
    p["Dense_1"]["bias"][[1, 4]] = 0.0
    ratio = dormant_ratio(actor, {"params": p}, feats, tau=0.025)
    assert float(ratio) == pytest.approx(5 / (8 + 6 + 6 + 2))
    # units that are alive but tiny relative to their layer also count
    p["Dense_2"]["kernel"][:, 0] *= 1e-4
    p["Dense_2"]["bias"][0] = 0.0
    assert float(dormant_ratio(actor, {"params": p}, feats, tau=0.025)) == pytest.approx(6 / 22)


def test_dormant_ratio_of_layer_outputs_by_hand():
    h1 = jnp.array([[1.0, 0.0, 2.0, 0.01], [-1.0, 0.0, -2.0, 0.01]])  # means 1, 0, 2, .01; layer mean .7525
    h2 = jnp.array([[3.0, 3.0]])
    # tau = 0.025: threshold 0.0188 -> units 2 and 4 of h1 dormant; none of h2
    assert float(dormant_ratio_of([h1, h2], 0.025)) == pytest.approx(2 / 6)
    assert float(dormant_ratio_of([h1, h2], 0.0)) == pytest.approx(1 / 6)  # only the all-zero unit


def test_sample_action_clips_noise_clamps_and_passes_gradient_through():
    mu = jnp.array([0.0, 0.9, -0.5])
    a = sample_action(jax.random.PRNGKey(0), mu, 10.0, 0.3)
    np.testing.assert_allclose(np.abs(np.asarray(a - mu))[[0, 2]], 0.3, rtol=1e-6)  # std 10: the clip binds
    assert float(a[1]) <= 1.0 - 1e-6 + 1e-7
    grad = jax.grad(lambda m: sample_action(jax.random.PRNGKey(0), m, 10.0, 0.3).sum())(mu)
    np.testing.assert_array_equal(np.asarray(grad), 1.0)


def test_linear_schedule():
    assert float(linear_schedule(1.0, 0.1, 100, 0)) == 1.0
    np.testing.assert_allclose(float(linear_schedule(1.0, 0.1, 100, 50)), 0.55, rtol=1e-6)
    np.testing.assert_allclose(float(linear_schedule(1.0, 0.1, 100, 500)), 0.1, rtol=1e-6)
