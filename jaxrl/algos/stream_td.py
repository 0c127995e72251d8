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

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import envs
from jaxrl.core import config as C
from jaxrl.core.normalize import rms_var, reward_scale, reward_scaler_init
from jaxrl.core.optim import make_trace_optimizer
from jaxrl.core.stream import ObsPipeline, StreamConfig, stream_body
from jaxrl.core.train import Trainer, episode_metrics

POLICIES = ("cartpole", "random")


@dataclass(frozen=True)
class Config(StreamConfig):
    """Stream TD(lambda) hyperparameters (defaults: the official script); the fields every stream-x
    learner shares are documented in `jaxrl.core.stream.StreamConfig`."""

    total_timesteps: int = 100_000
    """env steps per seed (rounded up to whole chunks)"""
    hidden: tuple[int, ...] | None = (128, 128)
    """hidden sizes (after the conv layer for image observations)"""
    num_chunks: int = 20
    """jitted chunks; value_error is measured per chunk, so a chunk must span whole episodes"""
    policy: str = "cartpole"
    """fixed behaviour policy: cartpole (push toward the pole's angular velocity; CartPole only) | random"""
    kappa: float = 2.0
    """ObGD bound kappa"""

    def __post_init__(self):
        super().__post_init__()
        C.check_choice("policy", self.policy, POLICIES)
        C.check_positive("kappa", self.kappa)
        if self.policy == "cartpole" and not self.env.startswith("CartPole"):
            raise ValueError(f"policy='cartpole' needs a CartPole env, got env={self.env!r}; use policy='random'")


class ValueNetwork(nn.Module):
    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        """V(s) for ONE observation."""
        return stream_body(x, self.hidden, 1, self.image, self.sparsity, self.layer_norm)[0]


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
    spec = envs.spec(config.env)
    net = ValueNetwork(config.hidden_for(spec), spec.image, config.sparsity, config.layer_norm)
    tx = make_trace_optimizer(config.optimizer, config.step_size, config.gamma, config.trace_lambda, config.kappa)
    pipe = ObsPipeline.of(config, spec)

    def policy(raw_obs, key):
        if config.policy == "cartpole":
            return (raw_obs[3] > 0).astype(jnp.int32)
        if spec.discrete:
            return jax.random.randint(key, (), 0, spec.action_dim)
        return jax.random.uniform(key, spec.action_shape, jnp.float32, spec.low(), spec.high())

    def init(key) -> Carry:
        k_net, k_env, key = jax.random.split(key, 3)
        raw, env_state = env.reset(k_env, env_params)
        obs_rms, obs = pipe.reset(raw)
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
        rms, s_prime, next_obs = pipe.after_step(carry.obs_rms, info, raw_next, done)

        v_s, grads = jax.value_and_grad(net.apply)(carry.params, carry.obs)
        v_next = net.apply(carry.params, s_prime)
        delta = jax.lax.stop_gradient(reward + config.gamma * (1.0 - done) * v_next - v_s)
        updates, opt_state = tx.update(grads, carry.opt_state, delta, done)
        sigma = jnp.sqrt(rms_var(scaler.rms) + 1e-8) if config.scale_reward else jnp.float32(1.0)
        new = Carry(optax.apply_updates(carry.params, updates), opt_state, env_state, next_obs, raw_next, rms,
                    scaler, key, carry.env_steps + 1)
        stats = (info["episode_return"], done, raw_reward, sigma * v_s, jnp.abs(delta))
        return new, stats

    def update(carry: Carry):
        carry, (ret, done, raw_reward, v_raw, abs_delta) = jax.lax.scan(step, carry, None, config.steps_per_chunk)
        g, valid = mc_returns(raw_reward, done, config.gamma)
        n_valid = valid.sum()
        sq_err = jnp.where(valid, (v_raw - g) ** 2, 0.0).sum()
        metrics = {
            **episode_metrics(ret, done),
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
