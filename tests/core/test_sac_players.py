"""jaxrl.core.sac_players: the tanh-Gaussian log-probability with its change-of-variables
correction, the temperature loss and the soft target against hand-computed values; one gradient
step moves the critics toward the soft target."""
import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core.sac_players import soft_target, tanh_gaussian_sample, temperature_loss


def test_tanh_gaussian_log_prob_by_hand():
    """One action dim, mean 0.3, log_std log(0.5), noise 0.5, Pendulum's scale 2, offset 0:
    u = 0.3 + 0.5 * 0.5 = 0.55; a = 2 tanh(0.55);
    log pi = log N(u; 0.3, 0.5) - log(2 (1 - tanh(0.55)^2))."""
    action, log_prob = jax.jit(tanh_gaussian_sample)(
        jnp.array([0.3]), jnp.log(jnp.array([0.5])), jnp.array([0.5]), jnp.array([2.0]), jnp.array([0.0]))
    u = 0.55
    log_normal = -0.5 * 0.5**2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
    expected = log_normal - math.log(2.0 * (1.0 - math.tanh(u) ** 2))
    np.testing.assert_allclose(action, [2.0 * math.tanh(u)], rtol=1e-6)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-5)


def test_tanh_gaussian_log_prob_matches_distrax_and_stays_finite():
    """Several dims with a scale and an offset: the same as distrax's transformed distribution
    (Normal -> tanh -> affine), summed over dims; finite where tanh(u) rounds to 1."""
    mean, log_std = jnp.array([[0.1, -0.4, 1.0]]), jnp.array([[-0.5, 0.2, 0.0]])
    noise, scale, offset = jnp.array([[0.3, -1.2, 0.7]]), jnp.array([1.0, 2.0, 0.5]), jnp.array([0.0, 1.0, -0.5])
    action, log_prob = jax.jit(tanh_gaussian_sample)(mean, log_std, noise, scale, offset)
    u = mean + jnp.exp(log_std) * noise
    dist = distrax.Transformed(
        distrax.MultivariateNormalDiag(mean, jnp.exp(log_std)),
        distrax.Chain([distrax.Block(distrax.ScalarAffine(offset, scale), 1), distrax.Block(distrax.Tanh(), 1)]))
    np.testing.assert_allclose(log_prob, dist.log_prob(offset + scale * jnp.tanh(u)), rtol=1e-4)
    _, far = jax.jit(tanh_gaussian_sample)(jnp.array([20.0]), jnp.array([0.0]), jnp.array([0.0]),
                                           jnp.array([1.0]), jnp.array([0.0]))
    # log(1 - tanh(20)^2) = 2 (log 2 - 20 - softplus(-40)), about -38.61
    np.testing.assert_allclose(far, -0.5 * math.log(2 * math.pi) - 2 * (math.log(2) - 20.0), rtol=1e-5)


def test_temperature_loss_by_hand():
    """alpha = 0.5, log pi of two samples -1 and 0.5 (entropy estimate 0.25), target entropy -1:
    J = -log(0.5) (mean log pi + H_target) = -log(0.5) * (-1.25); its gradient in log(alpha) is
    1.25 > 0, so a descent step lowers alpha: the policy is more random than the target asks."""
    log_alpha, log_prob = jnp.log(0.5), jnp.array([-1.0, 0.5])
    loss, grad = jax.jit(jax.value_and_grad(temperature_loss))(log_alpha, log_prob, -1.0)
    np.testing.assert_allclose(loss, -math.log(0.5) * -1.25, rtol=1e-6)
    np.testing.assert_allclose(grad, 1.25, rtol=1e-6)
    # too little entropy (log pi = 3 > -H_target): the gradient is negative, alpha grows
    assert float(jax.grad(temperature_loss)(log_alpha, jnp.array([3.0]), -1.0)) < 0


