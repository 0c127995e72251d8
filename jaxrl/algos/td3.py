"""TD3: Twin Delayed Deep Deterministic policy gradient (Fujimoto, van Hoof & Meger 2018,
"Addressing Function Approximation Error in Actor-Critic Methods", ICML, arXiv:1802.09477).

A deterministic policy mu(s) = offset + scale tanh(f(s)), two critics Q_1, Q_2 and target copies
mu', Q'_1, Q'_2, with the paper's three changes to DDPG (Algorithm 1):

    clipped double Q:          y = R + discount * min_j Q'_j(s', a')
    target policy smoothing:   a' = clip(mu'(s') + clip(sigma * scale * eps, -c * scale, c * scale), low, high),
                               eps ~ N(0, I)
    delayed policy updates:    every `policy_delay`-th critic update, one actor step on
                               J = -E[Q_1(s, mu(s))], then the Polyak updates
                               phi' <- tau phi + (1 - tau) phi',  theta'_j <- tau theta_j + (1 - tau) theta'_j

The critic loss is sum_j E[(Q_j(s, a) - y)^2] (the official code's sum of two mean squared errors).
R and discount are the replay buffer's (n-step) reward sum and gamma^n (1 - terminated); with the
default n_step = 1, y = r + gamma (1 - terminated) min_j Q'_j(s', a'). Behaviour actions are
clip(mu(s) + exploration_noise * scale * N(0, I), low, high); noise scales are fractions of the
action range's half-width `scale`, as the official code multiplies them by max_action.

Training shape (as `jaxrl.algos.sac`): `num_envs` envs step together as one `envs.VecEnv`;
`learning_starts` env steps of uniform random actions fill the replay buffer in `init`; then each
iteration collects with the noisy current policy and runs critic updates at the ratio
`updates_per_step` (gradient updates per env step, summed over envs; fractional or > 1), with the
actor and target updates after every `policy_delay`-th critic update. At the end of every chunk
the deterministic policy mu runs `eval_episodes` episodes: `eval_return` in the metrics.

Differences from the paper and the official code (sfujim/TD3):
- time-limit truncation bootstraps: the stored s' is gymnax's `info["final_observation"]` and only
  a true terminal zeroes the discount (the official code also does this, via `done_bool`);
- optional n-step targets (`n_step`), several envs per seed, and the ratio `updates_per_step`;
- Adam runs on one flat parameter vector per network; lecun-normal initialisation;
- training is cut into `num_chunks` jitted chunks (progress, logging and checkpoints in between).

Defaults are the official code's (Adam 3e-4, batch 256, two hidden layers of 256, tau 0.005,
sigma 0.2, c 0.5, exploration noise 0.1, policy delay 2, gamma 0.99, buffer 1e6) except
`learning_starts` 5000 (the official 25k suits 1M-step MuJoCo runs) and the run length.
`PENDULUM` below solves Pendulum-v1 in 15k env steps on a CPU.

Run: `python -m jaxrl.algos.td3 --env Pendulum-v1 --num-seeds 4`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

import envs
from jaxrl.core import config as C
from jaxrl.core.buffer import Buffer, buffer_add, buffer_init, buffer_sample
from jaxrl.core.evaluate import evaluate
from jaxrl.core.nets import MLP, QEnsemble
from jaxrl.core.offpolicy import (
    RowPacker, Step, Transition, nstep_push, nstep_window, polyak_update, random_actions, update_schedule,
)
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config:
    """TD3 hyperparameters (defaults: the official code's, see the module docstring)."""

    env: str = "Pendulum-v1"
    """environment name (continuous actions), see envs.registered()"""
    total_timesteps: int = 50_000
    """env steps per seed, summed over envs, warm-up included (rounded up to whole chunks)"""
    num_envs: int = 1
    """parallel envs per seed"""
    buffer_size: int = 1_000_000
    """replay buffer capacity in transitions"""
    batch_size: int = 256
    """transitions per gradient update"""
    learning_starts: int = 5_000
    """env steps of uniform random actions that fill the buffer before the first update"""
    updates_per_step: float = 1.0
    """critic updates per env step (summed over envs): the update-to-data ratio, e.g. 0.5, 1, 4"""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy"""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.005
    """Polyak rate of the target networks, in (0, 1]"""
    n_step: int = 1
    """steps summed in each target (1: the paper's one-step target)"""
    policy_delay: int = 2
    """critic updates per actor (and target) update"""
    policy_noise: float = 0.2
    """std of the target-policy smoothing noise, as a fraction of the action half-range"""
    noise_clip: float = 0.5
    """clip of the smoothing noise, as a fraction of the action half-range"""
    exploration_noise: float = 0.1
    """std of the Gaussian behaviour noise, as a fraction of the action half-range"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden sizes of the actor and of each critic"""
    activation: str = "relu"
    """hidden activation"""
    eval_episodes: int = 10
    """deterministic evaluation episodes at the end of each chunk (0: no evaluation)"""
    num_chunks: int = 10
    """jitted chunks the run is cut into (progress/logging/checkpoint granularity)"""

    def __post_init__(self):
        for name in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "n_step", "policy_delay",
                     "num_chunks", "actor_lr", "critic_lr"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("learning_starts", self.learning_starts, allow_zero=True)
        C.check_positive("eval_episodes", self.eval_episodes, allow_zero=True)
        for name in ("policy_noise", "noise_clip", "exploration_noise"):
            C.check_positive(name, getattr(self, name), allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("tau", self.tau, 0.0, 1.0, lo_open=True)
        update_schedule(self.updates_per_step, self.num_envs)  # names updates_per_step
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size={self.batch_size} must be <= buffer_size={self.buffer_size}")
        if self.num_envs > self.buffer_size:
            raise ValueError(f"num_envs={self.num_envs} must be <= buffer_size={self.buffer_size} "
                             "(one vectorised step writes num_envs transitions)")
        if _concrete(self.learning_starts, self.total_timesteps) and self.learning_starts >= self.total_timesteps:
            raise ValueError(f"learning_starts={self.learning_starts} must be < total_timesteps="
                             f"{self.total_timesteps}, or TD3 never learns")
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        envs.spec(self.env).require("td3", discrete=False, obs_ndim=(1,),
                                    hint="Use a continuous-action env (e.g. Pendulum-v1, brax/hopper)")

    @property
    def schedule(self) -> tuple[int, int]:
        """(vectorised env steps, critic updates) of one training iteration."""
        return update_schedule(self.updates_per_step, self.num_envs)

    @property
    def warmup_steps(self) -> int:
        """Vectorised env steps of random actions run by `init` (at least n_step - 1, to prime the
        n-step window)."""
        return max(math.ceil(self.learning_starts / self.num_envs), self.n_step - 1)

    @property
    def iters_per_chunk(self) -> int:
        """Iterations per chunk, rounded up so that a chunk holds whole rounds of `policy_delay`
        critic updates (the actor then updates at the same slots of every chunk)."""
        vec_steps, updates = self.schedule
        remaining = self.total_timesteps - self.warmup_steps * self.num_envs
        iters = max(1, math.ceil(remaining / (vec_steps * self.num_envs) / self.num_chunks))
        per_round = self.policy_delay // math.gcd(self.policy_delay, updates)
        return math.ceil(iters / per_round) * per_round


# Solves Pendulum-v1 (deterministic-eval return about -150, mean of 4 seeds) within 15k env steps
# per seed, and runs fast on a CPU: smaller networks, learning after 1k steps.
PENDULUM = dict(env="Pendulum-v1", total_timesteps=20_000, learning_starts=1_000, hidden=(64, 64),
                actor_lr=1e-3, critic_lr=1e-3, batch_size=128, buffer_size=100_000)


def _concrete(*values) -> bool:  # False when run_many passes a field as a tracer
    return not any(isinstance(v, jax.core.Tracer) for v in values)


# ----------------------------------------------------------------------------- pure pieces


def smoothed_target_action(target_action, noise, policy_noise, noise_clip, low, high):
    """a' = clip(mu'(s') + clip(policy_noise * noise, -noise_clip, noise_clip), low, high), with
    `noise` standard normal and the two noise scales already in action units."""
    return jnp.clip(target_action + jnp.clip(policy_noise * noise, -noise_clip, noise_clip), low, high)


def td3_target(reward, discount, next_q):
    """y = R + discount * min_j Q'_j(s', a'), no gradient; `next_q` is [num_critics, batch]."""
    return jax.lax.stop_gradient(reward + discount * next_q.min(0))


# ----------------------------------------------------------------------------- networks


class Actor(nn.Module):
    """The deterministic policy offset + scale tanh(f(s))."""

    action_dim: int
    hidden: tuple[int, ...]
    activation: str
    scale: Any
    offset: Any

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.hidden, self.action_dim, self.activation,
                  kernel_init=nn.initializers.lecun_normal())(obs.astype(jnp.float32))
        return jnp.asarray(self.offset) + jnp.asarray(self.scale) * jnp.tanh(out)


def _networks(config: Config, spec) -> tuple[Actor, QEnsemble]:
    low, high = spec.low(), spec.high()
    actor = Actor(spec.action_dim, tuple(config.hidden), config.activation, tuple((high - low) / 2.0),
                  tuple((high + low) / 2.0))
    return actor, QEnsemble(tuple(config.hidden), 2, config.activation)


# ----------------------------------------------------------------------------- training


class Carry(NamedTuple):
    actor: TrainState
    critic: TrainState
    actor_target: Any
    critic_target: Any
    buffer: Buffer
    window: Step  # the last n_step - 1 env steps (empty for n_step = 1)
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array
    updates: jax.Array  # critic updates


def make_train(config: Config) -> Trainer:
    spec = envs.spec(config.env)
    env, env_params = envs.make(config.env)
    venv = envs.VecEnv(env)
    actor, critic = _networks(config, spec)
    low, high = spec.low(), spec.high()
    scale = (high - low) / 2.0
    vec_steps, num_updates = config.schedule
    n_envs = config.num_envs
    example = Step(jnp.zeros(spec.obs_shape, jnp.float32), jnp.zeros(spec.action_dim, jnp.float32),
                   jnp.float32(0.0), jnp.bool_(False), jnp.bool_(False), jnp.zeros(spec.obs_shape, jnp.float32))
    example_batch = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_envs,) + x.shape), example)
    rows = RowPacker(Transition(example.obs, example.action, jnp.float32(0.0), jnp.float32(0.0), example.obs))

    def adam(lr):  # one flat parameter vector per network: the same arithmetic in a few kernels
        return optax.flatten(optax.adam(lr))

    def init(key) -> Carry:
        k_actor, k_critic, k_env, k_warm, key = jax.random.split(key, 5)
        obs0 = jnp.zeros((1,) + spec.obs_shape, jnp.float32)
        actor_params = actor.init(k_actor, obs0)
        critic_params = critic.init(k_critic, obs0, jnp.zeros((1, spec.action_dim)))
        obs, env_state = venv.reset(jax.random.split(k_env, n_envs), env_params)
        carry = Carry(
            TrainState.create(apply_fn=actor.apply, params=actor_params, tx=adam(config.actor_lr)),
            TrainState.create(apply_fn=critic.apply, params=critic_params, tx=adam(config.critic_lr)),
            actor_params, critic_params,
            buffer_init(rows.row, config.buffer_size),  # one float32 row per transition
            nstep_window(example_batch, config.n_step), env_state, obs, key, jnp.int32(0), jnp.int32(0),
        )
        # warm-up: prime the n-step window, then fill the buffer with uniform random actions
        prime = config.n_step - 1
        keys = jax.random.split(k_warm, config.warmup_steps)
        if prime:
            carry, _ = jax.lax.scan(lambda c, k: env_step(c, k, random=True, write=False), carry, keys[:prime])
        if config.warmup_steps > prime:
            carry, _ = jax.lax.scan(lambda c, k: env_step(c, k, random=True, write=True), carry, keys[prime:])
        return carry

    def env_step(carry: Carry, key, *, random: bool, write: bool = True):
        k_act, k_env = jax.random.split(key)
        if random:
            action = random_actions(k_act, spec, n_envs)
        else:
            mu = actor.apply(carry.actor.params, carry.obs)
            noise = config.exploration_noise * scale * jax.random.normal(k_act, mu.shape)
            action = jnp.clip(mu + noise, low, high)
        next_obs, env_state, reward, term, trunc, info = venv.step(
            jax.random.split(k_env, n_envs), carry.env_state, action, env_params)
        done = jnp.logical_or(term, trunc)
        step = Step(carry.obs, action, reward, term, done, info["final_observation"])
        window, transition = nstep_push(carry.window, step, config.gamma)
        buffer = buffer_add(carry.buffer, rows.pack(transition)) if write else carry.buffer
        carry = carry._replace(buffer=buffer, window=window, env_state=env_state, obs=next_obs,
                               env_steps=carry.env_steps + n_envs)
        return carry, (info["episode_return"], done)

    def critic_loss(critic_params, carry: Carry, batch: Transition, key):
        noise = jax.random.normal(key, batch.action.shape)
        next_action = smoothed_target_action(actor.apply(carry.actor_target, batch.next_obs), noise,
                                             config.policy_noise * scale, config.noise_clip * scale, low, high)
        y = td3_target(batch.reward, batch.discount, critic.apply(carry.critic_target, batch.next_obs, next_action))
        q = critic.apply(critic_params, batch.obs, batch.action)
        return ((q - y) ** 2).mean(-1).sum(), q.mean()

    def actor_loss(actor_params, critic_params, obs):
        return -critic.apply(critic_params, obs, actor.apply(actor_params, obs))[0].mean()

    def actor_and_targets(carry: Carry, obs):
        loss, grads = jax.value_and_grad(actor_loss)(carry.actor.params, carry.critic.params, obs)
        actor_ts = carry.actor.apply_gradients(grads=grads)
        return carry._replace(
            actor=actor_ts,
            actor_target=polyak_update(actor_ts.params, carry.actor_target, config.tau),
            critic_target=polyak_update(carry.critic.params, carry.critic_target, config.tau),
        ), loss

    def gradient_update(carry: Carry, xs):
        """One critic step; after every `policy_delay`-th, one actor step and the Polyak updates.
        `slot` counts critic updates within the chunk and is the same for every seed, so under a
        vmap over seeds the `cond` stays a branch (not a select that computes both sides)."""
        batch, key, slot = xs
        (c_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            carry.critic.params, carry, batch, key)
        carry = carry._replace(critic=carry.critic.apply_gradients(grads=grads), updates=carry.updates + 1)
        carry, a_loss = jax.lax.cond(slot % config.policy_delay == config.policy_delay - 1,
                                     actor_and_targets, lambda c, _: (c, jnp.float32(jnp.nan)), carry, batch.obs)
        return carry, (c_loss, a_loss, q_mean)

    def iteration(carry: Carry, i):
        """Env steps with the noisy current policy, then critic (and delayed actor) updates on
        minibatches drawn all at once from the buffer."""
        key, k_env, k_batch, k_upd = jax.random.split(carry.key, 4)
        carry, episodes = jax.lax.scan(lambda c, k: env_step(c, k, random=False), carry._replace(key=key),
                                       jax.random.split(k_env, vec_steps))
        batches = rows.unpack(buffer_sample(carry.buffer, k_batch, num_updates * config.batch_size))
        batches = jax.tree.map(lambda x: x.reshape((num_updates, config.batch_size) + x.shape[1:]), batches)
        slots = i * num_updates + jnp.arange(num_updates)
        carry, losses = jax.lax.scan(gradient_update, carry, (batches, jax.random.split(k_upd, num_updates), slots))
        return carry, (episodes, losses)

    def policy(params):
        return lambda obs, key: actor.apply(params, obs)

    def update(carry: Carry):
        carry, ((returns, done), (c_loss, a_loss, q_mean)) = jax.lax.scan(
            iteration, carry, jnp.arange(config.iters_per_chunk))
        key, k_eval = jax.random.split(carry.key)
        carry = carry._replace(key=key)
        if config.eval_episodes > 0:
            eval_return, _ = evaluate(env, env_params, policy(carry.actor.params), k_eval,
                                      config.eval_episodes, spec.max_steps)
        else:
            eval_return = jnp.float32(jnp.nan)
        metrics = {
            "env_steps": carry.env_steps,
            **episode_metrics(returns, done),
            "eval_return": eval_return,
            "critic_loss": c_loss.mean(),
            "actor_loss": jnp.nanmean(a_loss),
            "q_mean": q_mean.mean(),
            "updates": carry.updates,
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, carry: Carry, deterministic: bool = True):
    """`act(obs, key) -> action` for one observation, from a (single-seed) carry: mu(s) when
    `deterministic`, else the behaviour policy clip(mu(s) + exploration noise, low, high)."""
    spec = envs.spec(config.env)
    actor, _ = _networks(config, spec)
    low, high = spec.low(), spec.high()
    scale = (high - low) / 2.0

    def act(obs, key):
        mu = actor.apply(carry.actor.params, obs)
        if deterministic:
            return mu
        return jnp.clip(mu + config.exploration_noise * scale * jax.random.normal(key, mu.shape), low, high)

    return act


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
