"""Data corruption as RIQL defines it (Yang et al. 2024, "Towards Robust Offline Reinforcement
Learning under Diverse Data Corruption", ICLR), as pure jittable functions.

A corruption picks a fraction `rate` (c in the paper) of the transitions and changes one field of
exactly those rows; `scale` (epsilon) sets the size. With std = the per-dimension standard deviation
of the field over the whole dataset and lambda ~ U[-eps, eps]^d drawn per corrupted row:

    random observations   s  <- s  + lambda * std(s)
    random actions        a  <- a  + lambda * std(a)
    random dynamics       s' <- s' + lambda * std(s')          (only next_observations change)
    random rewards        r  <- U(-30 eps, 30 eps)              (replaced)

    adversarial obs       s  <- s  + p * std(s),  p = argmin_{|p| <= eps} Q(s + p std, a)
    adversarial actions   a  <- a  + p * std(a),  p = argmin Q(s, a + p std)
    adversarial dynamics  s' <- s' + p * std(s'), p = argmin Q(s' + p std, pi(s' + p std))
    adversarial rewards   r  <- -eps * r

The adversarial search starts from p ~ U[-eps, eps]^d and takes `attack_steps` (100 in the paper's
code) first-Adam steps of size 0.01 eps (a first Adam step is lr * g / (|g| + 1e-8), i.e. a sign
step), each followed by clipping p to [-eps, eps]. Q and pi come from an agent trained on the clean
data (the paper uses a pretrained EDAC agent); `envs` never imports `jaxrl`, so the caller passes
`q_fn(obs, action) -> [batch]` (the mean over the agent's ensemble) and `policy_fn(obs) -> action`,
both on raw (dataset-scale) values; `jaxrl.datasets.adversarial` builds them.

Differences from the official `attack.py`: the index set is drawn as the first round(c N) rows of
a random permutation (exactly that many, as the paper states), and one key drives everything, so
`corrupt_arrays` vmaps over rates, scales and keys in one program. Corrupted actions can be
clipped to the env's bounds (`action_low`, `action_high`); the paper's code does not clip.

`corrupt(dataset, field, mode, rate, scale, seed)` is the NumPy-level entry point: it returns a new
`Dataset` whose `extra_metadata` records what was done under `corruption/*` (field, mode, seed,
rate, scale, indices), kept by the npz and HDF5 writers.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

FIELDS = ("observations", "actions", "rewards", "dynamics")
MODES = ("random", "adversarial")
ARRAY_OF = {"observations": "observations", "actions": "actions", "rewards": "rewards",
            "dynamics": "next_observations"}
REWARD_RANGE = 30.0  # random rewards are U(-30 eps, 30 eps)


def check(field: str, mode: str, rate=None, scale=None) -> None:
    """ValueError naming the bad value: unknown field or mode, rate outside [0, 1], scale < 0.
    Traced rates/scales (inside jit or vmap) are not checked."""
    if field not in FIELDS:
        raise ValueError(f"corruption field must be one of {list(FIELDS)}, got {field!r}")
    if mode not in MODES:
        raise ValueError(f"corruption mode must be one of {list(MODES)}, got {mode!r}")
    if rate is not None and not isinstance(rate, jax.core.Tracer):
        r = np.asarray(rate, np.float64)
        if not (np.all(r >= 0.0) and np.all(r <= 1.0)):
            raise ValueError(f"corruption rate must be in [0, 1], got {rate!r}")
    if scale is not None and not isinstance(scale, jax.core.Tracer):
        s = np.asarray(scale, np.float64)
        if not (np.all(np.isfinite(s)) and np.all(s >= 0.0)):
            raise ValueError(f"corruption scale must be finite and >= 0, got {scale!r}")


def choose_rows(key, n: int, rate):
    """Boolean mask [n] with exactly round(rate * n) True rows, uniformly chosen (rate may be traced)."""
    count = jnp.round(jnp.asarray(rate, jnp.float32) * n).astype(jnp.int32)
    rank = jnp.argsort(jax.random.permutation(key, n))  # rank of each row in a random order
    return rank < count


def _std(x):
    return jnp.std(x, axis=0)


def random_values(key, x, mask, field: str, scale):
    """The random corruption of array `x` (the field's array) on rows `mask`."""
    if field == "rewards":
        new = jax.random.uniform(key, x.shape, x.dtype, -REWARD_RANGE * scale, REWARD_RANGE * scale)
    else:
        lam = jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0) * scale
        new = x + lam * _std(x)
    return jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), new, x)


