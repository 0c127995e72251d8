"""The denoising MDP of a small class-conditional image generator (RLCM, DDPO): data, prompts,
the noise schedule and the samplers' Gaussian steps, and the rewards.

- `data`: scikit-learn's 8x8 digits (shipped with the package, no download), scaled to [-1, 1].
- `prompts`: a prompt is a digit class 0..9; `check_prompts` rejects anything else.
- `denoising`: the DDPM noise schedule, the timestep grids of a DDIM sampler and of a multistep
  consistency sampler, each sampler step as a Gaussian policy (mean, std), and its log-density.
- `rewards`: compressibility / incompressibility (PNG bytes through Pillow, or a jittable proxy),
  a learned "aesthetic" score and prompt alignment, chosen by name with `make_reward`.

Nothing here imports jaxrl: the networks that the samplers and the learned rewards run are passed
in as functions (jaxrl.models.generative defines and trains them).
"""
from envs.generative import data, denoising, prompts, rewards
from envs.generative.prompts import NUM_CLASSES, check_prompts
from envs.generative.rewards import REWARDS, make_reward

__all__ = ["data", "denoising", "prompts", "rewards", "NUM_CLASSES", "check_prompts", "REWARDS", "make_reward"]
