"""IWOCS: Incremental Worst-Case Search, solving robust MDPs as a sequence of static RL problems
(Zouitine, Geist & Rachelson, arXiv:2410.06212).

With an sa-rectangular uncertainty set and stationary policies the static model (one transition
kernel T per episode) equals the dynamic one, and there is no duality gap:
max_pi min_T V^pi_T(s0) = min_T V*_T(s0). IWOCS (Alg. 1) therefore solves one non-robust MDP at a time:

    for i = 0..M:  solve the MDP T_i                      (T_0: domain randomisation over the set)
                   Q_i(s, a) = min_{j <= i} Q*_{T_j}(s, a),  pi_i = argmax_a Q_i
                   T_{i+1} = argmin_{T in set} V^{pi_i}_T(s0)   (Monte-Carlo rollouts; the search)

Acting (deep IWOCS, Sec. 5): pi_i(s) = pi_{T_j*}(s) with j* = argmin_j Q_{T_j}(s, pi_{T_j}(s)), the policy
of the model in which s looks worst, among the models that are valid at s. Each problem j >= 1 also
trains a forward model T^_j(s, a) ~ s' (L1 loss, on its own rollouts), and its critic counts at s_t
only where it predicted the transition just seen (the paper's validity mask, predictive coding):

    valid_j(s_t) = || T^_j(s_{t-1}, a_{t-1}) - s_t ||_1 <= rho_j

Where no model is valid (and at an episode's first step, which has no transition yet) the
domain-randomisation policy pi_0 acts (the paper's fallback). rho_j is chosen, once policy j has
been trained, from `rho_candidates` values evenly spaced in [rho_low, rho_high] (the paper's 10 in
[0.1, 1]; ours in [0, 1], see below): the worst-case search runs once per candidate (vmapped, the same key), and the candidate
whose worst case is highest is kept, with the worst point it found as the next problem (Alg. 2).
The worst-case search runs inside the same JAX program, over
the box of `envs.robust.UncertaintySet`, either by CMA-ES (evosax; the paper's: `search_generations`
generations of `search_population` candidates in the box normalised to [0, 1]^d, mean 0.5, std 0.5)
or over a grid with both end points (the paper's IWOCS*).

One chunk of the `Trainer` is one static problem: chunk i trains policy i (on domain randomisation
for i = 0, the paper's pi_0 and fallback; else on the worst T found at the end of chunk i - 1),
adds it to the composite, then searches the worst T for the new composite (picking rho_i), so the
last chunk's `search_worst` is the worst case found for the final policy. `num_chunks` is thus
the number of static problems (1 + M).

Learners (`learner`):
- `sac`, the paper's (continuous actions): SAC (`jaxrl.core.sac_players`, automatic temperature) with
  the paper's "enhanced critic": beside the soft critics, unregularised critics Q_{T_j} (target
  r + gamma min Q^-(s', a'), a' ~ pi, no entropy term) that the robust min uses, and the forward
  model, all three stepped on the same minibatch. Each problem starts with an empty buffer and
  `learning_starts` steps of uniform random actions, then one gradient update per env step;
- `ppo` (discrete or continuous actions; `jaxrl.core.ppo_players`): its critic V_{T_j}(s) of the
  policy's own actions stands for Q_{T_j}(s, pi_{T_j}(s)); the forward model is trained by
  `update_epochs` passes of `num_minibatches` minibatches over each rollout.

Differences from the paper:
- the default learner is PPO (CartPole's actions are discrete); the SAC learner's critics lack the
  paper's extra layer, and its defaults are smaller than the paper's (buffer 1e5, 1k warm-up steps
  per problem, where the paper warms up 1e4 steps once);
- the candidate rhos start at 0, not 0.1: rho_j = 0 switches policy j off, so a policy whose
  critic hands it states where it hurts the worst case found can be dropped. On CartPole, whose
  per-step changes are small beside 0.1, every candidate of the paper kept every policy valid
  everywhere; at the full robust benchmark (500k steps, 5 seeds) the paper's range gave a worst
  case of 104 and an average of 222 over the set, [0, 1] gave 242 and 417 (and on Pendulum
  -1101 / -561 against -1163 / -535);
- the forward model predicts the change s' - s (an MLP of `hidden`, ReLU, its own Adam); pi_0's
  critic takes no part in the min (pi_0 is the fallback only); `masks=False` gives the unmasked
  composite (every Q_{T_j}, pi_0's included, always valid);
- the stopping test compares averages over start states (the discounted Monte-Carlo return at the worst point
  found against the critics' min_j V_j(s0)), and with `stop_tolerance` 0 (the default) it is
  only logged (`stop_gap`): a fixed number of problems, as the paper's budgets fix it. The program
  has a fixed number of chunks, so chunks after a stop still train, and their policy is dropped;
- policy i starts from policy i - 1's weights (warm start), and gets `steps_per_problem` env steps;
- domain randomisation draws one point of the set per env at every rollout, not per episode.

The composite policy has a memory (the last observation and action): `make_policy` returns a
`jaxrl.core.evaluate.Recurrent` policy, which `evaluate` and `grid_returns` run like any other.

Run: `python -m jaxrl.algos.iwocs --env Pendulum-v1 --reward-scale 0.1 --search cma`
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
import envs.robust as robust
from jaxrl.core import config as C
from jaxrl.core.buffer import Buffer, buffer_add, buffer_init, buffer_sample
from jaxrl.core.evaluate import Recurrent, evaluate
from jaxrl.core.nets import MLP, QEnsemble
from jaxrl.core.offpolicy import RowPacker, Transition, polyak_update, random_actions
from jaxrl.core.ppo_players import Player, act, advantages, check_settings, init_player, ppo_update, rollout
from jaxrl.core.robust_eval import grid_returns
from jaxrl.core.sac_players import Actor, SACNets, sac_gradient_step
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config:
    """IWOCS hyperparameters (search: the paper's CMA-ES settings; PPO: PureJaxRL's CartPole config)."""

    env: str = "CartPole-v1"
    """environment name (discrete or continuous actions; gymnax classic control or brax)"""
    robust_set: tuple[tuple[str, float, float], ...] = ()
    """the uncertainty set, ((name, low, high), ...); empty: the env's reference set"""
    num_chunks: int = 4
    """static problems solved: the first on domain randomisation, each later one on a worst case"""
    steps_per_problem: int = 100_000
    """env steps of PPO per static problem"""
    search: str = "cma"
    """worst-case search: cma (CMA-ES, evosax) or grid"""
    search_population: int = 100
    """cma: candidates per generation"""
    search_generations: int = 6
    """cma: generations"""
    search_points: int = 10
    """grid: points per parameter, both end points included"""
    search_episodes: int = 4
    """Monte-Carlo episodes per candidate"""
    num_envs: int = 8
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
    learner: str = "ppo"
    """solver of each static problem: ppo (discrete or continuous actions) or sac (continuous; the paper's)"""
    batch_size: int = 256
    """sac: transitions per gradient update (one update per env step)"""
    buffer_size: int = 100_000
    """sac: replay capacity; each problem starts with an empty buffer"""
    learning_starts: int = 1_000
    """sac: env steps of uniform random actions that open each problem"""
    actor_lr: float = 3e-4
    """sac: Adam learning rate of the actor and the temperature"""
    critic_lr: float = 1e-3
    """sac: Adam learning rate of the soft and the unregularised critics"""
    tau: float = 0.005
    """sac: Polyak rate of the target critics"""
    masks: bool = True
    """validity masks from forward models, with pi_0 as the fallback (False: every critic always valid)"""
    rho_low: float = 0.0
    """smallest candidate threshold rho of the masks (L1 distance in observation units; 0: the policy
    is never valid, i.e. switched off; the paper's smallest is 0.1)"""
    rho_high: float = 1.0
    """largest candidate rho"""
    rho_candidates: int = 10
    """candidate rhos, evenly spaced in [rho_low, rho_high]; each costs one worst-case search"""
    model_lr: float = 1e-3
    """Adam learning rate of the forward models"""
    stop_tolerance: float = 0.0
    """stop adding problems once |V^pi_i_{T_i+1}(s0) - Q_i(s0, pi_i(s0))| <= this (Alg. 1's epsilon,
    in reward_scale units; 0: never, a fixed number of problems)"""
    eval_points: int = 0
    """grid points per parameter of the robust evaluation after each problem (0: none)"""
    eval_episodes: int = 1
    """episodes per evaluation grid point"""

    def __post_init__(self):
        check_settings(self)
        for name in ("num_chunks", "steps_per_problem", "search_population", "search_generations",
                     "search_episodes", "eval_episodes", "lr", "max_grad_norm", "rho_candidates", "model_lr"):
            C.check_positive(name, getattr(self, name))
        C.check_choice("search", self.search, ("cma", "grid"))
        C.check_choice("learner", self.learner, ("ppo", "sac"))
        if self.learner == "sac":
            C.check_sac_learner(self, "iwocs", "steps_per_problem")
        if self.search_points < 2:
            raise ValueError(f"search_points must be >= 2, got {self.search_points}")
        C.check_positive("ent_coef", self.ent_coef, allow_zero=True)
        C.check_positive("rho_low", self.rho_low, allow_zero=True)
        if C.concrete(self.rho_low, self.rho_high) and self.rho_high < self.rho_low:
            raise ValueError(f"rho_high={self.rho_high} must be >= rho_low={self.rho_low}")
        C.check_positive("stop_tolerance", self.stop_tolerance, allow_zero=True)
        C.check_positive("eval_points", self.eval_points, allow_zero=True)
        if self.eval_points == 1:
            raise ValueError("eval_points must be 0 or >= 2, got 1")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive sizes, got {self.hidden!r}")
        envs.spec(self.env)
        uncertainty_set(self)

    @property
    def updates_per_problem(self) -> int:
        """PPO rollouts per problem, or SAC's (warm-up, training) vectorised env steps."""
        if self.learner == "sac":
            warm = math.ceil(self.learning_starts / self.num_envs)
            return warm, max(1, math.ceil(self.steps_per_problem / self.num_envs) - warm)
        return math.ceil(self.steps_per_problem / (self.num_envs * self.num_steps))


