"""PPO training speed: jaxrl's PPO against rejax's PPO (PyPI `rejax` 0.1.3) on CartPole-v1.

Both run the PureJaxRL CartPole config (4 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4,
tanh 64x64, 500k env steps) with the SAME learning-rate schedule, under each of `SCHEDULES`:
"constant" (rejax's own) and "linear" (annealed to 0 over the run's gradient steps, PureJaxRL's and
jaxrl's default; rejax gets it as an optax schedule in place of its learning rate), as ONE jitted
program per (library, schedule, seed count): `jax.jit(train)` for 1 seed,
`jax.jit(jax.vmap(train))` for N seeds. Each program is compiled once (`jit(f).lower(*args)
.compile()`, tracing included, timed apart), then executed `repeats` times, each execution ended by
`block_until_ready`. The two libraries take turns: every round runs each program once, jaxrl and
rejax alternating (and swapping who goes first each round), so that a machine whose speed drifts
(a shared host) slows both alike. Rows report the best and the median execution; `ratio` is
jaxrl's best env-steps/s over rejax's best under the same schedule, `ratio_median` the same for
medians. The final return
is, for both, the mean return of 32 episodes per seed of the final stochastic policy, run after the
clock stops.

rejax needs gymnax 0.0.9 (jaxrl needs 1.0), so it runs in a venv of its own at
`<repo>/.bench-venv-rejax` (gitignored), made on first use with the same jax/jaxlib/flax/optax/
chex/numpy versions as this interpreter, in a worker process (`benchmarks/ppo_speed_rejax.py`)
that compiles its programs and then runs one when asked, over a pipe. Ours run in this process.

Differences between the two that the timing includes: rejax keeps separate actor and critic
networks and optimisers, and clips gradients element-wise (ours clips the global norm); rejax's
in-training evaluation is switched off. (Measured here before the schedules were matched, at 200k
steps: equal speed, but a final return of 382 / 373 for jaxrl (annealed) against rejax's 492 / 430
(constant) at 1 / 16 seeds: the returns compared two schedules, not two implementations.)

Run: `python -m benchmarks.ppo_speed [--total-timesteps 500000] [--seeds 1 64] [--schedules constant linear]
[--skip-rejax]`
Writes `benchmarks/results/ppo_speed-<date>-<device>.json`.

This module imports only the standard library, numpy, jax and `benchmarks.common` at the top, so
that the rejax worker can import `Runner` and `serve` from it.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata as md
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from benchmarks.common import (REPO, RESULTS, batched, compile_program, device_slug, file_arg, machine,
                               timed_call, with_seed_axis)

REJAX_VENV = REPO / ".bench-venv-rejax"
REJAX_PINS = ["rejax==0.1.3", "gymnax==0.0.9"]
# shared with rejax: pinned to this interpreter's versions so that only the library differs
SHARED_DISTS = ["jax", "jaxlib", "flax", "optax", "chex", "numpy",
                "jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt", "libtpu"]

PUREJAXRL_CARTPOLE = dict(
    num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4, lr=2.5e-4,
    hidden=(64, 64), activation="tanh", gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
    ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
    # PureJaxRL and rejax treat a time limit as a terminal; ours bootstraps it by default, at the
    # cost of one more critic pass per rollout. Like for like here: the same arithmetic as rejax.
    bootstrap_truncation=False,
)
EVAL_EPISODES = 32
SCHEDULES = ("constant", "linear")
SCALES = {
    "ci": dict(total_timesteps=32_768, seeds=(1, 4), repeats=2, schedules=("constant",)),
    "full": dict(total_timesteps=500_000, seeds=(1, 64), repeats=3, schedules=SCHEDULES),
}


def jaxrl_program(total_timesteps: int, seeds: int, schedule: str = "constant"):
    """`(fn, args, finish)`: jaxrl's PPO training program for `seeds` seeds under learning-rate
    `schedule`, and `finish(out) -> (env steps per seed, final return per seed)` that evaluates the
    trained policies."""
    import envs
    from jaxrl.algos import ppo
    from jaxrl.core.evaluate import evaluate
    from jaxrl.core.run import seed_keys

    # one chunk: the same number of updates as rejax, ceil(total_timesteps / 512)
    cfg = ppo.Config(env="CartPole-v1", total_timesteps=total_timesteps, num_chunks=1,
                     anneal_lr=schedule == "linear", **PUREJAXRL_CARTPOLE)
    fn, args = batched(ppo.make_train(cfg).train, seed_keys(0, seeds))
    env, env_params = envs.make(cfg.env)

    def final_return(c, key):
        act = ppo.make_policy(cfg, c, deterministic=False)
        return evaluate(env, env_params, act, key, EVAL_EPISODES, env_params.max_steps_in_episode)[0]

    def finish(out):
        carry, metrics = with_seed_axis(out, seeds)
        returns = jax.jit(jax.vmap(final_return))(carry, seed_keys(1, seeds))
        return int(np.asarray(metrics["env_steps"])[0, -1]), np.asarray(returns).tolist()

    return fn, args, finish


class Runner:
    """One library's programs, one per seed count, compiled up front; `run(n)` times one execution
    of the `n`-seed program and `finish()` gives `{n: (env steps per seed, final returns)}` of the
    last execution of each."""

    def __init__(self, make_program, total_timesteps: int, seeds):
        self.compile_s, self._programs, self._last = {}, {}, {}
        for n in seeds:
            fn, args, finish = make_program(total_timesteps, n)
            self.compile_s[n], compiled = compile_program(fn, args)
            self._programs[n] = (compiled, args, finish)

    def run(self, n: int) -> float:
        compiled, args, _ = self._programs[n]
        seconds, self._last[n] = timed_call(compiled, args)
        return seconds

    def finish(self) -> dict:
        return {n: finish(self._last[n]) for n, (_, _, finish) in self._programs.items()}


def serve(runner: Runner, stdin=None, stdout=None) -> None:
    """The worker side of `WorkerRunner`: print the compile times as one JSON line, then answer
    `run N` with `{"seconds": s}` and `finish` with the finish() dict, one JSON line each."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    say = lambda obj: print(json.dumps(obj), file=stdout, flush=True)
    say({"compile_s": runner.compile_s})
    for line in stdin:
        cmd, *arg = line.split()
        if cmd == "run":
            say({"seconds": runner.run(int(arg[0]))})
        elif cmd == "finish":
            say(runner.finish())
            return
        else:
            raise ValueError(f"unknown command {line!r}; expected 'run N' or 'finish'")


