"""Plots and statistics over seeds: learning curves with bootstrap CIs, and rliable-style aggregates.

- `load_run(dir)`: the metrics.csv that `jaxrl.core.run.run(..., RunOptions(log_dir=dir))` writes,
  as `{name: array[num_chunks, num_seeds]}`, the shape of `RunResult.metrics`.
- `learning_curves(runs, x="env_steps", y="return")`: mean over seeds and its 95% bootstrap CI,
  one line and band per run on one axis.
- `aggregate(scores)`: IQM and optimality gap over runs x tasks with stratified bootstrap CIs
  (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice", Sec. 4), and
  `plot_aggregate` draws them as interval plots.

The statistics follow the rliable package's definitions (IQM = 25% trimmed mean of all run x task
scores; optimality gap = mean of max(gamma - score, 0); percentile CIs from a bootstrap that
resamples runs within each task). They are implemented here because rliable 1.2 does not import
with current pandas/numpy (its dependency `arch` breaks).

Figures are made outside pyplot (no global state, no GUI backend: they draw with Agg); every plot
function returns the figure and saves it when given `path` (the extension picks PNG, PDF, SVG ...).
"""
from __future__ import annotations

import csv
import os
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np

from jaxrl.core.tracking import interquartile_mean as iqm  # noqa: F401 (part of this API)

DEFAULT_REPS = 2000


# ---------------------------------------------------------------------------------------- loading

def load_run(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Metrics of a run directory (or its metrics.csv) as float arrays, shaped like
    `RunResult.metrics`: [chunks, seeds], or [chunks, configs, seeds] for a `run_many` run.

    The CSV has columns `chunk, [config,] seed, <metric names>`, one row per chunk (and config)
    and seed; seeds are indexed in the order they first appear."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no metrics file at {path!r} (a run writes it with RunOptions(log_dir=...))")
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        rows = [r for r in reader if r]
    index = ["chunk", "config", "seed"] if header and header[1:2] == ["config"] else ["chunk", "seed"]
    if not header or header[:len(index)] != index:
        raise ValueError(f"{path!r} is not a jaxrl metrics.csv: its header {header!r} does not start with chunk, seed")
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
    # each index column -> positions 0..n-1, in order of first appearance
    pos = []
    for j in range(len(index)):
        uniq, first, inv = np.unique(table[:, j], return_index=True, return_inverse=True)
        rank = np.empty(len(uniq), dtype=int)
        rank[np.argsort(first)] = np.arange(len(uniq))
        pos.append(rank[inv])
    shape = tuple(p.max() + 1 for p in pos)
    out = {}
    for j, name in enumerate(header[len(index):], start=len(index)):
        m = np.full(shape, np.nan)
        m[tuple(pos)] = table[:, j]
        out[name] = m
    return out


def _metrics(run) -> Mapping[str, np.ndarray]:
    """A run's metrics dict from a dict, a `RunResult`, or a run directory."""
    if isinstance(run, (str, os.PathLike)):
        return load_run(run)
    return getattr(run, "metrics", run)


def _is_one_run(runs) -> bool:
    if isinstance(runs, (str, os.PathLike)) or hasattr(runs, "metrics"):
        return True
    return all(isinstance(v, np.ndarray) or hasattr(v, "shape") for v in runs.values())


# ------------------------------------------------------------------------------------ statistics

def optimality_gap(scores, gamma: float = 1.0, axis=None) -> np.ndarray:
    """Mean amount by which (normalised) scores fall short of `gamma`: mean(max(gamma - x, 0))."""
    x = np.asarray(scores, dtype=np.float64)
    return (gamma - np.minimum(x, gamma)).mean(axis=axis)


METRICS: dict[str, Callable] = {"IQM": iqm, "Optimality gap": optimality_gap}


