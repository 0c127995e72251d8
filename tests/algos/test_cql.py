"""CQL: the conservative penalty's sign and size on hand-built Q values, the tanh-Gaussian
log-probability, config errors, and learning on a small generated dataset."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.algos import cql
from jaxrl.core.run import RunOptions, run
from tests.offline_data import pendulum


def test_penalty_hand_values():
    # one state, one proposal of each kind, |A| = 1: uniform density 0.5 -> + log 2
    args = dict(q_rand=jnp.array([[1.0]]), q_pi=jnp.array([[2.0]]), logp_pi=jnp.array([[0.0]]),
                q_next_pi=jnp.array([[3.0]]), logp_next_pi=jnp.array([[0.0]]), action_dim=1)
    hand = math.log(math.exp(1.0 + math.log(2.0)) + math.exp(2.0) + math.exp(3.0))
    assert float(cql.cql_penalty(jnp.array([0.0]), **args)) == pytest.approx(hand, rel=1e-6)
    # Q highest at the dataset's action: the penalty is negative (nothing to push down)
    assert float(cql.cql_penalty(jnp.array([10.0]), **args)) == pytest.approx(hand - 10.0, rel=1e-6)
    # log-probabilities lower a proposal's weight; temperature T scales as T lse(c / T)
    lp = dict(args, logp_pi=jnp.array([[1.0]]))
    hand_lp = math.log(math.exp(1.0 + math.log(2.0)) + math.exp(1.0) + math.exp(3.0))
    assert float(cql.cql_penalty(jnp.array([0.0]), **lp)) == pytest.approx(hand_lp, rel=1e-6)
    hand_t = 2.0 * math.log(math.exp((1.0 + math.log(2.0)) / 2) + math.exp(1.0) + math.exp(1.5))
    assert float(cql.cql_penalty(jnp.array([0.0]), **args, temperature=2.0)) == pytest.approx(hand_t, rel=1e-6)


def test_penalty_gradient_pushes_data_up_and_proposals_down():
    q_data = jnp.array([0.5, -1.0])
    q_rand = jnp.array([[1.0, 0.0], [2.0, -2.0]])
    zeros = jnp.zeros((2, 2))

    def f(q_data, q_rand):
        return cql.cql_penalty(q_data, q_rand, zeros, zeros, zeros, zeros, action_dim=3)

    g_data, g_rand = jax.grad(f, (0, 1))(q_data, q_rand)
    np.testing.assert_allclose(g_data, [-0.5, -0.5])  # -1 / batch: minimising raises Q(s, a_data)
    assert (g_rand > 0).all()  # minimising lowers Q at the proposals
    # the proposal weights per state are a softmax over all 3n proposals, summing to 1 / batch
    g_all = jax.grad(lambda r, p, n: cql.cql_penalty(q_data, r, p, zeros, n, zeros, 3), (0, 1, 2))(q_rand, zeros, zeros)
    np.testing.assert_allclose(sum(g.sum(-1) for g in g_all), [0.5, 0.5], rtol=1e-6)


def test_tanh_gaussian_log_prob():
    mean, log_std = jnp.array([0.3, -0.2]), jnp.array([-0.5, 0.1])
    a, logp = cql.tanh_gaussian_sample(mean, log_std, jax.random.PRNGKey(0))
    u = np.arctanh(np.asarray(a, np.float64))
    std = np.exp(np.asarray(log_std, np.float64))
    hand = np.sum(-0.5 * ((u - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi) - np.log(1 - np.tanh(u) ** 2))
    assert float(logp) == pytest.approx(hand, rel=1e-4)


@pytest.mark.parametrize("field, value, message", [
    ("cql_alpha", -1.0, "cql_alpha must be >= 0"), ("num_sampled_actions", 0, "num_sampled_actions must be > 0"),
    ("cql_temperature", 0.0, "cql_temperature must be > 0"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        cql.Config(**{field: value})


def test_learns_well_above_random():
    """Threshold: mean over 2 seeds of the last evaluation (10 episodes each) on the medium-expert
    dataset >= 40 (random = 0, the dataset's behaviour about 70), in 3k updates (measured: 88 and 102)."""
    _, data = pendulum()
    ds = data["medium-expert"]
    cfg = cql.Config(total_updates=3_000, num_chunks=2, hidden=(64, 64), eval_episodes=10, actor_lr=3e-4,
                     batch_size=128, num_sampled_actions=4)
    result = run(cql.make_train(cfg, ds), RunOptions(num_seeds=2, block_size=0, progress=False))
    final = result.final("normalized_score")
    print(f"CQL medium-expert: {final} (behaviour {float(ds.normalized_score(ds.behavior_return)):.1f})")
    assert np.isfinite(result.metrics["cql_penalty"]).all()
    assert final.mean() >= 40.0
