"""A2PR: Adaptive Advantage-guided Policy Regularization (Liu et al. 2024, "Adaptive Advantage-Guided
Policy Regularization for Offline Reinforcement Learning", ICML).

A2PR is TD3+BC whose behaviour-cloning target is chosen per state by an advantage test. A VAE
trained only on the dataset's *good* actions (those with Q(s, a) > V(s)) proposes an action near
the data; the actor imitates whichever of the proposal and the dataset action has the higher
advantage. In the official code's terms, one update is:

1. critic (twin Q, TD3 target smoothing):  y = r + gamma (1 - d) min_j Q'_j(s', clip(pi'(s') + clip(N(0, 0.2^2), +-0.5)))
2. V: regress V(s) on min(y, r + gamma (1 - d) min_j Q_j(s', a~')) (the just-updated critic), MSE;
3. VAE: mean(w 1[Q_1(s, a) > V(s)] ||a_hat - a||^2) + 0.5 KL(q(z | s, a) || N(0, I)) (eps_A = 0 in the code);
4. every `policy_freq` updates, the actor (Eq. 7-9 of the paper as coded):

       a~_pi = VAE(s, pi(s)),  A_data = Q_1(s, a) - V(s),  A_vae = Q_1(s, a~_pi) - V(s)
       a*    = a~_pi if A_vae >= A_data else a
       m     = mask (1[Q_1(s, a~_pi) >= V(s)] + 1[Q_1(s, a) > V(s)])
       L_pi  = -lambda mean Q_1(s, pi(s)) + mean(m (pi(s) - a*)^2),  lambda = alpha / mean |Q_1(s, pi(s))|

   then the Polyak updates of the target critic and target actor.

Networks as the official code: critic and V 4x256, actor 3x256 (ReLU, tanh output), VAE
750-750 encoder and decoder, latent 2|A|, log sigma clipped to [-4, 15], Adam 3e-4 (VAE 1e-3),
batch 256, Polyak 0.005, gamma 0.99, policy noise 0.2 (clip 0.5), delay 2, alpha 2.5, mask 0.5,
VAE weight 1.0; 1M updates; observations normalised by the dataset's mean and std.

Differences from the official code:
- dense layers start as PyTorch's defaults, biases at zero;
- actions are rescaled from the env's bounds to [-1, 1];
- evaluation runs inside the program after every chunk and reports D4RL's normalised score.

Run: `python -m jaxrl.algos.a2pr --dataset PATH --num-seeds 5`
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
    """A2PR hyperparameters (defaults: the official code's argparse defaults)."""

    # --- data
    dataset: str = ""
    """dataset path (.npz, .hdf5, Minari directory); "" when make_train is given the dataset"""
    dataset_hash: str = ""
    """the dataset's content hash; "" = not checked (the CLI fills it)"""
    env: str = ""
    """env to evaluate in; "" = the dataset's own"""
    normalize_obs: bool = True
    """normalise observations by the dataset's mean and std"""
    # --- training
    total_updates: int = 1_000_000
    """gradient updates per seed (rounded up to whole chunks of policy_freq)"""
    batch_size: int = 256
    """transitions per update"""
    actor_lr: float = 3e-4
    """actor Adam learning rate"""
    critic_lr: float = 3e-4
    """critic and V Adam learning rate"""
    vae_lr: float = 1e-3
    """VAE Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    polyak: float = 0.005
    """target network update rate"""
    policy_noise: float = 0.2
    """std of the target policy smoothing noise"""
    noise_clip: float = 0.5
    """clip of the target policy smoothing noise"""
    policy_freq: int = 2
    """critic updates per actor update"""
    alpha: float = 2.5
    """Q term weight: lambda = alpha / mean |Q|"""
    mask: float = 0.5
    """weight of the advantage-guided imitation term"""
    vae_weight: float = 1.0
    """weight of the VAE's reconstruction on good actions"""
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    """actor hidden sizes"""
    critic_hidden: tuple[int, ...] = (256, 256, 256, 256)
    """critic and V hidden sizes"""
    vae_hidden: tuple[int, ...] = (750, 750)
    """VAE encoder and decoder hidden sizes"""
    # --- evaluation
    num_chunks: int = 100
    """chunks the run is cut into; the policy is evaluated after each"""
    eval_episodes: int = 10
    """evaluation episodes after each chunk (0: none, normalized_score NaN)"""

    def __post_init__(self):
        for name in ("total_updates", "batch_size", "actor_lr", "critic_lr", "vae_lr", "num_chunks", "policy_freq",
                     "alpha"):
            C.check_positive(name, getattr(self, name))
        for name in ("eval_episodes", "policy_noise", "noise_clip", "mask", "vae_weight"):
            C.check_positive(name, getattr(self, name), allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("polyak", self.polyak, 0.0, 1.0, lo_open=True)
        for name in ("actor_hidden", "critic_hidden", "vae_hidden"):
            h = getattr(self, name)
            if not h or any(not isinstance(x, int) or x <= 0 for x in h):
                raise ValueError(f"{name} must be non-empty positive ints, got {h!r}")
        if self.num_chunks > self.total_updates:
            raise ValueError(f"num_chunks={self.num_chunks} must be <= total_updates={self.total_updates}")

    @property
    def updates_per_chunk(self) -> int:
        return offline.updates_per_chunk(self.total_updates, self.num_chunks, self.policy_freq)


# ----------------------------------------------------------------------------- pure pieces


def guided_targets(q_data, q_vae, v, data_action, vae_action, mask: float):
    """A2PR's imitation target and weight per state: a* = the VAE's action where its advantage
    Q(s, a~) - V(s) is >= the dataset action's, else the dataset action; weight
    m = mask (1[Q(s, a~) >= V(s)] + 1[Q(s, a) > V(s)]) (0, mask or 2 mask)."""
    use_vae = (q_vae - v) >= (q_data - v)
    target = jnp.where(use_vae[..., None], vae_action, data_action)
    weight = mask * ((q_vae >= v).astype(jnp.float32) + (q_data > v).astype(jnp.float32))
    return jax.lax.stop_gradient(target), jax.lax.stop_gradient(weight)


def vae_loss(recon, action, mean, log_std, good, vae_weight: float):
    """mean(w 1[good] ||recon - a||^2) + 0.5 mean KL(N(mean, std) || N(0, I))."""
    rec = jnp.mean(vae_weight * good * jnp.sum((recon - action) ** 2, -1))
    std = jnp.exp(log_std)
    kl = -0.5 * jnp.sum(1.0 + jnp.log(std**2) - mean**2 - std**2, -1)
    return rec + 0.5 * jnp.mean(kl)


# ----------------------------------------------------------------------------- networks


class DeterministicActor(nn.Module):
    action_dim: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.hidden, self.action_dim, "relu", kernel_init=TORCH_INIT)(obs))


