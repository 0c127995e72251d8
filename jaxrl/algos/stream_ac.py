"""Stream AC(lambda): streaming actor-critic with eligibility traces (Elsayed, Vasan, Mahmood 2024,
"Streaming Deep Reinforcement Learning Finally Works", arXiv:2410.14606).

Update rules as the official scripts run them, with ObGD as Algorithm 3 of the paper. One learner = one env, batch
size 1, no replay, no target network. Every step:

    delta = r + gamma (1 - done) V(s') - V(s)                        (both with the current critic)
    critic: ObGD(kappa_value) on z_v <- gamma lambda z_v + grad V(s)
    actor:  ObGD(kappa_policy) on z_p <- gamma lambda z_p + grad [log pi(a|s) + c_ent sign(delta) H(pi(.|s))]
    theta <- theta + step delta z,   step = alpha / max(alpha kappa max(|delta|,1) ||z||_1, 1)   (ObGD)
    traces <- 0 at episode ends (terminated OR truncated, as the official scripts)

so the entropy gradient is scaled by |delta|. The stream-x toolkit: sparse init (90% of each
unit's incoming weights zero), parameter-free LayerNorm before every hidden LeakyReLU, online
observation normalisation (Welford; every observation first updates the statistics, then is
normalised), reward scaling by the std of the discounted return, and a time feature for vector
observations. Discrete actions: softmax over logits. Continuous: N(mu(s), softplus(.)(s)) with two
linear heads on one torso; the sampled action is clipped only for the env (the log-prob uses the
unclipped sample).

Networks (the official scripts' defaults): discrete vector envs 2x32, continuous 2x128, MinAtar
Conv(16, 3x3) -> 128 -> out; actor and critic never share parameters.

Differences from the official code (mohmdelsayed/streaming-drl, stream_ac_*.py):
- traces use the textbook sign (z <- gamma lambda z + grad f, ascend delta z); the official code
  backprops -f and descends. Same parameters.
- the time feature is -0.5 + k / T with k steps since reset (T = the env's max_steps_in_episode);
  the official wrapper appends the value before incrementing, so there the first two
  observations of an episode both carry -0.5.
- gymnax envs keep their own time limits (CartPole-v1: 500); the official classic-control scripts
  raise CartPole's limit to 10,000.
- `optimizer="sgd"|"adam"` and switches for every toolkit piece give the stream-barrier baselines
  (classic AC(lambda) with plain traces, or Adam over delta z) from the same file.

Run: `python -m jaxrl.algos.stream_ac --env CartPole-v1 --num-seeds 4`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import envs
from jaxrl.core import config as C
from jaxrl.core.nets import CNN, MLP, sparse_init
from jaxrl.core.normalize import rms_init, rms_normalize, rms_update, rms_var, reward_scale, reward_scaler_init
from jaxrl.core.optim import OPTIMIZERS, make_trace_optimizer
from jaxrl.core.train import Trainer

DEFAULT_LR = {"obgd": 1.0, "sgd": 1e-3, "adam": 1e-4}


@dataclass(frozen=True)
class Config:
    """Stream AC(lambda) hyperparameters (defaults: the official scripts)."""

    env: str = "CartPole-v1"
    """environment name, see envs.registered()"""
    total_timesteps: int = 500_000
    """env steps per seed (rounded up to whole chunks); official: 500k classic, 2M MuJoCo, 10M MinAtar"""
    lr: float | None = None
    """step size alpha; None: 1.0 for obgd, 1e-3 for sgd, 1e-4 for adam (the last two are our choice)"""
    gamma: float = 0.99
    """discount"""
    lamda: float = 0.8
    """trace decay lambda"""
    kappa_value: float = 2.0
    """ObGD bound kappa of the critic"""
    kappa_policy: float = 3.0
    """ObGD bound kappa of the actor"""
    ent_coef: float = 0.01
    """entropy coefficient c_ent (multiplied by sign(delta))"""
    optimizer: str = "obgd"
    """obgd (stream AC) | sgd (classic AC(lambda)) | adam (Adam over delta z)"""
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
        C.check_range("lamda", self.lamda, 0.0, 1.0)
        C.check_positive("kappa_value", self.kappa_value)
        C.check_positive("kappa_policy", self.kappa_policy)
        C.check_positive("ent_coef", self.ent_coef, allow_zero=True)
        C.check_range("sparsity", self.sparsity, 0.0, 1.0, hi_open=True)
        if self.hidden is not None and (not self.hidden or any(h <= 0 for h in self.hidden)):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        if self.env not in envs.registered():
            envs.make(self.env)  # raises the unknown-env error with close matches

    @property
    def steps_per_chunk(self) -> int:
        return math.ceil(self.total_timesteps / self.num_chunks)

    @property
    def step_size(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr


class Torso(nn.Module):
    """MLP for vector observations, Conv(16, 3x3) + MLP for images; stream-x layers throughout."""

    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        ln = "plain" if self.layer_norm else None
        init = sparse_init(self.sparsity)
        if self.image:
            x = CNN((16,), (3,), (1,), activation="leaky_relu", layer_norm=ln, kernel_init=init)(x)
        return MLP(self.hidden, None, "leaky_relu", ln, kernel_init=init)(x)


class Actor(nn.Module):
    action_dim: int
    discrete: bool
    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        """Logits (discrete) or (mu, sigma) (continuous) for ONE observation."""
        h = Torso(self.hidden, self.image, self.sparsity, self.layer_norm)(x)
        init = sparse_init(self.sparsity)
        if self.discrete:
            return nn.Dense(self.action_dim, kernel_init=init)(h)
        mu = nn.Dense(self.action_dim, kernel_init=init)(h)
        sigma = nn.softplus(nn.Dense(self.action_dim, kernel_init=init)(h))
        return mu, sigma


class Critic(nn.Module):
    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        h = Torso(self.hidden, self.image, self.sparsity, self.layer_norm)(x)
        return nn.Dense(1, kernel_init=sparse_init(self.sparsity))(h)[0]


def _log_prob_entropy(discrete: bool, out, action):
    """log pi(a|s) summed over action dims, and the policy entropy."""
    if discrete:
        logp = jax.nn.log_softmax(out)
        return logp[action], -(jnp.exp(logp) * logp).sum()
    mu, sigma = out
    logp = -0.5 * ((action - mu) / sigma) ** 2 - jnp.log(sigma) - 0.5 * jnp.log(2 * jnp.pi)
    ent = 0.5 + 0.5 * jnp.log(2 * jnp.pi) + jnp.log(sigma)
    return logp.sum(), ent.sum()


class Carry(NamedTuple):
    actor_params: Any
    critic_params: Any
    actor_opt: Any
    critic_opt: Any
    env_state: Any
    obs: jax.Array  # the processed (normalised, time-featured) observation the agent acts on
    obs_rms: Any
    rew_scaler: Any
    key: jax.Array
    env_steps: jax.Array


def make_train(config: Config) -> Trainer:
    env, env_params = envs.make(config.env)
    discrete = envs.is_discrete(env, env_params)
    act_space = env.action_space(env_params)
    action_dim = act_space.n if discrete else int(np.prod(act_space.shape))
    obs_shape = tuple(env.observation_space(env_params).shape)
    image = len(obs_shape) == 3
    if not image and len(obs_shape) != 1:
        raise ValueError(f"stream_ac handles vector or HWC image observations, got shape {obs_shape}")
    use_time = config.time_feature and not image
    time_limit = float(env_params.max_steps_in_episode)
    hidden = config.hidden or ((128,) if image else (32, 32) if discrete else (128, 128))
    actor = Actor(action_dim, discrete, tuple(hidden), image, config.sparsity, config.layer_norm)
    critic = Critic(tuple(hidden), image, config.sparsity, config.layer_norm)
    lr = config.step_size
    tx_pi = make_trace_optimizer(config.optimizer, lr, config.gamma, config.lamda, config.kappa_policy)
    tx_v = make_trace_optimizer(config.optimizer, lr, config.gamma, config.lamda, config.kappa_value)
    low = None if discrete else jnp.asarray(act_space.low, jnp.float32)
    high = None if discrete else jnp.asarray(act_space.high, jnp.float32)

    def process(rms, raw, t):
        """Normalise one raw observation with `rms` and append the time feature for step t."""
        x = rms_normalize(rms, raw) if config.normalize_obs else raw.astype(jnp.float32)
        if use_time:
            x = jnp.concatenate([x, jnp.array([-0.5 + t / time_limit], jnp.float32)])
        return x

    def observe(rms, raw):
        return rms_update(rms, raw.astype(jnp.float32)) if config.normalize_obs else rms

    def init(key) -> Carry:
        k_pi, k_v, k_env, key = jax.random.split(key, 4)
        raw, env_state = env.reset(k_env, env_params)
        obs_rms = observe(rms_init(obs_shape), raw)
        obs = process(obs_rms, raw, 0.0)
        actor_params = actor.init(k_pi, obs)
        critic_params = critic.init(k_v, obs)
        return Carry(actor_params, critic_params, tx_pi.init(actor_params), tx_v.init(critic_params),
                     env_state, obs, obs_rms, reward_scaler_init(), key, jnp.int32(0))

    def step(carry: Carry, _):
        key, k_act, k_env = jax.random.split(carry.key, 3)
        out = actor.apply(carry.actor_params, carry.obs)
        if discrete:
            action = jax.random.categorical(k_act, out)
            env_action = action
        else:
            mu, sigma = out
            action = mu + sigma * jax.random.normal(k_act, mu.shape)
            env_action = jnp.clip(action, low, high)
        raw_next, env_state, reward, term, trunc, info = env.step(k_env, carry.env_state, env_action, env_params)
        done = jnp.logical_or(term, trunc)
        reward = reward.astype(jnp.float32)
        scaler = carry.rew_scaler
        if config.scale_reward:
            scaler, reward = reward_scale(scaler, reward, done, config.gamma)
        # s': the last observation of this transition (the final one if the episode ended);
        # then, on an episode end, the reset observation is observed too (as the official wrappers do).
        rms = observe(carry.obs_rms, info["final_observation"])
        s_prime = process(rms, info["final_observation"], info["episode_length"].astype(jnp.float32))
        rms_reset = observe(rms, raw_next)
        rms = jax.tree.map(lambda a, b: jnp.where(done, a, b), rms_reset, rms)
        next_obs = jnp.where(done, process(rms, raw_next, 0.0), s_prime)

        v_s, grad_v = jax.value_and_grad(critic.apply)(carry.critic_params, carry.obs)
        v_next = critic.apply(carry.critic_params, s_prime)
        delta = reward + config.gamma * (1.0 - done) * v_next - v_s
        delta = jax.lax.stop_gradient(delta)

        def policy_objective(params):
            logp, ent = _log_prob_entropy(discrete, actor.apply(params, carry.obs), action)
            return logp + config.ent_coef * jnp.sign(delta) * ent, ent

        grad_pi, entropy = jax.grad(policy_objective, has_aux=True)(carry.actor_params)
        upd_pi, actor_opt = tx_pi.update(grad_pi, carry.actor_opt, delta, done)
        upd_v, critic_opt = tx_v.update(grad_v, carry.critic_opt, delta, done)
        new = Carry(optax.apply_updates(carry.actor_params, upd_pi), optax.apply_updates(carry.critic_params, upd_v),
                    actor_opt, critic_opt, env_state, next_obs, rms, scaler, key, carry.env_steps + 1)
        stats = (info["episode_return"] * done, done.astype(jnp.float32), jnp.abs(delta), entropy)
        return new, stats

    def update(carry: Carry):
        carry, (ret, done, abs_delta, entropy) = jax.lax.scan(step, carry, None, config.steps_per_chunk)
        n = done.sum()
        metrics = {
            "return": jnp.where(n > 0, ret.sum() / jnp.maximum(n, 1.0), jnp.nan),
            "episodes": n,
            "env_steps": carry.env_steps,
            "td_error": abs_delta.mean(),
            "entropy": entropy.mean(),
            "reward_std": jnp.sqrt(rms_var(carry.rew_scaler.rms)),
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
