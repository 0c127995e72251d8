"""GAE, lambda- and n-step returns (jaxrl.core.returns) against hand-computed values."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.returns import gae, lambda_returns, nstep_returns

f32 = lambda x: jnp.asarray(x, jnp.float32)


# ---------------------------------------------------------------- GAE / returns
def test_gae_hand_computed_terminal():
    # gamma .9, lambda_ .8: deltas = [1+.9*.4-.5, 1+.9*.3-.4, 1-.3] = [.86, .87, .7]
    # A2 = .7; A1 = .87 + .72*.7 = 1.374; A0 = .86 + .72*1.374 = 1.84928
    adv, ret = gae(f32([1, 1, 1]), f32([.5, .4, .3]), f32([.4, .3, .2]),
                   f32([0, 0, 1]), f32([0, 0, 1]), 0.9, 0.8)
    np.testing.assert_allclose(adv, [1.84928, 1.374, 0.7], rtol=1e-6)
    np.testing.assert_allclose(ret, np.array([1.84928, 1.374, 0.7]) + [.5, .4, .3], rtol=1e-6)


def test_gae_truncation_bootstraps_but_cuts_recursion():
    # step 1 truncated (done, not terminated): delta1 still bootstraps from V(final obs) = .3,
    # but A1 does not chain into A2 (another episode). deltas = [.86, .87, .88]
    # A2 = .88; A1 = .87; A0 = .86 + .72*.87 = 1.4864
    adv, _ = gae(f32([1, 1, 1]), f32([.5, .4, .3]), f32([.4, .3, .2]),
                 f32([0, 0, 0]), f32([0, 1, 0]), 0.9, 0.8)
    np.testing.assert_allclose(adv, [1.4864, 0.87, 0.88], rtol=1e-6)


def test_lambda_returns_equal_gae_plus_values_and_mc_at_lambda_one():
    rng = np.random.default_rng(0)
    T = 17
    r, v, nv = (f32(rng.normal(size=T)) for _ in range(3))
    term = f32(rng.random(T) < 0.1)
    done = jnp.maximum(term, f32(rng.random(T) < 0.1))
    # GAE's value targets only equal lambda-returns when V(s'_t) = V(s_{t+1}) inside an episode
    v_next = jnp.where(done > 0, nv, jnp.concatenate([v[1:], nv[-1:]]))
    _, targets = gae(r, v, v_next, term, done, 0.97, 0.9)
    g = lambda_returns(r, v_next, term, done, 0.97, 0.9)
    np.testing.assert_allclose(g, targets, rtol=1e-5, atol=1e-5)
    # lambda_ = 1, gamma = 1, one terminal episode: Monte-Carlo returns [6, 5, 3]
    g = lambda_returns(f32([1, 2, 3]), f32([9, 9, 9]), f32([0, 0, 1]), f32([0, 0, 1]), 1.0, 1.0)
    np.testing.assert_allclose(g, [6, 5, 3])


def test_nstep_returns_hand_computed():
    r, nv = f32([1, 2, 3, 4]), f32([10, 20, 30, 40])
    zeros = f32([0, 0, 0, 0])
    # gamma .5, n 2: G0 = 1 + .5*2 + .25*20 = 7; G1 = 2 + 1.5 + 7.5 = 11; G2 = 3 + 2 + 10 = 15;
    # G3 = 4 + .5*40 = 24 (window cut by the trajectory end)
    np.testing.assert_allclose(nstep_returns(r, nv, zeros, zeros, 0.5, 2), [7, 11, 15, 24])
    # terminal at t=1: no bootstrap there; G0 = 1 + .5*2 = 2, G1 = 2
    term = f32([0, 1, 0, 0])
    np.testing.assert_allclose(nstep_returns(r, nv, term, term, 0.5, 2), [2, 2, 15, 24])
    # truncation at t=1: bootstrap from V(final obs) = 20; G0 = 7, G1 = 2 + .5*20 = 12
    np.testing.assert_allclose(nstep_returns(r, nv, zeros, term, 0.5, 2), [7, 12, 15, 24])
    # n = 1 is the one-step TD target
    np.testing.assert_allclose(nstep_returns(r, nv, zeros, zeros, 0.5, 1), r + 0.5 * nv)
    with pytest.raises(ValueError, match="n must be"):
        nstep_returns(r, nv, zeros, zeros, 0.5, 0)
