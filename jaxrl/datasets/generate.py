"""Make D4RL-style datasets with our own agents (nothing is downloaded):

    python -m jaxrl.datasets.generate --env brax/halfcheetah --level medium
    python -m jaxrl.datasets.generate --env Pendulum-v1 --agent ppo --agent-steps 100000 --size 20000

trains a behaviour agent (or reuses the cached one), then writes the five D4RL levels
(Fu et al. 2020, "D4RL: Datasets for Deep Data-Driven Reinforcement Learning", section 5):

- random: uniformly random actions within the env's bounds;
- expert: the fully trained agent (the best of its snapshots);
- medium: the snapshot whose return is closest to 1/3 of the way from random to expert;
- medium-replay: what the agent saw while it trained up to the medium snapshot. With an agent
  whose carry holds a `jaxrl.core.buffer.Buffer` of obs/action/reward/next_obs/terminated fields,
  that buffer; otherwise (PPO; SAC, whose buffer holds packed rows) each training snapshot's
  policy rolled out for as many env steps as the agent trained with it;
- medium-expert: medium then expert, concatenated.

The behaviour policies act stochastically (as D4RL's SAC policies did). Each dataset's reference
returns for normalised scores are the random policy's and the expert's mean returns measured here,
in our simulator; `behavior_return` is the mean return of the dataset's complete episodes.

Everything lands in a cache directory (`--cache-dir`, else $JAXRL_CACHE, else
$XDG_CACHE_HOME/jaxrl or ~/.cache/jaxrl) under `datasets/<env>/<agent>-seed<seed>-<hash of the
settings>/`: `<level>.npz` per level, `agent/snapshot_<k>.npz` per training snapshot (the whole
agent carry: a checkpoint of each behaviour policy) and `manifest.json`. The same settings and seed
give the same files; a second call loads them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs.datasets import Dataset, concatenate, load, save
from jaxrl.core import config as C
from jaxrl.core.evaluate import evaluate

LEVELS = ("random", "medium", "expert", "medium-replay", "medium-expert")
AGENTS = ("sac", "ppo")


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of one generation (all but cache_dir and progress enter the cache key)."""

    env: str = "brax/halfcheetah"
    """env to generate in (an envs.make name with continuous actions)"""
    level: str = "all"
    """level to print the path of: random, medium, expert, medium-replay, medium-expert or all (all are written)"""
    agent: str = "sac"
    """behaviour agent: a jaxrl.algos module with Config, make_train, make_policy (sac, ppo)"""
    agent_steps: int = 0
    """env steps to train the agent; 0 = the agent's preset for this env"""
    snapshots: int = 20
    """agent training chunks; each ends in a saved snapshot (the candidates for medium)"""
    size: int = 1_000_000
    """transitions in the random, medium and expert datasets (medium-replay: up to this many)"""
    num_envs: int = 10
    """envs stepped side by side while collecting"""
    eval_episodes: int = 10
    """episodes to measure each snapshot's (stochastic) return"""
    medium_fraction: float = 1.0 / 3.0
    """medium = the snapshot closest to random + medium_fraction * (expert - random)"""
    seed: int = 0
    """seed of the agent's training and of every rollout"""
    cache_dir: str = ""
    """root of the cache; "" = $JAXRL_CACHE, else $XDG_CACHE_HOME/jaxrl, else ~/.cache/jaxrl"""
    progress: bool = True
    """show progress bars"""

    def __post_init__(self):
        for name in ("snapshots", "size", "num_envs", "eval_episodes"):
            C.check_positive(name, getattr(self, name))
        C.check_positive("agent_steps", self.agent_steps, allow_zero=True)
        C.check_range("medium_fraction", self.medium_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
        C.check_choice("level", self.level, LEVELS + ("all",))
        C.check_choice("agent", self.agent, AGENTS)
        if self.env not in envs.registered():
            envs.make(self.env)  # unknown-env error with close matches
        envs.spec(self.env).require("jaxrl.datasets.generate", discrete=False)

    def key(self) -> str:
        fields = {k: v for k, v in C.to_dict(self).items() if k not in ("cache_dir", "progress", "level")}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]

    def directory(self) -> str:
        root = self.cache_dir or os.environ.get("JAXRL_CACHE") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "jaxrl")
        return os.path.join(os.path.expanduser(root), "datasets", self.env.replace("/", "-"),
                            f"{self.agent}-seed{self.seed}-{self.key()}")


# ----------------------------------------------------------------------------- the agent


