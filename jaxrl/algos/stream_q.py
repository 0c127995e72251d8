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

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import envs
from jaxrl.core import config as C
from jaxrl.core.explore import epsilon_schedule
from jaxrl.core.normalize import reward_scale, reward_scaler_init
from jaxrl.core.optim import make_trace_optimizer
from jaxrl.core.stream import ObsPipeline, StreamConfig, stream_body
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config(StreamConfig):
    """Stream Q(lambda) hyperparameters (defaults: the official classic-control script); the fields
    every stream-x learner shares (env, total_timesteps, lr, gamma, trace_lambda, optimizer, hidden,
    sparsity, layer_norm, normalize_obs, scale_reward, time_feature, num_chunks) are documented in
    `jaxrl.core.stream.StreamConfig`. Official budgets: 500k steps classic control, 5M MinAtar."""

    kappa: float = 2.0
    """ObGD bound kappa"""
    eps_start: float = 1.0
    """initial exploration rate"""
    eps_end: float = 0.01
    """final exploration rate"""
    exploration_fraction: float = 0.05
    """fraction of total_timesteps over which epsilon decays linearly (official MinAtar: 0.2)"""

    def __post_init__(self):
        super().__post_init__()
        C.check_positive("kappa", self.kappa)
        C.check_range("eps_start", self.eps_start, 0.0, 1.0)
        C.check_range("eps_end", self.eps_end, 0.0, 1.0)
        C.check_range("exploration_fraction", self.exploration_fraction, 0.0, 1.0, lo_open=True)
        envs.spec(self.env).require("stream_q", discrete=True)


class QNetwork(nn.Module):
    num_actions: int
    hidden: tuple[int, ...]
    image: bool
    sparsity: float
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        """Q(s, .) for ONE observation."""
        return stream_body(x, self.hidden, self.num_actions, self.image, self.sparsity, self.layer_norm)


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
    spec = envs.spec(config.env)
    num_actions = spec.action_dim
    net = QNetwork(num_actions, config.hidden_for(spec), spec.image, config.sparsity, config.layer_norm)
    tx = make_trace_optimizer(config.optimizer, config.step_size, config.gamma, config.trace_lambda, config.kappa)
    pipe = ObsPipeline.of(config, spec)
    decay = config.exploration_fraction * config.total_timesteps

    def init(key) -> Carry:
        k_net, k_env, key = jax.random.split(key, 3)
        raw, env_state = env.reset(k_env, env_params)
        obs_rms, obs = pipe.reset(raw)
        params = net.init(k_net, obs)
        return Carry(params, tx.init(params), env_state, obs, obs_rms, reward_scaler_init(), key, jnp.int32(0))

    def step(carry: Carry, _):
        key, k_explore, k_rand, k_env = jax.random.split(carry.key, 4)
        t = carry.env_steps + 1
        eps = epsilon_schedule(t, config.eps_start, config.eps_end, decay)  # t = 1 for the first action

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
        rms, s_prime, next_obs = pipe.after_step(carry.obs_rms, info, raw_next, done)

        (q_a, _), grads = jax.value_and_grad(q_sa, has_aux=True)(carry.params, action)
        q_next = net.apply(carry.params, s_prime).max()
        delta = jax.lax.stop_gradient(reward + config.gamma * (1.0 - done) * q_next - q_a)
        updates, opt_state = tx.update(grads, carry.opt_state, delta, jnp.logical_or(done, non_greedy))
        new = Carry(optax.apply_updates(carry.params, updates), opt_state, env_state, next_obs, rms, scaler,
                    key, t)
        stats = (info["episode_return"], done, jnp.abs(delta), eps)
        return new, stats

    def update(carry: Carry):
        carry, (ret, done, abs_delta, eps) = jax.lax.scan(step, carry, None, config.steps_per_chunk)
        metrics = {
            **episode_metrics(ret, done),
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
