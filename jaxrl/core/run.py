"""Run a `Trainer` for many seeds as one compiled program per chunk: `run(trainer, RunOptions())`.

Seeds are vmapped in fixed-size blocks, one block per device, groups of blocks one after another
(see `jaxrl.core.devices`), so seed i's result is bitwise the same whatever the number of seeds
on the same machine and device count. A Python loop over chunks (`jaxrl.core.loop`) shows
progress, writes metrics, checks losses and saves checkpoints; nothing leaves the device inside a
chunk. Checkpoints: `jaxrl.core.checkpoint`; the run directory: `jaxrl.core.tracking`; lists of
configs as one program: `jaxrl.core.sweep.run_many`.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core import checkpoint as ckpt
from jaxrl.core import devices
from jaxrl.core.config import config_hash, to_dict
from jaxrl.core.devices import keys_for, seed_keys, seed_mesh  # noqa: F401  (public here)
from jaxrl.core.loop import Checkpointer, Program, Progress, RunInterrupted, StopSignal, run_chunks
from jaxrl.core.train import Trainer

DEFAULT_BLOCK = 4
RUN_FILES = ("config.json", "meta.json", "metrics.csv", "metrics.parquet", "final.json", "checkpoints",
             "tensorboard")


@dataclass(frozen=True)
class RunOptions:
    """Options of a run (not of the algorithm)."""

    num_seeds: int = 1
    """independent runs, vmapped in blocks (and sharded over devices)"""
    seed: int = 0
    """base seed; run i uses fold_in(PRNGKey(seed), i)"""
    block_size: int | None = DEFAULT_BLOCK
    """seeds vmapped together per device; seed i's result does not depend on num_seeds. 0: all seeds at once (fastest, without that promise)"""
    num_devices: int | None = None
    """devices to shard seeds over (None: all devices)"""
    log_dir: str | None = None
    """write config.json, meta.json, metrics.csv, final.json (and checkpoints/) here"""
    overwrite: bool = False
    """replace the run already in log_dir (its files are deleted first)"""
    progress: bool = True
    """show a progress bar over chunks"""
    checkpoint_every: int = 0
    """save a checkpoint of all seeds every this many chunks, at the end and on SIGINT/SIGTERM (0: never); needs log_dir"""
    keep_checkpoints: int = 2
    """keep the newest this many checkpoints (0: all)"""
    resume: str | None = None
    """continue the run in this directory (a run dir, its checkpoints/ or one checkpoint) from its latest checkpoint"""
    stop_after: int | None = None
    """stop after this chunk count, as if interrupted (for tests and time-limited jobs)"""
    fast_compile: bool = False
    """compile with XLA's cheap settings (no LLVM optimisation): about half the compile time, slower code; for short test and debug runs. On the CPU such code has turned QARL-SAC's updates NaN where the default settings stay finite (jaxlib 0.9.2 and 0.10.2); the NaN guard stops such a run and says so"""
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
        for name in ("num_seeds", "num_devices", "stop_after", "num_processes"):
            v = getattr(self, name)
            if (v is not None or name == "num_seeds") and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("checkpoint_every", "keep_checkpoints", "block_size"):
            v = getattr(self, name)
            if (v is not None or name != "block_size") and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        if self.process_id is not None and self.process_id < 0:
            raise ValueError(f"process_id must be >= 0, got {self.process_id!r}")
        if self.log_dir is None and self.resume is None:
            for name in ("checkpoint_every", "tensorboard", "wandb"):
                if getattr(self, name):
                    raise ValueError(f"{name} needs log_dir (or resume, which writes into the resumed run's dir)")
        if self.log_dir is not None and not self.process_id:
            # only process 0 writes the run dir: another process of a multi-host run finds process
            # 0's files there (a shared filesystem) as soon as process 0 has started, and must not refuse them
            check_log_dir(self.log_dir, resuming=self.resume is not None, overwrite=self.overwrite)

    @property
    def block(self) -> int | None:
        """Seeds per block, None for all at once."""
        return self.block_size or None


