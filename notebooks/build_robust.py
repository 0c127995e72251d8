"""Writes notebooks/robust.ipynb (outputs cleared). Edit this file, not the notebook, then run
`python notebooks/build_robust.py`.

Every notebook in notebooks/ has a code cell tagged `parameters` (papermill's convention) that
sets at least BUDGET (env steps per seed) and NUM_SEEDS; tests/test_notebooks.py runs each one
with tiny values injected after that cell.
"""
from nbformat.v4 import new_code_cell, new_markdown_cell

from nbbuild import write

CELLS = [
    new_markdown_cell("""# Robust RL: a worst case over an uncertainty set in one vmap

A CartPole policy trained on the nominal pole (length 0.5, mass 0.1) may fall when the pole is
longer or heavier. Here the dynamics parameters live in the env params, so a whole grid over an
uncertainty set is one batched program (`envs.robust`, `jaxrl.core.robust_eval`):

1. **PPO** on the nominal pole and **RARL** (Pinto et al. 2017: a protagonist against an adversary
   that pushes on the cart, alternating updates) train for the same number of env steps, `NUM_SEEDS`
   seeds vmapped;
2. each policy's return over a grid of pole length x pole mass, both end points included: the worst
   case and the average, drawn as heat maps;
3. **policy smoothing** (Kumar et al. 2022): the RARL policy acting on noisy observations, and the
   certified lower bound on its expected return against any observation attack of a given budget.

`benchmarks/robust.py` compares QARL and IWOCS too. The next cell holds the parameters (tagged
`parameters` for papermill: `papermill robust.ipynb out.ipynb -p BUDGET 50000`)."""),
    new_code_cell("""BUDGET = 200_000  # env steps per seed and method (RARL: both players' steps)
NUM_SEEDS = 4
SEED = 0
GRID = 10  # points per parameter
SET = (("length", 0.25, 2.5), ("masspole", 0.05, 1.0))""", metadata={"tags": ["parameters"]}),
    new_code_cell("""import jax
import numpy as np
from IPython.display import Image, display
from matplotlib.figure import Figure

from envs.robust import UncertaintySet, make_robust
from jaxrl.algos import policy_smoothing, ppo, rarl
from jaxrl.core.robust_eval import grid_returns, heatmap

uset = UncertaintySet("CartPole-v1", SET)
env, params = make_robust("CartPole-v1")
keys = jax.random.split(jax.random.key(SEED), NUM_SEEDS)
small = dict(num_envs=8, num_steps=64, num_minibatches=4, hidden=(32, 32), num_chunks=1)


def robust_returns(policy):
    \"\"\"Mean return of 2 episodes at every grid point, one vmapped call.\"\"\"
    return grid_returns(env, params, uset, uset.grid(GRID), policy, jax.random.key(1), 2, 500).returns"""),
    new_markdown_cell("## Train PPO (nominal) and RARL, evaluate over the set"),
    new_code_cell("""ppo_cfg = ppo.Config(total_timesteps=BUDGET, **small)
rarl_cfg = rarl.Config(total_timesteps=BUDGET, **small)
ppo_returns = np.asarray(jax.jit(jax.vmap(
    lambda k: robust_returns(ppo.make_policy(ppo_cfg, ppo.make_train(ppo_cfg).train(k)[0]))))(keys))
rarl_carry = jax.jit(jax.vmap(lambda k: rarl.make_train(rarl_cfg).train(k)[0]))(keys)
rarl_returns = np.asarray(jax.jit(jax.vmap(lambda c: robust_returns(rarl.make_policy(rarl_cfg, c.pro))))(rarl_carry))
for name, r in (("PPO nominal", ppo_returns), ("RARL", rarl_returns)):
    print(f"{name:12s} worst {r.min(1).mean():6.1f} +- {r.min(1).std():5.1f}   average {r.mean(1).mean():6.1f}")"""),
    new_code_cell("""fig = Figure(figsize=(10, 3.8))
for i, (name, r) in enumerate((("PPO nominal", ppo_returns), ("RARL", rarl_returns))):
    heatmap(uset, GRID, r.mean(0), ax=fig.add_subplot(1, 2, i + 1), title=f"{name}, mean of {NUM_SEEDS} seeds")
fig.tight_layout()
fig.savefig("robust_heatmaps.png", dpi=110)
display(Image("robust_heatmaps.png"))"""),
    new_markdown_cell("""## Certified return of the smoothed RARL policy

The smoothed policy acts on o + N(0, σ²I). From n clean smoothed episodes, `certified_reward` bounds its
expected return under any adaptive attack whose perturbations total at most B = ε √500 in ℓ2 norm,
with 95% confidence."""),
    new_code_cell("""ps_cfg = policy_smoothing.Config(hidden=(32, 32))
pro = jax.tree.map(lambda x: x[0], rarl_carry.pro)  # seed 0
fig = Figure(figsize=(5, 3.5))
ax = fig.add_subplot(1, 1, 1)
epsilons = np.linspace(0.0, 0.1, 6)
for sigma in (0.1, 0.2, 0.4):
    rets = policy_smoothing.smoothed_returns(ps_cfg, pro, jax.random.key(2), 200, sigma)
    certs = [float(policy_smoothing.certified_reward(rets, sigma, policy_smoothing.budget(e, 500))) for e in epsilons]
    ax.plot(epsilons, certs, "o-", label=f"σ {sigma} (smoothed return {float(rets.mean()):.0f})")
ax.set_xlabel("per-step ℓ2 budget ε")
ax.set_ylabel("certified expected return")
ax.legend(fontsize=8)
fig.savefig("certificates.png", dpi=110, bbox_inches="tight")
display(Image("certificates.png"))"""),
]


if __name__ == "__main__":
    write(CELLS, "robust.ipynb")
