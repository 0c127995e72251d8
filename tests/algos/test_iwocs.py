"""IWOCS: the CMA-ES and grid searches find worst cases, the composite policy follows the most
pessimistic critic, and a short run stays robust over the set."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.robust import UncertaintySet, make_robust
from jaxrl.algos import iwocs
from jaxrl.core.ppo_players import Player
from jaxrl.core.robust_eval import grid_returns

SET = (("length", 0.25, 2.5), ("masspole", 0.05, 1.0))


def test_cma_search_finds_the_minimum_of_a_known_function_in_the_box():
    cfg = iwocs.Config(search_population=32, search_generations=12, robust_set=SET)
    uset = iwocs.uncertainty_set(cfg)
    target = jnp.array([0.7, 0.3])
    x, f = jax.jit(lambda k: iwocs.cma_search(cfg, uset, lambda p: jnp.sum((p - target) ** 2, -1), k))(
        jax.random.key(0))
    assert np.allclose(x, target, atol=0.05) and float(f) < 1e-2
    # a minimum outside the box: the search stops at the box's corner
    x, _ = jax.jit(lambda k: iwocs.cma_search(cfg, uset, lambda p: -jnp.sum(p, -1), k))(jax.random.key(1))
    assert np.allclose(x, uset.high, atol=1e-3)


def test_composite_policy_follows_the_policy_with_the_lowest_value():
    net = Player(2, True, (4,))
    p = net.init(jax.random.key(0), jnp.zeros((1, 4)))

    def fixed(value, logits):  # a player whose critic says `value` and whose actor prefers `logits`
        q = jax.tree.map(jnp.zeros_like, p)
        q["params"]["critic"]["Dense_1"]["bias"] = jnp.array([value], jnp.float32)
        q["params"]["actor"]["Dense_1"]["bias"] = jnp.array(logits, jnp.float32)
        return q

    ens = jax.tree.map(lambda *xs: jnp.stack(xs), fixed(5.0, [1.0, 0.0]), fixed(2.0, [0.0, 1.0]), fixed(-9.0, [1.0, 0.0]))
    obs = jnp.ones(4)
    assert int(iwocs.composite_act(net, ens, 1, obs)) == 0  # only policy 0 exists
    assert int(iwocs.composite_act(net, ens, 2, obs)) == 1  # policy 1's critic is more pessimistic
    assert int(iwocs.composite_act(net, ens, 3, obs)) == 0  # policy 2's even more
    # continuous actions: the chosen policy's Gaussian mean
    cnet = Player(1, False, (4,))
    p = cnet.init(jax.random.key(0), jnp.zeros((1, 3)))
    ens = jax.tree.map(lambda *xs: jnp.stack(xs), fixed(5.0, [0.5]), fixed(2.0, [-1.5]))
    assert float(iwocs.composite_act(cnet, ens, 1, jnp.ones(3))[0]) == 0.5
    assert float(iwocs.composite_act(cnet, ens, 2, jnp.ones(3))[0]) == -1.5


def test_bad_config():
    with pytest.raises(ValueError, match="search"):
        iwocs.Config(search="random")
    with pytest.raises(ValueError, match="reward_scale"):
        iwocs.Config(reward_scale=-0.1)
    with pytest.raises(ValueError, match="its parameters are .*'g'"):
        iwocs.Config(env="Pendulum-v1", robust_set=(("length", 0.1, 1.0),))
    with pytest.raises(ValueError, match="its parameters are"):
        iwocs.Config(robust_set=(("pole", 0.1, 1.0),))


def test_short_run_searches_the_true_worst_case_and_stays_robust():
    cfg = iwocs.Config(num_chunks=2, steps_per_problem=40_000, hidden=(32, 32), search="grid", search_points=4,
                       search_episodes=2, robust_set=SET, eval_points=4, eval_episodes=2)
    carry, m = jax.jit(iwocs.make_train(cfg).train)(jax.random.key(0))
    uset = UncertaintySet("CartPole-v1", SET)
    # the grid search of problem 1 found the worst point of the set for policy 0 (the same key, so
    # the same episodes as an independent evaluation over the same grid)
    assert np.isfinite(m["search_worst"][1]) and np.isnan(m["search_worst"][0])
    assert np.isnan(m["stop_gap"][0]) and np.isfinite(m["stop_gap"][1]) and not m["stopped"].any()
    found = np.array([m["worst_length"][1], m["worst_masspole"][1]])
    assert np.any(np.all(np.isclose(np.asarray(uset.grid(4)), found), axis=1))
    # the composite policy is robust over the whole set (a random policy scores about 22)
    assert float(m["eval_worst"][-1]) >= 100, m["eval_worst"]
    env, p = make_robust("CartPole-v1")
    res = jax.jit(lambda k: grid_returns(env, p, uset, uset.grid(4), iwocs.make_policy(cfg, carry), k, 2, 500))(
        jax.random.key(3))
    assert np.isclose(float(res.worst), float(m["eval_worst"][-1]), rtol=0.5)


def test_stopping_test_keeps_pi_i_once_the_gap_is_within_tolerance():
    """A tolerance no gap exceeds: the test passes at the first search (problem 1), so policy 0 is
    the answer and the chunks after it add nothing to the ensemble."""
    cfg = iwocs.Config(num_chunks=3, steps_per_problem=64, num_envs=2, num_steps=32, num_minibatches=2,
                       hidden=(8,), search="grid", search_points=2, search_episodes=2, robust_set=SET,
                       stop_tolerance=1e9)
    carry, m = jax.jit(iwocs.make_train(cfg).train)(jax.random.key(0))
    assert m["stopped"].tolist() == [0.0, 1.0, 1.0] and int(carry.problem) == 1
    first, *rest = [jax.tree.map(lambda e, i=i: e[i], carry.ensemble) for i in range(3)]
    leaves = [jax.tree.leaves(t) for t in (first, *rest)]
    assert all(np.array_equal(a, b) for a, b in zip(leaves[1], leaves[2]))  # both still the initial weights
    assert not all(np.array_equal(a, b) for a, b in zip(leaves[0], leaves[1]))  # policy 0 was trained
