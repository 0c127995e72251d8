"""The command line every algorithm file shares: flat flags for its Config and the RunOptions,
parsed by tyro; prints the config, runs with progress, ends with a table of final scores.

    python -m jaxrl.algos.ppo --env CartPole-v1 --num-seeds 8 --log-dir runs/ppo --checkpoint-every 2
    python -m jaxrl.algos.ppo --resume runs/ppo          # config and seeds default to the checkpoint's
    python -m jaxrl.algos.ppo --num-seeds 8 --tensorboard --log-dir runs/ppo2

Config booleans take a value (`--anneal-lr False`), as does `--progress`; `--tensorboard`,
`--wandb`, `--overwrite` and `--debug` are plain switches. Multi-host: `--coordinator-address
host:port --num-processes N --process-id I` on every host (JAX's own runtime, started first).

Errors of the user's making (a bad flag value, an unknown env, a run directory that is taken, a
checkpoint that does not fit, a NaN loss) print one line, `error: ...`, and exit with code 2;
`--debug` (or JAXRL_DEBUG=1) shows the traceback instead. SIGINT/SIGTERM stop a run after its
current chunk, save a checkpoint when checkpointing is on, print the command that resumes it and
exit with 130/143. On a machine without accelerators the host is split into one XLA device per
core (`--host-devices N` to choose, 1 to turn it off), so seed blocks run on every core.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import os
import sys
import textwrap
import typing
import warnings
from typing import Annotated, Callable, Sequence

import numpy as np

from jaxrl.core import devices
from jaxrl.core.checkpoint import CheckpointError
from jaxrl.core.config import format_config
from jaxrl.core.run import RunInterrupted, RunOptions, RunResult, algorithm_name, init_distributed, run

_SWITCHES = ("tensorboard", "wandb", "overwrite", "debug", "fast_compile")  # bare flags; every other bool takes a value
EXIT_USAGE = 2
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


@dataclasses.dataclass(frozen=True)
class CliOptions:
    """Flags of the command line only (they act before JAX starts, or on how errors print)."""

    host_devices: int | None = None
    """CPU-only machines: split the host into this many XLA devices (default: one per core; 1: off)"""
    debug: bool = False
    """show the Python traceback of an error instead of one line"""
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


def parse_all(config_cls, argv: Sequence[str] | None = None, description: str | None = None):
    """Parse `argv` into (config, RunOptions, CliOptions) with tyro; flags are `--field-name`."""
    import tyro

    argv = list(sys.argv[1:] if argv is None else argv)
    cfg_names = {f.name for f in dataclasses.fields(config_cls)}
    groups = [(config_cls, {}), (RunOptions, _field_docs(RunOptions)), (CliOptions, _field_docs(CliOptions))]
    names = [f.name for cls, _ in groups for f in dataclasses.fields(cls)]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"config fields clash with run options: {clash}")

    def spec(f, hint, doc=None):
        markers = [tyro.conf.FlagCreatePairsOff] if f.name in _SWITCHES else [tyro.conf.FlagConversionOff]
        if doc:
            markers.append(tyro.conf.arg(help=doc))
        if f.default_factory is not dataclasses.MISSING:
            return (f.name, Annotated[(hint, *markers)], dataclasses.field(default_factory=f.default_factory))
        return (f.name, Annotated[(hint, *markers)], dataclasses.field(default=f.default))

    fields = []
    for cls, docs in groups:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields += [spec(f, hints[f.name], docs.get(f.name)) for f in dataclasses.fields(cls)]
    combined = dataclasses.make_dataclass(config_cls.__name__, fields, frozen=True)
    combined.__doc__ = description or config_cls.__doc__
    combined.__module__ = config_cls.__module__  # lets tyro find the config fields' docstrings
    default = None
    resume = _resume_arg(argv)
    if resume is not None:
        defaults = _checkpoint_defaults(resume, config_cls)
        default = combined(**{f.name: getattr(f, "default") for f in dataclasses.fields(combined)
                              if f.default is not dataclasses.MISSING} | defaults)
    prog = f"python -m {algorithm_name(config_cls())}" if _constructible(config_cls) else None
    args = tyro.cli(combined, args=argv, default=default, description=combined.__doc__, prog=prog)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(combined)}
    cli = CliOptions(**{f.name: values.pop(f.name) for f in dataclasses.fields(CliOptions)})
    if cli.host_devices is not None and cli.host_devices < 1:
        raise ValueError(f"host_devices must be >= 1, got {cli.host_devices}")
    opts = RunOptions(**{k: v for k, v in values.items() if k not in cfg_names})
    init_distributed(opts)  # before the config touches JAX (envs.make)
    cfg = config_cls(**{k: v for k, v in values.items() if k in cfg_names})
    return cfg, opts, cli


def _constructible(cls) -> bool:
    try:
        cls()
    except Exception:  # noqa: BLE001 - a config without defaults: tyro's own usage line
        return False
    return True


def parse(config_cls, argv: Sequence[str] | None = None, description: str | None = None):
    """Parse `argv` into (config, RunOptions)."""
    cfg, opts, _ = parse_all(config_cls, argv, description)
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


@contextlib.contextmanager
def quiet_third_party(argv: Sequence[str]):
    """Keep brax's maintenance warning and MuJoCo's "Failed to import warp" off the user's terminal
    (in the CLI only; library use sees them as usual)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Brax System", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        if any("brax" in a for a in argv) and "brax.envs" not in sys.modules:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    import brax.envs  # noqa: F401
                except ImportError:
                    pass
        yield


def _one_line(e: BaseException) -> str:
    return " ".join(line.strip() for line in str(e).strip().splitlines() if line.strip())


def main(config_cls, make_train: Callable, argv: Sequence[str] | None = None, *,
         prepare: Callable | None = None, footer: Callable | None = None) -> RunResult:
    """Parse, print the config, run, print the final table. Bad input: one line and exit 2.
    `prepare(cfg) -> (cfg, trainer)` replaces `make_train(cfg)` (e.g. to fill in a dataset's hash);
    `footer(cfg, result) -> str | None` adds a line after the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("JAXRL_DEBUG", "") not in ("", "0")
    try:
        with quiet_third_party(argv):
            cfg, opts, cli = parse_all(config_cls, argv)
            devices.note(devices.host_devices_note(cli.host_devices))
            cfg, trainer = prepare(cfg) if prepare is not None else (cfg, make_train(cfg))
            print(format_config(cfg))
            print(format_config(opts))
            result = run(trainer, opts, config=cfg)
    except RunInterrupted as e:
        print(f"[jaxrl] {e}", file=sys.stderr)
        if e.resume:
            print(f"resume with: python -m {algorithm_name(cfg)} {e.resume}", file=sys.stderr)
        raise SystemExit(EXIT_SIGNAL.get(e.signame, 130)) from None
    except (ValueError, FloatingPointError, CheckpointError, ImportError) as e:
        if debug or not _users_error(e):
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        print("[jaxrl] interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    print(final_table(result, result.score))
    extra = footer(cfg, result) if footer is not None else None
    if extra:
        print(extra)
    if result.log_dir:
        print(f"run directory: {os.path.abspath(result.log_dir)}")
    return result


def _users_error(e: BaseException) -> bool:
    """jaxrl's own validation errors (raised in Python before or between chunks), not errors from
    inside JAX tracing, which point at a bug and keep their traceback."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(("jax._src", "jax.interpreters")):
            return False
        tb = tb.tb_next
    return True
