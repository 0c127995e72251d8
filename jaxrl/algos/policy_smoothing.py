"""Policy Smoothing: provably robust RL against observation attacks (Kumar, Levine & Feizi, ICLR
2022, arXiv:2106.11420).

The smoothed policy acts on a noisy observation, pi(o_t + delta_t + eta_t) with eta_t ~ N(0, sigma^2 I),
where delta_t is an adaptive adversary's perturbation (it may depend on everything seen so far)
with a budget over the whole episode, sqrt(sum_t ||delta_t||_2^2) <= B (B = epsilon sqrt(T) for a
per-step bound epsilon over T steps). The paper's adaptive Neyman-Pearson lemma bounds the attacked
distribution of the total reward R at every threshold x:

    P_adv[R >= x] >= Phi( Phi^-1( P_clean[R >= x] ) - B / sigma )                     (Thm. 1)

and with E[R] = lower + int_lower^inf P[R >= x] dx over n clean smoothed episodes with sorted
returns v_(1) <= ... <= v_(n) (v_(0) = `lower`, a lower bound of R; 0 for non-negative rewards)
the certified expected reward, holding with probability >= 1 - alpha, is

    E_adv[R] >= lower + sum_i (v_(i) - v_(i-1)) Phi( Phi^-1( max(0, (n-i+1)/n - eps_DKW) ) - B / sigma )
    eps_DKW = sqrt( ln(2 / alpha) / (2 n) )          (Dvoretzky-Kiefer-Wolfowitz band)

(`certified_reward`). Training (as the paper's) uses the same Gaussian noise: here PPO (the
clipped surrogate with GAE, `jaxrl.core.ppo_players`) on `envs.robust.ObservationNoise(env, sigma)`.
With `cert_episodes` > 0, each chunk ends with `cert_episodes` smoothed episodes of the
deterministic policy: `smoothed_return` (their mean) and `certified_return` (the bound at the
per-step budget `epsilon`, confidence 1 - `alpha`).

Differences from the paper's code: PPO instead of DQN; no frame stacking; the DKW certificate for
every env (the paper's CartPole variant, Clopper-Pearson bounds per integer threshold with a
Bonferroni correction, is not implemented); the default n is smaller than its 10,000.

Run: `python -m jaxrl.algos.policy_smoothing --env CartPole-v1 --sigma 0.2`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState
from jax.scipy.special import ndtr, ndtri

import envs
import envs.robust as robust
from jaxrl.core import config as C
from jaxrl.core.evaluate import evaluate
from jaxrl.core.ppo_players import Player, act, advantages, check_settings, init_player, ppo_update, rollout
from jaxrl.core.train import Trainer, episode_metrics


def budget(epsilon: float, steps) -> jax.Array:
    """The episode's l2 budget B = epsilon sqrt(T) of a per-step l2 bound epsilon over T steps."""
    return epsilon * jnp.sqrt(jnp.asarray(steps, jnp.float32))