def check_log_dir(log_dir: str, resuming: bool, overwrite: bool) -> None:
    """Refuse a log_dir that is a file, or that already holds a run (unless resuming or overwriting)."""
    if os.path.exists(log_dir) and not os.path.isdir(log_dir):
        raise ValueError(f"log_dir {log_dir!r} is a file, not a directory; choose another --log-dir")
    if resuming or overwrite or not os.path.isdir(log_dir):
        return
    found = [f for f in RUN_FILES if os.path.exists(os.path.join(log_dir, f))]
    if found:
        raise ValueError(
            f"log_dir {log_dir!r} already holds a run ({', '.join(found)}); continue it with --resume {log_dir}, "
            f"replace it with --overwrite, or choose another --log-dir"
        )


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
    score: str = "return"
    """the trainer's headline metric"""

    def final(self, name: str | None = None) -> np.ndarray:
        """Per seed (and config), the last non-NaN value of metric `name` (default: the score)."""
        m = np.asarray(self.metrics[name or self.score], dtype=np.float64)
        out = np.full(m.shape[1:], np.nan)
        for idx in np.ndindex(*m.shape[1:]):
            col = m[(slice(None),) + idx]
            ok = ~np.isnan(col)
            if ok.any():
                out[idx] = col[ok][-1]
        return out


def init_distributed(opts: RunOptions) -> bool:
    """Start JAX's multi-process runtime if `opts` asks for it; before any JAX computation."""
    return devices.init_distributed(opts.coordinator_address, opts.num_processes, opts.process_id)


def seed_list(opts: RunOptions, seeds: Sequence[int] | None) -> list[int]:
    if seeds is None:
        return list(range(opts.num_seeds))
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative run indices, got {seeds!r}")
    return seeds


def algorithm_name(config) -> str | None:
    """The module that defines `config`'s class (`jaxrl.algos.ppo`), also under `python -m`."""
    if config is None:
        return None
    mod = type(config).__module__
    if mod == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        mod = spec.name if spec is not None else mod
    return mod


def describe(abstract) -> list:
    """(key path, shape, dtype) of every leaf of an abstract tree."""
    return [(jax.tree_util.keystr(p), tuple(x.shape), str(x.dtype))
            for p, x in jax.tree_util.tree_flatten_with_path(abstract)[0]]


# --------------------------------------------------------------------------------------- set-up


def _start(prog: Program, opts: RunOptions, layout, group_inputs, key_leaves, ident):
    """(carries, first chunk, metrics history, log_dir, session info) of a fresh or resumed run.
    Everything that can refuse the run happens here, before anything is written."""
    if opts.resume is None:
        if opts.overwrite and opts.log_dir and jax.process_index() == 0:
            for f in RUN_FILES:
                p = os.path.join(opts.log_dir, f)
                shutil.rmtree(p) if os.path.isdir(p) else (os.remove(p) if os.path.exists(p) else None)
        return [prog.init(*x) for x in group_inputs], 0, [], opts.log_dir, {}
    path, meta, leaves, hist = ckpt.load_for_resume(opts.resume, ident)
    n = layout.num_runs
    if any(x.shape[0] != n for x in leaves) or any(v.shape[1:] != (n,) for v in hist.values()):
        raise ckpt.CorruptCheckpoint(f"checkpoint {path!r} is corrupt: its arrays do not hold {n} runs")
    start = meta["chunk"]
    if any(v.shape[0] != start for v in hist.values()):
        raise ckpt.CorruptCheckpoint(f"checkpoint {path!r} is corrupt: metrics do not cover its {start} chunks")
    history = [{k: v[c].reshape(prog.batch_shape) for k, v in hist.items()} for c in range(start)]
    abstract = jax.eval_shape(prog.init, *group_inputs[0])
    treedef = jax.tree.structure(abstract)
    sharding = devices.shard(seed_mesh(opts.num_devices))
    carries = []
    for g in range(layout.num_groups):
        rows = layout.rows(g)
        dev = [ckpt.decode(devices.to_global(x[rows], sharding), key_leaves.get(str(i))) for i, x in enumerate(leaves)]
        carries.append(jax.tree.unflatten(treedef, dev))
    info = {"resumed_from": os.path.abspath(path), "resumed_at_chunk": start}
    return carries, start, history, opts.log_dir or ckpt.run_dir_of(path), info


