"""Offline RL benchmark: normalised scores of TD3+BC, IQL and CQL on datasets our own agents
generated, update speed against JAX-CORL's and CORL's published timings, and the memory of many
seeds sharing one dataset.

    python -m benchmarks.offline --scale full      # brax hopper + halfcheetah, 5 levels, 5 seeds, 1M updates
    python -m benchmarks.offline --scale ci        # Pendulum-v1, seconds-to-minutes: checks that it works

- Scores: for each env, `jaxrl.datasets.generate` makes the five D4RL levels (cached); for each
  algorithm, the levels of equal size (random, medium, expert) train as ONE program, seeds x
  datasets (Unifloral-style), and medium-replay and medium-expert each as one more. The table
  gives mean +- std over seeds of the last evaluation's normalised score, beside the behaviour
  policy's score (the dataset's mean episode return, normalised).
- Speed: one chunk of updates (no evaluation) compiled, then timed; updates/s over all seeds. The
  1M-update wall time at 1 seed is compile + 1M / rate (extrapolated from the timed chunk).
  Peers' numbers are as published (JAX-CORL README: 1M updates on halfcheetah-medium-expert, GTX
  1080 Ti, compile included), not re-run here.
- Memory: peak resident memory of a run of 16 seeds on a 1M-transition dataset, against the
  dataset's size on the device; one copy serves every seed (the seed vmap does not touch it).

Writes `offline-<date>-<device>.csv` and `.md` (scores and speed) into --out-dir
(benchmarks/results/ at full scale).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, REPO, dir_arg, machine, result_stem, write_csv

ALGOS = ("td3_bc", "iql", "cql")
# published: JAX-CORL README, 1M updates, halfcheetah-medium-expert, compile included (minutes / hours)
PEERS = {"iql": (9 * 60, 4.08 * 3600), "td3_bc": (9 * 60, 2.47 * 3600), "cql": (56 * 60, 11.52 * 3600)}

SCALES = {
    "ci": dict(envs=("Pendulum-v1",), gen=dict(agent="ppo", agent_steps=60_000, snapshots=6, size=10_000,
                                               eval_episodes=8, num_envs=10),
               levels=("medium", "expert"), seeds=2, algo=dict(total_updates=1_000, num_chunks=1, hidden=(32, 32),
                                                                 eval_episodes=4),
               speed=dict(updates=500, seeds=(1, 2), hidden=(64, 64), size=10_000), memory=dict(size=100_000, seeds=4, updates=20)),
    "full": dict(envs=("brax/hopper", "brax/halfcheetah"), gen=dict(size=1_000_000),
                 levels=("random", "medium", "expert", "medium-replay", "medium-expert"), seeds=5,
                 algo=dict(total_updates=1_000_000, num_chunks=10, eval_episodes=10),
                 speed=dict(updates=10_000, seeds=(1, 16), hidden=(256, 256), size=1_000_000),
                 memory=dict(size=1_000_000, seeds=16, updates=200)),
}


def _module(name):
    import importlib

    return importlib.import_module(f"jaxrl.algos.{name}")


def _agent() -> str:
    import importlib.util

    return "sac" if importlib.util.find_spec("jaxrl.algos.sac") else "ppo"


# ----------------------------------------------------------------------------------- scores


def scores(scale: str, cache_dir: str = "") -> list[dict]:
    from envs.datasets import load
    from jaxrl.datasets.generate import GenerateConfig, generate

    s = SCALES[scale]
    rows = []
    for env in s["envs"]:
        gen = GenerateConfig(**{"env": env, "agent": _agent(), "progress": False, "cache_dir": cache_dir, **s["gen"]})
        t0 = time.perf_counter()
        data = {lvl: load(p) for lvl, p in generate(gen).items() if lvl in s["levels"]}
        gen_s = time.perf_counter() - t0
        groups: dict[int, list[str]] = {}
        for lvl in s["levels"]:
            groups.setdefault(len(data[lvl]), []).append(lvl)
        for algo in ALGOS:
            mod = _module(algo)
            cfg = mod.Config(**s["algo"])
            for levels in groups.values():
                t0 = time.perf_counter()
                _, m = mod.train_sweep(cfg, [data[lvl] for lvl in levels], s["seeds"])
                score = np.asarray(m["normalized_score"])[:, :, -1]  # [datasets, seeds], last evaluation
                secs = time.perf_counter() - t0
                for lvl, sc in zip(levels, score):
                    ds = data[lvl]
                    rows.append({"benchmark": "offline_scores", "env": env, "level": lvl, "algo": algo,
                                 "seeds": s["seeds"], "updates": cfg.updates_per_chunk * cfg.num_chunks,
                                 "score_mean": float(np.mean(sc)), "score_std": float(np.std(sc)),
                                 "behavior_score": float(ds.normalized_score(ds.behavior_return)),
                                 "datasets_in_program": len(levels), "program_s": secs, "generate_s": gen_s,
                                 "agent": gen.agent})
    return rows


# ----------------------------------------------------------------------------------- speed


HALFCHEETAH_LAYOUT = dict(name="halfcheetah-layout", obs_shape=(17,), obs_dtype="float32", discrete=False, action_dim=6,
                          action_low=(-1.0,) * 6, action_high=(1.0,) * 6, max_steps=1000)


def speed(scale: str, algos=ALGOS, size: int | None = None, updates: int | None = None, seeds=None) -> list[dict]:
    """Updates/s of one chunk of updates (no evaluation, so no env is built) on a synthetic dataset in
    HalfCheetah's layout (17 observations, 6 actions), at each seed count."""
    import jax

    from envs.spec import EnvSpec
    from jaxrl.core import offline
    from jaxrl.core.run import seed_keys

    s = SCALES[scale]["speed"]
    spec = EnvSpec(**HALFCHEETAH_LAYOUT)
    size = size or s["size"]
    ds = synthetic(spec, size)
    data = offline.device_data(ds, spec, normalize_obs=True)
    rows = []
    for algo in algos:
        mod = _module(algo)
        cfg = mod.Config(total_updates=updates or s["updates"], num_chunks=1, eval_episodes=0, hidden=s["hidden"])
        learner = mod.make_learner(cfg, spec)
        for n_seeds in seeds or s["seeds"]:
            keys = seed_keys(0, n_seeds)
            carry = jax.jit(jax.vmap(lambda k: learner.init(k, data)))(keys)
            t0 = time.perf_counter()
            step = jax.jit(jax.vmap(lambda c: learner.update(c, data))).lower(carry).compile()
            compile_s = time.perf_counter() - t0
            carry, _ = jax.block_until_ready(step(carry))  # warm
            t0 = time.perf_counter()
            jax.block_until_ready(step(carry))
            run_s = time.perf_counter() - t0
            n = cfg.updates_per_chunk
            rate = n * n_seeds / run_s
            jc, corl = PEERS[algo]
            rows.append({"benchmark": "offline_speed", "algo": algo, "seeds": n_seeds, "hidden": str(s["hidden"]),
                         "batch": cfg.batch_size, "dataset": size, "updates_timed": n, "compile_s": compile_s,
                         "train_s": run_s, "updates_per_s": rate,
                         "est_1M_updates_1seed_s": compile_s + 1e6 / rate if n_seeds == 1 else None,
                         "jax_corl_updates_per_s": 1e6 / jc, "corl_updates_per_s": 1e6 / corl})
    return rows


