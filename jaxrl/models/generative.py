"""The small class-conditional image generator of RLCM and DDPO, its samplers and reward networks.

- `Denoiser`: predicts the noise eps in x_tau given (x_tau, tau, digit class). A residual MLP
  over the 64 pixels, conditioned by adding a timestep embedding (sinusoidal, Ho et al. 2020) and
  a class embedding to every block. The diffusion model (DDPM loss) is one; the consistency model
  is another with the same architecture, read through the consistency function
  f(x, tau, c) = c_skip(tau) x + c_out(tau) x0_hat(eps) (see envs.generative.denoising), as LCM
  reads a noise-predicting U-Net.
- `Classifier` (logits over the 10 digits) and `Scorer` (one "aesthetic" score): small MLPs.
- `Sampler` / `sample`: an H-step DDIM (eta) or consistency sampler run as one `lax.scan`,
  returning the whole trajectory of the denoising MDP (states, sampled actions, their Gaussian
  log-probs) and the final images.

Dense layers use Flax's default lecun_normal init (orthogonal init can deadlock jaxlib
0.10.0-0.10.2 under a jitted vmap; see setup.cfg).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from envs.generative import denoising as D
from envs.generative.data import IMAGE_SHAPE
from envs.generative.prompts import NUM_CLASSES

SAMPLERS = ("ddim", "consistency")


def timestep_embedding(t, dim: int, max_period: float = 10_000.0):
    """Sinusoidal embedding [N, dim] of timesteps t [N]."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


class Denoiser(nn.Module):
    """eps_hat(x_tau, tau, c): images [N, 8, 8], timesteps [N] or scalar, classes [N] -> [N, 8, 8]."""

    hidden: int = 256
    depth: int = 3
    num_classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, x, t, c):
        n = x.shape[0]
        t = jnp.broadcast_to(jnp.asarray(t), (n,))
        temb = nn.Dense(self.hidden)(nn.silu(nn.Dense(self.hidden)(timestep_embedding(t, 64))))
        cond = temb + nn.Embed(self.num_classes, self.hidden)(c)
        h = nn.Dense(self.hidden)(x.reshape(n, -1))
        for _ in range(self.depth):
            y = nn.Dense(self.hidden)(nn.silu(nn.LayerNorm()(h) + cond))
            h = h + nn.Dense(self.hidden)(nn.silu(y))
        out = nn.Dense(math.prod(IMAGE_SHAPE), kernel_init=nn.initializers.zeros)(nn.silu(nn.LayerNorm()(h)))
        return out.reshape(x.shape)


class Classifier(nn.Module):
    """Digit logits [N, 10] of images [N, 8, 8]."""

    hidden: int = 128

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        for _ in range(2):
            h = nn.silu(nn.Dense(self.hidden)(h))
        return nn.Dense(NUM_CLASSES)(h)


class Scorer(nn.Module):
    """One score [N] per image [N, 8, 8] (the learned "aesthetic" reward)."""

    hidden: int = 64

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        for _ in range(2):
            h = nn.silu(nn.Dense(self.hidden)(h))
        return nn.Dense(1)(h)[:, 0]


class Sampler(NamedTuple):
    """An H-step sampler of the denoising MDP. `kind`: "ddim" (DDPO's policy; eta = 1 makes every
    step stochastic) or "consistency" (RLCM's policy). Build with `make_sampler`."""

    kind: str
    timesteps: np.ndarray  # tau_t, t = 0..H-1
    next_timesteps: np.ndarray  # tau_{t+1} (DDIM: negative after the last step; consistency: the last repeats)
    eta: float
    clip_x0: bool

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    def step(self, eps, x, t, t_next):
        """(mean, std, x0_hat) of the Gaussian step from x at timestep t."""
        alphas = D.alphas_cumprod()
        if self.kind == "ddim":
            return D.ddim_step(eps, x, t, t_next, alphas, self.eta, self.clip_x0)
        return D.consistency_step(eps, x, t, t_next, alphas, self.clip_x0)


def make_sampler(kind: str, num_steps: int, eta: float = 1.0, clip_x0: bool = True) -> Sampler:
    """ValueError for an unknown kind or a step count outside 1..1000 (ddim) / 1..50 (consistency)."""
    if kind not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {kind!r}")
    grid = D.ddim_timesteps if kind == "ddim" else D.consistency_timesteps
    t, t_next = grid(num_steps)
    return Sampler(kind, t, t_next, float(eta), bool(clip_x0))


class Trajectory(NamedTuple):
    """One batch of the denoising MDP: step t goes from states[t] to actions[t]."""

    states: jax.Array  # [H, N, 8, 8] x_{tau_t}
    actions: jax.Array  # [H, N, 8, 8] x_{tau_{t+1}}, drawn from the step's Gaussian
    log_probs: jax.Array  # [H, N] log pi(action | state), averaged over pixels
    images: jax.Array  # [N, 8, 8] the sampler's output


def sample(sampler: Sampler, eps_fn: Callable, key, prompts) -> Trajectory:
    """Run the sampler for prompts [N] from x ~ N(0, I) as one `lax.scan` over its steps.

    `eps_fn(x, tau, c)` is the network's noise prediction. The output is the last action for
    DDIM (x_0) and the last step's denoised f(x, tau) for the consistency sampler (RLCM's image:
    the last step's re-noised action is recorded but is not the image)."""
    n = prompts.shape[0]
    k0, k_steps = jax.random.split(key)
    x = jax.random.normal(k0, (n,) + IMAGE_SHAPE)
    noise = jax.random.normal(k_steps, (sampler.num_steps, n) + IMAGE_SHAPE)
    ts = (jnp.asarray(sampler.timesteps), jnp.asarray(sampler.next_timesteps), noise)

    def body(x, step):
        t, t_next, z = step
        mean, std, x0 = sampler.step(eps_fn(x, t, prompts), x, t, t_next)
        action = mean + std * z
        return action, (x, action, D.gaussian_log_prob(action, mean, std), x0)

    last, (states, actions, log_probs, x0s) = jax.lax.scan(body, x, ts)
    images = last if sampler.kind == "ddim" else x0s[-1]
    return Trajectory(states, actions, log_probs, images)


def step_log_prob(sampler: Sampler, eps_fn: Callable, states, actions, t, t_next, prompts):
    """log pi(actions | states) [N] of one step (timesteps t -> t_next) under `eps_fn`."""
    mean, std, _ = sampler.step(eps_fn(states, t, prompts), states, t, t_next)
    return D.gaussian_log_prob(actions, mean, std)
