"""RO2O: Robust Offline-to-Online RL via uncertainty and smoothness (Wen et al. 2023, "Towards
Robust Offline-to-Online Reinforcement Learning via Uncertainty and Smoothness", arXiv 2309.16973).

RO2O is SAC-N (N critics, a tanh-Gaussian actor, automatic entropy temperature) with three
regularisers (RORL's, carried into the offline-to-online setting). With n offsets
delta_k ~ U[-eps, eps]^|S| drawn per update and shared across the batch:

- Q smoothness (eps_Q): d_ik = Q_i(s + delta_k, a) - Q_i(s, a),
      l_k(s) = mean_i [ 0.8 relu(d_ik)^2 + 0.2 min(d_ik, 0)^2 ],   L_smooth = eta E_s[ max_k l_k(s) ]
- OOD penalty (eps_ood): s^ = s + delta_k, a^ ~ pi(s^), target Q_i(s^, a^) - lambda std_j Q_j(s^, a^)
  (no gradient), L_ood = beta_ood E[(Q_i(s^, a^) - target)^2]; lambda decays each update
  lambda <- max(lambda - decay, lambda_min);
- policy smoothness (eps_P): beta_P E_s[ max_k KL(pi(s) || pi(s + delta_k)) + KL(pi(s + delta_k) || pi(s)) ],
  between the pre-tanh diagonal Gaussians.

The critic minimises sum_i E[(Q_i - y)^2] + L_smooth + L_ood with y = r + gamma (1 - d)
(min_j Q'_j(s', a') - alpha log pi(a' | s')); the actor E[alpha log pi(a~|s) - min_i Q_i(s, a~)] plus
the policy smoothness term. One update: alpha, actor, critic, Polyak.

Both phases run in one program: `offline_updates` updates on the dataset, then `online_steps` env
steps, each followed (once the online buffer holds `learning_starts` transitions) by one update on a
minibatch of a fresh FIFO buffer (offline data not mixed in), as the official fine-tuning script.
Online, that script's current version (May 2024) trains with
the plain SAC-N losses: it computes the three regularisers for logging only (its first version,
Sep 2023, kept them in the losses); `online_regularizers=True` keeps them, with lambda fixed at
lambda_min (its README's fine-tuning setting). `mix_offline=True` draws the online minibatches from
the dataset and the online buffer together (the script's commented-out option). Time limits are
stored as non-terminal.

Defaults: the official MuJoCo settings (N 10, 3x256 ReLU MLPs, Adam 3e-4, batch 256, gamma 0.99,
Polyak 0.005, beta_P 1, beta_ood 0.1, eps 0.01, n 20, lambda 1 -> 0.1 by 5e-7 per update, eta 1e-4,
online buffer 250k, learning starts 2,500); the official run is 2.5M offline updates and 250k
online steps.

Differences from the official code:
- dense layers start as flax's lecun-normal default (not EDAC's init);
- the offline and online phases are one scan of identical iterations: every iteration steps the env
  and samples both sources, and the phase picks which transition is stored and which minibatch is
  used (so both phases compile once and vmap over seeds; the env step is wasted offline);
- actions are rescaled to [-1, 1] and observations normalised by the dataset's mean and std in
  both phases; evaluation (deterministic: tanh of the mean) runs after every chunk;
- online minibatches are drawn with replacement (the script samples without);
- with `online_regularizers=True`, lambda is lambda_min online as the README says (the script's first
  version passed no settings to its agent, whose own defaults, lambda 2.0 decaying by 1e-6 per
  update, applied).

Run: `python -m jaxrl.algos.ro2o --dataset PATH --num-seeds 5`
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
from jaxrl.core.buffer import Buffer, buffer_init, buffer_sample
from jaxrl.core.nets import MLP, QEnsemble
from jaxrl.core.offline import Batch, OfflineData
from jaxrl.core.train import Trainer


@dataclass(frozen=True)
class Config:
    """RO2O hyperparameters (defaults: the official MuJoCo settings)."""

    # --- data
    dataset: str = ""
    """dataset path (.npz, .hdf5, Minari directory); "" when make_train is given the dataset"""
    dataset_hash: str = ""
    """the dataset's content hash; "" = not checked (the CLI fills it)"""
    env: str = ""
    """env to evaluate and fine-tune in; "" = the dataset's own"""
    # --- schedule
    offline_updates: int = 2_500_000
    """updates on the dataset before going online"""
    online_steps: int = 250_000
    """env steps of online fine-tuning (one update each once learning starts)"""
    learning_starts: int = 2_500
    """online transitions collected before online updates start"""
    buffer_size: int = 250_000
    """online FIFO buffer capacity"""
    # --- losses
    batch_size: int = 256
    """transitions per update"""
    lr: float = 3e-4
    """Adam learning rate of actor, critics and temperature"""
    gamma: float = 0.99
    """discount"""
    polyak: float = 0.005
    """target critic update rate"""
    num_critics: int = 10
    """N: critic ensemble size"""
    num_perturb: int = 20
    """n: perturbations per update (shared across the batch)"""
    eps_q: float = 0.01
    """perturbation size of the Q smoothness term"""
    eps_p: float = 0.01
    """perturbation size of the policy smoothness term"""
    eps_ood: float = 0.01
    """perturbation size of the OOD states"""
    q_smooth: float = 1e-4
    """eta: weight of the Q smoothness term"""
    smooth_tau: float = 0.2
    """weight of Q decreases (1 - tau on increases) in the Q smoothness term"""
    beta_policy: float = 1.0
    """weight of the policy smoothness term"""
    beta_ood: float = 0.1
    """weight of the OOD penalty"""
    ood_lambda: float = 1.0
    """initial lambda (uncertainty weight of the OOD target)"""
    ood_lambda_min: float = 0.1
    """lambda's floor, and its value online"""
    ood_lambda_decay: float = 5e-7
    """lambda's decrease per offline update"""
    online_regularizers: bool = False
    """keep the Q smoothness, OOD and policy smoothness terms in the online losses (False: online
    updates are plain SAC-N, as the official fine-tuning script, which only logs the terms)"""
    mix_offline: bool = False
    """online minibatches drawn from the dataset and the online buffer together, uniformly (the
    official fine-tuning script's commented-out option, IQL fine-tuning's rule); False: the online
    buffer only, as the script runs"""
    hidden: tuple[int, ...] = (256, 256, 256)
    """hidden sizes of the actor and critics"""
    # --- evaluation
    num_chunks: int = 100
    """chunks the run (offline updates + online steps) is cut into; evaluated after each"""
    eval_episodes: int = 10
    """evaluation episodes after each chunk (0: none, normalized_score NaN)"""

    def __post_init__(self):
        for name in ("offline_updates", "online_steps", "learning_starts", "buffer_size", "eval_episodes",
                     "q_smooth", "beta_policy", "beta_ood", "ood_lambda", "ood_lambda_min", "ood_lambda_decay",
                     "eps_q", "eps_p", "eps_ood"):
            C.check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("batch_size", "lr", "num_critics", "num_perturb", "num_chunks"):
            C.check_positive(name, getattr(self, name))
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("polyak", self.polyak, 0.0, 1.0, lo_open=True)
        C.check_range("smooth_tau", self.smooth_tau, 0.0, 1.0)
        if self.num_critics < 2:
            raise ValueError(f"num_critics must be >= 2 (the OOD penalty uses their std), got {self.num_critics}")
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        if self.offline_updates + self.online_steps < self.num_chunks:
            raise ValueError(f"num_chunks={self.num_chunks} must be <= offline_updates + online_steps = "
                             f"{self.offline_updates + self.online_steps}")

    @property
    def iters_per_chunk(self) -> int:
        return offline.updates_per_chunk(self.offline_updates + self.online_steps, self.num_chunks)


