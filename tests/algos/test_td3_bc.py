"""TD3+BC: lambda, actor loss and target smoothing against hand values, config errors, learning on a
small generated medium dataset (at or above the behaviour policy's score)."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.algos import td3_bc
from jaxrl.core.run import RunOptions, run
from tests.offline_data import pendulum

SMALL = dict(total_updates=6_000, num_chunks=3, hidden=(64, 64), eval_episodes=10)


def test_actor_loss_hand_values():
    q = jnp.array([1.0, -3.0])
    pi, a = jnp.array([[0.5], [0.0]]), jnp.array([[0.0], [0.0]])
    loss, lmbda, bc = td3_bc.actor_loss_terms(q, pi, a, alpha=2.5)
    assert float(lmbda) == pytest.approx(2.5 / 2.0)  # alpha / mean |Q|
    assert float(bc) == pytest.approx(0.125)  # mean of (0.25, 0)
    assert float(loss) == pytest.approx(-1.25 * -1.0 + 0.125)


def test_target_policy_smoothing_clips():
    out = td3_bc.target_action(jnp.array([0.9, 0.0, -0.2]), jnp.array([0.7, -0.8, 0.1]), 0.5)
    np.testing.assert_allclose(out, [1.0, -0.5, -0.1], rtol=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("alpha", 0.0, "alpha must be > 0"), ("policy_freq", 0, "policy_freq must be > 0"),
    ("polyak", 0.0, "polyak must be in"), ("gamma", 1.5, "gamma must be in"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        td3_bc.Config(**{field: value})


def test_learns_medium_at_or_above_behaviour():
    """Threshold: mean over 2 seeds of the last evaluation (10 episodes each) >= the medium
    dataset's behaviour score, and >= 25 (random = 0)."""
    _, data = pendulum()
    ds = data["medium"]
    result = run(td3_bc.make_train(td3_bc.Config(**SMALL), ds), RunOptions(num_seeds=2, block_size=0, progress=False))
    final = result.final("normalized_score")
    behaviour = float(ds.normalized_score(ds.behavior_return))
    print(f"TD3+BC medium: {final} (behaviour {behaviour:.1f})")
    assert result.metrics["updates"][-1].tolist() == [6_000, 6_000]
    assert final.mean() >= max(behaviour, 25.0)
