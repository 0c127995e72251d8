"""PPO training speed: jaxrl's PPO against rejax's PPO (PyPI `rejax` 0.1.3) on CartPole-v1.

Both run the PureJaxRL CartPole config (4 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4,
tanh 64x64, 500k env steps) as ONE jitted program per seed count: `jax.jit(train)` for 1 seed,
`jax.jit(jax.vmap(train))` for N seeds. Both are timed the same way (`time_program`): compile
(`jit(f).lower(*args).compile()`, tracing included) apart from execution, then the best of
`repeats` executions, each ended by `block_until_ready`. The final return is, for both, the mean
return of 32 episodes per seed of the final stochastic policy, run after the clock stops.

rejax needs gymnax 0.0.9 (jaxrl needs 1.0), so it runs in a venv of its own at
`<repo>/.bench-venv-rejax` (gitignored), made on first use with the same jax/jaxlib/flax/optax/
chex/numpy versions as this interpreter, and timed there by `benchmarks/ppo_speed_rejax.py`,
which prints one JSON line. Ours is timed in this process.

Differences between the two that the timing includes: rejax keeps separate actor and critic
networks and optimisers, a constant learning rate (ours anneals it) and element-wise gradient
clipping (ours clips the global norm); rejax's in-training evaluation is switched off.

Run: `python -m benchmarks.ppo_speed [--total-timesteps 500000] [--seeds 1 64] [--skip-rejax]`
Writes `benchmarks/results/ppo_speed-<date>-<device>.json`.

This module imports only the standard library, numpy, jax and `benchmarks.common` at the top, so
that the rejax worker can import `result_row` from it.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from benchmarks.common import REPO, RESULTS, batched, device_slug, machine, time_program

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
SCALES = {
    "ci": dict(total_timesteps=32_768, seeds=(1, 4), repeats=2),
    "full": dict(total_timesteps=500_000, seeds=(1, 64), repeats=3),
}


def time_jaxrl(total_timesteps: int, seeds: int, repeats: int) -> dict:
    import envs
    from jaxrl.algos import ppo
    from jaxrl.core.evaluate import evaluate
    from jaxrl.core.run import seed_keys

    # one chunk: the same number of updates as rejax, ceil(total_timesteps / 512)
    cfg = ppo.Config(env="CartPole-v1", total_timesteps=total_timesteps, num_chunks=1, **PUREJAXRL_CARTPOLE)
    trainer = ppo.make_train(cfg)
    keys = seed_keys(0, seeds)
    compile_s, train_s, (carry, metrics) = time_program(*batched(trainer.train, keys), repeats)
    if seeds == 1:
        carry, metrics = jax.tree.map(lambda x: x[None], (carry, metrics))
    env, env_params = envs.make(cfg.env)

    def final_return(c, key):
        act = ppo.make_policy(cfg, c, deterministic=False)
        return evaluate(env, env_params, act, key, EVAL_EPISODES, env_params.max_steps_in_episode)[0]

    returns = jax.jit(jax.vmap(final_return))(carry, seed_keys(1, seeds))
    steps = int(np.asarray(metrics["env_steps"])[0, -1])
    return result_row("jaxrl", seeds, steps, compile_s, train_s, np.asarray(returns))


def result_row(impl: str, seeds: int, steps_per_seed: int, compile_s: float, train_s: float,
               returns: np.ndarray) -> dict:
    return {
        "impl": impl,
        "seeds": seeds,
        "env_steps": steps_per_seed,
        "compile_s": round(compile_s, 3),
        "train_s": round(train_s, 3),
        "steps_per_s": round(steps_per_seed * seeds / train_s),
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


def time_rejax(total_timesteps: int, seeds: list[int], repeats: int, python: Path) -> list[dict]:
    cmd = [str(python), "-m", "benchmarks.ppo_speed_rejax", "--total-timesteps", str(total_timesteps),
           "--repeats", str(repeats), "--seeds", *map(str, seeds)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"rejax worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(total_timesteps: int, seeds, repeats: int = 3, skip_rejax: bool = False,
            rejax_python: Path | None = None) -> list[dict]:
    """Rows for jaxrl (and rejax unless skipped) at each seed count, with `ratio` = jaxrl/rejax
    env-steps/s on the jaxrl rows."""
    rows = [time_jaxrl(total_timesteps, n, repeats) for n in seeds]
    if not skip_rejax:
        peer = time_rejax(total_timesteps, list(seeds), repeats, rejax_python or ensure_rejax_venv())
        speed = {r["seeds"]: r["steps_per_s"] for r in peer}
        for r in rows:
            r["ratio"] = round(r["steps_per_s"] / speed[r["seeds"]], 3)
        rows += peer
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'impl':>6} {'seeds':>5} {'steps':>8} {'compile s':>9} {'train s':>8} {'steps/s':>10} {'return':>7} {'ratio':>6}"
    lines = [head]
    for r in rows:
        ratio = f"{r['ratio']:6.2f}" if "ratio" in r else f"{'':>6}"
        lines.append(f"{r['impl']:>6} {r['seeds']:>5} {r['env_steps']:>8} {r['compile_s']:>9.2f} "
                     f"{r['train_s']:>8.2f} {r['steps_per_s']:>10,} {r['final_return']:>7.1f} {ratio}")
    return "\n".join(lines)


def suite(scale: str, skip_peers: bool = False) -> list[dict]:
    """The "speed" suite's rows for `benchmarks.run` (ci: small steps and seeds; full: the spec)."""
    s = SCALES[scale]
    rows = measure(s["total_timesteps"], s["seeds"], s["repeats"], skip_rejax=skip_peers)
    return [{"benchmark": "ppo_speed", **{k: v for k, v in r.items() if k != "returns"}} for r in rows]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 64])
    p.add_argument("--repeats", type=int, default=3, help="executions timed; the best counts")
    p.add_argument("--skip-rejax", action="store_true", help="time jaxrl only")
    p.add_argument("--rejax-python", type=Path, default=None,
                   help="an interpreter with rejax 0.1.3 + gymnax 0.0.9 (default: make .bench-venv-rejax)")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/)")
    args = p.parse_args(argv)
    if any(n <= 0 for n in args.seeds) or args.total_timesteps <= 0 or args.repeats <= 0:
        p.error("--seeds, --total-timesteps and --repeats must be positive")
    rows = measure(args.total_timesteps, args.seeds, args.repeats, args.skip_rejax, args.rejax_python)
    print(format_table(rows))
    result = {
        "benchmark": "ppo_speed",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {"env": "CartPole-v1", "total_timesteps": args.total_timesteps, **PUREJAXRL_CARTPOLE,
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
