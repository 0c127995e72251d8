"""IQL: Implicit Q-Learning (Kostrikov, Nair & Levine 2022, "Offline Reinforcement Learning with
Implicit Q-Learning", ICLR).

IQL never queries Q at actions outside the dataset. It fits V(s) as an upper expectile of the
target critic's values at the dataset's actions, backs Q up through V, and extracts the policy by
advantage-weighted regression (Eqs. 5, 6 and 7 of the paper):

    L_V(psi)   = E_(s,a)~D [ L2^tau( min(Q'_1, Q'_2)(s, a) - V_psi(s) ) ],  L2^tau(u) = |tau - 1(u < 0)| u^2
    L_Q(theta) = E_(s,a,r,s')~D [ sum_i ( r + gamma (1 - d) V_psi(s') - Q_theta_i(s, a) )^2 ]
    L_pi(phi)  = -E_(s,a)~D [ min(exp(beta (min(Q'_1, Q'_2)(s, a) - V_psi(s))), 100) log pi_phi(a | s) ]

Q' is the Polyak-averaged target critic. One update runs, in the official code's order: the V step
(target critic), the actor step (target critic, the new V), the critic step (the new V), then
the target update. The actor is a Gaussian whose mean is tanh of the network's output and whose
log-std is a state-independent parameter clipped to [-5, 2]; evaluation acts with the mean. The
actor's learning rate follows a cosine decay over the run. Defaults: the paper's MuJoCo
locomotion settings (tau 0.7, beta 3, Adam 3e-4, batch 256, 2x256 ReLU MLPs, Polyak 0.005,
gamma 0.99, 1M updates), with rewards scaled by 1000 / (max - min episode return) over the
dataset's episodes, as the official code does for locomotion.

Differences from the official code:
- observations are normalised by the dataset's mean and std (as CORL's IQL does), and actions are
  rescaled from the env's bounds to [-1, 1] (the official code assumes [-1, 1] bounds);
- dense layers start as PyTorch's do (uniform in +-1/sqrt(fan_in)), biases at zero;
- evaluation runs inside the program after every chunk, in the dataset's env (a brax stand-in for a
  D4RL MuJoCo file: approximate scores), and reports D4RL's normalised score.

Online fine-tuning (`online_steps > 0`; the official `train_finetune.py`, section 5.3 of the
paper): after the offline updates, each iteration takes one env step with an action sampled from
the Gaussian policy (clipped to [-1, 1]) and stores it, then takes one update on a minibatch drawn
uniformly from the dataset and the online transitions together (the official replay buffer starts
as the dataset and grows by every env step; here the two stay apart and each row of the minibatch
comes from the online part with probability n_online / (n_dataset + n_online), which is the same
draw). Time limits are stored as non-terminal. Both phases are one scan of identical iterations, as
in `jaxrl.algos.ro2o` (the env step is wasted offline); with `online_steps=0` the program has no env
step. The fine-tuning configs of the official code are AntMaze's (tau 0.9, beta 10, no actor lr
decay); `actor_lr_decay` spans both phases here. Differences from the official fine-tuning script:
- online rewards are scaled by the dataset's reward scale (the script scales the dataset's rewards
  for locomotion and stores online rewards unscaled);
- the dataset is kept whole (the script's buffer holds max_steps transitions, 1M, so that online
  transitions overwrite the oldest dataset rows once a 1M-transition dataset fills it).

Run: `python -m jaxrl.algos.iql --dataset PATH --num-seeds 5`
(`python -m jaxrl.datasets.generate --env brax/hopper` makes datasets and prints their paths.)
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
from jaxrl.core.buffer import Buffer, buffer_init
from jaxrl.core.nets import MLP, QEnsemble, GaussianActor, gaussian_log_prob, TORCH_INIT
from jaxrl.core.offline import Batch, OfflineData
from jaxrl.core.train import Trainer

REWARD_NORMS = ("none", "returns")


@dataclass(frozen=True)
class Config:
    """IQL hyperparameters (defaults: the paper's MuJoCo locomotion settings)."""

    # --- data
    dataset: str = ""
    """dataset path (.npz, .hdf5, Minari directory); "" when make_train is given the dataset"""
    dataset_hash: str = ""
    """the dataset's content hash; "" = not checked (the CLI fills it, so checkpoints record the data)"""
    env: str = ""
    """env to evaluate in; "" = the dataset's own"""
    normalize_obs: bool = True
    """normalise observations by the dataset's mean and std"""
    reward_norm: str = "returns"
    """"returns": scale rewards by 1000 / (max - min episode return) (official, locomotion); "none" """
    # --- training
    total_updates: int = 1_000_000
    """offline gradient updates per seed (rounded up to whole chunks when online_steps is 0)"""
    online_steps: int = 0
    """env steps of online fine-tuning after the offline updates, one update each on the dataset and
    the online transitions together (0: offline only)"""
    batch_size: int = 256
    """transitions per update"""
    actor_lr: float = 3e-4
    """actor Adam learning rate (cosine-decayed to 0 if actor_lr_decay)"""
    critic_lr: float = 3e-4
    """Q-network Adam learning rate"""
    value_lr: float = 3e-4
    """V-network Adam learning rate"""
    actor_lr_decay: bool = True
    """cosine decay of the actor's learning rate over the run"""
    gamma: float = 0.99
    """discount"""
    polyak: float = 0.005
    """target critic update rate"""
    expectile: float = 0.7
    """tau of the expectile loss for V"""
    temperature: float = 3.0
    """beta: inverse temperature of the advantage weights"""
    max_weight: float = 100.0
    """cap on exp(beta * advantage)"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden sizes of the actor, Q and V MLPs"""
    # --- evaluation
    num_chunks: int = 100
    """chunks the run is cut into; the policy is evaluated after each"""
    eval_episodes: int = 10
    """evaluation episodes after each chunk (0: none, normalized_score NaN)"""

    def __post_init__(self):
        for name in ("total_updates", "batch_size", "actor_lr", "critic_lr", "value_lr", "num_chunks",
                     "temperature", "max_weight"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("eval_episodes", self.eval_episodes, allow_zero=True)
        C.check_positive("online_steps", self.online_steps, allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("polyak", self.polyak, 0.0, 1.0, lo_open=True)
        C.check_range("expectile", self.expectile, 0.0, 1.0, lo_open=True, hi_open=True)
        C.check_choice("reward_norm", self.reward_norm, REWARD_NORMS)
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        if self.num_chunks > self.total_updates + self.online_steps:
            online = f" + online_steps={self.online_steps}" if self.online_steps else ""
            raise ValueError(f"num_chunks={self.num_chunks} must be <= total_updates={self.total_updates}{online}")

    @property
    def updates_per_chunk(self) -> int:
        """Iterations per chunk: offline updates, then online env steps with an update each."""
        return offline.updates_per_chunk(self.total_updates + self.online_steps, self.num_chunks)


# ----------------------------------------------------------------------------- pure pieces


def expectile_loss(diff, expectile: float):
    """Mean of L2^tau(u) = |tau - 1(u < 0)| u^2 over u = Q - V: weight tau above V, 1 - tau below."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return jnp.mean(weight * diff**2)


def advantage_weights(adv, temperature: float, max_weight: float = 100.0):
    """min(exp(beta * A), max_weight), without gradient (AWR's weights)."""
    return jax.lax.stop_gradient(jnp.minimum(jnp.exp(temperature * adv), max_weight))


# ----------------------------------------------------------------------------- networks


class ValueNet(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, 1, "relu", kernel_init=TORCH_INIT)(obs)[..., 0]


# ----------------------------------------------------------------------------- training


class Online(NamedTuple):
    """The fine-tuning phase's state (online_steps > 0)."""

    buffer: Buffer  # online transitions (normalised obs, [-1, 1] actions, scaled rewards), never evicted
    env_state: Any
    obs: jax.Array  # the env's current raw observation [1, *obs]


class Carry(NamedTuple):
    actor: TrainState
    critic: TrainState
    critic_target: Any
    value: TrainState
    key: jax.Array
    updates: jax.Array
    online: Any = None  # Online when online_steps > 0


def make_learner(config: Config, spec: envs.EnvSpec) -> offline.Learner:
    """IQL as pure functions of the dataset (see `jaxrl.core.offline`)."""
    actor_net = GaussianActor(spec.action_dim, tuple(config.hidden), TORCH_INIT)
    critic_net = QEnsemble(tuple(config.hidden), 2, "relu", kernel_init=TORCH_INIT)  # Q_1, Q_2: [2, *batch]
    value_net = ValueNet(tuple(config.hidden))
    steps = config.updates_per_chunk * config.num_chunks
    actor_lr = optax.cosine_decay_schedule(config.actor_lr, steps) if config.actor_lr_decay else config.actor_lr
    evaluate = offline.make_evaluate(spec, config.eval_episodes)
    if config.online_steps:
        env, env_params = envs.make(spec.name)
        venv = envs.VecEnv(env)

    def init(key, data: OfflineData) -> Carry:
        k_actor, k_critic, k_value, key = jax.random.split(key, 4)
        obs, action = data.observations[:1], data.actions[:1]
        critic_params = critic_net.init(k_critic, obs, action)
        online = None
        if config.online_steps:
            key, k_env = jax.random.split(key)
            env_obs, env_state = venv.reset(k_env[None], env_params)
            example = Batch(obs[0], action[0], jnp.float32(0.0), obs[0], jnp.float32(0.0))
            online = Online(buffer_init(example, steps - config.total_updates), env_state, env_obs)
        return Carry(
            TrainState.create(apply_fn=actor_net.apply, params=actor_net.init(k_actor, obs), tx=optax.adam(actor_lr)),
            TrainState.create(apply_fn=critic_net.apply, params=critic_params, tx=optax.adam(config.critic_lr)),
            critic_params,
            TrainState.create(apply_fn=value_net.apply, params=value_net.init(k_value, obs), tx=optax.adam(config.value_lr)),
            key, jnp.int32(0), online)

    def update_step(carry: Carry, b: Batch):
        q_target = critic_net.apply(carry.critic_target, b.obs, b.action).min(0)

        def value_loss(params):
            v = value_net.apply(params, b.obs)
            return expectile_loss(q_target - v, config.expectile), v.mean()

        (v_loss, v_mean), grads = jax.value_and_grad(value_loss, has_aux=True)(carry.value.params)
        value = carry.value.apply_gradients(grads=grads)

        weights = advantage_weights(q_target - value_net.apply(value.params, b.obs), config.temperature,
                                    config.max_weight)

        def actor_loss(params):
            mean, log_std = actor_net.apply(params, b.obs)
            return -jnp.mean(weights * gaussian_log_prob(mean, log_std, b.action))

        a_loss, grads = jax.value_and_grad(actor_loss)(carry.actor.params)
        actor = carry.actor.apply_gradients(grads=grads)

        next_v = value_net.apply(value.params, b.next_obs)
        y = b.reward + config.gamma * (1.0 - b.terminal) * next_v

        def critic_loss(params):
            q = critic_net.apply(params, b.obs, b.action)
            return jnp.mean(jnp.sum((q - y) ** 2, 0)), q.mean()

        (q_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(carry.critic.params)
        critic = carry.critic.apply_gradients(grads=grads)
        target = optax.incremental_update(critic.params, carry.critic_target, config.polyak)
        carry = carry._replace(actor=actor, critic=critic, critic_target=target, value=value,
                               updates=carry.updates + 1)
        return carry, {"value_loss": v_loss, "actor_loss": a_loss, "critic_loss": q_loss, "q_mean": q_mean,
                       "v_mean": v_mean, "weight_mean": weights.mean()}

    def env_step(carry: Carry, key, data: OfflineData, write):
        """One step of the policy's sampled action (clipped to [-1, 1]), stored in the online buffer if `write`."""
        def act(norm_obs, k):
            mean, log_std = actor_net.apply(carry.actor.params, norm_obs)
            return jnp.clip(mean + jnp.exp(log_std) * jax.random.normal(k, mean.shape), -1.0, 1.0)

        on = carry.online
        buffer, env_state, obs, ret = offline.online_step(venv, env_params, spec, data, on.env_state, on.obs,
                                                          on.buffer, act, jax.random.split(key), write)
        return carry._replace(online=Online(buffer, env_state, obs)), ret

    def iteration(carry: Carry, key, data: OfflineData):
        if not config.online_steps:
            return update_step(carry, offline.sample(data, key, config.batch_size))
        carry, ret = env_step(carry, jax.random.fold_in(key, 2), data, carry.updates >= config.total_updates)
        carry, m = update_step(carry, offline.sample_with_online(data, carry.online.buffer, key, config.batch_size))
        return carry, m | {"online_return": ret}

    def update(carry: Carry, data: OfflineData):
        key, k_steps, k_eval = jax.random.split(carry.key, 3)
        carry, m = jax.lax.scan(lambda c, k: iteration(c, k, data), carry._replace(key=key),
                                jax.random.split(k_steps, config.updates_per_chunk))
        policy = lambda obs: actor_net.apply(carry.actor.params, obs)[0]
        online = {}
        if config.online_steps:
            online = {"online_steps": jnp.maximum(carry.updates - config.total_updates, 0),
                      "online_return": jnp.nanmean(m.pop("online_return"))}
        metrics = {k: v.mean() for k, v in m.items()} | evaluate(policy, k_eval, data)
        return carry, metrics | {"updates": carry.updates} | online

    return offline.Learner(init, update)


def make_train(config: Config, dataset=None) -> Trainer:
    """IQL on `dataset` (an envs.datasets.Dataset; else the file at config.dataset), closed over."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=config.normalize_obs, reward_norm=config.reward_norm)
    return offline.trainer(make_learner(config, spec), data, config.num_chunks)


def train_sweep(config: Config, datasets, num_seeds: int, seed: int = 0):
    """Seeds x datasets (equal shapes, one env) as one program; metrics [datasets, seeds, chunks]."""
    spec, datas = offline.prepare_sweep(config, datasets, normalize_obs=config.normalize_obs,
                                        reward_norm=config.reward_norm)
    return offline.sweep(make_learner(config, spec), datas, config.num_chunks, num_seeds, seed)


def make_policy(config: Config, carry: Carry, dataset=None, deterministic: bool = True):
    """`act(obs, key) -> env action` for one raw observation, from a single-seed carry."""
    ds, spec = offline.resolve_dataset(config, dataset)
    data = offline.device_data(ds, spec, normalize_obs=config.normalize_obs, reward_norm="none")
    net = GaussianActor(spec.action_dim, tuple(config.hidden), TORCH_INIT)

    def act(obs, key):
        mean, log_std = net.apply(carry.actor.params, (obs - data.obs_mean) / data.obs_std)
        a = mean if deterministic else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return offline.env_action(spec, a)

    return act


def main(argv=None):
    return offline.main(Config, make_train, argv)


if __name__ == "__main__":
    main()
