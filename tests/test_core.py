"""Unit tests of the utility core against hand-computed values and numpy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core import config as C
from jaxrl.core.buffer import buffer_add, buffer_init, buffer_sample
from jaxrl.core.normalize import (
    reward_scale, reward_scaler_init, rms_init, rms_normalize, rms_update, rms_update_batch, rms_var,
)
from jaxrl.core.returns import gae, lambda_returns, nstep_returns

f32 = lambda x: jnp.asarray(x, jnp.float32)


# ---------------------------------------------------------------- GAE / returns
def test_gae_hand_computed_terminal():
    # gamma .9, lam .8: deltas = [1+.9*.4-.5, 1+.9*.3-.4, 1-.3] = [.86, .87, .7]
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
    # lam = 1, gamma = 1, one terminal episode: Monte-Carlo returns [6, 5, 3]
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


# ---------------------------------------------------------------- normalisers
def test_running_mean_std_matches_numpy_on_a_stream():
    rng = np.random.default_rng(1)
    xs = rng.normal(3.0, 2.0, size=(200, 3)).astype(np.float32)
    s = rms_init((3,))
    np.testing.assert_array_equal(rms_var(s), 1.0)  # stream-x: var = 1 before 2 samples
    s = rms_update(s, xs[0])
    np.testing.assert_array_equal(s.mean, xs[0])
    np.testing.assert_array_equal(rms_var(s), 1.0)
    for x in xs[1:]:
        s = rms_update(s, x)
    np.testing.assert_allclose(s.mean, xs.mean(0), rtol=1e-5)
    np.testing.assert_allclose(rms_var(s), xs.var(0, ddof=1), rtol=1e-4)
    np.testing.assert_allclose(rms_normalize(s, xs[5]), (xs[5] - xs.mean(0)) / np.sqrt(xs.var(0, ddof=1) + 1e-8), rtol=1e-4)
    # batched (Chan) merge equals the stream
    b = rms_update_batch(rms_update_batch(rms_init((3,)), xs[:70]), xs[70:])
    np.testing.assert_allclose(b.mean, s.mean, rtol=1e-5)
    np.testing.assert_allclose(rms_var(b), rms_var(s), rtol=1e-4)


def test_reward_scaler_matches_numpy_loop():
    rng = np.random.default_rng(2)
    rewards = rng.normal(size=50).astype(np.float32)
    dones = (rng.random(50) < 0.1).astype(np.float32)
    s = reward_scaler_init()
    u, us, out = 0.0, [], []
    for r, d in zip(rewards, dones):
        s, scaled = reward_scale(s, f32(r), f32(d), 0.99)
        u = 0.99 * u * (1 - d) + r
        us.append(u)
        var = 1.0 if len(us) < 2 else np.var(us, ddof=1)
        out.append(r / np.sqrt(var + 1e-8))
        np.testing.assert_allclose(scaled, out[-1], rtol=1e-4)


# ---------------------------------------------------------------- replay buffer
def test_buffer_wraps_around_and_keeps_dtype():
    example = {"obs": jnp.zeros((2, 2), jnp.uint8), "r": jnp.float32(0)}
    buf = buffer_init(example, capacity=5)
    assert buf.data["obs"].dtype == jnp.uint8 and buf.data["obs"].shape == (5, 2, 2)

    def batch(lo, hi):
        i = jnp.arange(lo, hi)
        return {"obs": jnp.broadcast_to(i[:, None, None], (hi - lo, 2, 2)).astype(jnp.uint8), "r": i.astype(jnp.float32)}

    buf = buffer_add(buf, batch(0, 3))
    assert int(buf.ptr) == 3 and int(buf.size) == 3
    samples = buffer_sample(buf, jax.random.PRNGKey(0), 256)
    assert set(np.unique(samples["r"]).tolist()) <= {0.0, 1.0, 2.0}  # only filled slots
    buf = buffer_add(buf, batch(3, 6))
    assert int(buf.ptr) == 1 and int(buf.size) == 5
    np.testing.assert_array_equal(buf.data["r"], [5, 1, 2, 3, 4])  # item 5 overwrote slot 0
    assert buf.data["obs"].dtype == jnp.uint8
    np.testing.assert_array_equal(buf.data["obs"][0], 5)
    # jittable and vmappable over seeds
    stacked = jax.vmap(lambda _: buffer_init(example, 5))(jnp.arange(3))
    stacked = jax.jit(jax.vmap(buffer_add))(stacked, jax.vmap(lambda _: batch(0, 2))(jnp.arange(3)))
    np.testing.assert_array_equal(stacked.size, [2, 2, 2])


def test_buffer_bad_input():
    with pytest.raises(ValueError, match="capacity"):
        buffer_init(jnp.zeros(2), 0)
    buf = buffer_init(jnp.zeros(2), 2)
    with pytest.raises(ValueError, match="exceeds buffer capacity 2"):
        buffer_add(buf, jnp.zeros((3, 2)))


# ---------------------------------------------------------------- config checks
def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="lr must be > 0, got -1"):
        C.check_positive("lr", -1)
    with pytest.raises(ValueError, match=r"lam must be in \[0, 1\], got 1.5"):
        C.check_range("lam", 1.5, 0, 1)
    with pytest.raises(ValueError, match=r"allowed values: \[1, 2, 3, 6\]"):
        C.check_divides("num_minibatches", 4, "batch", 6)
    with pytest.raises(ValueError, match="must be one of"):
        C.check_choice("opt", "sgdd", ["sgd", "adam"])
    # traced values pass through (they were validated before tracing)
    jax.jit(lambda x: C.check_positive("lr", x) or x)(-1.0)
