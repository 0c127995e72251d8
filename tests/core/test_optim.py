"""ObGD and the trace optimisers (jaxrl.core.optim) against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl.core.optim import (
    TraceState, l1_norm, make_trace_optimizer, obgd, obgd_step_size, trace_adam, trace_sgd,
)

pytestmark = pytest.mark.timeout(120)

# A hand-built two-leaf example. gamma * lambda_ = 0.9 * 0.5 = 0.45.
E0 = {"a": jnp.array([0.1, 0.2]), "b": jnp.array([[-0.3]])}
G = {"a": jnp.array([0.5, -1.0]), "b": jnp.array([[2.0]])}
# z = 0.45 * E0 + G = a: [0.045 + 0.5, 0.09 - 1.0] = [0.545, -0.91]; b: [[-0.135 + 2.0]] = [[1.865]]
Z = {"a": np.array([0.545, -0.91]), "b": np.array([[1.865]])}
Z_SUM = 0.545 + 0.91 + 1.865  # = 3.32


def _close(tree, expected, **kw):
    for k in expected:
        np.testing.assert_allclose(np.asarray(tree[k]), expected[k], rtol=1e-6, atol=1e-7, **kw)


def test_obgd_bound_active():
    # alpha = 1, kappa = 2, delta = 0.5 -> delta_bar = max(0.5, 1) = 1;  M = 1 * 2 * 1 * 3.32 = 6.64 > 1
    opt = obgd(lr=1.0, gamma=0.9, lambda_=0.5, kappa=2.0)
    updates, state = opt.update(G, TraceState(E0), 0.5, False)
    step = 1.0 / 6.64
    _close(updates, {k: step * 0.5 * v for k, v in Z.items()})
    _close(state.trace, Z)  # no reset: the trace is kept
    assert float(l1_norm(Z)) == pytest.approx(Z_SUM)


def test_obgd_bound_active_large_delta():
    # delta = -3 -> delta_bar = 3;  M = 0.5 * 1.5 * 3 * 3.32 = 7.47;  step = 0.5 / 7.47
    opt = obgd(lr=0.5, gamma=0.9, lambda_=0.5, kappa=1.5)
    updates, _ = opt.update(G, TraceState(E0), -3.0, False)
    _close(updates, {k: (0.5 / 7.47) * -3.0 * v for k, v in Z.items()})


def test_obgd_bound_inactive():
    # alpha = 0.1, kappa = 1, delta = 0.5: M = 0.1 * 1 * 1 * 3.32 = 0.332 <= 1 -> step = alpha = 0.1
    opt = obgd(lr=0.1, gamma=0.9, lambda_=0.5, kappa=1.0)
    updates, _ = opt.update(G, TraceState(E0), 0.5, False)
    _close(updates, {k: 0.1 * 0.5 * v for k, v in Z.items()})
    assert float(obgd_step_size(Z, 0.5, 0.1, 1.0)) == pytest.approx(0.1)
    assert float(obgd_step_size(Z, 0.5, 1.0, 2.0)) == pytest.approx(1.0 / 6.64)


def test_trace_decay_and_reset_after_update():
    opt = obgd(lr=0.1, gamma=0.9, lambda_=0.5, kappa=1.0)
    # reset=True: this step's update still uses the full trace, then the trace is zeroed
    updates, state = opt.update(G, TraceState(E0), 0.5, True)
    _close(updates, {k: 0.1 * 0.5 * v for k, v in Z.items()})
    _close(state.trace, {k: np.zeros_like(v) for k, v in Z.items()})
    # next step starts from zero: z = G
    _, state = opt.update(G, state, 0.5, False)
    _close(state.trace, {k: np.asarray(v) for k, v in G.items()})
    # and decays by gamma * lambda_ = 0.45 the step after: z = 0.45 G + G = 1.45 G
    _, state = opt.update(G, state, 0.5, jnp.array(False))
    _close(state.trace, {k: 1.45 * np.asarray(v) for k, v in G.items()})
    # reset as a traced boolean inside jit
    _, state = jax.jit(opt.update)(G, state, 0.5, jnp.array(True))
    assert float(l1_norm(state.trace)) == 0.0


def test_init_zeros_like_params():
    state = obgd().init(G)
    assert jax.tree.structure(state.trace) == jax.tree.structure(G)
    assert float(l1_norm(state.trace)) == 0.0


def test_trace_sgd_has_no_bound():
    # the same example as the bound-active ObGD case, but step = alpha = 1 regardless of M
    opt = trace_sgd(lr=1.0, gamma=0.9, lambda_=0.5)
    updates, state = opt.update(G, TraceState(E0), 0.5, True)
    _close(updates, {k: 1.0 * 0.5 * v for k, v in Z.items()})
    assert float(l1_norm(state.trace)) == 0.0


def test_trace_adam_is_adam_over_delta_z():
    """Adam over traces == optax.adam fed with the descent gradient -delta * z, step by step."""
    lr, gl = 0.01, 0.45
    opt = trace_adam(lr=lr, gamma=0.9, lambda_=0.5)
    ref = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([[0.5]])}
    state, ref_state = opt.init(params), ref.init(params)
    z = jax.tree.map(jnp.zeros_like, params)
    for t, (delta, reset) in enumerate([(0.5, False), (-2.0, False), (1.5, True), (0.3, False)]):
        g = jax.tree.map(lambda x: x * (t + 1), G)
        updates, state = opt.update(g, state, delta, reset)
        z = jax.tree.map(lambda zz, gg: gl * zz + gg, z, g)
        ref_updates, ref_state = ref.update(jax.tree.map(lambda zz: -delta * zz, z), ref_state)
        for k in params:
            np.testing.assert_allclose(updates[k], ref_updates[k], rtol=1e-5, atol=1e-8)
        if reset:
            z = jax.tree.map(jnp.zeros_like, z)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: obgd(kappa=0.0), "kappa"),
        (lambda: obgd(kappa=-1.0), "kappa"),
        (lambda: obgd(lambda_=1.5), "lambda_"),
        (lambda: obgd(lambda_=-0.1), "lambda_"),
        (lambda: obgd(lr=0.0), "lr"),
        (lambda: obgd(lr=-1.0), "lr"),
        (lambda: obgd(gamma=1.1), "gamma"),
        (lambda: trace_sgd(lr=0.0), "lr"),
        (lambda: trace_adam(lr=1e-3, lambda_=2.0), "lambda_"),
        (lambda: make_trace_optimizer("rmsprop", 1.0, 0.99, 0.8, 2.0), "optimizer"),
    ],
)
def test_bad_hyperparameters(make, field):
    with pytest.raises(ValueError, match=field):
        make()
