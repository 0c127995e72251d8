"""The pixel tasks draw what their state says, stack and repeat as documented, and reject bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.pixels import draw
from envs.pixels.tasks import PendulumSwingup, PointMassReach, tolerance


def centroid(mask):
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


def test_pendulum_angle_recovered_from_its_image():
    task = PendulumSwingup(64)
    render = jax.jit(task.render)
    view = draw.View(64, jnp.zeros(2), task.extent)
    hinge_row, hinge_col = draw.world_to_pixel(view, jnp.zeros(2))
    for angle in np.linspace(-3.0, 3.0, 9):
        img = np.asarray(render(jnp.array([angle, 0.0], jnp.float32))).astype(int)
        red = (img[..., 0] > 200) & (img[..., 1] < 120)  # the tip's disk
        row, col = centroid(red)
        # the tip sits at length * (-sin, cos): up is -row, right is +col
        recovered = np.arctan2(-(col - float(hinge_col)), -(row - float(hinge_row)))
        err = np.rad2deg(np.angle(np.exp(1j * (recovered - angle))))
        assert abs(err) < 3.0, (angle, recovered)


def test_point_mass_centroid_tracks_its_position():
    task = PointMassReach(64)
    render = jax.jit(task.render)
    view = draw.View(64, jnp.zeros(2), task.extent)
    for pos in [(0.2, 0.1), (-0.25, -0.2), (0.1, -0.27), (-0.1, 0.25)]:
        img = np.asarray(render(jnp.array([*pos, 0.0, 0.0], jnp.float32))).astype(int)
        yellow = (img[..., 0] > 200) & (img[..., 1] > 180) & (img[..., 2] < 150)
        row, col = centroid(yellow)
        want_row, want_col = draw.world_to_pixel(view, jnp.asarray(pos))
        assert abs(row - float(want_row)) < 0.5 and abs(col - float(want_col)) < 0.5


def test_brax_body_drawn_where_its_transform_says():
    env, params = envs.make("pixels/brax_hopper", frame_stack=1, episode_stats=False)
    task = env.unwrapped
    _, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
    brax_state = state.env_state.env_state  # TimeLimit -> FrameStack -> the task's brax State
    render = jax.jit(task.render)

    def body_rows(lift):
        x = brax_state.pipeline_state.x
        moved = brax_state.replace(pipeline_state=brax_state.pipeline_state.replace(
            x=x.replace(pos=x.pos + jnp.array([0.0, 0.0, lift]))))
        img = np.asarray(render(moved)).astype(int)
        body = np.abs(img - np.array([140, 178, 217])).sum(-1) > 60  # neither sky ...
        body &= np.abs(img - np.array([77, 64, 51])).sum(-1) > 60  # ... nor floor
        return centroid(body)

    (r0, c0), (r1, c1) = body_rows(0.0), body_rows(0.2)
    ppu = 64 / (2 * task.extent)
    assert abs((r0 - r1) - 0.2 * ppu) < 1.0 and abs(c1 - c0) < 0.5


@pytest.mark.parametrize("name", ["pixels/pendulum_swingup", "pixels/cartpole_swingup", "pixels/point_mass_reach",
                                  "pixels/reacher"])
def test_tasks_are_deterministic_uint8_and_vmappable(name):
    env, params = envs.make(name, image_size=32, frame_stack=2, action_repeat=2, max_steps_in_episode=3)
    spec = envs.spec(name, image_size=32, frame_stack=2, action_repeat=2, max_steps_in_episode=3)
    assert spec.obs_shape == (32, 32, 6) and spec.obs_dtype == "uint8" and not spec.discrete

    def episode(key):
        obs, state = env.reset(key, params)

        def step(carry, k):
            obs, state = carry
            obs, state, r, term, trunc, info = env.step(k, state, jnp.full(spec.action_dim, 0.5), params)
            return (obs, state), (obs, r, trunc, info["final_observation"])

        return obs, jax.lax.scan(step, (obs, state), jax.random.split(key, 3))[1]

    run = jax.jit(jax.vmap(episode))
    first, (obs, rewards, trunc, final) = run(jax.random.split(jax.random.PRNGKey(0), 4))
    again = run(jax.random.split(jax.random.PRNGKey(0), 4))
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(again[1][0]))
    assert obs.dtype == jnp.uint8 and obs.shape == (4, 3, 32, 32, 6)
    assert np.all((rewards >= 0) & (rewards <= 2.0))  # two control steps of rewards in [0, 1]
    np.testing.assert_array_equal(np.asarray(trunc[:, -1]), True)  # 3 agent steps: time limit
    # frame stack: the newest frame of step t is the oldest of step t + 1 (no reset in between)
    np.testing.assert_array_equal(np.asarray(obs[:, 0, ..., 3:]), np.asarray(obs[:, 1, ..., :3]))
    # a reset repeats its first frame
    np.testing.assert_array_equal(np.asarray(first[..., :3]), np.asarray(first[..., 3:]))


def test_action_repeat_sums_rewards_and_draws_once():
    single, p1 = envs.make("pixels/point_mass_reach", image_size=32, frame_stack=1, action_repeat=1,
                           episode_stats=False)
    double, p2 = envs.make("pixels/point_mass_reach", image_size=32, frame_stack=1, action_repeat=2,
                           episode_stats=False)
    key, a = jax.random.PRNGKey(3), jnp.array([0.7, -0.4])
    _, s1 = single.reset(key, p1)
    _, s2 = double.reset(key, p2)
    o, s1, r1, *_ = single.transition(key, s1, a, p1)
    o, s1, r2, *_ = single.transition(key, s1, a, p1)
    obs, _, r, *_ = double.transition(key, s2, a, p2)
    np.testing.assert_allclose(float(r), float(r1 + r2), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(o))


def test_tolerance_matches_dmc_gaussian():
    assert float(tolerance(0.5, 0.0, 1.0, 1.0)) == 1.0
    np.testing.assert_allclose(float(tolerance(2.0, 0.0, 1.0, 1.0)), 0.1, rtol=1e-5)  # one margin out
    assert float(tolerance(2.0, 0.0, 1.0, 0.0)) == 0.0


@pytest.mark.parametrize("kwargs, bad", [(dict(image_size=31), "image_size"), (dict(frame_stack=0), "frame_stack"),
                                         (dict(action_repeat=0), "action_repeat"), (dict(colour=1), "colour"),
                                         (dict(max_steps_in_episode=0), "max_steps_in_episode")])
def test_bad_pixel_settings_raise(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        envs.make("pixels/pendulum_swingup", **kwargs)


def test_unknown_pixel_env_names_close_matches():
    with pytest.raises(ValueError, match="pixels/pendulum_swingup"):
        envs.make("pixels/pendulum_swingp")
