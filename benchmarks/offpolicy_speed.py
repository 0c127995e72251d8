"""Off-policy training speed: jaxrl's SAC and TD3 against rejax 0.1.3's SAC and TD3 on Pendulum-v1.

Both libraries run the same settings (`COMMON`): one env per seed, one gradient update per env step
(rejax: num_envs 1, num_epochs 1), batch 256, two hidden layers of 64 with relu for actor and
critics, twin critics, Adam at 1e-3, gamma 0.99, Polyak rate 0.005 (rejax's polyak 0.995), a
100k-transition buffer, 1000 env steps before the first update; SAC tunes alpha toward -|A| with
log-std clipped to [-10, 2]; TD3 delays the actor by 2 critic updates and uses exploration noise
0.2, target noise 0.4 clipped at 1.0 in action units (Pendulum's range is [-2, 2]). Every
(library, algorithm, seed count) is one jitted program, `jax.jit(train)` for 1 seed and
`jax.jit(jax.vmap(train))` for N seeds, compiled once (timed apart) and executed `repeats` times
in rounds that alternate the libraries (and swap who goes first), as `ppo_speed` does. Rows give
the best and median execution, updates/s and env-steps/s (summed over seeds), compile seconds, and
the final return: the mean over 32 episodes per seed of each library's deterministic policy, run
after the clock stops. `ratio` is jaxrl's best updates/s over rejax's best, `ratio_median` the same
for medians.

Differences the timing includes: jaxrl warms up with uniform random actions (rejax acts with its
initial policy and skips updates until its buffer holds 1000 steps), bootstraps time limits from
the final observation (rejax treats them as terminals), keeps the buffer as one float32 row per
transition, and runs Adam on flat vectors; rejax clips gradients element-wise (at infinity here)
and updates the actor before the critic. Evaluation inside training is off in both.

Run: `python -m benchmarks.offpolicy_speed [--total-timesteps 5000] [--seeds 1 16] [--skip-rejax]`
Writes `benchmarks/results/offpolicy_speed-<date>-<device>.json`. The rejax worker is
`benchmarks/offpolicy_speed_rejax.py`, run in `.bench-venv-rejax` (see `ppo_speed`).
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

import jax
import numpy as np

from benchmarks.common import (RESULTS, batched, compile_program, device_slug, file_arg, machine, timed_call,
                               with_seed_axis)
from benchmarks.ppo_speed import WorkerRunner, ensure_rejax_venv, rejax_requirements

ALGOS = ("sac", "td3")
EVAL_EPISODES = 32
COMMON = dict(env="Pendulum-v1", num_envs=1, updates_per_step=1.0, batch_size=256, hidden=(64, 64),
              activation="relu", gamma=0.99, tau=0.005, buffer_size=100_000, learning_starts=1_000)
JAXRL = {
    "sac": dict(actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, log_std_min=-10.0, log_std_max=2.0),
    "td3": dict(actor_lr=1e-3, critic_lr=1e-3, policy_delay=2, exploration_noise=0.1, policy_noise=0.2,
                noise_clip=0.5),  # fractions of the half-range 2: 0.2, 0.4, 1.0 in action units
}
SCALES = {
    "ci": dict(total_timesteps=1_200, seeds=(1,), repeats=1),
    "full": dict(total_timesteps=5_000, seeds=(1, 16), repeats=2),
}


def jaxrl_program(algo: str, total_timesteps: int, seeds: int):
    """`(fn, args, finish)`: jaxrl's `algo` training program for `seeds` seeds, and `finish(out)
    -> (env steps per seed, final returns per seed, updates per seed)`."""
    import envs
    from jaxrl.algos import sac, td3
    from jaxrl.core.evaluate import evaluate
    from jaxrl.core.run import seed_keys

    module = {"sac": sac, "td3": td3}[algo]
    cfg = module.Config(total_timesteps=total_timesteps, num_chunks=1, eval_episodes=0, **COMMON, **JAXRL[algo])
    fn, args = batched(module.make_train(cfg).train, seed_keys(0, seeds))
    env, env_params = envs.make(cfg.env)

    def final_return(c, key):
        act = module.make_policy(cfg, c, deterministic=True)
        return evaluate(env, env_params, act, key, EVAL_EPISODES, env_params.max_steps_in_episode)[0]

    def finish(out):
        carry, metrics = with_seed_axis(out, seeds)
        returns = jax.jit(jax.vmap(final_return))(carry, seed_keys(1, seeds))
        m = jax.device_get(metrics)
        return int(m["env_steps"][0, -1]), np.asarray(returns).tolist(), int(m["updates"][0, -1])

    return fn, args, finish


class Runner:
    """One library's programs for one algorithm, one per seed count, compiled up front (the same
    protocol as `ppo_speed.Runner`, so `ppo_speed.serve` and `WorkerRunner` drive it)."""

    def __init__(self, make_program, algo: str, total_timesteps: int, seeds):
        self.compile_s, self._programs, self._last = {}, {}, {}
        for n in seeds:
            fn, args, finish = make_program(algo, total_timesteps, n)
            self.compile_s[n], compiled = compile_program(fn, args)
            self._programs[n] = (compiled, args, finish)

    def run(self, n: int) -> float:
        compiled, args, _ = self._programs[n]
        seconds, self._last[n] = timed_call(compiled, args)
        return seconds

    def finish(self) -> dict:
        return {n: finish(self._last[n]) for n, (_, _, finish) in self._programs.items()}


def result_row(impl: str, algo: str, seeds: int, done: tuple, compile_s: float, times: list[float]) -> dict:
    steps, returns, updates = done
    best, median = min(times), statistics.median(times)
    return {
        "impl": impl, "algo": algo, "seeds": seeds, "env_steps": steps, "updates": updates,
        "compile_s": round(compile_s, 2), "train_s": round(best, 3), "train_s_median": round(median, 3),
        "updates_per_s": round(updates * seeds / best), "updates_per_s_median": round(updates * seeds / median),
        "steps_per_s": round(steps * seeds / best), "steps_per_s_median": round(steps * seeds / median),
        "final_return": round(float(np.mean(returns)), 1), "returns": [round(float(r), 1) for r in returns],
    }


def measure(total_timesteps: int, seeds, repeats: int = 3, skip_rejax: bool = False, rejax_python=None,
            algos=ALGOS) -> list[dict]:
    """Rows for jaxrl (and rejax unless skipped), per algorithm and seed count, timed in
    alternating rounds; jaxrl's rows get `ratio` and `ratio_median` (updates/s over rejax's)."""
    python = None if skip_rejax else (rejax_python or ensure_rejax_venv())
    runners = {}
    for algo in algos:
        runners["jaxrl", algo] = Runner(jaxrl_program, algo, total_timesteps, seeds)
        if not skip_rejax:
            runners["rejax", algo] = WorkerRunner(
                python, total_timesteps, seeds, module="benchmarks.offpolicy_speed_rejax", extra=["--algo", algo])
    impls = ["jaxrl"] + ([] if skip_rejax else ["rejax"])
    times = {(impl, algo, n): [] for impl in impls for algo in algos for n in seeds}
    for round_ in range(repeats):
        order = impls if round_ % 2 == 0 else impls[::-1]
        for algo in algos:
            for n in seeds:
                for impl in order:
                    times[impl, algo, n].append(runners[impl, algo].run(n))
                    print(f"[offpolicy_speed] round {round_} {impl} {algo} {n} seeds: "
                          f"{times[impl, algo, n][-1]:.2f} s", file=sys.stderr, flush=True)
    rows = []
    for (impl, algo), runner in runners.items():
        done = runner.finish()
        rows += [result_row(impl, algo, n, tuple(done[n]), runner.compile_s[n], times[impl, algo, n]) for n in seeds]
    if not skip_rejax:
        peer = {(r["algo"], r["seeds"]): r for r in rows if r["impl"] == "rejax"}
        for r in rows:
            if r["impl"] == "jaxrl":
                p = peer[r["algo"], r["seeds"]]
                r["ratio"] = round(r["updates_per_s"] / p["updates_per_s"], 3)
                r["ratio_median"] = round(r["updates_per_s_median"] / p["updates_per_s_median"], 3)
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'impl':>6} {'algo':>4} {'seeds':>5} {'steps':>6} {'updates':>7} {'compile s':>9} {'train s':>8} "
            f"{'upd/s':>8} {'median':>8} {'steps/s':>8} {'return':>7} {'ratio':>6} {'median':>6}")
    lines = [head]
    for r in rows:
        ratio = f"{r['ratio']:6.2f} {r['ratio_median']:6.2f}" if "ratio" in r else f"{'':>6} {'':>6}"
        lines.append(f"{r['impl']:>6} {r['algo']:>4} {r['seeds']:>5} {r['env_steps']:>6} {r['updates']:>7} "
                     f"{r['compile_s']:>9.2f} {r['train_s']:>8.2f} {r['updates_per_s']:>8,} "
                     f"{r['updates_per_s_median']:>8,} {r['steps_per_s']:>8,} {r['final_return']:>7.1f} {ratio}")
    return "\n".join(lines)


def suite(scale: str, skip_peers: bool = False) -> list[dict]:
    """The "offpolicy" suite's rows for `benchmarks.run` (ci: a few seconds of training; full: the spec)."""
    s = SCALES[scale]
    rows = measure(s["total_timesteps"], s["seeds"], s["repeats"], skip_rejax=skip_peers)
    return [{"benchmark": "offpolicy_speed", **{k: v for k, v in r.items() if k != "returns"}} for r in rows]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--total-timesteps", type=int, default=SCALES["full"]["total_timesteps"])
    p.add_argument("--seeds", type=int, nargs="+", default=list(SCALES["full"]["seeds"]))
    p.add_argument("--repeats", type=int, default=SCALES["full"]["repeats"], help="rounds: executions timed per program")
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--skip-rejax", action="store_true", help="time jaxrl only")
    p.add_argument("--rejax-python", type=Path, default=None,
                   help="an interpreter with rejax 0.1.3 + gymnax 0.0.9 (default: make .bench-venv-rejax)")
    p.add_argument("--out", type=file_arg, default=None, help="JSON path (default: benchmarks/results/)")
    args = p.parse_args(argv)
    if any(n <= 0 for n in args.seeds) or args.total_timesteps <= COMMON["learning_starts"] or args.repeats <= 0:
        p.error(f"--seeds and --repeats must be positive, --total-timesteps > {COMMON['learning_starts']}")
    rows = measure(args.total_timesteps, args.seeds, args.repeats, args.skip_rejax, args.rejax_python, args.algos)
    print(format_table(rows))
    result = {
        "benchmark": "offpolicy_speed",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {"total_timesteps": args.total_timesteps, **COMMON, "jaxrl": JAXRL, "num_chunks": 1,
                   "repeats": args.repeats, "eval_episodes_per_seed": EVAL_EPISODES},
        "rejax_requirements": None if args.skip_rejax else rejax_requirements(),
        "rows": rows,
    }
    out = args.out or RESULTS / f"offpolicy_speed-{datetime.date.today()}-{device_slug()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
