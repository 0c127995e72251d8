"""What DrQ-v2 (`jaxrl.algos.drqv2`) and DrM (`jaxrl.algos.drm`) both call: random-shift
augmentation, the pixel encoder, the actor and twin critic with their LayerNorm trunks, the
clipped-noise action sample, the linear exploration schedule and the dormant ratio.

- `random_shift(key, images, pad)`: pad each [H, W, C] image by `pad` replicated border pixels,
  then resample it bilinearly at the pixel grid shifted by (dy, dx), integers drawn uniformly in
  [0, 2 pad] per image (DrQ-v2); `shift_image` does one image for any real shift, and equals a
  crop of the padded image when the shift is an integer.
- `Encoder`: x / 255 - 0.5, then Conv(32, 3x3, stride 2) and three Conv(32, 3x3, stride 1), ReLU
  after each, flattened (84x84 -> 35x35x32). A state observation passes through as float32 (the
  MLP torso is then the trunk of the actor and critic).
- `Actor`: trunk Dense(F) -> LayerNorm -> tanh, then Dense(H) ReLU, Dense(H) ReLU, Dense(|A|),
  mu = tanh(out) in [-1, 1]^|A|. `Critic`: its own trunk, concat(action), two heads
  Dense(H) ReLU Dense(H) ReLU Dense(1), returns [2, batch]. `Value`: a trunk and one head.
  Dense kernels orthogonal (gain 1), convs orthogonal (gain sqrt 2), biases 0.
- `sample_action(key, mu, std, clip)`: a = clamp(mu + clip(std * eps, -clip, clip), -1 + 1e-6,
  1 - 1e-6), with the clamp's gradient passed straight through to mu (`clip=None`: no noise clip).
- `linear_schedule(init, final, duration, step)`: init + (final - init) min(step / duration, 1).
- `dormant_ratio(module, params, *inputs, tau)`: Xu et al.'s tau-dormant ratio. For each Dense
  layer of `module`, its outputs h (pre-activation, as the official code hooks them) give
  s_i = E_batch|h_i| / mean_j E_batch|h_j|; unit i is dormant when s_i <= tau, and the ratio is
  the number of dormant units over all units of all Dense layers. A unit whose mean is 0 counts as
  dormant (the official code's strict < would miss a layer of all-zero units; they are equal otherwise
  up to the tie at s_i = tau).
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

_DENSE_INIT = nn.initializers.orthogonal(1.0)


def shift_image(image, shift, pad: int):
    """Image [H, W, C] replicate-padded by `pad`, resampled bilinearly at rows i + shift[0] and
    columns j + shift[1] of the padded image (float32 out)."""
    h, w = image.shape[0], image.shape[1]
    padded = jnp.pad(image.astype(jnp.float32), ((pad, pad), (pad, pad), (0, 0)), mode="edge")

    def interp(x, coords, axis, size):
        lo = jnp.floor(coords)
        frac = coords - lo
        lo = lo.astype(jnp.int32)
        a = jnp.take(x, jnp.clip(lo, 0, size - 1), axis=axis)
        b = jnp.take(x, jnp.clip(lo + 1, 0, size - 1), axis=axis)
        shape = [1] * x.ndim
        shape[axis] = -1
        return a + frac.reshape(shape) * (b - a)

    rows = interp(padded, jnp.arange(h, dtype=jnp.float32) + shift[0], 0, h + 2 * pad)
    return interp(rows, jnp.arange(w, dtype=jnp.float32) + shift[1], 1, w + 2 * pad)


def random_shift(key, images, pad: int = 4):
    """DrQ-v2's augmentation of a batch [B, H, W, C]: a uniform integer shift in [0, 2 pad] per
    image and axis, resampled bilinearly (float32 out, same scale as the input)."""
    shifts = jax.random.randint(key, (images.shape[0], 2), 0, 2 * pad + 1).astype(jnp.float32)
    return jax.vmap(shift_image, in_axes=(0, 0, None))(images, shifts, pad)


class Encoder(nn.Module):
    """The DrQ-v2 conv encoder for images [..., H, W, C]; identity (as float32) for vectors."""

    features: Sequence[int] = (32, 32, 32, 32)
    strides: Sequence[int] = (2, 1, 1, 1)

    @nn.compact
    def __call__(self, obs):
        if obs.ndim < 3 or not self.features:
            return obs.astype(jnp.float32)
        x = obs.astype(jnp.float32) / 255.0 - 0.5
        for f, s in zip(self.features, self.strides):
            x = nn.relu(nn.Conv(f, (3, 3), (s, s), padding="VALID",
                                kernel_init=nn.initializers.orthogonal(math.sqrt(2.0)))(x))
        return x.reshape(x.shape[:-3] + (-1,))


def _head(x, hidden: Sequence[int], out: int):
    for h in hidden:
        x = nn.relu(nn.Dense(h, kernel_init=_DENSE_INIT)(x))
    return nn.Dense(out, kernel_init=_DENSE_INIT)(x)


def _trunk(x, feature_dim: int):
    return jnp.tanh(nn.LayerNorm()(nn.Dense(feature_dim, kernel_init=_DENSE_INIT)(x)))


class Actor(nn.Module):
    """mu(features) = tanh(MLP(tanh(LN(Dense(features))))) in [-1, 1]^action_dim."""

    action_dim: int
    feature_dim: int = 50
    hidden: Sequence[int] = (1024, 1024)

    @nn.compact
    def __call__(self, features):
        return jnp.tanh(_head(_trunk(features, self.feature_dim), self.hidden, self.action_dim))


class Critic(nn.Module):
    """Twin Q(features, action) over one shared trunk: returns [2, batch]."""

    feature_dim: int = 50
    hidden: Sequence[int] = (1024, 1024)

    @nn.compact
    def __call__(self, features, action):
        x = jnp.concatenate([_trunk(features, self.feature_dim), action], -1)
        return jnp.stack([_head(x, self.hidden, 1)[..., 0], _head(x, self.hidden, 1)[..., 0]])


class Value(nn.Module):
    """V(features): a trunk and one head (DrM's expectile value)."""

    feature_dim: int = 50
    hidden: Sequence[int] = (1024, 1024)

    @nn.compact
    def __call__(self, features):
        return _head(_trunk(features, self.feature_dim), self.hidden, 1)[..., 0]


def sample_action(key, mu, std, clip: float | None):
    """mu + clip(std * eps, -clip, clip), clamped to [-1 + 1e-6, 1 - 1e-6] with a straight-through
    gradient to mu (DrQ-v2's TruncatedNormal.sample)."""
    noise = std * jax.random.normal(key, mu.shape)
    if clip is not None:
        noise = jnp.clip(noise, -clip, clip)
    x = mu + noise
    return x - jax.lax.stop_gradient(x) + jax.lax.stop_gradient(jnp.clip(x, -1.0 + 1e-6, 1.0 - 1e-6))


def linear_schedule(init, final, duration, step):
    """init + (final - init) * min(step / duration, 1)."""
    frac = jnp.clip(jnp.asarray(step, jnp.float32) / duration, 0.0, 1.0)
    return init + (final - init) * frac


def dormant_ratio_of(layer_outputs, tau: float = 0.025):
    """The tau-dormant ratio of a list of layer outputs [..., units] (see the module docstring)."""
    dormant, total = 0, 0
    for h in layer_outputs:
        m = jnp.abs(h).reshape(-1, h.shape[-1]).mean(0)
        dormant = dormant + (m <= tau * m.mean()).sum()
        total += h.shape[-1]
    return dormant / total


def dormant_ratio(module: nn.Module, params, *inputs, tau: float = 0.025):
    """The tau-dormant ratio of `module`'s Dense layers on a batch of `inputs`."""
    _, state = module.apply(params, *inputs, capture_intermediates=lambda m, _: isinstance(m, nn.Dense),
                            mutable=["intermediates"])
    return dormant_ratio_of(jax.tree.leaves(state["intermediates"]), tau)