def test_soft_target_by_hand():
    """y = r + discount (min_j Q'_j - alpha log pi): [1 + 0.99 (1 - 0.2 * 0.5), 1 + 0 * (...),
    -1 + 0.9 (0 + 0.2 * 1)]."""
    y = soft_target(jnp.array([1.0, 1.0, -1.0]), jnp.array([0.99, 0.0, 0.9]),
                    jnp.array([[1.0, 5.0, 0.0], [3.0, 2.0, 4.0]]), jnp.array([0.5, 0.0, -1.0]), 0.2)
    np.testing.assert_allclose(y, [1.891, 1.0, -0.82], rtol=1e-6)


def _tiny_step():
    """(learner, step(learner, **kw)): tiny SAC nets on one fixed minibatch of 16."""
    from typing import NamedTuple

    import optax
    from flax.training.train_state import TrainState

    from jaxrl.core.nets import QEnsemble
    from jaxrl.core.offpolicy import Transition
    from jaxrl.core.sac_players import Actor, SACNets, sac_gradient_step

    class Learner(NamedTuple):
        actor: TrainState
        critic: TrainState
        critic_target: dict
        alpha: TrainState

    nets = SACNets(Actor(1, (8,), "relu", -5.0, 2.0), QEnsemble((8,), 2), jnp.array([2.0]), jnp.array([0.0]), -1.0)
    k = jax.random.split(jax.random.key(0), 6)
    obs, act = jax.random.normal(k[0], (16, 3)), jax.random.uniform(k[1], (16, 1), minval=-2, maxval=2)
    batch = Transition(obs, act, jax.random.normal(k[2], (16,)), jnp.full(16, 0.99), obs + 0.1)
    ap, cp = nets.actor.init(k[3], obs), nets.critic.init(k[4], obs, act)
    learner = Learner(TrainState.create(apply_fn=None, params=ap, tx=optax.adam(1e-2)),
                      TrainState.create(apply_fn=None, params=cp, tx=optax.adam(1e-2)), cp,
                      TrainState.create(apply_fn=None, params={"log_alpha": jnp.float32(0.0)}, tx=optax.adam(1e-2)))
    return learner, lambda l, **kw: sac_gradient_step(nets, l, batch, k[5], 0.1, **kw)


def test_gradient_step_lowers_the_critic_loss_and_polyak_averages_the_targets():
    """Tiny nets, one minibatch: after one step the critics' squared error to the soft target (same
    batch, same key) is lower, and the target critics are tau new + (1 - tau) old, leaf by leaf."""
    learner, step = _tiny_step()
    step = jax.jit(step)
    cp = learner.critic.params
    new, (c_loss, *_) = step(learner)
    _, (c_after, *_) = step(new._replace(critic_target=learner.critic_target, actor=learner.actor, alpha=learner.alpha))
    assert float(c_after) < float(c_loss)
    for t, c, old in zip(jax.tree.leaves(new.critic_target), jax.tree.leaves(new.critic.params), jax.tree.leaves(cp)):
        np.testing.assert_allclose(t, 0.1 * c + 0.9 * old, rtol=1e-5, atol=1e-7)


def test_given_alpha_replaces_the_learned_one_per_transition():
    """QARL's adversary: alpha given per transition. A constant array c gives exactly the step of a
    learner whose alpha is c without tuning, and the learner's own alpha is left as it was."""
    learner, step = _tiny_step()
    c = 0.3
    given, aux_given = jax.jit(lambda l: step(l, alpha=jnp.full(16, c)))(learner)
    as_learned = learner._replace(alpha=learner.alpha.replace(params={"log_alpha": jnp.float32(math.log(c))}))
    fixed, aux_fixed = jax.jit(lambda l: step(l, autotune=False))(as_learned)
    for a, b in zip(jax.tree.leaves((given.actor.params, given.critic.params)),
                    jax.tree.leaves((fixed.actor.params, fixed.critic.params))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(aux_given[0], aux_fixed[0], rtol=1e-5)  # critic loss
    assert float(given.alpha.params["log_alpha"]) == 0.0 and int(given.alpha.step) == 0  # not tuned
