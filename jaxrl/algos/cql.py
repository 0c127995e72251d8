"""CQL: Conservative Q-Learning (Kumar, Zhou, Tucker & Levine 2020, "Conservative Q-Learning for
Offline Reinforcement Learning", NeurIPS), the CQL(H) variant on SAC (Haarnoja et al. 2018).

SAC's critic loss gets a penalty that pushes Q down on actions the policy and a uniform
distribution propose and up on the dataset's actions (Eq. 4, CQL(H), with the importance-sampled
log-sum-exp of the paper's appendix F and the official code):

    penalty_i = alpha_cql ( T log sum_(j=1..3n) exp(c_ij / T) - E_D[Q_i(s, a)] ),
        c_i = [ Q_i(s, a_unif) - log(0.5^|A|),                      a_unif ~ U[-1, 1]^|A|
                Q_i(s, a_pi) - log pi(a_pi | s),                     a_pi ~ pi(. | s)
                Q_i(s, a'_pi) - log pi(a'_pi | s') ],                a'_pi ~ pi(. | s')  (n of each)
    L_Q = sum_i E_D[(Q_i(s, a) - y)^2] / 2 + penalty_i,   y = r + gamma (1 - d) min_i Q'_i(s', a'), a' ~ pi(s')
    L_pi = E_D[ alpha log pi(a~ | s) - min_i Q_i(s, a~) ],  a~ ~ pi(. | s)      (SAC, tanh-squashed Gaussian)
    L_alpha = -E_D[ log alpha (log pi(a~ | s) + target_entropy) ]           (target entropy -|A|)

Defaults: the paper's MuJoCo settings (alpha_cql 5, n = 10 sampled actions, T = 1, no Lagrange
threshold, no entropy term in the backup, critic Adam 3e-4, policy Adam 1e-4, 3x256 ReLU MLPs,
batch 256, Polyak 0.005, gamma 0.99, 1M updates).

Differences from the official code:
- no behaviour-cloning warm-up of the policy (the official code's first 40k policy steps);
- observations are normalised by the dataset's mean and std, and actions are rescaled from the
  env's bounds to [-1, 1], where the uniform proposals are drawn (not [0, 1]: a trap other
  ports fell into);
- dense layers start as PyTorch's do (uniform in +-1/sqrt(fan_in)), biases at zero;
- evaluation runs inside the program after every chunk (the tanh of the mean action) and reports
  D4RL's normalised score.

Run: `python -m jaxrl.algos.cql --dataset PATH --num-seeds 5`
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
from jaxrl.core import offline
from jaxrl.core.nets import MLP, QEnsemble, TORCH_INIT
from jaxrl.core.offline import OfflineData
from jaxrl.core.train import Trainer


@dataclass(frozen=True)
class Config:
    """CQL hyperparameters (defaults: the paper's MuJoCo settings)."""

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
    """gradient updates per seed (rounded up to whole chunks)"""
    batch_size: int = 256
    """transitions per update"""
    actor_lr: float = 1e-4
    """policy Adam learning rate"""
    critic_lr: float = 3e-4
    """Q-network Adam learning rate"""
    alpha_lr: float = 3e-4
    """learning rate of SAC's log temperature"""
    gamma: float = 0.99
    """discount"""
    polyak: float = 0.005
    """target critic update rate"""
    cql_alpha: float = 5.0
    """alpha_cql: weight of the conservative penalty"""
    num_sampled_actions: int = 10
    """n: uniform, pi(s) and pi(s') actions each, per state, in the log-sum-exp"""
    cql_temperature: float = 1.0
    """T of the log-sum-exp"""
    hidden: tuple[int, ...] = (256, 256, 256)
    """hidden sizes of the policy and Q MLPs"""
    # --- evaluation
    num_chunks: int = 100
    """chunks the run is cut into; the policy is evaluated after each"""
    eval_episodes: int = 10
    """evaluation episodes after each chunk (0: none, normalized_score NaN)"""

    def __post_init__(self):
        for name in ("total_updates", "batch_size", "actor_lr", "critic_lr", "alpha_lr", "num_chunks",
                     "num_sampled_actions", "cql_temperature"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("cql_alpha", self.cql_alpha, allow_zero=True)
        C.check_positive("eval_episodes", self.eval_episodes, allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("polyak", self.polyak, 0.0, 1.0, lo_open=True)
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        if self.num_chunks > self.total_updates:
            raise ValueError(f"num_chunks={self.num_chunks} must be <= total_updates={self.total_updates}")

    @property
    def updates_per_chunk(self) -> int:
        return offline.updates_per_chunk(self.total_updates, self.num_chunks)


# ----------------------------------------------------------------------------- pure pieces


def cql_penalty(q_data, q_rand, q_pi, logp_pi, q_next_pi, logp_next_pi, action_dim: int, temperature: float = 1.0):
    """T log sum_j exp(c_j / T) averaged over the batch, minus the mean Q at the dataset's actions.
    `q_data` [B]; the others [B, n]. Uniform proposals have density 0.5^|A| on [-1, 1]^|A|; policy
    proposals are weighted by their log-probabilities (held fixed)."""
    sg = jax.lax.stop_gradient
    cat = jnp.concatenate([q_rand - action_dim * math.log(0.5), q_pi - sg(logp_pi), q_next_pi - sg(logp_next_pi)], -1)
    return temperature * jax.nn.logsumexp(cat / temperature, axis=-1).mean() - q_data.mean()


def tanh_gaussian_sample(mean, log_std, key):
    """a = tanh(mean + std eps) and log pi(a | s) with the tanh change of variables (summed over dims)."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    logp = jnp.sum(-0.5 * ((u - mean) * jnp.exp(-log_std)) ** 2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), -1)
    logp = logp - jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), -1)  # log(1 - tanh(u)^2)
    return jnp.tanh(u), logp


# ----------------------------------------------------------------------------- networks


class TanhGaussianActor(nn.Module):
    """(mean, log_std) of a Gaussian squashed by tanh; log-std state-dependent, clipped to [-20, 2]."""

    action_dim: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.hidden, 2 * self.action_dim, "relu", kernel_init=TORCH_INIT)(obs)
        mean, log_std = jnp.split(out, 2, -1)
        return mean, jnp.clip(log_std, -20.0, 2.0)


# ----------------------------------------------------------------------------- training


class Carry(NamedTuple):
    actor: TrainState
    critic: TrainState
    critic_target: Any
    log_alpha: TrainState
    key: jax.Array
    updates: jax.Array


def make_learner(config: Config, spec: envs.EnvSpec) -> offline.Learner:
    """CQL as pure functions of the dataset (see `jaxrl.core.offline`)."""
    actor_net = TanhGaussianActor(spec.action_dim, tuple(config.hidden))
    critic_net = QEnsemble(tuple(config.hidden), 2, "relu", kernel_init=TORCH_INIT)  # Q_1, Q_2: [2, *batch]
    target_entropy = -float(spec.action_dim)
    n, dim = config.num_sampled_actions, spec.action_dim
    evaluate = offline.make_evaluate(spec, config.eval_episodes)

    def init(key, data: OfflineData) -> Carry:
        k_actor, k_critic, key = jax.random.split(key, 3)
        obs, action = data.observations[:1], data.actions[:1]
        critic_params = critic_net.init(k_critic, obs, action)
        return Carry(
            TrainState.create(apply_fn=actor_net.apply, params=actor_net.init(k_actor, obs), tx=optax.adam(config.actor_lr)),
            TrainState.create(apply_fn=critic_net.apply, params=critic_params, tx=optax.adam(config.critic_lr)),
            critic_params,
            TrainState.create(apply_fn=None, params={"log_alpha": jnp.float32(0.0)}, tx=optax.adam(config.alpha_lr)),
            key, jnp.int32(0))

    def policy_samples(params, obs, key, num):
        """`num` actions per state: [B, num, A] and their log-probabilities [B, num]."""
        mean, log_std = actor_net.apply(params, obs)
        rep = lambda x: jnp.broadcast_to(x[:, None], (x.shape[0], num) + x.shape[1:])
        return tanh_gaussian_sample(rep(mean), rep(log_std), key)

    def update_step(carry: Carry, key, data: OfflineData):
        k_batch, k_pi, k_next, k_rand, k_cql_pi, k_cql_next = jax.random.split(key, 6)
        b = offline.sample(data, k_batch, config.batch_size)
        alpha = jnp.exp(carry.log_alpha.params["log_alpha"])

        def actor_loss(params):
            a, logp = policy_samples(params, b.obs, k_pi, 1)
            q = critic_net.apply(carry.critic.params, b.obs, a[:, 0]).min(0)
            return jnp.mean(alpha * logp[:, 0] - q), logp[:, 0]

        (a_loss, logp), grads = jax.value_and_grad(actor_loss, has_aux=True)(carry.actor.params)
        actor = carry.actor.apply_gradients(grads=grads)

        def alpha_loss(params):
            return -jnp.mean(params["log_alpha"] * jax.lax.stop_gradient(logp + target_entropy))

        al_loss, grads = jax.value_and_grad(alpha_loss)(carry.log_alpha.params)
        log_alpha = carry.log_alpha.apply_gradients(grads=grads)

        next_a, _ = policy_samples(carry.actor.params, b.next_obs, k_next, 1)
        next_q = critic_net.apply(carry.critic_target, b.next_obs, next_a[:, 0]).min(0)
        y = jax.lax.stop_gradient(b.reward + config.gamma * (1.0 - b.terminal) * next_q)
        a_rand = jax.random.uniform(k_rand, (config.batch_size, n, dim), minval=-1.0, maxval=1.0)
        a_pi, logp_pi = policy_samples(carry.actor.params, b.obs, k_cql_pi, n)
        a_next, logp_next = policy_samples(carry.actor.params, b.next_obs, k_cql_next, n)
        obs_n = jnp.broadcast_to(b.obs[:, None], (config.batch_size, n) + b.obs.shape[1:])

        def critic_loss(params):
            q = critic_net.apply(params, b.obs, b.action)  # [2, B]
            q_rand, q_pi, q_next = (critic_net.apply(params, obs_n, a) for a in (a_rand, a_pi, a_next))  # [2, B, n]
            td = 0.5 * jnp.sum(jnp.mean((q - y) ** 2, -1))
            penalty = jax.vmap(cql_penalty, (0, 0, 0, None, 0, None, None, None))(
                q, q_rand, q_pi, logp_pi, q_next, logp_next, dim, config.cql_temperature)
            return td + config.cql_alpha * penalty.sum(), (td, penalty.mean(), q.mean())

        (c_loss, (td, penalty, q_mean)), grads = jax.value_and_grad(critic_loss, has_aux=True)(carry.critic.params)
        critic = carry.critic.apply_gradients(grads=grads)
        carry = carry._replace(actor=actor, critic=critic, log_alpha=log_alpha, updates=carry.updates + 1,
                               critic_target=optax.incremental_update(critic.params, carry.critic_target, config.polyak))
        return carry, {"critic_loss": c_loss, "td_loss": td, "cql_penalty": penalty, "actor_loss": a_loss,
                       "alpha_loss": al_loss, "alpha": alpha, "q_mean": q_mean}

    def update(carry: Carry, data: OfflineData):
        key, k_steps, k_eval = jax.random.split(carry.key, 3)
        carry, m = jax.lax.scan(lambda c, k: update_step(c, k, data), carry._replace(key=key),
                                jax.random.split(k_steps, config.updates_per_chunk))
        policy = lambda obs: jnp.tanh(actor_net.apply(carry.actor.params, obs)[0])
        metrics = {k: v.mean() for k, v in m.items()} | evaluate(policy, k_eval, data)
        return carry, metrics | {"updates": carry.updates}

    return offline.Learner(init, update)


def make_train(config: Config, dataset=None) -> Trainer:
    """CQL on `dataset` (an envs.datasets.Dataset; else the file at config.dataset), closed over."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=config.normalize_obs)
    return offline.trainer(make_learner(config, spec), data, config.num_chunks)


def train_sweep(config: Config, datasets, num_seeds: int, seed: int = 0):
    """Seeds x datasets (equal shapes, one env) as one program; metrics [datasets, seeds, chunks]."""
    spec, datas = offline.prepare_sweep(config, datasets, normalize_obs=config.normalize_obs)
    return offline.sweep(make_learner(config, spec), datas, config.num_chunks, num_seeds, seed)


def make_policy(config: Config, carry: Carry, dataset=None, deterministic: bool = True):
    """`act(obs, key) -> env action` for one raw observation, from a single-seed carry."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=config.normalize_obs)
    net = TanhGaussianActor(spec.action_dim, tuple(config.hidden))

    def act(obs, key):
        mean, log_std = net.apply(carry.actor.params, ((obs - data.obs_mean) / data.obs_std)[None])
        a = jnp.tanh(mean) if deterministic else tanh_gaussian_sample(mean, log_std, key)[0]
        return offline.env_action(spec, a[0])

    return act


def main(argv=None):
    return offline.main(Config, make_train, argv)


if __name__ == "__main__":
    main()
