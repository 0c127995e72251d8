"""Policy smoothing: the certificate against hand-computed values, and noise-trained PPO learns."""
from statistics import NormalDist

import jax
import numpy as np
import pytest

from jaxrl.algos import policy_smoothing as ps

PHI = NormalDist()


def test_certificate_matches_a_hand_computed_value():
    # returns 1, 2, 2, 4 (n = 4), alpha = 0.5: eps = sqrt(ln 4 / 8); thresholds 1 and 2 carry mass,
    # the tie adds nothing, and at 4 the lower tail 1/4 - eps is clipped to 0.
    eps = (np.log(4.0) / 8.0) ** 0.5
    p1, p2 = 1.0 - eps, 0.75 - eps
    assert np.isclose(ps.certified_reward([4.0, 2.0, 1.0, 2.0], 1.0, 0.0, alpha=0.5), p1 + p2, atol=1e-5)
    shift = 0.5 / 0.25  # B / sigma
    hand = PHI.cdf(PHI.inv_cdf(p1) - shift) + PHI.cdf(PHI.inv_cdf(p2) - shift)
    assert np.isclose(ps.certified_reward([4.0, 2.0, 1.0, 2.0], 0.25, 0.5, alpha=0.5), hand, atol=1e-5)
    # a lower bound below 0: the area from `lower` up to the smallest return counts in full
    hand = -3.0 + 2.0 * (1.0 - (np.log(2.0 / 0.9) / 4.0) ** 0.5)
    assert np.isclose(ps.certified_reward([-1.0, -1.0], 1.0, 0.0, alpha=0.9, lower=-3.0), hand, atol=1e-5)


def test_budget_and_attacked_tail():
    assert np.isclose(ps.budget(0.1, 400), 2.0)
    assert np.isclose(ps.attacked_tail(0.5, 1.0, 1.0), PHI.cdf(-1.0), atol=1e-6)
    assert float(ps.attacked_tail(0.0, 1.0, 1.0)) == 0.0


def test_certificate_is_never_above_the_smoothed_return_and_falls_with_the_budget():
    rng = np.random.default_rng(0)
    r = rng.integers(0, 500, size=(50, 40)).astype(np.float32)  # 50 return samples of n = 40
    r[:10] = rng.choice([0.0, 500.0], size=(10, 40))  # some two-point distributions, ties included
    budgets = np.array([0.0, 0.1, 0.5, 2.0], np.float32)
    cert = jax.jit(jax.vmap(jax.vmap(ps.certified_reward, (None, None, 0)), (0, None, None)))
    bounds = np.asarray(cert(r, 0.2, budgets))  # [50, 4]
    assert np.all(bounds[:, 0] <= r.mean(1) + 1e-3)
    assert np.all(np.diff(bounds, axis=1) <= 1e-4)
    assert np.all(bounds >= 0.0)


@pytest.mark.parametrize("field, value", [("sigma", 0.0), ("sigma", -0.1), ("alpha", 1.0), ("epsilon", -1.0),
                                          ("reward_scale", 0.0)])
def test_bad_config(field, value):
    with pytest.raises(ValueError, match=field):
        ps.Config(**{field: value})


@pytest.fixture(scope="module")
def trained():
    cfg = ps.Config(total_timesteps=60_000, num_envs=8, num_steps=64, hidden=(32, 32), lr=1e-3, num_chunks=1,
                    cert_episodes=32, epsilon=0.02)
    carry, metrics = jax.jit(ps.make_train(cfg).train)(jax.random.key(0))
    return cfg, carry, metrics


def test_learns_cartpole_under_noise_and_certifies(trained):
    cfg, carry, m = trained
    smoothed = float(m["smoothed_return"][-1])
    cert = float(m["certified_return"][-1])
    assert smoothed >= 150, smoothed
    assert 0.0 < cert <= smoothed, (cert, smoothed)