def agent_config(agent: str, env: str, steps: int, snapshots: int):
    """(module, Config) of the behaviour agent with its preset for `env` (`steps` > 0 overrides)."""
    try:
        mod = importlib.import_module(f"jaxrl.algos.{agent}")
    except ModuleNotFoundError as e:
        raise ValueError(f"agent {agent!r}: jaxrl.algos.{agent} is not available ({e}); try --agent ppo") from e
    for name in ("Config", "make_train", "make_policy"):
        if not hasattr(mod, name):
            raise ValueError(f"agent {agent!r}: jaxrl.algos.{agent} has no {name}")
    preset: dict = {"env": env, "num_chunks": snapshots}
    if agent == "ppo":
        if env == "Pendulum-v1":
            preset |= dict(mod.PENDULUM, total_timesteps=200_000)
        else:  # brax locomotion: longer rollouts, normalised observations and rewards
            preset |= dict(total_timesteps=5_000_000, num_envs=32, num_steps=64, update_epochs=4,
                           num_minibatches=8, lr=3e-4, ent_coef=0.0, hidden=(128, 128),
                           normalize_obs=True, normalize_reward=True)
    elif env == "Pendulum-v1" and hasattr(mod, "PENDULUM"):
        preset |= dict(mod.PENDULUM)
    else:
        preset |= getattr(mod, "PRESETS", {}).get(env, {})
    if steps:
        preset["total_timesteps"] = steps
    known = {f.name for f in dataclasses.fields(mod.Config)}
    return mod, mod.Config(**{k: v for k, v in preset.items() if k in known})


def _save_carry(path: str, carry) -> None:
    leaves = jax.tree.leaves(jax.device_get(carry))
    np.savez(path, **{f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)})


def load_snapshot(directory: str, index: int, agent: str, env: str, agent_steps: int, snapshots: int):
    """A saved behaviour-policy snapshot: (agent module, its Config, the carry)."""
    mod, cfg = agent_config(agent, env, agent_steps, snapshots)
    template = jax.eval_shape(mod.make_train(cfg).init, jax.random.PRNGKey(0))
    with np.load(os.path.join(directory, "agent", f"snapshot_{index:03d}.npz")) as f:
        leaves = [jnp.asarray(f[f"leaf_{i:05d}"]) for i in range(len(f.files))]
    return mod, cfg, jax.tree.unflatten(jax.tree.structure(template), leaves)


# ----------------------------------------------------------------------------- rollouts


def make_collector(env_name: str, act: Callable, size: int, num_envs: int) -> Callable:
    """`collect(params, key) -> Dataset`: `size` transitions of `act(params, obs, key) -> action` in
    `num_envs` envs side by side (auto-reset), compiled once for any params of one structure.
    Each env's stream is stored contiguously; a stream's last row is a timeout (the cut)."""
    env, env_params = envs.make(env_name)
    venv = envs.VecEnv(env)
    steps = math.ceil(size / num_envs)

    @jax.jit
    def run(params, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = venv.reset(jax.random.split(k_reset, num_envs), env_params)

        def step(carry, k):
            obs, state = carry
            k_act, k_env = jax.random.split(k)
            action = jax.vmap(lambda o, ka: act(params, o, ka))(obs, jax.random.split(k_act, num_envs))
            nxt, state, r, term, trunc, info = venv.step(jax.random.split(k_env, num_envs), state, action, env_params)
            return (nxt, state), (obs, action, r, term, trunc, info["final_observation"])

        _, out = jax.lax.scan(step, (obs, state), jax.random.split(k_run, steps))
        return out

    def collect(params, key) -> Dataset:
        obs, action, r, term, trunc, nxt = (np.asarray(x) for x in run(params, key))
        trunc = trunc.copy()
        trunc[-1, :] = True
        flat = lambda x: np.swapaxes(x, 0, 1).reshape((num_envs * steps,) + x.shape[2:])  # stream-major
        arrays = dict(observations=flat(obs).astype(np.float32), actions=flat(action).astype(np.float32),
                      rewards=flat(r).astype(np.float32), terminals=flat(term).astype(bool),
                      timeouts=flat(trunc).astype(bool), next_observations=flat(nxt).astype(np.float32))
        if num_envs * steps > size:  # whole streams first; the last one cut short
            arrays = {k: v[:size] for k, v in arrays.items()}
            arrays["timeouts"][-1] = not arrays["terminals"][-1]
        return Dataset(**arrays, env=env_name)

    return collect


def make_mean_return(env_name: str, act: Callable, episodes: int) -> Callable:
    """`mean_return(params, key) -> float`: mean return of `episodes` episodes of `act(params, obs, key)`."""
    env, env_params = envs.make(env_name)
    max_steps = envs.spec(env_name).max_steps

    @jax.jit
    def run(params, key):
        return evaluate(env, env_params, lambda o, k: act(params, o, k), key, episodes, max_steps)[0]

    return lambda params, key: float(run(params, key))


def random_policy(spec: envs.EnvSpec) -> Callable:
    """act(params, obs, key): uniform within the env's bounds (params unused)."""
    low, high = jnp.asarray(spec.low()), jnp.asarray(spec.high())
    return lambda params, obs, key: jax.random.uniform(key, low.shape, minval=low, maxval=high)


def complete_returns(ds: Dataset) -> np.ndarray:
    """Returns of the episodes that ended in a terminal or the env's time limit (not at a stream cut)."""
    rets, start = [], 0
    for end in ds.episode_ends():
        if ds.terminals[end] or ds.timeouts[end]:
            rets.append(float(np.sum(ds.rewards[start:end + 1], dtype=np.float64)))
        start = end + 1
    return np.asarray(rets)


# ----------------------------------------------------------------------------- generation


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, file=sys.stderr)


