"""Robust evaluation: a policy's return at every point of a grid over an uncertainty set, in one
vmapped call, with the worst case and the average (RARL, QARL, IWOCS and the robust benchmark).

    uset = envs.robust.reference_set("CartPole-v1")
    res = grid_returns(env, params, uset, uset.grid(10), act, key, num_episodes=4, max_steps=500)
    res.worst, res.mean, res.argmin        # min and mean over the grid of the mean episode return
    heatmap(uset, 10, res.returns, path="grid.png")

The peers (RRLS, Robust-Gymnasium) loop over the grid in Python, one env per point; here the
dynamics parameters are env params, so the grid is a batch axis of one program.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core.evaluate import evaluate


class GridResult(NamedTuple):
    returns: jax.Array  # [points]: mean undiscounted return of the episodes at each point
    worst: jax.Array  # min over the points
    mean: jax.Array  # mean over the points
    argmin: jax.Array  # index of the worst point


def summarize(returns) -> GridResult:
    returns = jnp.asarray(returns)
    return GridResult(returns, returns.min(), returns.mean(), jnp.argmin(returns))


def grid_returns(env, params, uset, values, act: Callable, key, num_episodes: int, max_steps: int) -> GridResult:
    """Mean return of `num_episodes` episodes of `act` at each row of `values` ([points, dim]),
    the dynamics set by `uset.apply(params, row)`; every point uses the same key (common random
    numbers, so points differ by their dynamics only). Jittable."""

    def one(v):
        return evaluate(env, uset.apply(params, v), act, key, num_episodes, max_steps)[0]

    return summarize(jax.vmap(one)(jnp.asarray(values)))


def heatmap(uset, points, returns, path=None, ax=None, title: str | None = None):
    """A heat map of `returns` over a 2-D grid made by `uset.grid(points)` (first parameter on the
    y axis); the worst point is marked with a cross. Returns the figure."""
    from jaxrl.plot import _figure, _save

    if uset.dim != 2:
        raise ValueError(f"heatmap needs a 2-D uncertainty set, got {uset.dim} parameters {uset.names}")
    ys, xs = uset.axes(points)
    r = np.asarray(returns, np.float64).reshape(len(ys), len(xs))
    fig = ax.figure if ax is not None else _figure(figsize=(5, 4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    im = ax.imshow(r, origin="lower", aspect="auto", cmap="viridis",
                   extent=(xs[0], xs[-1], ys[0], ys[-1]))
    i, j = np.unravel_index(np.argmin(r), r.shape)
    ax.plot(xs[j], ys[i], "rx", markersize=10, label=f"worst {r.min():.1f}")
    ax.set_xlabel(uset.names[1])
    ax.set_ylabel(uset.names[0])
    ax.set_title(title or f"return over the set (mean {r.mean():.1f})")
    ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(im, ax=ax, label="return")
    if path is not None:
        _save(fig, path)
    return fig
