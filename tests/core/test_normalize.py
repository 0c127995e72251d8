"""The running normalisers (jaxrl.core.normalize) against numpy loops."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.normalize import (
    reward_scale, reward_scaler_init, rms_init, rms_normalize, rms_update, rms_update_batch, rms_var,
)

f32 = lambda x: jnp.asarray(x, jnp.float32)


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


def test_welford_matches_numpy_and_update_then_normalise():
    xs = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 3)).astype(np.float32)
    state = rms_init((3,))
    for t, x in enumerate(xs):
        state = rms_update(state, jnp.asarray(x))
        seen = xs[: t + 1].astype(np.float64)
        var = np.ones(3) if t == 0 else seen.var(axis=0, ddof=1)
        np.testing.assert_allclose(state.mean, seen.mean(axis=0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(rms_var(state), var, rtol=1e-4)
        # the observation is normalised with statistics that already include it
        np.testing.assert_allclose(
            rms_normalize(state, jnp.asarray(x)), (x - seen.mean(0)) / np.sqrt(var + 1e-8), rtol=1e-4, atol=1e-4
        )


def test_reward_scaler_matches_numpy_loop():
    rng = np.random.default_rng(1)
    rewards = rng.normal(1.0, 1.0, 60).astype(np.float32)
    dones = np.zeros(60, bool)
    dones[[9, 30, 31, 45]] = True
    gamma = 0.9
    u, us = 0.0, []
    state = reward_scaler_init()
    for r, d in zip(rewards, dones):
        u = gamma * u * (1.0 - d) + r  # the trace is zeroed on the terminal step before adding r
        us.append(u)
        var = 1.0 if len(us) < 2 else np.var(us, ddof=1)
        state, scaled = reward_scale(state, jnp.float32(r), jnp.bool_(d), gamma)
        assert float(state.ret) == pytest.approx(u, rel=1e-5, abs=1e-5)
        assert float(scaled) == pytest.approx(r / np.sqrt(var + 1e-8), rel=1e-4)
