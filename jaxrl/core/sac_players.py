"""SAC's pieces shared by `jaxrl.algos.sac` and IWOCS's SAC learner (`jaxrl.algos.iwocs`,
`learner="sac"`): the tanh-squashed Gaussian, the soft target, the temperature loss, the actor
network and one gradient step (Haarnoja et al. 2018, arXiv:1812.05905; the equations are in
`jaxrl.algos.sac`'s docstring).

A learner is any NamedTuple with the fields `actor`, `critic` (flax `TrainState`s), `critic_target`
(parameters) and `alpha` (a `TrainState` whose params are {"log_alpha": scalar});
`sac_gradient_step` returns it with those four replaced, so an algorithm's carry can be the
learner itself (SAC) or hold one (IWOCS).
"""
from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.core.nets import MLP, QEnsemble
from jaxrl.core.offpolicy import Transition, polyak_update


def squash_log_det(u, scale):
    """log |d a / d u| of a = offset + scale tanh(u), summed over the action's last axis:
    sum_i log(scale_i) + log(1 - tanh(u_i)^2), the latter as 2 (log 2 - u - softplus(-2u))."""
    log_det = jnp.log(scale) + 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return log_det.sum(-1)


def tanh_gaussian_sample(mean, log_std, noise, scale, offset):
    """(action, log pi(action)) of the tanh-squashed Gaussian, from standard normal `noise`:
    u = mean + exp(log_std) noise, action = offset + scale tanh(u),
    log pi = sum_i log N(u_i; mean_i, std_i) - squash_log_det(u, scale)."""
    u = mean + jnp.exp(log_std) * noise
    gauss = (-0.5 * noise**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)).sum(-1)
    return offset + scale * jnp.tanh(u), gauss - squash_log_det(u, scale)


def temperature_loss(log_alpha, log_prob, target_entropy):
    """J(alpha) = -log(alpha) E[log pi + H_target] (the gradient flows into log_alpha only)."""
    return -log_alpha * jax.lax.stop_gradient(jnp.mean(log_prob) + target_entropy)


def soft_target(reward, discount, next_q, next_log_prob, alpha):
    """y = R + discount (min_j Q'_j(s', a') - alpha log pi(a'|s')), no gradient; `next_q` is
    [num_critics, batch]."""
    return jax.lax.stop_gradient(reward + discount * (next_q.min(0) - alpha * next_log_prob))


class Actor(nn.Module):
    """The policy's mean and clipped log standard deviation of u (before the tanh)."""

    action_dim: int
    hidden: tuple[int, ...]
    activation: str
    log_std_min: float
    log_std_max: float

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.hidden, 2 * self.action_dim, self.activation,
                  kernel_init=nn.initializers.lecun_normal())(obs.astype(jnp.float32))
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class SACNets(NamedTuple):
    actor: Actor
    critic: QEnsemble
    scale: jax.Array  # the action box: a = offset + scale tanh(u)
    offset: jax.Array
    target_entropy: float

    def sample(self, actor_params, obs, key):
        """(action, log pi) of a reparameterised sample of the policy at `obs`."""
        mean, log_std = self.actor.apply(actor_params, obs)
        return tanh_gaussian_sample(mean, log_std, jax.random.normal(key, mean.shape), self.scale, self.offset)

    def mode(self, actor_params, obs):
        """The deterministic action offset + scale tanh(mu(s))."""
        return self.offset + self.scale * jnp.tanh(self.actor.apply(actor_params, obs)[0])


def sac_gradient_step(nets: SACNets, learner, batch: Transition, key, tau: float, autotune: bool = True,
                      alpha=None):
    """One critic, actor and temperature step on one minibatch, then the Polyak update of the
    target critics. Returns (learner, (critic loss, actor loss, mean Q, entropy, alpha)).
    `alpha` ([batch], optional) sets each transition's temperature instead of the learned one
    (QARL's adversary, whose temperature is part of its observation); it is not tuned then."""
    k_critic, k_actor = jax.random.split(key)
    autotune = autotune and alpha is None
    alpha = jnp.exp(learner.alpha.params["log_alpha"]) if alpha is None else alpha

    def critic_loss(critic_params):
        next_action, next_log_prob = nets.sample(learner.actor.params, batch.next_obs, k_critic)
        next_q = nets.critic.apply(learner.critic_target, batch.next_obs, next_action)
        y = soft_target(batch.reward, batch.discount, next_q, next_log_prob, alpha)
        q = nets.critic.apply(critic_params, batch.obs, batch.action)
        return 0.5 * ((q - y) ** 2).mean(-1).sum(), q.mean()

    def actor_loss(actor_params, critic_params):
        action, log_prob = nets.sample(actor_params, batch.obs, k_actor)
        q = nets.critic.apply(critic_params, batch.obs, action).min(0)
        return (alpha * log_prob - q).mean(), log_prob

    (c_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(learner.critic.params)
    critic_ts = learner.critic.apply_gradients(grads=grads)
    (a_loss, log_prob), grads = jax.value_and_grad(actor_loss, has_aux=True)(learner.actor.params, critic_ts.params)
    actor_ts = learner.actor.apply_gradients(grads=grads)
    alpha_ts = learner.alpha
    if autotune:
        grad = jax.grad(temperature_loss)(alpha_ts.params["log_alpha"], log_prob, nets.target_entropy)
        alpha_ts = alpha_ts.apply_gradients(grads={"log_alpha": grad})
    target = polyak_update(critic_ts.params, learner.critic_target, tau)
    learner = learner._replace(actor=actor_ts, critic=critic_ts, critic_target=target, alpha=alpha_ts)
    return learner, (c_loss, a_loss, q_mean, -log_prob.mean(), alpha)
