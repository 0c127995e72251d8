"""The "stream barrier" (Elsayed, Vasan, Mahmood 2024, arXiv:2410.14606, Sec. 1 and the README's
stream-barrier figure): deep RL learners that update from each transition once, with batch size 1
and no replay, learn poorly or diverge -- unless they use the stream-x pieces.

The same learners, `jaxrl.algos.stream_ac` and `jaxrl.algos.stream_q`, run in three variants,
each over several vmapped seeds (one jitted program per variant):

- `stream-x`: the defaults, i.e. ObGD (lr 1.0, kappa 2 / 3) with sparse init, parameter-free
  LayerNorm, observation normalisation, reward scaling and the time feature;
- `classic SGD`: classic AC(lambda) / Watkins Q(lambda): the same eligibility traces with a plain
  step theta += alpha delta z (lr 1e-3 by default), dense U(+-1/sqrt(fan_in)) init (torch's
  default), no LayerNorm, raw observations and rewards, no time feature;
- `classic Adam`: the same classic network and inputs, with Adam fed delta z as its gradient
  (lr 1e-4 by default).

The classic learning rates are the algorithms' own defaults for those optimisers (a small SGD step,
and Adam's usual deep-RL 1e-4); pass `--sgd-lr` / `--adam-lr` to try others. Everything else
(gamma 0.99, lambda 0.8, networks 2x32, epsilon schedule of Q) is the same in all variants.

Output, named `stream_barrier-<date>-<device>` in `--out-dir` (default benchmarks/results/):
`.png` (one panel per learner and env: mean return over seeds against env steps, 95% bootstrap CI,
via `jaxrl.plot.learning_curves`), `.csv` (per-seed curves, long format: one row per learner, env,
variant, seed and chunk) and `.json` (the summary rows below, the settings and the machine). Each
summary row is one variant: final return = per seed, the mean return of the episodes that ended
in the last 10% of training, then mean over seeds with a 95% bootstrap CI; `nonfinite_seeds`
counts seeds whose final carry (weights, optimiser state ...) holds a NaN or inf.

Run: `python -m benchmarks.stream_barrier --scale full` (8 seeds, 200k steps per seed; `--pendulum`
adds Stream AC on Pendulum-v1). `--scale ci` is a tiny smoke run (2 seeds, 1,000 steps).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import json
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks.common import RESULTS, device_slug, dir_arg, machine

CLASSIC = dict(sparsity=0.0, layer_norm=False, normalize_obs=False, scale_reward=False, time_feature=False)
DEFAULT_LR = {"sgd": 1e-3, "adam": 1e-4}
CASES = [("stream_ac", "CartPole-v1"), ("stream_q", "CartPole-v1")]
PENDULUM = ("stream_ac", "Pendulum-v1")
TITLES = {"stream_ac": "Stream AC vs classic AC(λ)", "stream_q": "Stream Q vs classic Q(λ)"}
SCALES = {
    "ci": dict(seeds=2, total_timesteps=1_000, num_chunks=4),
    "full": dict(seeds=8, total_timesteps=200_000, num_chunks=40),
}
FINAL_FRACTION = 0.1


def variants(sgd_lr: float = DEFAULT_LR["sgd"], adam_lr: float = DEFAULT_LR["adam"]) -> dict[str, dict]:
    """Config overrides of each variant, by name."""
    return {
        "stream-x": {},
        "classic SGD": dict(optimizer="sgd", lr=sgd_lr, **CLASSIC),
        "classic Adam": dict(optimizer="adam", lr=adam_lr, **CLASSIC),
    }


def final_returns(returns: np.ndarray, fraction: float = FINAL_FRACTION) -> np.ndarray:
    """Per seed, the mean over the last `fraction` of chunks (at least one) of the chunk returns,
    NaN chunks (no episode ended) ignored. `returns`: [chunks, seeds]."""
    k = max(1, int(round(fraction * returns.shape[0])))
    tail = returns[-k:]
    ok = ~np.isnan(tail)
    return np.where(ok.any(0), np.where(ok, tail, 0.0).sum(0) / np.maximum(ok.sum(0), 1), np.nan)


def nonfinite_seeds(carry, num_seeds: int) -> int:
    """Seeds whose carry has a NaN/inf in any floating leaf (leaves have a leading seed axis)."""
    bad = np.zeros(num_seeds, bool)
    for leaf in jax.tree.leaves(carry):
        x = np.asarray(leaf)
        if np.issubdtype(x.dtype, np.floating):
            bad |= ~np.isfinite(x.reshape(num_seeds, -1)).all(1)
    return int(bad.sum())


def run_variant(algo: str, env: str, overrides: dict, seeds: int, total_timesteps: int, num_chunks: int,
                seed: int = 0) -> dict:
    """Train `seeds` vmapped seeds of one variant; its metrics as [chunks, seeds] and a summary."""
    from jaxrl import plot
    from jaxrl.core.run import seed_keys

    mod = importlib.import_module(f"jaxrl.algos.{algo}")
    cfg = mod.Config(env=env, total_timesteps=total_timesteps, num_chunks=num_chunks, **overrides)
    trainer = mod.make_train(cfg)
    t0 = time.perf_counter()
    carry, metrics = jax.block_until_ready(jax.jit(jax.vmap(trainer.train))(seed_keys(seed, seeds)))
    seconds = time.perf_counter() - t0
    metrics = {k: np.asarray(v, dtype=np.float64).T for k, v in metrics.items()}  # [chunks, seeds]
    final = final_returns(metrics["return"])
    mean, lo, hi = plot.bootstrap_mean_ci(final)
    summary = {
        "algo": algo, "env": env, "optimizer": cfg.optimizer, "lr": cfg.step_size,
        "toolkit": not overrides, "seeds": seeds, "env_steps": int(metrics["env_steps"][-1, 0]),
        "final_return": round(float(mean), 1), "ci_low": round(float(lo), 1), "ci_high": round(float(hi), 1),
        "final_returns": [round(float(r), 1) for r in final],
        "nonfinite_seeds": nonfinite_seeds(carry, seeds), "seconds": round(seconds, 1),
    }
    return {"metrics": metrics, "summary": summary}


def write_csv(path: Path, results: dict) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["algo", "env", "variant", "optimizer", "lr", "seed", "chunk", "env_steps", "return"])
        for (algo, env, name), res in results.items():
            s, m = res["summary"], res["metrics"]
            for seed in range(m["return"].shape[1]):
                for c in range(m["return"].shape[0]):
                    ret = m["return"][c, seed]
                    w.writerow([algo, env, name, s["optimizer"], s["lr"], seed, c, int(m["env_steps"][c, seed]),
                                "" if np.isnan(ret) else f"{ret:.6g}"])


def plot_curves(path: Path, results: dict, seeds: int) -> None:
    from matplotlib.figure import Figure

    from jaxrl import plot

    panels = list(dict.fromkeys((algo, env) for algo, env, _ in results))
    fig = Figure(figsize=(6 * len(panels), 4.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (algo, env) in zip(axes, panels):
        runs = {}
        for (a, e, name), res in results.items():
            if (a, e) == (algo, env):
                r = res["summary"]
                label = f"{name}, lr {r['lr']:g}"
                if r["nonfinite_seeds"]:
                    label += f", {r['nonfinite_seeds']}/{r['seeds']} diverged to NaN/inf"
                runs[label] = {k: res["metrics"][k] for k in ("env_steps", "return")}
        plot.learning_curves(runs, x="env_steps", y="return", ax=ax, title=f"{TITLES[algo]}, {env}")
        ax.set_xlabel("env steps (per seed)")
        ax.set_ylabel("episode return (mean over seeds, 95% CI)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)  # below: curves stay visible
    fig.suptitle(f"The stream barrier: stream-x vs classic streaming learners ({seeds} seeds each)")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight", dpi=120)


def measure(scale: str, out_dir: Path, seeds: int | None = None, total_timesteps: int | None = None,
            num_chunks: int | None = None, pendulum: bool = False, sgd_lr: float = DEFAULT_LR["sgd"],
            adam_lr: float = DEFAULT_LR["adam"], seed: int = 0, verbose: bool = True) -> dict:
    """Run every case x variant, write the PNG, CSV and JSON into `out_dir`; returns the report."""
    s = SCALES[scale]
    seeds, total, chunks = seeds or s["seeds"], total_timesteps or s["total_timesteps"], num_chunks or s["num_chunks"]
    cases = CASES + ([PENDULUM] if pendulum else [])
    results = {}
    for algo, env in cases:
        for name, overrides in variants(sgd_lr, adam_lr).items():
            res = run_variant(algo, env, overrides, seeds, total, chunks, seed)
            results[(algo, env, name)] = res
            if verbose:
                r = res["summary"]
                print(f"[stream_barrier] {algo} {env} {name}: {r['final_return']} "
                      f"[{r['ci_low']}, {r['ci_high']}] ({r['seconds']} s)", flush=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"stream_barrier-{datetime.date.today()}-{device_slug()}"
    png, csv_path, js = stem.with_suffix(".png"), stem.with_suffix(".csv"), stem.with_suffix(".json")
    write_csv(csv_path, results)
    plot_curves(png, results, seeds)
    rows = [{"benchmark": "stream_barrier", "variant": name, **res["summary"]}
            for (_, _, name), res in results.items()]
    report = {
        "benchmark": "stream_barrier",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {"scale": scale, "seeds": seeds, "total_timesteps": total, "num_chunks": chunks, "seed": seed,
                   "final_fraction": FINAL_FRACTION, "classic": CLASSIC, "sgd_lr": sgd_lr, "adam_lr": adam_lr},
        "rows": rows,
        "files": {"png": str(png), "csv": str(csv_path)},
    }
    on_disk = {**report, "files": {k: Path(v).name for k, v in report["files"].items()}}  # beside the json
    js.write_text(json.dumps(on_disk, indent=1) + "\n")
    return report


def format_table(rows: list[dict]) -> str:
    head = (f"{'algo':>9} {'env':>12} {'variant':>13} {'lr':>7} {'seeds':>5} {'steps':>8} "
            f"{'final return [95% CI]':>24} {'nonfinite':>9}")
    lines = [head]
    for r in rows:
        ci = f"{r['final_return']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        lines.append(f"{r['algo']:>9} {r['env']:>12} {r['variant']:>13} {r['lr']:>7g} {r['seeds']:>5} "
                     f"{r['env_steps']:>8} {ci:>24} {r['nonfinite_seeds']:>9}")
    return "\n".join(lines)


def suite(scale: str, skip_peers: bool = False, out_dir: Path | None = None) -> list[dict]:
    """The stream-x suite's barrier rows for `benchmarks.run`: one per learner x variant, without
    the per-seed lists. Full scale writes its files into benchmarks/results/, ci scale into a
    temporary directory (named in the rows)."""
    if out_dir is None:
        out_dir = RESULTS if scale == "full" else Path(tempfile.mkdtemp(prefix="stream_barrier-ci-"))
    report = measure(scale, out_dir, verbose=False)
    return [{**{k: v for k, v in r.items() if k != "final_returns"}, "png": report["files"]["png"]}
            for r in report["rows"]]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--seeds", type=int, default=None, help="seeds per variant (default: the scale's)")
    p.add_argument("--total-timesteps", type=int, default=None, help="env steps per seed (default: the scale's)")
    p.add_argument("--num-chunks", type=int, default=None, help="points on each curve (default: the scale's)")
    p.add_argument("--pendulum", action="store_true", help="also Stream AC vs classic AC(lambda) on Pendulum-v1")
    p.add_argument("--sgd-lr", type=float, default=DEFAULT_LR["sgd"], help="step size of the classic SGD variant")
    p.add_argument("--adam-lr", type=float, default=DEFAULT_LR["adam"], help="step size of the classic Adam variant")
    p.add_argument("--seed", type=int, default=0, help="base seed")
    p.add_argument("--out-dir", type=dir_arg, default=RESULTS, help="where the PNG, CSV and JSON go")
    args = p.parse_args(argv)
    for name in ("seeds", "total_timesteps", "num_chunks"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    report = measure(args.scale, args.out_dir, args.seeds, args.total_timesteps, args.num_chunks, args.pendulum,
                     args.sgd_lr, args.adam_lr, args.seed)
    print(format_table(report["rows"]))
    print(f"wrote {report['files']['png']}, {report['files']['csv']} and the .json beside them")
    return report


if __name__ == "__main__":
    main()
