"""Writes notebooks/offline.ipynb (outputs cleared). Edit this file, not the notebook, then run
`python notebooks/build_offline.py`.

The `parameters` cell sets BUDGET (gradient updates per seed) and NUM_SEEDS; tests/test_notebooks.py
runs the notebook with tiny values (the dataset's size and the behaviour agent's training scale
with BUDGET).
"""
from nbformat.v4 import new_code_cell, new_markdown_cell

from nbbuild import write

CELLS = [
    new_markdown_cell("""# Offline RL: seeds x datasets in one program

Generates D4RL-style datasets (random, medium, expert) with our own behaviour agent
(`jaxrl.datasets.generate`, cached), then trains an offline learner on all of them and `NUM_SEEDS`
seeds as ONE jitted program (the datasets stacked and vmapped, the seeds vmapped inside, every seed
reading the same copy of its dataset), and plots the normalised score (D4RL's
100 (R - random) / (expert - random)) per dataset against the behaviour policy's.

The next cell holds the parameters (tagged `parameters` for papermill)."""),
    new_code_cell("""BUDGET = 50_000  # gradient updates per seed
NUM_SEEDS = 8
ENV = "Pendulum-v1"
ALGO = "iql"  # td3_bc, iql or cql
SEED = 0""", metadata={"tags": ["parameters"]}),
    new_code_cell("""import importlib

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from envs.datasets import load
from jaxrl.datasets.generate import GenerateConfig, generate

LEVELS = ("random", "medium", "expert")
gen = GenerateConfig(env=ENV, agent="ppo", agent_steps=min(200_000, 4 * BUDGET), snapshots=6,
                     size=min(50_000, 2 * BUDGET), eval_episodes=8, progress=False, seed=SEED)
data = {lvl: load(p) for lvl, p in generate(gen).items() if lvl in LEVELS}
for lvl, ds in data.items():
    print(f"{lvl:>7}: {len(ds):,} transitions, behaviour score {ds.normalized_score(ds.behavior_return):.1f}")"""),
    new_code_cell("""algo = importlib.import_module(f"jaxrl.algos.{ALGO}")
config = algo.Config(total_updates=BUDGET, num_chunks=5, hidden=(64, 64), eval_episodes=10)
_, metrics = algo.train_sweep(config, [data[lvl] for lvl in LEVELS], num_seeds=NUM_SEEDS, seed=SEED)
score = np.asarray(metrics["normalized_score"])  # [datasets, seeds, chunks]
updates = np.asarray(metrics["updates"])[0, 0]
for lvl, s in zip(LEVELS, score[:, :, -1]):
    print(f"{lvl:>7}: {s.mean():6.1f} +- {s.std():.1f}  (seeds: {np.round(s, 1)})")"""),
    new_markdown_cell("## Normalised score during training\nMean over seeds, shaded: one standard deviation; "
                      "dashed: the behaviour policy's score."),
    new_code_cell("""fig, ax = plt.subplots(figsize=(6, 4))
for i, lvl in enumerate(LEVELS):
    m, s = score[i].mean(0), score[i].std(0)
    (line,) = ax.plot(updates, m, label=lvl)
    ax.fill_between(updates, m - s, m + s, alpha=0.2, color=line.get_color())
    ds = data[lvl]
    ax.axhline(ds.normalized_score(ds.behavior_return), ls="--", color=line.get_color())
ax.set_xlabel("gradient updates"); ax.set_ylabel("normalised score")
ax.set_title(f"{ALGO} on {ENV}, {NUM_SEEDS} seeds x {len(LEVELS)} datasets, one program")
ax.legend(); fig.tight_layout(); fig.savefig("offline_sweep.png", dpi=100)
display(Image("offline_sweep.png"))"""),
]


if __name__ == "__main__":
    write(CELLS, "offline.ipynb")
