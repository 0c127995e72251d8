"""Stream TD(lambda): streaming policy evaluation with eligibility traces (Elsayed, Vasan, Mahmood
2024, "Streaming Deep Reinforcement Learning Finally Works", arXiv:2410.14606).

Prediction only: a FIXED policy acts, and one learner (one env, batch size 1, no replay, no target
network) learns its value function, with the official script's update rule (ObGD: Algorithm 3 of
the paper).
Every step:

    delta = r + gamma (1 - done) V(s') - V(s)                     (both with the current weights)
    z <- gamma lambda z + grad V(s);  theta <- theta + step delta z  (ObGD, kappa = 2)
    z <- 0 at episode ends (terminated OR truncated, as the official scripts)

with the stream-x toolkit: sparse init, parameter-free LayerNorm before every hidden
LeakyReLU, online observation normalisation (update-then-normalise), reward scaling by the std of
the discounted return, and a time feature for vector observations.

Metric "value_error" (how well V predicts), per chunk: the mean over steps t of
(sigma_t V(s_t) - G_t)^2, where V(s_t) is the prediction made at step t (before that step's
update), sigma_t the reward scaler's std at step t (so sigma_t V is in raw reward units, as the
official script rescales its predictions; 1 without reward scaling), and G_t the Monte-Carlo
discounted return of the RAW rewards of the same episode, G_t = r_t + gamma (1 - done_t) G_{t+1},
computed by a reverse lax.scan over the chunk. Only steps whose episode ends inside the chunk
count (the unfinished tail episode has no complete return); NaN if there are none. Because
`done` includes truncation, G_t is the return up to the time limit -- the quantity TD learns here,
since bootstrapping is cut at truncation and the time feature makes it predictable.

Policies: "cartpole" (deterministic: push right iff the pole's angular velocity is positive;
episodes of about 140-270 steps on CartPole-v1, so G_t is a deterministic function of the state)
or "random" (uniform over actions, any env).

Differences from the official code (mohmdelsayed/streaming-drl, stream_td.py): the official script
predicts oil temperature on the ETTm2 time series (observations passed through a bias-corrected
EMA trace, gamma 0.99); here the stream comes from a gymnax env under a fixed policy, which keeps
the whole run in one XLA program. Traces use the textbook sign (z <- gamma lambda z + grad V).

Run: `python -m jaxrl.algos.stream_td --env CartPole-v1 --policy cartpole`
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
from jaxrl.core.normalize import rms_init, rms_normalize, rms_update, rms_var, reward_scale, reward_scaler_init
from jaxrl.core.optim import OPTIMIZERS, make_trace_optimizer
from jaxrl.core.train import Trainer

DEFAULT_LR = {"obgd": 1.0, "sgd": 1e-3, "adam": 1e-4}
POLICIES = ("cartpole", "random")


@dataclass(frozen=True)
class Config:
    """Stream TD(lambda) hyperparameters (defaults: the official script)."""

    env: str = "CartPole-v1"
    """environment name, see envs.registered()"""
    policy: str = "cartpole"
    """fixed behaviour policy: cartpole (push toward the pole's angular velocity; CartPole only) | random"""
    total_timesteps: int = 100_000
    """env steps per seed (rounded up to whole chunks)"""
    lr: float | None = None
    """step size alpha; None: 1.0 for obgd, 1e-3 for sgd, 1e-4 for adam (the last two are our choice)"""
    gamma: float = 0.99
    """discount"""
    lamda: float = 0.8
    """trace decay lambda"""
    kappa: float = 2.0
    """ObGD bound kappa"""
    optimizer: str = "obgd"
    """obgd (stream TD) | sgd (classic TD(lambda)) | adam (Adam over delta z)"""
    hidden: tuple[int, ...] = (128, 128)
    """hidden sizes (after the conv layer for image observations)"""
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
    num_chunks: int = 20
    """jitted chunks; value_error is measured per chunk, so a chunk must span whole episodes"""

    def __post_init__(self):
        C.check_positive("total_timesteps", self.total_timesteps)
        C.check_positive("num_chunks", self.num_chunks)
        C.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        C.check_choice("policy", self.policy, POLICIES)
        if self.lr is not None:
            C.check_positive("lr", self.lr)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("lamda", self.lamda, 0.0, 1.0)
        C.check_positive("kappa", self.kappa)
        C.check_range("sparsity", self.sparsity, 0.0, 1.0, hi_open=True)
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        if self.env not in envs.registered():
            envs.make(self.env)  # raises the unknown-env error with close matches
        if self.policy == "cartpole" and not self.env.startswith("CartPole"):
            raise ValueError(f"policy='cartpole' needs a CartPole env, got env={self.env!r}; use policy='random'")

    @property
    def steps_per_chunk(self) -> int:
        return math.ceil(self.total_timesteps / self.num_chunks)

    @property
    def step_size(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr


class ValueNetwork(nn.Module):
    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        """V(s) for ONE observation."""
        ln = "plain" if self.layer_norm else None
        init = sparse_init(self.sparsity)
        if self.image:
            x = CNN((16,), (3,), (1,), activation="leaky_relu", layer_norm=ln, kernel_init=init)(x)
        return MLP(self.hidden, 1, "leaky_relu", ln, kernel_init=init)(x)[0]


def mc_returns(rewards, dones, gamma: float):
    """Discounted returns G_t = r_t + gamma (1 - done_t) G_{t+1} over a time-major chunk, and a mask
    that is True where the episode of step t ends inside the chunk (so G_t is complete)."""

    def back(carry, xs):
        g_next, valid_next = carry
        r, d = xs
        g = r + gamma * (1.0 - d) * g_next
        valid = jnp.logical_or(d > 0, valid_next)
        return (g, valid), (g, valid)

    init = (jnp.zeros((), rewards.dtype), jnp.array(False))
    _, (g, valid) = jax.lax.scan(back, init, (rewards, dones.astype(rewards.dtype)), reverse=True)
    return g, valid


class Carry(NamedTuple):
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # processed (normalised, time-featured) observation
    raw_obs: jax.Array  # the env's observation, for the fixed policy
    obs_rms: Any
    rew_scaler: Any
    key: jax.Array
    env_steps: jax.Array


def make_train(config: Config) -> Trainer:
    env, env_params = envs.make(config.env)
    discrete = envs.is_discrete(env, env_params)
    act_space = env.action_space(env_params)
    obs_shape = tuple(env.observation_space(env_params).shape)
    image = len(obs_shape) == 3
    if not image and len(obs_shape) != 1:
        raise ValueError(f"stream_td handles vector or HWC image observations, got shape {obs_shape}")
    use_time = config.time_feature and not image
    time_limit = float(env_params.max_steps_in_episode)
    net = ValueNetwork(tuple(config.hidden), image, config.sparsity, config.layer_norm)
    tx = make_trace_optimizer(config.optimizer, config.step_size, config.gamma, config.lamda, config.kappa)

    def policy(raw_obs, key):
        if config.policy == "cartpole":
            return (raw_obs[3] > 0).astype(jnp.int32)
        if discrete:
            return jax.random.randint(key, (), 0, act_space.n)
        low = jnp.asarray(act_space.low, jnp.float32)
        high = jnp.asarray(act_space.high, jnp.float32)
        return jax.random.uniform(key, act_space.shape, jnp.float32, low, high)

    def process(rms, raw, t):
        x = rms_normalize(rms, raw) if config.normalize_obs else raw.astype(jnp.float32)
        if use_time:
            x = jnp.concatenate([x, jnp.array([-0.5 + t / time_limit], jnp.float32)])
        return x

    def observe(rms, raw):
        return rms_update(rms, raw.astype(jnp.float32)) if config.normalize_obs else rms

    def init(key) -> Carry:
        k_net, k_env, key = jax.random.split(key, 3)
        raw, env_state = env.reset(k_env, env_params)
        obs_rms = observe(rms_init(obs_shape), raw)
        obs = process(obs_rms, raw, 0.0)
        params = net.init(k_net, obs)
        return Carry(params, tx.init(params), env_state, obs, raw, obs_rms, reward_scaler_init(), key,
                     jnp.int32(0))

    def step(carry: Carry, _):
        key, k_act, k_env = jax.random.split(carry.key, 3)
        action = policy(carry.raw_obs, k_act)
        raw_next, env_state, raw_reward, term, trunc, info = env.step(k_env, carry.env_state, action, env_params)
        done = jnp.logical_or(term, trunc)
        raw_reward = raw_reward.astype(jnp.float32)
        scaler, reward = carry.rew_scaler, raw_reward
        if config.scale_reward:
            scaler, reward = reward_scale(scaler, raw_reward, done, config.gamma)
        rms = observe(carry.obs_rms, info["final_observation"])
        s_prime = process(rms, info["final_observation"], info["episode_length"].astype(jnp.float32))
        rms_reset = observe(rms, raw_next)
        rms = jax.tree.map(lambda a, b: jnp.where(done, a, b), rms_reset, rms)
        next_obs = jnp.where(done, process(rms, raw_next, 0.0), s_prime)

        v_s, grads = jax.value_and_grad(net.apply)(carry.params, carry.obs)
        v_next = net.apply(carry.params, s_prime)
        delta = jax.lax.stop_gradient(reward + config.gamma * (1.0 - done) * v_next - v_s)
        updates, opt_state = tx.update(grads, carry.opt_state, delta, done)
        sigma = jnp.sqrt(rms_var(scaler.rms) + 1e-8) if config.scale_reward else jnp.float32(1.0)
        new = Carry(optax.apply_updates(carry.params, updates), opt_state, env_state, next_obs, raw_next, rms,
                    scaler, key, carry.env_steps + 1)
        stats = (info["episode_return"] * done, done, raw_reward, sigma * v_s, jnp.abs(delta))
        return new, stats

    def update(carry: Carry):
        carry, (ret, done, raw_reward, v_raw, abs_delta) = jax.lax.scan(step, carry, None, config.steps_per_chunk)
        g, valid = mc_returns(raw_reward, done, config.gamma)
        n_valid = valid.sum()
        sq_err = jnp.where(valid, (v_raw - g) ** 2, 0.0).sum()
        n = done.sum()
        metrics = {
            "return": jnp.where(n > 0, ret.sum() / jnp.maximum(n, 1), jnp.nan),
            "episodes": n,
            "env_steps": carry.env_steps,
            "td_error": abs_delta.mean(),
            "value_error": jnp.where(n_valid > 0, sq_err / jnp.maximum(n_valid, 1), jnp.nan),
            "mc_return": jnp.where(n_valid > 0, jnp.where(valid, g, 0.0).sum() / jnp.maximum(n_valid, 1), jnp.nan),
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