def _tracker(prog: Program, opts: RunOptions, log_dir, history, info, run_options):
    if not log_dir or jax.process_index() != 0:
        return None
    from jaxrl.core.tracking import Tracker

    labels = prog.labels
    seeds = labels if prog.batch_shape == (len(labels),) else sorted({s for _, s in labels})
    return Tracker(log_dir, config={**prog.config_json, "run_options": run_options}, seeds=seeds,
                   num_configs=None if len(prog.batch_shape) == 1 else prog.batch_shape[0],
                   tensorboard=opts.tensorboard, wandb=opts.wandb, wandb_project=opts.wandb_project,
                   history=history, meta_extra=info, progress=prog.progress)


def execute(prog: Program, opts: RunOptions) -> tuple[list, dict, Any, str | None]:
    """Run `prog` as `opts` says: (final carries per group, metrics, layout, log_dir)."""
    mesh = seed_mesh(opts.num_devices)
    layout = devices.Layout(int(np.prod(prog.batch_shape)), opts.block, mesh.devices.size)
    if opts.progress:
        devices.note(layout.note())
    sharding = devices.shard(mesh)
    group_inputs = [tuple(devices.to_global(np.asarray(x)[layout.rows(g)], sharding) for x in prog.inputs)
                    for g in range(layout.num_groups)]
    abs_leaves = jax.tree.leaves(jax.eval_shape(prog.init, *group_inputs[0]))
    key_leaves = ckpt.key_leaves(abs_leaves)
    ident = {**prog.identity, "run": {**prog.identity["run"], "block_size": opts.block},
             "carry": {"paths": prog.identity["carry_paths"], "leaves": ckpt.leaf_specs(abs_leaves)}}
    ident.pop("carry_paths")
    carries, start, history, log_dir, info = _start(prog, opts, layout, group_inputs, key_leaves, ident)
    run_options = json_safe(to_dict(dataclasses.replace(opts, log_dir=log_dir)))
    tracker = _tracker(prog, opts, log_dir, history, info, run_options)
    bar = Progress(opts.progress, prog.num_chunks, start, prog.score, prog.progress)
    saver = Checkpointer(opts, log_dir, layout, json_safe(ident), key_leaves, run_options)
    end = prog.num_chunks if opts.stop_after is None else min(prog.num_chunks, max(opts.stop_after, start))
    status = "failed"
    try:
        with StopSignal() as stop:
            carries = run_chunks(prog, carries, start, end, layout, history, (tracker, bar, saver, stop))
        status = "finished" if end == prog.num_chunks else f"stopped after chunk {end}"
    except KeyboardInterrupt:  # RunInterrupted included
        status = "interrupted"
        raise
    except FloatingPointError as e:
        if opts.fast_compile:  # XLA's unoptimised CPU code has turned runs NaN that compile finite by default
            e = FloatingPointError(f"{e} (compiled with fast_compile: rerun without it before suspecting the algorithm)")
        status = f"failed: FloatingPointError: {e}"
        raise e from None
    except BaseException as e:
        status = f"failed: {type(e).__name__}: {e}"
        raise
    finally:
        bar.close()
        metrics = {k: np.stack([h[k] for h in history]) for k in history[0]} if history else {}
        if tracker is not None:
            final = prog.final_json(metrics) if status == "finished" and prog.final_json else None
            tracker.finish(final, status=status)
    return carries, metrics, layout, log_dir


def json_safe(d: dict) -> dict:
    import json

    return json.loads(json.dumps(d, default=str))


