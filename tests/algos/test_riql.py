"""RIQL: the Huber loss and the ensemble quantile against hand values, config errors before
compiling, and learning on the small generated Pendulum medium dataset, clean and with 30% of its
dynamics randomly corrupted (thresholds in the test docstrings)."""
import numpy as np
import jax.numpy as jnp
import pytest

from envs.datasets.corrupt import corrupt
from jaxrl.algos import riql
from tests.offline_data import pendulum

SMALL = dict(total_updates=4_000, num_chunks=2, hidden=(64, 64), eval_episodes=10, num_critics=3)


def test_huber_hand_values():
    # sigma 1: b = 1; |x| < 1 -> x^2 / 2, else |x| - 1/2
    np.testing.assert_allclose(riql.huber(jnp.array([0.5, -2.0, 1.0]), 1.0), [0.125, 1.5, 0.5])
    # sigma 0.5: b = 4; x = 2 -> 4 / 8 = 0.5; x = -6 -> 6 - 2 = 4
    np.testing.assert_allclose(riql.huber(jnp.array([2.0, -6.0]), 0.5), [0.5, 4.0])
    # sigma 2: b = 0.25; x = 0.1 -> 0.01 / 0.5 = 0.02; x = 3 -> 2.875
    np.testing.assert_allclose(riql.huber(jnp.array([0.1, 3.0]), 2.0), [0.02, 2.875], rtol=1e-6)


def test_ensemble_quantile_hand_values():
    q = jnp.array([[4.0, 0.0], [1.0, 10.0], [3.0, 20.0], [2.0, 30.0], [0.0, 40.0]])  # K = 5, batch 2
    # sorted column 0: 0 1 2 3 4; alpha 0.25 -> position 1 -> 1; alpha 0.1 -> position 0.4 -> 0.4
    np.testing.assert_allclose(riql.ensemble_quantile(q, 0.25), [1.0, 10.0])
    np.testing.assert_allclose(riql.ensemble_quantile(q, 0.1), [0.4, 4.0], rtol=1e-6)
    np.testing.assert_allclose(riql.ensemble_quantile(q, 0.5), [2.0, 20.0])


@pytest.mark.parametrize("field, value, message", [
    ("quantile", 1.5, "quantile must be in"), ("sigma", 0.0, "sigma must be > 0"),
    ("num_critics", 0, "num_critics must be > 0"), ("target_clip", (5.0, 1.0), "target_clip must be"),
    ("expectile", 1.0, "expectile must be in"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        riql.Config(**{field: value})


def test_normalisation_uses_obs_and_next_obs():
    _, data = pendulum()
    ds = data["medium"]
    d = riql.riql_data(ds, __import__("envs").spec(ds.env), riql.Config())
    both = np.concatenate([ds.observations, ds.next_observations])
    np.testing.assert_allclose(d.obs_mean, both.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.obs_std, both.std(0) + 1e-3, rtol=1e-5)


def test_learns_medium_clean_and_corrupted():
    """One program over [clean, corrupted] x 2 seeds. Threshold: mean over 2 seeds of the last
    evaluation (10 episodes each) >= 25 normalised (random = 0) and >= the behaviour score - 15,
    on the clean medium dataset and with 30% of its next observations randomly corrupted (eps 1)."""
    _, data = pendulum()
    medium = data["medium"]
    bad = corrupt(medium, "dynamics", "random", rate=0.3, scale=1.0, seed=0)
    _, m = riql.train_sweep(riql.Config(**SMALL), [medium, bad], num_seeds=2)
    final = np.asarray(m["normalized_score"])[:, :, -1]
    behaviour = float(medium.normalized_score(medium.behavior_return))
    print(f"RIQL medium clean / corrupted dynamics: {final} (behaviour {behaviour:.1f})")
    assert np.isfinite(np.asarray(m["critic_loss"])).all()
    assert (final.mean(1) >= max(25.0, behaviour - 15.0)).all()


def test_gaussian_actor_option():
    """The official Gaussian option: the actor outputs (mean, log-std), acts at its mean, and 200
    updates of the weighted log-likelihood move the log-std off its initial 0 (the deterministic
    actor has no log-std); both variants' losses stay finite."""
    _, data = pendulum()
    ds = data["medium"]
    tiny = dict(total_updates=200, num_chunks=1, hidden=(16,), num_critics=2, batch_size=64, eval_episodes=0)
    cfg = riql.Config(**tiny, gaussian_actor=True)
    assert riql.Config().gaussian_actor is False
    assert riql.acting_mean(cfg, ("mean", "log_std")) == "mean"
    assert riql.acting_mean(riql.Config(), "action") == "action"
    carry, m = riql.train_sweep(cfg, [ds], num_seeds=1)
    log_std = np.asarray(carry.actor.params["params"]["log_std"])
    assert np.isfinite(np.asarray(m["actor_loss"])).all() and np.abs(log_std).min() > 0.01, log_std
    carry, m = riql.train_sweep(riql.Config(**tiny), [ds], num_seeds=1)
    assert "log_std" not in carry.actor.params["params"] and np.isfinite(np.asarray(m["actor_loss"])).all()
