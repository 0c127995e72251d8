"""QARL: Quantal Adversarial RL, robust adversarial RL via bounded-rationality curricula (Reddi,
Tölle, Peters, Chalvatzaki & D'Eramo, ICLR 2024, arXiv:2311.01642).

RARL's zero-sum game (protagonist mu gets r, adversary nu gets -r) with entropy regularisation:

    max_mu min_nu  E[ sum_t gamma^t ( r(s_t, a_t, a_bar_t) + alpha_p H(mu(.|s_t)) - alpha_adv H(nu(.|s_t)) ) ]

whose solution is a quantal response equilibrium; as alpha_adv -> 0 the adversary becomes fully
rational (RARL's Nash equilibrium). The adversary's temperature alpha_adv is part of its observation
and a curriculum anneals it from a near-random adversary toward full rationality:

- `curriculum="spdl"` (the paper's): self-paced learning (Klink et al.) over a Gamma(k, rate)
  distribution of temperatures, from k = k_start (mean 0.05 at rate 1000) toward the target
  k = k_target (mean 0.001). After every `spdl_min_samples` pairs (T, G), the next k minimises
  KL(p_k || p_target) subject to KL(p_k || p_old) <= `kl_bound` and the importance-weighted
  protagonist performance E_{p_old}[p_k(T) / p_old(T) G] >= `perf_lb`, G the protagonist's
  discounted return with an adversary of temperature T; it stops once KL(p_old || p_target) <= 0.01.
- `curriculum="linear"` (the paper's ablation): one temperature for every env, falling linearly
  from k_start/rate to k_target/rate over the first `linear_fraction` (2/3) of the iterations.

Each iteration samples one temperature per env, then runs RARL's alternation (`pro_iters` rounds of
the protagonist, `adv_iters` rounds of the adversary, `num_steps` env steps per env a round).
Learners (`learner`):
- `ppo` (default; discrete or continuous actions): each round is one rollout of both players, then a
  PPO update of the one in training (`jaxrl.core.ppo_players`);
- `sac`, the paper's (continuous actions): both players are SAC (`jaxrl.core.sac_players`; actor
  and twin soft critics). Each env step of a round stores (s, log T, a, a_bar, r, s') in one replay
  buffer, then takes `num_envs` gradient steps of the player in training: the protagonist on
  (s, a, r) with automatic alpha, the adversary on (s + log T, a_bar, -r) with alpha = T, the
  temperature of each stored transition (the code sets the adversary's log alpha to log T; it never
  learns alpha). The first `learning_starts` env steps act uniformly at random and update nothing.

Differences from the paper and its code (MushroomRL SAC, DeepMind Control two-player suites):
- with `learner="ppo"` both players learn by PPO; the adversary's entropy coefficient is its sampled
  temperature (the code sets SAC's alpha to it), the protagonist's a fixed `ent_coef` (the code:
  SAC's auto-alpha);
- with `learner="sac"`: the code alternates whole episodes (5 of the adversary, then 5 of the
  protagonist) and fits every 3 steps from its own buffer per player, after a 3000-step initial
  replay; here rounds of `num_steps` steps, one shared buffer, `num_envs` gradient steps per env
  step, and SPDL's G is the protagonist's mean discounted return over its round (bootstrapped from
  its critics at the round's end and at truncations, as PPO's lambda-return with lambda = 1);
- the adversary observes log(temperature) appended to the state (the code appends the temperature);
- SPDL's 1-D problem is solved inside the JAX program by checking `spdl_candidates` values of k
  evenly spaced between k_target and the current k (the code: scipy's `minimize`), so the curriculum
  never moves back toward higher temperatures. Like the code it waits for a buffer of at least
  `spdl_min_samples` (30) pairs (T, G), here `num_envs` per iteration, solves, and empties the
  buffer; G is the protagonist's mean lambda-return (PPO) or discounted return (SAC) over its round
  in that env, not one episode's return.
- the adversary is `envs.robust.Adversarial`: on CartPole a bounded push on the cart; on brax, the
  code's planar forces on named bodies (hopper: `foot_force_x`, `foot_force_z`) enter brax's
  generalized pipeline as the equivalent generalized force, where the code sets MuJoCo's
  `xfrc_applied`.

Run: `python -m jaxrl.algos.qarl --env CartPole-v1 --curriculum linear`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState
from jax.scipy.special import digamma, gammaln

import envs
import envs.robust as robust
from jaxrl.core import config as C
from jaxrl.core.buffer import buffer_add, buffer_init, buffer_sample
from jaxrl.core.nets import QEnsemble
from jaxrl.core.offpolicy import RowPacker, Transition, random_actions
from jaxrl.core.ppo_players import Player, act, check_settings, init_player, rollout, zero_sum_phase
from jaxrl.core.returns import lambda_returns
from jaxrl.core.sac_players import Actor, SACNets, sac_gradient_step
from jaxrl.core.robust_eval import grid_returns
from jaxrl.core.train import Trainer


@dataclass(frozen=True)
class Config:
    """QARL hyperparameters (curriculum: the paper's; PPO: PureJaxRL's CartPole config)."""

    env: str = "CartPole-v1"
    """environment name (an env `envs.robust.Adversarial` supports)"""
    channels: tuple[str, ...] = ("cart_force",)
    """what the adversary acts on: `cart_force` (CartPole), forces on brax links (`<link>_force_<axis>`,
    e.g. `foot_force_x foot_force_z` on brax/hopper) or dynamics parameters of the env"""
    force_bound: float = 3.0
    """each adversary action entry is clipped to +-force_bound"""
    curriculum: str = "spdl"
    """temperature curriculum: spdl (self-paced, the paper's) or linear (its ablation)"""
    k_start: float = 50.0
    """initial Gamma concentration of the temperature (mean k / rate = 0.05)"""
    k_target: float = 1.0
    """target Gamma concentration (mean 0.001)"""
    gamma_rate: float = 1000.0
    """Gamma rate of the temperature distribution"""
    kl_bound: float = 0.5
    """spdl: largest KL(p_new || p_old) per iteration"""
    perf_lb: float = 10.0
    """spdl: least importance-weighted protagonist return G of the new distribution (G on the
    scaled rewards, with this config's gamma). The default suits +1-per-step envs (CartPole, brax);
    where returns are negative (Pendulum) 10 is never reached and the temperatures never move: the
    robust benchmark uses -4 (PPO) / -100 (SAC) there; watch the `performance` metric"""
    spdl_candidates: int = 64
    """spdl: values of k checked per update"""
    spdl_min_samples: int = 30
    """spdl: (temperature, return) pairs buffered before each update (the code: 30)"""
    linear_fraction: float = 2.0 / 3.0
    """linear: fraction of the iterations over which the temperature falls"""
    total_timesteps: int = 400_000
    """env steps per seed over both players' rollouts (rounded up to whole chunks)"""
    pro_iters: int = 1
    """protagonist rounds per iteration"""
    adv_iters: int = 1
    """adversary rounds per iteration"""
    num_envs: int = 8
    """parallel envs per seed (one temperature each)"""
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
    """protagonist's entropy bonus alpha_p"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    reward_scale: float = 1.0
    """multiplies the env's reward in the PPO targets (returns are reported unscaled); Pendulum: 0.1"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden sizes of both players' actor and critic"""
    learner: str = "ppo"
    """both players' learner: ppo (discrete or continuous actions) or sac (continuous; the paper's);
    sac ignores the PPO fields (update_epochs ... max_grad_norm) and ent_coef"""
    batch_size: int = 256
    """sac: transitions per gradient update"""
    buffer_size: int = 100_000
    """sac: replay capacity (one buffer of both players' transitions)"""
    learning_starts: int = 1_000
    """sac: env steps (all envs) of uniform random actions for both players before any update"""
    actor_lr: float = 3e-4
    """sac: Adam learning rate of the actors and the protagonist's temperature"""
    critic_lr: float = 1e-3
    """sac: Adam learning rate of the critics"""
    tau: float = 0.005
    """sac: Polyak rate of the target critics"""
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
                     "max_grad_norm", "k_start", "k_target", "gamma_rate", "kl_bound", "spdl_candidates",
                     "spdl_min_samples"):
            C.check_positive(name, getattr(self, name))
        C.check_choice("curriculum", self.curriculum, ("spdl", "linear"))
        C.check_choice("learner", self.learner, ("ppo", "sac"))
        if self.learner == "sac":
            C.check_sac_learner(self, "qarl", "total_timesteps")
        if self.k_target > self.k_start:
            raise ValueError(f"k_target must be <= k_start (the adversary grows more rational), got "
                             f"k_target={self.k_target} > k_start={self.k_start}")
        C.check_range("linear_fraction", self.linear_fraction, 0.0, 1.0, lo_open=True)
        C.check_positive("force_bound", self.force_bound)
        C.check_positive("ent_coef", self.ent_coef, allow_zero=True)
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

    @property
    def num_iterations(self) -> int:
        return self.iterations_per_chunk * self.num_chunks