def gather(carries: list, layout) -> Any:
    """The carries of all groups as one tree with the runs on axis 0 (filler runs dropped)."""
    if jax.process_count() > 1:
        carries = [devices.fetch(c) for c in carries]
    if len(carries) == 1:
        return jax.tree.map(lambda x: x[: layout.num_runs], carries[0])
    return jax.tree.map(lambda *xs: jnp.concatenate(xs)[: layout.num_runs], *carries)


def final_summary(metrics: dict, labels, prog_score: str, progress: str, num_chunks: int, configs=None) -> dict:
    """final.json: the score's last non-NaN value per seed (and config) with mean, std and IQM."""
    from jaxrl.core.tracking import summary

    out: dict[str, Any] = {"metric": prog_score, "num_chunks": num_chunks}
    if progress in metrics:
        out[progress] = int(np.max(metrics[progress][-1]))
    if prog_score not in metrics:
        return out
    final = RunResult(metrics, None, score=prog_score).final()
    if configs is None:
        out["seeds"] = labels
        out.update(summary(final))
    else:
        out["seeds"] = sorted({s for _, s in labels})
        out["configs"] = [{"config": c, "changed": changed, **summary(final[c])} for c, changed in enumerate(configs)]
    return out


# --------------------------------------------------------------------------------------- one config


FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.lru_cache(maxsize=16)
def compile_trainer(init, update, mesh, fast: bool = False):
    """vmapped, sharded and jitted init/update (cached: repeated runs of one Trainer compile once);
    `fast` compiles with XLA's cheap settings (RunOptions.fast_compile)."""
    shard = devices.shard(mesh)
    opts = FAST_COMPILE if fast else None
    return (jax.jit(jax.vmap(init), out_shardings=shard, compiler_options=opts),
            jax.jit(jax.vmap(update), out_shardings=shard, donate_argnums=0, compiler_options=opts))


def run(trainer: Trainer, opts: RunOptions = RunOptions(), seeds: Sequence[int] | None = None, *,
        config=None, content_hashes: dict | None = None) -> RunResult:
    """Run `trainer` for `opts.num_seeds` seeds (or the run indices `seeds`) in blocks over devices.
    Pass the algorithm `config` so that config.json records it and checkpoints are matched to it on
    resume; `content_hashes` ({name: hash} of data the trainer closes over, e.g. a dataset) join the
    identity a checkpoint must match."""
    init_distributed(opts)
    seeds = seed_list(opts, seeds)
    init, update = compile_trainer(trainer.init, trainer.update, seed_mesh(opts.num_devices), opts.fast_compile)
    paths = [p for p, _, _ in describe(jax.eval_shape(trainer.init, keys_for(opts.seed, seeds[:1])[0]))]
    cfgs = None if config is None else [to_dict(config)]
    hashes = None if config is None else [config_hash(config)]
    ident = {"configs": cfgs, "config_hashes": hashes, "carry_paths": paths,
             "run": {"seed": opts.seed, "seeds": seeds, "num_configs": None}, "num_chunks": trainer.num_chunks}
    if content_hashes:
        ident["content_hashes"] = dict(content_hashes)
    config_json = {"algorithm": algorithm_name(config), "config": None if cfgs is None else cfgs[0],
                   "config_hash": None if hashes is None else hashes[0], "content_hashes": content_hashes}
    prog = Program(init, update, (np.asarray(keys_for(opts.seed, seeds)),), trainer.num_chunks, (len(seeds),),
                   seeds, ident, config_json, trainer.score, trainer.progress)
    prog.final_json = lambda m: final_summary(m, seeds, trainer.score, trainer.progress, trainer.num_chunks)
    carries, metrics, layout, log_dir = execute(prog, opts)
    return RunResult(metrics, gather(carries, layout), seeds=seeds, log_dir=log_dir, score=trainer.score)


__all__ = ["RunOptions", "RunResult", "RunInterrupted", "run", "seed_keys", "keys_for", "seed_mesh",
           "init_distributed", "check_log_dir"]
