"""Tests of jaxrl.core.offpolicy against hand-computed values: the update-to-data schedule, the
Polyak update, uniform warm-up actions, n-step transitions cut at episode ends, packing
transitions into buffer rows, and the twin critic of jaxrl.core.nets."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from jaxrl.core.nets import QEnsemble
from jaxrl.core.offpolicy import (
    RowPacker, Step, Transition, nstep_push, nstep_return, nstep_window, polyak_update, random_actions,
    update_schedule,
)


@pytest.mark.parametrize("ratio, num_envs, expected", [
    (1.0, 1, (1, 1)),      # one update after every env step
    (0.5, 1, (2, 1)),      # one update every second env step
    (4, 1, (1, 4)),
    (1.0, 8, (1, 8)),      # 8 envs: 8 transitions per vectorised step, 8 updates
    (0.25, 8, (1, 2)),
    (0.1, 4, (5, 2)),      # 20 transitions, 2 updates
    (1 / 3, 1, (3, 1)),
])
def test_update_schedule(ratio, num_envs, expected):
    vec_steps, updates = update_schedule(ratio, num_envs)
    assert (vec_steps, updates) == expected
    assert updates / (vec_steps * num_envs) == pytest.approx(ratio)


@pytest.mark.parametrize("ratio", [0, -1.0, 0.0, float("nan"), None, True])
def test_update_schedule_rejects_non_positive(ratio):
    with pytest.raises(ValueError, match="updates_per_step must be > 0"):
        update_schedule(ratio, 1)


def test_update_schedule_rejects_ratios_without_a_short_pattern():
    with pytest.raises(ValueError, match="updates_per_step=0.123456789"):
        update_schedule(0.123456789, 1)


def test_polyak_update_by_hand():
    online = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(4.0)}
    target = {"w": jnp.array([3.0, 6.0]), "b": jnp.array(0.0)}
    out = polyak_update(online, target, 0.25)  # 0.25 online + 0.75 target
    np.testing.assert_allclose(out["w"], [2.5, 5.0])
    np.testing.assert_allclose(out["b"], 1.0)
    np.testing.assert_allclose(polyak_update(online, target, 1.0)["w"], [1.0, 2.0])  # tau = 1 copies
    np.testing.assert_allclose(polyak_update(online, target, 0.005)["w"], [2.99, 5.98], rtol=1e-6)


def test_random_actions_cover_the_action_box_and_discrete_sets():
    a = jax.jit(random_actions, static_argnums=(1, 2))(jax.random.PRNGKey(0), envs.spec("Pendulum-v1"), 4096)
    assert a.shape == (4096, 1) and a.dtype == jnp.float32
    assert float(a.min()) >= -2.0 and float(a.max()) <= 2.0
    assert float(a.min()) < -1.9 and float(a.max()) > 1.9 and abs(float(a.mean())) < 0.1
    d = jax.jit(random_actions, static_argnums=(1, 2))(jax.random.PRNGKey(1), envs.spec("CartPole-v1"), 1000)
    assert d.shape == (1000,) and set(np.unique(np.asarray(d)).tolist()) == {0, 1}


def _steps(rewards, terminated, done):
    """A window of steps for three envs (columns), oldest first; next_obs[k, e] = 10 k + e."""
    r = jnp.asarray(rewards, jnp.float32)
    n, e = r.shape
    next_obs = (10.0 * jnp.arange(n)[:, None] + jnp.arange(e)[None, :])[..., None]
    return Step(jnp.zeros((n, e, 1)), jnp.zeros((n, e, 1)), r, jnp.asarray(terminated), jnp.asarray(done), next_obs)


def test_nstep_return_by_hand():
    gamma = 0.9
    rewards = [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]]
    # env 0 runs on; env 1 terminates at its 2nd step; env 2 is truncated (time limit) at its 1st
    terminated = [[False, False, False], [False, True, False], [False, False, False]]
    done = [[False, False, True], [False, True, False], [False, False, False]]
    reward, discount, next_obs = jax.jit(nstep_return)(_steps(rewards, terminated, done), gamma)
    # env 0: 1 + 0.9 * 2 + 0.81 * 3, bootstrap gamma^3 from s'_2
    # env 1: 1 + 0.9 * 2, no bootstrap (terminal), s'_1
    # env 2: 1, bootstrap gamma^1 from the final observation s'_0 (truncation is not a terminal)
    np.testing.assert_allclose(reward, [5.23, 2.8, 1.0], rtol=1e-6)
    np.testing.assert_allclose(discount, [0.729, 0.0, 0.9], rtol=1e-6)
    np.testing.assert_allclose(next_obs[:, 0], [20.0, 11.0, 2.0])


def test_nstep_push_emits_the_oldest_step_and_one_step_is_plain_td():
    gamma = 0.9
    steps = _steps([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]],
                   [[False] * 3, [False, True, False], [False] * 3], [[False, False, True], [False, True, False], [False] * 3])
    one = jax.tree.map(lambda x: x[0], steps)
    window = nstep_window(one, 3)
    assert window.reward.shape == (2, 3)
    push = jax.jit(nstep_push)
    for k in range(3):
        window, t = push(window, jax.tree.map(lambda x: x[k], steps), gamma)
    reward, discount, next_obs = jax.jit(nstep_return)(steps, gamma)
    np.testing.assert_allclose(t.reward, reward)
    np.testing.assert_allclose(t.discount, discount)
    np.testing.assert_allclose(t.next_obs, next_obs)
    np.testing.assert_allclose(window.reward, [[2.0] * 3, [3.0] * 3])  # the last n - 1 steps remain
    # n = 1: the transition of the step itself, r + gamma (1 - terminated) V(s')
    empty = nstep_window(one, 1)
    _, t1 = push(empty, jax.tree.map(lambda x: x[1], steps), gamma)
    np.testing.assert_allclose(t1.reward, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(t1.discount, [0.9, 0.0, 0.9])
    np.testing.assert_allclose(t1.next_obs[:, 0], [10.0, 11.0, 12.0])


def test_nstep_window_rejects_bad_n():
    with pytest.raises(ValueError, match="n_step must be an int >= 1"):
        nstep_window(Step(*([jnp.zeros(1)] * 6)), 0)


def test_row_packer_round_trip():
    example = Transition(jnp.zeros(3), jnp.zeros(2), jnp.float32(0), jnp.float32(0), jnp.zeros(3))
    packer = RowPacker(example)
    assert packer.width == 3 + 2 + 1 + 1 + 3 and packer.row.dtype == jnp.float32
    batch = Transition(jnp.arange(6.0).reshape(2, 3), -jnp.ones((2, 2)), jnp.array([0.5, 1.5]),
                       jnp.array([0.99, 0.0]), 10 + jnp.arange(6.0).reshape(2, 3))
    rows = jax.jit(packer.pack)(batch)
    assert rows.shape == (2, 10)
    back = jax.jit(packer.unpack)(rows)
    for a, b in zip(back, batch):
        np.testing.assert_array_equal(a, b)


def test_q_ensemble_has_independent_critics():
    net = QEnsemble((8, 8), num=2)
    params = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros((1, 1)))
    assert all(x.shape[0] == 2 for x in jax.tree.leaves(params))  # a leading critic axis on every leaf
    q = jax.jit(net.apply)(params, jnp.ones((5, 3)), jnp.ones((5, 1)))
    assert q.shape == (2, 5)
    assert not np.allclose(q[0], q[1])