# ----------------------------------------------------------------------------- pure pieces


def smooth_penalty(diff, tau: float):
    """mean over critics of (1 - tau) relu(d)^2 + tau min(d, 0)^2 for d = Q(s + delta) - Q(s); `diff`
    is [perturbations, critics, batch] -> [perturbations, batch]."""
    return jnp.mean((1.0 - tau) * jax.nn.relu(diff) ** 2 + tau * jnp.minimum(diff, 0.0) ** 2, axis=1)


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q):
    """KL(N(mean_p, std_p) || N(mean_q, std_q)) of diagonal Gaussians, summed over the last axis."""
    var_p, var_q = jnp.exp(2 * log_std_p), jnp.exp(2 * log_std_q)
    return jnp.sum(log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5, -1)


def ood_lambda(config: Config, updates):
    """lambda after `updates` offline updates (decayed, floored); lambda_min online."""
    return jnp.maximum(config.ood_lambda - config.ood_lambda_decay * updates, config.ood_lambda_min)


def tanh_gaussian(mean, log_std, noise):
    """(tanh(u), log pi) for u = mean + std noise, with the tanh change of variables."""
    u = mean + jnp.exp(log_std) * noise
    logp = jnp.sum(-0.5 * noise**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), -1)
    return jnp.tanh(u), logp - jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), -1)