def uncertainty_set(config) -> robust.UncertaintySet:
    if config.robust_set:
        return robust.UncertaintySet(config.env, config.robust_set)
    return robust.reference_set(config.env)


class ForwardModel(nn.Module):
    """T^(s, a) = s + MLP([s, a]): the next observation (`action` as `action_features` gives it)."""

    obs_dim: int
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs, action):
        return obs + MLP(self.hidden, self.obs_dim, "relu")(jnp.concatenate([obs, action], -1))


def action_features(spec, action):
    """The forward model's view of an action: one-hot for discrete actions, the action otherwise."""
    if spec.discrete:
        return jax.nn.one_hot(action, spec.action_dim)
    return jnp.asarray(action, jnp.float32).reshape(action.shape[:-1] + (spec.action_dim,))


class Carry(NamedTuple):
    ensemble: Any  # parameters of policies 0..num_chunks-1, stacked; entries >= problem are unused
    models: Any  # forward models of problems 0..num_chunks-1, stacked likewise
    rhos: jax.Array  # [num_chunks] validity thresholds rho_j (rho_0 unused: pi_0 is the fallback)
    current: Any  # the player being trained: a PPO TrainState or a SACLearner
    model: TrainState  # its forward model
    env_state: Any
    obs: jax.Array
    worst: jax.Array  # the point of the set the current problem trains on
    problem: jax.Array  # index of the static problem this chunk solves
    stopped: jax.Array  # the stopping test passed: no more problems are added
    key: jax.Array
    env_steps: jax.Array


