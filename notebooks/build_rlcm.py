"""Writes notebooks/rlcm.ipynb (outputs cleared). Edit this file, not the notebook, then run
`python notebooks/build_rlcm.py`.

Every notebook in notebooks/ has a code cell tagged `parameters` (papermill's convention) that
sets at least BUDGET and NUM_SEEDS; tests/test_notebooks.py runs each one with tiny values
injected after that cell. Here BUDGET counts steps of the denoising MDP per seed (an image made
in H sampler steps is H steps), the generator's counterpart of env steps.
"""
from nbformat.v4 import new_code_cell, new_markdown_cell

from nbbuild import write

CELLS = [
    new_markdown_cell("""# RLCM: RL fine-tuning of a consistency model on 8x8 digits

Fine-tunes our small class-conditional consistency model (distilled from our diffusion model, both
trained by `jaxrl.models.pretrain` and cached by content hash) with `jaxrl.algos.rlcm` on `NUM_SEEDS`
vmapped seeds, then shows image grids (one column per asked digit) before and after fine-tuning, and
the reward curve. The first run trains and caches the pretrained networks (a minute or two on a CPU).

The next cell holds the parameters (tagged `parameters` for papermill:
`papermill rlcm.ipynb out.ipynb -p REWARD compressibility`). BUDGET counts steps of the denoising MDP
per seed: an image sampled in `STEPS` consistency steps is `STEPS` steps."""),
    new_code_cell("""BUDGET = 32_768  # MDP steps per seed (samples x STEPS)
NUM_SEEDS = 3
REWARD = "aesthetic"  # or "compressibility", "incompressibility", "prompt_alignment", ...
STEPS = 8  # consistency sampler steps (H)
SEED = 0""", metadata={"tags": ["parameters"]}),
    new_code_cell("""import jax
import jax.numpy as jnp
import numpy as np
from IPython.display import Image, display
from matplotlib.figure import Figure

from jaxrl import plot
from jaxrl.algos import rlcm
from jaxrl.core.run import RunOptions, run
from jaxrl.models import pretrain

samples = max(64, BUDGET // STEPS // 64 * 64)
config = rlcm.Config(reward=REWARD, num_inference_steps=STEPS, total_samples=samples, num_chunks=min(8, samples // 64))
print("pretrained weights:", config.pretrained_hash)
result = run(rlcm.make_train(config), RunOptions(num_seeds=NUM_SEEDS, seed=SEED, progress=False))
print(f"{NUM_SEEDS} seeds x {int(result.metrics['samples'][-1, 0]):,} samples")
print("reward, first chunk:", np.round(result.metrics["reward"][0], 3))
print("reward, last chunk: ", np.round(result.final("reward"), 3))"""),
    new_markdown_cell("## Before and after\nThe same noise and prompts (digits 0..9, one per column) through the "
                      "pretrained model and through seed 0's fine-tuned model."),
    new_code_cell("""prompts = jnp.tile(jnp.arange(10), 4)
key = jax.random.PRNGKey(SEED)
generate = jax.jit(lambda params, key, prompts: rlcm.make_generate(config, params)(key, prompts))  # one compile
before = generate(pretrain.resolve(config.pretrained_hash, config.pretrain_seed).consistency, key, prompts)
after = generate(jax.tree.map(lambda x: x[0], result.carry.params), key, prompts)

def grid(images):
    rows = np.asarray(images).reshape(4, 10, 8, 8)
    return np.pad(rows, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-1).transpose(0, 2, 1, 3).reshape(40, 100)

fig = Figure(figsize=(10, 4.6))
for ax, images, title in zip(fig.subplots(1, 2), (before, after), ("pretrained", f"after RLCM ({REWARD})")):
    ax.imshow(grid(images), cmap="gray", vmin=-1, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.savefig("rlcm_grids.png", dpi=100, bbox_inches="tight")
display(Image("rlcm_grids.png"))"""),
    new_markdown_cell("## Reward curve\nMean over seeds with a 95% bootstrap CI, against samples per seed."),
    new_code_cell("""plot.learning_curves({"RLCM": {k: result.metrics[k] for k in ("samples", "reward")}}, x="samples", y="reward",
                     title=f"RLCM, {STEPS} steps, {REWARD}, {NUM_SEEDS} seeds", path="rlcm_curve.png")
display(Image("rlcm_curve.png"))"""),
]


if __name__ == "__main__":
    write(CELLS, "rlcm.ipynb")