# ----------------------------------------------------------------------------- networks


class Actor(nn.Module):
    """Mean and clipped log-std of the pre-tanh Gaussian."""

    action_dim: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        mean, log_std = jnp.split(MLP(self.hidden, 2 * self.action_dim, "relu",
                                      kernel_init=nn.initializers.lecun_normal())(obs), 2, -1)
        return mean, jnp.clip(log_std, -5.0, 2.0)


# ----------------------------------------------------------------------------- training


class Carry(NamedTuple):
    actor: TrainState
    critic: TrainState
    critic_target: Any
    alpha: TrainState  # params: {"log_alpha": scalar}
    buffer: Buffer  # online transitions (normalised obs, [-1, 1] actions)
    env_state: Any
    obs: jax.Array  # the env's current raw observation [1, *obs]
    key: jax.Array
    iters: jax.Array  # offline updates + online env steps so far
    updates: jax.Array  # gradient updates so far


def make_learner(config: Config, spec: envs.EnvSpec) -> offline.Learner:
    """RO2O as pure functions of the dataset (see `jaxrl.core.offline`)."""
    actor_net = Actor(spec.action_dim, tuple(config.hidden))
    critic_net = QEnsemble(tuple(config.hidden), config.num_critics, "relu")
    env, env_params = envs.make(spec.name)
    venv = envs.VecEnv(env)
    evaluate = offline.make_evaluate(spec, config.eval_episodes)
    target_entropy = -float(spec.action_dim)
    obs_dim = spec.obs_shape

    def init(key, data: OfflineData) -> Carry:
        k_a, k_c, k_env, key = jax.random.split(key, 4)
        obs, action = data.observations[:1], data.actions[:1]
        critic_p = critic_net.init(k_c, obs, action)
        adam = optax.adam(config.lr)
        example = Batch(obs[0], action[0], jnp.float32(0.0), obs[0], jnp.float32(0.0))
        env_obs, env_state = venv.reset(k_env[None], env_params)
        return Carry(TrainState.create(apply_fn=actor_net.apply, params=actor_net.init(k_a, obs), tx=adam),
                     TrainState.create(apply_fn=critic_net.apply, params=critic_p, tx=adam), critic_p,
                     TrainState.create(apply_fn=None, params={"log_alpha": jnp.float32(0.0)}, tx=adam),
                     buffer_init(example, config.buffer_size), env_state, env_obs, key, jnp.int32(0), jnp.int32(0))

    def offsets(key, eps):
        return jax.random.uniform(key, (config.num_perturb, 1) + obs_dim, minval=-eps, maxval=eps)

    def actor_loss(params, carry: Carry, b: Batch, alpha, reg, key):
        k_n, k_d = jax.random.split(key)
        mean, log_std = actor_net.apply(params, b.obs)
        a, logp = tanh_gaussian(mean, log_std, jax.random.normal(k_n, mean.shape))
        q = critic_net.apply(carry.critic.params, b.obs, a).min(0)
        p_mean, p_log_std = actor_net.apply(params, b.obs[None] + offsets(k_d, config.eps_p))  # [n, B, A]
        kl = gaussian_kl(mean, log_std, p_mean, p_log_std) + gaussian_kl(p_mean, p_log_std, mean, log_std)
        smooth = jnp.mean(kl.max(0))
        return jnp.mean(alpha * logp - q) + reg * config.beta_policy * smooth, (logp, smooth)

    def critic_loss(params, carry: Carry, b: Batch, alpha, lam, reg, key):
        k_next, k_q, k_ood, k_a = jax.random.split(key, 4)
        mean, log_std = actor_net.apply(carry.actor.params, b.next_obs)
        a2, logp2 = tanh_gaussian(mean, log_std, jax.random.normal(k_next, mean.shape))
        next_q = critic_net.apply(carry.critic_target, b.next_obs, a2).min(0)
        y = jax.lax.stop_gradient(b.reward + config.gamma * (1.0 - b.terminal) * (next_q - alpha * logp2))
        q = critic_net.apply(params, b.obs, b.action)
        td = jnp.sum(jnp.mean((q - y) ** 2, -1))
        # Q smoothness: perturbed states, the dataset action
        n = config.num_perturb
        s_q = b.obs[None] + offsets(k_q, config.eps_q)
        q_pert = jax.vmap(lambda s: critic_net.apply(params, s, b.action))(s_q)  # [n, N, B]
        smooth = jnp.mean(smooth_penalty(q_pert - jax.lax.stop_gradient(q)[None], config.smooth_tau).max(0))
        # OOD: perturbed states, the policy's actions there, pushed down by lambda std_j Q_j
        s_o = (b.obs[None] + offsets(k_ood, config.eps_ood)).reshape((-1,) + obs_dim)
        m_o, ls_o = actor_net.apply(carry.actor.params, s_o)
        a_o, _ = tanh_gaussian(m_o, ls_o, jax.random.normal(k_a, m_o.shape))
        q_o = critic_net.apply(params, s_o, a_o)  # [N, n B]
        target_o = jax.lax.stop_gradient(q_o - lam * q_o.std(0, keepdims=True))
        ood = jnp.mean((q_o - target_o) ** 2) * (n > 0)
        loss = td + reg * config.q_smooth * smooth + reg * config.beta_ood * ood  # offline: as with reg absent
        return loss, (q.mean(), td, smooth, ood, q_o.std(0).mean())

    def gradient_update(carry: Carry, b: Batch, lam, reg, key):
        """One update; `reg` (0 or 1) weighs the regularisers (they are computed and logged either way)."""
        k_actor, k_critic = jax.random.split(key)
        alpha = jnp.exp(carry.alpha.params["log_alpha"])
        (a_loss, (logp, p_smooth)), g_actor = jax.value_and_grad(actor_loss, has_aux=True)(
            carry.actor.params, carry, b, alpha, reg, k_actor)
        g_alpha = jax.grad(lambda p: -p["log_alpha"] * jax.lax.stop_gradient(logp.mean() + target_entropy))(
            carry.alpha.params)
        alpha_state = carry.alpha.apply_gradients(grads=g_alpha)
        actor = carry.actor.apply_gradients(grads=g_actor)
        carry = carry._replace(actor=actor, alpha=alpha_state)
        (c_loss, (q_mean, td, q_smooth, ood, q_std)), g_critic = jax.value_and_grad(critic_loss, has_aux=True)(
            carry.critic.params, carry, b, alpha, lam, reg, k_critic)
        critic = carry.critic.apply_gradients(grads=g_critic)
        carry = carry._replace(critic=critic, critic_target=optax.incremental_update(
            critic.params, carry.critic_target, config.polyak), updates=carry.updates + 1)
        return carry, {"actor_loss": a_loss, "critic_loss": c_loss, "td_loss": td, "q_mean": q_mean,
                       "q_smooth": q_smooth, "policy_smooth": p_smooth, "ood_loss": ood, "q_std": q_std,
                       "alpha": alpha}

    def iteration(carry: Carry, key, data: OfflineData):
        k_act, k_env, k_off, k_on, k_upd = jax.random.split(key, 5)
        online = carry.iters >= config.offline_updates
        # the env step (stored only online)
        def act(norm_obs, k):
            mean, log_std = actor_net.apply(carry.actor.params, norm_obs)
            return tanh_gaussian(mean, log_std, jax.random.normal(k, mean.shape))[0]

        buffer, env_state, obs, online_ret = offline.online_step(
            venv, env_params, spec, data, carry.env_state, carry.obs, carry.buffer, act, (k_act, k_env), online)
        carry = carry._replace(env_state=env_state, obs=obs, buffer=buffer)
        # one update, on the dataset offline and on the online buffer once it holds learning_starts
        b_off = offline.sample(data, k_off, config.batch_size)
        b_on = (offline.sample_with_online(data, buffer, k_on, config.batch_size) if config.mix_offline
                else buffer_sample(buffer, k_on, config.batch_size))
        b = jax.tree.map(lambda x, y: jnp.where(online, y, x), b_off, b_on)
        lam = jnp.where(online, config.ood_lambda_min, ood_lambda(config, carry.updates))
        reg = jnp.where(online, float(config.online_regularizers), 1.0)
        learn = jnp.logical_or(~online, buffer.size >= config.learning_starts)
        new, m = gradient_update(carry, b, lam, reg, k_upd)
        learner = lambda c: (c.actor, c.critic, c.critic_target, c.alpha, c.updates)
        actor, critic, critic_target, alpha, updates = jax.tree.map(lambda n_, o: jnp.where(learn, n_, o),
                                                                    learner(new), learner(carry))
        carry = carry._replace(actor=actor, critic=critic, critic_target=critic_target, alpha=alpha, updates=updates)
        m = m | {"online_return": online_ret}
        return carry._replace(iters=carry.iters + 1), m

    def update(carry: Carry, data: OfflineData):
        key, k_steps, k_eval = jax.random.split(carry.key, 3)
        carry, m = jax.lax.scan(lambda c, k: iteration(c, k, data), carry._replace(key=key),
                                jax.random.split(k_steps, config.iters_per_chunk))
        policy = lambda obs: jnp.tanh(actor_net.apply(carry.actor.params, obs)[0])
        online_ret = m.pop("online_return")
        metrics = {k: v.mean() for k, v in m.items()} | evaluate(policy, k_eval, data)
        return carry, metrics | {"updates": carry.updates, "online_steps":
                                 jnp.maximum(carry.iters - config.offline_updates, 0),
                                 "online_return": jnp.nanmean(online_ret)}

    return offline.Learner(init, update)


