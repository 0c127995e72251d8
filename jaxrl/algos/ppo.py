"""PPO: Proximal Policy Optimization (Schulman et al. 2017, arXiv:1707.06347).

Implements the clipped surrogate objective L^CLIP (Eq. 7) with the combined loss
L^CLIP - c1 L^VF + c2 S (Eq. 9), advantages by GAE (Schulman et al. 2016, Eq. 16), and the
PureJaxRL training shape: `num_envs` vmapped envs step `num_steps` times, then `update_epochs`
passes over `num_minibatches` shuffled minibatches. Value clipping, advantage normalisation per
minibatch, global gradient clipping and linear learning-rate annealing follow the common
implementation details (Huang et al. 2022, "The 37 implementation details of PPO").

Differences from PureJaxRL's ppo.py:
- truncation is bootstrapped: V(s') is computed from gymnax's `final_observation` (the pre-reset
  observation) in one batched pass after each rollout, so a time limit is not treated as a
  terminal (`bootstrap_truncation=False` restores PureJaxRL's behaviour and saves that pass);
- discrete (categorical) and continuous (diagonal Gaussian, state-independent log-std) actions
  in one file, with optional running observation normalisation and reward scaling;
- training is cut into `num_chunks` jitted chunks so that progress, checkpoints and metrics
  happen between chunks, never inside one.

Where the time goes on a CPU with one seed is many tiny kernels per env step, so the rollout draws
its randomness for all `num_steps` steps at once before the step loop (the env keys, and Gumbel
noise for categorical sampling by argmax(logits + g), or standard normal noise for Gaussian
sampling by mean + std * eps: the same distributions as `pi.sample`), the envs step as one
`envs.VecEnv` (on a CPU, a reset only when an episode ended), and Adam runs on one flat
parameter vector (`optax.flatten`: the same arithmetic in fewer kernels).

Run: `python -m jaxrl.algos.ppo --env CartPole-v1 --num-seeds 8`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

import envs
from jaxrl.core import config as C
from jaxrl.core.nets import MLP, orthogonal
from jaxrl.core.normalize import (
    rms_init, rms_normalize, rms_update_batch, reward_scale, reward_scaler_init,
)
from jaxrl.core.returns import gae
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config:
    """PPO hyperparameters (defaults: PureJaxRL's CartPole config)."""

    env: str = "CartPole-v1"
    """environment name, see envs.registered()"""
    total_timesteps: int = 500_000
    """env steps per seed (rounded up to whole chunks of updates)"""
    num_envs: int = 4
    """parallel envs per seed"""
    num_steps: int = 128
    """steps per env per rollout"""
    update_epochs: int = 4
    """passes over each rollout"""
    num_minibatches: int = 4
    """minibatches per epoch; must divide num_envs * num_steps"""
    lr: float = 2.5e-4
    """Adam learning rate"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_eps: float = 0.2
    """policy (and value) clipping epsilon"""
    ent_coef: float = 0.01
    """entropy bonus c2"""
    vf_coef: float = 0.5
    """value loss coefficient c1"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden sizes of actor and critic MLPs"""
    activation: str = "tanh"
    """hidden activation"""
    normalize_obs: bool = False
    """running mean/std observation normalisation"""
    normalize_reward: bool = False
    """divide rewards by the running std of the discounted return"""
    bootstrap_truncation: bool = True
    """bootstrap time-limit ends from V(final observation) (one extra critic pass per rollout);
    False treats them as terminals, as PureJaxRL and rejax do"""
    num_chunks: int = 10
    """jitted chunks the run is cut into (progress/logging/checkpoint granularity)"""

    def __post_init__(self):
        for name in ("total_timesteps", "num_envs", "num_steps", "update_epochs",
                     "num_minibatches", "num_chunks"):
            C.check_positive(name, getattr(self, name))
        for name in ("lr", "max_grad_norm"):
            C.check_positive(name, getattr(self, name))
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        C.check_positive("clip_eps", self.clip_eps)
        C.check_positive("ent_coef", self.ent_coef, allow_zero=True)
        C.check_positive("vf_coef", self.vf_coef, allow_zero=True)
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        C.check_divides("num_minibatches", self.num_minibatches, "num_envs * num_steps",
                        self.num_envs * self.num_steps)
        envs.spec(self.env)  # an unknown env raises, naming close matches

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def updates_per_chunk(self) -> int:
        return math.ceil(self.total_timesteps / self.batch_size / self.num_chunks)


# Settings that solve Pendulum-v1 (mean return about -155 at 1M steps over 4 seeds, -166 by 200k):
# shorter horizon, more epochs, larger lr, reward scaling, no entropy bonus.
PENDULUM = dict(env="Pendulum-v1", total_timesteps=1_000_000, num_envs=8, num_steps=256,
                update_epochs=10, num_minibatches=8, lr=1e-3, gamma=0.95, ent_coef=0.0,
                normalize_reward=True)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs; `value` runs the critic alone."""

    action_dim: int
    discrete: bool
    hidden: tuple[int, ...]
    activation: str
    obs_ndim: int = 1

    def setup(self):
        self.actor = MLP(self.hidden, self.action_dim, self.activation, out_init=orthogonal(0.01))
        self.critic = MLP(self.hidden, 1, self.activation, out_init=orthogonal(1.0))
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))

    def _flat(self, obs):
        return obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))  # flatten image-like obs

    def value(self, obs):
        return self.critic(self._flat(obs))[..., 0]

    def __call__(self, obs):
        x = self._flat(obs)
        out = self.actor(x)
        value = self.critic(x)[..., 0]
        if self.discrete:
            return distrax.Categorical(logits=out), value
        return distrax.MultivariateNormalDiag(out, jnp.exp(self.log_std)), value


def _network(config: Config, spec: envs.EnvSpec) -> ActorCritic:
    return ActorCritic(spec.action_dim, spec.discrete, tuple(config.hidden), config.activation, len(spec.obs_shape))


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    next_obs: jax.Array  # the observation after the step, before auto-reset (final_observation)
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array


class Batch(NamedTuple):
    """What the loss reads of a transition; the only fields shuffled into minibatches."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array


class Carry(NamedTuple):
    train_state: TrainState
    env_state: Any
    obs: jax.Array
    obs_rms: Any
    rew_scaler: Any
    key: jax.Array
    env_steps: jax.Array


def make_train(config: Config) -> Trainer:
    env, env_params = envs.make(config.env)
    spec = envs.spec(config.env)
    discrete, action_dim, obs_shape = spec.discrete, spec.action_dim, spec.obs_shape
    net = _network(config, spec)
    num_updates = config.updates_per_chunk * config.num_chunks
    grad_steps = num_updates * config.update_epochs * config.num_minibatches

    if config.anneal_lr:
        lr = optax.linear_schedule(config.lr, 0.0, grad_steps)
    else:
        lr = config.lr
    # one flat parameter vector inside the optimiser: the same arithmetic in a few kernels, not a
    # few per parameter array
    tx = optax.flatten(optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5)))
    venv = envs.VecEnv(env)  # num_envs copies stepped as one batch (on a CPU, resets only when one ends)

    def norm(rms, obs):
        return rms_normalize(rms, obs) if config.normalize_obs else obs

    def init(key) -> Carry:
        k_net, k_env, key = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros((1,) + obs_shape))
        ts = TrainState.create(apply_fn=net.apply, params=params, tx=tx)
        obs, env_state = venv.reset(jax.random.split(k_env, config.num_envs), env_params)
        obs_rms = rms_update_batch(rms_init(obs_shape), obs) if config.normalize_obs else rms_init(obs_shape)
        return Carry(ts, env_state, obs, obs_rms, reward_scaler_init(config.num_envs), key, jnp.int32(0))

    def env_step(carry: Carry, xs):
        ts, env_state, obs, obs_rms, scaler, key, steps = carry
        env_keys, noise = xs  # drawn for the whole rollout at once (see `update_step`)
        pi, value = net.apply(ts.params, norm(obs_rms, obs))
        if discrete:  # Gumbel-max: argmax(logits + Gumbel noise) is a sample of Categorical(logits)
            action = jnp.argmax(pi.logits + noise, axis=-1)
        else:  # a sample of N(mean, diag(std^2)) as mean + std * standard normal noise
            action = pi.loc + pi.scale_diag * noise
        log_prob = pi.log_prob(action)
        env_action = action if discrete else jnp.clip(action, spec.low(), spec.high())
        next_obs, env_state, reward, term, trunc, info = venv.step(env_keys, env_state, env_action, env_params)
        done = jnp.logical_or(term, trunc)
        if config.normalize_obs:
            obs_rms = rms_update_batch(obs_rms, next_obs)
        if config.normalize_reward:
            scaler, reward = reward_scale(scaler, reward, done, config.gamma)
        t = Transition(norm(obs_rms, obs), action, log_prob, value,
                       norm(obs_rms, info["final_observation"]), reward.astype(jnp.float32), term, done)
        stats = (info["episode_return"], done)
        return Carry(ts, env_state, next_obs, obs_rms, scaler, key, steps + config.num_envs), (t, stats)

    def loss_fn(params, batch: Batch, adv, targets):
        pi, value = net.apply(params, batch.obs)
        log_prob = pi.log_prob(batch.action)
        v_clipped = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
        v_loss = 0.5 * jnp.maximum((value - targets) ** 2, (v_clipped - targets) ** 2).mean()
        ratio = jnp.exp(log_prob - batch.log_prob)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip_eps, 1 + config.clip_eps) * adv).mean()
        entropy = pi.entropy().mean()
        loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy
        approx_kl = ((ratio - 1) - jnp.log(ratio)).mean()
        return loss, {"loss": loss, "policy_loss": pg_loss, "value_loss": v_loss,
                      "entropy": entropy, "approx_kl": approx_kl}

    def update_minibatch(ts, mb):
        grads, aux = jax.grad(loss_fn, has_aux=True)(ts.params, *mb)
        return ts.apply_gradients(grads=grads), aux

    def update_epoch(state, _):
        ts, batch, adv, targets, key = state
        key, k_perm = jax.random.split(key)
        perm = jax.random.permutation(k_perm, config.batch_size)
        flat = jax.tree.map(lambda x: x.reshape((config.batch_size,) + x.shape[2:]), (batch, adv, targets))
        mbs = jax.tree.map(lambda x: x[perm].reshape((config.num_minibatches, -1) + x.shape[1:]), flat)
        ts, aux = jax.lax.scan(update_minibatch, ts, mbs)
        return (ts, batch, adv, targets, key), aux

    def update_step(carry: Carry, _):
        key, k_env, k_noise, k_epochs = jax.random.split(carry.key, 4)
        # all the rollout's randomness in two draws rather than a few small ones per step
        env_keys = jax.random.split(k_env, (config.num_steps, config.num_envs))
        draw = jax.random.gumbel if discrete else jax.random.normal
        noise = draw(k_noise, (config.num_steps, config.num_envs, action_dim))
        carry, (traj, stats) = jax.lax.scan(env_step, carry, (env_keys, noise))
        if config.bootstrap_truncation:
            # V(s') of every step in one batched pass; s' is the pre-reset observation, so a
            # truncated episode is bootstrapped from its true last state.
            next_value = net.apply(carry.train_state.params, traj.next_obs, method=ActorCritic.value)
            terminated = traj.terminated
        else:  # PureJaxRL's shortcut: V(s_{t+1}) from the rollout, any episode end is a terminal
            last = net.apply(carry.train_state.params, norm(carry.obs_rms, carry.obs), method=ActorCritic.value)
            next_value = jnp.concatenate([traj.value[1:], last[None]])
            terminated = traj.done
        adv, targets = gae(traj.reward, traj.value, next_value, terminated, traj.done,
                           config.gamma, config.gae_lambda)
        batch = Batch(traj.obs, traj.action, traj.log_prob, traj.value)
        (ts, *_), aux = jax.lax.scan(update_epoch, (carry.train_state, batch, adv, targets, k_epochs),
                                     None, config.update_epochs)
        aux = jax.tree.map(lambda x: x[-1].mean(), aux)  # last epoch, mean over minibatches
        return carry._replace(train_state=ts, key=key), (aux, stats)

    def update(carry: Carry):
        carry, (aux, (returns, done)) = jax.lax.scan(update_step, carry, None, config.updates_per_chunk)
        metrics = {k: v[-1] for k, v in aux.items()}
        metrics.update(episode_metrics(returns, done), env_steps=carry.env_steps)
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, carry: Carry, deterministic: bool = True):
    """`act(obs, key) -> action` for one observation, from a (single-seed) carry."""
    spec = envs.spec(config.env)
    net = _network(config, spec)

    def act(obs, key):
        obs = rms_normalize(carry.obs_rms, obs) if config.normalize_obs else obs
        pi, _ = net.apply(carry.train_state.params, obs[None])
        a = (pi.mode() if deterministic else pi.sample(seed=key))[0]
        return a if spec.discrete else jnp.clip(a, spec.low(), spec.high())

    return act


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