def uncertainty_set(config) -> robust.UncertaintySet:
    if config.robust_set:
        return robust.UncertaintySet(config.env, config.robust_set)
    return robust.reference_set(config.env)


# ------------------------------------------------------------------------------ temperature curriculum

def gamma_kl(k1, k2):
    """KL(Gamma(k1, b) || Gamma(k2, b)) for one rate b: (k1 - k2) psi(k1) - ln G(k1) + ln G(k2)."""
    return (k1 - k2) * digamma(k1) - gammaln(k1) + gammaln(k2)


def gamma_logpdf(t, k, rate):
    return k * jnp.log(rate) + (k - 1.0) * jnp.log(t) - rate * t - gammaln(k)


def linear_temperature(config: Config, iteration):
    """The ablation's temperature at `iteration` (0-based): k_start/rate falling linearly to
    k_target/rate over the first `linear_fraction` of the iterations, then constant."""
    span = max(1.0, config.linear_fraction * config.num_iterations)
    frac = jnp.clip(jnp.asarray(iteration, jnp.float32) / span, 0.0, 1.0)
    return (config.k_start + frac * (config.k_target - config.k_start)) / config.gamma_rate


def spdl_step(config: Config, k_old, temps, perf):
    """The next concentration: the feasible k in [k_target, k_old] closest to the target (see the
    module docstring); k_old when none is feasible or the target is reached."""
    cands = config.k_target + (k_old - config.k_target) * jnp.linspace(0.0, 1.0, config.spdl_candidates)
    weights = jnp.exp(gamma_logpdf(temps[None], cands[:, None], config.gamma_rate)
                      - gamma_logpdf(temps[None], k_old, config.gamma_rate))
    ok = (gamma_kl(cands, k_old) <= config.kl_bound) & ((weights * perf[None]).mean(1) >= config.perf_lb)
    best = jnp.min(jnp.where(ok, cands, jnp.inf))  # KL to the target grows with k above k_target
    done = gamma_kl(k_old, config.k_target) <= 0.01
    return jnp.where(jnp.isfinite(best) & ~done, best, k_old)