def attack_offsets(key, objective: Callable, x, scale, steps: int):
    """p in [-eps, eps]^d (per row) lowering `objective(x + p std(x)) -> [N]` by `steps` sign steps
    of size 0.01 eps from p ~ U[-eps, eps], clipped after each step. Returns the perturbed x."""
    std = _std(x)
    p0 = jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0) * scale

    def step(p, _):
        g = jax.grad(lambda q: jnp.sum(objective(x + q * std)))(p)
        p = p - 0.01 * scale * g / (jnp.abs(g) + 1e-8)
        return jnp.clip(p, -scale, scale), None

    p, _ = jax.lax.scan(step, p0, None, steps)
    return x + jax.lax.stop_gradient(p) * std


def adversarial_values(key, arrays: dict, mask, field: str, scale, q_fn, policy_fn, steps: int):
    """The adversarial corruption of the field's array on rows `mask` (see the module docstring)."""
    if field == "rewards":
        x = arrays["rewards"]
        return jnp.where(mask, -scale * x, x)
    s, a, s2 = arrays["observations"], arrays["actions"], arrays["next_observations"]
    if q_fn is None or (field == "dynamics" and policy_fn is None):
        raise ValueError(f"adversarial corruption of {field!r} needs q_fn" +
                         (" and policy_fn" if field == "dynamics" else "") + " (jaxrl.datasets.adversarial)")
    if field == "observations":
        x, objective = s, lambda v: q_fn(v, a)
    elif field == "actions":
        x, objective = a, lambda v: q_fn(s, v)
    else:
        x, objective = s2, lambda v: q_fn(v, policy_fn(v))
    new = attack_offsets(key, objective, x, scale, steps)
    return jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), new, x)


def corrupt_arrays(key, arrays: dict, field: str, mode: str, rate, scale, *, q_fn=None, policy_fn=None,
                   attack_steps: int = 100, action_low=None, action_high=None):
    """One corruption of `arrays` (the D4RL keys as jax arrays): returns (new arrays, mask [N]).
    Pure and jittable; `field`/`mode` are static, `rate`, `scale` and `key` may be vmapped."""
    check(field, mode, rate, scale)
    name = ARRAY_OF[field]
    k_rows, k_vals = jax.random.split(key)
    x = jnp.asarray(arrays[name])
    mask = choose_rows(k_rows, x.shape[0], rate)
    if mode == "random":
        new = random_values(k_vals, x, mask, field, scale)
    else:
        new = adversarial_values(k_vals, {k: jnp.asarray(v) for k, v in arrays.items()}, mask, field, scale,
                                 q_fn, policy_fn, attack_steps)
    if field == "actions" and action_low is not None:
        new = jnp.clip(new, jnp.asarray(action_low, new.dtype), jnp.asarray(action_high, new.dtype))
    return {**arrays, name: new}, mask


def corrupt(dataset, field: str, mode: str = "random", rate: float = 0.3, scale: float = 1.0, seed: int = 0, *,
            q_fn=None, policy_fn=None, attack_steps: int = 100, action_bounds=None):
    """A corrupted copy of `dataset` (an envs.datasets.Dataset), recording the corruption in
    `extra_metadata["corruption/..."]`. Defaults: the RIQL README's c = 0.3, eps = 1.0.
    `action_bounds=(low, high)` clips corrupted actions to an env's box (so the dataset stays valid)."""
    check(field, mode, rate, scale)
    if not isinstance(seed, (int, np.integer)):
        raise ValueError(f"corruption seed must be an int, got {seed!r}")
    name = ARRAY_OF[field]
    dtype = np.asarray(getattr(dataset, name)).dtype
    arrays = {k: jnp.asarray(np.asarray(v, np.float32)) for k, v in dataset.arrays.items()
              if k in ("observations", "actions", "rewards", "next_observations")}
    low, high = action_bounds if action_bounds is not None else (None, None)
    new, mask = jax.jit(lambda k, r, s: corrupt_arrays(
        k, arrays, field, mode, r, s, q_fn=q_fn, policy_fn=policy_fn, attack_steps=attack_steps,
        action_low=low, action_high=high))(jax.random.PRNGKey(seed), jnp.float32(rate), jnp.float32(scale))
    mask = np.asarray(mask)
    # untouched rows keep their exact original values (and dtype); only chosen rows take new ones
    old = np.asarray(getattr(dataset, name))
    rows = mask.reshape((-1,) + (1,) * (old.ndim - 1))
    out = np.where(rows, np.asarray(new[name]).astype(dtype), old)
    meta = {**dataset.extra_metadata, "corruption/field": np.asarray(field), "corruption/mode": np.asarray(mode),
            "corruption/seed": np.asarray(seed, np.int64), "corruption/rate": np.asarray(rate, np.float64),
            "corruption/scale": np.asarray(scale, np.float64),
            "corruption/indices": np.flatnonzero(mask).astype(np.int64)}
    source = f"{dataset.source or dataset.env} corrupted ({mode} {field}, rate {rate}, scale {scale}, seed {seed})"
    return dataset.replace(**{name: out}, extra_metadata=meta, source=source)
