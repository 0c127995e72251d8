"""PPO for the players of a (possibly two-player, zero-sum) env: the pieces RARL, QARL and policy
smoothing share (`jaxrl.algos.rarl`, `qarl`, `policy_smoothing`).

A player is an actor-critic (`Player`: separate tanh MLPs; categorical or diagonal-Gaussian
policy) with its own optimiser state in a flax `TrainState`. `rollout` steps a batch of envs for
`num_steps` with an `act(obs, key) -> (env_action, record)` that may sample from several players
at once, and `ppo_update` runs PPO's clipped-surrogate update (Schulman et al. 2017, Eq. 7 and 9,
GAE advantages, per-minibatch advantage normalisation, value clipping, global gradient clip) for one
player on the part of the rollout that player saw. Its entropy coefficient may be one number or one
per sample (QARL's adversary: its temperature).

`settings` is any object with the PPO fields `num_envs, num_steps, update_epochs, num_minibatches,
gamma, gae_lambda, clip_eps, vf_coef, reward_scale` (an algorithm's Config). `reward_scale`
multiplies the reward in the GAE targets only (the value scale PPO learns at; Pendulum's rewards,
-16 to 0 per step, need about 0.1); returns are reported unscaled.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from jaxrl.core.nets import MLP, orthogonal
from jaxrl.core.returns import gae


class Player(nn.Module):
    """Actor and critic MLPs; `value` runs the critic alone."""

    action_dim: int
    discrete: bool
    hidden: tuple[int, ...]

    def setup(self):
        self.actor = MLP(self.hidden, self.action_dim, "tanh", out_init=orthogonal(0.01))
        self.critic = MLP(self.hidden, 1, "tanh", out_init=orthogonal(1.0))
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))

    def value(self, obs):
        return self.critic(obs)[..., 0]

    def __call__(self, obs):
        out = self.actor(obs)
        if self.discrete:
            return distrax.Categorical(logits=out), self.value(obs)
        return distrax.MultivariateNormalDiag(out, jnp.exp(self.log_std)), self.value(obs)


def init_player(key, net: Player, obs_dim: int, lr, max_grad_norm: float) -> TrainState:
    """A player's parameters and Adam state (eps 1e-5, global-norm clip), as one flat vector."""
    params = net.init(key, jnp.zeros((1, obs_dim)))
    tx = optax.flatten(optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr, eps=1e-5)))
    return TrainState.create(apply_fn=net.apply, params=params, tx=tx)


def act(net: Player, params, obs, key, deterministic: bool = False):
    """(action, log-prob, value) for a batch of observations."""
    pi, value = net.apply(params, obs)
    if deterministic:
        a = pi.mode()
    else:
        a = pi.sample(seed=key)
    return a, pi.log_prob(a), value


class Rollout(NamedTuple):
    record: dict  # what `act` recorded at each step, [T, N, ...]
    reward: jax.Array  # [T, N], the env's reward (the protagonist's)
    terminated: jax.Array
    done: jax.Array
    episode_return: jax.Array  # info["episode_return"], valid where done
    final_obs: jax.Array  # the observation after each step, before auto-reset


def rollout(venv, env_params, env_state, obs, key, act_fn: Callable, num_steps: int, num_envs: int):
    """Step `venv` (an `envs.VecEnv` of an `EpisodeStats` env) `num_steps` times with
    `act_fn(obs, key) -> (env_action, record)`; returns (env_state, obs, Rollout)."""

    def step(c, keys):
        env_state, obs = c
        k_act, k_env = keys
        action, record = act_fn(obs, k_act)
        next_obs, env_state, r, term, trunc, info = venv.step(jax.random.split(k_env, num_envs), env_state,
                                                             action, env_params)
        done = jnp.logical_or(term, trunc)
        out = Rollout(record, r.astype(jnp.float32), term, done, info["episode_return"], info["final_observation"])
        return (env_state, next_obs), out

    keys = jax.random.split(key, (num_steps, 2))
    (env_state, obs), traj = jax.lax.scan(step, (env_state, obs), (keys[:, 0], keys[:, 1]))
    return env_state, obs, traj


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    adv: jax.Array
    target: jax.Array
    ent_coef: jax.Array


def advantages(net: Player, params, obs, action, log_prob, value, next_obs, reward, terminated, done, settings,
               ent_coef) -> Batch:
    """A player's PPO batch: GAE over its rewards (`reward` already signed for the player) times
    `settings.reward_scale`, with V(next_obs) bootstrapping time-limit ends."""
    next_value = net.apply(params, next_obs, method=Player.value)
    adv, target = gae(reward * settings.reward_scale, value, next_value, terminated, done, settings.gamma,
                      settings.gae_lambda)
    ent = jnp.broadcast_to(jnp.asarray(ent_coef, jnp.float32), reward.shape)
    return Batch(obs, action, log_prob, value, adv, target, ent)


