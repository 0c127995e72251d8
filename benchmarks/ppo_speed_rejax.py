"""Worker of `benchmarks.ppo_speed`: times rejax 0.1.3's PPO in the venv that has it (gymnax 0.0.9).

Run from the repo root by `ppo_speed` as `<venv python> -m benchmarks.ppo_speed_rejax --seeds 1 64`;
prints one JSON line: a list of rows in `ppo_speed.result_row`'s shape.
"""
from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from rejax import PPO
from rejax.evaluate import evaluate

from benchmarks.common import batched, time_program
from benchmarks.ppo_speed import EVAL_EPISODES, result_row


def make_algo(total_timesteps: int) -> PPO:
    algo = PPO.create(
        env="CartPole-v1", total_timesteps=total_timesteps, eval_freq=total_timesteps,
        skip_initial_evaluation=True, num_envs=4, num_steps=128, num_epochs=4, num_minibatches=4,
        learning_rate=2.5e-4, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
        ent_coef=0.01, vf_coef=0.5, agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
    )
    # time training only: the in-training evaluation becomes a no-op
    return algo.replace(eval_callback=lambda algo, ts, rng: jnp.float32(0.0))


def time_rejax(total_timesteps: int, seeds: int, repeats: int) -> dict:
    algo = make_algo(total_timesteps)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    compile_s, train_s, (ts, _) = time_program(*batched(algo.train, keys), repeats)
    if seeds == 1:
        ts = jax.tree.map(lambda x: x[None], ts)

    def final_return(ts, key):
        _, returns = evaluate(algo.make_act(ts), key, algo.env, algo.env_params, EVAL_EPISODES)
        return returns.mean()

    returns = jax.jit(jax.vmap(final_return))(ts, jax.random.split(jax.random.PRNGKey(1), seeds))
    steps = int(np.asarray(ts.global_step)[0])
    return result_row("rejax", seeds, steps, compile_s, train_s, np.asarray(returns))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--total-timesteps", type=int, required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    rows = [time_rejax(args.total_timesteps, n, args.repeats) for n in args.seeds]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