def ppo_policy_value(net: Player):
    """`(params, obs) -> (action, value)` of one PPO player and one observation: its greedy action
    (the Gaussian's mean for continuous actions) and its critic V(s)."""

    def pv(p, obs):
        pi, value = net.apply(p, obs[None])
        return pi.mode()[0], value[0]

    return pv


def sac_policy_value(nets: SACNets, plain: QEnsemble):
    """The same for a SAC player ({"actor", "q"}): offset + scale tanh(mu(s)) and the unregularised
    critics' min_j Q_j(s, a) at that action."""

    def pv(p, obs):
        a = nets.mode(p["actor"], obs)
        return a, plain.apply(p["q"], obs[None], a[None]).min(0)[0]

    return pv


def composite_act(policy_value, ensemble, count, obs):
    """Deterministic action of the unmasked pi_i: policy j* = argmin_{j < count} V_j(obs) acts (one
    observation; `policy_value` as `ppo_policy_value` makes it)."""
    return _composite(policy_value, ensemble, count, obs)[0]


def composite_value(policy_value, ensemble, count, obs):
    """Q_i(s, pi_i(s)) = min_{j < count} V_j(s) of one observation."""
    return _composite(policy_value, ensemble, count, obs)[1]


def _composite(policy_value, ensemble, count, obs):
    actions, values = jax.vmap(lambda p: policy_value(p, obs))(ensemble)
    values = jnp.where(jnp.arange(values.shape[0]) < count, values, jnp.inf)
    j = jnp.argmin(values)
    return actions[j], values[j]