def bootstrap_mean_ci(values, ci: float = 0.95, reps: int = DEFAULT_REPS, seed: int = 0):
    """Mean over the last axis (seeds, NaNs ignored) and its percentile bootstrap CI, resampling
    seeds with replacement. `values`: [..., seeds]. Returns (mean, low, high), each [...]."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[-1]
    # a resample is a count per seed; its NaN-ignoring mean is a ratio of two matrix products
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=reps)  # [reps, n]
    valid = ~np.isnan(x)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN chunks (no episode ended) stay NaN
        point = np.nanmean(x, axis=-1)
        boot = (np.where(valid, x, 0.0) @ counts.T) / (valid @ counts.T)  # [..., reps]
        lo, hi = np.nanpercentile(boot, [50 * (1 - ci), 50 * (1 + ci)], axis=-1)
    return point, lo, hi


def stratified_bootstrap(scores_by_task: Mapping[str, Sequence[float]], fn: Callable,
                         ci: float = 0.95, reps: int = DEFAULT_REPS, seed: int = 0):
    """`fn` of all run x task scores, and its percentile CI from a bootstrap that resamples the
    runs of each task separately (so each resample keeps every task's number of runs).
    `fn(x, axis=...)` must reduce along `axis`. Returns (point, low, high)."""
    tasks = [np.asarray(v, dtype=np.float64).reshape(-1) for v in scores_by_task.values()]
    if not tasks or any(t.size == 0 for t in tasks):
        raise ValueError("every task needs at least one score")
    rng = np.random.default_rng(seed)
    boot = np.concatenate([t[rng.integers(0, t.size, size=(reps, t.size))] for t in tasks], axis=1)
    point = float(fn(np.concatenate(tasks)))
    lo, hi = np.percentile(fn(boot, axis=1), [50 * (1 - ci), 50 * (1 + ci)])
    return point, float(lo), float(hi)


def _by_task(scores) -> dict[str, np.ndarray]:
    """`{task: runs}` from a mapping, or from an array [runs, tasks] (tasks named by index)."""
    if isinstance(scores, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    x = np.asarray(scores, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    return {str(j): x[:, j] for j in range(x.shape[1])}


def aggregate(scores_by_algo_by_task: Mapping, metrics: Mapping[str, Callable] | None = None,
              normalizers: Mapping[str, tuple[float, float]] | None = None,
              ci: float = 0.95, reps: int = DEFAULT_REPS, seed: int = 0) -> dict[str, dict[str, tuple]]:
    """Aggregate metrics with stratified bootstrap CIs for each algorithm.

    `scores_by_algo_by_task`: `{algo: {task: per-run scores}}` or `{algo: array [runs, tasks]}`;
    scores should be normalised (1 = solved) for the optimality gap to mean anything, e.g. with
    `normalizers={task: (random_score, max_score)}`. `metrics`: `{name: fn(x, axis=None)}`,
    default IQM and optimality gap. Returns `{algo: {metric: (point, low, high)}}`;
    deterministic given `seed`."""
    metrics = METRICS if metrics is None else metrics
    out = {}
    for algo, scores in scores_by_algo_by_task.items():
        by_task = _by_task(scores)
        if normalizers is not None:
            missing = sorted(set(by_task) - set(normalizers))
            if missing:
                raise ValueError(f"no normalizer for task(s) {missing} of {algo!r}")
            by_task = {t: (v - normalizers[t][0]) / (normalizers[t][1] - normalizers[t][0])
                       for t, v in by_task.items()}
        out[algo] = {name: stratified_bootstrap(by_task, fn, ci, reps, seed) for name, fn in metrics.items()}
    return out


# --------------------------------------------------------------------------------------- figures

def _figure(**kw):
    """A figure outside pyplot's global state; it saves and shows through the Agg canvas."""
    from matplotlib.figure import Figure

    return Figure(**kw)


def _save(fig, path):
    if path is not None:
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
        fig.savefig(path, bbox_inches="tight", dpi=150)
    return fig


def learning_curves(runs, x: str = "env_steps", y: str = "return", ax=None, ci: float = 0.95,
                    reps: int = DEFAULT_REPS, seed: int = 0, title: str | None = None, path=None):
    """Mean of metric `y` over seeds against `x`, with a `ci` bootstrap band, per run.

    `runs`: one run (a metrics dict `{name: [chunks, seeds]}`, a `RunResult`, or a run directory)
    or `{label: run}` for several on one axis. `x`: a metric name (its mean over seeds is used)
    or "chunk". Returns the figure; saves it to `path` if given."""
    runs = {y: runs} if _is_one_run(runs) else runs
    if ax is None:
        fig = _figure(figsize=(6, 4))
        ax = fig.subplots()
    fig = ax.figure
    for label, run in runs.items():
        m = _metrics(run)
        if y not in m:
            raise KeyError(f"run {label!r} has no metric {y!r}; it has {sorted(m)}")
        vals = np.asarray(m[y], dtype=np.float64)
        if vals.ndim != 2:
            raise ValueError(f"run {label!r}: {y!r} has shape {vals.shape}, not [chunks, seeds]; "
                             f"for a run_many run pass one config's slice, {{name: v[:, c]}}")
        if x == "chunk":
            xs = np.arange(vals.shape[0])
        elif x in m:
            xs = np.nanmean(np.asarray(m[x], dtype=np.float64), axis=1)
        else:
            raise KeyError(f"run {label!r} has no metric {x!r} for the x axis; it has {sorted(m)}")
        point, lo, hi = bootstrap_mean_ci(vals, ci, reps, seed)
        (line,) = ax.plot(xs, point, label=f"{label} ({vals.shape[1]} seeds)")
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} (mean, {ci:.0%} bootstrap CI)")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_aggregate(results: Mapping[str, Mapping[str, tuple]], path=None, colors=None):
    """Interval plot of `aggregate`'s output: one panel per metric, one row per algorithm, a bar
    over the CI and a tick at the point estimate. Returns the figure; saves it to `path`."""
    import matplotlib

    algos = list(results)
    if not algos:
        raise ValueError("nothing to plot: results is empty")
    names = list(results[algos[0]])
    fig = _figure(figsize=(3.2 * len(names), 0.6 + 0.45 * len(algos)))
    axes = fig.subplots(1, len(names), squeeze=False)
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], names):
        for i, algo in enumerate(algos):
            point, lo, hi = results[algo][name]
            c = (colors or {}).get(algo, cycle[i % len(cycle)])
            ax.barh(i, hi - lo, left=lo, height=0.6, color=c, alpha=0.6)
            ax.vlines(point, i - 0.3, i + 0.3, color="k", linewidth=2)
        ax.set_yticks(range(len(algos)), algos if ax is axes[0][0] else [""] * len(algos))
        ax.set_ylim(len(algos) - 0.5, -0.5)  # first algorithm on top
        ax.set_title(name)
        ax.grid(axis="x", alpha=0.3)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    return _save(fig, path)
