"""Writes notebooks/drm.ipynb (outputs cleared). Edit this file, not the notebook, then run
`python notebooks/build_drm.py`.

Every notebook in notebooks/ has a code cell tagged `parameters` (papermill's convention) that
sets at least BUDGET (env steps per seed) and NUM_SEEDS; tests/test_notebooks.py runs each one
with tiny values injected after that cell.
"""
from nbformat.v4 import new_code_cell, new_markdown_cell

from nbbuild import write

CELLS = [
    new_markdown_cell("""# DrM and DrQ-v2 on pixel tasks rendered in JAX

The tasks of `envs.pixels` draw their observation, an RGB image, inside the jitted env step, so
a whole seed sweep (envs, replay of uint8 frames, conv encoder, updates) is one program:

1. what the agents see: the first frame of each task;
2. **DrQ-v2** (Yarats et al. 2021) and **DrM** (Xu et al. 2024) train for `BUDGET` env frames on
   one task, `NUM_SEEDS` seeds vmapped per method;
3. the return of the training episodes and the actor's dormant ratio (the share of its units
   whose mean activation is at most 0.025 of their layer's mean) against env frames. DrM perturbs
   its networks, explores and exploits according to that ratio, and should keep it lower.

`benchmarks/drm_pixels.py` runs the comparison on more tasks and measures speed. The next cell holds
the parameters (tagged `parameters` for papermill: `papermill drm.ipynb out.ipynb -p BUDGET 50000`)."""),
    new_code_cell("""BUDGET = 100_000  # env frames per seed and method, DrQ-v2's unit: agent steps x action repeat 2
NUM_SEEDS = 4
SEED = 0
TASK = "pixels/point_mass_reach"
IMAGE_SIZE = 48  # a smoke run (BUDGET < 20k) draws 32x32""", metadata={"tags": ["parameters"]}),
    new_code_cell("""import jax
import numpy as np
from IPython.display import Image, display
from matplotlib.figure import Figure

import envs
from jaxrl.algos import drm, drqv2
from jaxrl.core.run import FAST_COMPILE

# Under 20k frames the run is a smoke test: 32x32 images, tiny nets, few updates, and XLA's cheap
# compile settings (compiling dominates such a run). Otherwise nets a CPU can afford, half an
# update per agent step.
SMOKE = BUDGET < 20_000
COMPILER = FAST_COMPILE if SMOKE else None
steps = BUDGET // 2  # agent steps at action repeat 2
shared = dict(env=TASK, image_size=32 if SMOKE else IMAGE_SIZE, total_timesteps=steps,
              learning_starts=min(2_000, steps // 8), episode_steps=100 if SMOKE else 250, eval_episodes=0,
              num_chunks=4 if SMOKE else 10, buffer_size=min(steps, 100_000), std_duration=steps // 2)
if SMOKE:
    shared |= dict(batch_size=16, feature_dim=8, hidden=(16,), encoder_features=(4,), n_step=2,
                   updates_per_step=0.0625, frame_stack=2)
else:
    shared |= dict(batch_size=128, feature_dim=50, hidden=(256, 256), encoder_features=(32, 32), lr=3e-4)
configs = {"DrQ-v2": drqv2.Config(**shared), "DrM": drm.Config(**shared, perturb_interval=max(steps // 4, 1))}
keys = jax.random.split(jax.random.key(SEED), NUM_SEEDS)"""),
    new_markdown_cell("## What the agents see: each task's first frame"),
    new_code_cell("""names = ["pixels/pendulum_swingup", "pixels/cartpole_swingup", "pixels/point_mass_reach", "pixels/reacher"]
fig = Figure(figsize=(2.5 * len(names), 2.8))
for i, name in enumerate(names):
    env, params = envs.make(name, image_size=64, frame_stack=1, action_repeat=1)
    obs, _ = jax.jit(env.reset)(jax.random.key(SEED), params)
    ax = fig.add_subplot(1, len(names), i + 1)
    ax.imshow(np.asarray(obs))
    ax.set_title(name.split("/")[1], fontsize=9)
    ax.axis("off")
fig.savefig("frames.png", dpi=100, bbox_inches="tight")
display(Image("frames.png"))"""),
    new_markdown_cell("## Train both methods, seeds vmapped"),
    new_code_cell("""metrics = {}
for name, cfg in configs.items():
    mod = drm if name == "DrM" else drqv2
    _, m = jax.jit(jax.vmap(mod.make_train(cfg).train), compiler_options=COMPILER)(keys)
    metrics[name] = {k: np.asarray(v, np.float64) for k, v in m.items()}  # each [seeds, chunks]
    last = metrics[name]
    print(f"{name:7s} frames {int(last['frames'][0, -1]):6d}   return {np.nanmean(last['return'][:, -1]):7.1f}"
          f"   actor dormant first chunk {last['actor_dormant'][:, 0].mean():.3f}, last {last['actor_dormant'][:, -1].mean():.3f}")"""),
    new_code_cell("""fig = Figure(figsize=(10, 3.6))
for j, (key, label) in enumerate((("return", "training episode return"), ("actor_dormant", "actor dormant ratio"))):
    ax = fig.add_subplot(1, 2, j + 1)
    for name, m in metrics.items():
        mean, std = np.nanmean(m[key], 0), np.nanstd(m[key], 0)
        ax.plot(m["frames"][0], mean, "o-", label=f"{name} ({NUM_SEEDS} seeds)")
        ax.fill_between(m["frames"][0], mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("env frames")
    ax.set_ylabel(label)
    ax.set_title(TASK)
    ax.legend()
fig.tight_layout()
fig.savefig("drm_curves.png", dpi=110)
display(Image("drm_curves.png"))"""),
]


if __name__ == "__main__":
    write(CELLS, "drm.ipynb")
