"""RIQL: Robust IQL (Yang et al. 2024, "Towards Robust Offline Reinforcement Learning under Diverse
Data Corruption", ICLR).

RIQL keeps IQL's structure (an expectile V, Q backed up through V, advantage-weighted policy
extraction) and adds three pieces against corrupted data (Sections 4.1-4.3 of the paper):

- observation normalisation with the mean and std of concat(s, s') over the (corrupted) dataset;
- a Huber loss on the Q regression (heavy-tailed targets from corrupted dynamics and rewards),
  as the official code writes it with threshold b = 1 / sigma^2:

      l_b(x) = x^2 / (2 b)  if |x| < b,   |x| - b / 2  otherwise;

- a K-member Q ensemble whose alpha-quantile replaces IQL's min over two heads:

      Q_alpha(s, a) = quantile_alpha({Q'_k(s, a)}_k)       (linear interpolation, target ensemble)
      L_V   = E[ L2^tau(Q_alpha(s, a) - V(s)) ]
      L_Q   = E[ sum_k l_b(clip(r + gamma (1 - d) V(s'), -100, 1000) - Q_k(s, a)) ] / K
      L_pi  = E[ min(exp(beta (Q_alpha(s, a) - V(s))), 100) ||pi(s) - a||^2 ]   (deterministic actor)

One update, in the official code's order: v_next = V(s') and the advantage use V *before* this
step's V update; V step; Q step; Polyak update of the target ensemble; actor step. The actor is
deterministic (tanh, the official default; `gaussian_actor` is the code's Gaussian option, trained
by advantage-weighted log-likelihood as IQL's); its learning rate is cosine-decayed over the run.
Defaults: the official clean-data settings (sigma 1, alpha 0.25, K 5, tau 0.7, beta 3, Adam 3e-4,
batch 256, 2x256 ReLU MLPs, Polyak 0.005, gamma 0.99); the official run is 3M updates.

Differences from the official code:
- dense layers start as PyTorch's defaults (uniform in +-1/sqrt(fan_in)) rather than EDAC's init;
- actions are rescaled from the env's bounds to [-1, 1]; rewards can be scaled as IQL's
  locomotion setting does (`reward_norm`, default "none" as RIQL's code);
- evaluation runs inside the program after every chunk and reports D4RL's normalised score.

Run: `python -m jaxrl.algos.riql --dataset PATH --num-seeds 5`
(`envs.datasets.corrupt` corrupts a dataset as the paper does.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training.train_state import TrainState

import envs
from jaxrl.core import config as C
from jaxrl.core import offline
from jaxrl.core.nets import MLP, GaussianActor, QEnsemble, gaussian_log_prob, TORCH_INIT
from jaxrl.core.offline import OfflineData
from jaxrl.core.train import Trainer

REWARD_NORMS = ("none", "returns")


@dataclass(frozen=True)
class Config:
    """RIQL hyperparameters (defaults: the official code's clean-data settings)."""

    # --- data
    dataset: str = ""
    """dataset path (.npz, .hdf5, Minari directory); "" when make_train is given the dataset"""
    dataset_hash: str = ""
    """the dataset's content hash; "" = not checked (the CLI fills it)"""
    env: str = ""
    """env to evaluate in; "" = the dataset's own"""
    normalize_obs: bool = True
    """normalise s and s' by the mean and std of concat(s, s') over the dataset"""
    reward_norm: str = "none"
    """"returns": scale rewards by 1000 / (max - min episode return); "none" (official) """
    # --- training
    total_updates: int = 1_000_000
    """gradient updates per seed (rounded up to whole chunks)"""
    batch_size: int = 256
    """transitions per update"""
    actor_lr: float = 3e-4
    """actor Adam learning rate (cosine-decayed to 0 over the run)"""
    critic_lr: float = 3e-4
    """Q-ensemble Adam learning rate"""
    value_lr: float = 3e-4
    """V-network Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    polyak: float = 0.005
    """target ensemble update rate"""
    expectile: float = 0.7
    """tau of the expectile loss for V"""
    temperature: float = 3.0
    """beta: inverse temperature of the advantage weights"""
    max_weight: float = 100.0
    """cap on exp(beta * advantage)"""
    num_critics: int = 5
    """K: Q-ensemble size"""
    quantile: float = 0.25
    """alpha: the quantile of the ensemble used as Q"""
    sigma: float = 1.0
    """Huber threshold b = 1 / sigma^2 (sigma 0.1: ~MSE, sigma 3: ~L1)"""
    target_clip: tuple[float, float] = (-100.0, 1000.0)
    """bounds of the Q target"""
    gaussian_actor: bool = False
    """the official code's Gaussian option (`iql_deterministic=False`): tanh mean, state-independent
    log-std in [-5, 2], loss -weights * log pi(a|s), evaluated at its mean; False: deterministic"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden sizes of the actor, Q and V MLPs"""
    # --- evaluation
    num_chunks: int = 100
    """chunks the run is cut into; the policy is evaluated after each"""
    eval_episodes: int = 10
    """evaluation episodes after each chunk (0: none, normalized_score NaN)"""

    def __post_init__(self):
        for name in ("total_updates", "batch_size", "actor_lr", "critic_lr", "value_lr", "num_chunks",
                     "temperature", "max_weight", "num_critics", "sigma"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("eval_episodes", self.eval_episodes, allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("polyak", self.polyak, 0.0, 1.0, lo_open=True)
        C.check_range("expectile", self.expectile, 0.0, 1.0, lo_open=True, hi_open=True)
        C.check_range("quantile", self.quantile, 0.0, 1.0)
        C.check_choice("reward_norm", self.reward_norm, REWARD_NORMS)
        if len(self.target_clip) != 2 or not self.target_clip[0] < self.target_clip[1]:
            raise ValueError(f"target_clip must be (low, high) with low < high, got {self.target_clip!r}")
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        if self.num_chunks > self.total_updates:
            raise ValueError(f"num_chunks={self.num_chunks} must be <= total_updates={self.total_updates}")

    @property
    def updates_per_chunk(self) -> int:
        return offline.updates_per_chunk(self.total_updates, self.num_chunks)


# ----------------------------------------------------------------------------- pure pieces


def huber(x, sigma: float):
    """The official code's Huber loss with threshold b = 1 / sigma^2: x^2 / (2b) if |x| < b, else |x| - b/2."""
    b = 1.0 / sigma**2
    ax = jnp.abs(x)
    return jnp.where(ax < b, 0.5 * x**2 / b, ax - 0.5 * b)


def ensemble_quantile(q, alpha: float):
    """The alpha-quantile over the ensemble axis 0 (linear interpolation, as torch.quantile)."""
    return jnp.quantile(q, alpha, axis=0, method="linear")


def expectile_loss(diff, expectile: float):
    """Mean of |tau - 1(u < 0)| u^2 over u = Q_alpha - V."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return jnp.mean(weight * diff**2)


def advantage_weights(adv, temperature: float, max_weight: float = 100.0):
    """min(exp(beta * A), max_weight), without gradient."""
    return jax.lax.stop_gradient(jnp.minimum(jnp.exp(temperature * adv), max_weight))


# ----------------------------------------------------------------------------- networks


class ValueNet(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, 1, "relu", kernel_init=TORCH_INIT)(obs)[..., 0]


class DeterministicActor(nn.Module):
    """pi(s) = tanh(MLP(s)) in [-1, 1]."""

    action_dim: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.hidden, self.action_dim, "relu", kernel_init=TORCH_INIT)(obs))


# ----------------------------------------------------------------------------- training


def actor_network(config: Config, spec: envs.EnvSpec) -> nn.Module:
    if config.gaussian_actor:
        return GaussianActor(spec.action_dim, tuple(config.hidden), TORCH_INIT)
    return DeterministicActor(spec.action_dim, tuple(config.hidden))


def acting_mean(config: Config, out):
    """The action the policy takes at evaluation: the Gaussian's mean, or the deterministic output."""
    return out[0] if config.gaussian_actor else out


class Carry(NamedTuple):
    actor: TrainState
    critic: TrainState
    critic_target: Any
    value: TrainState
    key: jax.Array
    updates: jax.Array


def make_learner(config: Config, spec: envs.EnvSpec) -> offline.Learner:
    """RIQL as pure functions of the dataset (see `jaxrl.core.offline`)."""
    hidden = tuple(config.hidden)
    actor_net, value_net = actor_network(config, spec), ValueNet(hidden)
    critic_net = QEnsemble(hidden, config.num_critics, "relu", kernel_init=TORCH_INIT)
    actor_lr = optax.cosine_decay_schedule(config.actor_lr, config.updates_per_chunk * config.num_chunks)
    evaluate = offline.make_evaluate(spec, config.eval_episodes)
    lo, hi = config.target_clip

    def init(key, data: OfflineData) -> Carry:
        k_actor, k_critic, k_value, key = jax.random.split(key, 4)
        obs, action = data.observations[:1], data.actions[:1]
        critic_params = critic_net.init(k_critic, obs, action)
        return Carry(
            TrainState.create(apply_fn=actor_net.apply, params=actor_net.init(k_actor, obs), tx=optax.adam(actor_lr)),
            TrainState.create(apply_fn=critic_net.apply, params=critic_params, tx=optax.adam(config.critic_lr)),
            critic_params,
            TrainState.create(apply_fn=value_net.apply, params=value_net.init(k_value, obs), tx=optax.adam(config.value_lr)),
            key, jnp.int32(0))

    def update_step(carry: Carry, key, data: OfflineData):
        b = offline.sample(data, key, config.batch_size)
        next_v = value_net.apply(carry.value.params, b.next_obs)  # pre-update V
        q_alpha = ensemble_quantile(critic_net.apply(carry.critic_target, b.obs, b.action), config.quantile)
        adv = q_alpha - value_net.apply(carry.value.params, b.obs)  # pre-update V

        def value_loss(params):
            v = value_net.apply(params, b.obs)
            return expectile_loss(q_alpha - v, config.expectile), v.mean()

        (v_loss, v_mean), grads = jax.value_and_grad(value_loss, has_aux=True)(carry.value.params)
        value = carry.value.apply_gradients(grads=grads)

        y = jnp.clip(b.reward + config.gamma * (1.0 - b.terminal) * next_v, lo, hi)

        def critic_loss(params):
            q = critic_net.apply(params, b.obs, b.action)
            return jnp.mean(huber(y - q, config.sigma)), q.mean()

        (q_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(carry.critic.params)
        critic = carry.critic.apply_gradients(grads=grads)
        target = optax.incremental_update(critic.params, carry.critic_target, config.polyak)

        weights = advantage_weights(adv, config.temperature, config.max_weight)

        def actor_loss(params):
            if config.gaussian_actor:
                mean, log_std = actor_net.apply(params, b.obs)
                return -jnp.mean(weights * gaussian_log_prob(mean, log_std, b.action))
            return jnp.mean(weights * jnp.sum((actor_net.apply(params, b.obs) - b.action) ** 2, -1))

        a_loss, grads = jax.value_and_grad(actor_loss)(carry.actor.params)
        carry = carry._replace(actor=carry.actor.apply_gradients(grads=grads), critic=critic, critic_target=target,
                               value=value, updates=carry.updates + 1)
        return carry, {"value_loss": v_loss, "actor_loss": a_loss, "critic_loss": q_loss, "q_mean": q_mean,
                       "v_mean": v_mean, "weight_mean": weights.mean()}

    def update(carry: Carry, data: OfflineData):
        key, k_steps, k_eval = jax.random.split(carry.key, 3)
        carry, m = jax.lax.scan(lambda c, k: update_step(c, k, data), carry._replace(key=key),
                                jax.random.split(k_steps, config.updates_per_chunk))
        policy = lambda obs: acting_mean(config, actor_net.apply(carry.actor.params, obs))
        metrics = {k: v.mean() for k, v in m.items()} | evaluate(policy, k_eval, data)
        return carry, metrics | {"updates": carry.updates}

    return offline.Learner(init, update)


def riql_data(ds, spec, config: Config) -> OfflineData:
    """The device dataset with RIQL's normalisation: mean and std of concat(s, s') (eps 1e-3)."""
    data = offline.device_data(ds, spec, normalize_obs=False, reward_norm=config.reward_norm)
    if not config.normalize_obs:
        return data
    both = np.concatenate([np.asarray(ds.observations, np.float64), np.asarray(ds.next_observations, np.float64)])
    mean, std = both.mean(0), both.std(0) + 1e-3
    f32 = lambda x: jnp.asarray(np.asarray(x, np.float32))
    return data._replace(observations=f32((np.asarray(ds.observations, np.float64) - mean) / std),
                         next_observations=f32((np.asarray(ds.next_observations, np.float64) - mean) / std),
                         obs_mean=f32(mean), obs_std=f32(std))


def make_train(config: Config, dataset=None) -> Trainer:
    """RIQL on `dataset` (an envs.datasets.Dataset; else the file at config.dataset), closed over."""
    ds, spec = offline.resolve_dataset(config, dataset)
    return offline.trainer(make_learner(config, spec), riql_data(ds, spec, config), config.num_chunks)


def train_sweep(config: Config, datasets, num_seeds: int, seed: int = 0):
    """Seeds x datasets (equal shapes, one env) as one program; metrics [datasets, seeds, chunks]."""
    if not datasets:
        raise ValueError("a sweep needs at least one dataset")
    pairs = [offline.resolve_dataset(config, d) for d in datasets]
    spec = pairs[0][1]
    if len({s.name for _, s in pairs}) > 1:
        raise ValueError(f"datasets of one sweep must share one env, got {sorted({s.name for _, s in pairs})}")
    return offline.sweep(make_learner(config, spec), [riql_data(d, spec, config) for d, _ in pairs],
                         config.num_chunks, num_seeds, seed)


def make_policy(config: Config, carry: Carry, dataset=None, deterministic: bool = True):
    """`act(obs, key) -> env action` for one raw observation, from a single-seed carry."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = riql_data(ds, spec, config)
    net = actor_network(config, spec)
    return lambda obs, key: offline.env_action(
        spec, acting_mean(config, net.apply(carry.actor.params, (obs - data.obs_mean) / data.obs_std)))


def main(argv=None):
    return offline.main(Config, make_train, argv)


if __name__ == "__main__":
    main()
