"""Two-player (zero-sum) and noisy-observation wrappers for robust RL.

`Adversarial(env, name, bound, channels)` makes a zero-sum Markov game: the step's action is the pair
`(protagonist_action, adversary_action)`; the protagonist receives the env's reward r, the adversary
is meant to receive -r (the algorithms negate it). The adversary's action is a vector with one entry
per channel, each clipped to [-bound, bound] before it acts:

- `"cart_force"` (CartPole-v1): a horizontal force on the cart, added to the protagonist's push
  (RARL's force on a body). gymnax's CartPole applies `force_mag * (2a - 1)`; with
  `force_mag + f * (2a - 1)` in its place the cart feels `force_mag * (2a - 1) + f`, because
  `(2a - 1)^2 = 1`.
- `"<link>_force_<axis>"` (brax, axis x, y or z): a world-frame force on the origin of a named link,
  held for the env step (RARL's force sets: `foot_force_x`, `foot_force_z` on the hopper; see
  `envs.robust.forces` for how brax's generalized pipeline takes it).
- any other name is a dynamics parameter of the env (those `envs.robust.parameters(name)` lists: a
  gymnax `EnvParams` field such as Pendulum's `g`, or a brax `friction`/`gravity`/`<link>_mass`),
  which the adversary offsets by its action for the step: a bounded perturbation of the dynamics.

`ObservationNoise(env, sigma)` adds N(0, sigma^2 I) to every observation it returns (the
smoothing of Policy Smoothing, and the noisy training env it uses).

Errors (ValueError): a force bound <= 0, a negative noise level, an unknown channel (the message
lists the env's parameters and force channels), body forces on a brax backend other than
"generalized".
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from envs.robust.forces import ForcedPipeline, force_channels, parse_channel
from envs.robust.sets import UncertaintySet, parameters
from envs.wrappers import Wrapper


def _check_bound(bound) -> np.ndarray:
    b = np.asarray(bound, np.float64)
    if b.size == 0 or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"force bound must be > 0, got {bound!r}")
    return b.astype(np.float32)


class Adversarial(Wrapper):
    """A zero-sum two-player version of `env` (see the module docstring).

    `name` is the env's registered name; `channels` the adversary's action entries; `bound` a
    positive number or one per channel."""

    num_players = 2

    def __init__(self, env, name: str, bound, channels=("cart_force",)):
        super().__init__(env)
        channels = tuple(channels)
        if not channels:
            raise ValueError("an adversary needs at least one channel")
        links = tuple(env.unwrapped._env.sys.link_names) if name.startswith("brax/") else ()
        pushes = force_channels(links)
        known = parameters(name) + (("cart_force",) if name == "CartPole-v1" else ()) + pushes
        for c in channels:
            if c not in known:
                raise ValueError(f"env {name!r} has no adversary channel {c!r}; its parameters are {list(known)}")
        b = _check_bound(bound)
        if b.size not in (1, len(channels)):
            raise ValueError(f"bound needs 1 or {len(channels)} entries, got {bound!r}")
        self.name, self.channels = name, channels
        self.bound = np.broadcast_to(b, (len(channels),)).copy()
        self._forces = [(i, parse_channel(c, links)) for i, c in enumerate(channels) if c in pushes]
        self._force_links = sorted({link for _, (link, _) in self._forces})
        if self._forces and env.unwrapped._env.backend != "generalized":
            raise ValueError(f"body forces need brax's generalized backend, got {env.unwrapped._env.backend!r}")
        params = tuple(c for c in channels if c != "cart_force" and c not in pushes)
        self._offsets = None
        if params:  # the same apply as an uncertainty set, at nominal + offset
            self._offsets = UncertaintySet(name, tuple((c, -1.0, 1.0) for c in params))

    def adversary_action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-self.bound, self.bound, (len(self.channels),), jnp.float32)

    def clip(self, adv_action):
        """The adversary's action as it acts: each entry clipped to its bound."""
        return jnp.clip(jnp.asarray(adv_action, jnp.float32), -self.bound, self.bound)

    def perturb(self, params, action, adv_action):
        """`params` as the adversary's (clipped) action changes them for one step."""
        f = self.clip(adv_action)
        idx = {c: i for i, c in enumerate(self.channels)}
        if "cart_force" in idx:
            sign = 2.0 * jnp.asarray(action, jnp.float32) - 1.0
            params = params.replace(force_mag=params.force_mag + f[idx["cart_force"]] * sign)
        if self._offsets is not None:
            names = self._offsets.names
            base = self._offsets.values_of(params)
            params = self._offsets.apply(params, base + jnp.stack([f[idx[n]] for n in names]))
        return params

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def body_forces(self, adv_action):
        """(link indices [k], world-frame forces [k, 3]) of the force channels' clipped actions."""
        f = self.clip(adv_action)
        forces = jnp.zeros((len(self._force_links), 3))
        for i, (link, axis) in self._forces:
            forces = forces.at[self._force_links.index(link), axis].add(f[i])
        return self._force_links, forces

    def transition(self, key, state, action, params=None):
        params = self._env.default_params if params is None else params
        a, adv = action
        if not self._forces:
            return self._env.transition(key, state, a, self.perturb(params, a, adv))
        brax_env = self._env.unwrapped._env  # its step reads `_pipeline` while tracing
        base = brax_env._pipeline
        brax_env._pipeline = ForcedPipeline(base, *self.body_forces(adv))
        try:
            return self._env.transition(key, state, a, self.perturb(params, a, adv))
        finally:
            brax_env._pipeline = base


class ObservationNoise(Wrapper):
    """Adds N(0, sigma^2 I) to every observation (reset, step, and the final observation)."""

    def __init__(self, env, sigma: float):
        super().__init__(env)
        if not isinstance(sigma, (int, float)) or not np.isfinite(sigma) or sigma < 0:
            raise ValueError(f"noise level sigma must be >= 0, got {sigma!r}")
        self.sigma = float(sigma)

    def _noisy(self, key, obs):
        return obs + self.sigma * jax.random.normal(key, obs.shape, obs.dtype)

    def reset(self, key, params=None):
        k_env, k_noise = jax.random.split(key)
        obs, state = self._env.reset(k_env, params)
        return self._noisy(k_noise, obs), state

    def transition(self, key, state, action, params=None):
        k_env, k_noise = jax.random.split(key)
        obs, state, reward, term, trunc, info = self._env.transition(k_env, state, action, params)
        return self._noisy(k_noise, obs), state, reward, term, trunc, info
