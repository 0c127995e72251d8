"""The denoising MDP: noise schedule, sampler timesteps, and each sampler step as a Gaussian policy.

A sampler of H steps is an H-step MDP (Black et al. 2023, DDPO; Oertell et al. 2024, RLCM): the
state is s_t = (x_{tau_t}, tau_t, c) with x_{tau_0} ~ N(0, I) and prompt c; the action is the next
sample, drawn from a Gaussian whose mean the network sets and whose std the schedule sets; the
reward comes at the end only. The network is passed in as `eps = eps_fn(x, tau, c)` (it predicts
the noise in x_tau), so this module needs no weights.

Schedule (DDPM, Ho et al. 2020): T = 1000 training timesteps, beta linear from 1e-4 to 0.02,
alpha_bar_tau = prod_{s<=tau} (1 - beta_s). With x0_hat = (x - sqrt(1 - ab_tau) eps) / sqrt(ab_tau):

- DDIM step with eta (Song et al. 2021, Eq. 12; DDPO's `ddim_step_with_logprob`), tau -> tau':
    sigma = eta * sqrt((1 - ab') / (1 - ab)) * sqrt(1 - ab / ab')
    mean  = sqrt(ab') x0_hat + sqrt(1 - ab' - sigma^2) eps,   std = sigma
  tau' = tau - T/H; after the last step (tau' < 0) ab' = ab_0 (diffusers' `set_alpha_to_one=False`).
- Consistency step (LCM, Luo et al. 2023; RLCM's policy), tau -> tau':
    f(x, tau, c) = c_skip(tau) x + c_out(tau) x0_hat,
    c_skip = sd^2 / ((k tau)^2 + sd^2),  c_out = k tau / sqrt((k tau)^2 + sd^2),  sd = 0.5, k = 10,
    mean  = sqrt(ab') f(x, tau, c),   std = sqrt(1 - ab')
  The final image is f of the last state. Timesteps come from LCM's 50-step origin grid
  ([1..50] * T/50 - 1), every (50 // H)-th taken from the end (H = 8: 999, 879, ..., 159).

`clip_x0` clips x0_hat to the data range [-1, 1] (diffusers' `clip_sample`; our images are
pixels, not latents). Log-probabilities are Gaussian log-densities averaged (not summed) over the
image's pixels, as both official codes do, so that PPO's ratio clip means the same at any image size.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

NUM_TRAIN_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02
ORIGIN_STEPS = 50  # LCM's origin grid of the consistency sampler
SIGMA_DATA = 0.5
TIMESTEP_SCALING = 10.0


def alphas_cumprod(num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> np.ndarray:
    """alpha_bar_tau for tau = 0..T-1 (float32 [T]) of the linear beta schedule."""
    betas = np.linspace(BETA_START, BETA_END, num_train_timesteps, dtype=np.float64)
    return np.cumprod(1.0 - betas).astype(np.float32)


def check_num_steps(num_steps, name: str = "num_inference_steps", max_steps: int = NUM_TRAIN_TIMESTEPS) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or not 1 <= num_steps <= max_steps:
        raise ValueError(f"{name} must be an integer in 1..{max_steps}, got {num_steps!r}")
    return int(num_steps)


def ddim_timesteps(num_steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps, previous timesteps) of an H-step DDIM sampler, int32 [H] each, descending from
    T - 1 with stride T // H; the last previous timestep is negative (meaning: clean, ab_0)."""
    h = check_num_steps(num_steps, max_steps=num_train_timesteps)
    stride = num_train_timesteps // h
    t = (num_train_timesteps - 1) - stride * np.arange(h)
    return t.astype(np.int32), (t - stride).astype(np.int32)


