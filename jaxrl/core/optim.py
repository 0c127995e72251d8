"""Optimisers over eligibility traces, for the stream-x learners (Elsayed, Vasan, Mahmood 2024,
"Streaming Deep Reinforcement Learning Finally Works", arXiv:2410.14606).

Each optimiser is an optax-like pair `TraceTransformation(init, update)`:

    state = opt.init(params)                                  # traces (and moments), like params
    updates, state = opt.update(grads, state, delta, reset)   # one call per environment step
    params = optax.apply_updates(params, updates)

`grads` is the gradient of the PREDICTION f (V(s), Q(s, a), or log pi(a|s) + entropy term) at the
current parameters, `delta` the (scalar, already detached) TD error, `reset` a boolean scalar.
Traces follow the textbook sign, z <- gamma lambda z + grad f, and the updates ASCEND delta * z.
The official code (mohmdelsayed/streaming-drl, optim.py) backprops -f instead and subtracts, so its
trace is -z; the parameters move identically.

- `obgd`: Overshooting-bounded Gradient Descent (Algorithm 3 of the paper):
      z      <- gamma lambda z + grad f
      z_sum   = sum over ALL leaves of ||z||_1          (after adding this step's gradient)
      M       = alpha kappa max(|delta|, 1) z_sum
      step    = alpha / max(M, 1)
      theta  <- theta + step delta z
      z      <- 0 if reset                              (after the update)
  While the bound is active (M > 1) the step is 1 / (kappa max(|delta|, 1) z_sum): alpha cancels.
- `trace_sgd`: classic semi-gradient TD(lambda)/AC(lambda): the same with step = alpha (no bound).
- `trace_adam`: Adam fed with the per-step direction delta * z (the stream-barrier baseline
  "Adam over traces"): m, v are Adam's moments of delta * z (bias-corrected), update alpha m^/(sqrt v^ + eps);
  only the traces are reset at episode ends, never the moments.

All hyperparameters are fixed when the transformation is built; they may be JAX tracers (a vmapped
sweep), in which case the Python checks are skipped.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.core.config import check_positive, check_range

OPTIMIZERS = ("obgd", "sgd", "adam")


class TraceTransformation(NamedTuple):
    """`init(params) -> state`; `update(grads, state, delta, reset) -> (updates, state)`."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class TraceState(NamedTuple):
    trace: Any  # eligibility trace z, a pytree like params


class TraceAdamState(NamedTuple):
    trace: Any
    mu: Any  # first moment of delta * z
    nu: Any  # second moment of delta * z
    count: jax.Array  # int32 Adam step counter


def _check(lr, gamma, lambda_, kappa=None):
    check_positive("lr", lr)
    check_range("gamma", gamma, 0.0, 1.0)
    check_range("lambda_", lambda_, 0.0, 1.0)
    if kappa is not None:
        check_positive("kappa", kappa)


def _decay_add(trace, grads, gamma, lambda_):
    return jax.tree.map(lambda z, g: gamma * lambda_ * z + g, trace, grads)


def _maybe_reset(tree, reset):
    return jax.tree.map(lambda z: jnp.where(reset, jnp.zeros_like(z), z), tree)


def _zeros_like(params):
    return jax.tree.map(jnp.zeros_like, params)


def _abs_sum(x) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim < 2:
        return jnp.abs(x).sum()
    # A matrix-vector product with ones, then a short sum: on XLA:CPU this is several times faster
    # than one long reduction over a 128x128 kernel (which runs as a sequential scalar loop).
    return (jnp.abs(x).reshape(-1, x.shape[-1]) @ jnp.ones(x.shape[-1], x.dtype)).sum()


def l1_norm(tree) -> jax.Array:
    """Sum of |x| over every element of every leaf (ObGD's z_sum)."""
    return sum(_abs_sum(x) for x in jax.tree.leaves(tree))


def obgd_step_size(trace, delta, lr, kappa) -> jax.Array:
    """ObGD's effective step size alpha / max(alpha kappa max(|delta|, 1) ||z||_1, 1)."""
    m = lr * kappa * jnp.maximum(jnp.abs(delta), 1.0) * l1_norm(trace)
    return lr / jnp.maximum(m, 1.0)


def obgd(lr: float = 1.0, gamma: float = 0.99, lambda_: float = 0.8, kappa: float = 2.0) -> TraceTransformation:
    """Overshooting-bounded gradient descent over eligibility traces (see module docstring)."""
    _check(lr, gamma, lambda_, kappa)

    def init(params):
        return TraceState(_zeros_like(params))

    def update(grads, state, delta, reset):
        trace = _decay_add(state.trace, grads, gamma, lambda_)
        step = obgd_step_size(trace, delta, lr, kappa)
        updates = jax.tree.map(lambda z: step * delta * z, trace)
        return updates, TraceState(_maybe_reset(trace, reset))

    return TraceTransformation(init, update)


def trace_sgd(lr: float, gamma: float = 0.99, lambda_: float = 0.8) -> TraceTransformation:
    """Classic TD(lambda)-style update theta <- theta + alpha delta z (no step-size bound)."""
    _check(lr, gamma, lambda_)

    def init(params):
        return TraceState(_zeros_like(params))

    def update(grads, state, delta, reset):
        trace = _decay_add(state.trace, grads, gamma, lambda_)
        updates = jax.tree.map(lambda z: lr * delta * z, trace)
        return updates, TraceState(_maybe_reset(trace, reset))

    return TraceTransformation(init, update)


def trace_adam(lr: float, gamma: float = 0.99, lambda_: float = 0.8, b1: float = 0.9, b2: float = 0.999,
               eps: float = 1e-8) -> TraceTransformation:
    """Adam whose per-step 'gradient' is the ascent direction delta * z."""
    _check(lr, gamma, lambda_)
    check_range("b1", b1, 0.0, 1.0, hi_open=True)
    check_range("b2", b2, 0.0, 1.0, hi_open=True)
    check_positive("eps", eps)

    def init(params):
        return TraceAdamState(_zeros_like(params), _zeros_like(params), _zeros_like(params), jnp.int32(0))

    def update(grads, state, delta, reset):
        trace = _decay_add(state.trace, grads, gamma, lambda_)
        count = state.count + 1
        mu = jax.tree.map(lambda m, z: b1 * m + (1 - b1) * delta * z, state.mu, trace)
        nu = jax.tree.map(lambda v, z: b2 * v + (1 - b2) * (delta * z) ** 2, state.nu, trace)
        c1 = 1 - b1 ** count.astype(jnp.float32)
        c2 = 1 - b2 ** count.astype(jnp.float32)
        updates = jax.tree.map(lambda m, v: lr * (m / c1) / (jnp.sqrt(v / c2) + eps), mu, nu)
        return updates, TraceAdamState(_maybe_reset(trace, reset), mu, nu, count)

    return TraceTransformation(init, update)


def make_trace_optimizer(name: str, lr: float, gamma: float, lambda_: float, kappa: float) -> TraceTransformation:
    """`name` in OPTIMIZERS; kappa is used by "obgd" only."""
    if name == "obgd":
        return obgd(lr, gamma, lambda_, kappa)
    if name == "sgd":
        return trace_sgd(lr, gamma, lambda_)
    if name == "adam":
        return trace_adam(lr, gamma, lambda_)
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