def masked_choice(values, errors, rhos, count, started):
    """j* of the masked composite: the lowest value among the valid j in 1..count-1 (valid: a
    transition has been seen and the model's L1 error on it is <= rho_j); 0 (pi_0) if none is."""
    j = jnp.arange(values.shape[0])
    valid = (j >= 1) & (j < count) & started & (errors <= rhos)
    return jnp.where(valid.any(), jnp.argmin(jnp.where(valid, values, jnp.inf)), 0)


class Memory(NamedTuple):
    obs: jax.Array  # the previous observation
    action: jax.Array  # the previous action's features
    started: jax.Array  # a transition has been seen this episode


def masked_policy(policy_value, model: ForwardModel, spec, ensemble, models, rhos, count) -> Recurrent:
    """The composite pi_i with validity masks and the pi_0 fallback, as a policy with memory."""

    def init(obs):
        return Memory(jnp.zeros_like(obs), jnp.zeros(spec.action_dim), jnp.bool_(False))

    def step(obs, m: Memory, key):
        def one(p, mp):
            error = jnp.abs(model.apply(mp, m.obs[None], m.action[None])[0] - obs).sum()
            return (*policy_value(p, obs), error)

        actions, values, errors = jax.vmap(one)(ensemble, models)
        action = actions[masked_choice(values, errors, rhos, count, m.started)]
        return action, Memory(obs, action_features(spec, action), jnp.bool_(True))

    return Recurrent(init, step)


def pick_rho(rhos, index, candidates, search_fn):
    """Alg. 2's choice of rho_index: `search_fn(rhos) -> (worst point, its value)` runs once per
    candidate (vmapped); the candidate with the highest worst-case value is kept. Returns (rhos,
    worst point, value) of that candidate."""
    trial = jax.vmap(lambda r: rhos.at[index].set(r))(jnp.asarray(candidates, jnp.float32))
    points, values = jax.vmap(search_fn)(trial)
    b = jnp.argmax(values)
    return trial[b], points[b], values[b]


def cma_search(config: Config, uset, score, key):
    """argmin over the box of `score(points [P, d]) -> [P]` by CMA-ES in [0, 1]^d (evosax)."""
    from evosax.algorithms import CMA_ES

    es = CMA_ES(population_size=config.search_population, solution=jnp.zeros(uset.dim))
    params = es.default_params.replace(std_init=0.5)
    low, high = jnp.asarray(uset.low), jnp.asarray(uset.high)
    k_init, k_run = jax.random.split(key)
    state = es.init(k_init, jnp.full(uset.dim, 0.5), params)

    def generation(c, k):
        state, best_x, best_f = c
        k_ask, k_tell = jax.random.split(k)
        z, state = es.ask(k_ask, state, params)
        z = jnp.clip(z, 0.0, 1.0)
        f = score(low + z * (high - low))
        state, _ = es.tell(k_tell, z, f, state, params)
        i = jnp.argmin(f)
        better = f[i] < best_f
        return (state, jnp.where(better, z[i], best_x), jnp.where(better, f[i], best_f)), None

    init = (state, jnp.full(uset.dim, 0.5), jnp.float32(jnp.inf))
    (_, z, f), _ = jax.lax.scan(generation, init, jax.random.split(k_run, config.search_generations))
    return low + z * (high - low), f