def _loss(net: Player, params, b: Batch, settings):
    pi, value = net.apply(params, b.obs)
    log_prob = pi.log_prob(b.action)
    eps = settings.clip_eps
    v_clipped = b.value + jnp.clip(value - b.value, -eps, eps)
    v_loss = 0.5 * jnp.maximum((value - b.target) ** 2, (v_clipped - b.target) ** 2).mean()
    ratio = jnp.exp(log_prob - b.log_prob)
    adv = (b.adv - b.adv.mean()) / (b.adv.std() + 1e-8)
    pg_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - eps, 1 + eps) * adv).mean()
    entropy = pi.entropy()
    loss = pg_loss + settings.vf_coef * v_loss - (b.ent_coef * entropy).mean()
    return loss, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy.mean()}


def ppo_update(net: Player, ts: TrainState, batch: Batch, key, settings):
    """`update_epochs` passes of shuffled minibatches over `batch` ([T, N, ...]); returns
    (train state, metrics of the last epoch averaged over its minibatches)."""
    size = settings.num_envs * settings.num_steps
    flat = jax.tree.map(lambda x: x.reshape((size,) + x.shape[2:]), batch)

    def minibatch(ts, mb):
        grads, aux = jax.grad(lambda p: _loss(net, p, mb, settings), has_aux=True)(ts.params)
        return ts.apply_gradients(grads=grads), aux

    def epoch(ts, k):
        perm = jax.random.permutation(k, size)
        mbs = jax.tree.map(lambda x: x[perm].reshape((settings.num_minibatches, -1) + x.shape[1:]), flat)
        return jax.lax.scan(minibatch, ts, mbs)

    ts, aux = jax.lax.scan(epoch, ts, jax.random.split(key, settings.update_epochs))
    return ts, jax.tree.map(lambda x: x[-1].mean(), aux)


def check_settings(settings) -> None:
    """The PPO fields' checks every user of this module needs (ValueError naming the field)."""
    from jaxrl.core import config as C

    for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches"):
        C.check_positive(name, getattr(settings, name))
    C.check_range("gamma", settings.gamma, 0.0, 1.0)
    C.check_range("gae_lambda", settings.gae_lambda, 0.0, 1.0)
    C.check_positive("clip_eps", settings.clip_eps)
    C.check_positive("vf_coef", settings.vf_coef, allow_zero=True)
    C.check_positive("reward_scale", settings.reward_scale)
    C.check_divides("num_minibatches", settings.num_minibatches, "num_envs * num_steps",
                    settings.num_envs * settings.num_steps)


class Phase(NamedTuple):
    pro: TrainState
    adv: TrainState
    env_state: object
    obs: jax.Array
    metrics: dict
    pro_batch: Batch | None  # the protagonist's batch when it learned this phase


def zero_sum_phase(learner: str, pro_net: Player, adv_net: Player, pro: TrainState, adv: TrainState, venv,
                   env_params, env_state, obs, key, settings, *, pro_ent, adv_ent, adv_features=None) -> Phase:
    """One rollout of protagonist and adversary together (both sampling), then a PPO update of
    `learner` ("pro" on r, or "adv" on -r) while the other stays frozen (RARL's alternation).

    `adv_features` ([num_envs, f], optional) is appended to the adversary's observation (QARL's
    temperature); `adv_ent` may be one coefficient per env."""
    extra = None if adv_features is None else jnp.asarray(adv_features, jnp.float32)

    def adv_view(o):
        if extra is None:
            return o
        return jnp.concatenate([o, jnp.broadcast_to(extra, o.shape[:-1] + extra.shape[-1:])], axis=-1)

    def act_fn(o, k):
        k_p, k_a = jax.random.split(k)
        a_p, lp_p, v_p = act(pro_net, pro.params, o, k_p)
        ao = adv_view(o)
        a_a, lp_a, v_a = act(adv_net, adv.params, ao, k_a)
        return (a_p, a_a), dict(obs=o, a_p=a_p, lp_p=lp_p, v_p=v_p, adv_obs=ao, a_a=a_a, lp_a=lp_a, v_a=v_a)

    k_roll, k_upd = jax.random.split(key)
    env_state, obs, traj = rollout(venv, env_params, env_state, obs, k_roll, act_fn, settings.num_steps,
                                   settings.num_envs)
    r = traj.record
    pro_batch = None
    if learner == "pro":
        pro_batch = advantages(pro_net, pro.params, r["obs"], r["a_p"], r["lp_p"], r["v_p"], traj.final_obs,
                               traj.reward, traj.terminated, traj.done, settings, pro_ent)
        pro, aux = ppo_update(pro_net, pro, pro_batch, k_upd, settings)
    else:
        batch = advantages(adv_net, adv.params, r["adv_obs"], r["a_a"], r["lp_a"], r["v_a"],
                           adv_view(traj.final_obs), -traj.reward, traj.terminated, traj.done, settings, adv_ent)
        adv, aux = ppo_update(adv_net, adv, batch, k_upd, settings)
    done = traj.done.astype(jnp.float32)
    n = done.sum()
    ret = jnp.where(n > 0, (traj.episode_return * done).sum() / jnp.maximum(n, 1.0), jnp.nan)
    metrics = {f"{learner}_{k}": v for k, v in aux.items()}
    metrics.update({f"{learner}_return": ret, f"{learner}_episodes": n})
    return Phase(pro, adv, env_state, obs, metrics, pro_batch)