class ValueNet(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, 1, "relu", kernel_init=TORCH_INIT)(obs)[..., 0]


class VAE(nn.Module):
    """Conditional VAE over actions: (s, a) -> z ~ N(mu, sigma) -> a_hat = tanh(dec(s, z))."""

    action_dim: int
    hidden: tuple[int, ...]

    def setup(self):
        self.encoder = MLP(self.hidden, 4 * self.action_dim, "relu", kernel_init=TORCH_INIT)
        self.decoder = MLP(self.hidden, self.action_dim, "relu", kernel_init=TORCH_INIT)

    def decode(self, obs, z):
        return jnp.tanh(self.decoder(jnp.concatenate([obs, z], -1)))

    def __call__(self, obs, action, key):
        mean, log_std = jnp.split(self.encoder(jnp.concatenate([obs, action], -1)), 2, -1)
        log_std = jnp.clip(log_std, -4.0, 15.0)
        z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return self.decode(obs, z), mean, log_std


# ----------------------------------------------------------------------------- training


class Carry(NamedTuple):
    actor: TrainState
    actor_target: Any
    critic: TrainState
    critic_target: Any
    value: TrainState
    vae: TrainState
    key: jax.Array
    updates: jax.Array


def make_learner(config: Config, spec: envs.EnvSpec) -> offline.Learner:
    """A2PR as pure functions of the dataset (see `jaxrl.core.offline`)."""
    actor_net = DeterministicActor(spec.action_dim, tuple(config.actor_hidden))
    critic_net = QEnsemble(tuple(config.critic_hidden), 2, "relu", kernel_init=TORCH_INIT)
    value_net = ValueNet(tuple(config.critic_hidden))
    vae_net = VAE(spec.action_dim, tuple(config.vae_hidden))
    evaluate = offline.make_evaluate(spec, config.eval_episodes)

    def init(key, data: OfflineData) -> Carry:
        k_a, k_c, k_v, k_vae, k_z, key = jax.random.split(key, 6)
        obs, action = data.observations[:1], data.actions[:1]
        actor_p, critic_p = actor_net.init(k_a, obs), critic_net.init(k_c, obs, action)
        state = lambda net, p, lr: TrainState.create(apply_fn=net.apply, params=p, tx=optax.adam(lr))
        return Carry(state(actor_net, actor_p, config.actor_lr), actor_p, state(critic_net, critic_p, config.critic_lr),
                     critic_p, state(value_net, value_net.init(k_v, obs), config.critic_lr),
                     state(vae_net, vae_net.init(k_vae, obs, action, k_z), config.vae_lr), key, jnp.int32(0))

    def critic_step(carry: Carry, key, data: OfflineData):
        k_batch, k_noise, k_z = jax.random.split(key, 3)
        b = offline.sample(data, k_batch, config.batch_size)
        noise = jnp.clip(config.policy_noise * jax.random.normal(k_noise, b.action.shape), -config.noise_clip,
                         config.noise_clip)
        next_action = jnp.clip(actor_net.apply(carry.actor_target, b.next_obs) + noise, -1.0, 1.0)
        not_done = config.gamma * (1.0 - b.terminal)
        y = b.reward + not_done * critic_net.apply(carry.critic_target, b.next_obs, next_action).min(0)

        def critic_loss(params):
            q = critic_net.apply(params, b.obs, b.action)
            return jnp.mean(jnp.sum((q - y) ** 2, 0)), q.mean()

        (c_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(carry.critic.params)
        critic = carry.critic.apply_gradients(grads=grads)
        v_target = jnp.minimum(y, b.reward + not_done * critic_net.apply(critic.params, b.next_obs, next_action).min(0))
        v_loss, grads = jax.value_and_grad(lambda p: jnp.mean((value_net.apply(p, b.obs) - v_target) ** 2))(
            carry.value.params)
        value = carry.value.apply_gradients(grads=grads)
        good = (critic_net.apply(critic.params, b.obs, b.action)[0] > value_net.apply(value.params, b.obs))

        def vae_objective(params):
            recon, mean, log_std = vae_net.apply(params, b.obs, b.action, k_z)
            return vae_loss(recon, b.action, mean, log_std, good.astype(jnp.float32), config.vae_weight)

        vae_l, grads = jax.value_and_grad(vae_objective)(carry.vae.params)
        carry = carry._replace(critic=critic, value=value, vae=carry.vae.apply_gradients(grads=grads),
                               updates=carry.updates + 1)
        return carry, (c_loss, q_mean, v_loss, vae_l, b)

    def actor_step(carry: Carry, b, key):
        q1 = lambda a: critic_net.apply(carry.critic.params, b.obs, a)[0]
        v = value_net.apply(carry.value.params, b.obs)

        def actor_loss(params):
            pi = actor_net.apply(params, b.obs)
            vae_action, _, _ = vae_net.apply(carry.vae.params, b.obs, jax.lax.stop_gradient(pi), key)
            target, weight = guided_targets(q1(b.action), q1(vae_action), v, b.action, vae_action, config.mask)
            q = q1(pi)
            lmbda = jax.lax.stop_gradient(config.alpha / jnp.mean(jnp.abs(q)))
            bc = jnp.mean(weight[:, None] * (pi - target) ** 2)
            return -lmbda * q.mean() + bc, (weight.mean(), bc)

        (loss, (w_mean, bc)), grads = jax.value_and_grad(actor_loss, has_aux=True)(carry.actor.params)
        actor = carry.actor.apply_gradients(grads=grads)
        return carry._replace(
            actor=actor, actor_target=optax.incremental_update(actor.params, carry.actor_target, config.polyak),
            critic_target=optax.incremental_update(carry.critic.params, carry.critic_target, config.polyak)), \
            {"actor_loss": loss, "guide_weight": w_mean, "bc_loss": bc}

    def update_step(carry: Carry, key, data: OfflineData):
        k_critic, k_actor = jax.random.split(key)
        carry, (c_loss, q_mean, v_loss, vae_l, batches) = jax.lax.scan(
            lambda c, k: critic_step(c, k, data), carry, jax.random.split(k_critic, config.policy_freq))
        carry, m = actor_step(carry, jax.tree.map(lambda x: x[-1], batches), k_actor)
        return carry, m | {"critic_loss": c_loss.mean(), "q_mean": q_mean.mean(), "value_loss": v_loss.mean(),
                           "vae_loss": vae_l.mean()}

    def update(carry: Carry, data: OfflineData):
        key, k_steps, k_eval = jax.random.split(carry.key, 3)
        carry, m = jax.lax.scan(lambda c, k: update_step(c, k, data), carry._replace(key=key),
                                jax.random.split(k_steps, config.updates_per_chunk // config.policy_freq))
        policy = lambda obs: actor_net.apply(carry.actor.params, obs)
        metrics = {k: v.mean() for k, v in m.items()} | evaluate(policy, k_eval, data)
        return carry, metrics | {"updates": carry.updates}

    return offline.Learner(init, update)


def make_train(config: Config, dataset=None) -> Trainer:
    """A2PR on `dataset` (an envs.datasets.Dataset; else the file at config.dataset), closed over."""
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
    net = DeterministicActor(spec.action_dim, tuple(config.actor_hidden))
    return lambda obs, key: offline.env_action(spec, net.apply(carry.actor.params, (obs - data.obs_mean) / data.obs_std))


def main(argv=None):
    return offline.main(Config, make_train, argv)


if __name__ == "__main__":
    main()