def model_step(model: ForwardModel, ts: TrainState, obs, action, next_obs):
    """One Adam step on the L1 loss ||T^(s, a) - s'||_1 of a minibatch; returns (state, loss)."""
    loss, grads = jax.value_and_grad(lambda p: jnp.abs(model.apply(p, obs, action) - next_obs).sum(-1).mean())(ts.params)
    return ts.apply_gradients(grads=grads), loss


def model_update(model: ForwardModel, ts: TrainState, obs, action, next_obs, key, settings):
    """`update_epochs` passes of shuffled minibatches of `model_step` over one rollout ([T, N, ...]);
    returns (train state, mean loss of the last epoch)."""
    flat = jax.tree.map(lambda x: x.reshape((-1, x.shape[-1])), (obs, action, next_obs))

    def epoch(ts, k):
        perm = jax.random.permutation(k, flat[0].shape[0])
        return jax.lax.scan(lambda t, b: model_step(model, t, *b), ts, jax.tree.map(
            lambda x: x[perm].reshape((settings.num_minibatches, -1, x.shape[-1])), flat))

    ts, losses = jax.lax.scan(epoch, ts, jax.random.split(key, settings.update_epochs))
    return ts, losses[-1].mean()


class SACLearner(NamedTuple):
    """IWOCS's SAC player (the paper's "enhanced critic", less its extra layer): SAC's actor, soft
    critics and temperature, plus unregularised critics `plain` that the robust min uses, with their
    targets, and the problem's replay buffer (rows of `RowPacker`)."""

    actor: TrainState
    critic: TrainState
    critic_target: Any
    alpha: TrainState
    plain: TrainState
    plain_target: Any
    buffer: Buffer


def sac_networks(config: Config, spec) -> tuple[SACNets, QEnsemble]:
    """SAC's networks (ReLU MLPs of `hidden`, log std in [-20, 2], target entropy -|A|) and the
    unregularised critics."""
    low, high = spec.low(), spec.high()
    hidden = tuple(config.hidden)
    actor = Actor(spec.action_dim, hidden, "relu", -20.0, 2.0)
    nets = SACNets(actor, QEnsemble(hidden, 2), (high - low) / 2.0, (high + low) / 2.0, -float(spec.action_dim))
    return nets, QEnsemble(hidden, 2)


def plain_critic_step(nets: SACNets, plain: QEnsemble, learner: SACLearner, batch: Transition, key, tau):
    """One step of the unregularised critics toward y = R + discount min_j Q^-_j(s', a'), a' ~ pi(s')
    (no entropy term), then their Polyak update. Returns (learner, loss)."""
    next_action, _ = nets.sample(learner.actor.params, batch.next_obs, key)
    y = jax.lax.stop_gradient(batch.reward + batch.discount
                              * plain.apply(learner.plain_target, batch.next_obs, next_action).min(0))
    loss, grads = jax.value_and_grad(
        lambda p: 0.5 * ((plain.apply(p, batch.obs, batch.action) - y) ** 2).mean(-1).sum())(learner.plain.params)
    ts = learner.plain.apply_gradients(grads=grads)
    return learner._replace(plain=ts, plain_target=polyak_update(ts.params, learner.plain_target, tau)), loss


def _players(config: Config, spec):
    """(policy_value, player networks) of the configured learner: a `Player`, or (SACNets, plain)."""
    if config.learner == "sac":
        nets, plain = sac_networks(config, spec)
        return sac_policy_value(nets, plain), (nets, plain)
    net = Player(spec.action_dim, spec.discrete, tuple(config.hidden))
    return ppo_policy_value(net), net