def spdl_rows(config: Config) -> int:
    """Iterations of `num_envs` pairs that hold at least `spdl_min_samples` pairs."""
    return math.ceil(config.spdl_min_samples / config.num_envs)


def spdl_buffered(config: Config, k, buffer, filled, temps, perf):
    """Buffer this iteration's pairs; once `spdl_rows` iterations are in, take an SPDL step on all of
    them and empty the buffer. Returns (k, buffer, filled)."""
    buffer = buffer.at[filled].set(jnp.stack([temps, perf]))
    full = filled + 1 == buffer.shape[0]
    k_new = spdl_step(config, k, buffer[:, 0].reshape(-1), buffer[:, 1].reshape(-1))
    return jnp.where(full, k_new, k), buffer, jnp.where(full, 0, filled + 1)


def sample_temperatures(config: Config, key, k, iteration):
    """One temperature per env: Gamma(k, rate) samples (spdl) or the linear schedule's value."""
    if config.curriculum == "linear":
        return jnp.full((config.num_envs,), linear_temperature(config, iteration))
    t = jax.random.gamma(key, k, (config.num_envs,)) / config.gamma_rate
    return jnp.maximum(t, 1e-8)


# ----------------------------------------------------------------------------------------- training

class SACPlayer(NamedTuple):
    """One SAC player: actor, twin soft critics with their target, temperature."""

    actor: TrainState
    critic: TrainState
    critic_target: Any
    alpha: TrainState


def sac_nets(config: Config, action_dim: int, low, high) -> SACNets:
    """A player's SAC networks over the action box [low, high] (ReLU MLPs of `hidden`, log std in
    [-20, 2] as the code, target entropy -|A|)."""
    actor = Actor(action_dim, tuple(config.hidden), "relu", -20.0, 2.0)
    low, high = jnp.broadcast_to(low, (action_dim,)), jnp.broadcast_to(high, (action_dim,))
    return SACNets(actor, QEnsemble(tuple(config.hidden), 2), (high - low) / 2.0, (high + low) / 2.0,
                   -float(action_dim))


def init_sac(key, config: Config, nets: SACNets, obs_dim: int) -> SACPlayer:
    k_actor, k_critic = jax.random.split(key)
    o, a = jnp.zeros((1, obs_dim)), jnp.zeros((1, nets.scale.shape[0]))
    ap, cp = nets.actor.init(k_actor, o), nets.critic.init(k_critic, o, a)
    state = lambda p, lr: TrainState.create(apply_fn=None, params=p, tx=optax.adam(lr))
    return SACPlayer(state(ap, config.actor_lr), state(cp, config.critic_lr), cp,
                     state({"log_alpha": jnp.float32(0.0)}, config.actor_lr))


