"""Sparse init and the torsos (jaxrl.core.nets)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.nets import CNN, MLP, TORCH_INIT, sparse_init

pytestmark = pytest.mark.timeout(120)

def _zeros_per_output(kernel):
    k = np.asarray(kernel).reshape(-1, kernel.shape[-1])  # (fan_in, fan_out)
    return (k == 0).sum(axis=0), k.shape[0]


@pytest.mark.parametrize("sparsity", [0.9, 0.5, 0.0])
def test_sparse_init_dense(sparsity):
    params = MLP((13,), 7, kernel_init=sparse_init(sparsity)).init(jax.random.PRNGKey(0), jnp.zeros(20))
    for layer, fan_in in (("Dense_0", 20), ("Dense_1", 13)):
        kernel = params["params"][layer]["kernel"]
        zeros, n_in = _zeros_per_output(kernel)
        assert n_in == fan_in
        assert (zeros == math.ceil(sparsity * fan_in)).all(), (layer, zeros)
        bound = 1.0 / math.sqrt(fan_in)
        assert np.abs(np.asarray(kernel)).max() <= bound
        assert np.abs(np.asarray(kernel)).max() > 0.5 * bound  # the dense draw spans the interval
        assert not np.asarray(params["params"][layer]["bias"]).any()


def test_sparse_init_conv():
    # 3x3 kernel over 4 channels: fan_in = 36, zeros per output channel = ceil(0.9 * 36) = 33
    params = CNN((16,), (3,), (1,), kernel_init=sparse_init(0.9)).init(jax.random.PRNGKey(1), jnp.zeros((10, 10, 4)))
    kernel = params["params"]["Conv_0"]["kernel"]
    assert kernel.shape == (3, 3, 4, 16)
    zeros, fan_in = _zeros_per_output(kernel)
    assert fan_in == 36 and (zeros == 33).all()
    assert np.abs(np.asarray(kernel)).max() <= 1.0 / 6.0


def test_sparse_init_patterns_differ_between_units():
    kernel = sparse_init(0.5)(jax.random.PRNGKey(2), (40, 8))
    masks = np.asarray(kernel) == 0
    assert len({m.tobytes() for m in masks.T}) == 8


def test_torch_init_is_uniform_in_one_over_sqrt_fan_in():
    # torch.nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so bound 0.25 for fan_in 16 and variance
    # bound^2 / 3
    kernel = np.asarray(TORCH_INIT(jax.random.PRNGKey(0), (16, 4000)))
    assert np.abs(kernel).max() <= 0.25
    assert np.abs(kernel).max() > 0.249
    assert kernel.var() == pytest.approx(0.25 ** 2 / 3, rel=0.02)


@pytest.mark.parametrize("sparsity", [1.0, -0.1, 1.5])
def test_sparse_init_bad_sparsity(sparsity):
    with pytest.raises(ValueError, match="sparsity"):
        sparse_init(sparsity)


def test_gaussian_log_prob_hand_value():
    from jaxrl.core.nets import gaussian_log_prob

    lp = gaussian_log_prob(jnp.zeros(2), jnp.array([0.0, math.log(2.0)]), jnp.array([1.0, 2.0]))
    hand = (-0.5 - 0.5 * math.log(2 * math.pi)) + (-0.5 - math.log(2.0) - 0.5 * math.log(2 * math.pi))
    assert float(lp) == pytest.approx(hand, rel=1e-6)


def test_gaussian_actor_mean_in_bounds_and_log_std_clipped():
    from jaxrl.core.nets import GaussianActor

    net = GaussianActor(2, (8,))
    params = net.init(jax.random.key(0), jnp.zeros((1, 3)))
    params = jax.tree_util.tree_map_with_path(  # push the log-std past its upper bound
        lambda path, x: jnp.full_like(x, 7.0) if "log_std" in str(path) else x * 100.0, params)
    mean, log_std = net.apply(params, jnp.ones((4, 3)) * 10.0)
    assert mean.shape == (4, 2) and bool(jnp.all(jnp.abs(mean) <= 1.0))
    np.testing.assert_array_equal(log_std, [2.0, 2.0])
