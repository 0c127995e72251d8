"""envs.robust: uncertainty sets, the adversary wrapper, observation noise."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.robust import Adversarial, ObservationNoise, UncertaintySet, make_robust, parameters, reference_set


def test_grid_includes_both_end_points():
    u = UncertaintySet("CartPole-v1", (("length", 0.25, 2.0), ("masspole", 0.05, 1.0)))
    g = np.asarray(u.grid((4, 3)))
    assert g.shape == (12, 2)
    assert np.allclose(np.unique(g[:, 0]), [0.25, 0.25 + 1.75 / 3, 0.25 + 3.5 / 3, 2.0])
    assert g[:, 1].min() == np.float32(0.05) and g[:, 1].max() == np.float32(1.0)
    assert np.allclose(g[0], [0.25, 0.05]) and np.allclose(g[-1], [2.0, 1.0])


def test_sample_is_uniform_in_the_box_and_apply_keeps_derived_fields():
    u = reference_set("CartPole-v1")
    x = np.asarray(u.sample(jax.random.key(0), 2000))
    assert np.all(x >= u.low) and np.all(x <= u.high)
    assert np.allclose(x.mean(0), (u.low + u.high) / 2, atol=0.05)
    _, p = make_robust("CartPole-v1")
    q = u.apply(p, jnp.array([1.5, 0.4]))
    assert np.isclose(q.polemass_length, 0.6) and np.isclose(q.total_mass, 1.4)
    assert np.allclose(u.values_of(q), [1.5, 0.4])


def _fall_time(length_values, steps=200):
    """Steps until a CartPole pushed right at every step falls, for each pole length (vmapped)."""
    env, p = make_robust("CartPole-v1", episode_stats=False)
    u = UncertaintySet("CartPole-v1", (("length", 0.25, 2.0),))

    def one(v):
        q = u.apply(p, v)
        _, s = env.reset(jax.random.key(0), q)  # same start state for every length

        def step(c, _):
            s, alive, t = c
            _, s, _, term, _, _ = env.transition(jax.random.key(1), s, 1, q)
            alive = alive & ~term
            return (s, alive, t + alive), None

        (_, _, t), _ = jax.lax.scan(step, (s, jnp.bool_(True), jnp.int32(0)), None, steps)
        return t

    return np.asarray(jax.jit(jax.vmap(one))(length_values))


def test_grid_changes_the_dynamics_a_longer_pole_falls_later():
    u = UncertaintySet("CartPole-v1", (("length", 0.25, 2.0),))
    t = _fall_time(u.grid(4))
    assert len(set(t.tolist())) == 4, t          # every length falls at a different step
    assert np.all(np.diff(t) > 0), t             # a longer pole tips more slowly


def test_adversary_force_is_clipped_to_its_bound():
    env, p = make_robust("CartPole-v1", episode_stats=False)
    adv = Adversarial(env, "CartPole-v1", 2.0)
    s = envs.spec_of(adv, p, "CartPole-v1")
    assert s.num_players == 2 and s.adversary.action_high == (2.0,) and s.adversary.action_low == (-2.0,)
    _, st = adv.reset(jax.random.key(0), p)
    k = jax.random.key(1)
    big = adv.transition(k, st, (1, jnp.array([100.0])), p)[0]
    at_bound = adv.transition(k, st, (1, jnp.array([2.0])), p)[0]
    none = adv.transition(k, st, (1, jnp.array([0.0])), p)[0]
    assert np.allclose(big, at_bound) and not np.allclose(big, none)
    # the push adds to the cart's force: +2 on a right push equals force_mag 12 with no adversary
    ref = env.transition(k, st, 1, p.replace(force_mag=12.0))[0]
    assert np.allclose(at_bound, ref)
    ref_left = env.transition(k, st, 0, p.replace(force_mag=8.0))[0]
    assert np.allclose(adv.transition(k, st, (0, jnp.array([2.0])), p)[0], ref_left)


def test_adversary_parameter_perturbation_is_clipped():
    env, p = make_robust("Pendulum-v1", episode_stats=False)
    adv = Adversarial(env, "Pendulum-v1", 0.5, ("g",))
    _, st = adv.reset(jax.random.key(0), p)
    k, a = jax.random.key(1), jnp.array([0.3])
    out = adv.transition(k, st, (a, jnp.array([9.0])), p)[0]
    ref = env.transition(k, st, a, p.replace(g=p.g + 0.5))[0]
    assert np.allclose(out, ref)


def test_observation_noise():
    env, p = make_robust("CartPole-v1", episode_stats=False)
    clean = env.reset(jax.random.key(3), p)[0]
    same = ObservationNoise(env, 0.0).reset(jax.random.key(3), p)[0]
    noisy = jax.vmap(lambda k: ObservationNoise(env, 0.5).reset(k, p)[0])(jax.random.split(jax.random.key(3), 4000))
    # zero noise keeps the observation; the env's own start states vary by about 0.03
    assert np.allclose(same, env.reset(jax.random.split(jax.random.key(3))[0], p)[0])
    assert clean.shape == same.shape
    assert np.allclose(np.asarray(noisy).std(0), 0.5, atol=0.03)


@pytest.mark.parametrize("make_bad, match", [
    (lambda: UncertaintySet("CartPole-v1", ()), "at least one range"),
    (lambda: UncertaintySet("CartPole-v1", (("length", 1.0, 1.0),)), "empty"),
    (lambda: UncertaintySet("CartPole-v1", (("length", 2.0, 1.0),)), "inverted"),
    (lambda: UncertaintySet("CartPole-v1", (("lenght", 0.1, 1.0),)), "its parameters are .*'length'"),
    (lambda: UncertaintySet("CartPole-v1", (("length", 0.1, 1.0),)).grid(1), ">= 2 points"),
    (lambda: Adversarial(make_robust("CartPole-v1")[0], "CartPole-v1", 0.0), "bound must be > 0"),
    (lambda: Adversarial(make_robust("CartPole-v1")[0], "CartPole-v1", -1.0), "bound must be > 0"),
    (lambda: Adversarial(make_robust("Pendulum-v1")[0], "Pendulum-v1", 1.0, ("mass",)), "its parameters are"),
    (lambda: ObservationNoise(make_robust("CartPole-v1")[0], -0.1), "sigma must be >= 0"),
])
def test_bad_input(make_bad, match):
    with pytest.raises(ValueError, match=match):
        make_bad()


def test_brax_set_scales_masses_and_changes_the_dynamics():
    assert "pole_mass" in parameters("brax/inverted_pendulum")
    u = reference_set("brax/inverted_pendulum")
    env, p = make_robust("brax/inverted_pendulum", episode_stats=False)
    assert np.allclose(u.values_of(p), [5.0185914, 10.471975], rtol=1e-5)
    g = u.grid(2)

    def one(v):
        q = u.apply(p, v)
        _, s = env.reset(jax.random.key(0), q)
        obs, s, *_ = env.transition(jax.random.key(1), s, jnp.ones(1), q)  # one step: brax compiles slowly
        return obs

    obs = np.asarray(jax.jit(jax.vmap(one))(g))
    assert obs.shape[0] == 4 and np.isfinite(obs).all()
    assert len({tuple(np.round(o, 6)) for o in obs}) == 4  # every corner of the set moves differently


def test_brax_body_force_is_the_generalized_force_of_the_push():
    from envs.robust.forces import body_force_tau

    env, _ = make_robust("brax/inverted_pendulum", episode_stats=False)
    sys = env.unwrapped._env.sys  # joints: the cart's x slide, the pole's hinge at the cart's origin
    q, qd = jnp.array([0.1, 0.3]), jnp.array([0.2, -0.5])
    assert np.allclose(body_force_tau(sys, q, qd, [0], [[2.0, 0.0, 0.0]]), [2.0, 0.0])  # all on the slide
    assert np.allclose(body_force_tau(sys, q, qd, [1], [[2.0, 0.0, 0.0]]), [2.0, 0.0])  # at the hinge: no torque
    assert np.allclose(body_force_tau(sys, q, qd, [0], [[0.0, 0.0, 5.0]]), [0.0, 0.0])  # the rail holds it
    hop, _ = make_robust("brax/hopper", episode_stats=False)
    hs = hop.unwrapped._env.sys  # planar: rootx, rootz slides, rooty and three hinges about y
    q, qd = hs.init_q + 0.1, jnp.arange(6.0) * 0.1
    assert np.allclose(body_force_tau(hs, q, qd, [0], [[0.0, 0.0, 1.0]]), [0, 1, 0, 0, 0, 0])  # torso at the root
    assert np.allclose(body_force_tau(hs, q, qd, [3], [[0.0, 5.0, 0.0]]), 0.0)  # out of the plane
    foot = np.asarray(body_force_tau(hs, q, qd, [3], [[2.0, 0.0, 0.0]]))
    assert foot[0] == pytest.approx(2.0) and foot[1] == 0.0 and foot[5] == 0.0 and np.all(foot[2:5] != 0)


def test_brax_adversary_push_on_the_cart_equals_more_actuator_force():
    """brax scales the action in [-1, 1] to the control range [-3, 3], and the cart's motor pushes
    the slide with gear 100 x control: a 2 N push on the cart is an extra 2 / 300 of action. The
    push is clipped to the bound, and zero push is the plain step."""
    env, p = make_robust("brax/inverted_pendulum", episode_stats=False)
    adv = Adversarial(env, "brax/inverted_pendulum", 2.0, ("cart_force_x",))
    assert envs.spec_of(adv, p, "brax/inverted_pendulum").num_players == 2
    _, st = adv.reset(jax.random.key(0), p)
    k, a = jax.random.key(1), jnp.array([0.1])

    def pushed(f):
        return adv.transition(k, st, (a, f), p)[0]

    def plain(extra):
        return env.transition(k, st, a + extra, p)[0]

    out = np.asarray(jax.jit(jax.vmap(pushed))(jnp.array([[0.0], [2.0], [100.0], [-2.0]])))
    ref = np.asarray(jax.jit(jax.vmap(plain))(jnp.array([[0.0], [2 / 300], [-2 / 300]])))
    assert np.allclose(out[0], ref[0], atol=1e-6) and np.allclose(out[1], ref[1], atol=1e-6)
    assert np.allclose(out[2], out[1]) and np.allclose(out[3], ref[2], atol=1e-6)
    assert out[1, 2] > out[0, 2] > out[3, 2]  # the cart's velocity follows the push
    with pytest.raises(ValueError, match="foot_force_x"):
        Adversarial(make_robust("brax/hopper")[0], "brax/hopper", 3.0, ("foot_force_w",))