def dkw_margin(n: int, alpha: float) -> float:
    """eps with P(sup_x |F_n(x) - F(x)| > eps) <= alpha (the DKW inequality, Massart's constant)."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def attacked_tail(p_clean, budget_l2, sigma):
    """Thm. 1: the least P_adv[R >= x] given P_clean[R >= x] = p_clean, for budget B and noise sigma."""
    return ndtr(ndtri(jnp.clip(p_clean, 0.0, 1.0)) - budget_l2 / sigma)


def certified_reward(returns, sigma: float, budget_l2, alpha: float = 0.05, lower: float = 0.0):
    """Lower bound on the expected total reward of the smoothed policy under any adaptive attack
    with l2 budget `budget_l2`, from the total rewards `returns` of n clean smoothed episodes;
    holds with probability >= 1 - alpha. Every return must be >= `lower`."""
    v = jnp.sort(jnp.asarray(returns, jnp.float32))
    n = v.shape[0]
    p_hat = (n - jnp.arange(n)) / n  # P[R >= v_(i)] empirically, i = 1..n
    p_low = jnp.maximum(p_hat - dkw_margin(n, alpha), 0.0)
    steps = jnp.diff(jnp.concatenate([jnp.array([lower], jnp.float32), v]))
    return lower + jnp.sum(steps * attacked_tail(p_low, budget_l2, sigma))


@dataclass(frozen=True)
class Config:
    """Noise-trained PPO and its certificate (PPO defaults of PureJaxRL's CartPole config)."""

    env: str = "CartPole-v1"
    """environment name"""
    sigma: float = 0.2
    """std of the Gaussian observation noise, in training and in the smoothed policy"""
    epsilon: float = 0.05
    """per-step l2 attack bound of the certificate in the metrics (B = epsilon sqrt(T))"""
    alpha: float = 0.05
    """the certificate holds with probability >= 1 - alpha"""
    cert_episodes: int = 0
    """smoothed episodes per chunk for smoothed_return / certified_return (0: none)"""
    reward_lower: float = 0.0
    """a lower bound of the total reward (0 for non-negative rewards)"""
    total_timesteps: int = 500_000
    """env steps per seed (rounded up to whole chunks)"""
    num_envs: int = 4
    """parallel envs per seed"""
    num_steps: int = 128
    """steps per env per rollout"""
    update_epochs: int = 4
    """PPO passes over each rollout"""
    num_minibatches: int = 4
    """minibatches per epoch; must divide num_envs * num_steps"""
    lr: float = 2.5e-4
    """Adam learning rate"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_eps: float = 0.2
    """PPO clipping epsilon"""
    ent_coef: float = 0.01
    """entropy bonus"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    reward_scale: float = 1.0
    """multiplies the env's reward in the PPO targets (returns are reported unscaled); Pendulum: 0.1"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden sizes of actor and critic"""
    num_chunks: int = 10
    """jitted chunks the run is cut into"""

    def __post_init__(self):
        check_settings(self)
        for name in ("total_timesteps", "num_chunks", "lr", "max_grad_norm"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("sigma", self.sigma)
        C.check_positive("epsilon", self.epsilon, allow_zero=True)
        C.check_range("alpha", self.alpha, 0.0, 1.0, lo_open=True, hi_open=True)
        C.check_positive("cert_episodes", self.cert_episodes, allow_zero=True)
        C.check_positive("ent_coef", self.ent_coef, allow_zero=True)
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        envs.spec(self.env)

    @property
    def updates_per_chunk(self) -> int:
        return math.ceil(self.total_timesteps / (self.num_envs * self.num_steps) / self.num_chunks)


class Carry(NamedTuple):
    ts: TrainState
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array


def make_train(config: Config) -> Trainer:
    base, env_params = robust.make_robust(config.env, episode_stats=False)
    noisy = envs.EpisodeStats(robust.ObservationNoise(base, config.sigma))
    venv = envs.VecEnv(noisy)
    spec = envs.spec(config.env)
    net = Player(spec.action_dim, spec.discrete, tuple(config.hidden))
    obs_dim = math.prod(spec.obs_shape)

    def init(key) -> Carry:
        k_net, k_env, key = jax.random.split(key, 3)
        ts = init_player(k_net, net, obs_dim, config.lr, config.max_grad_norm)
        obs, env_state = venv.reset(jax.random.split(k_env, config.num_envs), env_params)
        return Carry(ts, env_state, obs, key, jnp.int32(0))

    def step(carry: Carry, _):
        key, k_roll, k_upd = jax.random.split(carry.key, 3)

        def act_fn(o, k):
            a, lp, v = act(net, carry.ts.params, o, k)
            env_a = a if spec.discrete else jnp.clip(a, spec.low(), spec.high())
            return env_a, dict(obs=o, a=a, lp=lp, v=v)

        env_state, obs, traj = rollout(venv, env_params, carry.env_state, carry.obs, k_roll, act_fn,
                                       config.num_steps, config.num_envs)
        r = traj.record
        batch = advantages(net, carry.ts.params, r["obs"], r["a"], r["lp"], r["v"], traj.final_obs, traj.reward,
                           traj.terminated, traj.done, config, config.ent_coef)
        ts, aux = ppo_update(net, carry.ts, batch, k_upd, config)
        steps = carry.env_steps + config.num_envs * config.num_steps
        return Carry(ts, env_state, obs, key, steps), (aux, (traj.episode_return, traj.done))

    def update(carry: Carry):
        carry, (aux, (returns, done)) = jax.lax.scan(step, carry, None, config.updates_per_chunk)
        metrics = {k: v[-1] for k, v in aux.items()}
        metrics.update(episode_metrics(returns, done), env_steps=carry.env_steps)
        if config.cert_episodes:
            key, k_eval = jax.random.split(carry.key)
            _, rets = evaluate(noisy, env_params, make_policy(config, carry.ts), k_eval, config.cert_episodes,
                               spec.max_steps)
            metrics.update(smoothed_return=rets.mean(), certified_return=certified_reward(
                rets, config.sigma, budget(config.epsilon, spec.max_steps), config.alpha, config.reward_lower))
            carry = carry._replace(key=key)
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, ts: TrainState):
    """`act(obs, key) -> action` of the deterministic base policy for one observation; run it on
    `ObservationNoise(env, sigma)` to act as the smoothed policy."""
    spec = envs.spec(config.env)
    net = Player(spec.action_dim, spec.discrete, tuple(config.hidden))

    def policy(obs, key):
        a = act(net, ts.params, obs[None], key, deterministic=True)[0][0]
        return a if spec.discrete else jnp.clip(a, spec.low(), spec.high())

    return policy


def smoothed_returns(config: Config, ts: TrainState, key, num_episodes: int, sigma: float | None = None):
    """Total rewards of `num_episodes` episodes of the smoothed policy (noise `sigma`, default the
    config's), each until its first end or the time limit."""
    base, env_params = robust.make_robust(config.env)
    noisy = robust.ObservationNoise(base, config.sigma if sigma is None else sigma)
    return evaluate(noisy, env_params, make_policy(config, ts), key, num_episodes,
                    envs.spec(config.env).max_steps)[1]


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
