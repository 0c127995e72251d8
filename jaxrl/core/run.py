"""Run a `Trainer` for many seeds (and, with `run_many`, many configs) as one program: vmap over
runs, shard the run axis over devices with a 1-D mesh named "seeds", and loop over jitted chunks
in Python to show progress, write metrics, check losses and save checkpoints. Nothing leaves the
device inside a chunk; each chunk's small metrics dict is fetched once after it.

- Seeds: run i uses `seed_keys(seed, n)[i] = fold_in(PRNGKey(seed), i)`, which does not depend on
  n, so N vmapped seeds are N single runs. The run axis is padded to a multiple of the device
  count by repeating runs; the extra runs are dropped from every output.
- Floating point: XLA (at least on CPU) does not promise the same summation order for a
  reduction whatever the batch size around it, so the same seed computed in a batch of 8 (one
  device) or of 2 (8 seeds on four devices) or alone can differ in the last bits of float
  metrics and parameters (measured: ~1e-7 relative on PPO losses after 20k steps). Runs with
  the same per-device batch are bitwise equal. See tests/test_run.py.
- Multi-host: with `coordinator_address` / `num_processes` set (or when JAX already runs more
  than one process), `init_distributed` starts JAX's own runtime (`jax.distributed.initialize`),
  the mesh spans `jax.devices()` of every process, global inputs are built with
  `jax.make_array_from_callback` (every process knows all keys and gives the rows of its own
  devices), and metrics (and checkpointed carries) are gathered with `process_allgather`. Only
  process 0 writes files. Tested here on a single host only.
- Checkpoints (`checkpoint_every`, `resume`): see `jaxrl.core.checkpoint`. Tracking files in
  `log_dir`: see `jaxrl.core.tracking`.
- A loss metric (name ending in "loss") that is NaN or inf after a chunk raises
  FloatingPointError naming the metric, the chunk and the seeds.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxrl.core import checkpoint as ckpt
from jaxrl.core.config import config_hash, to_dict
from jaxrl.core.train import Trainer


@dataclass(frozen=True)
class RunOptions:
    """Options of a run (not of the algorithm)."""

    num_seeds: int = 1
    """independent runs, vmapped (and sharded over devices)"""
    seed: int = 0
    """base seed; run i uses fold_in(PRNGKey(seed), i)"""
    num_devices: int | None = None
    """devices to shard seeds over (None: all devices)"""
    log_dir: str | None = None
    """write config.json, meta.json, metrics.csv, final.json (and checkpoints/) here"""
    progress: bool = True
    """show a progress bar over chunks"""
    checkpoint_every: int = 0
    """save a checkpoint of all seeds every this many chunks and at the end (0: never); needs log_dir"""
    keep_checkpoints: int = 2
    """keep the newest this many checkpoints (0: all)"""
    resume: str | None = None
    """continue the run in this directory (a run dir, its checkpoints/ or one checkpoint) from its latest checkpoint"""
    stop_after: int | None = None
    """stop after this chunk count, as if interrupted (for tests and time-limited jobs)"""
    tensorboard: bool = False
    """also write TensorBoard scalars to <log_dir>/tensorboard"""
    wandb: bool = False
    """also log to Weights & Biases (needs the wandb package)"""
    wandb_project: str = "jaxrl"
    """W&B project name"""
    coordinator_address: str | None = None
    """multi-host: address host:port of process 0 (starts jax.distributed)"""
    num_processes: int | None = None
    """multi-host: number of processes"""
    process_id: int | None = None
    """multi-host: this process's index"""

    def __post_init__(self):
        if isinstance(self.num_seeds, bool) or not isinstance(self.num_seeds, int) or self.num_seeds <= 0:
            raise ValueError(f"num_seeds must be a positive int, got {self.num_seeds!r}")
        for name in ("num_devices", "stop_after", "num_processes"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("checkpoint_every", "keep_checkpoints"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        if self.process_id is not None and self.process_id < 0:
            raise ValueError(f"process_id must be >= 0, got {self.process_id!r}")
        if self.log_dir is None and self.resume is None:
            for name in ("checkpoint_every", "tensorboard", "wandb"):
                if getattr(self, name):
                    raise ValueError(f"{name} needs log_dir (or resume, which writes into the resumed run's dir)")


@dataclass
class RunResult:
    metrics: dict[str, np.ndarray]
    """name -> [num_chunks, num_seeds] (`run`) or [num_chunks, num_configs, num_seeds] (`run_many`)"""
    carry: Any = field(repr=False)
    """final carry, leading axes [num_seeds] or [num_configs, num_seeds]"""
    seeds: list[int] | None = None
    """run indices of the seed axis"""
    configs: list | None = None
    """the configs of `run_many` (None for `run`)"""
    log_dir: str | None = None

    def final(self, name: str = "return") -> np.ndarray:
        """Per seed (and config), the last non-NaN value of metric `name` (NaN if none)."""
        m = np.asarray(self.metrics[name], dtype=np.float64)
        out = np.full(m.shape[1:], np.nan)
        for idx in np.ndindex(*m.shape[1:]):
            col = m[(slice(None),) + idx]
            ok = ~np.isnan(col)
            if ok.any():
                out[idx] = col[ok][-1]
        return out


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Per-seed keys; key i does not depend on num_seeds, so N seeds equal N single runs."""
    return keys_for(seed, range(num_seeds))


def keys_for(seed: int, indices: Sequence[int]) -> jax.Array:
    """Keys of runs `indices` of base seed `seed`: fold_in(PRNGKey(seed), i)."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(list(indices), dtype=jnp.uint32))


def init_distributed(opts: RunOptions) -> bool:
    """Start JAX's multi-process runtime if `opts` asks for it (coordinator_address or
    num_processes > 1); must run before any JAX computation (the CLI calls it first thing).
    Returns True when running distributed."""
    wanted = opts.coordinator_address is not None or (opts.num_processes or 1) > 1
    if not wanted or jax.distributed.is_initialized():
        return jax.distributed.is_initialized()
    try:
        jax.distributed.initialize(
            coordinator_address=opts.coordinator_address,
            num_processes=opts.num_processes,
            process_id=opts.process_id,
        )
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
        raise ValueError(
            f"num_devices={n} but only {len(devices)} device(s) exist: {[str(d) for d in devices]}"
        )
    if jax.process_count() > 1 and n != len(devices):
        raise ValueError(
            f"num_devices={n}: a multi-host run uses all {len(devices)} devices of its "
            f"{jax.process_count()} processes; leave num_devices unset"
        )
    return Mesh(np.array(devices[:n]), ("seeds",))


# ---------------------------------------------------------------------------------------------
# host <-> device


def _global(x: np.ndarray, sharding) -> jax.Array:
    """A global array sharded along axis 0 from a host array every process holds whole."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def _fetch(tree):
    """Device arrays -> host numpy (gathered over processes in a multi-host run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _key_impl_name(x) -> str:
    """Name of the PRNG implementation of a (possibly abstract) typed key array."""
    impl = getattr(x.dtype, "_impl", None)
    return impl.name if impl is not None else str(jax.random.key_impl(x))


def _leaf_specs(abstract_leaves) -> list:
    """Per-run (shape, dtype) of each carry leaf as checkpoints store it (typed keys as their data)."""
    out = []
    for x in abstract_leaves:
        if _is_key(x):
            x = jax.eval_shape(jax.random.key_data, x)
        out.append([list(x.shape[1:]), str(x.dtype)])
    return out


def _pad_rows(x: np.ndarray, n_pad: int) -> np.ndarray:
    """Repeat the runs on axis 0 cyclically up to n_pad rows."""
    return x[np.arange(n_pad) % x.shape[0]]


def _json_safe(d: dict) -> dict:
    import json

    return json.loads(json.dumps(d, default=str))


# ---------------------------------------------------------------------------------------------
# the run loop, shared by `run` and `run_many`


@dataclass
class _Program:
    init: Callable  # jitted: *inputs -> device carry (runs on axis 0 of every leaf)
    update: Callable  # jitted: device carry -> (device carry, metrics [runs])
    inputs: tuple  # host arrays, unpadded runs on axis 0
    num_chunks: int
    carry_paths: list[str]  # key paths of the algorithm carry's leaves (same order as the device carry's)
    batch_shape: tuple  # (seeds,) or (configs, seeds)
    identity: dict  # configs, config_hashes, run: what a checkpoint must match
    tracker_config: dict  # config.json


def _nan_guard(m: dict, chunk: int, num_chunks: int, seeds: list[int], num_configs: int | None) -> None:
    for name, v in m.items():
        if not name.endswith("loss"):
            continue
        bad = ~np.isfinite(np.asarray(v, dtype=np.float64))
        if bad.any():
            what = "NaN" if np.isnan(np.asarray(v, dtype=np.float64)[bad]).any() else "inf"
            if num_configs is None:
                where = f"seeds {[seeds[i] for i in np.flatnonzero(bad)]}"
            else:
                where = "(config, seed) " + str([(int(c), seeds[s]) for c, s in zip(*np.nonzero(bad))])
            raise FloatingPointError(
                f"metric {name!r} is {what} after chunk {chunk} (of {num_chunks}) for {where}"
            )


def _execute(prog: _Program, opts: RunOptions, seeds: list[int], num_configs: int | None) -> tuple:
    mesh = seed_mesh(opts.num_devices)
    n_dev = mesh.devices.size
    n_runs = int(np.prod(prog.batch_shape))
    n_pad = math.ceil(n_runs / n_dev) * n_dev
    if n_pad != n_runs:
        print(
            f"[jaxrl] padding {n_runs} runs to {n_pad} for {n_dev} devices; "
            f"the {n_pad - n_runs} extra runs are dropped",
            file=sys.stderr,
        )
    shard = NamedSharding(mesh, P("seeds"))
    inputs = tuple(_global(_pad_rows(np.asarray(x), n_pad), shard) for x in prog.inputs)
    abstract = jax.eval_shape(prog.init, *inputs)
    abs_leaves, carry_def = jax.tree.flatten(abstract)
    key_leaves = {str(i): _key_impl_name(x) for i, x in enumerate(abs_leaves) if _is_key(x)}
    identity = {
        **prog.identity,
        "num_chunks": prog.num_chunks,
        "carry": {"paths": prog.carry_paths, "leaves": _leaf_specs(abs_leaves)},
    }
    log_dir = opts.log_dir
    writer = jax.process_index() == 0
    history: list[dict] = []
    start = 0

    # --- everything that can refuse the run happens before anything is written
    if opts.resume is not None:
        path = ckpt.find(opts.resume)
        meta, leaves, hist = ckpt.load(path, identity)
        if any(x.shape[0] != n_runs for x in leaves) or any(v.shape[1:] != (n_runs,) for v in hist.values()):
            raise ValueError(f"checkpoint {path!r} is corrupt: its arrays do not hold {n_runs} runs")
        start = meta["chunk"]
        if any(v.shape[0] != start for v in hist.values()):
            raise ValueError(f"checkpoint {path!r} is corrupt: metrics do not cover its {start} chunks")
        history = [{k: v[c].reshape(prog.batch_shape) for k, v in hist.items()} for c in range(start)]
        dev = []
        for i, x in enumerate(leaves):
            g = _global(_pad_rows(x, n_pad), shard)
            dev.append(jax.random.wrap_key_data(g, impl=key_leaves[str(i)]) if str(i) in key_leaves else g)
        carry = jax.tree.unflatten(carry_def, dev)
        log_dir = log_dir or ckpt.run_dir_of(path)
        resumed = {"resumed_from": os.path.abspath(path), "resumed_at_chunk": start}
    else:
        resumed = {}
        if log_dir and ckpt.list_checkpoints(os.path.join(log_dir, "checkpoints")):
            raise ValueError(
                f"log_dir {log_dir!r} already holds checkpoints of a run; continue it with "
                f"--resume {log_dir} or choose another --log-dir"
            )
    run_options = _json_safe(to_dict(dataclasses.replace(opts, log_dir=log_dir)))
    tracker = None
    if log_dir and writer:
        from jaxrl.core.tracking import Tracker

        config_json = {**prog.tracker_config, "run_options": run_options}
        tracker = Tracker(
            log_dir, config=config_json, seeds=seeds, num_configs=num_configs,
            tensorboard=opts.tensorboard, wandb=opts.wandb, wandb_project=opts.wandb_project,
            history=history, meta_extra=resumed,
        )
    bar = None
    status = "failed"
    try:
        if opts.resume is None:
            carry = prog.init(*inputs)
        if opts.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=prog.num_chunks, initial=start, desc="train", unit="chunk", file=sys.stderr)
        end = prog.num_chunks if opts.stop_after is None else min(prog.num_chunks, max(opts.stop_after, start))
        for chunk in range(start, end):
            carry, m = prog.update(carry)
            m = {k: v[:n_runs].reshape(prog.batch_shape) for k, v in _fetch(m).items()}
            history.append(m)
            if tracker is not None:
                tracker.log(chunk, m)
            _nan_guard(m, chunk, prog.num_chunks, seeds, num_configs)
            if bar is not None:
                ret = m.get("return")
                post = {}
                if ret is not None and not np.isnan(ret).all():
                    post["return"] = f"{np.nanmean(ret):.1f}"
                if "env_steps" in m:
                    post["steps"] = int(np.max(m["env_steps"]))
                bar.set_postfix(post)
                bar.update(1)
            done = chunk + 1
            if opts.checkpoint_every and (done % opts.checkpoint_every == 0 or done == prog.num_chunks):
                leaves = [jax.random.key_data(x) if _is_key(x) else x for x in jax.tree.leaves(carry)]
                host = [x[:n_runs] for x in _fetch(leaves)]
                if writer:
                    hist = {k: np.stack([h[k].reshape(n_runs) for h in history]) for k in history[0]}
                    meta = {**_json_safe(identity), "run_options": run_options, "key_leaves": key_leaves}
                    ckpt.save(os.path.join(log_dir, "checkpoints"), done, host, hist, meta, keep=opts.keep_checkpoints)
        status = "finished" if end == prog.num_chunks else f"stopped after chunk {end}"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException as e:
        status = f"failed: {type(e).__name__}: {e}"
        raise
    finally:
        if bar is not None:
            bar.close()
        metrics = {k: np.stack([h[k] for h in history]) for k in history[0]} if history else {}
        if tracker is not None:
            final = None
            if status == "finished":
                final = _final_json(metrics, seeds, num_configs, prog)
            tracker.finish(final, status=status)
    return carry, metrics, n_runs, log_dir


def _final_json(metrics: dict, seeds: list[int], num_configs: int | None, prog: _Program) -> dict:
    from jaxrl.core.tracking import summary

    res = RunResult(metrics, None)
    out: dict[str, Any] = {"metric": "return", "seeds": seeds, "num_chunks": prog.num_chunks}
    if "env_steps" in metrics:
        out["env_steps"] = int(np.max(metrics["env_steps"][-1]))
    if "return" not in metrics:
        return out
    final = res.final("return")
    if num_configs is None:
        out.update(summary(final))
    else:
        changed = prog.tracker_config.get("varying", [])
        cfgs = prog.tracker_config["configs"]
        out["configs"] = [
            {"config": c, "changed": {f: cfgs[c][f] for f in changed}, **summary(final[c])}
            for c in range(num_configs)
        ]
    return out


# ---------------------------------------------------------------------------------------------
# one config


@functools.lru_cache(maxsize=16)
def _jit_trainer(init, update, mesh):
    # cached so that repeated runs of one Trainer (notebooks, tests, resume) compile once
    shard = NamedSharding(mesh, P("seeds"))
    return (
        jax.jit(jax.vmap(init), out_shardings=shard),
        jax.jit(jax.vmap(update), out_shardings=shard, donate_argnums=0),
    )


def _identity(configs: list | None, opts: RunOptions, seeds: list[int]) -> dict:
    return {
        "configs": None if configs is None else [to_dict(c) for c in configs],
        "config_hashes": None if configs is None else [config_hash(c) for c in configs],
        "run": {"seed": opts.seed, "seeds": seeds, "num_configs": None if configs is None else len(configs)},
    }


def _seeds(opts: RunOptions, seeds: Sequence[int] | None) -> list[int]:
    if seeds is None:
        return list(range(opts.num_seeds))
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative run indices, got {seeds!r}")
    return seeds


def run(
    trainer: Trainer,
    opts: RunOptions = RunOptions(),
    seeds: Sequence[int] | None = None,
    *,
    config=None,
) -> RunResult:
    """Run `trainer` for `opts.num_seeds` seeds (or the run indices `seeds`, which then override
    num_seeds) vmapped and sharded over devices. Pass the algorithm `config` so that config.json
    records it and checkpoints are matched to it on resume."""
    init_distributed(opts)
    seeds = _seeds(opts, seeds)
    mesh = seed_mesh(opts.num_devices)
    init, update = _jit_trainer(trainer.init, trainer.update, mesh)
    key = keys_for(opts.seed, seeds[:1])[0]
    paths = [p for p, _, _ in _describe(jax.eval_shape(trainer.init, key))]
    ident = _identity(None if config is None else [config], opts, seeds)
    tracker_config = {
        "algorithm": None if config is None else f"{type(config).__module__}.{type(config).__qualname__}",
        "config": None if config is None else to_dict(config),
        "config_hash": None if config is None else config_hash(config),
    }
    prog = _Program(init, update, (np.asarray(keys_for(opts.seed, seeds)),), trainer.num_chunks, paths,
                    (len(seeds),), ident, tracker_config)
    carry, metrics, n, log_dir = _execute(prog, opts, seeds, None)
    carry = _fetch(carry) if jax.process_count() > 1 else carry
    carry = jax.tree.map(lambda x: x[:n], carry)
    return RunResult(metrics, carry, seeds=seeds, log_dir=log_dir)


# ---------------------------------------------------------------------------------------------
# a list of configs


_NUMERIC = (bool, int, float, np.integer, np.floating, np.bool_)


def _describe(abstract) -> list:
    return [(jax.tree_util.keystr(p), tuple(x.shape), str(x.dtype))
            for p, x in jax.tree_util.tree_flatten_with_path(abstract)[0]]


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def run_many(
    make_train: Callable[[Any], Trainer],
    configs: Sequence[Any],
    opts: RunOptions = RunOptions(),
    seeds: Sequence[int] | None = None,
) -> RunResult:
    """Run every config of `configs` for every seed as ONE vmapped program over (config, seed).

    The configs must be instances of one dataclass that differ only in numeric fields which
    change neither the carry's shapes nor any loop length (learning rates, coefficients, env
    physics). Each config is validated concretely; the differing fields are then passed to
    `make_train` as traced scalars inside the vmapped function (the `check_*` helpers skip
    tracers). A field that changes shapes or must be concrete (a scan length, a Python `if`) is
    refused with a ValueError naming it. Config c with seed s uses the same key as
    `run(make_train(configs[c]), opts)`. Metrics are [chunks, configs, seeds]; the carry's
    leaves are [configs, seeds, ...] and its static parts (e.g. a TrainState's optimizer) are
    those of configs[0].
    """
    init_distributed(opts)
    configs = list(configs)
    if not configs:
        raise ValueError("run_many needs at least one config")
    cls = type(configs[0])
    if not dataclasses.is_dataclass(cls) or any(type(c) is not cls for c in configs):
        raise ValueError(f"configs must all be instances of one dataclass, got {[type(c).__name__ for c in configs]}")
    seeds = _seeds(opts, seeds)
    base = configs[0]
    names = [f.name for f in dataclasses.fields(cls)]
    varying = [n for n in names if any(getattr(c, n) != getattr(base, n) for c in configs[1:])]
    for n in varying:
        vals = [getattr(c, n) for c in configs]
        if not all(isinstance(v, _NUMERIC) for v in vals):
            raise ValueError(
                f"configs differ in {n!r} ({vals}), which is not numeric; only numeric fields that change "
                f"no shapes or loop lengths can differ within one run_many (run the others separately)"
            )

    def with_field(c, n):  # configs[0] with field n taken from c
        return dataclasses.replace(base, **{n: getattr(c, n)})

    # concrete checks: number of chunks, then carry shapes
    trainers = [make_train(c) for c in configs]
    key = keys_for(opts.seed, seeds[:1])[0]
    for i, t in enumerate(trainers):
        if t.num_chunks != trainers[0].num_chunks:
            culprits = [n for n in varying
                        if make_train(with_field(configs[i], n)).num_chunks != trainers[0].num_chunks]
            raise ValueError(
                f"configs differ in {culprits or varying}, which changes the number of chunks "
                f"({trainers[0].num_chunks} for config 0, {t.num_chunks} for config {i}); such fields cannot "
                f"vary within one run_many"
            )
    shapes = [_describe(jax.eval_shape(t.init, key)) for t in trainers]
    for i in range(1, len(configs)):
        if shapes[i] != shapes[0]:
            culprits = [n for n in varying
                        if _describe(jax.eval_shape(make_train(with_field(configs[i], n)).init, key)) != shapes[0]]
            diff = next(((a, b) for a, b in zip(shapes[0], shapes[i]) if a != b), None)
            detail = (f"; e.g. carry leaf {diff[0][0]} is {diff[0][1]} for config 0, {diff[1][1]} for config {i}"
                      if diff else "")
            raise ValueError(
                f"configs differ in {culprits or varying}, which changes the shapes of the training carry"
                f"{detail}; only fields that leave shapes and loop lengths unchanged can vary within one run_many"
            )
    treedef = jax.tree.structure(jax.eval_shape(trainers[0].init, key))
    paths = [p for p, _, _ in shapes[0]]
    num_chunks = trainers[0].num_chunks
    del trainers

    # the traced program: vals maps each varying field to a traced scalar
    def build(vals):
        return make_train(dataclasses.replace(base, **vals))

    def init_one(vals, key):
        return jax.tree.leaves(build(vals).init(key))

    def update_one(leaves, vals):
        t = build(vals)
        # the carry's static parts (e.g. TrainState.tx) must be this trace's, so rebuild its structure
        structure = jax.tree.structure(jax.eval_shape(t.init, key))
        carry, metrics = t.update(jax.tree.unflatten(structure, leaves))
        return jax.tree.leaves(carry), metrics

    def dtype_of(n):
        vals = [getattr(c, n) for c in configs]
        if all(isinstance(v, (bool, np.bool_)) for v in vals):
            return np.bool_
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            return np.int32
        return np.float32

    S, Cn = len(seeds), len(configs)
    values = {n: np.repeat(np.asarray([getattr(c, n) for c in configs], dtype=dtype_of(n)), S) for n in varying}
    keys = np.tile(np.asarray(keys_for(opts.seed, seeds)), (Cn, 1))

    def scalar(n):
        return jax.ShapeDtypeStruct((), dtype_of(n))

    try:  # trace once with every varying field traced; name the culprit if that fails
        jax.eval_shape(lambda v, k: update_one(init_one(v, k), v), {n: scalar(n) for n in varying}, key)
    except Exception as err:  # noqa: BLE001
        try:  # nothing traced: if this fails too, the error is not about the varying fields
            jax.eval_shape(lambda v, k: update_one(init_one(v, k), v), {}, key)
        except Exception:  # noqa: BLE001
            raise err from None
        for n in varying:
            try:
                jax.eval_shape(lambda v, k: update_one(init_one(v, k), v), {n: scalar(n)}, key)
            except Exception as e:  # noqa: BLE001
                raise ValueError(
                    f"configs differ in {n!r}, which cannot vary within one vmapped program: make_train "
                    f"needs its value concretely (a shape, a loop length or a Python branch); run configs "
                    f"that differ in {n!r} separately. ({_first_line(e)})"
                ) from e
        raise err

    mesh = seed_mesh(opts.num_devices)
    shard = NamedSharding(mesh, P("seeds"))
    init = jax.jit(lambda v, k: jax.vmap(init_one)(v, k), out_shardings=shard)
    update = jax.jit(lambda leaves, v: jax.vmap(update_one)(leaves, v), out_shardings=shard, donate_argnums=0)
    v_global = {n: _global(_pad_rows(x, math.ceil(len(x) / mesh.devices.size) * mesh.devices.size), shard)
                for n, x in values.items()}
    ident = _identity(configs, opts, seeds)
    cfg_dicts = [to_dict(c) for c in configs]
    tracker_config = {
        "algorithm": f"{cls.__module__}.{cls.__qualname__}",
        "configs": cfg_dicts,
        "config_hashes": [config_hash(c) for c in configs],
        "varying": varying,
    }
    prog = _Program(
        init=lambda k: init(v_global, k),
        update=lambda leaves: update(leaves, v_global),
        inputs=(keys,),
        num_chunks=num_chunks,
        carry_paths=paths,
        batch_shape=(Cn, S),
        identity=ident,
        tracker_config=tracker_config,
    )
    leaves, metrics, n, log_dir = _execute(prog, opts, seeds, Cn)
    leaves = _fetch(leaves) if jax.process_count() > 1 else leaves
    leaves = [x[:n].reshape((Cn, S) + x.shape[1:]) for x in leaves]
    return RunResult(metrics, jax.tree.unflatten(treedef, leaves), seeds=seeds, configs=configs, log_dir=log_dir)
