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

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import envs
from jaxrl.core import config as C
from jaxrl.core.nets import sparse_init
from jaxrl.core.normalize import rms_var, reward_scale, reward_scaler_init
from jaxrl.core.optim import make_trace_optimizer
from jaxrl.core.stream import ObsPipeline, StreamConfig, Torso
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config(StreamConfig):
    """Stream AC(lambda) hyperparameters (defaults: the official scripts); the fields every stream-x
    learner shares are documented in `jaxrl.core.stream.StreamConfig`. Official budgets: 500k steps
    classic control, 2M MuJoCo, 10M MinAtar."""

    kappa_value: float = 2.0
    """ObGD bound kappa of the critic"""
    kappa_policy: float = 3.0
    """ObGD bound kappa of the actor"""
    ent_coef: float = 0.01
    """entropy coefficient c_ent (multiplied by sign(delta))"""

    def __post_init__(self):
        super().__post_init__()
        C.check_positive("kappa_value", self.kappa_value)
        C.check_positive("kappa_policy", self.kappa_policy)
        C.check_positive("ent_coef", self.ent_coef, allow_zero=True)


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
    spec = envs.spec(config.env)
    discrete = spec.discrete
    hidden = config.hidden_for(spec)
    actor = Actor(spec.action_dim, discrete, hidden, spec.image, config.sparsity, config.layer_norm)
    critic = Critic(hidden, spec.image, config.sparsity, config.layer_norm)
    lr = config.step_size
    tx_pi = make_trace_optimizer(config.optimizer, lr, config.gamma, config.trace_lambda, config.kappa_policy)
    tx_v = make_trace_optimizer(config.optimizer, lr, config.gamma, config.trace_lambda, config.kappa_value)
    low, high = (None, None) if discrete else (jnp.asarray(spec.low()), jnp.asarray(spec.high()))
    pipe = ObsPipeline.of(config, spec)

    def init(key) -> Carry:
        k_pi, k_v, k_env, key = jax.random.split(key, 4)
        raw, env_state = env.reset(k_env, env_params)
        obs_rms, obs = pipe.reset(raw)
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
        rms, s_prime, next_obs = pipe.after_step(carry.obs_rms, info, raw_next, done)

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
        stats = (info["episode_return"], done, jnp.abs(delta), entropy)
        return new, stats

    def update(carry: Carry):
        carry, (ret, done, abs_delta, entropy) = jax.lax.scan(step, carry, None, config.steps_per_chunk)
        metrics = {
            **episode_metrics(ret, done),
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
