"""A side view of a brax body, drawn in JAX from the brax state's body transforms.

`BraxPixels(brax_env, image_size)` is a pixel task (the interface of `envs.pixels.tasks`) over a
brax env: its physics state is the brax `State`, its reward and terminal are brax's, and its
image is the x-z plane: every capsule, sphere and box geom of `sys` placed by the body transform
`pipeline_state.x` (position, quaternion) of the body it belongs to, a floor at z = 0, and the
camera following the first body (the torso) in x. Works for envs whose bodies move in the x-z
plane (hopper, halfcheetah, walker2d); others are drawn in that projection too.
"""
from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from envs.pixels import draw
from envs.pixels.tasks import PixelParams

_SKY, _FLOOR = (0.55, 0.7, 0.85), (0.3, 0.25, 0.2)
_COLORS = ((0.85, 0.55, 0.25), (0.3, 0.6, 0.9), (0.9, 0.3, 0.3), (0.95, 0.85, 0.3), (0.5, 0.85, 0.5))
_SPHERE, _CAPSULE, _BOX = 2, 3, 6  # MuJoCo geom types


def _rotate(quat, vec):
    """Rotate `vec` by the unit quaternion (w, x, y, z)."""
    w, u = quat[0], quat[1:]
    return vec + 2.0 * jnp.cross(u, jnp.cross(u, vec) + w * vec)


def _quat_mul(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return jnp.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                      w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


class BraxPixels:
    name = "pixels/brax"

    def __init__(self, brax_env, name: str, image_size: int = 64, extent: float = 1.0, height: float = 0.8):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32:
            raise ValueError(f"image_size must be an int >= 32, got {image_size!r}")
        self._env, self.name, self.image_size = brax_env, name, image_size
        self.extent, self.height = extent, height
        sys = brax_env.sys
        types, bodies = np.asarray(sys.geom_type), np.asarray(sys.geom_bodyid)
        keep = [i for i in range(len(types)) if bodies[i] > 0 and types[i] in (_SPHERE, _CAPSULE, _BOX)]
        self._geoms = [(int(types[i]), int(bodies[i]) - 1, np.asarray(sys.geom_pos[i], np.float32),
                        np.asarray(sys.geom_quat[i], np.float32), np.asarray(sys.geom_size[i], np.float32))
                       for i in keep]
        self.action_dim = int(brax_env.action_size)

    @property
    def default_params(self):
        return PixelParams()

    @property
    def unwrapped(self):
        return self

    def observation_space(self, params=None):
        return spaces.Box(0, 255, (self.image_size, self.image_size, 3), jnp.uint8)

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self.action_dim,), jnp.float32)

    def body_transforms(self, state):
        """(positions [bodies, 3], quaternions [bodies, 4]) of a brax `State`."""
        x = state.pipeline_state.x
        return x.pos, x.rot

    def render(self, state):
        pos, rot = self.body_transforms(state)
        view = draw.View(self.image_size, jnp.stack([pos[0, 0], jnp.float32(self.height)]), self.extent)
        img = draw.half_plane_below(draw.canvas(view, _SKY), view, 0.0, _FLOOR)
        for n, (kind, body, gpos, gquat, size) in enumerate(self._geoms):
            center = pos[body] + _rotate(rot[body], jnp.asarray(gpos))
            quat = _quat_mul(rot[body], jnp.asarray(gquat))
            color = _COLORS[n % len(_COLORS)]
            xz = lambda p: jnp.stack([p[0], p[2]])
            if kind == _SPHERE:
                img = draw.disk(img, view, xz(center), size[0], color)
            elif kind == _CAPSULE:
                axis = _rotate(quat, jnp.array([0.0, 0.0, size[1]]))
                img = draw.capsule(img, view, xz(center - axis), xz(center + axis), size[0], color)
            else:
                ex = _rotate(quat, jnp.array([1.0, 0.0, 0.0]))
                img = draw.box(img, view, xz(center), size[[0, 2]], jnp.arctan2(ex[2], ex[0]), color)
        return draw.to_uint8(img)

    def reset(self, key, params=None):
        state = self._env.reset(key)
        return self.render(state), state

    def transition_state(self, key, state, action, params=None):
        state = self._env.step(state, jnp.asarray(action, jnp.float32))
        state = jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)), state)  # drop weak types
        return state, state.reward.astype(jnp.float32), state.done > 0.5

    def observe(self, state, params=None):
        return self.render(state)

    def transition(self, key, state, action, params=None):
        state, reward, terminated = self.transition_state(key, state, action, params)
        return self.observe(state), state, reward, terminated, jnp.bool_(False), {}
