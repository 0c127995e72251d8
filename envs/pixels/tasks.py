"""DMC-style control tasks with JAX physics and JAX-rendered RGB observations.

Each task is a `PixelTask` in the gymnax-style interface of `envs` (`reset`, `transition`; the
time limit, action repeat and frame stack are wrappers, see `envs.pixels.wrappers`). A task has
its physics state (`physics` in the env state), one control step of semi-implicit Euler
integration, a reward in [0, 1] shaped like DeepMind Control's `rewards.tolerance`, and a `draw`
that turns the physics state into a [size, size, 3] uint8 image.

Tasks (actions in [-1, 1]^d):
- `pendulum_swingup`: a torque-limited pole (angle 0 = upright) starts at a uniform angle;
  reward = tolerance(cos(angle), (cos 30 deg, 1), margin 1): 1 within 30 degrees of upright, dense
  below (DMC's is sparse: margin 0).
- `cartpole_swingup`: a cart on a rail with a pole that starts pointing down; DMC's reward
  upright * centered * small_control * small_velocity, with upright = (1 + cos)/2,
  centered = (1 + tol(x, margin 2))/2, small_control = (4 + tol(u, margin 1))/5,
  small_velocity = (1 + tol(angular velocity, margin 5))/2.
- `point_mass_reach`: a damped point mass in a box of half-width 0.3 pushed by a 2-d force; the
  target sits at the centre (as in DMC's point_mass easy); reward = tolerance(distance,
  (0, 0.03), margin 0.3).
- `reacher`: a planar 2-link arm (links 0.12 each) with a random target within 0.2 of the base;
  reward = tolerance(fingertip-target distance, (0, 0.035), margin 0.2). The joints are driven
  independently (torque minus damping), not by the coupled arm dynamics of MuJoCo.

Physics constants are our choice (similar in scale to DMC's models, not identical to them);
the rewards' shapes are DMC's except where a margin is noted, which makes them dense.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from envs.pixels import draw

_BACKGROUND = (0.12, 0.14, 0.20)
_GAUSS = float(jnp.sqrt(-2.0 * jnp.log(0.1)))  # the gaussian sigmoid is 0.1 at the margin, as DMC's default


def tolerance(x, lower, upper, margin):
    """1 inside [lower, upper]; outside, exp(-(d * c)^2 / 2) with d the distance in margins and
    c chosen so that the value at one margin is 0.1 (DMC's gaussian sigmoid). margin = 0 gives
    the indicator."""
    inside = jnp.logical_and(x >= lower, x <= upper)
    if margin == 0:
        return inside.astype(jnp.float32)
    d = jnp.where(x < lower, lower - x, x - upper) / margin
    return jnp.where(inside, 1.0, jnp.exp(-0.5 * (d * _GAUSS) ** 2)).astype(jnp.float32)


@struct.dataclass
class TaskState:
    physics: Any
    time: jax.Array  # control steps since reset (the wrappers' time limit counts agent steps)


@struct.dataclass
class PixelParams:
    max_steps_in_episode: int = 500  # agent steps: 1000 control steps at action repeat 2


class PixelTask:
    """Base of the tasks: subclasses define `action_dim`, `init_physics`, `physics_step`,
    `reward` and `draw_float`. `image_size` (pixels, >= 32) is fixed at construction."""

    action_dim: int = 1
    name: str = "pixels"

    def __init__(self, image_size: int = 64):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32:
            raise ValueError(f"image_size must be an int >= 32, got {image_size!r}")
        self.image_size = image_size

    @property
    def default_params(self) -> PixelParams:
        return PixelParams()

    @property
    def unwrapped(self):
        return self

    def observation_space(self, params=None):
        return spaces.Box(0, 255, (self.image_size, self.image_size, 3), jnp.uint8)

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self.action_dim,), jnp.float32)

    def render(self, physics):
        """The uint8 [size, size, 3] image of a physics state."""
        return draw.to_uint8(self.draw_float(physics))

    def reset(self, key, params=None):
        state = TaskState(self.init_physics(key), jnp.int32(0))
        return self.render(state.physics), state

    def transition_state(self, key, state: TaskState, action, params=None):
        """One control step without drawing: (state, reward, terminated)."""
        action = jnp.clip(jnp.asarray(action, jnp.float32).reshape(self.action_dim), -1.0, 1.0)
        physics = self.physics_step(state.physics, action)
        reward = self.reward(physics, action)
        return TaskState(physics, state.time + 1), reward, jnp.bool_(False)

    def observe(self, state: TaskState, params=None):
        return self.render(state.physics)

    def transition(self, key, state, action, params=None):
        state, reward, terminated = self.transition_state(key, state, action, params)
        return self.observe(state), state, reward, terminated, jnp.bool_(False), {}


# ----------------------------------------------------------------------------- pendulum


class PendulumSwingup(PixelTask):
    """A pole of length 0.5 and mass 1 on a hinge; torque 1 cannot hold it horizontal (mgl = 4.9),
    so it must swing up. State (angle, angular velocity), angle 0 = upright, counter-clockwise."""

    name = "pixels/pendulum_swingup"
    length, gravity, max_torque, damping, dt, substeps = 0.5, 9.81, 2.0, 0.1, 0.02, 2
    extent = 0.65

    def init_physics(self, key):
        return jnp.array([jax.random.uniform(key, (), jnp.float32, -jnp.pi, jnp.pi), 0.0], jnp.float32)

    def physics_step(self, physics, action):
        def sub(p, _):
            theta, omega = p[0], p[1]
            inertia = self.length ** 2  # point mass 1 at the tip
            acc = (self.gravity / self.length * jnp.sin(theta) + (self.max_torque * action[0]
                   - self.damping * omega) / inertia)
            omega = omega + acc * self.dt / self.substeps
            theta = theta + omega * self.dt / self.substeps
            return jnp.stack([jnp.arctan2(jnp.sin(theta), jnp.cos(theta)), omega]), None

        return jax.lax.scan(sub, physics, None, self.substeps)[0]

    def reward(self, physics, action):
        return tolerance(jnp.cos(physics[0]), jnp.cos(jnp.deg2rad(30.0)), 1.0, 1.0)

    def tip(self, physics):
        """World position of the pole's tip (the hinge at the origin)."""
        return self.length * jnp.stack([-jnp.sin(physics[0]), jnp.cos(physics[0])])

    def draw_float(self, physics):
        view = draw.View(self.image_size, jnp.zeros(2), self.extent)
        img = draw.canvas(view, _BACKGROUND)
        tip = self.tip(physics)
        img = draw.capsule(img, view, jnp.zeros(2), tip, 0.03, (0.85, 0.55, 0.25))
        img = draw.disk(img, view, tip, 0.07, (0.95, 0.2, 0.2))
        return draw.disk(img, view, jnp.zeros(2), 0.04, (0.7, 0.7, 0.7))


# ----------------------------------------------------------------------------- cartpole


class CartpoleSwingup(PixelTask):
    """A cart (mass 1) on a rail |x| <= 1.8 with a pole (mass 0.1, half length 0.5) hinged on it;
    force 10 * action. State (x, angle, x velocity, angular velocity), angle 0 = upright; starts
    near angle pi (pointing down). Equations of Barto, Sutton & Anderson (1983)."""

    name = "pixels/cartpole_swingup"
    cart_mass, pole_mass, half_length, gravity, force, rail, dt, substeps = 1.0, 0.1, 0.5, 9.81, 10.0, 1.8, 0.01, 2
    extent = 2.2

    def init_physics(self, key):
        k1, k2 = jax.random.split(key)
        x = 0.01 * jax.random.normal(k1, ())
        theta = jnp.pi + 0.01 * jax.random.normal(k2, ())
        return jnp.array([x, theta, 0.0, 0.0], jnp.float32)

    def physics_step(self, physics, action):
        total = self.cart_mass + self.pole_mass
        pml = self.pole_mass * self.half_length

        def sub(p, _):
            x, theta, v, omega = p[0], p[1], p[2], p[3]
            sin, cos = jnp.sin(theta), jnp.cos(theta)
            temp = (self.force * action[0] + pml * omega ** 2 * sin) / total
            alpha = (self.gravity * sin - cos * temp) / (
                self.half_length * (4.0 / 3.0 - self.pole_mass * cos ** 2 / total))
            acc = temp - pml * alpha * cos / total
            h = self.dt / self.substeps
            v, omega = v + h * acc, omega + h * alpha
            x, theta = x + h * v, theta + h * omega
            hit = jnp.abs(x) > self.rail
            x, v = jnp.clip(x, -self.rail, self.rail), jnp.where(hit, 0.0, v)
            return jnp.stack([x, jnp.arctan2(jnp.sin(theta), jnp.cos(theta)), v, omega]), None

        return jax.lax.scan(sub, physics, None, self.substeps)[0]

    def reward(self, physics, action):
        upright = (jnp.cos(physics[1]) + 1.0) / 2.0
        centered = (1.0 + tolerance(physics[0], 0.0, 0.0, 2.0)) / 2.0
        small_control = (4.0 + tolerance(action[0], 0.0, 0.0, 1.0)) / 5.0
        small_velocity = (1.0 + tolerance(physics[3], 0.0, 0.0, 5.0)) / 2.0
        return upright * centered * small_control * small_velocity

    def draw_float(self, physics):
        view = draw.View(self.image_size, jnp.array([0.0, 0.3]), self.extent)
        img = draw.canvas(view, _BACKGROUND)
        img = draw.box(img, view, jnp.array([0.0, -0.13]), jnp.array([self.rail + 0.3, 0.02]), 0.0, (0.5, 0.5, 0.5))
        cart = jnp.stack([physics[0], 0.0])
        img = draw.box(img, view, cart, jnp.array([0.25, 0.12]), 0.0, (0.3, 0.6, 0.9))
        tip = cart + 2.0 * self.half_length * jnp.stack([-jnp.sin(physics[1]), jnp.cos(physics[1])])
        return draw.capsule(img, view, cart, tip, 0.06, (0.85, 0.55, 0.25))


# ----------------------------------------------------------------------------- point mass


class PointMassReach(PixelTask):
    """A point mass in the box |x|, |y| <= 0.3 with force gain 1, mass 0.3 and damping; the target
    is the centre. State (x, y, vx, vy), starting uniformly in the box at rest."""

    name = "pixels/point_mass_reach"
    action_dim = 2
    half_width, mass, gain, damping, dt, substeps = 0.3, 0.3, 1.0, 1.0, 0.02, 2
    target, target_size, margin = (0.0, 0.0), 0.03, 0.3
    extent = 0.35

    def init_physics(self, key):
        pos = jax.random.uniform(key, (2,), jnp.float32, -self.half_width, self.half_width)
        return jnp.concatenate([pos, jnp.zeros(2, jnp.float32)])

    def physics_step(self, physics, action):
        def sub(p, _):
            pos, vel = p[:2], p[2:]
            h = self.dt / self.substeps
            vel = vel + h * (self.gain * action - self.damping * vel) / self.mass
            pos = pos + h * vel
            hit = jnp.abs(pos) > self.half_width
            return jnp.concatenate([jnp.clip(pos, -self.half_width, self.half_width),
                                    jnp.where(hit, 0.0, vel)]), None

        return jax.lax.scan(sub, physics, None, self.substeps)[0]

    def reward(self, physics, action):
        dist = jnp.linalg.norm(physics[:2] - jnp.asarray(self.target))
        return tolerance(dist, 0.0, self.target_size, self.margin)

    def draw_float(self, physics):
        view = draw.View(self.image_size, jnp.zeros(2), self.extent)
        img = draw.canvas(view, _BACKGROUND)
        img = draw.box(img, view, jnp.zeros(2), jnp.full(2, self.half_width + 0.02), 0.0, (0.25, 0.28, 0.35))
        img = draw.disk(img, view, jnp.asarray(self.target), 0.035, (0.9, 0.25, 0.25))
        return draw.disk(img, view, physics[:2], 0.03, (0.95, 0.9, 0.3))


# ----------------------------------------------------------------------------- reacher


class Reacher(PixelTask):
    """A planar 2-link arm (links 0.12) with joints driven by torque minus damping, and a target
    at a uniform angle and a distance in [0.05, 0.2] from the base. State (q1, q2, dq1, dq2,
    target x, target y)."""

    name = "pixels/reacher"
    action_dim = 2
    link, gain, damping, dt, substeps = 0.12, 20.0, 2.0, 0.02, 2
    target_size, margin = 0.035, 0.2
    extent = 0.3

    def init_physics(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        q = jax.random.uniform(k1, (2,), jnp.float32, -jnp.pi, jnp.pi)
        angle = jax.random.uniform(k2, (), jnp.float32, -jnp.pi, jnp.pi)
        radius = jax.random.uniform(k3, (), jnp.float32, 0.05, 0.2)
        target = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        return jnp.concatenate([q, jnp.zeros(2, jnp.float32), target])

    def physics_step(self, physics, action):
        def sub(p, _):
            q, dq = p[:2], p[2:4]
            h = self.dt / self.substeps
            dq = dq + h * (self.gain * action - self.damping * dq)
            return jnp.concatenate([q + h * dq, dq, p[4:]]), None

        return jax.lax.scan(sub, physics, None, self.substeps)[0]

    def joints(self, physics):
        """(elbow, fingertip) world positions."""
        q1, q12 = physics[0], physics[0] + physics[1]
        elbow = self.link * jnp.stack([jnp.cos(q1), jnp.sin(q1)])
        return elbow, elbow + self.link * jnp.stack([jnp.cos(q12), jnp.sin(q12)])

    def reward(self, physics, action):
        dist = jnp.linalg.norm(self.joints(physics)[1] - physics[4:6])
        return tolerance(dist, 0.0, self.target_size, self.margin)

    def draw_float(self, physics):
        view = draw.View(self.image_size, jnp.zeros(2), self.extent)
        img = draw.canvas(view, _BACKGROUND)
        img = draw.disk(img, view, physics[4:6], self.target_size, (0.9, 0.25, 0.25))
        elbow, tip = self.joints(physics)
        img = draw.capsule(img, view, jnp.zeros(2), elbow, 0.02, (0.85, 0.55, 0.25))
        img = draw.capsule(img, view, elbow, tip, 0.02, (0.85, 0.55, 0.25))
        return draw.disk(img, view, tip, 0.02, (0.95, 0.9, 0.3))


TASKS = {t.name.split("/", 1)[1]: t for t in (PendulumSwingup, CartpoleSwingup, PointMassReach, Reacher)}