def synthetic(spec, size: int, seed: int = 0):
    """A dataset of `size` random transitions in the layout of `spec` (for speed and memory only)."""
    from envs.datasets import Dataset

    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(size,) + spec.obs_shape).astype(np.float32)
    act = rng.uniform(spec.low(), spec.high(), (size, spec.action_dim)).astype(np.float32)
    t = np.arange(size) % 1000 == 999
    return Dataset(obs, act, rng.normal(size=size).astype(np.float32), np.zeros(size, bool), t,
                   np.roll(obs, -1, 0), env=spec.name, ref_min_score=-1.0, ref_max_score=1.0)


# ----------------------------------------------------------------------------------- memory


def memory(scale: str) -> list[dict]:
    """Peak RSS of IQL (256x256) on a `size`-transition dataset in HalfCheetah's layout (17
    observations, 6 actions), for 1 seed and for `seeds` seeds, each in a fresh process; no
    evaluation, so no env is built."""
    m = SCALES[scale]["memory"]

    def one(seeds: int) -> dict:
        code = f"""
import json, resource, jax, numpy as np
from envs.datasets import Dataset
from envs.spec import EnvSpec
from jaxrl.algos import iql
from jaxrl.core import offline
n = {m['size']}
spec = EnvSpec("halfcheetah-layout", (17,), "float32", False, 6, (-1.0,) * 6, (1.0,) * 6, 1000)
rng = np.random.default_rng(0)
obs = rng.normal(size=(n, 17)).astype(np.float32)
ds = Dataset(obs, rng.uniform(-1, 1, (n, 6)).astype(np.float32), rng.normal(size=n).astype(np.float32),
             np.zeros(n, bool), np.arange(n) % 1000 == 999, np.roll(obs, -1, 0))
data = offline.device_data(ds, spec, normalize_obs=True, reward_norm="none")
nbytes = sum(x.nbytes for x in jax.tree.leaves(data))
del ds, obs
cfg = iql.Config(total_updates={m['updates']}, num_chunks=1, eval_episodes=0)
_, out = offline.sweep(iql.make_learner(cfg, spec), [data], 1, {{seeds}})
jax.block_until_ready(out)
print(json.dumps(dict(dataset_mb=nbytes / 2**20, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
""".replace("{seeds}", str(seeds))
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        import json

        return json.loads(proc.stdout.strip().splitlines()[-1])

    r1, rn = one(1), one(m["seeds"])
    return [{"benchmark": "offline_memory", "transitions": m["size"], "seeds": m["seeds"], "dataset_mb": rn["dataset_mb"],
             "peak_rss_1_seed_mb": r1["peak_rss_mb"], "peak_rss_mb": rn["peak_rss_mb"],
             "growth_mb": rn["peak_rss_mb"] - r1["peak_rss_mb"],
             "per_seed_copies_would_add_mb": (m["seeds"] - 1) * rn["dataset_mb"],
             "one_shared_copy": bool(rn["peak_rss_mb"] - r1["peak_rss_mb"] < (m["seeds"] - 1) * rn["dataset_mb"])}]


