"""jaxrl.core.offline: minibatches drawn from the dataset and an online buffer together (IQL's
fine-tuning, RO2O's mix_offline)."""
import jax.numpy as jnp
import numpy as np


def _toy_data(n: int):
    from jaxrl.core.offline import OfflineData

    z = jnp.zeros((n, 1))
    return OfflineData(z, z, jnp.zeros(n), z, jnp.zeros(n), jnp.zeros(1), jnp.ones(1), jnp.float32(0.0),
                       jnp.float32(1.0), jnp.float32(1.0))


def test_sample_with_online_draws_uniformly_from_both():
    """3 dataset rows (reward 0) and 1 online row (reward 1): a quarter of the minibatch is online;
    with the online buffer empty the minibatch is offline.sample's, row for row."""
    import jax

    from jaxrl.core import offline
    from jaxrl.core.buffer import buffer_add_if, buffer_init
    from jaxrl.core.offline import Batch

    data = _toy_data(3)._replace(rewards=jnp.array([0.0, 0.0, 0.0]), observations=jnp.arange(3.0)[:, None])
    t = Batch(jnp.full(1, 9.0), jnp.zeros(1), jnp.float32(1.0), jnp.zeros(1), jnp.float32(0.0))
    empty = buffer_init(t, 4)
    key = jax.random.key(0)
    b = offline.sample_with_online(data, empty, key, 64)
    np.testing.assert_array_equal(b.obs, offline.sample(data, key, 64).obs)
    assert float(b.reward.sum()) == 0.0
    b = offline.sample_with_online(data, buffer_add_if(empty, t, True), key, 20_000)
    frac = float(b.reward.mean())
    assert abs(frac - 0.25) < 0.015, frac  # 1 / (3 + 1); the binomial std is 0.003
    np.testing.assert_array_equal(b.obs[b.reward == 1.0], 9.0)  # the online rows are the stored transition's
