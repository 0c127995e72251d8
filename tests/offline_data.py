"""The small generated datasets the offline tests share: Pendulum-v1, a PPO behaviour agent trained
for 60k env steps, 10k transitions per level. Generated once per test run: the pytest-xdist workers
of one run (`-n 2`) share one temporary cache, and a file lock makes the second wait for the
first instead of generating the same data again."""
import fcntl
import functools
import os
import tempfile

from envs.datasets import load
from jaxrl.datasets.generate import GenerateConfig, generate

SMALL = dict(env="Pendulum-v1", agent="ppo", agent_steps=60_000, snapshots=6, size=10_000, eval_episodes=8,
             num_envs=10, progress=False)


def _cache_dir() -> str:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
    if run is None:
        return tempfile.mkdtemp(prefix="jaxrl-offline-test-")
    path = os.path.join(tempfile.gettempdir(), f"jaxrl-offline-test-{run}")
    os.makedirs(path, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def pendulum():
    """(GenerateConfig, {level: Dataset})."""
    cfg = GenerateConfig(**SMALL, cache_dir=_cache_dir())
    with open(os.path.join(cfg.cache_dir, "generate.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        paths = generate(cfg)
    return cfg, {lvl: load(p) for lvl, p in paths.items()}