# ----------------------------------------------------------------------------------- report


def to_markdown(rows: list[dict], scale: str) -> str:
    out = [f"# Offline RL ({scale} scale)", "", f"machine: {machine()['cpu']} ({machine()['cores']} cores), jax {machine()['jax']}", ""]
    sc = [r for r in rows if r["benchmark"] == "offline_scores"]
    if sc:
        out += ["## Normalised scores (last evaluation, mean ± std over seeds)", "",
                "| env | level | behaviour | " + " | ".join(ALGOS) + " |", "|---|---|---|" + "---|" * len(ALGOS)]
        for key in dict.fromkeys((r["env"], r["level"]) for r in sc):
            cells = {r["algo"]: f"{r['score_mean']:.1f} ± {r['score_std']:.1f}" for r in sc if (r["env"], r["level"]) == key}
            beh = next(r["behavior_score"] for r in sc if (r["env"], r["level"]) == key)
            out.append(f"| {key[0]} | {key[1]} | {beh:.1f} | " + " | ".join(cells.get(a, "") for a in ALGOS) + " |")
        out.append("")
    sp = [r for r in rows if r["benchmark"] == "offline_speed"]
    if sp:
        out += ["## Updates per second (all seeds together)", "",
                "| algo | seeds | hidden | updates/s | est. 1M updates, 1 seed | JAX-CORL (GPU, published) | CORL (published) |",
                "|---|---|---|---|---|---|---|"]
        for r in sp:
            est = f"{r['est_1M_updates_1seed_s'] / 60:.0f} min" if r["est_1M_updates_1seed_s"] else ""
            out.append(f"| {r['algo']} | {r['seeds']} | {r['hidden']} | {r['updates_per_s']:.0f} | {est} | "
                       f"{r['jax_corl_updates_per_s']:.0f} | {r['corl_updates_per_s']:.0f} |")
        out.append("")
    for r in rows:
        if r["benchmark"] == "offline_memory" and "peak_rss_mb" in r:
            out += ["## Memory", "", f"{r['seeds']} seeds on {r['transitions']:,} transitions: dataset {r['dataset_mb']:.0f} MB "
                    f"on the device; peak RSS {r['peak_rss_mb']:.0f} MB, against {r['peak_rss_1_seed_mb']:.0f} MB for 1 seed "
                    f"(+{r['growth_mb']:.0f} MB; a copy per seed would add {r['per_seed_copies_would_add_mb']:.0f} MB)", ""]
    return "\n".join(out)


def write(rows: list[dict], scale: str, out_dir: Path) -> dict:
    stem = result_stem(out_dir, "offline")
    write_csv(rows, f"{stem}.csv")
    Path(f"{stem}.md").write_text(to_markdown(rows, scale))
    return {"csv": f"{stem}.csv", "md": f"{stem}.md"}


def suite(scale: str, skip_peers: bool = False, out_dir: Path | None = None) -> list[dict]:
    """Rows for `benchmarks.run` (peers are published numbers, never run). Full scale writes into
    benchmarks/results/, ci scale into a temporary directory."""
    if out_dir is None:
        out_dir = RESULTS if scale == "full" else Path(tempfile.mkdtemp(prefix="offline-ci-"))
    rows = scores(scale, cache_dir="" if scale == "full" else str(out_dir / "cache")) + speed(scale) + memory(scale)
    files = write(rows, scale, out_dir)
    return [{**r, **files} for r in rows]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--only", choices=("scores", "speed", "memory"), default=None, help="run one part")
    p.add_argument("--out-dir", type=dir_arg, default=RESULTS)
    args = p.parse_args(argv)
    parts = {"scores": lambda: scores(args.scale), "speed": lambda: speed(args.scale), "memory": lambda: memory(args.scale)}
    rows = [r for name, fn in parts.items() if args.only in (None, name) for r in fn()]
    files = write(rows, args.scale, args.out_dir)
    print(to_markdown(rows, args.scale))
    print(f"wrote {files['csv']} and {files['md']}")
    return rows


if __name__ == "__main__":
    main()
