"""Drawing in JAX: filled disks, capsules and boxes composited onto an RGB canvas.

Every shape is a signed distance field evaluated at the pixel centres, with one pixel of
anti-aliasing at its edge (coverage = clip(0.5 - d * pixels_per_unit, 0, 1)), so an image is a
smooth function of the state and everything is jittable and vmappable. The canvas is float32 in
[0, 1] while drawing; `to_uint8` rounds it to the observation.

A `View` maps world coordinates (x right, y up) to pixels: the square of half-width `extent`
around `center` fills the image, row 0 at the top.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class View(NamedTuple):
    size: int  # image height = width in pixels
    center: jnp.ndarray  # world point at the image centre, shape (2,)
    extent: float  # world half-width shown

    @property
    def pixels_per_unit(self):
        return self.size / (2.0 * self.extent)


def pixel_centers(view: View):
    """World coordinates of the pixel centres: [size, size, 2] as (x, y), row 0 at the top."""
    u = (jnp.arange(view.size, dtype=jnp.float32) + 0.5) / view.size * 2.0 - 1.0
    x = jnp.asarray(view.center[0], jnp.float32) + view.extent * u
    y = jnp.asarray(view.center[1], jnp.float32) - view.extent * u
    return jnp.stack(jnp.broadcast_arrays(x[None, :], y[:, None]), -1)


def world_to_pixel(view: View, point):
    """(row, col) of a world point, as floats (pixel centres at integer + 0.5 ... minus 0.5)."""
    ppu = view.pixels_per_unit
    col = (point[0] - view.center[0]) * ppu + view.size / 2.0 - 0.5
    row = (view.center[1] - point[1]) * ppu + view.size / 2.0 - 0.5
    return row, col


def canvas(view: View, color):
    """A [size, size, 3] float image filled with `color` (RGB in [0, 1])."""
    return jnp.broadcast_to(jnp.asarray(color, jnp.float32), (view.size, view.size, 3))


def _paint(img, view: View, dist, color):
    """Composite `color` where the signed distance `dist` ([size, size], world units) is < 0."""
    alpha = jnp.clip(0.5 - dist * view.pixels_per_unit, 0.0, 1.0)[..., None]
    return img * (1.0 - alpha) + alpha * jnp.asarray(color, jnp.float32)


def disk(img, view: View, center, radius, color):
    p = pixel_centers(view)
    dist = jnp.linalg.norm(p - jnp.asarray(center, jnp.float32), axis=-1) - radius
    return _paint(img, view, dist, color)


def capsule(img, view: View, start, end, radius, color):
    """A segment from `start` to `end` thickened by `radius` (round ends)."""
    p = pixel_centers(view)
    a, b = jnp.asarray(start, jnp.float32), jnp.asarray(end, jnp.float32)
    ab = b - a
    t = jnp.clip(((p - a) @ ab) / jnp.maximum(ab @ ab, 1e-12), 0.0, 1.0)
    dist = jnp.linalg.norm(p - (a + t[..., None] * ab), axis=-1) - radius
    return _paint(img, view, dist, color)


def box(img, view: View, center, half_size, angle, color):
    """A rectangle of half sizes (hx, hy) rotated by `angle` (radians, counter-clockwise)."""
    p = pixel_centers(view) - jnp.asarray(center, jnp.float32)
    c, s = jnp.cos(angle), jnp.sin(angle)
    local = jnp.stack([c * p[..., 0] + s * p[..., 1], -s * p[..., 0] + c * p[..., 1]], -1)
    q = jnp.abs(local) - jnp.asarray(half_size, jnp.float32)
    dist = jnp.linalg.norm(jnp.maximum(q, 0.0), axis=-1) + jnp.minimum(jnp.max(q, -1), 0.0)
    return _paint(img, view, dist, color)


def half_plane_below(img, view: View, height, color):
    """Everything with y < `height` (a floor)."""
    dist = pixel_centers(view)[..., 1] - height
    return _paint(img, view, dist, color)


def to_uint8(img):
    return jnp.round(jnp.clip(img, 0.0, 1.0) * 255.0).astype(jnp.uint8)
