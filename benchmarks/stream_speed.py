"""Stream AC(lambda) training speed: jaxrl's many vmapped seeds against the official PyTorch
implementation's single seed, on CartPole-v1.

jaxrl: `jaxrl.algos.stream_ac` with its defaults (the official hyperparameters) runs as ONE
jitted program per seed count, `jax.jit(train)` for 1 seed and `jax.jit(jax.vmap(train))` for N,
timed by `benchmarks.common.time_program`: compile (tracing included) apart from execution, best
of `repeats` executions. Every env step of every seed is a full streaming update (batch size 1
per learner), so N seeds = N independent learners, and env-steps/s is the aggregate over seeds.

Official: `benchmarks/stream_speed_official.py` runs the official `StreamAC` class
(mohmdelsayed/streaming-drl, `stream_ac_discrete.py`) for one seed in a venv with torch, and
prints steps/s over `official_steps` steps after a short untimed warm-up. Its code is NOT part of
this repo; get it with

    git clone https://github.com/mohmdelsayed/streaming-drl .stream-x-official    # or anywhere:
    #   --official-repo PATH, or STREAM_X_OFFICIAL=PATH
    python -m venv .bench-venv-torch
    .bench-venv-torch/bin/pip install torch==2.13.0 gymnasium                     # CPU wheel
    #   or --torch-python PATH / STREAM_X_TORCH_PYTHON=PATH: any interpreter with torch + gymnasium

(`python -m benchmarks.stream_speed --make-torch-venv` makes `.bench-venv-torch` itself.) Without
either, the official row says "unavailable" and why. Ratios are jaxrl's aggregate env-steps/s over
the official single-seed env-steps/s. Target: >= 100x at 256 seeds on CPU.

What differs between the two runs: the official script raises CartPole's time limit to 10,000
steps (gymnax keeps 500); the official env is gymnasium's CartPole in Python, ours gymnax's in
the same XLA program. Both train from scratch with the same hyperparameters and networks (2x32,
LayerNorm, sparse init, observation/reward normalisation, time feature).

Run: `python -m benchmarks.stream_speed [--total-timesteps 100000] [--seeds 1 64 256]
[--official-steps 20000] [--skip-official]`. Writes `benchmarks/results/stream_speed-<date>-<device>.json`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from benchmarks.common import REPO, RESULTS, batched, device_slug, file_arg, machine, time_program

ENV = "CartPole-v1"
OFFICIAL_REPO = REPO / ".stream-x-official"
TORCH_VENV = REPO / ".bench-venv-torch"
TORCH_PINS = ["torch==2.13.0", "gymnasium"]
TARGET_RATIO = 100.0
SCALES = {
    "ci": dict(total_timesteps=2_000, seeds=(1, 8), repeats=2, official_steps=2_000),
    "full": dict(total_timesteps=100_000, seeds=(1, 64, 256), repeats=3, official_steps=20_000),
}


def time_jaxrl(total_timesteps: int, seeds: int, repeats: int, num_chunks: int = 10) -> dict:
    from jaxrl.algos import stream_ac
    from jaxrl.core.run import seed_keys

    cfg = stream_ac.Config(env=ENV, total_timesteps=total_timesteps, num_chunks=num_chunks)
    trainer = stream_ac.make_train(cfg)
    compile_s, train_s, (_, metrics) = time_program(*batched(trainer.train, seed_keys(0, seeds)), repeats)
    if seeds == 1:
        metrics = jax.tree.map(lambda x: x[None], metrics)
    steps = int(np.asarray(metrics["env_steps"])[0, -1])
    last = np.asarray(metrics["return"])[:, -1]  # mean return of the episodes of the last chunk, per seed
    return {
        "impl": "jaxrl",
        "seeds": seeds,
        "env_steps": steps,
        "compile_s": round(compile_s, 3),
        "train_s": round(train_s, 3),
        "steps_per_s": round(steps * seeds / train_s),
        "final_return": round(float(np.nanmean(last)), 1) if np.isfinite(last).any() else None,
    }


def official_repo(path: str | os.PathLike | None = None) -> Path:
    """--official-repo, else $STREAM_X_OFFICIAL, else <repo>/.stream-x-official."""
    return Path(path or os.environ.get("STREAM_X_OFFICIAL") or OFFICIAL_REPO)


def torch_python(path: str | os.PathLike | None = None) -> Path:
    """--torch-python, else $STREAM_X_TORCH_PYTHON, else <repo>/.bench-venv-torch/bin/python, else
    this interpreter (which may have torch too)."""
    given = path or os.environ.get("STREAM_X_TORCH_PYTHON")
    if given:
        return Path(given)
    venv = TORCH_VENV / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


def make_torch_venv(path: Path = TORCH_VENV) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *TORCH_PINS], check=True)
    return python


def official_unavailable(repo: Path, python: Path) -> str | None:
    """Why the official worker cannot run, or None if it can."""
    if not (repo / "stream_ac_discrete.py").exists():
        return (f"no checkout of mohmdelsayed/streaming-drl at {repo} (git clone it there, or pass "
                f"--official-repo / set STREAM_X_OFFICIAL)")
    try:
        ok = subprocess.run([str(python), "-c", "import torch, gymnasium"], capture_output=True).returncode == 0
    except OSError:  # no such interpreter
        ok = False
    if not ok:
        return (f"{python} cannot import torch and gymnasium (make {TORCH_VENV.name} with "
                f"`pip install {' '.join(TORCH_PINS)}`, or pass --torch-python)")
    return None


def time_official(steps: int, repo: Path, python: Path, warmup: int = 500) -> dict:
    cmd = [str(python), str(REPO / "benchmarks" / "stream_speed_official.py"), "--repo", str(repo),
           "--env", ENV, "--steps", str(steps), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"official stream-x worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(total_timesteps: int, seeds, repeats: int = 3, official_steps: int = 20_000,
            skip_official: bool = False, repo=None, python=None) -> list[dict]:
    """jaxrl rows at each seed count, then the official row (or an "unavailable" row saying why);
    jaxrl rows get `ratio` = their env-steps/s over the official single-seed env-steps/s."""
    rows = []
    for n in seeds:  # a line per row as it is measured: a run stopped at a time limit shows how far it got
        rows.append(time_jaxrl(total_timesteps, n, repeats))
        print(f"[stream_speed] jaxrl, {n} seeds: {rows[-1]['steps_per_s']:,.0f} env-steps/s", file=sys.stderr,
              flush=True)
    if skip_official:
        return rows
    repo, python = official_repo(repo), torch_python(python)
    why = official_unavailable(repo, python)
    if why is not None:
        print(f"[stream_speed] official implementation skipped: {why}", file=sys.stderr)
        return rows + [{"impl": "official", "seeds": 1, "status": "unavailable", "reason": why}]
    peer = time_official(official_steps, repo, python, warmup=min(500, official_steps))
    for r in rows:
        r["ratio"] = round(r["steps_per_s"] / peer["steps_per_s"], 1)
    return rows + [{**peer, "ratio": 1.0}]


def format_table(rows: list[dict]) -> str:
    head = (f"{'impl':>8} {'seeds':>5} {'steps/seed':>10} {'compile s':>9} {'train s':>8} {'env-steps/s':>12} "
            f"{'x official':>10} {'return':>7}")
    lines = [head]
    for r in rows:
        if r.get("status") == "unavailable":
            lines.append(f"{r['impl']:>8} {r['seeds']:>5}  unavailable: {r['reason']}")
            continue
        comp = f"{r['compile_s']:9.2f}" if r.get("compile_s") is not None else f"{'-':>9}"
        ratio = f"{r['ratio']:10.1f}" if "ratio" in r else f"{'':>10}"
        ret = f"{r['final_return']:7.1f}" if r.get("final_return") is not None else f"{'-':>7}"
        lines.append(f"{r['impl']:>8} {r['seeds']:>5} {r['env_steps']:>10} {comp} {r['train_s']:>8.2f} "
                     f"{r['steps_per_s']:>12,} {ratio} {ret}")
    return "\n".join(lines)


def suite(scale: str, skip_peers: bool = False) -> list[dict]:
    """The stream-x suite's speed rows for `benchmarks.run`."""
    s = SCALES[scale]
    rows = measure(s["total_timesteps"], s["seeds"], s["repeats"], s["official_steps"], skip_official=skip_peers)
    return [{"benchmark": "stream_speed", **r} for r in rows]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default=None,
                   help="take steps/seeds/repeats from a scale (explicit flags still win)")
    p.add_argument("--total-timesteps", type=int, default=None, help="env steps per seed (jaxrl)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="vmapped seed counts (jaxrl)")
    p.add_argument("--repeats", type=int, default=None, help="executions timed; the best counts")
    p.add_argument("--official-steps", type=int, default=None, help="env steps timed for the official code")
    p.add_argument("--skip-official", action="store_true", help="time jaxrl only")
    p.add_argument("--official-repo", type=Path, default=None,
                   help="checkout of mohmdelsayed/streaming-drl (default: $STREAM_X_OFFICIAL or .stream-x-official/)")
    p.add_argument("--torch-python", type=Path, default=None,
                   help="interpreter with torch + gymnasium (default: $STREAM_X_TORCH_PYTHON, "
                        ".bench-venv-torch/bin/python, or this one)")
    p.add_argument("--make-torch-venv", action="store_true",
                   help=f"create/update {TORCH_VENV.name}/ with {' '.join(TORCH_PINS)} first")
    p.add_argument("--out", type=file_arg, default=None, help="JSON path (default: benchmarks/results/)")
    args = p.parse_args(argv)
    s = SCALES[args.scale or "full"]
    total = args.total_timesteps or s["total_timesteps"]
    seeds = args.seeds or list(s["seeds"])
    repeats = args.repeats or s["repeats"]
    official_steps = args.official_steps or s["official_steps"]
    if any(n <= 0 for n in seeds) or min(total, repeats, official_steps) <= 0:
        p.error("--seeds, --total-timesteps, --repeats and --official-steps must be positive")
    python = args.torch_python
    if args.make_torch_venv:
        python = make_torch_venv()
    rows = measure(total, seeds, repeats, official_steps, args.skip_official, args.official_repo, python)
    print(format_table(rows))
    big = [r for r in rows if r["impl"] == "jaxrl" and "ratio" in r]
    if big:
        top = max(big, key=lambda r: r["seeds"])
        verdict = "meets" if top["ratio"] >= TARGET_RATIO else "misses"
        print(f"{top['seeds']} vmapped seeds: {top['ratio']}x the official single seed "
              f"({verdict} the {TARGET_RATIO:.0f}x target)")
    result = {
        "benchmark": "stream_speed",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {"env": ENV, "algo": "stream_ac (defaults)", "total_timesteps": total, "repeats": repeats,
                   "official_steps": official_steps, "target_ratio": TARGET_RATIO},
        "rows": rows,
    }
    out = args.out or RESULTS / f"stream_speed-{datetime.date.today()}-{device_slug()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
