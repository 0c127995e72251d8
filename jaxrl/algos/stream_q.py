"""Stream Q(lambda): streaming Watkins Q(lambda) with eligibility traces (Elsayed, Vasan, Mahmood
2024, "Streaming Deep Reinforcement Learning Finally Works", arXiv:2410.14606).

Update rules as the official scripts run them, with ObGD as Algorithm 3 of the paper. One learner = one env, batch
size 1, no replay, no target network. Every step:

    a ~ epsilon-greedy(Q(s, .)),  epsilon_t = max(1 + (eps_end - 1) t / (frac T), eps_end), t = 1, 2, ...
    delta = r + gamma (1 - done) max_a' Q(s', a') - Q(s, a)            (both with the current weights)
    z <- gamma lambda z + grad Q(s, a);  theta <- theta + step delta z   (ObGD, kappa = 2)
    z <- 0 when the episode ended (terminated OR truncated) or the action was non-greedy
         (a random draw that equals the greedy action counts as greedy: Watkins's cut)

with the stream-x toolkit: sparse init, parameter-free LayerNorm before every hidden
LeakyReLU, online observation normalisation (update-then-normalise), reward scaling by the std of
the discounted return, and a time feature for vector observations.

Networks (the official scripts' defaults): vector envs in -> 32 -> 32 -> |A|; MinAtar Conv(16, 3x3) -> 128 -> |A|.
Official defaults: classic 500k steps with exploration_fraction 0.05; MinAtar 5M steps with 0.2.

Differences from the official code (mohmdelsayed/streaming-drl, stream_q*.py):
- traces use the textbook sign (z <- gamma lambda z + grad Q); same parameter updates.
- the time feature is -0.5 + k / T (k steps since reset, T = the env's max_steps_in_episode),
  where the official wrapper repeats -0.5 on the first step; gymnax envs keep their time limits
  (CartPole-v1: 500, the official script raises it to 10,000).
- `optimizer="sgd"|"adam"` and switches for the toolkit pieces give the stream-barrier baselines.

Run: `python -m jaxrl.algos.stream_q --env CartPole-v1 --num-seeds 4`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import envs
from jaxrl.core import config as C
from jaxrl.core.nets import CNN, MLP, sparse_init
from jaxrl.core.normalize import rms_init, rms_normalize, rms_update, reward_scale, reward_scaler_init
from jaxrl.core.optim import OPTIMIZERS, make_trace_optimizer
from jaxrl.core.train import Trainer

DEFAULT_LR = {"obgd": 1.0, "sgd": 1e-3, "adam": 1e-4}


@dataclass(frozen=True)
class Config:
    """Stream Q(lambda) hyperparameters (defaults: the official classic-control script)."""

    env: str = "CartPole-v1"
    """environment name (discrete actions), see envs.registered()"""
    total_timesteps: int = 500_000
    """env steps per seed (rounded up to whole chunks); official: 500k classic, 5M MinAtar"""
    lr: float | None = None
    """step size alpha; None: 1.0 for obgd, 1e-3 for sgd, 1e-4 for adam (the last two are our choice)"""
    gamma: float = 0.99
    """discount"""
    lamda: float = 0.8
    """trace decay lambda"""
    kappa: float = 2.0
    """ObGD bound kappa"""
    eps_start: float = 1.0
    """initial exploration rate"""
    eps_end: float = 0.01
    """final exploration rate"""
    exploration_fraction: float = 0.05
    """fraction of total_timesteps over which epsilon decays linearly (official MinAtar: 0.2)"""
    optimizer: str = "obgd"
    """obgd (stream Q) | sgd (classic Q(lambda)) | adam (Adam over delta z)"""
    hidden: tuple[int, ...] | None = None
    """hidden sizes; None: (32, 32) for vector envs, (128,) after the MinAtar conv"""
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
        C.check_positive("kappa", self.kappa)
        C.check_range("eps_start", self.eps_start, 0.0, 1.0)
        C.check_range("eps_end", self.eps_end, 0.0, 1.0)
        C.check_range("exploration_fraction", self.exploration_fraction, 0.0, 1.0, lo_open=True)
        C.check_range("sparsity", self.sparsity, 0.0, 1.0, hi_open=True)
        if self.hidden is not None and (not self.hidden or any(h <= 0 for h in self.hidden)):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        if self.env not in envs.registered():
            envs.make(self.env)  # raises the unknown-env error with close matches
        env, params = envs.make(self.env)
        if not envs.is_discrete(env, params):
            raise ValueError(f"env {self.env!r} has continuous actions; stream_q needs a discrete action space")

    @property
    def steps_per_chunk(self) -> int:
        return math.ceil(self.total_timesteps / self.num_chunks)

    @property
    def step_size(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr


class QNetwork(nn.Module):
    num_actions: int
    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        """Q(s, .) for ONE observation."""
        ln = "plain" if self.layer_norm else None
        init = sparse_init(self.sparsity)
        if self.image:
            x = CNN((16,), (3,), (1,), activation="leaky_relu", layer_norm=ln, kernel_init=init)(x)
        return MLP(self.hidden, self.num_actions, "leaky_relu", ln, kernel_init=init)(x)


class Carry(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # processed (normalised, time-featured) observation
    obs_rms: Any
    rew_scaler: Any
    key: jax.Array
    env_steps: jax.Array


def make_train(config: Config) -> Trainer:
    env, env_params = envs.make(config.env)
    num_actions = env.action_space(env_params).n
    obs_shape = tuple(env.observation_space(env_params).shape)
    image = len(obs_shape) == 3
    if not image and len(obs_shape) != 1:
        raise ValueError(f"stream_q handles vector or HWC image observations, got shape {obs_shape}")
    use_time = config.time_feature and not image
    time_limit = float(env_params.max_steps_in_episode)
    hidden = config.hidden or ((128,) if image else (32, 32))
    net = QNetwork(num_actions, tuple(hidden), image, config.sparsity, config.layer_norm)
    tx = make_trace_optimizer(config.optimizer, config.step_size, config.gamma, config.lamda, config.kappa)
    decay_steps = config.exploration_fraction * config.total_timesteps

    def process(rms, raw, t):
        x = rms_normalize(rms, raw) if config.normalize_obs else raw.astype(jnp.float32)
        if use_time:
            x = jnp.concatenate([x, jnp.array([-0.5 + t / time_limit], jnp.float32)])
        return x

    def observe(rms, raw):
        return rms_update(rms, raw.astype(jnp.float32)) if config.normalize_obs else rms

    def epsilon(t):
        """Linear decay, t = 1 for the first action (as the official schedule)."""
        slope = (config.eps_end - config.eps_start) / decay_steps
        return jnp.maximum(config.eps_start + slope * t, config.eps_end)

    def init(key) -> Carry:
        k_net, k_env, key = jax.random.split(key, 3)
        raw, env_state = env.reset(k_env, env_params)
        obs_rms = observe(rms_init(obs_shape), raw)
        obs = process(obs_rms, raw, 0.0)
        params = net.init(k_net, obs)
        return Carry(params, tx.init(params), env_state, obs, obs_rms, reward_scaler_init(), key, jnp.int32(0))

    def step(carry: Carry, _):
        key, k_explore, k_rand, k_env = jax.random.split(carry.key, 4)
        t = carry.env_steps + 1
        eps = epsilon(t.astype(jnp.float32))

        def q_sa(params, a):
            q = net.apply(params, carry.obs)
            return q[a], q

        q_s = net.apply(carry.params, carry.obs)
        greedy = jnp.argmax(q_s)
        explore = jax.random.uniform(k_explore) < eps
        action = jnp.where(explore, jax.random.randint(k_rand, (), 0, num_actions), greedy)
        non_greedy = action != greedy

        raw_next, env_state, reward, term, trunc, info = env.step(k_env, carry.env_state, action, env_params)
        done = jnp.logical_or(term, trunc)
        reward = reward.astype(jnp.float32)
        scaler = carry.rew_scaler
        if config.scale_reward:
            scaler, reward = reward_scale(scaler, reward, done, config.gamma)
        rms = observe(carry.obs_rms, info["final_observation"])
        s_prime = process(rms, info["final_observation"], info["episode_length"].astype(jnp.float32))
        rms_reset = observe(rms, raw_next)
        rms = jax.tree.map(lambda a, b: jnp.where(done, a, b), rms_reset, rms)
        next_obs = jnp.where(done, process(rms, raw_next, 0.0), s_prime)

        (q_a, _), grads = jax.value_and_grad(q_sa, has_aux=True)(carry.params, action)
        q_next = net.apply(carry.params, s_prime).max()
        delta = jax.lax.stop_gradient(reward + config.gamma * (1.0 - done) * q_next - q_a)
        updates, opt_state = tx.update(grads, carry.opt_state, delta, jnp.logical_or(done, non_greedy))
        new = Carry(optax.apply_updates(carry.params, updates), opt_state, env_state, next_obs, rms, scaler,
                    key, t)
        stats = (info["episode_return"] * done, done.astype(jnp.float32), jnp.abs(delta), eps)
        return new, stats

    def update(carry: Carry):
        carry, (ret, done, abs_delta, eps) = jax.lax.scan(step, carry, None, config.steps_per_chunk)
        n = done.sum()
        metrics = {
            "return": jnp.where(n > 0, ret.sum() / jnp.maximum(n, 1.0), jnp.nan),
            "episodes": n,
            "env_steps": carry.env_steps,
            "td_error": abs_delta.mean(),
            "epsilon": eps[-1],
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
