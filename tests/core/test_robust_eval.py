"""jaxrl.core.robust_eval: returns over a grid of dynamics in one vmapped call."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.robust import UncertaintySet, make_robust
from jaxrl.core.evaluate import evaluate
from jaxrl.core.robust_eval import grid_returns, heatmap

USET = UncertaintySet("CartPole-v1", (("length", 0.1, 1.0), ("masspole", 0.05, 0.5)))


def push_right(obs, key):
    return jnp.int32(1)


@pytest.fixture(scope="module")
def result():
    env, p = make_robust("CartPole-v1")
    run = jax.jit(lambda k: grid_returns(env, p, USET, USET.grid(3), push_right, k, 2, 100))
    return env, p, run(jax.random.key(0))


def test_grid_returns_match_a_loop_of_single_evaluations(result):
    env, p, res = result
    one = jax.jit(lambda v: evaluate(env, USET.apply(p, v), push_right, jax.random.key(0), 2, 100)[0])
    loop = [float(one(v)) for v in USET.grid(3)]  # one compiled program, called point by point
    assert np.allclose(res.returns, loop)
    assert np.isclose(res.worst, min(loop)) and np.isclose(res.mean, np.mean(loop))
    assert int(res.argmin) == int(np.argmin(loop))


def test_a_policy_that_always_pushes_right_is_worst_with_the_shortest_pole(result):
    _, _, res = result
    r = np.asarray(res.returns).reshape(3, 3)
    assert np.all(np.diff(r, axis=0) > 0), r  # longer poles fall later
    assert int(res.argmin) // 3 == 0


def test_heatmap_writes_a_png(result, tmp_path):
    _, _, res = result
    heatmap(USET, 3, res.returns, path=tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="2-D"):
        heatmap(UncertaintySet("CartPole-v1", (("length", 0.1, 1.0),)), 3, res.returns[:3])
