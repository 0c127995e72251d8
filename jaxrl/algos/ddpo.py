"""DDPO: denoising diffusion policy optimisation (Black et al. 2023, "Training Diffusion Models
with Reinforcement Learning", arXiv:2305.13301), DDPO_IS (the PPO-clip variant), on 8x8 digits.

The H-step DDIM sampler with eta = 1 is an MDP (envs.generative.denoising): the state is
s_t = (x_t, t, c), the action is x_{t-1}, and the policy is the DDIM step's Gaussian

    pi_theta(x_{t-1} | s_t) = N( sqrt(ab_{t-1}) x0_hat + sqrt(1 - ab_{t-1} - sigma_t^2) eps_theta, sigma_t^2 I ),
    sigma_t = sqrt((1 - ab_{t-1}) / (1 - ab_t)) sqrt(1 - ab_t / ab_{t-1}),

with the reward R(x_0, c) of the last action (the image) only. Each iteration samples
`samples_per_iter` images with the current policy, turns rewards into advantages per prompt
(`jaxrl.core.prompt_stats`), clips them to +-adv_clip and takes `num_minibatches` AdamW steps per
inner epoch on the PPO-clip loss over all H steps, the same advantage at every step:

    rho = exp(log pi_theta - log pi_old),   L = mean_{samples, steps} max(-A rho, -A clip(rho, 1 - eps, 1 + eps)),

log-probs being Gaussian log-densities averaged over pixels. This file differs from
`jaxrl/algos/rlcm.py` only in the sampler, in that every step enters the loss, and in defaults.

Differences from the official code (kvablack/ddpo-pytorch, Stable Diffusion v1.4 with LoRA):
- the generator is ours: a 8x8 class-conditional diffusion model (jaxrl.models.pretrain),
  fine-tuned in full (no LoRA), no classifier-free guidance, x0_hat clipped to [-1, 1];
- H = 20 steps by default (official: 50), the last step going to ab_0 (diffusers'
  `set_alpha_to_one=False`), and all H steps of a minibatch in one gradient (official:
  accumulated over shuffled (batch, step) micro-steps: the same gradient);
- rewards are those of envs.generative.rewards; defaults are scaled like RLCM's (64 samples per
  iteration, clip 1e-3; the paper's 256 samples, clip 1e-4); lr 3e-4, weight decay 1e-4, advantage
  clip 5 and gradient-norm clip 1 are DDPO's.

The pretrained networks are closed over, not carried; their content hash is the config's
`pretrained_hash`. Run: `python -m jaxrl.algos.ddpo --reward aesthetic --num-seeds 3`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from envs.generative import check_prompts, make_reward
from envs.generative.denoising import check_num_steps
from envs.generative.prompts import NUM_CLASSES, sample_prompts
from envs.generative.rewards import check_reward
from jaxrl.core import config as C
from jaxrl.core.prompt_stats import PromptStats, normalize, prompt_stats_init
from jaxrl.core.train import Trainer
from jaxrl.models import pretrain
from jaxrl.models.generative import Trajectory, make_sampler, sample, step_log_prob


@dataclass(frozen=True)
class Config:
    """DDPO hyperparameters (paper defaults noted where ours differ)."""

    reward: str = "aesthetic"
    """one of envs.generative.REWARDS"""
    num_inference_steps: int = 20
    """H, steps of the DDIM sampler (1..1000; paper: 50)"""
    eta: float = 1.0
    """DDIM eta: 1 makes every step stochastic (DDPO's)"""
    prompts: tuple[int, ...] = tuple(range(10))
    """digit classes to sample prompts from, uniformly"""
    samples_per_iter: int = 64
    """images sampled per RL iteration (paper: 256)"""
    num_minibatches: int = 4
    """optimiser steps per inner epoch; must divide samples_per_iter (paper: 4)"""
    num_inner_epochs: int = 1
    """passes over each iteration's samples"""
    lr: float = 3e-4
    """AdamW learning rate"""
    weight_decay: float = 1e-4
    """AdamW weight decay"""
    clip_range: float = 1e-3
    """PPO ratio clip epsilon (paper: 1e-4)"""
    adv_clip: float = 5.0
    """advantages are clipped to +-adv_clip"""
    max_grad_norm: float = 1.0
    """global gradient-norm clip"""
    stat_buffer: int = 16
    """rewards kept per prompt for advantage normalisation"""
    stat_min_count: int = 16
    """below this many rewards of a prompt, normalise with the batch's mean and std"""
    total_samples: int = 8192
    """images sampled per seed over the run (rounded up to whole chunks of iterations)"""
    num_chunks: int = 8
    """jitted chunks the run is cut into (progress/logging/checkpoint granularity)"""
    pretrain_seed: int = 0
    """seed of the pretrained networks' recipe (jaxrl.models.pretrain), used when pretrained_hash is empty"""
    pretrained_hash: str = ""
    """content hash of the pretrained networks to start from; empty: those of pretrain_seed, whose
    hash is filled in here (training and caching them first if needed)"""

    def __post_init__(self):
        check_reward(self.reward)
        check_num_steps(self.num_inference_steps)
        object.__setattr__(self, "prompts", check_prompts(self.prompts))
        for name in ("samples_per_iter", "num_minibatches", "num_inner_epochs", "total_samples", "num_chunks",
                     "stat_buffer", "lr", "clip_range", "adv_clip", "max_grad_norm", "eta"):
            C.check_positive(name, getattr(self, name))
        for name in ("stat_min_count", "weight_decay"):
            C.check_positive(name, getattr(self, name), allow_zero=True)
        C.check_divides("num_minibatches", self.num_minibatches, "samples_per_iter", self.samples_per_iter)
        if not self.pretrained_hash:
            object.__setattr__(self, "pretrained_hash", pretrain.resolve("", self.pretrain_seed).hash)

    @property
    def iters_per_chunk(self) -> int:
        return math.ceil(self.total_samples / self.samples_per_iter / self.num_chunks)


class Carry(NamedTuple):
    params: Any
    opt_state: Any
    stats: PromptStats
    key: jax.Array
    samples: jax.Array


def make_train(config: Config) -> Trainer:
    pre = pretrain.resolve(config.pretrained_hash, config.pretrain_seed)
    net = pre.denoiser()
    sampler = make_sampler("ddim", config.num_inference_steps, eta=config.eta)
    reward_fn = make_reward(config.reward, classifier=pre.classifier_logits, aesthetic=pre.aesthetic_score)
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                     optax.adamw(config.lr, weight_decay=config.weight_decay))
    t_loss = jnp.asarray(sampler.timesteps)
    t_next_loss = jnp.asarray(sampler.next_timesteps)
    mb_size = config.samples_per_iter // config.num_minibatches

    def eps_fn(params):
        return lambda x, t, c: net.apply(params, x, t, c)

    def init(key) -> Carry:
        params = pre.diffusion
        return Carry(params, tx.init(params), prompt_stats_init(NUM_CLASSES, config.stat_buffer), key, jnp.int32(0))

    def loss_fn(params, mb):
        states, actions, old_log_probs, prompts, adv = mb  # [n, H, 8, 8], ..., [n, H], [n], [n]
        n, h = old_log_probs.shape
        flat = lambda x: x.reshape((n * h,) + x.shape[2:])
        log_probs = step_log_prob(sampler, eps_fn(params), flat(states), flat(actions), jnp.tile(t_loss, n),
                                  jnp.tile(t_next_loss, n), jnp.repeat(prompts, h)).reshape(n, h)
        ratio = jnp.exp(log_probs - old_log_probs)
        a = adv[:, None]
        loss = jnp.maximum(-a * ratio, -a * jnp.clip(ratio, 1 - config.clip_range, 1 + config.clip_range)).mean()
        aux = {"clip_fraction": (jnp.abs(ratio - 1) > config.clip_range).mean(),
               "approx_kl": 0.5 * ((log_probs - old_log_probs) ** 2).mean()}
        return loss, {"policy_loss": loss, **aux}

    def minibatch_step(state, mb):
        params, opt_state = state
        grads, aux = jax.grad(loss_fn, has_aux=True)(params, mb)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    def epoch(state, key, data):
        perm = jax.random.permutation(key, config.samples_per_iter)
        mbs = jax.tree.map(lambda x: x[perm].reshape((config.num_minibatches, mb_size) + x.shape[1:]), data)
        return jax.lax.scan(minibatch_step, state, mbs)

    def iteration(carry: Carry, _):
        key, k_prompt, k_sample, k_epochs = jax.random.split(carry.key, 4)
        prompts = sample_prompts(k_prompt, config.prompts, config.samples_per_iter)
        traj: Trajectory = sample(sampler, eps_fn(carry.params), k_sample, prompts)
        rewards = reward_fn(traj.images, prompts)
        stats, adv = normalize(carry.stats, rewards, prompts, config.stat_min_count)
        adv = jnp.clip(adv, -config.adv_clip, config.adv_clip)
        per_sample = lambda x: jnp.swapaxes(x, 0, 1)  # [H, N, ...] -> [N, H, ...]
        data = (per_sample(traj.states), per_sample(traj.actions), per_sample(traj.log_probs), prompts, adv)
        (params, opt_state), aux = jax.lax.scan(
            lambda s, k: epoch(s, k, data), (carry.params, carry.opt_state),
            jax.random.split(k_epochs, config.num_inner_epochs))
        aux = jax.tree.map(jnp.mean, aux)
        carry = Carry(params, opt_state, stats, key, carry.samples + config.samples_per_iter)
        return carry, (rewards.mean(), rewards.std(), aux)

    def update(carry: Carry):
        carry, (reward, reward_std, aux) = jax.lax.scan(iteration, carry, None, config.iters_per_chunk)
        metrics = {k: v.mean() for k, v in aux.items()}
        metrics.update(reward=reward.mean(), reward_std=reward_std.mean(), samples=carry.samples)
        return carry, metrics

    return Trainer(init, update, config.num_chunks, score="reward", progress="samples")


def make_generate(config: Config, params=None, num_inference_steps: int | None = None):
    """`generate(key, prompts [N]) -> images [N, 8, 8]` of the DDIM sampler, with `params`
    (e.g. one seed's `carry.params`; default: the pretrained diffusion model)."""
    pre = pretrain.resolve(config.pretrained_hash, config.pretrain_seed)
    net = pre.denoiser()
    params = pre.diffusion if params is None else params
    sampler = make_sampler("ddim", num_inference_steps or config.num_inference_steps, eta=config.eta)

    def generate(key, prompts):
        return sample(sampler, lambda x, t, c: net.apply(params, x, t, c), key, jnp.asarray(prompts)).images

    return generate


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
