"""A2PR: the advantage-guided target selection and the VAE loss on hand-built cases, config errors
before compiling, and learning on the small generated Pendulum medium-expert (mixed-quality) dataset."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.algos import a2pr
from jaxrl.core.run import RunOptions, run
from tests.offline_data import pendulum

SMALL = dict(total_updates=3_000, num_chunks=1, batch_size=128, actor_hidden=(64, 64), critic_hidden=(64, 64), vae_hidden=(64, 64),
             eval_episodes=10)


def test_guided_targets_hand_built():
    # four states, V = 0 everywhere:
    #  0: Q(s,a~) = 2 > Q(s,a) = 1 > 0      -> VAE action, weight 2 mask
    #  1: Q(s,a~) = -1 < Q(s,a) = 3         -> data action, weight mask (only the data is good)
    #  2: Q(s,a~) = 0 = V, Q(s,a) = -2      -> VAE action (A_vae >= A_data), weight mask (>= V counts)
    #  3: Q(s,a~) = -3 < Q(s,a) = -1 < 0    -> data action, weight 0 (neither is good)
    q_data, q_vae = jnp.array([1.0, 3.0, -2.0, -1.0]), jnp.array([2.0, -1.0, 0.0, -3.0])
    data_a, vae_a = jnp.array([[0.1], [0.2], [0.3], [0.4]]), jnp.array([[-0.1], [-0.2], [-0.3], [-0.4]])
    target, weight = a2pr.guided_targets(q_data, q_vae, jnp.zeros(4), data_a, vae_a, 0.5)
    np.testing.assert_allclose(target[:, 0], [-0.1, 0.2, -0.3, 0.4])
    np.testing.assert_allclose(weight, [1.0, 0.5, 0.5, 0.0])
    # ties of advantage go to the VAE's action; V shifts both advantages equally
    target, _ = a2pr.guided_targets(jnp.array([1.0]), jnp.array([1.0]), jnp.array([5.0]), data_a[:1], vae_a[:1], 1.0)
    np.testing.assert_allclose(target, vae_a[:1])


def test_vae_loss_hand_value():
    # recon error 0.25 on a good row, 1.0 on a bad row (ignored); KL of N(1, 1) vs N(0, 1) = 0.5 per dim
    recon, action = jnp.array([[0.5], [1.0]]), jnp.array([[0.0], [0.0]])
    mean, log_std = jnp.array([[1.0], [1.0]]), jnp.zeros((2, 1))
    loss = a2pr.vae_loss(recon, action, mean, log_std, jnp.array([1.0, 0.0]), 2.0)
    assert float(loss) == pytest.approx(2.0 * 0.25 / 2 + 0.5 * 0.5, rel=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("alpha", 0.0, "alpha must be > 0"), ("mask", -1.0, "mask must be >= 0"),
    ("vae_hidden", (), "vae_hidden must be"), ("policy_freq", 0, "policy_freq must be > 0"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        a2pr.Config(**{field: value})


def test_learns_mixed_quality():
    """Threshold: on medium-expert (medium then expert episodes), the mean over 2 seeds of the last
    evaluation (10 episodes each) >= 45 normalised (random = 0) and >= the medium half's behaviour
    score + 10 (it does better than imitating the average medium episode)."""
    _, data = pendulum()
    ds = data["medium-expert"]
    result = run(a2pr.make_train(a2pr.Config(**SMALL), ds), RunOptions(num_seeds=2, block_size=0, progress=False))
    final = result.final("normalized_score")
    behaviour = float(ds.normalized_score(ds.behavior_return))
    medium = float(data["medium"].normalized_score(data["medium"].behavior_return))
    print(f"A2PR medium-expert: {final} (behaviour {behaviour:.1f}, medium's {medium:.1f})")
    assert np.isfinite(result.metrics["critic_loss"]).all() and math.isfinite(medium)
    assert final.mean() >= max(45.0, medium + 10.0)
