"""What every benchmark shares: one way to time a jitted program, and a description of the machine.

Imports only the standard library and jax, so that peer workers running in venvs of their own
(another gymnax, no jaxrl) can import it too.
"""
from __future__ import annotations

import importlib.metadata as md
import math
import os
import platform
import re
import time
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def compile_program(fn, args):
    """(compile seconds, compiled program) of `jax.jit(fn)` for `args`; tracing is included."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t0, compiled


def timed_call(compiled, args):
    """(seconds, output) of one execution of a compiled program, ended by `block_until_ready`."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return time.perf_counter() - t0, out


def time_program(fn, args, repeats: int):
    """(compile seconds, best execution seconds over `repeats`, output) of `jax.jit(fn)(*args)`.

    Compile is `jit(fn).lower(*args).compile()`, tracing included; each execution is ended by
    `block_until_ready`."""
    if repeats <= 0:
        raise ValueError(f"repeats must be positive, got {repeats}")
    compile_s, compiled = compile_program(fn, args)
    best, out = math.inf, None
    for _ in range(repeats):
        seconds, out = timed_call(compiled, args)
        best = min(best, seconds)
    return compile_s, best, out


def batched(train, keys):
    """`(fn, args)` of one program over `keys`: unbatched for one seed, vmapped for several."""
    if keys.shape[0] == 1:
        return train, (keys[0],)
    return jax.vmap(train), (keys,)


def with_seed_axis(out, seeds: int):
    """The output of `batched`'s program with a leading seed axis, also for one seed."""
    return out if seeds > 1 else jax.tree.map(lambda x: x[None], out)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU model and cores, accelerator kind and count, jax/jaxlib/python versions."""
    dev = jax.devices()[0]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": dev.platform,
        "device_kind": dev.device_kind,
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": md.version("jaxlib"),
        "python": platform.python_version(),
    }


def device_slug() -> str:
    """Short file-name-safe name of the machine, e.g. `cpu-amd-epyc` or `gpu-nvidia-h100-80gb-hbm3`."""
    dev = jax.devices()[0]
    name = cpu_model() if dev.platform == "cpu" else dev.device_kind
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{dev.platform}-{slug}"[:48]


def dir_arg(value: str) -> Path:
    """argparse `type=` of --out-dir: the directory, made if missing, checked writable when the
    command line is read (not when the first hour-long program has finished and writes its rows)."""
    import argparse
    import tempfile

    path = Path(value)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is not a writable directory (it is a file)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{value!r} is not a writable directory ({e.strerror or e})") from None
    return path


def file_arg(value: str) -> Path:
    """argparse `type=` of --out (a file): its directory checked as `dir_arg` checks one."""
    path = Path(value)
    dir_arg(str(path.parent))
    return path


def result_stem(out_dir: Path, name: str) -> Path:
    """`out_dir/<name>-<date>-<device>` (no suffix), the directory made: where a benchmark's CSV,
    markdown and plot go."""
    import datetime

    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir / f"{name}-{datetime.date.today().isoformat()}-{device_slug()}"


def write_csv(rows: list[dict], path) -> None:
    """`rows` as CSV, columns in order of first appearance (a row without a column leaves it empty)."""
    import csv

    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)


def markdown_parts(rows: list[dict], title: str, parts) -> str:
    """A markdown page of one table per `part` (the rows whose "part" is it), each with only the
    columns its rows use; under the title, the machine and the jax version that measured them."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    m = machine()
    lines = [f"# {title}", "", f"machine: {m['cpu']} ({m['cores']} cores, {m['platform']}), jax {m['jax']}, "
             f"jaxlib {m['jaxlib']}", ""]
    for part in parts:
        rs = [r for r in rows if r["part"] == part]
        if not rs:  # a partial run (e.g. some methods only) leaves a part out
            continue
        keys = [k for k in cols if any(k in r for r in rs) and k not in ("benchmark", "part")]
        lines += [f"## {part}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rs] + [""]
    return "\n".join(lines)
