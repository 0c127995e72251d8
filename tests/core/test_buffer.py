"""The pure replay buffer (jaxrl.core.buffer)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.buffer import buffer_add, buffer_add_if, buffer_init, buffer_sample

f32 = lambda x: jnp.asarray(x, jnp.float32)


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


def test_add_if_writes_only_when_asked():
    from jaxrl.core.offline import Batch

    t = Batch(jnp.ones(2), jnp.ones(1), jnp.float32(1.0), jnp.ones(2), jnp.float32(0.0))
    buf = buffer_init(t, 2)
    same = buffer_add_if(buf, t, jnp.bool_(False))
    assert int(same.size) == 0 and int(same.ptr) == 0 and float(same.data.reward.sum()) == 0.0
    b = buffer_add_if(buffer_add_if(buffer_add_if(buf, t, True), t._replace(reward=jnp.float32(2.0)), True),
                      t._replace(reward=jnp.float32(3.0)), True)
    assert int(b.size) == 2 and int(b.ptr) == 1 and b.data.reward.tolist() == [3.0, 2.0]  # FIFO wrap-around
