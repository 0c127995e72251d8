"""DrQ-v2: data-regularised Q-learning for pixel control (Yarats, Fergus, Lazaric & Pinto 2021,
"Mastering Visual Continuous Control: Improved Data-Augmented Reinforcement Learning",
arXiv:2107.09645).

DDPG from pixels with an augmentation: every image of a minibatch is replicate-padded by 4 pixels
and shifted by a random integer in [0, 8] per axis, resampled bilinearly (`jaxrl.core.drq`). A conv
encoder f, a deterministic actor mu(f(s)) in [-1, 1]^|A| and twin critics Q_1, Q_2 with a Polyak
target Q'. With z = f(aug(s)), z' = f(aug(s')) (no gradient) and the n-step replay entry
(R, discount = gamma^n (1 - terminated)):

    a'  = clamp(mu(z') + clip(sigma(t) eps, -c, c)),             eps ~ N(0, I)
    y   = R + discount * min_j Q'_j(z', a')
    L_Q = sum_j E[(Q_j(z, a) - y)^2]                            (trains Q and the encoder)
    L_pi = -E[min_j Q_j(sg(z), clamp(mu(sg(z)) + clip(sigma(t) eps, -c, c)))]
    Q'  <- tau Q + (1 - tau) Q'                                  after every update

sigma(t) = linear_schedule(std_init, std_final, std_duration, t) over agent steps; behaviour
actions are mu(f(s)) + sigma(t) eps without the clip c, evaluation uses mu. The first
`learning_starts` agent steps take uniform random actions and fill the replay; then every agent
step is followed by `updates_per_step` gradient updates (0.5: one update every second step, as the
official code). The replay stores each frame once (`jaxrl.core.frame_buffer`). Every chunk logs the
dormant ratio of the actor and critic (`jaxrl.core.drq.dormant_ratio`) on one augmented minibatch,
to compare with DrM.

On a state observation (e.g. `Pendulum-v1`) the encoder is the identity and the LayerNorm trunk
of actor and critic is the torso (no augmentation).

Differences from the official code (facebookresearch/drqv2):
- pixel tasks are ours, rendered in JAX (`envs.pixels`), not DeepMind Control; episodes end by
  time limit and bootstrap (the official code masks by the env's discount, also 1 at time limit);
- progress counts agent steps (`env_steps`); frames = agent steps * action_repeat (`frames` metric);
- the replay keeps `buffer_size` records (official: 1M transitions; ours defaults to 100k to fit a
  laptop) and samples records uniformly, not episodes then steps;
- several envs per seed (`num_envs`) and the update-to-data ratio `updates_per_step`;
- training is cut into jitted chunks; evaluation runs `eval_episodes` at the end of every chunk.

Defaults are the official code's: Adam 1e-4, batch 256, feature_dim 50, hidden 1024, n-step 3,
gamma 0.99, tau 0.01, std 1.0 -> 0.1 over 500k agent steps ("medium"), noise clip 0.3, 84x84
frames stacked by 3 with action repeat 2 (ours default to 64x64).

Run: `python -m jaxrl.algos.drqv2 --env pixels/cartpole_swingup --num-seeds 2`
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
from jaxrl.core.drq import Actor, Critic, Encoder, dormant_ratio, linear_schedule, random_shift, sample_action
from jaxrl.core.evaluate import evaluate
from jaxrl.core.frame_buffer import FrameBuffer, frame_buffer_add, frame_buffer_init, frame_buffer_sample
from jaxrl.core.offpolicy import polyak_update, update_schedule
from jaxrl.core.train import Trainer, episode_metrics


@dataclass(frozen=True)
class Config:
    """DrQ-v2 hyperparameters (defaults: the official code's, see the module docstring)."""

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
    """Adam learning rate of the encoder, actor and critic"""
    feature_dim: int = 50
    """width of the LayerNorm trunk"""
    hidden: tuple[int, ...] = (1024, 1024)
    """hidden sizes of the actor and critic heads"""
    encoder_features: tuple[int, ...] = (32, 32, 32, 32)
    """conv channels (first layer stride 2, the others 1)"""
    n_step: int = 3
    """steps summed in each target"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.01
    """Polyak rate of the target critic"""
    std_init: float = 1.0
    """exploration std at step 0"""
    std_final: float = 0.1
    """exploration std after std_duration agent steps"""
    std_duration: int = 500_000
    """agent steps of the linear std schedule"""
    std_clip: float = 0.3
    """clip of the target and actor-update noise"""
    pad: int = 4
    """random-shift padding in pixels"""
    eval_episodes: int = 10
    """deterministic evaluation episodes at the end of each chunk (0: none)"""
    num_chunks: int = 10
    """jitted chunks the run is cut into"""

    def __post_init__(self):
        for name in ("total_timesteps", "num_envs", "buffer_size", "batch_size", "lr", "feature_dim", "n_step",
                     "std_duration", "num_chunks", "frame_stack", "action_repeat"):
            C.check_positive(name, getattr(self, name))
        for name in ("learning_starts", "eval_episodes", "episode_steps", "std_init", "std_final", "std_clip", "pad"):
            C.check_positive(name, getattr(self, name), allow_zero=True)
        C.check_range("gamma", self.gamma, 0.0, 1.0)
        C.check_range("tau", self.tau, 0.0, 1.0, lo_open=True)
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
            "drqv2", discrete=False, obs_ndim=(1, 3), hint="Use a continuous-action env (pixels/..., Pendulum-v1)")
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


# Learns Pendulum-v1 from states (eval return >= -400 within 8k agent steps): small networks, a
# short std schedule, one update per step.
PENDULUM = dict(env="Pendulum-v1", total_timesteps=8_000, learning_starts=1_000, updates_per_step=1.0, lr=1e-3,
                feature_dim=32, hidden=(64, 64), batch_size=128, buffer_size=20_000, std_duration=4_000,
                std_final=0.1, n_step=1, eval_episodes=5)


class Carry(NamedTuple):
    critic: TrainState  # params {"encoder", "critic"}: the encoder learns through the critic loss
    actor: TrainState
    critic_target: Any
    buffer: FrameBuffer
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array  # agent steps, summed over envs
    updates: jax.Array


def make_train(config: Config) -> Trainer:
    spec = envs.spec(config.env, **config.env_kwargs)
    env, env_params = envs.make(config.env, **config.env_kwargs)
    venv = envs.VecEnv(env)
    encoder = Encoder(tuple(config.encoder_features) if spec.image else ())
    actor = Actor(spec.action_dim, config.feature_dim, tuple(config.hidden))
    critic = Critic(config.feature_dim, tuple(config.hidden))
    low, high = spec.low(), spec.high()
    to_env = lambda a: (high + low) / 2.0 + (high - low) / 2.0 * a  # actions live in [-1, 1] inside
    channels = 3 if spec.image else spec.obs_shape[-1]
    num_stack = spec.obs_shape[-1] // channels if spec.image else 1
    newest = (lambda obs: obs[..., -channels:]) if spec.image else (lambda obs: obs)
    augment = (lambda key, x: random_shift(key, x, config.pad)) if spec.image else (lambda key, x: x.astype(jnp.float32))
    vec_steps, num_updates = update_schedule(config.updates_per_step, config.num_envs)
    n_envs, batch_size = config.num_envs, config.batch_size
    std_at = lambda steps: linear_schedule(config.std_init, config.std_final, config.std_duration, steps)

    def init(key) -> Carry:
        k_enc, k_actor, k_critic, k_env, k_warm, key = jax.random.split(key, 6)
        obs0 = jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype)
        enc_params = encoder.init(k_enc, obs0)
        feat = encoder.apply(enc_params, obs0)
        critic_params = critic.init(k_critic, feat, jnp.zeros((1, spec.action_dim)))
        obs, env_state = venv.reset(jax.random.split(k_env, n_envs), env_params)
        adam = optax.adam(config.lr)
        carry = Carry(
            TrainState.create(apply_fn=None, params={"encoder": enc_params, "critic": critic_params}, tx=adam),
            TrainState.create(apply_fn=actor.apply, params=actor.init(k_actor, feat), tx=adam),
            critic_params,
            frame_buffer_init(jnp.zeros(newest(obs0)[0].shape, spec.obs_dtype), spec.action_dim, n_envs,
                              config.capacity),
            env_state, obs, key, jnp.int32(0), jnp.int32(0),
        )
        keys = jax.random.split(k_warm, config.warmup_steps)
        return jax.lax.scan(lambda c, k: env_step(c, k, random=True), carry, keys)[0]

    def act(carry: Carry, obs, key):
        """Behaviour action in [-1, 1]: mu + sigma(t) eps, no noise clip."""
        mu = actor.apply(carry.actor.params, encoder.apply(carry.critic.params["encoder"], obs))
        return sample_action(key, mu, std_at(carry.env_steps), None)

    def env_step(carry: Carry, key, *, random: bool):
        k_act, k_env = jax.random.split(key)
        if random:
            action = jax.random.uniform(k_act, (n_envs, spec.action_dim), jnp.float32, -1.0, 1.0)
        else:
            action = act(carry, carry.obs, k_act)
        next_obs, env_state, reward, term, trunc, info = venv.step(
            jax.random.split(k_env, n_envs), carry.env_state, to_env(action), env_params)
        done = jnp.logical_or(term, trunc)
        buffer = frame_buffer_add(carry.buffer, newest(carry.obs), action, reward, term, done,
                                  newest(info["final_observation"]))
        carry = carry._replace(buffer=buffer, env_state=env_state, obs=next_obs, env_steps=carry.env_steps + n_envs)
        return carry, (info["episode_return"], done)

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
        std = std_at(carry.env_steps)
        next_feat = jax.lax.stop_gradient(encoder.apply(carry.critic.params["encoder"], next_obs))
        next_action = sample_action(k_next, actor.apply(carry.actor.params, next_feat), std, config.std_clip)
        y = jax.lax.stop_gradient(
            batch.reward + batch.discount * critic.apply(carry.critic_target, next_feat, next_action).min(0))
        (c_loss, (feat, q_mean)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            carry.critic.params, obs, batch.action, y)
        critic_ts = carry.critic.apply_gradients(grads=grads)
        a_loss, a_grads = jax.value_and_grad(actor_loss)(
            carry.actor.params, critic_ts.params["critic"], jax.lax.stop_gradient(feat), k_act, std)
        carry = carry._replace(
            critic=critic_ts, actor=carry.actor.apply_gradients(grads=a_grads),
            critic_target=polyak_update(critic_ts.params["critic"], carry.critic_target, config.tau),
            updates=carry.updates + 1)
        return carry, (c_loss, a_loss, q_mean)

    def iteration(carry: Carry, _):
        key, k_env, k_upd = jax.random.split(carry.key, 3)
        carry, episodes = jax.lax.scan(lambda c, k: env_step(c, k, random=False), carry._replace(key=key),
                                       jax.random.split(k_env, vec_steps))
        carry, losses = jax.lax.scan(gradient_update, carry, jax.random.split(k_upd, num_updates))
        return carry, (episodes, losses)

    def dormant_ratios(carry: Carry, key):
        """Dormant ratio of the actor and of the critic on one augmented minibatch."""
        k_batch, k_aug, k_act = jax.random.split(key, 3)
        batch = frame_buffer_sample(carry.buffer, k_batch, batch_size, num_stack, config.n_step, config.gamma)
        feat = encoder.apply(carry.critic.params["encoder"], augment(k_aug, batch.obs))
        return (dormant_ratio(actor, carry.actor.params, feat),
                dormant_ratio(critic, carry.critic.params["critic"], feat, batch.action))

    def policy(carry: Carry):
        return lambda obs, key: to_env(actor.apply(carry.actor.params, encoder.apply(carry.critic.params["encoder"], obs)))

    def update(carry: Carry):
        carry, ((returns, done), (c_loss, a_loss, q_mean)) = jax.lax.scan(
            iteration, carry, None, config.iters_per_chunk)
        key, k_eval, k_dormant = jax.random.split(carry.key, 3)
        carry = carry._replace(key=key)
        if config.eval_episodes > 0:
            eval_return, _ = evaluate(env, env_params, policy(carry), k_eval, config.eval_episodes, spec.max_steps)
        else:
            eval_return = jnp.float32(jnp.nan)
        actor_dormant, critic_dormant = dormant_ratios(carry, k_dormant)
        metrics = {
            "env_steps": carry.env_steps,
            "frames": carry.env_steps * (config.action_repeat if spec.image else 1),
            **episode_metrics(returns, done),
            "eval_return": eval_return,
            "critic_loss": c_loss.mean(),
            "actor_loss": a_loss.mean(),
            "q_mean": q_mean.mean(),
            "std": std_at(carry.env_steps),
            "actor_dormant": actor_dormant,
            "critic_dormant": critic_dormant,
            "updates": carry.updates,
        }
        return carry, metrics

    return Trainer(init, update, config.num_chunks)


def main(argv=None):
    from jaxrl.core.cli import main as cli_main

    return cli_main(Config, make_train, argv)


if __name__ == "__main__":
    main()