class Carry(NamedTuple):
    pro: Any  # a PPO TrainState or a SACPlayer
    adv: Any
    env_state: Any
    obs: jax.Array
    k: jax.Array  # Gamma concentration of the temperature (spdl)
    buffer: jax.Array  # [rows, 2, num_envs] (temperature, performance) pairs awaiting the next spdl update
    filled: jax.Array  # rows of `buffer` filled
    iteration: jax.Array
    key: jax.Array
    env_steps: jax.Array
    replay: Any = None  # sac: the replay buffer (rows of (s + log T, (a, a_bar), r, discount, s' + log T))


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
    sac = config.learner == "sac"
    n, a_dim, adv_dim = config.num_envs, spec.action_dim, spec.adversary.action_dim
    if sac:
        pro_sac = sac_nets(config, a_dim, spec.low(), spec.high())
        adv_sac = sac_nets(config, adv_dim, -config.force_bound, config.force_bound)
        rows = RowPacker(Transition(jnp.zeros(obs_dim + 1), jnp.zeros(a_dim + adv_dim), 0.0, 0.0,
                                    jnp.zeros(obs_dim + 1)))

    def init(key) -> Carry:
        k_pro, k_adv, k_env, key = jax.random.split(key, 4)
        if sac:
            pro, adv = init_sac(k_pro, config, pro_sac, obs_dim), init_sac(k_adv, config, adv_sac, obs_dim + 1)
        else:
            pro = init_player(k_pro, pro_net, obs_dim, config.lr, config.max_grad_norm)
            adv = init_player(k_adv, adv_net, obs_dim + 1, config.lr, config.max_grad_norm)
        obs, env_state = venv.reset(jax.random.split(k_env, config.num_envs), env_params)
        buffer = jnp.zeros((spdl_rows(config), 2, config.num_envs), jnp.float32)
        replay = buffer_init(rows.row, config.buffer_size) if sac else None
        return Carry(pro, adv, env_state, obs, jnp.float32(config.k_start), buffer, jnp.int32(0), jnp.int32(0), key,
                     jnp.int32(0), replay)

    def sac_step(c: Carry, key, learner: str, temps):
        """One env step of both players into the replay buffer (uniform random actions in the first
        `learning_starts` steps), then `num_envs` SAC gradient steps of `learner` (none in the warm-up)."""
        k_roll, k_upd = jax.random.split(key)
        warm = c.env_steps < config.learning_starts
        log_t = jnp.log(temps)[:, None]

        def act_fn(o, k):
            k_p, k_a, k_rp, k_ra = jax.random.split(k, 4)
            ao = jnp.concatenate([o, log_t], -1)
            a_p = jnp.where(warm, random_actions(k_rp, spec, n), pro_sac.sample(c.pro.actor.params, o, k_p)[0])
            a_a = jnp.where(warm, jax.random.uniform(k_ra, (n, adv_dim), minval=-config.force_bound,
                                                     maxval=config.force_bound),
                            adv_sac.sample(c.adv.actor.params, ao, k_a)[0])
            return (a_p, a_a), dict(obs=ao, action=jnp.concatenate([a_p, a_a], -1))

        env_state, obs, traj = rollout(venv, env_params, c.env_state, c.obs, k_roll, act_fn, 1, n)
        traj = jax.tree.map(lambda x: x[0], traj)
        t = Transition(traj.record["obs"], traj.record["action"], traj.reward * config.reward_scale,
                       config.gamma * (1.0 - traj.terminated.astype(jnp.float32)),
                       jnp.concatenate([traj.final_obs, log_t], -1))
        replay = buffer_add(c.replay, rows.pack(t))

        def gradient_step(player, k):
            k_batch, k_sac = jax.random.split(k)
            b = rows.unpack(buffer_sample(replay, k_batch, config.batch_size))
            if learner == "pro":
                b = Transition(b.obs[:, :-1], b.action[:, :a_dim], b.reward, b.discount, b.next_obs[:, :-1])
                return sac_gradient_step(pro_sac, player, b, k_sac, config.tau)
            b = Transition(b.obs, b.action[:, a_dim:], -b.reward, b.discount, b.next_obs)
            return sac_gradient_step(adv_sac, player, b, k_sac, config.tau, alpha=jnp.exp(b.obs[:, -1]))

        player = c.pro if learner == "pro" else c.adv
        new, aux = jax.lax.scan(gradient_step, player, jax.random.split(k_upd, n))
        player = jax.tree.map(lambda new_, old: jnp.where(warm, old, new_), new, player)
        names = ("critic_loss", "actor_loss", "q", "entropy", "alpha")
        aux = {name: jnp.where(warm, jnp.nan, jnp.mean(v)) for name, v in zip(names, aux)}
        c = c._replace(env_state=env_state, obs=obs, replay=replay, env_steps=c.env_steps + n,
                       **{learner: player})
        return c, (aux, t, traj.terminated, traj.done, traj.episode_return)

    def sac_rounds(carry: Carry, learner: str, count: int, temps):
        """`count * num_steps` SAC env steps training `learner`; returns (carry, metrics, G) with G
        the protagonist's mean discounted return over its round per env (zeros for the adversary)."""
        key, k = jax.random.split(carry.key)
        carry, (aux, t, term, done, ret) = jax.lax.scan(lambda c, k_: sac_step(c, k_, learner, temps),
                                                        carry._replace(key=key),
                                                        jax.random.split(k, count * config.num_steps))
        metrics = {f"{learner}_{name}": jnp.nanmean(v) for name, v in aux.items()}
        episodes = done.sum()
        metrics[f"{learner}_return"] = jnp.where(episodes > 0, (ret * done).sum() / jnp.maximum(episodes, 1),
                                                 jnp.nan)
        metrics[f"{learner}_episodes"] = episodes
        perf = jnp.zeros(n)
        if learner == "pro":
            next_obs = t.next_obs[..., :-1]
            next_v = pro_sac.critic.apply(carry.pro.critic.params, next_obs,
                                          pro_sac.mode(carry.pro.actor.params, next_obs)).min(0)
            perf = lambda_returns(t.reward, next_v, term, done, config.gamma, 1.0).mean(0)
        return carry, metrics, perf

    def ppo_rounds(carry: Carry, learner: str, count: int, temps):
        def one(c: Carry, k):
            ph = zero_sum_phase(learner, pro_net, adv_net, c.pro, c.adv, venv, env_params, c.env_state, c.obs, k,
                                config, pro_ent=config.ent_coef, adv_ent=temps, adv_features=jnp.log(temps)[:, None])
            steps = c.env_steps + config.num_envs * config.num_steps
            perf = ph.pro_batch.target.mean(0) if learner == "pro" else jnp.zeros(config.num_envs)
            return c._replace(pro=ph.pro, adv=ph.adv, env_state=ph.env_state, obs=ph.obs, env_steps=steps), \
                (ph.metrics, perf)

        key, k = jax.random.split(carry.key)
        carry, (m, perf) = jax.lax.scan(one, carry._replace(key=key), jax.random.split(k, count))
        return carry, m, perf[-1]

    rounds = sac_rounds if sac else ppo_rounds

    def iteration(carry: Carry, _):
        key, k_temp = jax.random.split(carry.key)
        temps = sample_temperatures(config, k_temp, carry.k, carry.iteration)
        carry, m_pro, perf = rounds(carry._replace(key=key), "pro", config.pro_iters, temps)
        carry, m_adv, _ = rounds(carry, "adv", config.adv_iters, temps)
        k, buffer, filled = carry.k, carry.buffer, carry.filled
        if config.curriculum == "spdl":
            k, buffer, filled = spdl_buffered(config, k, buffer, filled, temps, perf)
        metrics = {**m_pro, **m_adv, "temperature": temps.mean(), "performance": perf.mean()}
        return carry._replace(k=k, buffer=buffer, filled=filled, iteration=carry.iteration + 1), metrics

    def update(carry: Carry):
        carry, m = jax.lax.scan(iteration, carry, None, config.iterations_per_chunk)
        metrics = {k: jnp.nanmean(v) if k.endswith("_return") else v.reshape(-1)[-1] for k, v in m.items()}
        metrics.update({"return": metrics["pro_return"], "env_steps": carry.env_steps,
                        "temperature_mean": carry.k / config.gamma_rate if config.curriculum == "spdl"
                        else linear_temperature(config, carry.iteration)})
        if config.eval_points:
            key, k_eval = jax.random.split(carry.key)
            res = grid_returns(eval_env, env_params, uset, uset.grid(config.eval_points),
                               make_policy(config, carry.pro), k_eval, config.eval_episodes, spec.max_steps)
            metrics.update(eval_worst=res.worst, eval_mean=res.mean)
            carry = carry._replace(key=key)
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, pro):
    """`act(obs, key) -> action`: the deterministic protagonist, for one observation."""
    spec = envs.spec(config.env)
    if config.learner == "sac":
        nets = sac_nets(config, spec.action_dim, spec.low(), spec.high())
        return lambda obs, key: nets.mode(pro.actor.params, obs[None])[0]
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
