"""What seed blocks cost: PPO CartPole-v1 env-steps/s through `run` with seeds vmapped in blocks of
G (seed i's result independent of the number of seeds) against all seeds vmapped at once
(`block_size=0`, the fastest, without that promise), at 1, 16 and 64 seeds on the devices this
process has. Compile time is excluded (one warm-up run per setting); settings alternate round by
round, and the best and median of the rounds are reported, with each block size's ratio to
all-at-once.

Run: `python -m benchmarks.seed_blocks [--seeds 1 16 64] [--blocks 0 1 4 8] [--total-timesteps 40960]`
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def measure(seeds=(1, 16, 64), blocks=(0, 1, 4, 8), total_timesteps=40_960, rounds=3) -> list[dict]:
    import jax

    from jaxrl.algos import ppo
    from jaxrl.core.run import RunOptions, run

    cfg = ppo.Config(total_timesteps=total_timesteps, num_chunks=1)
    trainer = ppo.make_train(cfg)
    times: dict[tuple, list] = {}
    settings = [(n, g) for n in seeds for g in blocks]
    for n, g in settings:  # warm-up: compile every program once
        run(trainer, RunOptions(num_seeds=n, block_size=g, progress=False))
    for r in range(rounds):
        for n, g in (settings if r % 2 == 0 else settings[::-1]):
            t0 = time.perf_counter()
            res = run(trainer, RunOptions(num_seeds=n, block_size=g, progress=False))
            jax.block_until_ready(res.carry)
            times.setdefault((n, g), []).append(time.perf_counter() - t0)
    rows = []
    steps = cfg.updates_per_chunk * cfg.batch_size
    for n, g in settings:
        best, med = min(times[(n, g)]), float(np.median(times[(n, g)]))
        base_best, base_med = min(times[(n, 0)]), float(np.median(times[(n, 0)]))
        rows.append({"benchmark": "seed_blocks", "devices": jax.device_count(), "seeds": n,
                     "block_size": g or "all", "env_steps_per_s_best": round(n * steps / best),
                     "env_steps_per_s_median": round(n * steps / med),
                     "cost_best": round(best / base_best, 2), "cost_median": round(med / base_med, 2)})
    return rows


def suite(scale: str, skip_peers: bool = False) -> list[dict]:
    if scale == "ci":
        return measure(seeds=(1, 3), blocks=(0, 2), total_timesteps=2048, rounds=1)
    return measure()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--blocks", type=int, nargs="+", default=[0, 1, 4, 8])
    p.add_argument("--total-timesteps", type=int, default=40_960)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    for row in measure(a.seeds, a.blocks, a.total_timesteps, a.rounds):
        print(row)


if __name__ == "__main__":
    main()