def make_train(config: Config, dataset=None) -> Trainer:
    """RO2O on `dataset` (an envs.datasets.Dataset; else the file at config.dataset), then online in its env."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=True)
    return offline.trainer(make_learner(config, spec), data, config.num_chunks)


def train_sweep(config: Config, datasets, num_seeds: int, seed: int = 0):
    """Seeds x datasets (equal shapes, one env) as one program; metrics [datasets, seeds, chunks]."""
    spec, datas = offline.prepare_sweep(config, datasets, normalize_obs=True)
    return offline.sweep(make_learner(config, spec), datas, config.num_chunks, num_seeds, seed)


def make_policy(config: Config, carry: Carry, dataset=None, deterministic: bool = True):
    """`act(obs, key) -> env action` for one raw observation, from a single-seed carry."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=True)
    net = Actor(spec.action_dim, tuple(config.hidden))

    def act(obs, key):
        mean, log_std = net.apply(carry.actor.params, (obs - data.obs_mean) / data.obs_std)
        a = jnp.tanh(mean) if deterministic else tanh_gaussian(mean, log_std, jax.random.normal(key, mean.shape))[0]
        return offline.env_action(spec, a)

    return act


def main(argv=None):
    return offline.main(Config, make_train, argv)


if __name__ == "__main__":
    main()
