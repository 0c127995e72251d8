"""Sizes the gpu_* scales of `offline_robust` on whatever device jax sees: each program at a small
budget, compiled ahead and run twice (compile s, first and second run s), printed and appended to
--out as JSON lines as each finishes, so that a run stopped at its limit keeps what it measured.

    python -m benchmarks.gpu_probe --cache-dir .devdata/brax-cache --out $OUT/probe.jsonl

Rows: program, runs vmapped, updates + env steps, compile s, each run's s, and the second run's ms
per iteration.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

from benchmarks import offline_robust
from benchmarks.common import compile_program, file_arg, timed_call


def _timed_sweep(times: dict):
    """A stand-in for `offline.sweep` that compiles the program ahead and runs it twice, filling
    `times` with the compile s and each run's s (the first run also loads the program)."""
    from jaxrl.core import offline

    def sweep(learner, datas, num_chunks, num_seeds, seed=0):
        args = (offline.seed_keys(seed, num_seeds), offline.stack(datas))
        times["compile_s"], program = compile_program(offline.sweep_program(learner, num_chunks), args)
        for i in range(2):
            times[f"run{i + 1}_s"], out = timed_call(program, args)
        return out

    return sweep


def probes(data, updates: int, online: int):
    """(name, module, config, datasets, seeds, iterations) at the gpu scales' widths, small budgets:
    updates without evaluation, then one evaluation (10 hopper episodes) added, then RO2O's online
    steps added, so that each part's cost is a difference of two rows."""
    from jaxrl.algos import iql, riql, ro2o

    s = offline_robust.SCALES["gpu_hopper"]
    nine = [data] * (1 + len(s["fields"]) * len(s["modes"]))  # the clean set and its 8 corrupted versions
    small = dict(total_updates=updates, num_chunks=1, eval_episodes=0)
    yield "riql K5 256x256, no eval", riql, riql.Config(**small), nine, 5, updates
    yield "riql K5 256x256, one eval", riql, riql.Config(**small | dict(eval_episodes=10)), nine, 5, updates
    r = offline_robust.SCALES["gpu_ro2o_hopper"]["ro2o"] | dict(offline_updates=updates, eval_episodes=0)
    yield "ro2o N10 n20 256x3, offline, no eval", ro2o, ro2o.Config(**(r | dict(
        online_steps=0, learning_starts=0, buffer_size=1, num_chunks=1))), [data], 5, updates
    yield "ro2o, offline + online, no eval", ro2o, ro2o.Config(**(r | dict(
        online_steps=online, learning_starts=online // 2, buffer_size=online, num_chunks=1))), [data], 5, \
        updates + online
    yield "iql 256x256, no eval", iql, iql.Config(**small), nine, 5, updates


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache-dir", default="")
    p.add_argument("--updates", type=int, default=2_000)
    p.add_argument("--online", type=int, default=1_000)
    p.add_argument("--out", type=file_arg, default=Path("gpu_probe.jsonl"))
    args = p.parse_args(argv)
    if args.updates <= 0 or args.online <= 1:
        p.error(f"--updates must be positive and --online at least 2, got {args.updates} and {args.online}")
    data = offline_robust._datasets("brax/hopper", offline_robust.SCALES["gpu_hopper"], args.cache_dir)["medium"]
    print(f"device: {jax.devices()}", flush=True)
    from jaxrl.core import offline

    times = {}
    offline.sweep = _timed_sweep(times)  # the algorithms' train_sweep call it through the module
    for name, mod, cfg, datas, seeds, iters in probes(data, args.updates, args.online):
        mod.train_sweep(cfg, datas, seeds)
        row = {"program": name, "runs": len(datas) * seeds, "iterations": iters,
               **{k: round(v, 2) for k, v in times.items()},
               "ms_per_iteration": round(1000 * times["run2_s"] / iters, 3), "device": str(jax.devices()[0])}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
