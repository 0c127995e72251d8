"""Writes notebooks/ppo_sweep.ipynb (outputs cleared). Edit this file, not the notebook, then run
`python notebooks/build_ppo_sweep.py`.

Every notebook in notebooks/ has a code cell tagged `parameters` (papermill's convention) that
sets at least BUDGET (env steps per seed) and NUM_SEEDS; tests/test_notebooks.py runs each one
with tiny values injected after that cell.
"""
from nbformat.v4 import new_code_cell, new_markdown_cell

from nbbuild import write

CELLS = [
    new_markdown_cell("""# PPO on CartPole-v1: a seed sweep

Trains `jaxrl.algos.ppo` (PureJaxRL's CartPole config) on `NUM_SEEDS` seeds at once, vmapped into one
program per chunk, logs `metrics.csv` to `runs/ppo_sweep/`, and plots the mean return over seeds with a
95% bootstrap confidence interval, then the final returns' IQM and optimality gap (normalised by
CartPole's maximum return of 500) with stratified bootstrap intervals (Agarwal et al. 2021).

Run it from the top. The next cell holds the parameters (tagged `parameters` for papermill:
`papermill ppo_sweep.ipynb out.ipynb -p BUDGET 100000`)."""),
    new_code_cell("""BUDGET = 500_000  # env steps per seed
NUM_SEEDS = 32
SEED = 0
LOG_DIR = "runs/ppo_sweep\"""", metadata={"tags": ["parameters"]}),
    new_code_cell("""import numpy as np
from IPython.display import Image, display

from jaxrl import plot
from jaxrl.algos import ppo
from jaxrl.core.run import RunOptions, run

config = ppo.Config(env="CartPole-v1", total_timesteps=BUDGET)
result = run(ppo.make_train(config), RunOptions(num_seeds=NUM_SEEDS, seed=SEED, log_dir=LOG_DIR, progress=False))
final = result.final("return")
print(f"{NUM_SEEDS} seeds x {int(result.metrics['env_steps'][-1, 0]):,} env steps")
print("final return per seed:", np.round(final, 1))
print(f"mean {np.nanmean(final):.1f}, std {np.nanstd(final):.1f}")"""),
    new_markdown_cell("## Learning curve\nMean over seeds, 95% bootstrap CI (seeds resampled). "
                      "The same data read back from the run's CSV with `plot.load_run`."),
    new_code_cell("""metrics = plot.load_run(LOG_DIR)
plot.learning_curves({"PPO": metrics}, x="env_steps", y="return",
                     title=f"PPO, CartPole-v1, {NUM_SEEDS} seeds", path="ppo_sweep_curve.png")
display(Image("ppo_sweep_curve.png"))"""),
    new_markdown_cell("## Aggregate of final returns\nNormalised by 500 (CartPole-v1's maximum return)."),
    new_code_cell("""scores = {"PPO": {"CartPole-v1": np.nan_to_num(final, nan=0.0)}}
agg = plot.aggregate(scores, normalizers={"CartPole-v1": (0.0, 500.0)}, seed=SEED)
for name, (point, lo, hi) in agg["PPO"].items():
    print(f"{name}: {point:.3f}  [{lo:.3f}, {hi:.3f}]")
plot.plot_aggregate(agg, path="ppo_sweep_aggregate.png")
display(Image("ppo_sweep_aggregate.png"))"""),
    new_markdown_cell("""## A learning-rate sweep in one program
`run_many` runs configs that differ only in numeric fields (here the learning rate) as one vmapped
program over (learning rate, seed): one compile for the whole grid. Final return per learning rate,
mean and 95% bootstrap CI over seeds."""),
    new_code_cell("""import dataclasses
from jaxrl.core.sweep import run_many

lrs = [1e-4, 2.5e-4, 1e-3]
sweep = run_many(ppo.make_train, [dataclasses.replace(config, lr=lr) for lr in lrs],
                 RunOptions(num_seeds=NUM_SEEDS, seed=SEED, progress=False))
final_by_lr = sweep.final("return")  # [learning rates, seeds]
for lr, row in zip(lrs, final_by_lr):
    print(f"lr {lr:g}: mean final return {np.nanmean(row):.1f} over {row.size} seeds")
curves = {f"lr={lr:g}": {"env_steps": sweep.metrics["env_steps"][:, c], "return": sweep.metrics["return"][:, c]}
          for c, lr in enumerate(lrs)}
plot.learning_curves(curves, x="env_steps", y="return", title="PPO, CartPole-v1: learning-rate sweep",
                     path="ppo_lr_sweep.png")
display(Image("ppo_lr_sweep.png"))"""),
]


if __name__ == "__main__":
    write(CELLS, "ppo_sweep.ipynb")
