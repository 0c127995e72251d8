"""Worker of `benchmarks.offpolicy_speed`: rejax 0.1.3's SAC or TD3 in the venv that has it
(gymnax 0.0.9), with the settings of `offpolicy_speed.COMMON`.

Started from the repo root by `ppo_speed.WorkerRunner` as
`<venv python> -m benchmarks.offpolicy_speed_rejax --total-timesteps T --seeds 1 16 --algo sac`;
compiles one program per seed count, then runs them one at a time when asked over stdin
(`ppo_speed.serve`).
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from rejax import SAC, TD3
from rejax.evaluate import evaluate

from benchmarks.common import batched, with_seed_axis
from benchmarks.offpolicy_speed import ALGOS, COMMON, EVAL_EPISODES, Runner
from benchmarks.ppo_speed import serve


def make_algo(algo: str, total_timesteps: int):
    common = dict(
        env=COMMON["env"], total_timesteps=total_timesteps, eval_freq=total_timesteps, skip_initial_evaluation=True,
        num_envs=COMMON["num_envs"], num_epochs=1, batch_size=COMMON["batch_size"], buffer_size=COMMON["buffer_size"],
        fill_buffer=COMMON["learning_starts"], learning_rate=1e-3, gamma=COMMON["gamma"], polyak=1.0 - COMMON["tau"],
    )
    if algo == "sac":  # log-std range (-10, 2) and target entropy -|A| are rejax's own for continuous actions
        agent = SAC.create(**common, hidden_layer_sizes=COMMON["hidden"], agent_kwargs={"activation": COMMON["activation"]})
    else:  # TD3's networks are 64x64 in rejax 0.1.3 (not configurable); noise in action units
        agent = TD3.create(**common, policy_delay=2, exploration_noise=0.2, target_noise=0.4, target_noise_clip=1.0,
                           actor_kwargs={"activation": COMMON["activation"]},
                           critic_kwargs={"activation": COMMON["activation"]})
    # time training only: the in-training evaluation becomes a no-op
    return agent.replace(eval_callback=lambda algo, ts, rng: jnp.float32(0.0))


def rejax_program(algo: str, total_timesteps: int, seeds: int):
    """`(fn, args, finish)` in the shape of `offpolicy_speed.jaxrl_program`."""
    agent = make_algo(algo, total_timesteps)
    fn, args = batched(agent.train, jax.random.split(jax.random.PRNGKey(0), seeds))

    def final_return(ts, key):
        _, returns = evaluate(agent.make_act(ts), key, agent.env, agent.env_params, EVAL_EPISODES)
        return returns.mean()

    def finish(out):
        ts = with_seed_axis(out[0], seeds)
        returns = jax.jit(jax.vmap(final_return))(ts, jax.random.split(jax.random.PRNGKey(1), seeds))
        steps = int(np.asarray(ts.global_step)[0])
        # one update per env step once the step count exceeds fill_buffer
        return steps, np.asarray(returns).tolist(), steps - COMMON["learning_starts"]

    return fn, args, finish


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--total-timesteps", type=int, required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--algo", choices=ALGOS, required=True)
    args = p.parse_args(argv)
    serve(Runner(rejax_program, args.algo, args.total_timesteps, args.seeds))


if __name__ == "__main__":
    main()
