"""Network pieces shared by the algorithms: activations, initialisers, MLP and CNN torsos.

Initialisers:
- `orthogonal(scale)`: PPO/DrQ-v2 style.
- `sparse_init(sparsity)`: stream-x (Elsayed et al. 2024, Alg. "SparseInit"): draw
  W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), then zero exactly ceil(sparsity * fan_in) randomly chosen
  incoming weights of every output unit. For conv kernels fan_in = kh * kw * c_in.
`QEnsemble`: `num` independent Q(s, a) MLPs evaluated as one batched network (the clipped double
Q of TD3 and SAC is `num = 2`). `GaussianActor` and `gaussian_log_prob`: the advantage-weighted
Gaussian policy of IQL (and RIQL's Gaussian option).
LayerNorm comes in two flavours: Flax's affine one (`layer_norm="affine"`) and the parameter-free
one of stream-x (`layer_norm="plain"`: no scale, no shift, eps 1e-5, over all features of a sample).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,  # slope 0.01, as torch's default
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "identity": lambda x: x,
}
LAYER_NORMS = (None, "affine", "plain")


def activation(name: str) -> Callable:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def orthogonal(scale: float = math.sqrt(2.0)):
    return nn.initializers.orthogonal(scale)


# torch.nn.Linear's default kernel initialiser, U(±1/sqrt(fan_in)): the offline algorithms train with
# it because their official (CORL-based, PyTorch) code does.
TORCH_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def sparse_init(sparsity: float = 0.9):
    """Kernel initialiser of stream-x: uniform in ±1/sqrt(fan_in), with a fixed fraction of zeros
    in every output unit's incoming weights. Works for Dense (in, out) and Conv (..., in, out)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")

    def init(key, shape, dtype=jnp.float32):
        fan_in = math.prod(shape[:-1])
        fan_out = shape[-1]
        k_w, k_m = jax.random.split(key)
        bound = 1.0 / math.sqrt(fan_in)
        w = jax.random.uniform(k_w, (fan_in, fan_out), dtype, -bound, bound)
        n_zero = math.ceil(sparsity * fan_in)
        # rank of each input within its column under random scores: the n_zero lowest are zeroed
        ranks = jnp.argsort(jnp.argsort(jax.random.uniform(k_m, (fan_in, fan_out)), axis=0), axis=0)
        return jnp.where(ranks < n_zero, 0.0, w).astype(dtype).reshape(shape)

    return init


def _norm(kind: str | None, x: jax.Array, feature_axes: tuple[int, ...]) -> jax.Array:
    if kind is None:
        return x
    if kind == "affine":
        return nn.LayerNorm(reduction_axes=feature_axes, feature_axes=feature_axes)(x)
    if kind == "plain":
        return nn.LayerNorm(
            epsilon=1e-5, use_bias=False, use_scale=False, reduction_axes=feature_axes
        )(x)
    raise ValueError(f"layer_norm must be one of {LAYER_NORMS}, got {kind!r}")


class MLP(nn.Module):
    """Dense -> [LayerNorm] -> activation, per hidden size; then an optional linear output."""

    hidden: Sequence[int]
    out_dim: int | None = None
    activation: str = "tanh"
    layer_norm: str | None = None
    kernel_init: Callable = orthogonal()
    out_init: Callable | None = None
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        act = activation(self.activation)
        for h in self.hidden:
            x = nn.Dense(h, kernel_init=self.kernel_init, bias_init=self.bias_init)(x)
            x = act(_norm(self.layer_norm, x, (-1,)))
        if self.out_dim is not None:
            init = self.out_init or self.kernel_init
            x = nn.Dense(self.out_dim, kernel_init=init, bias_init=self.bias_init)(x)
        return x


class CNN(nn.Module):
    """Conv -> [LayerNorm over (H, W, C)] -> activation per layer, then flatten.

    Takes NHWC images or one HWC image; flattens the trailing three axes.
    """

    features: Sequence[int] = (16,)
    kernels: Sequence[int] = (3,)
    strides: Sequence[int] = (1,)
    padding: str = "VALID"
    activation: str = "relu"
    layer_norm: str | None = None
    kernel_init: Callable = orthogonal()

    @nn.compact
    def __call__(self, x):
        if not len(self.features) == len(self.kernels) == len(self.strides):
            raise ValueError(
                "CNN features, kernels and strides need equal lengths, got "
                f"{len(self.features)}, {len(self.kernels)}, {len(self.strides)}"
            )
        act = activation(self.activation)
        x = x.astype(jnp.float32)
        for f, k, s in zip(self.features, self.kernels, self.strides):
            x = nn.Conv(f, (k, k), (s, s), padding=self.padding, kernel_init=self.kernel_init)(x)
            x = act(_norm(self.layer_norm, x, (-3, -2, -1)))
        return x.reshape(x.shape[:-3] + (-1,))


class QEnsemble(nn.Module):
    """`num` independent critics Q_j(s, a), each an MLP over concat(s, a) with one output; the
    parameters carry a leading axis of size `num` (one `nn.vmap`ped MLP, so the critics run as
    batched matrix products). Returns Q of shape [num, *batch]."""

    hidden: Sequence[int]
    num: int = 2
    activation: str = "relu"
    layer_norm: str | None = None
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs.astype(jnp.float32), action.astype(jnp.float32)], -1)
        critics = nn.vmap(
            MLP, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None, out_axes=0,
            axis_size=self.num,
        )
        q = critics(tuple(self.hidden), 1, self.activation, self.layer_norm, self.kernel_init)(x)
        return q[..., 0]


class GaussianActor(nn.Module):
    """mean = tanh(MLP(s)), a state-independent log-std clipped to [-5, 2] (CORL's IQL policy)."""

    action_dim: int
    hidden: tuple[int, ...]
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, obs):
        mean = jnp.tanh(MLP(self.hidden, self.action_dim, "relu", kernel_init=self.kernel_init)(obs))
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.clip(log_std, -5.0, 2.0)


def gaussian_log_prob(mean, log_std, action):
    """log N(action; mean, diag(exp(log_std)^2)), summed over action dimensions."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), -1)
