"""Devices, seeds and blocks: where each run of a sweep computes, and with which key.

- Keys: run i of base seed s uses `fold_in(PRNGKey(s), i)`, whatever the number of runs.
- Blocks: runs are computed in fixed-size blocks of `block_size` runs, vmapped within a block. A
  group of blocks, one per device, is one call of the compiled chunk program (a 1-D mesh named
  "seeds" shards the group's axis over the devices), and the groups of a sweep are called one
  after the other. Every device therefore always runs the same program on a batch of exactly
  `block_size` runs, so run i's result is bitwise the same for every number of runs on the same
  machine and device count. (XLA does not promise one summation order for a reduction whatever
  the batch around it, so a batch of another size, or another device count, can differ in the
  last bits, which training then amplifies into another run.) The runs that fill the last group
  repeat earlier runs and are dropped. `block_size=None` vmaps all runs at once, in one group:
  fastest when every run is wanted together, without the promise.
- Multi-host: with `coordinator_address` / `num_processes` set, `init_distributed` starts JAX's
  runtime (`jax.distributed.initialize`); the mesh spans every process's devices, global inputs
  are built with `jax.make_array_from_callback` and outputs gathered with `process_allgather`.
- CPU: `use_host_devices(n)` splits the host into n XLA devices (one per core by default in the
  CLI), so the blocks of a group run on all cores at once. It must run before JAX starts its CPU
  backend; once it has started, it is too late and the call says so.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_FORCE = "--xla_force_host_platform_device_count"


def keys_for(seed: int, indices: Sequence[int]) -> jax.Array:
    """Keys of runs `indices` of base seed `seed`: fold_in(PRNGKey(seed), i)."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(list(indices), dtype=jnp.uint32))


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Per-seed keys; key i does not depend on num_seeds."""
    return keys_for(seed, range(num_seeds))


def backend_started() -> bool:
    """True once JAX has created its backends (after which XLA flags no longer apply)."""
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):  # private API moved: assume the worst
        return True


def use_host_devices(n: int) -> bool:
    """Ask XLA for `n` CPU devices (before the backend starts). Returns True if the request can
    take effect; False if the backend already runs (then the current device count stays) or the
    flag was already set by the user."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _FORCE in flags:
        return False
    if backend_started():
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {_FORCE}={int(n)}".strip()
    return True


def default_host_devices() -> int:
    """One device per core the process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def init_distributed(coordinator_address: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """Start JAX's multi-process runtime when asked (coordinator_address, or num_processes > 1);
    must run before any JAX computation (the CLI calls it first). True when running distributed."""
    wanted = coordinator_address is not None or (num_processes or 1) > 1
    if not wanted or jax.distributed.is_initialized():
        return jax.distributed.is_initialized()
    try:
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
    except RuntimeError as e:
        raise RuntimeError(
            f"jax.distributed.initialize failed ({e}); it must run before any JAX computation: "
            f"call jaxrl.core.run.init_distributed(opts) first thing (the CLI does)"
        ) from e
    return True


def seed_mesh(num_devices: int | None = None) -> Mesh:
    """1-D mesh named "seeds" over the first `num_devices` devices (all processes' devices)."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if n > len(devices):
        raise ValueError(f"num_devices={n} but only {len(devices)} device(s) exist: {[str(d) for d in devices]}")
    if jax.process_count() > 1 and n != len(devices):
        raise ValueError(
            f"num_devices={n}: a multi-host run uses all {len(devices)} devices of its "
            f"{jax.process_count()} processes; leave num_devices unset"
        )
    return Mesh(np.array(devices[:n]), ("seeds",))


class Layout:
    """How `num_runs` runs are cut into groups of `group` rows (`block` rows per device)."""

    def __init__(self, num_runs: int, block_size: int | None, num_devices: int):
        block = math.ceil(num_runs / num_devices) if block_size is None else block_size
        self.num_runs = num_runs
        self.block = block
        self.group = block * num_devices
        self.num_groups = math.ceil(num_runs / self.group)
        self.padded = self.num_groups * self.group

    def rows(self, g: int) -> np.ndarray:
        """Run rows of group g (rows past num_runs repeat earlier runs cyclically)."""
        return np.arange(g * self.group, (g + 1) * self.group) % self.num_runs

    def note(self) -> str | None:
        extra = self.padded - self.num_runs
        if not extra:
            return None
        return (f"[jaxrl] {self.num_runs} runs computed in {self.num_groups} group(s) of {self.group} "
                f"({self.block} per device); the {extra} filler runs are dropped")


def to_global(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array sharded along axis 0 from a host array every process holds whole."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def fetch(tree):
    """Device arrays -> host numpy (gathered over processes in a multi-host run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


def shard(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("seeds"))


def note(msg: str | None) -> None:
    if msg and jax.process_index() == 0:
        print(msg, file=sys.stderr)




def accelerators_absent() -> bool:
    """True when JAX will find no GPU or TPU (judged without starting JAX's backends)."""
    import importlib.util

    platforms = os.environ.get("JAX_PLATFORMS", "").strip().lower()
    if platforms:
        return platforms == "cpu"
    plugins = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")
    return not any(importlib.util.find_spec(p) is not None for p in plugins)


def _flag(argv: Sequence[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def prepare_cli(argv: Sequence[str]) -> None:
    """Before JAX starts (run as `python -m jaxrl.algos.X`): on a machine without accelerators,
    split the host into `--host-devices` CPU devices (default: one per core), unless the run is
    multi-host or the user set XLA's flag."""
    if any(a.startswith(("--coordinator-address", "--num-processes")) for a in argv) or not accelerators_absent():
        return
    try:
        n = int(_flag(argv, "--host-devices") or default_host_devices())
    except ValueError:
        return  # the CLI's parser reports the bad value
    if n > 1:
        use_host_devices(n)


def host_devices_note(requested: int | None) -> str | None:
    """A note when `--host-devices` asked for a count that JAX did not start with."""
    if requested is None or jax.default_backend() != "cpu" or jax.local_device_count() == requested:
        return None
    return (f"[jaxrl] --host-devices {requested} had no effect: JAX already runs with "
            f"{jax.local_device_count()} CPU device(s) (set it before JAX starts, as `python -m` does)")
