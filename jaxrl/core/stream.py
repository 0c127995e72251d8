"""The stream-x toolkit shared by Stream TD(lambda), Stream Q(lambda) and Stream AC(lambda)
(Elsayed, Vasan, Mahmood 2024, "Streaming Deep Reinforcement Learning Finally Works"): the
hyperparameters every stream learner has, its network body, and its observation pipeline.

- `StreamConfig`: the shared fields (env, budget, step size, discount, trace decay, optimiser,
  network, toolkit switches) and their checks; each algorithm's `Config` adds its own.
- `stream_body` / `Torso`: sparse init (a fraction of each unit's incoming weights zero),
  parameter-free LayerNorm before every hidden LeakyReLU; vector observations through an MLP,
  HWC images through Conv(16, 3x3) first.
- `ObsPipeline`: online Welford normalisation (each observation first updates the statistics, then
  is normalised) and the time feature -0.5 + t/T for vector observations; `after_step` does what
  the official wrappers do at every step, including observing the reset observation on an
  episode end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

import envs
from jaxrl.core import config as C
from jaxrl.core.nets import CNN, MLP, sparse_init
from jaxrl.core.normalize import rms_init, rms_normalize, rms_update
from jaxrl.core.optim import OPTIMIZERS

DEFAULT_LR = {"obgd": 1.0, "sgd": 1e-3, "adam": 1e-4}


@dataclass(frozen=True)
class StreamConfig:
    """Hyperparameters every stream-x learner shares (defaults: the official scripts)."""

    env: str = "CartPole-v1"
    """environment name, see envs.registered()"""
    total_timesteps: int = 500_000
    """env steps per seed (rounded up to whole chunks)"""
    lr: float | None = None
    """step size alpha; None: 1.0 for obgd, 1e-3 for sgd, 1e-4 for adam (the last two are our choice)"""
    gamma: float = 0.99
    """discount"""
    trace_lambda: float = 0.8
    """trace decay lambda"""
    optimizer: str = "obgd"
    """obgd (stream-x) | sgd (classic, plain traces) | adam (Adam over delta z)"""
    hidden: tuple[int, ...] | None = None
    """hidden sizes; None: (32, 32) discrete vector envs, (128, 128) continuous, (128,) after the MinAtar conv"""
    sparsity: float = 0.9
    """fraction of zero incoming weights per unit at init; 0 = dense U(+-1/sqrt(fan_in)) (torch default)"""
    layer_norm: bool = True
    """parameter-free LayerNorm before every hidden activation"""
    normalize_obs: bool = True
    """online Welford observation normalisation"""
    scale_reward: bool = True
    """divide rewards by the running std of the discounted return"""
    time_feature: bool = True
    """append -0.5 + t/T to vector observations (ignored for image observations)"""
    num_chunks: int = 10
    """jitted chunks the run is cut into (progress/logging/checkpoint granularity)"""

    def __post_init__(self):
        C.check_positive("total_timesteps", self.total_timesteps)
        C.check_positive("num_chunks", self.num_chunks)
        C.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            C.check_positive("lr", self.lr)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("trace_lambda", self.trace_lambda, 0.0, 1.0)
        C.check_range("sparsity", self.sparsity, 0.0, 1.0, hi_open=True)
        if self.hidden is not None and (not self.hidden or any(h <= 0 for h in self.hidden)):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        envs.spec(self.env).require(type(self).__module__.rsplit(".", 1)[-1], obs_ndim=(1, 3))

    @property
    def steps_per_chunk(self) -> int:
        return math.ceil(self.total_timesteps / self.num_chunks)

    @property
    def step_size(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def hidden_for(self, spec: envs.EnvSpec) -> tuple[int, ...]:
        """The configured hidden sizes, or the official scripts' default for this env."""
        if self.hidden:
            return tuple(self.hidden)
        return (128,) if spec.image else (32, 32) if spec.discrete else (128, 128)


def stream_body(x, hidden, out, image: bool, sparsity: float, layer_norm: bool):
    """The stream-x layers, built in the calling module's scope (so its parameter names are the
    caller's CNN_0 / MLP_0): Conv(16, 3x3) for images, then an MLP to `out` (None: no output layer)."""
    ln = "plain" if layer_norm else None
    init = sparse_init(sparsity)
    if image:
        x = CNN((16,), (3,), (1,), activation="leaky_relu", layer_norm=ln, kernel_init=init)(x)
    return MLP(hidden, out, "leaky_relu", ln, kernel_init=init)(x)


class Torso(nn.Module):
    """`stream_body` without an output layer, as a module of its own (heads go on top)."""

    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        return stream_body(x, self.hidden, None, self.image, self.sparsity, self.layer_norm)


@dataclass(frozen=True)
class ObsPipeline:
    """Normalisation and time feature of ONE stream of raw observations."""

    normalize: bool
    time_limit: float | None  # None: no time feature

    @classmethod
    def of(cls, config: StreamConfig, spec: envs.EnvSpec) -> "ObsPipeline":
        use_time = config.time_feature and not spec.image
        return cls(config.normalize_obs, float(spec.max_steps) if use_time else None)

    def observe(self, rms, raw):
        """Update the statistics with `raw` (a no-op without normalisation)."""
        return rms_update(rms, raw.astype(jnp.float32)) if self.normalize else rms

    def process(self, rms, raw, t):
        """`raw` normalised with `rms`, with the time feature of step t appended."""
        x = rms_normalize(rms, raw) if self.normalize else raw.astype(jnp.float32)
        if self.time_limit is not None:
            x = jnp.concatenate([x, jnp.array([-0.5 + t / self.time_limit], jnp.float32)])
        return x

    def reset(self, raw):
        """(statistics, processed observation) at the start of the stream."""
        rms = self.observe(rms_init(raw.shape), raw)
        return rms, self.process(rms, raw, 0.0)

    def after_step(self, rms, info, raw_next, done):
        """(rms, s', next observation) after an env step: s' is the step's last observation (the
        final one if the episode ended); on an episode end the reset observation is observed too."""
        rms = self.observe(rms, info["final_observation"])
        s_prime = self.process(rms, info["final_observation"], info["episode_length"].astype(jnp.float32))
        rms_reset = self.observe(rms, raw_next)
        rms = jax.tree.map(lambda a, b: jnp.where(done, a, b), rms_reset, rms)
        next_obs = jnp.where(done, self.process(rms, raw_next, 0.0), s_prime)
        return rms, s_prime, next_obs
