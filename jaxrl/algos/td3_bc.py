"""TD3+BC (Fujimoto & Gu 2021, "A Minimalist Approach to Offline Reinforcement Learning", NeurIPS).

TD3 (Fujimoto, van Hoof & Meger 2018) with a behaviour-cloning term in the actor's objective and
normalised observations (Eqs. 3-5 of the paper):

    critic:  y = r + gamma (1 - d) min_i Q'_i(s', clip(pi'(s') + clip(eps, -c, c), -1, 1)),  eps ~ N(0, sigma^2)
             L_Q = E_D [ sum_i (Q_i(s, a) - y)^2 ]
    actor:   pi = argmax_pi E_(s,a)~D [ lambda Q_1(s, pi(s)) - (pi(s) - a)^2 ],
             lambda = alpha / ((1/N) sum_(s_i, a_i) |Q_1(s_i, a_i)|)   (no gradient through lambda)
    states:  s <- (s - mu) / (sigma + eps) over the dataset's observations

The actor and both targets are updated once every `policy_freq` critic updates (TD3's delayed
policy update, Polyak rate 0.005); one scan step here runs `policy_freq` critic updates then one
actor update, and `total_updates` counts critic updates. Defaults: the paper's (alpha 2.5,
sigma 0.2, c 0.5, policy_freq 2, Adam 3e-4, batch 256, 2x256 ReLU MLPs, gamma 0.99, 1M updates).

Differences from the official code:
- actions are rescaled from the env's bounds to [-1, 1] (the official code scales by max_action);
- lambda uses the mean |Q_1| of the minibatch at the policy's actions, as the official code does
  (the paper's text writes it over the dataset's (s_i, a_i));
- dense layers start as PyTorch's do (uniform in +-1/sqrt(fan_in)), biases at zero;
- evaluation runs inside the program after every chunk and reports D4RL's normalised score.

Run: `python -m jaxrl.algos.td3_bc --dataset PATH --num-seeds 5`
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

import envs
from jaxrl.core import config as C
from jaxrl.core import offline
from jaxrl.core.nets import MLP, QEnsemble, TORCH_INIT
from jaxrl.core.offline import OfflineData
from jaxrl.core.train import Trainer


@dataclass(frozen=True)
class Config:
    """TD3+BC hyperparameters (defaults: the paper's)."""

    # --- data
    dataset: str = ""
    """dataset path (.npz, .hdf5, Minari directory); "" when make_train is given the dataset"""
    dataset_hash: str = ""
    """the dataset's content hash; "" = not checked (the CLI fills it, so checkpoints record the data)"""
    env: str = ""
    """env to evaluate in; "" = the dataset's own"""
    normalize_obs: bool = True
    """normalise observations by the dataset's mean and std"""
    # --- training
    total_updates: int = 1_000_000
    """critic updates per seed (rounded up to whole chunks of policy_freq)"""
    batch_size: int = 256
    """transitions per update"""
    actor_lr: float = 3e-4
    """actor Adam learning rate"""
    critic_lr: float = 3e-4
    """critic Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    polyak: float = 0.005
    """target update rate"""
    alpha: float = 2.5
    """alpha: weight of Q against behaviour cloning (lambda = alpha / mean |Q|)"""
    policy_noise: float = 0.2
    """sigma of the target policy smoothing noise (in [-1, 1] action units)"""
    noise_clip: float = 0.5
    """c: clip of the target policy smoothing noise"""
    policy_freq: int = 2
    """critic updates per actor (and target) update"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden sizes of the actor and critic MLPs"""
    # --- evaluation
    num_chunks: int = 100
    """chunks the run is cut into; the policy is evaluated after each"""
    eval_episodes: int = 10
    """evaluation episodes after each chunk (0: none, normalized_score NaN)"""

    def __post_init__(self):
        for name in ("total_updates", "batch_size", "actor_lr", "critic_lr", "num_chunks", "policy_freq", "alpha"):
            C.check_positive(name, getattr(self, name))
        for name in ("policy_noise", "noise_clip"):
            C.check_positive(name, getattr(self, name), allow_zero=True)
        C.check_positive("eval_episodes", self.eval_episodes, allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("polyak", self.polyak, 0.0, 1.0, lo_open=True)
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        if self.num_chunks * self.policy_freq > self.total_updates:
            raise ValueError(f"num_chunks * policy_freq = {self.num_chunks * self.policy_freq} must be <= "
                             f"total_updates={self.total_updates}")

    @property
    def updates_per_chunk(self) -> int:
        return offline.updates_per_chunk(self.total_updates, self.num_chunks, self.policy_freq)


# ----------------------------------------------------------------------------- pure pieces


def bc_lambda(q, alpha: float):
    """lambda = alpha / mean |Q|, without gradient."""
    return jax.lax.stop_gradient(alpha / jnp.mean(jnp.abs(q)))


def actor_loss_terms(q, pi_action, data_action, alpha: float):
    """(loss, lambda, bc): loss = -lambda mean Q(s, pi(s)) + mean_batch sum_dims (pi(s) - a)^2 / dims,
    i.e. the paper's objective with the official code's MSE over action dimensions."""
    lmbda = bc_lambda(q, alpha)
    bc = jnp.mean((pi_action - data_action) ** 2)
    return -lmbda * q.mean() + bc, lmbda, bc


def target_action(next_pi, noise, noise_clip: float):
    """clip(pi'(s') + clip(noise, -c, c), -1, 1): TD3's target policy smoothing."""
    return jnp.clip(next_pi + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


# ----------------------------------------------------------------------------- networks


class DeterministicActor(nn.Module):
    """pi(s) = tanh(MLP(s)) in [-1, 1]."""

    action_dim: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.hidden, self.action_dim, "relu", kernel_init=TORCH_INIT)(obs))


# ----------------------------------------------------------------------------- training


class Carry(NamedTuple):
    actor: TrainState
    actor_target: Any
    critic: TrainState
    critic_target: Any
    key: jax.Array
    updates: jax.Array


def make_learner(config: Config, spec: envs.EnvSpec) -> offline.Learner:
    """TD3+BC as pure functions of the dataset (see `jaxrl.core.offline`)."""
    actor_net = DeterministicActor(spec.action_dim, tuple(config.hidden))
    critic_net = QEnsemble(tuple(config.hidden), 2, "relu", kernel_init=TORCH_INIT)  # Q_1, Q_2: [2, *batch]
    evaluate = offline.make_evaluate(spec, config.eval_episodes)

    def init(key, data: OfflineData) -> Carry:
        k_actor, k_critic, key = jax.random.split(key, 3)
        obs, action = data.observations[:1], data.actions[:1]
        actor_params, critic_params = actor_net.init(k_actor, obs), critic_net.init(k_critic, obs, action)
        return Carry(TrainState.create(apply_fn=actor_net.apply, params=actor_params, tx=optax.adam(config.actor_lr)),
                     actor_params,
                     TrainState.create(apply_fn=critic_net.apply, params=critic_params, tx=optax.adam(config.critic_lr)),
                     critic_params, key, jnp.int32(0))

    def critic_step(carry: Carry, key, data: OfflineData):
        k_batch, k_noise = jax.random.split(key)
        b = offline.sample(data, k_batch, config.batch_size)
        noise = config.policy_noise * jax.random.normal(k_noise, b.action.shape)
        next_action = target_action(actor_net.apply(carry.actor_target, b.next_obs), noise, config.noise_clip)
        next_q = critic_net.apply(carry.critic_target, b.next_obs, next_action).min(0)
        y = b.reward + config.gamma * (1.0 - b.terminal) * next_q

        def critic_loss(params):
            q = critic_net.apply(params, b.obs, b.action)
            return jnp.mean(jnp.sum((q - y) ** 2, 0)), q.mean()

        (loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(carry.critic.params)
        return carry._replace(critic=carry.critic.apply_gradients(grads=grads), updates=carry.updates + 1), \
            (loss, q_mean, b)

    def update_step(carry: Carry, key, data: OfflineData):
        keys = jax.random.split(key, config.policy_freq)
        carry, (c_loss, q_mean, batches) = jax.lax.scan(lambda c, k: critic_step(c, k, data), carry, keys)
        b = jax.tree.map(lambda x: x[-1], batches)  # the actor uses the last critic step's minibatch

        def actor_loss(params):
            pi = actor_net.apply(params, b.obs)
            q = critic_net.apply(carry.critic.params, b.obs, pi)[0]
            loss, lmbda, bc = actor_loss_terms(q, pi, b.action, config.alpha)
            return loss, (lmbda, bc)

        (a_loss, (lmbda, bc)), grads = jax.value_and_grad(actor_loss, has_aux=True)(carry.actor.params)
        actor = carry.actor.apply_gradients(grads=grads)
        carry = carry._replace(
            actor=actor, actor_target=optax.incremental_update(actor.params, carry.actor_target, config.polyak),
            critic_target=optax.incremental_update(carry.critic.params, carry.critic_target, config.polyak))
        return carry, {"critic_loss": c_loss.mean(), "actor_loss": a_loss, "q_mean": q_mean.mean(),
                       "lambda": lmbda, "bc_loss": bc}

    def update(carry: Carry, data: OfflineData):
        key, k_steps, k_eval = jax.random.split(carry.key, 3)
        carry, m = jax.lax.scan(lambda c, k: update_step(c, k, data), carry._replace(key=key),
                                jax.random.split(k_steps, config.updates_per_chunk // config.policy_freq))
        policy = lambda obs: actor_net.apply(carry.actor.params, obs)
        metrics = {k: v.mean() for k, v in m.items()} | evaluate(policy, k_eval, data)
        return carry, metrics | {"updates": carry.updates}

    return offline.Learner(init, update)


def make_train(config: Config, dataset=None) -> Trainer:
    """TD3+BC on `dataset` (an envs.datasets.Dataset; else the file at config.dataset), closed over."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=config.normalize_obs)
    return offline.trainer(make_learner(config, spec), data, config.num_chunks)


def train_sweep(config: Config, datasets, num_seeds: int, seed: int = 0):
    """Seeds x datasets (equal shapes, one env) as one program; metrics [datasets, seeds, chunks]."""
    spec, datas = offline.prepare_sweep(config, datasets, normalize_obs=config.normalize_obs)
    return offline.sweep(make_learner(config, spec), datas, config.num_chunks, num_seeds, seed)


def make_policy(config: Config, carry: Carry, dataset=None, deterministic: bool = True):
    """`act(obs, key) -> env action` for one raw observation, from a single-seed carry
    (deterministic: TD3+BC's policy has no noise at evaluation)."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=config.normalize_obs)
    net = DeterministicActor(spec.action_dim, tuple(config.hidden))
    return lambda obs, key: offline.env_action(spec, net.apply(carry.actor.params, (obs - data.obs_mean) / data.obs_std))


def main(argv=None):
    return offline.main(Config, make_train, argv)


if __name__ == "__main__":
    main()
