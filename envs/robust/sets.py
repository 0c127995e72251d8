"""Uncertainty sets: boxes of named dynamics-parameter ranges that can be sampled, gridded and vmapped.

    uset = UncertaintySet("CartPole-v1", (("length", 0.25, 1.0), ("masspole", 0.05, 0.5)))
    env, params = make_robust("CartPole-v1")
    values = uset.grid(10)                      # [100, 2]: both end points of every range included
    p = jax.vmap(uset.apply, (None, 0))(params, values)   # a batch of EnvParams, one per grid point
    values = uset.sample(key, 64)               # domain randomisation: uniform over the box

The parameters live in the env params, so one compiled program steps every point of the set:
- gymnax classic control: the fields of the env's `EnvParams` (CartPole `length`, `masspole`,
  `masscart`, `gravity`, `force_mag`; Pendulum `m`, `l`, `g`, ...). CartPole's derived fields
  `total_mass` and `polemass_length` are recomputed from the masses and length (gymnax's step reads
  the derived fields, so replacing `length` alone would not change the dynamics).
- brax: the `brax.System` through `BraxDynamicsParams`, applied by the `BraxDynamics` wrapper:
  `friction` (a scale of every geom's friction, 1 = nominal), `gravity` (a scale) and
  `<link>_mass` for each named link, in brax's mass units (the link's inertia scales with it), as
  RRLS's sets give masses. brax's nominal hopper torso weighs 3.67 and its thigh 4.06, so RRLS's
  torso [0.1, 3] and thigh [0.1, 4] ranges lie at or below nominal, as they do in MuJoCo.

Errors (ValueError): an empty or inverted range, an unknown parameter name (the message lists the
env's parameters), a grid with fewer than 2 points per dimension.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import envs
from envs.wrappers import EpisodeStats, Wrapper

_LIMITS = ("max_steps_in_episode",)
_DERIVED = {"CartPole-v1": ("total_mass", "polemass_length")}


@struct.dataclass
class BraxDynamicsParams:
    """Params of a brax env with scaled dynamics (1.0 = brax's nominal model)."""

    max_steps_in_episode: int = 1000
    friction: Any = 1.0
    gravity: Any = 1.0
    mass: Any = None  # [num_links] scales; None = all ones


class BraxDynamics(Wrapper):
    """Steps a brax env (already `BraxToGymnax`) under the system its params describe.

    brax's `PipelineEnv` reads `self.sys` while tracing, so the wrapper swaps in the scaled system
    for the duration of one call; the scaled leaves are traced values, so a vmap over params
    batches the physics over systems."""

    def __init__(self, env):
        super().__init__(env)
        self._brax = env.unwrapped._env
        self._nominal = self._brax.sys
        self.link_names = tuple(self._nominal.link_names)

    def system(self, params: BraxDynamicsParams):
        sys = self._nominal
        mass = jnp.ones(len(self.link_names)) if params.mass is None else jnp.asarray(params.mass)
        inertia = sys.link.inertia.replace(mass=sys.link.inertia.mass * mass,
                                           i=sys.link.inertia.i * mass[:, None, None])
        gravity = sys.gravity * params.gravity
        return sys.replace(
            link=sys.link.replace(inertia=inertia),
            gravity=gravity,
            opt=sys.opt.replace(gravity=gravity),
            geom_friction=sys.geom_friction * params.friction,
        )

    def _with(self, params, fn, *args):
        self._brax.sys = self.system(params)
        try:
            return fn(*args, params)
        finally:
            self._brax.sys = self._nominal

    @property
    def default_params(self):
        return BraxDynamicsParams(mass=jnp.ones(len(self.link_names)))

    def reset(self, key, params=None):
        return self._with(params or self.default_params, self._env.reset, key)

    def transition(self, key, state, action, params=None):
        return self._with(params or self.default_params, self._env.transition, key, state, action)


def make_robust(name: str, *, episode_stats: bool = True, **kwargs):
    """`envs.make` for an env whose dynamics an `UncertaintySet` can vary: gymnax envs as they are,
    brax envs wrapped in `BraxDynamics` with `BraxDynamicsParams`."""
    if not name.startswith("brax/"):
        return envs.make(name, episode_stats=episode_stats, **kwargs)
    env, base = envs.make(name, episode_stats=False, **kwargs)
    env = BraxDynamics(env)
    params = BraxDynamicsParams(base.max_steps_in_episode, mass=jnp.ones(len(env.link_names)))
    return (EpisodeStats(env) if episode_stats else env), params


@functools.lru_cache(maxsize=16)
def _brax_links(name: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(link names, nominal link masses) of brax env `name`."""
    from brax import envs as brax_envs

    short = name[len("brax/"):]
    if short not in envs.BRAX_ENVS:
        envs.make(name)  # raises with close matches
    sys = brax_envs.get_environment(short).sys
    return tuple(sys.link_names), tuple(float(m) for m in np.asarray(sys.link.inertia.mass))


def parameters(name: str) -> tuple[str, ...]:
    """The parameter names an uncertainty set over env `name` may use."""
    if name.startswith("brax/"):
        return ("friction", "gravity") + tuple(f"{link}_mass" for link in _brax_links(name)[0])
    _, params = envs.make(name, episode_stats=False)
    skip = _LIMITS + _DERIVED.get(name, ())
    return tuple(f.name for f in dataclasses.fields(params) if f.name not in skip)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@dataclass(frozen=True)
class UncertaintySet:
    """A box `prod_i [low_i, high_i]` over named dynamics parameters of env `env`."""

    env: str
    ranges: tuple[tuple[str, float, float], ...]

    def __post_init__(self):
        ranges = tuple(tuple(r) for r in self.ranges)
        object.__setattr__(self, "ranges", ranges)
        if not ranges:
            raise ValueError(f"an uncertainty set needs at least one range, got {self.ranges!r}")
        known = parameters(self.env)
        seen = set()
        for r in ranges:
            if len(r) != 3:
                raise ValueError(f"a range is (name, low, high), got {r!r}")
            name, lo, hi = r
            if name not in known:
                raise ValueError(f"env {self.env!r} has no parameter {name!r}; its parameters are {list(known)}")
            if name in seen:
                raise ValueError(f"parameter {name!r} appears twice in {self.ranges!r}")
            seen.add(name)
            if not (_finite(lo) and _finite(hi)) or lo >= hi:
                what = "empty" if _finite(lo) and lo == hi else "inverted or invalid"
                raise ValueError(f"range of {name!r} is {what}: [{lo}, {hi}] (need finite low < high)")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r[0] for r in self.ranges)

    @property
    def low(self) -> np.ndarray:
        return np.array([r[1] for r in self.ranges], np.float32)

    @property
    def high(self) -> np.ndarray:
        return np.array([r[2] for r in self.ranges], np.float32)

    @property
    def dim(self) -> int:
        return len(self.ranges)

    def sample(self, key, n: int | None = None):
        """Uniform points of the box: [dim] (n None) or [n, dim]."""
        shape = (self.dim,) if n is None else (n, self.dim)
        return jax.random.uniform(key, shape, minval=self.low, maxval=self.high)

    def axes(self, points) -> list[np.ndarray]:
        """`points` evenly spaced values per range, both end points included."""
        per = (points,) * self.dim if isinstance(points, int) else tuple(points)
        if len(per) != self.dim or any(int(p) < 2 for p in per):
            raise ValueError(f"grid needs >= 2 points for each of {self.dim} ranges, got {points!r}")
        return [np.linspace(lo, hi, int(p), dtype=np.float32) for (_, lo, hi), p in zip(self.ranges, per)]

    def grid(self, points) -> jnp.ndarray:
        """The full grid, [prod(points), dim], first parameter varying slowest (C order)."""
        mesh = np.meshgrid(*self.axes(points), indexing="ij")
        return jnp.asarray(np.stack([m.reshape(-1) for m in mesh], axis=-1))

    def apply(self, params, values):
        """`params` with the set's parameters set to `values` ([dim]); jittable and vmappable."""
        values = jnp.asarray(values, jnp.float32)
        if isinstance(params, BraxDynamicsParams):
            return _apply_brax(self.env, params, dict(zip(self.names, values)))
        params = params.replace(**{n: values[i] for i, n in enumerate(self.names)})
        if self.env == "CartPole-v1":
            params = params.replace(total_mass=params.masscart + params.masspole,
                                    polemass_length=params.masspole * params.length)
        return params

    def values_of(self, params):
        """The set's parameters as `params` has them ([dim]); jittable."""
        if isinstance(params, BraxDynamicsParams):
            links, masses = _brax_links(self.env)
            scale = jnp.ones(len(links)) if params.mass is None else jnp.asarray(params.mass, jnp.float32)
            have = {f"{k}_mass": m * scale[i] for i, (k, m) in enumerate(zip(links, masses))}
            have.update(friction=params.friction, gravity=params.gravity)
        else:
            have = {n: getattr(params, n) for n in self.names}
        return jnp.stack([jnp.asarray(have[n], jnp.float32) for n in self.names])

    def nominal(self, params) -> np.ndarray:
        """`values_of` as a NumPy array (params not traced)."""
        return np.asarray(self.values_of(params))


def _apply_brax(name: str, params: BraxDynamicsParams, values: dict) -> BraxDynamicsParams:
    links, nominal = _brax_links(name)
    mass = jnp.ones(len(links)) if params.mass is None else jnp.asarray(params.mass, jnp.float32)
    for i, link in enumerate(links):
        if f"{link}_mass" in values:
            mass = mass.at[i].set(values[f"{link}_mass"] / nominal[i])
    return params.replace(mass=mass, friction=values.get("friction", params.friction),
                          gravity=values.get("gravity", params.gravity))


# Reference sets. brax/hopper: RRLS's 3-D hopper set (friction as a scale, masses in brax's units);
# brax/inverted_pendulum: IWOCS's pole mass [1, 31] x cart mass [1, 11] set.
SETS = {
    "CartPole-v1": (("length", 0.25, 2.0), ("masspole", 0.05, 1.0)),
    "Pendulum-v1": (("m", 0.5, 2.0), ("l", 0.5, 2.0)),
    "brax/hopper": (("friction", 0.1, 3.0), ("torso_mass", 0.1, 3.0), ("thigh_mass", 0.1, 4.0)),
    "brax/inverted_pendulum": (("pole_mass", 1.0, 31.0), ("cart_mass", 1.0, 11.0)),
}


def reference_set(name: str) -> UncertaintySet:
    """A default uncertainty set for `name` (see `SETS`)."""
    if name not in SETS:
        raise ValueError(f"no reference uncertainty set for {name!r}; known: {sorted(SETS)}")
    return UncertaintySet(name, SETS[name])
