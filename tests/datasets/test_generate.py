"""jaxrl.datasets.generate: the five D4RL levels from our own agent, their definitions and
metadata, the cache, saved behaviour-policy snapshots, reproducible collection, CLI and errors."""
import json
import os

import jax
import numpy as np
import pytest

from envs.datasets import KEYS
from jaxrl.datasets import generate as gen
from tests.offline_data import pendulum


def test_levels_follow_d4rl_definitions():
    cfg, data = pendulum()
    with open(os.path.join(cfg.directory(), "manifest.json")) as f:
        manifest = json.load(f)
    assert set(data) == set(gen.LEVELS)
    for lvl, ds in data.items():
        ds.validate()
        assert (ds.env, ds.level, ds.source) == ("Pendulum-v1", lvl, "jaxrl:ppo seed 0")
        assert ds.ref_min_score == manifest["random_return"]
        assert ds.ref_max_score == max(manifest["snapshot_returns"])
    assert all(len(data[lvl]) == 10_000 for lvl in ("random", "medium", "expert"))
    assert 0 < len(data["medium-replay"]) <= 10_000
    score = {lvl: float(ds.normalized_score(ds.behavior_return)) for lvl, ds in data.items()}
    assert abs(score["random"]) < 15  # random data scores about 0 by definition of the reference
    assert score["random"] < score["medium"] < score["expert"]
    assert score["expert"] > 70
    me = data["medium-expert"]  # medium then expert, rows unchanged
    for k in KEYS:
        if k != "timeouts":
            np.testing.assert_array_equal(getattr(me, k), np.concatenate([getattr(data["medium"], k), getattr(data["expert"], k)]))
    # D4RL's medium: the snapshot closest to a third of the way from random to expert
    r, s = manifest["random_return"], manifest["snapshot_returns"]
    target = r + (max(s) - r) / 3
    assert manifest["medium_snapshot"] == int(np.argmin([abs(x - target) for x in s[: manifest["expert_snapshot"] + 1]]))


def test_cache_snapshots_and_reproducible_collection():
    cfg, data = pendulum()
    paths = gen.generate(cfg)  # cached: returns at once
    assert all(os.path.exists(p) for p in paths.values())
    # behaviour policies are saved: reload the expert snapshot and act with it
    with open(os.path.join(cfg.directory(), "manifest.json")) as f:
        expert = json.load(f)["expert_snapshot"]
    mod, agent_cfg, carry = gen.load_snapshot(cfg.directory(), expert, cfg.agent, cfg.env, cfg.agent_steps, cfg.snapshots)
    act = mod.make_policy(agent_cfg, carry)
    assert np.shape(act(data["expert"].observations[0], jax.random.PRNGKey(0))) == (1,)
    # the same seed collects the same bits; timeouts mark each stream's cut
    spec = __import__("envs").spec("Pendulum-v1")
    collect = gen.make_collector("Pendulum-v1", gen.random_policy(spec), 250, 5)
    a, b = collect(None, jax.random.PRNGKey(1)), collect(None, jax.random.PRNGKey(1))
    assert a.content_hash() == b.content_hash() != collect(None, jax.random.PRNGKey(2)).content_hash()
    assert np.flatnonzero(a.timeouts).tolist() == [49, 99, 149, 199, 249]  # 200-step limit never reached


def test_cli_prints_cached_paths(capsys):
    cfg, _ = pendulum()
    args = ["--env", "Pendulum-v1", "--agent", "ppo", "--agent-steps", str(cfg.agent_steps), "--snapshots",
            str(cfg.snapshots), "--size", str(cfg.size), "--eval-episodes", str(cfg.eval_episodes),
            "--num-envs", str(cfg.num_envs), "--cache-dir", cfg.cache_dir, "--level", "medium", "--progress", "False"]
    paths = gen.main(args)
    out = capsys.readouterr().out
    assert "medium:" in out and paths["medium"] in out and "expert:" not in out


@pytest.mark.parametrize("kw, message", [
    (dict(env="CartPole-v1"), "needs continuous actions"), (dict(env="Pendulum"), "unknown env"),
    (dict(level="hard"), "level must be one of"), (dict(agent="dqn"), "agent must be one of"),
    (dict(size=0), "size must be > 0"),
])
def test_config_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        gen.GenerateConfig(**{"env": "Pendulum-v1", **kw})
