"""RARL: Robust Adversarial Reinforcement Learning (Pinto, Davidson, Sukthankar & Gupta, ICML 2017,
arXiv:1703.02702).

A zero-sum Markov game between a protagonist mu and an adversary nu that pushes on the system:

    max_mu min_nu  E[ sum_t gamma^t r(s_t, a_t, a_bar_t) ],   a_t ~ mu(s_t), a_bar_t ~ nu(s_t)

the adversary receiving -r. Training alternates (the paper's Algorithm 1): for N_iter iterations,
roll out both policies and update mu for `pro_iters` rounds with nu frozen, then roll out and update
nu for `adv_iters` rounds with mu frozen. The adversary's action is a bounded force (CartPole: a
horizontal push on the cart; brax: world-frame forces on named links, RARL's hopper set being
`foot_force_x foot_force_z`; see `envs.robust.Adversarial`), clipped to +-`force_bound`.

Differences from the paper:
- both players learn by PPO (the clipped surrogate, GAE; `jaxrl.core.ppo_players`) instead of
  TRPO; one rollout of `num_envs` x `num_steps` per round, both players sampling;
- the whole alternation runs in one `lax.scan` per chunk; the robust evaluation is part of the
  metrics: with `eval_points` > 0, at the end of each chunk the deterministic protagonist (no
  adversary) runs `eval_episodes` episodes at every point of a grid over the uncertainty set
  `robust_set` (default: the env's reference set, `envs.robust.SETS`), and `eval_worst` /
  `eval_mean` are the minimum and mean of the points' returns.
- the force bound of RRLS's RARL sets is 3 per component; CartPole's own push is 10.

Run: `python -m jaxrl.algos.rarl --env CartPole-v1 --num-seeds 4`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState

import envs
import envs.robust as robust
from jaxrl.core import config as C
from jaxrl.core.ppo_players import Player, act, check_settings, init_player, zero_sum_phase
from jaxrl.core.robust_eval import grid_returns
from jaxrl.core.train import Trainer


@dataclass(frozen=True)
class Config:
    """RARL hyperparameters (PPO defaults of PureJaxRL's CartPole config)."""

    env: str = "CartPole-v1"
    """environment name (an env `envs.robust.Adversarial` supports)"""
    channels: tuple[str, ...] = ("cart_force",)
    """what the adversary acts on: `cart_force` (CartPole), forces on brax links (`<link>_force_<axis>`,
    e.g. `foot_force_x foot_force_z` on brax/hopper) or dynamics parameters of the env"""
    force_bound: float = 3.0
    """each adversary action entry is clipped to +-force_bound"""
    total_timesteps: int = 400_000
    """env steps per seed over both players' rollouts (rounded up to whole chunks)"""
    pro_iters: int = 1
    """protagonist rounds per iteration (N_mu)"""
    adv_iters: int = 1
    """adversary rounds per iteration (N_nu)"""
    num_envs: int = 8
    """parallel envs per seed"""
    num_steps: int = 128
    """steps per env per rollout"""
    update_epochs: int = 4
    """PPO passes over each rollout"""
    num_minibatches: int = 4
    """minibatches per epoch; must divide num_envs * num_steps"""
    lr: float = 2.5e-4
    """Adam learning rate of both players"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_eps: float = 0.2
    """PPO clipping epsilon"""
    ent_coef: float = 0.01
    """protagonist's entropy bonus"""
    adv_ent_coef: float = 0.01
    """adversary's entropy bonus"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    reward_scale: float = 1.0
    """multiplies the env's reward in the PPO targets (returns are reported unscaled); Pendulum: 0.1"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden sizes of both players' actor and critic"""
    robust_set: tuple[tuple[str, float, float], ...] = ()
    """uncertainty set of the evaluation, ((name, low, high), ...); empty: the env's reference set"""
    eval_points: int = 0
    """grid points per parameter of the robust evaluation (0: no evaluation)"""
    eval_episodes: int = 1
    """episodes per grid point"""
    num_chunks: int = 10
    """jitted chunks the run is cut into"""

    def __post_init__(self):
        check_settings(self)
        for name in ("total_timesteps", "pro_iters", "adv_iters", "num_chunks", "eval_episodes", "lr",
                     "max_grad_norm"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("force_bound", self.force_bound)
        C.check_positive("ent_coef", self.ent_coef, allow_zero=True)
        C.check_positive("adv_ent_coef", self.adv_ent_coef, allow_zero=True)
        C.check_positive("eval_points", self.eval_points, allow_zero=True)
        if self.eval_points == 1:
            raise ValueError("eval_points must be 0 or >= 2, got 1")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        envs.spec(self.env)
        robust.Adversarial(robust.make_robust(self.env)[0], self.env, self.force_bound, self.channels)
        uncertainty_set(self)

    @property
    def steps_per_iteration(self) -> int:
        return (self.pro_iters + self.adv_iters) * self.num_envs * self.num_steps

    @property
    def iterations_per_chunk(self) -> int:
        return math.ceil(self.total_timesteps / self.steps_per_iteration / self.num_chunks)


def uncertainty_set(config) -> robust.UncertaintySet:
    if config.robust_set:
        return robust.UncertaintySet(config.env, config.robust_set)
    return robust.reference_set(config.env)


class Carry(NamedTuple):
    pro: TrainState
    adv: TrainState
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array


def make_train(config: Config) -> Trainer:
    base, env_params = robust.make_robust(config.env, episode_stats=False)
    game = robust.Adversarial(base, config.env, config.force_bound, config.channels)
    venv = envs.VecEnv(envs.EpisodeStats(game))
    spec = envs.spec_of(game, env_params, config.env)
    obs_dim = math.prod(spec.obs_shape)
    pro_net = Player(spec.action_dim, spec.discrete, tuple(config.hidden))
    adv_net = Player(spec.adversary.action_dim, False, tuple(config.hidden))
    eval_env, _ = robust.make_robust(config.env)
    uset = uncertainty_set(config)

    def init(key) -> Carry:
        k_pro, k_adv, k_env, key = jax.random.split(key, 4)
        pro = init_player(k_pro, pro_net, obs_dim, config.lr, config.max_grad_norm)
        adv = init_player(k_adv, adv_net, obs_dim, config.lr, config.max_grad_norm)
        obs, env_state = venv.reset(jax.random.split(k_env, config.num_envs), env_params)
        return Carry(pro, adv, env_state, obs, key, jnp.int32(0))

    def rounds(carry: Carry, learner: str, n: int):
        def one(c: Carry, k):
            ph = zero_sum_phase(learner, pro_net, adv_net, c.pro, c.adv, venv, env_params, c.env_state, c.obs,
                                k, config, pro_ent=config.ent_coef, adv_ent=config.adv_ent_coef)
            steps = c.env_steps + config.num_envs * config.num_steps
            return c._replace(pro=ph.pro, adv=ph.adv, env_state=ph.env_state, obs=ph.obs, env_steps=steps), ph.metrics

        key, k = jax.random.split(carry.key)
        carry, m = jax.lax.scan(one, carry._replace(key=key), jax.random.split(k, n))
        return carry, m

    def iteration(carry: Carry, _):
        carry, m_pro = rounds(carry, "pro", config.pro_iters)
        carry, m_adv = rounds(carry, "adv", config.adv_iters)
        return carry, {**m_pro, **m_adv}

    def update(carry: Carry):
        carry, m = jax.lax.scan(iteration, carry, None, config.iterations_per_chunk)
        metrics = {k: jnp.nanmean(v) if k.endswith("_return") else v.reshape(-1)[-1] for k, v in m.items()}
        metrics["return"] = metrics["pro_return"]
        metrics["env_steps"] = carry.env_steps
        if config.eval_points:
            key, k_eval = jax.random.split(carry.key)
            res = grid_returns(eval_env, env_params, uset, uset.grid(config.eval_points),
                               make_policy(config, carry.pro), k_eval, config.eval_episodes, spec.max_steps)
            metrics.update(eval_worst=res.worst, eval_mean=res.mean)
            carry = carry._replace(key=key)
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, pro: TrainState):
    """`act(obs, key) -> action`: the deterministic protagonist, for one observation."""
    spec = envs.spec(config.env)
    net = Player(spec.action_dim, spec.discrete, tuple(config.hidden))

    def policy(obs, key):
        a = act(net, pro.params, obs[None], key, deterministic=True)[0][0]
        return a if spec.discrete else jnp.clip(a, spec.low(), spec.high())

    return policy


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
