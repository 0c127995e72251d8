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


def _toy_learner():
    """carry: a key and a running sum; each chunk adds one uniform draw and the dataset's first reward."""
    import jax

    from jaxrl.core.offline import Learner

    def init(key, data):
        return key, jnp.float32(0.0)

    def update(carry, data):
        key, total = carry
        key, k = jax.random.split(key)
        total = total + jax.random.uniform(k) + data.rewards[0]
        return (key, total), {"total": total}

    return Learner(init, update)


def test_sweep_program_compiled_ahead_is_sweep():
    """sweep = sweep_program applied to (seed keys, stacked data): compiled ahead, the program gives
    sweep's metrics [datasets, seeds, chunks] exactly, and each dataset's rewards reach only its rows."""
    from jaxrl.core import offline

    datas = [_toy_data(2)._replace(rewards=jnp.full(2, r)) for r in (0.0, 10.0)]
    _, m = offline.sweep(_toy_learner(), datas, 3, 4, seed=1)
    args = (offline.seed_keys(1, 4), offline.stack(datas))
    _, m2 = offline.sweep_program(_toy_learner(), 3).lower(*args).compile()(*args)
    assert m["total"].shape == (2, 4, 3)
    np.testing.assert_array_equal(m["total"], m2["total"])
    np.testing.assert_allclose(m["total"][1] - m["total"][0], [[10.0, 20.0, 30.0]] * 4, rtol=1e-6)
