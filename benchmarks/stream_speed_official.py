"""Worker of `benchmarks/stream_speed.py`: times the OFFICIAL PyTorch Stream AC(lambda)
(mohmdelsayed/streaming-drl, `stream_ac_discrete.py`) for one seed and prints one JSON line.

It runs in a venv of its own that has torch and gymnasium (not jaxrl's), e.g.

    git clone https://github.com/mohmdelsayed/streaming-drl .stream-x-official
    python -m venv .bench-venv-torch && .bench-venv-torch/bin/pip install torch==2.13.0 gymnasium
    .bench-venv-torch/bin/python benchmarks/stream_speed_official.py --repo .stream-x-official --steps 20000

and imports only the standard library, numpy, torch, gymnasium and the official repo's modules.
The learner is the official `StreamAC` class (its networks, ObGD optimisers and `update_params`)
behind the official wrapper stack of its `main` (FlattenObservation, RecordEpisodeStatistics,
ScaleReward, NormalizeObservation, AddTimeInfo; `max_episode_steps=10_000`) with its default
hyperparameters. The loop around it is ours, not the script's `main`, because the script reads
the episode return as `info['episode']['r'][0]`, which fails on current gymnasium (the value is a
plain float there); we read it as a float whatever its shape. The
loop does what `main` does per step: sample, step, update, reset at the end of an episode.

The first `--warmup` steps are run but not timed; the clock covers the next `--steps` steps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time


def episode_return(info) -> float:
    """The return RecordEpisodeStatistics reports, as a float (a 1-element array on old gymnasium,
    a plain float on current gymnasium)."""
    import numpy as np

    return float(np.asarray(info["episode"]["r"]).reshape(-1)[0])


def run(repo: str, env_name: str, steps: int, warmup: int, seed: int, threads: int | None) -> dict:
    import gymnasium as gym
    import numpy as np
    import torch

    repo = os.path.abspath(repo)
    sys.path.insert(0, repo)  # the official modules import each other by bare name
    import stream_ac_discrete as official
    from normalization_wrappers import NormalizeObservation, ScaleReward
    from time_wrapper import AddTimeInfo

    if threads:
        torch.set_num_threads(threads)
    # the official script's defaults (argparse of stream_ac_discrete.py)
    hp = dict(lr=1.0, gamma=0.99, lamda=0.8, kappa_policy=3.0, kappa_value=2.0)  # the official keyword spelling
    entropy_coeff = 0.01
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = gym.make(env_name, max_episode_steps=10_000)
    env = gym.wrappers.FlattenObservation(env)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = ScaleReward(env, gamma=hp["gamma"])
    env = NormalizeObservation(env)
    env = AddTimeInfo(env)
    agent = official.StreamAC(n_obs=env.observation_space.shape[0], n_actions=env.action_space.n, **hp)

    returns = []
    s, _ = env.reset(seed=seed)
    t0 = None
    for t in range(warmup + steps):
        if t == warmup:
            t0 = time.perf_counter()
        a = agent.sample_action(s)
        s_next, r, terminated, truncated, info = env.step(a)
        done = terminated or truncated
        agent.update_params(s, a, r, s_next, done, entropy_coeff)
        s = s_next
        if done:
            returns.append((t + 1, episode_return(info)))
            s, _ = env.reset()
    train_s = time.perf_counter() - t0
    env.close()
    last = [ret for t, ret in returns if t > warmup + 0.9 * steps]
    return {
        "impl": "official",
        "seeds": 1,
        "env_steps": steps,
        "warmup_steps": warmup,
        "compile_s": None,
        "train_s": round(train_s, 3),
        "steps_per_s": round(steps / train_s),
        "final_return": round(float(np.mean(last)), 1) if last else None,
        "episodes": len(returns),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "gymnasium": gym.__version__,
        "python": platform.python_version(),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", required=True, help="checkout of mohmdelsayed/streaming-drl")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=20_000, help="env steps timed")
    p.add_argument("--warmup", type=int, default=500, help="env steps run before the clock starts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = p.parse_args(argv)
    if args.steps <= 0 or args.warmup < 0:
        p.error("--steps must be positive and --warmup >= 0")
    if not os.path.exists(os.path.join(args.repo, "stream_ac_discrete.py")):
        p.error(f"{args.repo!r} is not a checkout of mohmdelsayed/streaming-drl (no stream_ac_discrete.py)")
    row = run(args.repo, args.env, args.steps, args.warmup, args.seed, args.threads)
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