class WorkerRunner:
    """A `Runner` in another interpreter (rejax's venv), driven over a pipe by `serve`: the worker
    is `python -m <module> --total-timesteps T --seeds N... <extra>`."""

    def __init__(self, python: Path, total_timesteps: int, seeds, module: str = "benchmarks.ppo_speed_rejax",
                 extra: list[str] = ()):
        self._err = tempfile.TemporaryFile(mode="w+")
        cmd = [str(python), "-m", module, "--total-timesteps", str(total_timesteps),
               "--seeds", *map(str, seeds), *extra]
        self._proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._err, text=True)
        self.compile_s = {int(k): v for k, v in self._ask(None)["compile_s"].items()}

    def _ask(self, command: str | None) -> dict:
        if command is not None:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            self._err.seek(0)
            raise RuntimeError(f"rejax worker failed ({self._proc.returncode}):\n{self._err.read()[-4000:]}")
        return json.loads(line)

    def run(self, n: int) -> float:
        return self._ask(f"run {n}")["seconds"]

    def finish(self) -> dict:
        done = {int(k): tuple(v) for k, v in self._ask("finish").items()}
        self._proc.wait()
        return done


def result_row(impl: str, seeds: int, steps_per_seed: int, compile_s: float, times: list[float],
               returns: np.ndarray) -> dict:
    best, median = min(times), statistics.median(times)
    return {
        "impl": impl,
        "seeds": seeds,
        "env_steps": steps_per_seed,
        "compile_s": round(compile_s, 3),
        "train_s": round(best, 3),
        "train_s_median": round(median, 3),
        "steps_per_s": round(steps_per_seed * seeds / best),
        "steps_per_s_median": round(steps_per_seed * seeds / median),
        "final_return": round(float(np.mean(returns)), 1),
        "returns": [round(float(r), 1) for r in returns],
    }


