"""What an algorithm needs to know about an env before it builds networks: `envs.spec(name)`.

    s = envs.spec("CartPole-v1")      # or envs.spec_of(env, params) for an env already made
    s.obs_shape, s.obs_dtype          # (4,), float32;  MinAtar: (10, 10, 4);  pixel envs: (H, W, C) uint8
    s.discrete, s.action_dim          # True, 2  (number of actions; for continuous: action size)
    s.action_low, s.action_high       # None for discrete; float32 arrays of shape (action_dim,) otherwise
    s.max_steps                       # the time limit (max_steps_in_episode)
    s.num_players                     # 1; a two-player (zero-sum) game says 2 and describes the
                                      # adversary's actions in `adversary`, an EnvSpec of its own

An env describes a second player by having `num_players = 2` and `adversary_action_space(params)`.
`require(...)` turns what an algorithm cannot handle into one ValueError naming the env.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    name: str
    obs_shape: tuple[int, ...]
    obs_dtype: str
    discrete: bool
    action_dim: int
    action_low: tuple[float, ...] | None
    action_high: tuple[float, ...] | None
    max_steps: int | None
    num_players: int = 1
    adversary: "EnvSpec | None" = None

    @property
    def image(self) -> bool:
        """Observations are HWC images (MinAtar grids, rendered pixels)."""
        return len(self.obs_shape) == 3

    @property
    def action_shape(self) -> tuple[int, ...]:
        return () if self.discrete else (self.action_dim,)

    def low(self):
        return None if self.action_low is None else np.asarray(self.action_low, np.float32)

    def high(self):
        return None if self.action_high is None else np.asarray(self.action_high, np.float32)

    def require(self, algo: str, *, discrete: bool | None = None, obs_ndim: tuple[int, ...] | None = None,
                hint: str = "") -> "EnvSpec":
        """Raise ValueError unless the env has the action kind and observation rank `algo` needs."""
        if discrete is not None and discrete != self.discrete:
            want, have = ("discrete", "continuous") if discrete else ("continuous", "discrete")
            raise ValueError(
                f"{algo} needs {want} actions; env {self.name!r} has {have} actions"
                + (f". {hint}" if hint else "")
            )
        if obs_ndim is not None and len(self.obs_shape) not in obs_ndim:
            raise ValueError(
                f"{algo} needs observations of rank {' or '.join(map(str, obs_ndim))}; env {self.name!r} has "
                f"observations of shape {self.obs_shape}"
            )
        return self


def _space_spec(space) -> tuple[bool, int, tuple | None, tuple | None]:
    from gymnax.environments import spaces

    if isinstance(space, spaces.Discrete):
        return True, int(space.n), None, None
    shape = tuple(space.shape)
    size = int(np.prod(shape)) if shape else 1
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape).reshape(-1)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape).reshape(-1)
    return False, size, tuple(float(x) for x in low), tuple(float(x) for x in high)


def spec_of(env, params, name: str | None = None) -> EnvSpec:
    """The spec of an env that is already made (any wrapper of the gymnax interface)."""
    obs_space = env.observation_space(params)
    discrete, dim, low, high = _space_spec(env.action_space(params))
    max_steps = getattr(params, "max_steps_in_episode", None)
    players = int(getattr(env, "num_players", 1))
    adversary = None
    if players > 1:
        a_disc, a_dim, a_low, a_high = _space_spec(env.adversary_action_space(params))
        adversary = EnvSpec(f"{name}:adversary", tuple(obs_space.shape), str(np.dtype(obs_space.dtype)),
                            a_disc, a_dim, a_low, a_high, max_steps)
    return EnvSpec(
        name=name or getattr(env, "name", type(env).__name__),
        obs_shape=tuple(int(d) for d in obs_space.shape),
        obs_dtype=str(np.dtype(obs_space.dtype)),
        discrete=discrete,
        action_dim=dim,
        action_low=low,
        action_high=high,
        max_steps=None if max_steps is None else int(max_steps),
        num_players=players,
        adversary=adversary,
    )


@functools.lru_cache(maxsize=64)
def _spec_cached(name: str, kwargs: tuple) -> EnvSpec:
    from envs.make import make

    env, params = make(name, episode_stats=False, **dict(kwargs))
    return spec_of(env, params, name)


def spec(name: str, **kwargs) -> EnvSpec:
    """The spec of env `name` as `envs.make(name, **kwargs)` builds it (cached; an unknown name
    raises make's error with close matches)."""
    if not isinstance(name, str):
        raise ValueError(f"env name must be a string, got {name!r}")
    return _spec_cached(name, tuple(sorted(kwargs.items())))
