"""Writes notebooks/stream_x.ipynb (outputs cleared). Edit this file, not the notebook, then run
`python notebooks/build_stream_x.py`.

Every notebook in notebooks/ has a code cell tagged `parameters` (papermill's convention) that
sets at least BUDGET (env steps per seed) and NUM_SEEDS; tests/test_notebooks.py runs each one
with tiny values injected after that cell.
"""
from nbformat.v4 import new_code_cell, new_markdown_cell

from nbbuild import write

CELLS = [
    new_markdown_cell("""# Stream-x: 32 streaming learners at once

The stream-x algorithms (Elsayed, Vasan, Mahmood 2024, *Streaming Deep Reinforcement Learning Finally
Works*, arXiv:2410.14606) learn from each transition once, with batch size 1, no replay buffer and no
target network, and stay stable thanks to ObGD (a step size bounded against overshooting), sparse
init, LayerNorm and online observation/reward normalisation.

One streaming learner keeps a CPU core busy with tiny updates. Here `NUM_SEEDS` independent learners
run as one vmapped XLA program, so a seed sweep costs little more than one seed:

1. **Stream Q(λ)** on a MinAtar game (default Breakout-MinAtar; the official MinAtar settings:
   Conv(16, 3x3) → 128, ε decayed over the first 20% of steps);
2. **Stream AC(λ)** on Pendulum-v1 (Gaussian policy, 2x128 actor and critic).

Both log `metrics.csv` under `runs/stream_x/` and are plotted with `jaxrl.plot`: mean return over
seeds with a 95% bootstrap confidence interval. The paper trains MinAtar for 5M steps (Q) and
continuous control for 2M (AC); on a CPU, lower `BUDGET` or `NUM_SEEDS`.

The next cell holds the parameters (tagged `parameters` for papermill:
`papermill stream_x.ipynb out.ipynb -p BUDGET 200000`)."""),
    new_code_cell("""BUDGET = 1_000_000  # env steps per seed, for each learner
NUM_SEEDS = 32
SEED = 0
MINATAR_GAME = "Breakout-MinAtar"
NUM_CHUNKS = 20  # points on each learning curve
LOG_DIR = "runs/stream_x\"""", metadata={"tags": ["parameters"]}),
    new_code_cell("""import time

import numpy as np
from IPython.display import Image, display

from jaxrl import plot
from jaxrl.algos import stream_ac, stream_q
from jaxrl.core.run import RunOptions, run


def sweep(module, config, name):
    \"\"\"Train NUM_SEEDS vmapped seeds of `config`; log to LOG_DIR/name; print the final returns.\"\"\"
    t0 = time.perf_counter()
    result = run(module.make_train(config),
                 RunOptions(num_seeds=NUM_SEEDS, seed=SEED, log_dir=f"{LOG_DIR}/{name}", progress=False))
    final = result.final("return")
    steps = int(result.metrics["env_steps"][-1, 0])
    print(f"{name}: {NUM_SEEDS} seeds x {steps:,} env steps on {config.env} in {time.perf_counter() - t0:.0f} s")
    print("final return per seed:", np.round(final, 1))
    mean, lo, hi = plot.bootstrap_mean_ci(final)
    print(f"mean {mean:.1f}, 95% CI [{lo:.1f}, {hi:.1f}]")
    return result"""),
    new_markdown_cell("## Stream Q(λ) on MinAtar"),
    new_code_cell("""q_config = stream_q.Config(env=MINATAR_GAME, total_timesteps=BUDGET, exploration_fraction=0.2,
                          num_chunks=NUM_CHUNKS)
q_result = sweep(stream_q, q_config, "stream_q")"""),
    new_code_cell("""plot.learning_curves({"Stream Q(λ)": plot.load_run(f"{LOG_DIR}/stream_q")}, x="env_steps", y="return",
                     title=f"Stream Q(λ), {MINATAR_GAME}, {NUM_SEEDS} seeds", path="stream_q_curve.png")
display(Image("stream_q_curve.png"))"""),
    new_markdown_cell("## Stream AC(λ) on Pendulum-v1"),
    new_code_cell("""ac_config = stream_ac.Config(env="Pendulum-v1", total_timesteps=BUDGET, num_chunks=NUM_CHUNKS)
ac_result = sweep(stream_ac, ac_config, "stream_ac")"""),
    new_code_cell("""plot.learning_curves({"Stream AC(λ)": plot.load_run(f"{LOG_DIR}/stream_ac")}, x="env_steps", y="return",
                     title=f"Stream AC(λ), Pendulum-v1, {NUM_SEEDS} seeds", path="stream_ac_curve.png")
display(Image("stream_ac_curve.png"))"""),
    new_markdown_cell("""## Other diagnostics
Each chunk also logs the mean absolute TD error (and Q's ε, AC's policy entropy); stream-x keeps
|δ| bounded where classic streaming learners blow up (see `benchmarks/stream_barrier.py`)."""),
    new_code_cell("""from matplotlib.figure import Figure

fig = Figure(figsize=(11, 3.8))
ax_q, ax_ac = fig.subplots(1, 2)
plot.learning_curves({"Stream Q(λ)": q_result}, y="td_error", ax=ax_q, title=f"|TD error|, {MINATAR_GAME}")
plot.learning_curves({"Stream AC(λ)": ac_result}, y="entropy", ax=ax_ac, title="policy entropy, Pendulum-v1")
fig.tight_layout()
fig.savefig("stream_x_diagnostics.png", dpi=120)
display(Image("stream_x_diagnostics.png"))"""),
]


if __name__ == "__main__":
    write(CELLS, "stream_x.ipynb")
