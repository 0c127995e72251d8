"""RLCM vs DDPO (Oertell et al. 2024's headline): does RL on a consistency model reach the reward of
RL on a diffusion model in less training time, and does it generate faster?

Both fine-tune our pretrained 8x8 digit generator (jaxrl.models.pretrain) on the same reward
(`--reward`, default the learned "aesthetic" score) with the same PPO settings and sample budget:
RLCM with 2, 4 and 8 consistency steps, DDPO with a 20-step DDIM sampler (paper: 8 vs 50 steps).
Each method trains `seeds` vmapped seeds; every chunk is one jitted call timed to
`block_until_ready`, so the wall-clock axis is training time without compilation (compile seconds
are reported apart). Inference time per image: the best of 5 timed calls of the jitted sampler on a
batch of 256 prompts, divided by 256.

Output, named `rlcm_vs_ddpo-<date>-<device>` in `--out-dir` (default benchmarks/results/): `.png`
(reward against training seconds and against samples, mean over seeds with a 95% bootstrap CI),
`.csv` (per seed and chunk: samples, seconds, reward) and `.json` (summary rows, settings, machine).
Summary rows: final reward (last chunk, mean over seeds), training seconds, seconds and samples
until the mean curve first reaches DDPO's final mean reward, and inference ms per image.

Run: `python -m benchmarks.rlcm_vs_ddpo --scale full` (3 seeds, 3,072 samples per seed);
`--scale ci` is a smoke run (2 seeds, 64 samples, RLCM 2 steps and DDPO 20 steps).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS, device_slug, dir_arg, machine

SCALES = {
    "ci": dict(seeds=2, total_samples=64, num_chunks=2, samples_per_iter=32, methods=[("rlcm", 2), ("ddpo", 20)]),
    "full": dict(seeds=3, total_samples=3072, num_chunks=6, samples_per_iter=64,
                 methods=[("rlcm", 2), ("rlcm", 4), ("rlcm", 8), ("ddpo", 20)]),
}
INFERENCE_BATCH = 256


def label(algo: str, steps: int) -> str:
    return f"{algo.upper()} {steps} steps"


def train_timed(algo: str, steps: int, reward: str, seeds: int, total_samples: int, num_chunks: int,
                samples_per_iter: int, seed: int = 0) -> dict:
    """Train one method; per chunk and seed: samples, cumulative training seconds, reward."""
    import importlib

    from jaxrl.core.run import seed_keys

    mod = importlib.import_module(f"jaxrl.algos.{algo}")
    cfg = mod.Config(reward=reward, num_inference_steps=steps, total_samples=total_samples,
                     num_chunks=num_chunks, samples_per_iter=samples_per_iter)
    trainer = mod.make_train(cfg)
    keys = seed_keys(seed, seeds)
    t0 = time.perf_counter()
    init = jax.jit(jax.vmap(trainer.init)).lower(keys).compile()
    carry = init(keys)
    update = jax.jit(jax.vmap(trainer.update)).lower(carry).compile()
    compile_s = time.perf_counter() - t0
    seconds, rewards, samples, elapsed = [], [], [], 0.0
    for _ in range(cfg.num_chunks):
        t0 = time.perf_counter()
        carry, m = jax.block_until_ready(update(carry))
        elapsed += time.perf_counter() - t0
        seconds.append(elapsed)
        rewards.append(np.asarray(m["reward"], np.float64))
        samples.append(np.asarray(m["samples"], np.int64))
    gen = jax.jit(mod.make_generate(cfg))
    prompts = jnp.arange(INFERENCE_BATCH) % 10
    jax.block_until_ready(gen(jax.random.PRNGKey(0), prompts))
    best = np.inf
    for i in range(5):
        t0 = time.perf_counter()
        jax.block_until_ready(gen(jax.random.PRNGKey(i), prompts))
        best = min(best, time.perf_counter() - t0)
    return {"algo": algo, "steps": steps, "config": cfg, "compile_s": compile_s,
            "seconds": np.asarray(seconds), "reward": np.stack(rewards), "samples": np.stack(samples),
            "inference_ms_per_image": 1e3 * best / INFERENCE_BATCH}


def first_reach(curve: np.ndarray, xs: np.ndarray, target: float) -> float | None:
    hit = np.nonzero(curve >= target)[0]
    return float(xs[hit[0]]) if len(hit) else None


def summarise(results: list[dict]) -> list[dict]:
    ddpo = [r for r in results if r["algo"] == "ddpo"]
    target = float(ddpo[0]["reward"][-1].mean()) if ddpo else None
    rows = []
    for r in results:
        mean_curve = r["reward"].mean(1)
        rows.append({
            "benchmark": "rlcm_vs_ddpo", "method": label(r["algo"], r["steps"]), "seeds": r["reward"].shape[1],
            "samples": int(r["samples"][-1, 0]), "start_reward": round(float(r["reward"][0].mean()), 3),
            "final_reward": round(float(mean_curve[-1]), 3),
            "final_reward_per_seed": [round(float(v), 3) for v in r["reward"][-1]],
            "train_s": round(float(r["seconds"][-1]), 2), "compile_s": round(r["compile_s"], 1),
            "s_to_ddpo_final": None if target is None else first_reach(mean_curve, r["seconds"], target),
            "samples_to_ddpo_final": None if target is None else first_reach(mean_curve, r["samples"][:, 0], target),
            "inference_ms_per_image": round(r["inference_ms_per_image"], 4),
            "pretrained_hash": r["config"].pretrained_hash,
        })
    return rows


def write_csv(path: Path, results: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "algo", "steps", "seed", "chunk", "samples", "train_seconds", "reward"])
        for r in results:
            for c in range(r["reward"].shape[0]):
                for s in range(r["reward"].shape[1]):
                    w.writerow([label(r["algo"], r["steps"]), r["algo"], r["steps"], s, c, int(r["samples"][c, s]),
                                f"{r['seconds'][c]:.4f}", f"{r['reward'][c, s]:.6g}"])


def plot(path: Path, results: list[dict], reward: str) -> None:
    from matplotlib.figure import Figure

    from jaxrl import plot as jplot

    fig = Figure(figsize=(12, 4.4))
    ax_t, ax_n = fig.subplots(1, 2)
    runs_n = {label(r["algo"], r["steps"]): {"samples": r["samples"], "reward": r["reward"]} for r in results}
    jplot.learning_curves(runs_n, x="samples", y="reward", ax=ax_n, title="reward vs samples")
    for r in results:  # wall-clock differs per method: one x per method
        mean = r["reward"].mean(1)
        lo, hi = r["reward"].min(1), r["reward"].max(1)
        line, = ax_t.plot(r["seconds"], mean, marker="o", ms=3,
                          label=f"{label(r['algo'], r['steps'])} ({r['inference_ms_per_image']:.3f} ms/img)")
        ax_t.fill_between(r["seconds"], lo, hi, color=line.get_color(), alpha=0.2)
    ax_t.set_xlabel("training seconds (compile excluded)")
    ax_t.set_ylabel(f"{reward} reward (mean over seeds; band: min-max)")
    ax_t.set_title("reward vs wall-clock")
    ax_t.legend(fontsize=8)
    ax_n.set_xlabel("samples per seed")
    fig.suptitle(f"RLCM vs DDPO on 8x8 digits, {reward} reward, {results[0]['reward'].shape[1]} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def measure(scale: str, out_dir: Path = RESULTS, reward: str = "aesthetic", seed: int = 0, verbose: bool = True) -> dict:
    s = SCALES[scale]
    results = []
    for algo, steps in s["methods"]:
        r = train_timed(algo, steps, reward, s["seeds"], s["total_samples"], s["num_chunks"], s["samples_per_iter"], seed)
        results.append(r)
        if verbose:
            print(f"[rlcm_vs_ddpo] {label(algo, steps)}: reward {r['reward'][0].mean():.3f} -> {r['reward'][-1].mean():.3f} "
                  f"in {r['seconds'][-1]:.1f} s (compile {r['compile_s']:.1f} s), "
                  f"{r['inference_ms_per_image']:.4f} ms/image", flush=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"rlcm_vs_ddpo-{datetime.date.today()}-{device_slug()}"
    png, csv_path, js = stem.with_suffix(".png"), stem.with_suffix(".csv"), stem.with_suffix(".json")
    write_csv(csv_path, results)
    plot(png, results, reward)
    rows = summarise(results)
    report = {"benchmark": "rlcm_vs_ddpo", "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": machine(), "config": {"scale": scale, "reward": reward, "seed": seed,
                                               **{k: v for k, v in s.items() if k != "methods"},
                                               "methods": [label(a, h) for a, h in s["methods"]]},
              "rows": rows, "files": {"png": str(png), "csv": str(csv_path)}}
    on_disk = {**report, "files": {k: Path(v).name for k, v in report["files"].items()}}  # beside the json
    js.write_text(json.dumps(on_disk, indent=1) + "\n")
    return report


def suite(scale: str, skip_peers: bool = False, out_dir: Path | None = None) -> list[dict]:
    """The generative suite's rows for `benchmarks.run` (no peers: the official codes need GPUs)."""
    return measure(scale, out_dir or RESULTS, verbose=False)["rows"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--reward", default="aesthetic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=dir_arg, default=RESULTS)
    args = p.parse_args(argv)
    report = measure(args.scale, args.out_dir, args.reward, args.seed)
    for r in report["rows"]:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