def rejax_requirements() -> list[str]:
    pins = list(REJAX_PINS)
    for dist in SHARED_DISTS:
        try:
            pins.append(f"{dist}=={md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    return pins


def ensure_rejax_venv(path: Path = REJAX_VENV) -> Path:
    """The python of a venv holding rejax 0.1.3 + gymnax 0.0.9; made or updated if its pins changed."""
    python = path / "bin" / "python"
    stamp = path / "jaxrl-requirements.txt"
    reqs = rejax_requirements()
    if python.exists() and stamp.exists() and stamp.read_text().split() == reqs:
        return python
    if not python.exists():
        print(f"[ppo_speed] creating {path}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    print(f"[ppo_speed] installing {' '.join(reqs)}", file=sys.stderr)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *reqs], check=True)
    stamp.write_text("\n".join(reqs) + "\n")
    return python


def measure(total_timesteps: int, seeds, repeats: int = 3, skip_rejax: bool = False,
            rejax_python: Path | None = None, schedules=SCHEDULES) -> list[dict]:
    """Rows for jaxrl (and rejax unless skipped) per schedule and seed count, timed in alternating
    rounds; the jaxrl rows get `ratio` (best env-steps/s over rejax's best under the same schedule)
    and `ratio_median`."""
    python = None if skip_rejax else (rejax_python or ensure_rejax_venv())
    runners = {}
    for sched in schedules:
        runners["jaxrl", sched] = Runner(functools.partial(jaxrl_program, schedule=sched), total_timesteps, seeds)
        if not skip_rejax:
            runners["rejax", sched] = WorkerRunner(python, total_timesteps, seeds, extra=["--schedule", sched])
    impls = ["jaxrl"] + ([] if skip_rejax else ["rejax"])
    times = {key + (n,): [] for key in runners for n in seeds}
    for round_ in range(repeats):
        order = impls if round_ % 2 == 0 else impls[::-1]
        for sched in schedules:
            for n in seeds:
                for impl in order:
                    times[impl, sched, n].append(runners[impl, sched].run(n))
                    print(f"[ppo_speed] round {round_ + 1}: {impl}, {sched} lr, {n} seeds: "
                          f"{times[impl, sched, n][-1]:.2f} s", file=sys.stderr, flush=True)
    rows = []
    for (impl, sched), runner in runners.items():
        done = runner.finish()
        rows += [{**result_row(impl, n, done[n][0], runner.compile_s[n], times[impl, sched, n],
                               np.asarray(done[n][1])), "schedule": sched} for n in seeds]
    if not skip_rejax:
        peer = {(r["schedule"], r["seeds"]): r for r in rows if r["impl"] == "rejax"}
        for r in rows:
            if r["impl"] == "jaxrl":
                p = peer[r["schedule"], r["seeds"]]
                r["ratio"] = round(r["steps_per_s"] / p["steps_per_s"], 3)
                r["ratio_median"] = round(r["steps_per_s_median"] / p["steps_per_s_median"], 3)
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'impl':>6} {'lr':>8} {'seeds':>5} {'steps':>8} {'compile s':>9} {'train s':>8} {'median s':>8} "
            f"{'steps/s':>10} {'median':>10} {'return':>7} {'ratio':>6} {'median':>6}")
    lines = [head]
    for r in rows:
        ratio = (f"{r['ratio']:6.2f} {r['ratio_median']:6.2f}" if "ratio" in r else f"{'':>6} {'':>6}")
        lines.append(f"{r['impl']:>6} {r.get('schedule', ''):>8} {r['seeds']:>5} {r['env_steps']:>8} {r['compile_s']:>9.2f} "
                     f"{r['train_s']:>8.2f} {r['train_s_median']:>8.2f} {r['steps_per_s']:>10,} "
                     f"{r['steps_per_s_median']:>10,} {r['final_return']:>7.1f} {ratio}")
    return "\n".join(lines)


def suite(scale: str, skip_peers: bool = False) -> list[dict]:
    """The "speed" suite's rows for `benchmarks.run` (ci: small steps and seeds; full: the spec)."""
    s = SCALES[scale]
    rows = measure(s["total_timesteps"], s["seeds"], s["repeats"], skip_rejax=skip_peers, schedules=s["schedules"])
    return [{"benchmark": "ppo_speed", **{k: v for k, v in r.items() if k != "returns"}} for r in rows]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 64])
    p.add_argument("--repeats", type=int, default=3, help="rounds: executions timed per program")
    p.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=SCHEDULES,
                   help="learning-rate schedules, each run by both libraries")
    p.add_argument("--skip-rejax", action="store_true", help="time jaxrl only")
    p.add_argument("--rejax-python", type=Path, default=None,
                   help="an interpreter with rejax 0.1.3 + gymnax 0.0.9 (default: make .bench-venv-rejax)")
    p.add_argument("--out", type=file_arg, default=None, help="JSON path (default: benchmarks/results/)")
    args = p.parse_args(argv)
    if any(n <= 0 for n in args.seeds) or args.total_timesteps <= 0 or args.repeats <= 0:
        p.error("--seeds, --total-timesteps and --repeats must be positive")
    rows = measure(args.total_timesteps, args.seeds, args.repeats, args.skip_rejax, args.rejax_python,
                   args.schedules)
    print(format_table(rows))
    result = {
        "benchmark": "ppo_speed",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {"env": "CartPole-v1", "total_timesteps": args.total_timesteps, **PUREJAXRL_CARTPOLE,
                   "schedules": args.schedules,
                   "num_chunks": 1, "repeats": args.repeats, "eval_episodes_per_seed": EVAL_EPISODES},
        "rejax_requirements": None if args.skip_rejax else rejax_requirements(),
        "rows": rows,
    }
    out = args.out or RESULTS / f"ppo_speed-{datetime.date.today()}-{device_slug()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
