"""DrM: visual RL through dormant-ratio minimisation (Xu et al. 2024, "DrM: Mastering Visual
Reinforcement Learning through Dormant Ratio Minimization", ICLR, arXiv:2310.19668).

DrQ-v2 (random-shift augmentation, conv encoder f, deterministic actor mu, twin critics with a
Polyak target, n-step targets; see `jaxrl.algos.drqv2`) with three mechanisms driven by the
actor's tau-dormant ratio beta (`jaxrl.core.drq.dormant_ratio`, tau = 0.025, measured at every
update on the augmented, detached features of the minibatch):

1. Dormant-ratio-guided perturbation, every `perturb_interval` agent steps:
       alpha = clip(1 - k beta, alpha_min, alpha_max),   theta <- alpha theta + (1 - alpha) phi
   for the Dense weights and biases of actor, critic, target critic and value net, phi a fresh
   initialisation of the same net (orthogonal kernels, zero biases); LayerNorms and the conv
   encoder keep theta; every Adam state restarts.
2. Awaken exploration: sigma_beta = 1 / (1 + exp(-k_sigma (beta - beta_hat))). The agent is
   "awake" from the first update after `learning_starts` at which beta < beta_hat; before that
   sigma = sigma_beta, after it sigma = max(sigma_beta, linear_schedule(std_init, std_final,
   std_duration, t - t_awake)).
3. Dormant-ratio-guided exploitation: a value net V(z) regresses on the current critic by the
   expectile loss E[|tau_e - 1(u > 0)| u^2], u = V(z) - min_j Q_j(z, a) (weight tau_e where
   u < 0, 1 - tau_e otherwise, as the official code), and the critic target blends it in:
       lambda = lambda_hat / (1 + exp(k_lambda (beta - beta_hat)))
       y = R + discount * (lambda V(z') + (1 - lambda) min_j Q'_j(z', a'))

Update order (the official code's): [perturb when due] -> sample, augment, encode -> beta ->
awaken check -> V step -> critic and encoder step -> actor step -> target update. The dormant
ratio of the actor (mean over the chunk's updates) and of the critic (one minibatch at the end
of the chunk) are logged every chunk, with sigma and lambda.

Differences from the official code (XuGW-Kevin/DrM): those of `jaxrl.algos.drqv2` (our JAX-rendered
tasks, agent-step progress, record-uniform replay of `buffer_size` records, several envs per seed,
chunks), and the perturbation checks its schedule once per training iteration (after the env
steps) rather than at update calls with step % interval == 0, which is the same for one env and
`updates_per_step` <= 1; and the fresh initialisations phi are drawn at the start of each chunk, not
at the perturbation (the same distribution; two perturbations within one chunk, perturb_interval
below the chunk's agent steps, would share phi). Drawing them inside the scan cost every iteration
an init of all four nets, since a vmapped cond runs both branches.

Defaults are the official code's for DMC "medium" tasks: DrQ-v2's, plus tau 0.025,
perturb every 100k agent steps with k = 2, alpha in [0.2, 1.0], k_sigma = 10, beta_hat = 0.2,
expectile 0.9, lambda_hat = 0.6, k_lambda = 50.

Run: `python -m jaxrl.algos.drm --env pixels/cartpole_swingup --num-seeds 2`
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
from jaxrl.core.drq import (
    Actor, Critic, Encoder, Value, dormant_ratio, linear_schedule, random_shift, sample_action,
)
from jaxrl.core.evaluate import evaluate
from jaxrl.core.frame_buffer import FrameBuffer, frame_buffer_add, frame_buffer_init, frame_buffer_sample
from jaxrl.core.offpolicy import polyak_update, update_schedule
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config:
    """DrM hyperparameters (defaults: the official code's, see the module docstring)."""

    env: str = "pixels/cartpole_swingup"
    """environment (continuous actions; a pixels/ task or a state env such as Pendulum-v1)"""
    image_size: int = 64
    """pixel tasks: image height = width (>= 32; 84 as the paper)"""
    frame_stack: int = 3
    """pixel tasks: frames stacked in an observation"""
    action_repeat: int = 2
    """pixel tasks: control steps per agent step"""
    episode_steps: int = 0
    """pixel tasks: agent steps per episode (0: 1000 control steps, as DMC)"""
    total_timesteps: int = 100_000
    """agent steps per seed, summed over envs, warm-up included (rounded up to whole chunks)"""
    num_envs: int = 1
    """parallel envs per seed"""
    buffer_size: int = 100_000
    """replay capacity in records (observations), shared among the envs"""
    batch_size: int = 256
    """transitions per gradient update"""
    learning_starts: int = 2_000
    """agent steps of uniform random actions before the first update"""
    updates_per_step: float = 0.5
    """gradient updates per agent step (summed over envs)"""
    lr: float = 1e-4
    """Adam learning rate of the encoder, actor, critic and value net"""
    feature_dim: int = 50
    """width of the LayerNorm trunks"""
    hidden: tuple[int, ...] = (1024, 1024)
    """hidden sizes of the actor, critic and value heads"""
    encoder_features: tuple[int, ...] = (32, 32, 32, 32)
    """conv channels (first layer stride 2, the others 1)"""
    n_step: int = 3
    """steps summed in each target"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.01
    """Polyak rate of the target critic"""
    std_init: float = 1.0
    """exploration std at awakening"""
    std_final: float = 0.1
    """exploration std std_duration agent steps after awakening"""
    std_duration: int = 500_000
    """agent steps of the linear std schedule"""
    std_clip: float = 0.3
    """clip of the target and actor-update noise"""
    pad: int = 4
    """random-shift padding in pixels"""
    dormant_tau: float = 0.025
    """a unit is dormant when its mean |output| is <= dormant_tau times its layer's mean"""
    perturb_interval: int = 100_000
    """agent steps between perturbations"""
    perturb_rate: float = 2.0
    """k in alpha = clip(1 - k beta, alpha_min, alpha_max)"""
    alpha_min: float = 0.2
    """smallest share of the old parameters a perturbation keeps"""
    alpha_max: float = 1.0
    """largest share of the old parameters a perturbation keeps (1: none once beta = 0)"""
    target_dormant_ratio: float = 0.2
    """beta_hat of the awaken and exploitation sigmoids"""
    dormant_temp: float = 10.0
    """k_sigma: steepness of sigma_beta"""
    expectile: float = 0.9
    """tau_e of the value net's expectile regression"""
    target_lambda: float = 0.6
    """lambda_hat: largest weight of V in the critic target"""
    lambda_temp: float = 50.0
    """k_lambda: steepness of lambda(beta)"""
    eval_episodes: int = 10
    """deterministic evaluation episodes at the end of each chunk (0: none)"""
    num_chunks: int = 10
    """jitted chunks the run is cut into"""

    def __post_init__(self):
        for name in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "lr", "feature_dim", "n_step",
                     "std_duration", "num_chunks", "frame_stack", "action_repeat", "perturb_interval"):
            C.check_positive(name, getattr(self, name))
        for name in ("learning_starts", "eval_episodes", "episode_steps", "std_init", "std_final", "std_clip", "pad", "perturb_rate",
                     "dormant_temp", "lambda_temp", "dormant_tau"):
            C.check_positive(name, getattr(self, name), allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("tau", self.tau, 0.0, 1.0, lo_open=True)
        for name in ("alpha_min", "alpha_max", "target_dormant_ratio", "expectile", "target_lambda"):
            C.check_range(name, getattr(self, name), 0.0, 1.0)
        if C.concrete(self.alpha_min, self.alpha_max) and self.alpha_min > self.alpha_max:
            raise ValueError(f"alpha_min={self.alpha_min} must be <= alpha_max={self.alpha_max}")
        update_schedule(self.updates_per_step, self.num_envs)
        if not self.hidden or any(not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be non-empty positive ints, got {self.hidden!r}")
        if any(not isinstance(f, int) or f <= 0 for f in self.encoder_features):
            raise ValueError(f"encoder_features must be positive ints, got {self.encoder_features!r}")
        if C.concrete(self.learning_starts, self.total_timesteps) and self.learning_starts >= self.total_timesteps:
            raise ValueError(f"learning_starts={self.learning_starts} must be < total_timesteps={self.total_timesteps}")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size={self.batch_size} must be <= buffer_size={self.buffer_size}")
        spec = envs.spec(self.env, **self.env_kwargs).require(
            "drm", discrete=False, obs_ndim=(1, 3), hint="Use a continuous-action env (pixels/..., Pendulum-v1)")
        if spec.image and self.image_size - 2 * len(self.encoder_features) < 1:
            raise ValueError(f"image_size={self.image_size} is too small for {len(self.encoder_features)} conv layers")

    @property
    def env_kwargs(self) -> dict:
        """What `envs.make` takes for the env: image settings for pixel tasks only."""
        if self.env.startswith("pixels/"):
            kwargs = dict(image_size=self.image_size, frame_stack=self.frame_stack, action_repeat=self.action_repeat)
            return kwargs | (dict(max_steps_in_episode=self.episode_steps) if self.episode_steps else {})
        return {}

    @property
    def capacity(self) -> int:
        """Replay records per env."""
        return max(1, self.buffer_size // self.num_envs)

    @property
    def warmup_steps(self) -> int:
        """Vectorised env steps of random actions in `init` (enough for one n-step sample)."""
        return max(math.ceil(self.learning_starts / self.num_envs), self.n_step + self.frame_stack + 4)

    @property
    def iters_per_chunk(self) -> int:
        vec_steps, _ = update_schedule(self.updates_per_step, self.num_envs)
        remaining = self.total_timesteps - self.warmup_steps * self.num_envs
        return max(1, math.ceil(remaining / (vec_steps * self.num_envs) / self.num_chunks))


# Learns Pendulum-v1 from states (eval return >= -400 within 8k agent steps), as drqv2.PENDULUM.
PENDULUM = dict(env="Pendulum-v1", total_timesteps=8_000, learning_starts=1_000, updates_per_step=1.0, lr=1e-3,
                feature_dim=32, hidden=(64, 64), batch_size=128, buffer_size=20_000, std_duration=4_000,
                std_final=0.1, n_step=1, eval_episodes=5, perturb_interval=4_000)


# ----------------------------------------------------------------------------- pure pieces


def perturb(params, fresh, alpha):
    """theta <- alpha theta + (1 - alpha) phi for the leaves of Dense layers (a module holding a
    `kernel`, here never a conv); other leaves (LayerNorm scale and bias) keep theta."""

    def mix(module, new):
        if isinstance(module, dict) and "kernel" in module:
            return jax.tree.map(lambda p, f: alpha * p + (1.0 - alpha) * f, module, new)
        if isinstance(module, dict):
            return {k: mix(module[k], new[k]) for k in module}
        return module

    return mix(params, fresh)


def perturb_factor(beta, rate, alpha_min, alpha_max):
    """alpha = clip(1 - rate * beta, alpha_min, alpha_max)."""
    return jnp.clip(1.0 - rate * beta, alpha_min, alpha_max)


def awaken_std(beta, target, temp):
    """sigma_beta = 1 / (1 + exp(-temp (beta - target)))."""
    return jax.nn.sigmoid(temp * (beta - target))


def exploit_lambda(beta, target_lambda, target, temp):
    """lambda = target_lambda / (1 + exp(temp (beta - target)))."""
    return target_lambda * jax.nn.sigmoid(-temp * (beta - target))


def expectile_loss(u, expectile):
    """mean(w u^2), w = expectile where u < 0 else 1 - expectile (u = V - Q)."""
    return (jnp.where(u < 0, expectile, 1.0 - expectile) * u ** 2).mean()


# ----------------------------------------------------------------------------- training


class Carry(NamedTuple):
    critic: TrainState  # params {"encoder", "critic"}
    actor: TrainState
    value: TrainState
    critic_target: Any
    buffer: FrameBuffer
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array  # agent steps, summed over envs
    updates: jax.Array
    beta: jax.Array  # the actor's dormant ratio at the last update (1 before any)
    awake_at: jax.Array  # agent step of awakening, -1 while asleep
    perturbations: jax.Array


def make_train(config: Config) -> Trainer:
    spec = envs.spec(config.env, **config.env_kwargs)
    env, env_params = envs.make(config.env, **config.env_kwargs)
    venv = envs.VecEnv(env)
    encoder = Encoder(tuple(config.encoder_features) if spec.image else ())
    actor = Actor(spec.action_dim, config.feature_dim, tuple(config.hidden))
    critic = Critic(config.feature_dim, tuple(config.hidden))
    value = Value(config.feature_dim, tuple(config.hidden))
    low, high = spec.low(), spec.high()
    to_env = lambda a: (high + low) / 2.0 + (high - low) / 2.0 * a  # actions live in [-1, 1] inside
    channels = 3 if spec.image else spec.obs_shape[-1]
    num_stack = spec.obs_shape[-1] // channels if spec.image else 1
    newest = (lambda obs: obs[..., -channels:]) if spec.image else (lambda obs: obs)
    augment = (lambda key, x: random_shift(key, x, config.pad)) if spec.image else (lambda key, x: x.astype(jnp.float32))
    vec_steps, num_updates = update_schedule(config.updates_per_step, config.num_envs)
    n_envs, batch_size = config.num_envs, config.batch_size
    adam = optax.adam(config.lr)
    obs0 = jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype)
    feat_dim = jax.eval_shape(lambda: encoder.apply(encoder.init(jax.random.PRNGKey(0), obs0), obs0)).shape[-1]
    feat0, act0 = jnp.zeros((1, feat_dim)), jnp.zeros((1, spec.action_dim))

    def std_of(carry: Carry):
        """Awaken exploration: sigma_beta, and after awakening the schedule restarted there."""
        sigma_beta = awaken_std(carry.beta, config.target_dormant_ratio, config.dormant_temp)
        scheduled = linear_schedule(config.std_init, config.std_final, config.std_duration,
                                    carry.env_steps - carry.awake_at)
        return jnp.where(carry.awake_at >= 0, jnp.maximum(sigma_beta, scheduled), sigma_beta)

    def init(key) -> Carry:
        k_enc, k_actor, k_critic, k_value, k_env, k_warm, key = jax.random.split(key, 7)
        critic_params = critic.init(k_critic, feat0, act0)
        obs, env_state = venv.reset(jax.random.split(k_env, n_envs), env_params)
        carry = Carry(
            TrainState.create(apply_fn=None, params={"encoder": encoder.init(k_enc, obs0), "critic": critic_params},
                              tx=adam),
            TrainState.create(apply_fn=None, params=actor.init(k_actor, feat0), tx=adam),
            TrainState.create(apply_fn=None, params=value.init(k_value, feat0), tx=adam),
            critic_params,
            frame_buffer_init(jnp.zeros(newest(obs0)[0].shape, spec.obs_dtype), spec.action_dim, n_envs,
                              config.capacity),
            env_state, obs, key, jnp.int32(0), jnp.int32(0), jnp.float32(1.0), jnp.int32(-1), jnp.int32(0),
        )
        keys = jax.random.split(k_warm, config.warmup_steps)
        return jax.lax.scan(lambda c, k: env_step(c, k, random=True), carry, keys)[0]

    def env_step(carry: Carry, key, *, random: bool):
        k_act, k_env = jax.random.split(key)
        if random:
            action = jax.random.uniform(k_act, (n_envs, spec.action_dim), jnp.float32, -1.0, 1.0)
        else:  # behaviour: mu + sigma eps, no noise clip
            mu = actor.apply(carry.actor.params, encoder.apply(carry.critic.params["encoder"], carry.obs))
            action = sample_action(k_act, mu, std_of(carry), None)
        next_obs, env_state, reward, term, trunc, info = venv.step(
            jax.random.split(k_env, n_envs), carry.env_state, to_env(action), env_params)
        done = jnp.logical_or(term, trunc)
        buffer = frame_buffer_add(carry.buffer, newest(carry.obs), action, reward, term, done,
                                  newest(info["final_observation"]))
        carry = carry._replace(buffer=buffer, env_state=env_state, obs=next_obs, env_steps=carry.env_steps + n_envs)
        return carry, (info["episode_return"], done)

    def fresh_inits(key):
        """phi of mechanism 1: fresh initialisations of the actor, critic, target critic and value net."""
        k_actor, k_critic, k_target, k_value = jax.random.split(key, 4)
        return {"actor": actor.init(k_actor, feat0), "critic": critic.init(k_critic, feat0, act0),
                "target": critic.init(k_target, feat0, act0), "value": value.init(k_value, feat0)}

    def perturb_all(carry: Carry, fresh):
        """Mechanism 1: shrink towards fresh initialisations by alpha(beta); restart Adam."""
        alpha = perturb_factor(carry.beta, config.perturb_rate, config.alpha_min, config.alpha_max)
        critic_params = {"encoder": carry.critic.params["encoder"],
                         "critic": perturb(carry.critic.params["critic"], fresh["critic"], alpha)}
        restart = lambda ts, params: ts.replace(params=params, opt_state=adam.init(params))
        return carry._replace(
            critic=restart(carry.critic, critic_params),
            actor=restart(carry.actor, perturb(carry.actor.params, fresh["actor"], alpha)),
            value=restart(carry.value, perturb(carry.value.params, fresh["value"], alpha)),
            critic_target=perturb(carry.critic_target, fresh["target"], alpha),
            perturbations=carry.perturbations + 1)

    def value_loss(value_params, feat, q):
        return expectile_loss(value.apply(value_params, feat) - q, config.expectile)

    def critic_loss(params, obs, action, y):
        feat = encoder.apply(params["encoder"], obs)
        q = critic.apply(params["critic"], feat, action)
        return ((q - y) ** 2).mean(-1).sum(), (feat, q.mean())

    def actor_loss(actor_params, critic_params, feat, key, std):
        a = sample_action(key, actor.apply(actor_params, feat), std, config.std_clip)
        return -critic.apply(critic_params, feat, a).min(0).mean()

    def gradient_update(carry: Carry, key):
        k_batch, k_aug, k_aug_next, k_next, k_act = jax.random.split(key, 5)
        batch = frame_buffer_sample(carry.buffer, k_batch, batch_size, num_stack, config.n_step, config.gamma)
        obs, next_obs = augment(k_aug, batch.obs), augment(k_aug_next, batch.next_obs)
        enc = carry.critic.params["encoder"]
        feat_sg = jax.lax.stop_gradient(encoder.apply(enc, obs))
        beta = dormant_ratio(actor, carry.actor.params, feat_sg, tau=config.dormant_tau)
        wake = (carry.awake_at < 0) & (carry.env_steps > config.learning_starts) & (beta < config.target_dormant_ratio)
        carry = carry._replace(beta=beta, awake_at=jnp.where(wake, carry.env_steps, carry.awake_at))
        std = std_of(carry)
        # mechanism 3: V regresses on the current critic, then enters the target with weight lambda
        q_now = critic.apply(carry.critic.params["critic"], feat_sg, batch.action).min(0)
        v_loss, v_grads = jax.value_and_grad(value_loss)(carry.value.params, feat_sg, q_now)
        value_ts = carry.value.apply_gradients(grads=v_grads)
        next_feat = jax.lax.stop_gradient(encoder.apply(enc, next_obs))
        next_action = sample_action(k_next, actor.apply(carry.actor.params, next_feat), std, config.std_clip)
        lam = exploit_lambda(beta, config.target_lambda, config.target_dormant_ratio, config.lambda_temp)
        next_v = lam * value.apply(value_ts.params, next_feat) + (1.0 - lam) * critic.apply(
            carry.critic_target, next_feat, next_action).min(0)
        y = jax.lax.stop_gradient(batch.reward + batch.discount * next_v)
        (c_loss, (feat, q_mean)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            carry.critic.params, obs, batch.action, y)
        critic_ts = carry.critic.apply_gradients(grads=grads)
        a_loss, a_grads = jax.value_and_grad(actor_loss)(
            carry.actor.params, critic_ts.params["critic"], jax.lax.stop_gradient(feat), k_act, std)
        carry = carry._replace(
            critic=critic_ts, actor=carry.actor.apply_gradients(grads=a_grads), value=value_ts,
            critic_target=polyak_update(critic_ts.params["critic"], carry.critic_target, config.tau),
            updates=carry.updates + 1)
        return carry, (c_loss, a_loss, v_loss, q_mean, beta, std, lam)

    def iteration(carry: Carry, fresh):
        key, k_env, k_upd = jax.random.split(carry.key, 3)
        before = carry.env_steps
        carry, episodes = jax.lax.scan(lambda c, k: env_step(c, k, random=False), carry._replace(key=key),
                                       jax.random.split(k_env, vec_steps))
        due = carry.env_steps // config.perturb_interval > before // config.perturb_interval
        carry = jax.lax.cond(due, perturb_all, lambda c, _: c, carry, fresh)
        carry, stats = jax.lax.scan(gradient_update, carry, jax.random.split(k_upd, num_updates))
        return carry, (episodes, stats)

    def critic_dormant(carry: Carry, key):
        k_batch, k_aug = jax.random.split(key)
        batch = frame_buffer_sample(carry.buffer, k_batch, batch_size, num_stack, config.n_step, config.gamma)
        feat = encoder.apply(carry.critic.params["encoder"], augment(k_aug, batch.obs))
        return dormant_ratio(critic, carry.critic.params["critic"], feat, batch.action, tau=config.dormant_tau)

    def policy(carry: Carry):
        return lambda obs, key: to_env(actor.apply(carry.actor.params, encoder.apply(carry.critic.params["encoder"], obs)))

    def update(carry: Carry):
        # phi is drawn once per chunk: under vmap over seeds the cond below runs both branches at every
        # iteration, and drawing the inits there (orthogonal kernels: QR) doubled a pixel update's cost
        key, k_fresh = jax.random.split(carry.key)
        fresh = fresh_inits(k_fresh)
        carry, ((returns, done), (c_loss, a_loss, v_loss, q_mean, beta, std, lam)) = jax.lax.scan(
            lambda c, _: iteration(c, fresh), carry._replace(key=key), None, config.iters_per_chunk)
        key, k_eval, k_dormant = jax.random.split(carry.key, 3)
        carry = carry._replace(key=key)
        if config.eval_episodes > 0:
            eval_return, _ = evaluate(env, env_params, policy(carry), k_eval, config.eval_episodes, spec.max_steps)
        else:
            eval_return = jnp.float32(jnp.nan)
        metrics = {
            "env_steps": carry.env_steps,
            "frames": carry.env_steps * (config.action_repeat if spec.image else 1),
            **episode_metrics(returns, done),
            "eval_return": eval_return,
            "critic_loss": c_loss.mean(),
            "actor_loss": a_loss.mean(),
            "value_loss": v_loss.mean(),
            "q_mean": q_mean.mean(),
            "std": std.mean(),
            "lambda": lam.mean(),
            "actor_dormant": beta.mean(),
            "critic_dormant": critic_dormant(carry, k_dormant),
            "awake_at": carry.awake_at,
            "perturbations": carry.perturbations,
            "updates": carry.updates,
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