def consistency_timesteps(num_steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
                          origin_steps: int = ORIGIN_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps, next timesteps) of an H-step consistency sampler (H <= 50), int32 [H] each; the
    last step's next timestep is its own (RLCM reuses the current alpha_bar there)."""
    h = check_num_steps(num_steps, max_steps=origin_steps)
    c = num_train_timesteps // origin_steps
    origin = np.arange(1, origin_steps + 1) * c - 1
    t = origin[:: -(origin_steps // h)][:h]
    return t.astype(np.int32), np.concatenate([t[1:], t[-1:]]).astype(np.int32)


def _ab(alphas, t):
    """alpha_bar at (possibly negative: clean) timestep t; t < 0 gives alpha_bar_0."""
    return jnp.asarray(alphas)[jnp.maximum(t, 0)]


def _per_image(v, x):
    """A scalar or per-image [N] value shaped to broadcast against images x [N, 8, 8]."""
    v = jnp.asarray(v)
    return v.reshape(v.shape + (1,) * (x.ndim - v.ndim)) if v.ndim else v


def predict_x0(x, eps, ab, clip_x0: bool):
    x0 = (x - jnp.sqrt(1.0 - ab) * eps) / jnp.sqrt(ab)
    return jnp.clip(x0, -1.0, 1.0) if clip_x0 else x0


def ddim_step(eps, x, t, t_prev, alphas, eta: float = 1.0, clip_x0: bool = True):
    """(mean, std, x0_hat) of the DDIM step x_t -> x_{t_prev} for noise prediction `eps`."""
    ab, ab_prev = _per_image(_ab(alphas, t), x), _per_image(_ab(alphas, t_prev), x)
    x0 = predict_x0(x, eps, ab, clip_x0)
    var = (1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)
    std = eta * jnp.sqrt(jnp.maximum(var, 0.0))
    mean = jnp.sqrt(ab_prev) * x0 + jnp.sqrt(jnp.maximum(1.0 - ab_prev - std**2, 0.0)) * eps
    return mean, std, x0


def boundary_scalings(t, sigma_data: float = SIGMA_DATA, timestep_scaling: float = TIMESTEP_SCALING):
    """(c_skip, c_out) of the consistency function at timestep t (c_skip(0) = 1, c_out(0) = 0)."""
    s = timestep_scaling * jnp.maximum(jnp.asarray(t, jnp.float32), 0.0)
    return sigma_data**2 / (s**2 + sigma_data**2), s / jnp.sqrt(s**2 + sigma_data**2)


def consistency_fn(eps, x, t, alphas, clip_x0: bool = True):
    """f(x, t) = c_skip(t) x + c_out(t) x0_hat for noise prediction `eps` (t < 0: f = x)."""
    c_skip, c_out = (_per_image(c, x) for c in boundary_scalings(t))
    return c_skip * x + c_out * predict_x0(x, eps, _per_image(_ab(alphas, t), x), clip_x0)


def consistency_step(eps, x, t, t_next, alphas, clip_x0: bool = True):
    """(mean, std, denoised) of the consistency step x_t -> x_{t_next}: denoised = f(x, t),
    next sample ~ N(sqrt(ab_next) denoised, (1 - ab_next) I)."""
    denoised = consistency_fn(eps, x, t, alphas, clip_x0)
    ab_next = _per_image(_ab(alphas, t_next), x)
    return jnp.sqrt(ab_next) * denoised, jnp.sqrt(1.0 - ab_next), denoised


def gaussian_log_prob(x, mean, std, event_ndim: int = 2):
    """log N(x; mean, std^2 I), averaged over the last `event_ndim` axes (the pixels); std is a
    scalar or broadcasts against x."""
    z = (x - mean) / std
    lp = -0.5 * z**2 - jnp.log(std) - 0.5 * math.log(2.0 * math.pi)
    return lp.mean(axis=tuple(range(-event_ndim, 0)))


def add_noise(x0, noise, t, alphas):
    """x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise; t broadcasts over the batch ([N] or scalar)."""
    ab = _per_image(_ab(alphas, t), x0)
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * noise