def make_train(config: Config) -> Trainer:
    env, env_params = robust.make_robust(config.env)
    uset = uncertainty_set(config)
    spec = envs.spec(config.env)
    obs_dim = math.prod(spec.obs_shape)
    policy_value, players = _players(config, spec)
    fmodel = ForwardModel(obs_dim, tuple(config.hidden))
    n = config.num_envs
    nominal = uset.nominal(env_params)
    stack = lambda tree: jax.tree.map(lambda x: jnp.stack([x] * config.num_chunks), tree)
    sac = config.learner == "sac"
    rows = RowPacker(Transition(jnp.zeros(obs_dim), jnp.zeros(spec.action_dim), 0.0, 0.0, jnp.zeros(obs_dim)))

    class PerEnvParams:  # a batch of envs, each with its own dynamics
        @staticmethod
        def step(keys, state, action, params):
            return jax.vmap(env.step)(keys, state, action, params)

    def batch_params(values):
        return jax.vmap(uset.apply, (None, 0))(env_params, values)

    def problem_params(carry: Carry, key):
        """Each env's dynamics: a fresh draw from the set for problem 0 (DR), else the worst point."""
        dr = uset.sample(key, n)
        return batch_params(jnp.where(carry.problem == 0, dr, jnp.broadcast_to(carry.worst, dr.shape)))

    def snapshot(current):
        """What the composite keeps of a trained player: its parameters (PPO), or its actor and
        unregularised critics (SAC)."""
        return {"actor": current.actor.params, "q": current.plain.params} if sac else current.params

    def init_current(key):
        if not sac:
            return init_player(key, players, obs_dim, config.lr, config.max_grad_norm)
        nets, plain = players
        k_actor, k_critic, k_plain = jax.random.split(key, 3)
        o, a = jnp.zeros((1, obs_dim)), jnp.zeros((1, spec.action_dim))
        ap, cp, pp = nets.actor.init(k_actor, o), nets.critic.init(k_critic, o, a), plain.init(k_plain, o, a)
        state = lambda p, lr: TrainState.create(apply_fn=None, params=p, tx=optax.flatten(optax.adam(lr)))
        return SACLearner(state(ap, config.actor_lr), state(cp, config.critic_lr), cp,
                          state({"log_alpha": jnp.float32(0.0)}, config.actor_lr), state(pp, config.critic_lr), pp,
                          buffer_init(rows.row, config.buffer_size))

    def init(key) -> Carry:
        k_net, k_model, k_env, key = jax.random.split(key, 4)
        current = init_current(k_net)
        model = TrainState.create(apply_fn=fmodel.apply, tx=optax.adam(config.model_lr),
                                  params=fmodel.init(k_model, jnp.zeros((1, obs_dim)), jnp.zeros((1, spec.action_dim))))
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_env, n), env_params)
        rhos = jnp.full(config.num_chunks, config.rho_high, jnp.float32)
        return Carry(stack(snapshot(current)), stack(model.params), rhos, current, model, env_state, obs,
                     jnp.asarray(nominal), jnp.int32(0), jnp.bool_(False), key, jnp.int32(0))

    def policy_of(carry: Carry, rhos=None):
        if config.masks:
            rhos = carry.rhos if rhos is None else rhos
            return masked_policy(policy_value, fmodel, spec, carry.ensemble, carry.models, rhos, carry.problem)
        return lambda obs, key: composite_act(policy_value, carry.ensemble, carry.problem, obs)

    def search(carry: Carry, key, rhos):
        act_fn = policy_of(carry, rhos)

        def score(points):
            return jax.vmap(lambda v: evaluate(env, uset.apply(env_params, v), act_fn, key, config.search_episodes,
                                               spec.max_steps)[0])(points)

        if config.search == "grid":
            points = uset.grid(config.search_points)
            f = score(points)
            return points[jnp.argmin(f)], f.min()
        return cma_search(config, uset, score, key)

    def search_and_rho(carry: Carry, key):
        """The worst point for the composite of the `problem` policies so far, with the newest one's
        rho picked by Alg. 2 (once stopped, rhos stay)."""
        if not config.masks:
            return (*search(carry, key, carry.rhos), carry.rhos)
        candidates = jnp.linspace(config.rho_low, config.rho_high, config.rho_candidates)
        rhos, worst, value = pick_rho(carry.rhos, carry.problem - 1, candidates, lambda r: search(carry, key, r))
        return worst, value, jnp.where(carry.stopped, carry.rhos, rhos)

    def ppo_step(carry: Carry, key):
        """One rollout of `num_steps`, then PPO's update (and the forward model's)."""
        k_dr, k_roll, k_upd, k_model = jax.random.split(key, 4)

        def act_fn(o, k):
            a, lp, v = act(players, carry.current.params, o, k)
            return a, dict(obs=o, a=a, lp=lp, v=v)

        env_state, obs, traj = rollout(PerEnvParams, problem_params(carry, k_dr), carry.env_state, carry.obs, k_roll,
                                       act_fn, config.num_steps, n)
        r = traj.record
        batch = advantages(players, carry.current.params, r["obs"], r["a"], r["lp"], r["v"], traj.final_obs,
                           traj.reward, traj.terminated, traj.done, config, config.ent_coef)
        ts, aux = ppo_update(players, carry.current, batch, k_upd, config)
        model = carry.model
        if config.masks:
            model, aux["model_l1"] = model_update(fmodel, model, r["obs"], action_features(spec, r["a"]),
                                                  traj.final_obs, k_model, config)
        carry = carry._replace(current=ts, model=model, env_state=env_state, obs=obs,
                               env_steps=carry.env_steps + n * config.num_steps)
        return carry, (aux, traj.episode_return, traj.done)

    def sac_step(carry: Carry, key, warmup: bool):
        """One vectorised env step into the buffer (uniform random actions in the warm-up), then
        `num_envs` gradient steps of SAC, of the unregularised critics and of the forward model."""
        nets, plain = players
        k_dr, k_roll, k_upd = jax.random.split(key, 3)
        learner = carry.current

        def act_fn(o, k):
            a = random_actions(k, spec, n) if warmup else nets.sample(learner.actor.params, o, k)[0]
            return a, dict(obs=o, a=a)

        env_state, obs, traj = rollout(PerEnvParams, problem_params(carry, k_dr), carry.env_state, carry.obs, k_roll,
                                       act_fn, 1, n)
        t = Transition(traj.record["obs"][0], traj.record["a"][0], traj.reward[0] * config.reward_scale,
                       config.gamma * (1.0 - traj.terminated[0].astype(jnp.float32)), traj.final_obs[0])
        learner = learner._replace(buffer=buffer_add(learner.buffer, rows.pack(t)))

        def gradient_step(c, k):
            learner, model = c
            k_batch, k_sac, k_plain = jax.random.split(k, 3)
            b = rows.unpack(buffer_sample(learner.buffer, k_batch, config.batch_size))
            learner, (c_loss, a_loss, _, entropy, alpha) = sac_gradient_step(nets, learner, b, k_sac, config.tau)
            learner, p_loss = plain_critic_step(nets, plain, learner, b, k_plain, config.tau)
            m_loss = jnp.float32(jnp.nan)
            if config.masks:
                model, m_loss = model_step(fmodel, model, b.obs, b.action, b.next_obs)
            return (learner, model), dict(critic_loss=c_loss, actor_loss=a_loss, plain_loss=p_loss, entropy=entropy,
                                          alpha=alpha, model_l1=m_loss)

        model, aux = carry.model, {}
        if not warmup:
            (learner, model), aux = jax.lax.scan(gradient_step, (learner, model), jax.random.split(k_upd, n))
            aux = jax.tree.map(jnp.mean, aux)
        carry = carry._replace(current=learner, model=model, env_state=env_state, obs=obs, env_steps=carry.env_steps + n)
        return carry, (aux, traj.episode_return, traj.done)

    def solve(carry: Carry, key):
        """Train the current player on its static problem; returns (carry, (metrics, returns, done))."""
        if not sac:
            return jax.lax.scan(ppo_step, carry, jax.random.split(key, config.updates_per_problem))
        warm, train = config.updates_per_problem
        k_warm, k_train = jax.random.split(key)
        carry = carry._replace(current=carry.current._replace(buffer=buffer_init(rows.row, config.buffer_size)))
        carry, (_, r0, d0) = jax.lax.scan(lambda c, k: sac_step(c, k, True), carry, jax.random.split(k_warm, warm))
        carry, (aux, r1, d1) = jax.lax.scan(lambda c, k: sac_step(c, k, False), carry, jax.random.split(k_train, train))
        return carry, (aux, jnp.concatenate([r0, r1]), jnp.concatenate([d0, d1]))

    def stop_gap(carry: Carry, worst, key):
        """Alg. 1's test |V^pi_i_{T_i+1}(s0) - Q_i(s0, pi_i(s0))|, both sides averaged over start
        states: the composite policy's discounted Monte-Carlo return at the worst point found, and
        its critics' value min_j V_j(s0) at fresh start states of that point (the critics learn
        reward_scale times the return, so the Monte-Carlo side is scaled to match)."""
        k_mc, k_s0 = jax.random.split(key)
        params = uset.apply(env_params, worst)
        mc, _ = evaluate(env, params, policy_of(carry), k_mc, config.search_episodes, spec.max_steps, config.gamma)
        obs0, _ = jax.vmap(env.reset, (0, None))(jax.random.split(k_s0, config.search_episodes), params)
        q0 = jax.vmap(lambda o: composite_value(policy_value, carry.ensemble, carry.problem, o))(obs0).mean()
        return jnp.abs(mc * config.reward_scale - q0)

    def update(carry: Carry):
        """Solve problem i (DR if i = 0, else the worst point found last chunk), add pi_i to the
        composite, then search the worst point for the new composite, picking rho_i (Alg. 2)."""
        key, k_search, k_train, k_eval = jax.random.split(carry.key, 4)
        carry, (aux, returns, done) = solve(carry._replace(key=key), k_train)
        # once stopped, pi_i is the answer: the problem just trained is not added
        add = lambda e, p: jnp.where(carry.stopped, e, e.at[carry.problem].set(p))
        carry = carry._replace(ensemble=jax.tree.map(add, carry.ensemble, snapshot(carry.current)),
                               models=jax.tree.map(add, carry.models, carry.model.params),
                               problem=carry.problem + (~carry.stopped).astype(jnp.int32))
        worst, worst_return, rhos = search_and_rho(carry, k_search)
        carry = carry._replace(rhos=rhos)
        gap = stop_gap(carry, worst, jax.random.fold_in(k_search, 1))
        stopped = (carry.stopped | (gap <= config.stop_tolerance)) if config.stop_tolerance > 0 else carry.stopped
        metrics = {k: v[-1] for k, v in aux.items()}
        metrics.update(episode_metrics(returns, done), env_steps=carry.env_steps, search_worst=worst_return,
                       stop_gap=gap, stopped=stopped.astype(jnp.float32))
        if config.masks:  # rho of the newest policy (pi_0 has none)
            metrics["rho"] = jnp.where(carry.problem > 1, rhos[carry.problem - 1], jnp.nan)
        metrics.update({f"worst_{name}": worst[i] for i, name in enumerate(uset.names)})
        if config.eval_points:
            res = grid_returns(env, env_params, uset, uset.grid(config.eval_points), policy_of(carry), k_eval,
                               config.eval_episodes, spec.max_steps)
            metrics.update(eval_worst=res.worst, eval_mean=res.mean)
        return carry._replace(worst=worst, stopped=stopped), metrics

    return Trainer(init, update, config.num_chunks)


def make_policy(config: Config, carry: Carry):
    """The composite robust policy of a (single-seed) carry: a `Recurrent` policy with the masks,
    an `act(obs, key) -> action` without (`evaluate` and `grid_returns` take either)."""
    spec = envs.spec(config.env)
    policy_value, _ = _players(config, spec)
    if config.masks:
        fmodel = ForwardModel(math.prod(spec.obs_shape), tuple(config.hidden))
        return masked_policy(policy_value, fmodel, spec, carry.ensemble, carry.models, carry.rhos, carry.problem)
    return lambda obs, key: composite_act(policy_value, carry.ensemble, carry.problem, obs)


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
