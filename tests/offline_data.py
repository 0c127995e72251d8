"""The small generated datasets the offline tests share: Pendulum-v1, a PPO behaviour agent trained
for 60k env steps, 10k transitions per level. Generated once per test process (a temporary cache)."""
import functools
import tempfile

from envs.datasets import load
from jaxrl.datasets.generate import GenerateConfig, generate

SMALL = dict(env="Pendulum-v1", agent="ppo", agent_steps=60_000, snapshots=6, size=10_000, eval_episodes=8,
             num_envs=10, progress=False)


@functools.lru_cache(maxsize=None)
def pendulum():
    """(GenerateConfig, {level: Dataset})."""
    cfg = GenerateConfig(**SMALL, cache_dir=tempfile.mkdtemp(prefix="jaxrl-offline-test-"))
    return cfg, {lvl: load(p) for lvl, p in generate(cfg).items()}
