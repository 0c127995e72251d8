"""DQN: Deep Q-Network (Mnih et al. 2015, "Human-level control through deep reinforcement
learning", Nature 518:529-533), with an optional Double DQN target (van Hasselt, Guez & Silver
2016, "Deep Reinforcement Learning with Double Q-learning", AAAI).

Implements the Q-learning loss of Mnih et al. (2015, Methods, Eq. 2 "L_i(theta_i)") with a
target network theta^- and uniform experience replay:

    y        = r + gamma (1 - term) max_a' Q(s', a'; theta^-)                     (DQN target)
    y        = r + gamma (1 - term) Q(s', argmax_a' Q(s', a'; theta); theta^-)    (Double DQN,
                                                                  van Hasselt et al. 2016, Eq. 4)
    L(theta) = E_{(s,a,r,s') ~ U(D)} [ l(y - Q(s, a; theta)) ],  l = squared error or Huber

The Nature paper clips the error term y - Q to [-1, 1], which is the gradient of the Huber loss
with delta = 1 (`loss="huber"`); CleanRL and PureJaxRL use the squared error (`loss="mse"`,
the default here). Actions are epsilon-greedy with epsilon decayed linearly from `start_e` to
`end_e` over the first `exploration_fraction * total_timesteps` env steps; the target network is
copied (or Polyak-averaged with `tau` < 1) every `target_update_interval` env steps.

Training shape (PureJaxRL/CleanRL style): `num_envs` vmapped envs step together and every
transition goes into one pure-functional replay buffer (`jaxrl.core.buffer`). All step counts
(`learning_starts`, `train_frequency`, `target_update_interval`, the epsilon schedule) count env
steps summed over the envs, as CleanRL and PureJaxRL do: with num_envs = train_frequency = 10,
one gradient step follows every vectorised step.

Differences from the Nature paper / official code:
- no Atari preprocessing, frame skip, reward clipping or RMSProp: Adam, as CleanRL and PureJaxRL;
- vector observations go through an MLP, image (HWC) observations such as MinAtar's through a
  small CNN torso (Young & Tian 2019's MinAtar DQN: one 16-channel 3x3 conv) then the MLP head;
- time-limit truncation is bootstrapped: the stored s' is gymnax's `info["final_observation"]`
  and the stored flag is `terminated`, not `done`, so only true terminals cut the target;
- training is cut into `num_chunks` jitted chunks (progress, logging, checkpoints in between).

Defaults: PureJaxRL's/CleanRL's CartPole config (Adam lr 2.5e-4, buffer 10k, batch 128, target
copy every 500 env steps, gamma 0.99, 10 envs, epsilon 1 -> 0.05) with these changes, measured on
CartPole-v1 over 16 seeds (4 seed sets of 4): learning_starts 10k -> 1k, exploration_fraction
0.25-0.5 -> 0.1, train_frequency 10 -> 5 (two gradient steps per vectorised step), hidden
(120, 84) -> (64, 64) (the run is compute-bound on a CPU), total_timesteps 500k -> 150k. The
greedy policy then scores 445-500 (mean of 4 seeds, most seeds 500) after 150k env steps; Double
DQN 480-500. The Huber loss made Q diverge on CartPole with these settings (q_mean > 1e4 after
30k steps: terminal transitions, the only anchor of the values, lose their pull once their error
is clipped), so "mse" stays the default.

Run: `python -m jaxrl.algos.dqn --env CartPole-v1 --num-seeds 4`
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
from jaxrl.core.explore import epsilon_schedule
from jaxrl.core.nets import CNN, MLP
from jaxrl.core.train import Trainer, episode_metrics

LOSSES = ("mse", "huber")


@dataclass(frozen=True)
class Config:
    """DQN hyperparameters (defaults: tuned for CartPole-v1 on a CPU, see the module docstring)."""

    env: str = "CartPole-v1"
    """environment name (discrete actions), see envs.registered()"""
    total_timesteps: int = 150_000
    """env steps per seed, summed over envs (rounded up to whole chunks)"""
    num_envs: int = 10
    """parallel envs per seed"""
    buffer_size: int = 10_000
    """replay buffer capacity in transitions"""
    batch_size: int = 128
    """transitions per gradient step"""
    lr: float = 2.5e-4
    """Adam learning rate"""
    anneal_lr: bool = False
    """decay the learning rate linearly to 0 over the run's gradient steps"""
    gamma: float = 0.99
    """discount"""
    start_e: float = 1.0
    """initial exploration epsilon"""
    end_e: float = 0.05
    """final exploration epsilon"""
    exploration_fraction: float = 0.1
    """fraction of total_timesteps over which epsilon decays linearly from start_e to end_e"""
    learning_starts: int = 1_000
    """env steps of pure collection before the first gradient step"""
    train_frequency: int = 5
    """env steps per gradient step; must divide, or be a multiple of, num_envs"""
    target_update_interval: int = 500
    """env steps between target-network updates"""
    tau: float = 1.0
    """target update rate: 1 = hard copy, < 1 = Polyak averaging at each target update"""
    double_dqn: bool = False
    """use the Double DQN target (van Hasselt et al. 2016): argmax from the online network"""
    loss: str = "mse"
    """TD-error loss: "mse" (CleanRL/PureJaxRL) or "huber" (delta 1, Nature DQN's error clipping)"""
    max_grad_norm: float | None = None
    """global gradient-norm clip (None = no clipping)"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden sizes of the Q-network's MLP (the head, for image observations)"""
    activation: str = "relu"
    """hidden activation"""
    conv_features: tuple[int, ...] = (16,)
    """channels of the CNN torso's conv layers (image observations only)"""
    conv_kernels: tuple[int, ...] = (3,)
    """kernel sizes of the CNN torso's conv layers (image observations only)"""
    conv_strides: tuple[int, ...] = (1,)
    """strides of the CNN torso's conv layers (image observations only)"""
    num_chunks: int = 10
    """jitted chunks the run is cut into (progress/logging/checkpoint granularity)"""

    def __post_init__(self):
        for name in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "train_frequency",
                     "target_update_interval", "num_chunks", "lr"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("learning_starts", self.learning_starts, allow_zero=True)
        if self.max_grad_norm is not None:
            C.check_positive("max_grad_norm", self.max_grad_norm)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("start_e", self.start_e, 0.0, 1.0)
        C.check_range("end_e", self.end_e, 0.0, self.start_e if isinstance(self.start_e, (int, float)) else 1.0)
        C.check_range("exploration_fraction", self.exploration_fraction, 0.0, 1.0, lo_open=True)
        C.check_range("tau", self.tau, 0.0, 1.0, lo_open=True)
        C.check_choice("loss", self.loss, LOSSES)
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"batch_size={self.batch_size} must be <= buffer_size={self.buffer_size}"
            )
        if self.num_envs > self.buffer_size:
            raise ValueError(
                f"num_envs={self.num_envs} must be <= buffer_size={self.buffer_size} "
                "(one vectorised step writes num_envs transitions)"
            )
        if self.train_frequency % self.num_envs and self.num_envs % self.train_frequency:
            raise ValueError(
                f"train_frequency={self.train_frequency} must divide or be a multiple of "
                f"num_envs={self.num_envs}; allowed values: divisors of {self.num_envs} "
                f"({[d for d in range(1, self.num_envs + 1) if self.num_envs % d == 0]}) "
                f"or multiples of {self.num_envs}"
            )
        if not C.traced(self.learning_starts) and self.learning_starts >= self.total_timesteps:
            raise ValueError(
                f"learning_starts={self.learning_starts} must be < total_timesteps="
                f"{self.total_timesteps}, or DQN never learns"
            )
        for name in ("hidden", "conv_features", "conv_kernels", "conv_strides"):
            sizes = getattr(self, name)
            if not sizes or any(not isinstance(h, int) or h <= 0 for h in sizes):
                raise ValueError(f"{name} must be non-empty positive ints, got {sizes!r}")
        if not len(self.conv_features) == len(self.conv_kernels) == len(self.conv_strides):
            raise ValueError(
                "conv_features, conv_kernels and conv_strides need equal lengths, got "
                f"{len(self.conv_features)}, {len(self.conv_kernels)}, {len(self.conv_strides)}"
            )
        _check_env(self.env)

    @property
    def vec_steps_per_iter(self) -> int:
        """Vectorised env steps between gradient phases."""
        return max(1, self.train_frequency // self.num_envs)

    @property
    def grads_per_iter(self) -> int:
        """Gradient steps after each `vec_steps_per_iter` vectorised steps."""
        return max(1, self.num_envs // self.train_frequency)

    @property
    def iters_per_chunk(self) -> int:
        per_iter = self.vec_steps_per_iter * self.num_envs
        return math.ceil(self.total_timesteps / per_iter / self.num_chunks)


def _check_env(name: str) -> None:
    """Unknown env -> envs.make's error; continuous actions or odd observations -> ValueError."""
    envs.spec(name).require(
        "dqn", discrete=True, obs_ndim=(1, 3),
        hint="Use a discrete-action env (e.g. CartPole-v1, Acrobot-v1, MountainCar-v0, Breakout-MinAtar) or an "
             "algorithm for continuous actions (e.g. jaxrl.algos.ppo, jaxrl.algos.sac)")


# ----------------------------------------------------------------------------- pure pieces


def td_target(reward, terminated, gamma, next_q_target, next_q_online=None):
    """The DQN target y = r + gamma (1 - term) max_a' Q_target(s', a') (Mnih et al. 2015), or,
    when `next_q_online` is given, the Double DQN target
    y = r + gamma (1 - term) Q_target(s', argmax_a' Q_online(s', a')) (van Hasselt et al. 2016).
    `next_q_*` have shape [batch, num_actions]; the result has no gradient."""
    if next_q_online is None:
        next_v = next_q_target.max(-1)
    else:
        a_star = next_q_online.argmax(-1)
        next_v = jnp.take_along_axis(next_q_target, a_star[..., None], -1)[..., 0]
    not_term = 1.0 - terminated.astype(jnp.float32)
    return jax.lax.stop_gradient(reward + gamma * not_term * next_v)


def td_loss(q_taken, target, kind: str = "mse"):
    """Mean over the batch of l(y - Q(s, a)): squared error, or Huber with delta 1."""
    err = target - q_taken
    if kind == "mse":
        return jnp.mean(err**2)
    if kind == "huber":
        return jnp.mean(optax.huber_loss(err, delta=1.0))
    raise ValueError(f"loss must be one of {list(LOSSES)}, got {kind!r}")


def update_target(online, target, tau, sync):
    """theta^- <- tau theta + (1 - tau) theta^- where `sync`, else theta^- unchanged
    (tau = 1: the hard copy of Mnih et al. 2015; tau < 1: Polyak averaging)."""
    return optax.incremental_update(online, target, jnp.where(sync, tau, 0.0))


# ----------------------------------------------------------------------------- network


class QNetwork(nn.Module):
    """Q(s, .) for all actions: an MLP for vector observations, a CNN torso + MLP head for images.
    Flax's default lecun_normal init (as PureJaxRL's DQN), so no QR under a vmap over seeds."""

    action_dim: int
    hidden: tuple[int, ...]
    activation: str
    conv_features: tuple[int, ...]
    conv_kernels: tuple[int, ...]
    conv_strides: tuple[int, ...]
    image: bool

    @nn.compact
    def __call__(self, obs):
        init = nn.initializers.lecun_normal()
        x = obs.astype(jnp.float32)
        if self.image:
            x = CNN(self.conv_features, self.conv_kernels, self.conv_strides,
                    activation=self.activation, kernel_init=init)(x)
        return MLP(self.hidden, self.action_dim, self.activation, kernel_init=init)(x)


def _network(config: Config, spec: envs.EnvSpec) -> QNetwork:
    return QNetwork(
        spec.action_dim, tuple(config.hidden), config.activation,
        tuple(config.conv_features), tuple(config.conv_kernels), tuple(config.conv_strides), image=spec.image,
    )


# ----------------------------------------------------------------------------- training


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array  # final_observation on episode ends, so truncation bootstraps
    terminated: jax.Array


class Carry(NamedTuple):
    train_state: TrainState
    target_params: Any
    buffer: Buffer
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array
    grad_steps: jax.Array


def make_train(config: Config) -> Trainer:
    env, env_params = envs.make(config.env)
    spec = envs.spec(config.env)
    net = _network(config, spec)
    num_actions, obs_shape = spec.action_dim, spec.obs_shape
    eps_duration = config.exploration_fraction * config.total_timesteps
    iters = config.iters_per_chunk * config.num_chunks
    lr = optax.linear_schedule(config.lr, 0.0, iters * config.grads_per_iter) if config.anneal_lr else config.lr
    adam = optax.flatten(optax.adam(lr))
    tx = adam if config.max_grad_norm is None else optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), adam)
    venv = envs.VecEnv(env)  # num_envs copies stepped as one batch (on a CPU, resets only when one ends)
    example = Transition(
        jnp.zeros(obs_shape, jnp.float32), jnp.int32(0), jnp.float32(0.0),
        jnp.zeros(obs_shape, jnp.float32), jnp.bool_(False),
    )

    def init(key) -> Carry:
        k_net, k_env, key = jax.random.split(key, 3)
        params = net.init(k_net, jnp.zeros((1,) + obs_shape))
        ts = TrainState.create(apply_fn=net.apply, params=params, tx=tx)
        obs, env_state = venv.reset(jax.random.split(k_env, config.num_envs), env_params)
        buf = buffer_init(example, config.buffer_size)
        return Carry(ts, params, buf, env_state, obs, key, jnp.int32(0), jnp.int32(0))

    def env_step(carry: Carry, _):
        key, k_eps, k_rand, k_env = jax.random.split(carry.key, 4)
        eps = epsilon_schedule(carry.env_steps, config.start_e, config.end_e, eps_duration)
        greedy = net.apply(carry.train_state.params, carry.obs).argmax(-1)
        rand = jax.random.randint(k_rand, (config.num_envs,), 0, num_actions)
        explore = jax.random.uniform(k_eps, (config.num_envs,)) < eps
        action = jnp.where(explore, rand, greedy)
        next_obs, env_state, reward, term, trunc, info = venv.step(
            jax.random.split(k_env, config.num_envs), carry.env_state, action, env_params
        )
        t = Transition(carry.obs, action, reward.astype(jnp.float32),
                       info["final_observation"], term)
        buf = buffer_add(carry.buffer, t)
        stats = (info["episode_return"], info["episode_done"], eps)
        carry = carry._replace(buffer=buf, env_state=env_state, obs=next_obs, key=key,
                               env_steps=carry.env_steps + config.num_envs)
        return carry, stats

    def loss_fn(params, target_params, batch: Transition):
        q = net.apply(params, batch.obs)
        q_taken = jnp.take_along_axis(q, batch.action[:, None], -1)[:, 0]
        next_q_target = net.apply(target_params, batch.next_obs)
        next_q_online = net.apply(params, batch.next_obs) if config.double_dqn else None
        y = td_target(batch.reward, batch.terminated, config.gamma, next_q_target, next_q_online)
        return td_loss(q_taken, y, config.loss), q_taken.mean()

    def grad_step(state, key):
        ts, target_params, buf = state
        batch = buffer_sample(buf, key, config.batch_size)
        (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            ts.params, target_params, batch)
        return (ts.apply_gradients(grads=grads), target_params, buf), (loss, q_mean)

    def iteration(carry: Carry, _):
        prev_steps = carry.env_steps
        carry, stats = jax.lax.scan(env_step, carry, None, config.vec_steps_per_iter)
        key, k_grad = jax.random.split(carry.key)
        learn = carry.env_steps > config.learning_starts  # CleanRL: global_step > learning_starts

        def do_learn(_):
            state = (carry.train_state, carry.target_params, carry.buffer)
            (ts, _, _), (loss, q) = jax.lax.scan(
                grad_step, state, jax.random.split(k_grad, config.grads_per_iter))
            return ts, loss.mean(), q.mean()

        def skip(_):
            return carry.train_state, jnp.float32(0.0), jnp.float32(0.0)

        ts, loss, q_mean = jax.lax.cond(learn, do_learn, skip, None)
        # target update each time the env-step counter crosses a multiple of the interval
        interval = config.target_update_interval
        sync = learn & (carry.env_steps // interval > prev_steps // interval)
        target = update_target(ts.params, carry.target_params, config.tau, sync)
        carry = carry._replace(
            train_state=ts, target_params=target, key=key,
            grad_steps=carry.grad_steps + learn * config.grads_per_iter)
        returns, done, eps = stats
        return carry, (returns, done, eps[-1], loss, q_mean, learn)

    def update(carry: Carry):
        carry, (returns, done, eps, loss, q_mean, learn) = jax.lax.scan(
            iteration, carry, None, config.iters_per_chunk)
        n_learn = learn.astype(jnp.float32).sum()
        mean_learn = lambda x: (x * learn).sum() / jnp.maximum(n_learn, 1.0)  # 0 before learning
        metrics = {
            "env_steps": carry.env_steps,
            **episode_metrics(returns, done),
            "loss": mean_learn(loss),
            "q_mean": mean_learn(q_mean),
            "epsilon": eps[-1],
            "grad_steps": carry.grad_steps,
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, carry: Carry):
    """Greedy `act(obs, key) -> action` for one observation, from a (single-seed) carry."""
    net = _network(config, envs.spec(config.env))

    def act(obs, key):
        del key  # greedy
        return net.apply(carry.train_state.params, obs[None]).argmax(-1)[0]

    return act


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
