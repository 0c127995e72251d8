"""What the offline learners (td3_bc, iql, cql) share: the dataset on the device, minibatch sampling,
evaluation in the env with D4RL-normalised scores, and the seeds x datasets sweep.

A learner is two pure functions of the dataset, `init(key, data)` and `update(carry, data)`:
`trainer(...)` closes them over one dataset (one device copy, shared by every vmapped seed, since
the seed vmap does not touch it); `sweep(...)` stacks datasets of equal shapes and vmaps over them
as an argument, seeds inside, so seeds x datasets is one XLA program.

The device dataset stores observations already normalised ((s - mean) / std over the dataset's
observations, if asked) and actions rescaled from the env's bounds to [-1, 1], so every policy
acts in [-1, 1] (tanh) and `env_action` maps back for the env.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs.datasets import Dataset, DatasetError, load
from jaxrl.core.buffer import Buffer, buffer_add_if, buffer_sample
from jaxrl.core.evaluate import evaluate
from jaxrl.core.run import seed_keys
from jaxrl.core.train import Trainer


class OfflineData(NamedTuple):
    observations: jax.Array  # [N, *obs] normalised
    actions: jax.Array  # [N, A] in [-1, 1]
    rewards: jax.Array  # [N] scaled by reward_scale
    next_observations: jax.Array  # [N, *obs] normalised
    terminals: jax.Array  # [N] float 0/1
    obs_mean: jax.Array  # [*obs]
    obs_std: jax.Array  # [*obs]
    ref_min: jax.Array  # () reference random return (NaN: none)
    ref_max: jax.Array  # () reference expert return
    reward_scale: jax.Array  # () the factor `rewards` carry (online transitions are scaled by it too)


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminal: jax.Array


class Learner(NamedTuple):
    """`init(key, data) -> carry`, `update(carry, data) -> (carry, metrics)`: one chunk of updates."""

    init: Callable[[jax.Array, OfflineData], Any]
    update: Callable[[Any, OfflineData], tuple[Any, dict]]


# ----------------------------------------------------------------------------------- the dataset


def resolve_dataset(config, dataset: Dataset | None) -> tuple[Dataset, envs.EnvSpec]:
    """The dataset a config trains on, validated against its eval env, with `config.dataset_hash`
    checked. `dataset` (in memory) wins over `config.dataset` (a path, see envs.datasets.load)."""
    if dataset is None:
        if not config.dataset:
            raise ValueError("dataset: give a dataset path (.npz, .hdf5, a Minari directory; "
                             "`python -m jaxrl.datasets.generate` makes some) or pass dataset= to make_train")
        if not os.path.exists(config.dataset):
            raise ValueError(f"dataset={config.dataset!r}: no such file or directory")
        dataset = load(config.dataset)
    env = config.env or dataset.env
    if not env:
        raise ValueError(f"env: the dataset {dataset.source or config.dataset!r} names no env to evaluate in; set --env")
    spec = envs.spec(env)
    dataset.validate(spec)
    digest = dataset.content_hash()
    if config.dataset_hash and config.dataset_hash != digest:
        raise ValueError(f"dataset_hash={config.dataset_hash!r} but the dataset's content hash is {digest!r}: "
                         "this is not the data the config (or checkpoint) was trained on")
    return dataset, spec


def reward_scale(ds: Dataset, mode: str) -> float:
    """"none": 1; "returns": 1000 / (max - min episode return) over the dataset's episodes (IQL's
    locomotion normalisation, Kostrikov et al. 2022)."""
    if mode == "none":
        return 1.0
    if mode == "returns":
        ret = ds.episode_returns()
        span = float(ret.max() - ret.min()) if ret.size else 0.0
        if not span > 0:
            raise DatasetError("'rewards': reward normalisation by the return range needs episodes with "
                               "different returns; use reward normalisation 'none'")
        return 1000.0 / span
    raise ValueError(f"reward normalisation must be 'none' or 'returns', got {mode!r}")


def device_data(ds: Dataset, spec: envs.EnvSpec, *, normalize_obs: bool, reward_norm: str = "none",
                obs_eps: float = 1e-3) -> OfflineData:
    """The dataset as float32 device arrays: observations normalised (if asked), actions in [-1, 1]."""
    obs = np.asarray(ds.observations, np.float64)
    nxt = np.asarray(ds.next_observations, np.float64)
    if normalize_obs:
        mean, std = obs.mean(0), obs.std(0) + obs_eps
    else:
        mean, std = np.zeros(ds.obs_shape), np.ones(ds.obs_shape)
    low, high = spec.low().astype(np.float64), spec.high().astype(np.float64)
    actions = np.clip(2.0 * (np.asarray(ds.actions, np.float64) - low) / (high - low) - 1.0, -1.0, 1.0)
    f32 = lambda x: jnp.asarray(np.asarray(x, np.float32))
    scale = reward_scale(ds, reward_norm)
    return OfflineData(
        f32((obs - mean) / std), f32(actions), f32(np.asarray(ds.rewards, np.float64) * scale),
        f32((nxt - mean) / std), f32(np.asarray(ds.terminals, bool)), f32(mean), f32(std),
        jnp.float32(np.float32(ds.ref_min_score)), jnp.float32(np.float32(ds.ref_max_score)), jnp.float32(scale))


def sample(data: OfflineData, key, batch_size: int) -> Batch:
    """`batch_size` transitions drawn uniformly with replacement."""
    idx = jax.random.randint(key, (batch_size,), 0, data.rewards.shape[0])
    return Batch(data.observations[idx], data.actions[idx], data.rewards[idx], data.next_observations[idx],
                 data.terminals[idx])


def sample_with_online(data: OfflineData, buf: Buffer, key, batch_size: int) -> Batch:
    """A minibatch drawn uniformly with replacement from the dataset and the online buffer together:
    each row is the online buffer's with probability size / (n_dataset + size), else the dataset's
    (the dataset's rows are those of sample(data, key), so with an empty buffer this is it). IQL's
    fine-tuning and RO2O's `mix_offline`."""
    k_online, k_pick = jax.random.split(jax.random.fold_in(key, 1))
    from_data, from_online = sample(data, key, batch_size), buffer_sample(buf, k_online, batch_size)
    n = data.rewards.shape[0]
    online = jax.random.uniform(k_pick, (batch_size,)) * (n + buf.size) >= n
    pick = lambda o, d: jnp.where(online.reshape((-1,) + (1,) * (d.ndim - 1)), o, d)
    return jax.tree.map(pick, from_online, from_data)


def env_action(spec: envs.EnvSpec, action):
    """A policy action in [-1, 1] mapped to the env's bounds."""
    low, high = jnp.asarray(spec.low()), jnp.asarray(spec.high())
    return low + 0.5 * (jnp.clip(action, -1.0, 1.0) + 1.0) * (high - low)


def online_step(venv, env_params, spec: envs.EnvSpec, data: OfflineData, env_state, raw_obs, buffer, act, keys,
                write):
    """One env step of `act(norm_obs, key) -> [-1, 1] action` from the raw observation `raw_obs` [1, *obs],
    stored in `buffer` (normalised obs, rewards times data.reward_scale, time limits non-terminal) and
    the env advanced only if `write` (RO2O's and IQL's fine-tuning; offline iterations step nothing).
    `keys`: (action key, env key). Returns (buffer, env_state, raw_obs, the return of an episode that
    ended in this written step, else NaN)."""
    k_act, k_env = keys
    norm_obs = (raw_obs - data.obs_mean) / data.obs_std
    action = act(norm_obs, k_act)
    next_obs, new_state, reward, term, _, info = venv.step(k_env[None], env_state, env_action(spec, action), env_params)
    final = (info["final_observation"] - data.obs_mean) / data.obs_std
    t = Batch(norm_obs[0], action[0], reward[0] * data.reward_scale, final[0], term[0].astype(jnp.float32))
    keep = lambda new, old: jnp.where(write, new, old)
    ret = jnp.where(write & info["episode_done"][0], info["episode_return"][0], jnp.nan)
    return buffer_add_if(buffer, t, write), jax.tree.map(keep, new_state, env_state), keep(next_obs, raw_obs), ret


def make_evaluate(spec: envs.EnvSpec, num_episodes: int):
    """`evaluate(policy, key, data) -> {"return", "normalized_score"}`: the mean return of
    `num_episodes` episodes (each to its end or the time limit) of `policy(norm_obs) -> [-1, 1] action`
    in the dataset's env, and its D4RL score 100 (R - ref_min) / (ref_max - ref_min). NaN when
    num_episodes is 0."""
    if num_episodes == 0:
        return lambda policy, key, data: {"return": jnp.float32(jnp.nan), "normalized_score": jnp.float32(jnp.nan)}
    env, env_params = envs.make(spec.name)

    def run(policy, key, data: OfflineData):
        def act(obs, _key):
            return env_action(spec, policy((obs - data.obs_mean) / data.obs_std))

        ret, _ = evaluate(env, env_params, act, key, num_episodes, spec.max_steps)
        score = 100.0 * (ret - data.ref_min) / (data.ref_max - data.ref_min)
        return {"return": ret, "normalized_score": score}

    return run


# ----------------------------------------------------------------------------------- running


def trainer(learner: Learner, data: OfflineData, num_chunks: int) -> Trainer:
    """A Trainer over one dataset, closed over (not carried: one copy for all vmapped seeds)."""
    return Trainer(lambda key: learner.init(key, data), lambda carry: learner.update(carry, data),
                   num_chunks, score="normalized_score", progress="updates")


def stack(datas: Sequence[OfflineData]) -> OfflineData:
    """Datasets of equal shapes stacked on a leading dataset axis (a ValueError names the field that differs)."""
    if not datas:
        raise ValueError("stack needs at least one dataset")
    for i, d in enumerate(datas[1:], 1):
        for name, a, b in zip(OfflineData._fields, datas[0], d):
            if a.shape != b.shape:
                raise ValueError(f"datasets of one sweep need equal shapes: {name} of dataset {i} is {b.shape}, "
                                 f"of dataset 0 {a.shape} (subsample them to a common size)")
    return jax.tree.map(lambda *x: jnp.stack(x), *datas)


def prepare_sweep(config, datasets: Sequence[Dataset], **device_kw) -> tuple[envs.EnvSpec, list[OfflineData]]:
    """Validate datasets for one sweep (one eval env for all) and put each on the device."""
    if not datasets:
        raise ValueError("a sweep needs at least one dataset")
    pairs = [resolve_dataset(config, d) for d in datasets]
    names = {spec.name for _, spec in pairs}
    if len(names) > 1:
        raise ValueError(f"datasets of one sweep must share one env to evaluate in, got {sorted(names)}")
    spec = pairs[0][1]
    return spec, [device_data(d, spec, **device_kw) for d, _ in pairs]


def sweep(learner: Learner, datas: Sequence[OfflineData], num_chunks: int, num_seeds: int, seed: int = 0):
    """Seeds x datasets as one jitted program: the dataset axis is a vmapped argument, the seed axis
    vmapped inside it (every seed of a dataset reads the same copy). Seed i uses
    fold_in(PRNGKey(seed), i), as `jaxrl.core.run`. Returns (carry, metrics) with metrics
    [datasets, seeds, chunks]."""
    return sweep_program(learner, num_chunks)(seed_keys(seed, num_seeds), stack(datas))


def sweep_program(learner: Learner, num_chunks: int):
    """`sweep`'s jitted program, (keys [seeds], stacked data) -> (carry, metrics): apart, so that a
    benchmark can compile it ahead (`.lower(...).compile()`) and time compile and run apart."""

    def one(key, d):
        carry = learner.init(key, d)
        return jax.lax.scan(lambda c, _: learner.update(c, d), carry, None, num_chunks)

    return jax.jit(jax.vmap(jax.vmap(one, (0, None)), (None, 0)))


def updates_per_chunk(total_updates: int, num_chunks: int, multiple: int = 1) -> int:
    """Updates in one chunk: total_updates / num_chunks rounded up to a multiple of `multiple`."""
    return multiple * math.ceil(total_updates / num_chunks / multiple)


def main(config_cls, make_train: Callable, argv: Sequence[str] | None = None):
    """The offline learners' command line: `jaxrl.core.cli`'s, with `dataset_hash` filled in from the
    dataset (so the run's config and checkpoints record which data they trained on)."""
    import dataclasses

    from jaxrl.core import cli

    data = {}

    def prepare(cfg):
        data["ds"], _ = resolve_dataset(cfg, None)
        cfg = dataclasses.replace(cfg, dataset_hash=data["ds"].content_hash())
        return cfg, make_train(cfg, data["ds"])

    def footer(cfg, result):
        ds = data["ds"]
        if ds.approximate_score:
            return (f"(approximate: {ds.source}'s reference scores come from MuJoCo, the evaluation ran in "
                    f"{cfg.env or ds.env})")
        return None

    return cli.main(config_cls, make_train, argv, prepare=prepare, footer=footer)
