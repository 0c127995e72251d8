"""Config helpers: validation that names the bad field, hashing, printing, and the tyro CLI.

Every algorithm keeps its hyperparameters in a `@dataclass(frozen=True) class Config` and checks
them in `__post_init__` with the `check_*` helpers below, so bad input fails in Python, before
anything is traced. The checks skip JAX tracers, so a sweep may pass already-validated numeric
fields as traced arrays (see `jaxrl.core.sweep`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Iterable

import jax


def concrete(*values) -> bool:
    """True when none of `values` is a tracer (a cross-field check can run)."""
    return not any(traced(v) for v in values)


def traced(value) -> bool:
    """True for a JAX tracer (a field that run_many passes traced, already checked concretely)."""
    return isinstance(value, jax.core.Tracer)


def check_positive(name: str, value, *, allow_zero: bool = False) -> None:
    """Raise ValueError unless `value` > 0 (or >= 0 with `allow_zero`)."""
    if traced(value):
        return
    if value is None or not isinstance(value, (int, float)) or math.isnan(value) or (
        value < 0 if allow_zero else value <= 0
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def check_range(name: str, value, lo: float, hi: float, *, lo_open=False, hi_open=False) -> None:
    """Raise ValueError unless `value` lies in the interval lo..hi (closed unless *_open)."""
    if traced(value):
        return
    ok = isinstance(value, (int, float)) and not math.isnan(value)
    ok = ok and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def check_choice(name: str, value, choices: Iterable) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_sac_learner(config, algo: str, steps_name: str) -> None:
    """The SAC fields of an algorithm whose players may be SAC (`learner="sac"`: QARL, IWOCS):
    positive sizes and rates, tau in (0, 1], a batch no larger than the buffer, a warm-up shorter
    than the `steps_name` budget, and an env with continuous actions and flat observations."""
    import envs

    for name in ("batch_size", "buffer_size", "actor_lr", "critic_lr"):
        check_positive(name, getattr(config, name))
    check_range("tau", config.tau, 0.0, 1.0, lo_open=True)
    if config.batch_size > config.buffer_size:
        raise ValueError(f"batch_size={config.batch_size} must be <= buffer_size={config.buffer_size}")
    steps = getattr(config, steps_name)
    if concrete(config.learning_starts) and not 0 <= config.learning_starts < steps:
        raise ValueError(f"learning_starts={config.learning_starts} must be in [0, {steps_name}={steps}), "
                         "or SAC never learns")
    envs.spec(config.env).require(f"{algo} with learner='sac'", discrete=False, obs_ndim=(1,),
                                  hint="Use learner='ppo' for discrete actions")


def check_divides(name: str, divisor: int, what: str, total: int) -> None:
    """Raise ValueError unless `divisor` divides `total` (named `what`)."""
    if total % divisor:
        raise ValueError(
            f"{name}={divisor} must divide {what}={total}; "
            f"allowed values: {[d for d in range(1, total + 1) if total % d == 0]}"
        )


def to_dict(config) -> dict[str, Any]:
    """A JSON-able dict of a config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_hash(config) -> str:
    """A stable short hash of a config's values (used to match checkpoints to runs)."""
    blob = json.dumps(to_dict(config), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def format_config(config) -> str:
    """One `name = value` line per field, with the class name on top."""
    d = to_dict(config)
    width = max(map(len, d)) if d else 0
    lines = [f"{type(config).__name__}:"] + [f"  {k:<{width}} = {v}" for k, v in d.items()]
    return "\n".join(lines)
