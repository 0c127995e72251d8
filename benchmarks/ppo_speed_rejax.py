"""Worker of `benchmarks.ppo_speed`: rejax 0.1.3's PPO in the venv that has it (gymnax 0.0.9).

Started from the repo root by `ppo_speed.WorkerRunner` as
`<venv python> -m benchmarks.ppo_speed_rejax --total-timesteps T --seeds 1 64`; compiles one program
per seed count, then runs them one at a time when asked over stdin (`ppo_speed.serve`).
"""
from __future__ import annotations

import argparse

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from rejax import PPO
from rejax.evaluate import evaluate

from benchmarks.common import batched, with_seed_axis
from benchmarks.ppo_speed import EVAL_EPISODES, SCHEDULES, Runner, serve


def make_algo(total_timesteps: int, schedule: str = "constant") -> PPO:
    """rejax's PPO with the PureJaxRL CartPole config. "linear": the learning rate decays to 0 over
    the run's gradient steps (ceil(T / 512) updates x 4 epochs x 4 minibatches, as jaxrl's), given
    as an optax schedule where rejax passes its learning rate to optax.adam (the algo is a closure
    constant of the jitted train, not a traced argument, so a callable works there)."""
    algo = PPO.create(
        env="CartPole-v1", total_timesteps=total_timesteps, eval_freq=total_timesteps,
        skip_initial_evaluation=True, num_envs=4, num_steps=128, num_epochs=4, num_minibatches=4,
        learning_rate=2.5e-4, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
        ent_coef=0.01, vf_coef=0.5, agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
    )
    if schedule == "linear":
        algo = algo.replace(learning_rate=optax.linear_schedule(2.5e-4, 0.0, math.ceil(total_timesteps / 512) * 16))
    # time training only: the in-training evaluation becomes a no-op
    return algo.replace(eval_callback=lambda algo, ts, rng: jnp.float32(0.0))


def rejax_program(total_timesteps: int, seeds: int, schedule: str = "constant"):
    """`(fn, args, finish)` in the shape of `ppo_speed.jaxrl_program`."""
    algo = make_algo(total_timesteps, schedule)
    fn, args = batched(algo.train, jax.random.split(jax.random.PRNGKey(0), seeds))

    def final_return(ts, key):
        _, returns = evaluate(algo.make_act(ts), key, algo.env, algo.env_params, EVAL_EPISODES)
        return returns.mean()

    def finish(out):
        ts = with_seed_axis(out[0], seeds)
        returns = jax.jit(jax.vmap(final_return))(ts, jax.random.split(jax.random.PRNGKey(1), seeds))
        return int(np.asarray(ts.global_step)[0]), np.asarray(returns).tolist()

    return fn, args, finish


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--total-timesteps", type=int, required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--schedule", choices=SCHEDULES, default="constant")
    args = p.parse_args(argv)
    serve(Runner(functools.partial(rejax_program, schedule=args.schedule), args.total_timesteps, args.seeds))


if __name__ == "__main__":
    main()
