"""Run a `Trainer` for many seeds: vmap over seeds, shard the seed axis over devices, and loop over
jitted chunks in Python to show progress and write metrics. Nothing leaves the device inside a
chunk; each chunk's small metrics dict is fetched once after it."""
from __future__ import annotations

import csv
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxrl.core.train import Trainer


@dataclass(frozen=True)
class RunOptions:
    """Options of a run (not of the algorithm)."""

    num_seeds: int = 1
    """independent runs, vmapped (and sharded over devices)"""
    seed: int = 0
    """base seed; run i uses fold_in(PRNGKey(seed), i)"""
    num_devices: int | None = None
    """devices to shard seeds over (default: all local devices)"""
    log_dir: str | None = None
    """write metrics.csv (one row per chunk and seed) here"""
    progress: bool = True
    """show a progress bar over chunks"""

    def __post_init__(self):
        if not isinstance(self.num_seeds, int) or self.num_seeds <= 0:
            raise ValueError(f"num_seeds must be a positive int, got {self.num_seeds!r}")
        if self.num_devices is not None and self.num_devices <= 0:
            raise ValueError(f"num_devices must be a positive int, got {self.num_devices!r}")


@dataclass
class RunResult:
    metrics: dict[str, np.ndarray]  # name -> [num_chunks, num_seeds]
    carry: Any = field(repr=False)

    def final(self, name: str = "return") -> np.ndarray:
        """Per seed, the last non-NaN value of metric `name`."""
        m = self.metrics[name]
        out = np.full(m.shape[1], np.nan)
        for s in range(m.shape[1]):
            ok = ~np.isnan(m[:, s])
            if ok.any():
                out[s] = m[ok, s][-1]
        return out


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Per-seed keys; key i does not depend on num_seeds, so N seeds equal N single runs."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(num_seeds))


def seed_mesh(num_devices: int | None = None) -> Mesh:
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if n > len(devices):
        raise ValueError(
            f"num_devices={n} but only {len(devices)} device(s) exist: {[str(d) for d in devices]}"
        )
    return Mesh(np.array(devices[:n]), ("seeds",))


def run(trainer: Trainer, opts: RunOptions = RunOptions(), seeds: Sequence[int] | None = None) -> RunResult:
    keys = seed_keys(opts.seed, opts.num_seeds)
    mesh = seed_mesh(opts.num_devices)
    n_dev = mesh.devices.size
    padded = math.ceil(opts.num_seeds / n_dev) * n_dev
    if padded != opts.num_seeds:
        print(
            f"[jaxrl] padding {opts.num_seeds} seeds to {padded} for {n_dev} devices; "
            f"the {padded - opts.num_seeds} extra runs are dropped",
            file=sys.stderr,
        )
        keys = jnp.concatenate([keys, keys[: padded - opts.num_seeds]])
    shard = NamedSharding(mesh, P("seeds"))
    keys = jax.device_put(keys, shard)
    init = jax.jit(jax.vmap(trainer.init), out_shardings=shard)
    update = jax.jit(jax.vmap(trainer.update), out_shardings=shard, donate_argnums=0)

    carry = init(keys)
    history: list[dict[str, np.ndarray]] = []
    bar = None
    if opts.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=trainer.num_chunks, desc="train", unit="chunk", file=sys.stderr)
    writer = None
    if opts.log_dir:
        os.makedirs(opts.log_dir, exist_ok=True)
        fh = open(os.path.join(opts.log_dir, "metrics.csv"), "w", newline="")
        writer = csv.writer(fh)
    for chunk in range(trainer.num_chunks):
        carry, m = update(carry)
        m = {k: np.asarray(v)[: opts.num_seeds] for k, v in jax.device_get(m).items()}
        history.append(m)
        if writer is not None:
            if chunk == 0:
                writer.writerow(["chunk", "seed", *m])
            for s in range(opts.num_seeds):
                writer.writerow([chunk, s, *(m[k][s] for k in m)])
        if bar is not None:
            ret = m.get("return")
            post = {}
            if ret is not None and not np.isnan(ret).all():
                post["return"] = f"{np.nanmean(ret):.1f}"
            if "env_steps" in m:
                post["steps"] = int(m["env_steps"][0])
            bar.set_postfix(post)
            bar.update(1)
    if bar is not None:
        bar.close()
    if writer is not None:
        fh.close()
    metrics = {k: np.stack([h[k] for h in history]) for k in history[0]} if history else {}
    carry = jax.tree.map(lambda x: x[: opts.num_seeds], carry)
    return RunResult(metrics, carry)
