"""What every registered algorithm (jaxrl.algos.REGISTRY) promises, checked on its tiny config:
seed i's result is bitwise the same whatever the number of seeds, the same seed twice is bitwise
equal, a stopped and resumed run ends equal to an uninterrupted one, a bad config raises a
ValueError before anything compiles, and the CLI turns that into one line on stderr with exit 2.

The tests are defined here once and collected by the four tests/algos/test_contract_<group>.py
files, each naming its GROUP: pytest-xdist keeps a file on one worker, so one file holding all 21
compiles would keep one worker busy for a third of the run."""
import importlib
import os
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

from jaxrl.algos import REGISTRY
from jaxrl.core.run import RunOptions, run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GROUPS = {
    "online": ["ppo", "dqn", "stream_ac", "stream_q", "stream_td", "sac", "td3"],
    "offline": ["td3_bc", "iql", "cql", "riql", "a2pr", "ro2o"],
    "robust": ["rarl", "qarl", "iwocs", "policy_smoothing"],
    "pixels_generative": ["drqv2", "drm", "rlcm", "ddpo"],
}


def quiet(**kw):
    """Options of the contract's runs: XLA's cheap compile settings, which halve these tests'
    compile-bound time (the promises hold for any one set of compile options)."""
    return RunOptions(progress=False, fast_compile=True, **kw)


def row(tree, i):
    """Run i of a result's carry, typed keys as their data."""
    tree = jax.tree.map(lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                        else x, tree)
    return jax.tree.map(lambda x: np.asarray(x)[i], tree)


def assert_same_runs(a, b, seeds_a, seeds_b):
    """Runs seeds_a of result a equal runs seeds_b of result b, bit for bit (metrics and carry)."""
    assert a.metrics.keys() == b.metrics.keys()
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k][:, seeds_a], b.metrics[k][:, seeds_b], err_msg=k)
    for i, j in zip(seeds_a, seeds_b):
        chex.assert_trees_all_equal(row(a.carry, i), row(b.carry, j))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    """What `dataset="tiny"` in the registry stands for: 400 random Pendulum-v1 transitions (two
    200-step episodes cut by a timeout) written as .npz."""
    from envs.datasets import Dataset, save

    rng = np.random.default_rng(0)
    n = 400
    th = rng.uniform(-np.pi, np.pi, n + 1)
    obs = np.stack([np.cos(th), np.sin(th), rng.uniform(-8, 8, n + 1)], -1).astype(np.float32)
    timeouts = np.zeros(n, bool)
    timeouts[[199, 399]] = True
    ds = Dataset(obs[:-1], rng.uniform(-2, 2, (n, 1)).astype(np.float32), -rng.uniform(0, 16, n).astype(np.float32),
                 np.zeros(n, bool), timeouts, obs[1:], env="Pendulum-v1", level="random", source="contract test",
                 behavior_return=-1200.0, ref_min_score=-1200.0, ref_max_score=-150.0)
    return save(ds, str(tmp_path_factory.mktemp("tiny") / "pendulum-tiny.npz"))


def registry_config(name: str, tiny: str) -> dict:
    kw = dict(REGISTRY[name])
    if kw.get("dataset") == "tiny":
        kw["dataset"] = tiny
    return kw


def algo_fixture(group: str):
    """A test file's module-scoped `algo` fixture over its group: (name, module, config, trainer),
    built once per algorithm and shared by the tests below."""

    @pytest.fixture(scope="module", params=GROUPS[group])
    def algo(request, tiny_dataset):
        mod = importlib.import_module(f"jaxrl.algos.{request.param}")
        cfg = mod.Config(**registry_config(request.param, tiny_dataset))
        return request.param, mod, cfg, mod.make_train(cfg)

    return algo


@pytest.mark.timeout(600)
def test_seed_results_do_not_depend_on_the_number_of_seeds(algo):
    _, _, _, t = algo
    runs = {n: run(t, quiet(num_seeds=n)) for n in (8, 1, 2, 3)}  # 8 seeds: two blocks of 4
    chex.assert_shape(runs[8].metrics[t.progress], (t.num_chunks, 8))
    first, second = jax.tree.leaves(row(runs[8].carry, 0)), jax.tree.leaves(row(runs[8].carry, 1))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))  # the seeds are different runs
    for n in (1, 2, 3):
        assert_same_runs(runs[n], runs[8], list(range(n)), list(range(n)))
    again = run(t, quiet(num_seeds=2))
    assert_same_runs(again, runs[2], [0, 1], [0, 1])  # the same seed twice
    alone = run(t, quiet(num_seeds=1), seeds=[5])  # seed 5 alone equals seed 5 of the 8
    assert_same_runs(alone, runs[8], [0], [5])


@pytest.mark.timeout(600)
def test_resume_equals_uninterrupted(algo, tmp_path):
    name, mod, cfg, t = algo
    ref = run(t, quiet(num_seeds=2, log_dir=str(tmp_path / "ref")), config=cfg)
    stopped = run(t, quiet(num_seeds=2, log_dir=str(tmp_path / "run"), checkpoint_every=2, stop_after=3), config=cfg)
    chex.assert_shape(stopped.metrics[t.progress], (3, 2))
    res = run(t, quiet(num_seeds=2, resume=str(tmp_path / "run")), config=cfg)
    assert_same_runs(res, ref, [0, 1], [0, 1])
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == (tmp_path / "ref" / "metrics.csv").read_bytes()


def test_bad_config_raises_before_compiling(algo, monkeypatch):
    name, mod, cfg, _ = algo

    def no_compile(*a, **k):
        raise AssertionError("compiled before checking the config")

    monkeypatch.setattr(jax, "jit", no_compile)
    with pytest.raises(ValueError, match=r"num_chunks must be > 0, got 0"):
        mod.Config(**{**REGISTRY[name], "num_chunks": 0})  # raises before reading any dataset


@pytest.mark.timeout(300)
def test_cli_bad_config_is_one_line(request):
    names = GROUPS[request.module.GROUP]
    procs = {n: subprocess.Popen([sys.executable, "-m", f"jaxrl.algos.{n}", "--num-chunks", "0"], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in names}
    for n, p in procs.items():
        out, err = p.communicate(timeout=240)
        assert p.returncode == 2, (n, err[-2000:])
        assert err.strip().splitlines() == ["error: num_chunks must be > 0, got 0"], (n, err[-2000:])
        assert out == "", n  # nothing printed before the error
