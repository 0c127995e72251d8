"""SAC: Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications",
arXiv:1812.05905), with clipped double Q and automatic entropy tuning.

Maximises the entropy-regularised return E[sum_t r_t + alpha H(pi(.|s_t))] with a tanh-squashed
Gaussian policy, two critics Q_1, Q_2 and their Polyak-averaged targets Q'_1, Q'_2:

    a = offset + scale * tanh(u),  u = mu(s) + sigma(s) * eps,  eps ~ N(0, I)
    log pi(a|s) = sum_i [ log N(u_i; mu_i, sigma_i) - log(scale_i (1 - tanh(u_i)^2)) ]      (App. C)
    y      = R + discount * ( min_j Q'_j(s', a') - alpha log pi(a'|s') ),  a' ~ pi(.|s')
    J_Q    = 1/2 sum_j E[ (Q_j(s, a) - y)^2 ]                                          (Eq. 5)
    J_pi   = E[ alpha log pi(a~|s) - min_j Q_j(s, a~) ],  a~ ~ pi(.|s) reparameterised  (Eq. 7)
    J_alpha = -log(alpha) * E[ log pi(a~|s) + H_target ],  H_target = -|A|            (Eq. 18)
    theta'_j <- tau theta_j + (1 - tau) theta'_j   after every update

R and discount are the replay buffer's (n-step) reward sum and gamma^n (1 - terminated); with the
default n_step = 1, y = r + gamma (1 - terminated) (...). log(1 - tanh(u)^2) is computed as
2 (log 2 - u - softplus(-2u)), which stays finite where tanh(u) rounds to +-1.

Training shape: `num_envs` envs step together as one `envs.VecEnv`; `learning_starts` env steps of
uniform random actions fill the replay buffer in `init`; then each iteration collects with the
current (stochastic) policy and runs gradient updates at the ratio `updates_per_step` (gradient
updates per env step, summed over envs; fractional or > 1), each update being one critic, one
actor and one temperature step on one minibatch, followed by the Polyak target update. At the end
of every chunk the deterministic policy offset + scale tanh(mu(s)) runs `eval_episodes` episodes:
`eval_return` in the metrics.

Differences from the paper and the official code (rail-berkeley/softlearning):
- the temperature loss is differentiated with respect to log(alpha), as the official code does
  (the paper's Eq. 18 writes alpha): both move log(alpha) in the direction of the entropy deficit;
- time-limit truncation bootstraps: the stored s' is gymnax's `info["final_observation"]` and only
  a true terminal zeroes the discount;
- optional n-step targets (`n_step`), several envs per seed, and the ratio `updates_per_step`;
- Adam runs on one flat parameter vector per network (`optax.flatten`: the same arithmetic in
  fewer kernels); lecun-normal initialisation (no QR under a vmap over seeds);
- training is cut into `num_chunks` jitted chunks (progress, logging and checkpoints in between).

Defaults are the paper's (Table 1: Adam 3e-4 for all three losses, batch 256, two hidden layers of
256, buffer 1e6, tau 0.005, gamma 0.99, one update per env step, target entropy -|A|) except
`learning_starts` 5000 (CleanRL's) and the run length. `PENDULUM` below solves Pendulum-v1 in
10k env steps on a CPU.

Run: `python -m jaxrl.algos.sac --env Pendulum-v1 --num-seeds 4`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

import envs
from jaxrl.core import config as C
from jaxrl.core.buffer import Buffer, buffer_add, buffer_init, buffer_sample
from jaxrl.core.evaluate import evaluate
from jaxrl.core.nets import QEnsemble
from jaxrl.core.offpolicy import RowPacker, Step, Transition, nstep_push, nstep_window, random_actions, update_schedule
from jaxrl.core.sac_players import Actor, SACNets, sac_gradient_step
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config:
    """SAC hyperparameters (defaults: the paper's, see the module docstring)."""

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
    """gradient updates per env step (summed over envs): the update-to-data ratio, e.g. 0.5, 1, 4"""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy"""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics"""
    alpha_lr: float = 3e-4
    """Adam learning rate of log(alpha)"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.005
    """Polyak rate of the target critics, in (0, 1]"""
    n_step: int = 1
    """steps summed in each target (1: the paper's one-step target)"""
    init_alpha: float = 1.0
    """initial entropy temperature alpha"""
    autotune: bool = True
    """tune alpha toward the target entropy (False: alpha stays init_alpha)"""
    target_entropy: float | None = None
    """entropy target of the temperature loss (None: -action_dim)"""
    hidden: tuple[int, ...] = (256, 256)
    """hidden sizes of the actor and of each critic"""
    activation: str = "relu"
    """hidden activation"""
    log_std_min: float = -20.0
    """lower clip of the policy's log standard deviation"""
    log_std_max: float = 2.0
    """upper clip of the policy's log standard deviation"""
    eval_episodes: int = 10
    """deterministic evaluation episodes at the end of each chunk (0: no evaluation)"""
    num_chunks: int = 10
    """jitted chunks the run is cut into (progress/logging/checkpoint granularity)"""

    def __post_init__(self):
        for name in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "n_step", "num_chunks"):
            C.check_positive(name, getattr(self, name))
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("learning_starts", self.learning_starts, allow_zero=True)
        C.check_positive("eval_episodes", self.eval_episodes, allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("tau", self.tau, 0.0, 1.0, lo_open=True)
        update_schedule(self.updates_per_step, self.num_envs)  # names updates_per_step
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size={self.batch_size} must be <= buffer_size={self.buffer_size}")
        if self.num_envs > self.buffer_size:
            raise ValueError(f"num_envs={self.num_envs} must be <= buffer_size={self.buffer_size} "
                             "(one vectorised step writes num_envs transitions)")
        if C.concrete(self.learning_starts, self.total_timesteps) and self.learning_starts >= self.total_timesteps:
            raise ValueError(f"learning_starts={self.learning_starts} must be < total_timesteps="
                             f"{self.total_timesteps}, or SAC never learns")
        if C.concrete(self.log_std_min, self.log_std_max) and not self.log_std_min < self.log_std_max:
            raise ValueError(f"log_std_min={self.log_std_min} must be < log_std_max={self.log_std_max}")
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        envs.spec(self.env).require("sac", discrete=False, obs_ndim=(1,),
                                    hint="Use a continuous-action env (e.g. Pendulum-v1, brax/hopper)")

    @property
    def schedule(self) -> tuple[int, int]:
        """(vectorised env steps, gradient updates) of one training iteration."""
        return update_schedule(self.updates_per_step, self.num_envs)

    @property
    def warmup_steps(self) -> int:
        """Vectorised env steps of random actions run by `init` (at least n_step - 1, to prime the
        n-step window)."""
        return max(math.ceil(self.learning_starts / self.num_envs), self.n_step - 1)

    @property
    def iters_per_chunk(self) -> int:
        vec_steps, _ = self.schedule
        remaining = self.total_timesteps - self.warmup_steps * self.num_envs
        return max(1, math.ceil(remaining / (vec_steps * self.num_envs) / self.num_chunks))


# Solves Pendulum-v1 (deterministic-eval return about -150, mean of 4 seeds) within 10k env steps
# per seed, and runs fast on a CPU: smaller networks, learning after 1k steps.
PENDULUM = dict(env="Pendulum-v1", total_timesteps=20_000, learning_starts=1_000, hidden=(64, 64),
                actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, batch_size=128, buffer_size=100_000)


# ----------------------------------------------------------------------------- networks
# The tanh-squashed Gaussian, soft target, temperature loss, actor and gradient step live in
# `jaxrl.core.sac_players` (IWOCS's SAC learner runs the same step).


def _networks(config: Config, spec) -> tuple[Actor, QEnsemble]:
    actor = Actor(spec.action_dim, tuple(config.hidden), config.activation, config.log_std_min, config.log_std_max)
    return actor, QEnsemble(tuple(config.hidden), 2, config.activation)


def _sac_nets(config: Config, spec) -> SACNets:
    low, high = spec.low(), spec.high()
    target_entropy = -float(spec.action_dim) if config.target_entropy is None else config.target_entropy
    return SACNets(*_networks(config, spec), (high - low) / 2.0, (high + low) / 2.0, target_entropy)


# ----------------------------------------------------------------------------- training


class Carry(NamedTuple):
    actor: TrainState
    critic: TrainState
    critic_target: Any
    alpha: TrainState  # params: {"log_alpha": a scalar}
    buffer: Buffer
    window: Step  # the last n_step - 1 env steps (empty for n_step = 1)
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array
    updates: jax.Array


def make_train(config: Config) -> Trainer:
    spec = envs.spec(config.env)
    env, env_params = envs.make(config.env)
    venv = envs.VecEnv(env)
    nets = _sac_nets(config, spec)
    actor, critic = nets.actor, nets.critic
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
        log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
        obs, env_state = venv.reset(jax.random.split(k_env, n_envs), env_params)
        carry = Carry(
            TrainState.create(apply_fn=actor.apply, params=actor_params, tx=adam(config.actor_lr)),
            TrainState.create(apply_fn=critic.apply, params=critic_params, tx=adam(config.critic_lr)),
            critic_params,
            TrainState.create(apply_fn=None, params={"log_alpha": log_alpha}, tx=adam(config.alpha_lr)),
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
            action, _ = nets.sample(carry.actor.params, carry.obs, k_act)
        next_obs, env_state, reward, term, trunc, info = venv.step(
            jax.random.split(k_env, n_envs), carry.env_state, action, env_params)
        done = jnp.logical_or(term, trunc)
        step = Step(carry.obs, action, reward, term, done, info["final_observation"])
        window, transition = nstep_push(carry.window, step, config.gamma)
        buffer = buffer_add(carry.buffer, rows.pack(transition)) if write else carry.buffer
        carry = carry._replace(buffer=buffer, window=window, env_state=env_state, obs=next_obs,
                               env_steps=carry.env_steps + n_envs)
        return carry, (info["episode_return"], done)

    def gradient_update(carry: Carry, xs):
        """One critic, actor and temperature step on one minibatch, then the Polyak update."""
        batch, key = xs
        carry, out = sac_gradient_step(nets, carry, batch, key, config.tau, config.autotune)
        return carry._replace(updates=carry.updates + 1), out

    def iteration(carry: Carry, _):
        """Env steps with the current policy, then gradient updates on minibatches drawn all at
        once from the buffer."""
        key, k_env, k_batch, k_upd = jax.random.split(carry.key, 4)
        carry, episodes = jax.lax.scan(lambda c, k: env_step(c, k, random=False), carry._replace(key=key),
                                       jax.random.split(k_env, vec_steps))
        batches = rows.unpack(buffer_sample(carry.buffer, k_batch, num_updates * config.batch_size))
        batches = jax.tree.map(lambda x: x.reshape((num_updates, config.batch_size) + x.shape[1:]), batches)
        carry, losses = jax.lax.scan(gradient_update, carry, (batches, jax.random.split(k_upd, num_updates)))
        return carry, (episodes, losses)

    def policy(params):
        return lambda obs, key: nets.mode(params, obs)

    def update(carry: Carry):
        carry, ((returns, done), losses) = jax.lax.scan(iteration, carry, None, config.iters_per_chunk)
        key, k_eval = jax.random.split(carry.key)
        carry = carry._replace(key=key)
        if config.eval_episodes > 0:
            eval_return, _ = evaluate(env, env_params, policy(carry.actor.params), k_eval,
                                      config.eval_episodes, spec.max_steps)
        else:
            eval_return = jnp.float32(jnp.nan)
        c_loss, a_loss, q_mean, entropy, alpha = losses  # [iterations, updates] each
        metrics = {
            "env_steps": carry.env_steps,
            **episode_metrics(returns, done),
            "eval_return": eval_return,
            "critic_loss": c_loss.mean(),
            "actor_loss": a_loss.mean(),
            "q_mean": q_mean.mean(),
            "entropy": entropy.mean(),
            "alpha": alpha[-1, -1],
            "updates": carry.updates,
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, carry: Carry, deterministic: bool = True):
    """`act(obs, key) -> action` for one observation, from a (single-seed) carry: offset + scale
    tanh(mu(s)) when `deterministic`, else a sample of the squashed Gaussian."""
    nets = _sac_nets(config, envs.spec(config.env))

    def act(obs, key):
        if deterministic:
            return nets.mode(carry.actor.params, obs)
        return nets.sample(carry.actor.params, obs, key)[0]

    return act


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
