"""The command line every algorithm file shares: flat flags for its Config and the RunOptions,
parsed by tyro; prints the config, runs with progress, ends with a table of final returns.

    python -m jaxrl.algos.ppo --env CartPole-v1 --num-seeds 8 --log-dir runs/ppo --checkpoint-every 2
    python -m jaxrl.algos.ppo --resume runs/ppo          # config and seeds default to the checkpoint's
    python -m jaxrl.algos.ppo --num-seeds 8 --tensorboard --log-dir runs/ppo2

Config booleans take a value (`--anneal-lr False`), as does `--progress`; `--tensorboard` and
`--wandb` are plain switches. Multi-host: `--coordinator-address host:port --num-processes N
--process-id I` on every host (JAX's own runtime, started before anything else).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import textwrap
import typing
from typing import Annotated, Callable, Sequence

import numpy as np

from jaxrl.core.config import format_config
from jaxrl.core.run import RunOptions, RunResult, init_distributed, run

_SWITCHES = ("tensorboard", "wandb")  # bare flags; every other bool takes a value


def _field_docs(cls) -> dict[str, str]:
    """The docstring line under each field of a dataclass (what tyro shows as help)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out = {}
    for a, b in zip(body, body[1:]):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            out[a.target.id] = b.value.value.strip()
    return out


def _resume_arg(argv: Sequence[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--resume" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--resume="):
            return a.split("=", 1)[1]
    return None


def _checkpoint_defaults(path: str, config_cls) -> dict:
    """Config fields and run identity (seed, num_seeds) of the checkpoint `--resume` points at,
    used as flag defaults so that `--resume DIR` alone continues that run."""
    from jaxrl.core import checkpoint as ckpt

    meta = ckpt.verify(ckpt.find(path))
    cfgs = meta.get("configs")
    if cfgs is None:
        raise ValueError(f"--resume {path}: the checkpoint records no config (it was written by run() without config=)")
    if len(cfgs) != 1:
        raise ValueError(
            f"--resume {path}: the checkpoint holds {len(cfgs)} configs; the CLI resumes single-config runs "
            f"(resume a run_many run with run_many(..., RunOptions(resume=...)))"
        )
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(cfgs[0]) - set(fields))
    if unknown:
        raise ValueError(
            f"--resume {path}: the checkpoint's config has fields {unknown} that {config_cls.__name__} lacks "
            f"(a checkpoint of another algorithm?)"
        )
    out = {}
    for k, v in cfgs[0].items():
        out[k] = tuple(v) if isinstance(v, list) else v  # JSON has no tuples; frozen configs hold no lists
    run_meta = meta.get("run", {})
    seeds = run_meta.get("seeds")
    if seeds is not None and seeds != list(range(len(seeds))):
        raise ValueError(f"--resume {path}: the checkpoint ran seeds {seeds}; the CLI runs seeds 0..N-1")
    if seeds is not None:
        out["num_seeds"] = len(seeds)
    if "seed" in run_meta:
        out["seed"] = run_meta["seed"]
    opts = meta.get("run_options", {})
    for k in ("checkpoint_every", "keep_checkpoints"):
        if k in opts:
            out[k] = opts[k]
    return out


def parse(config_cls, argv: Sequence[str] | None = None, description: str | None = None):
    """Parse `argv` into (config, RunOptions) with tyro; flags are `--field-name`."""
    import sys

    import tyro

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg_fields = dataclasses.fields(config_cls)
    run_fields = dataclasses.fields(RunOptions)
    cfg_names = {f.name for f in cfg_fields}
    clash = cfg_names & {f.name for f in run_fields}
    if clash:
        raise ValueError(f"config fields clash with run options: {sorted(clash)}")
    cfg_hints = typing.get_type_hints(config_cls, include_extras=True)
    run_hints = typing.get_type_hints(RunOptions, include_extras=True)
    run_docs = _field_docs(RunOptions)

    def spec(f, hint, doc=None):
        markers = [tyro.conf.FlagCreatePairsOff] if f.name in _SWITCHES else [tyro.conf.FlagConversionOff]
        if doc:
            markers.append(tyro.conf.arg(help=doc))
        if f.default_factory is not dataclasses.MISSING:
            return (f.name, Annotated[(hint, *markers)], dataclasses.field(default_factory=f.default_factory))
        return (f.name, Annotated[(hint, *markers)], dataclasses.field(default=f.default))

    combined = dataclasses.make_dataclass(
        config_cls.__name__,
        [spec(f, cfg_hints[f.name]) for f in cfg_fields]
        + [spec(f, run_hints[f.name], run_docs.get(f.name)) for f in run_fields],
        frozen=True,
    )
    combined.__doc__ = description or config_cls.__doc__
    combined.__module__ = config_cls.__module__  # lets tyro find the config fields' docstrings
    default = None
    resume = _resume_arg(argv)
    if resume is not None:
        defaults = {}
        defaults.update(_checkpoint_defaults(resume, config_cls))
        default = combined(**{f.name: getattr(f, "default") for f in dataclasses.fields(combined)
                              if f.default is not dataclasses.MISSING} | defaults)
    args = tyro.cli(combined, args=argv, default=default, description=combined.__doc__)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(combined)}
    opts = RunOptions(**{k: v for k, v in values.items() if k not in cfg_names})
    init_distributed(opts)  # before the config touches JAX (envs.make)
    cfg = config_cls(**{k: v for k, v in values.items() if k in cfg_names})
    return cfg, opts


def final_table(result: RunResult, name: str = "return") -> str:
    from jaxrl.core.tracking import iqm

    final = result.final(name)
    seeds = result.seeds if result.seeds is not None else list(range(final.shape[-1]))
    if final.ndim == 1:
        final = final[None]
    lines = []
    for c, row in enumerate(final):
        head = f"config {c}: " if final.shape[0] > 1 else ""
        lines.append(f"{head}{'seed':>6}  final {name}")
        lines += [f"{s:>6}  {v:12.2f}" for s, v in zip(seeds, row)]
        lines.append(f"{'mean':>6}  {np.nanmean(row):12.2f}  (std {np.nanstd(row):.2f}, IQM {iqm(row):.2f})")
    return "\n".join(lines)


def main(config_cls, make_train: Callable, argv: Sequence[str] | None = None) -> RunResult:
    cfg, opts = parse(config_cls, argv)
    print(format_config(cfg))
    print(format_config(opts))
    result = run(make_train(cfg), opts, config=cfg)
    print(final_table(result))
    if result.log_dir:
        print(f"run directory: {os.path.abspath(result.log_dir)}")
    return result