def generate(cfg: GenerateConfig) -> dict[str, str]:
    """Write (or find in the cache) all five levels; returns level -> path."""
    out = cfg.directory()
    paths = {lvl: os.path.join(out, f"{lvl}.npz") for lvl in LEVELS}
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.exists(manifest_path) and all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(os.path.join(out, "agent"), exist_ok=True)
    spec = envs.spec(cfg.env)
    key = jax.random.PRNGKey(cfg.seed)
    k_agent, k_eval, k_data = jax.random.split(key, 3)
    t0 = time.time()

    # 1. train the behaviour agent, a snapshot after every chunk (snapshot 0: the initial policy)
    mod, agent_cfg = agent_config(cfg.agent, cfg.env, cfg.agent_steps, cfg.snapshots)
    trainer = mod.make_train(agent_cfg)
    init, update = jax.jit(trainer.init), jax.jit(trainer.update)
    carry = init(k_agent)
    carries, env_steps = [carry], [0]
    _save_carry(os.path.join(out, "agent", "snapshot_000.npz"), carry)
    with _bar(trainer.num_chunks, f"training {cfg.agent} on {cfg.env}", cfg.progress) as bar:
        for k in range(1, trainer.num_chunks + 1):
            carry, m = update(carry)
            carries.append(carry)
            env_steps.append(int(m.get("env_steps", 0)))
            _save_carry(os.path.join(out, "agent", f"snapshot_{k:03d}.npz"), carry)
            bar.set_postfix(ret=f"{float(m.get('return', np.nan)):.1f}")
            bar.update()

    # 2. returns: random policy and every snapshot's stochastic policy
    agent_act = lambda c, obs, k: mod.make_policy(agent_cfg, c, deterministic=False)(obs, k)
    rand_act = random_policy(spec)
    keys = jax.random.split(k_eval, len(carries) + 1)
    random_ret = make_mean_return(cfg.env, rand_act, cfg.eval_episodes)(None, keys[0])
    agent_ret = make_mean_return(cfg.env, agent_act, cfg.eval_episodes)
    snap_ret = []
    with _bar(len(carries), "evaluating snapshots", cfg.progress) as bar:
        for c, k in zip(carries, keys[1:]):
            snap_ret.append(agent_ret(c, k))
            bar.update()
    expert_i = int(np.argmax(snap_ret))
    target = random_ret + cfg.medium_fraction * (snap_ret[expert_i] - random_ret)
    medium_i = int(np.argmin([abs(r - target) for r in snap_ret[: expert_i + 1]]))
    refs = dict(ref_min_score=random_ret, ref_max_score=snap_ret[expert_i])

    # 3. the datasets
    kd = jax.random.split(k_data, 4)
    data: dict[str, Dataset] = {}
    with _bar(4, "collecting", cfg.progress) as bar:
        data["random"] = make_collector(cfg.env, rand_act, cfg.size, cfg.num_envs)(None, kd[0])
        bar.update()
        collect = make_collector(cfg.env, agent_act, cfg.size, cfg.num_envs)
        data["medium"] = collect(carries[medium_i], kd[1])
        bar.update()
        data["expert"] = collect(carries[expert_i], kd[2])
        bar.update()
        data["medium-replay"] = _medium_replay(cfg, agent_cfg, agent_act, carries, env_steps, medium_i, kd[3])
        bar.update()
    data["medium-expert"] = concatenate([data["medium"], data["expert"]])
    source = f"jaxrl:{cfg.agent} seed {cfg.seed}"
    for lvl, ds in data.items():
        rets = complete_returns(ds)
        ds = ds.replace(env=cfg.env, level=lvl, source=source,
                        behavior_return=float(rets.mean()) if rets.size else math.nan, **refs)
        save(ds.validate(spec), paths[lvl])
        data[lvl] = ds
    manifest = {
        "settings": C.to_dict(cfg) | {"cache_dir": None, "progress": None, "level": None},
        "agent_config": C.to_dict(agent_cfg),
        "random_return": random_ret, "snapshot_returns": snap_ret, "snapshot_env_steps": env_steps,
        "expert_snapshot": expert_i, "medium_snapshot": medium_i,
        "datasets": {lvl: {"path": os.path.basename(paths[lvl]), "size": len(ds), "hash": ds.content_hash(),
                           "behavior_return": ds.behavior_return,
                           "behavior_score": float(ds.normalized_score(ds.behavior_return))}
                     for lvl, ds in data.items()},
        "seconds": time.time() - t0,
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    return paths


def _medium_replay(cfg, agent_cfg, agent_act, carries, env_steps, medium_i: int, key) -> Dataset:
    """Medium-replay: the agent's own replay buffer at the medium snapshot when it has one; else
    snapshots 0 .. medium - 1 rolled out in turn, each for the env steps the agent then trained
    with it (equal shares, scaled to at most `size` in all)."""
    buf = getattr(carries[medium_i], "buffer", None)
    if buf is not None and hasattr(buf, "data") and hasattr(buf, "size"):
        replay = _from_buffer(buf, cfg.env, getattr(agent_cfg, "num_envs", 1))
        if replay is not None:
            return replay
    medium_i = max(medium_i, 1)
    trained = env_steps[medium_i] or cfg.size
    each = max(cfg.num_envs, int(min(trained, cfg.size) // medium_i))
    collect = make_collector(cfg.env, agent_act, each, cfg.num_envs)
    keys = jax.random.split(key, medium_i)
    return concatenate([collect(carries[i], keys[i]) for i in range(medium_i)])


def _from_buffer(buf, env_name: str, num_envs: int) -> Dataset | None:
    """A Dataset from a `jaxrl.core.buffer.Buffer` of transitions with obs/action/reward/next_obs/
    terminated fields, written `num_envs` rows per env step; None if the fields are not recognised
    or the buffer has wrapped (then the oldest steps are gone and D4RL's replay is not what it holds)."""
    data = jax.device_get(buf.data)
    size = int(buf.size)
    names = getattr(data, "_fields", ())
    pick = lambda *c: next((np.asarray(getattr(data, n)) for n in c if n in names), None)
    fields = (pick("obs", "observation"), pick("action", "actions"), pick("reward", "rewards"),
              pick("next_obs", "next_observation"), pick("terminated", "terminal"))
    if any(x is None for x in fields) or size >= len(fields[2]) or size % num_envs:
        return None
    steps = size // num_envs
    # rows t * num_envs + e -> env e's stream contiguous
    o, a, r, n, t = (np.swapaxes(x[:size].reshape((steps, num_envs) + x.shape[1:]), 0, 1).reshape(x[:size].shape)
                     for x in fields)
    timeouts = np.zeros(size, bool)
    timeouts[steps - 1::steps] = True  # each stream is cut where training stopped
    return Dataset(o.astype(np.float32), a.reshape(size, -1).astype(np.float32), r.astype(np.float32),
                   t.astype(bool), timeouts, n.astype(np.float32), env=env_name)


def load_level(cfg: GenerateConfig, level: str) -> Dataset:
    """Generate if needed, then load one level."""
    return load(generate(cfg)[level])


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    import tyro

    try:
        cfg = tyro.cli(GenerateConfig, args=argv, config=(tyro.conf.FlagConversionOff,))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    paths = generate(cfg)
    with open(os.path.join(cfg.directory(), "manifest.json")) as f:
        manifest = json.load(f)
    for lvl in LEVELS if cfg.level == "all" else (cfg.level,):
        d = manifest["datasets"][lvl]
        print(f"{lvl:>14}: {d['size']:>8} transitions, behaviour score {d['behavior_score']:6.1f}  {paths[lvl]}")
    return paths


if __name__ == "__main__":
    main()
