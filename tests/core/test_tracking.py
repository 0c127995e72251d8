"""Tracked runs: the run directory (config.json, meta.json, metrics.csv, metrics.parquet,
final.json), reproducible CSVs, TensorBoard and W&B (off by default), and the CLI's run flags."""
import csv
import datetime
import json
import math
import socket
import struct
import subprocess
import sys
import types
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core import config as C
from jaxrl.core import tracking
from jaxrl.core.run import RunOptions, run
from jaxrl.core.sweep import run_many
from jaxrl.core.train import Trainer

NUM_CHUNKS, NUM_SEEDS = 3, 5


@dataclass(frozen=True)
class Toy:
    """A stand-in algorithm: a noisy contraction, cheap to compile."""

    scale: float = 0.5
    num_chunks: int = NUM_CHUNKS

    def __post_init__(self):
        C.check_positive("scale", self.scale)


def toy_train(cfg: Toy) -> Trainer:
    def init(key):
        return {"x": jax.random.normal(key, (2,)), "key": key, "t": jnp.int32(0)}

    def update(c):
        key, k = jax.random.split(c["key"])
        x = c["x"] * cfg.scale + jax.random.normal(k, (2,))
        t = c["t"] + 1
        ret = jnp.where(t == 1, jnp.nan, x[0])  # no episode ended in chunk 0
        return {"x": x, "key": key, "t": t}, {"env_steps": t * 100, "return": ret, "loss": x[1] * x[1]}

    return Trainer(init, update, cfg.num_chunks)


def tracked(path, cfg=Toy(), **kw):
    opts = RunOptions(num_seeds=NUM_SEEDS, seed=3, log_dir=str(path), progress=False, **kw)
    return run(toy_train(cfg), opts, config=cfg)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


# ------------------------------------------------------------------------------------ run directory
def test_run_dir_is_complete_and_parseable(tmp_path):
    res = tracked(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "meta.json", "metrics.csv", "final.json"} <= files
    assert "tensorboard" not in files  # off by default

    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["algorithm"].endswith("test_tracking")  # the module that defines the config
    assert cfg["config"] == {"scale": 0.5, "num_chunks": NUM_CHUNKS}
    assert cfg["config_hash"] == C.config_hash(Toy())
    assert cfg["run_options"]["num_seeds"] == NUM_SEEDS and cfg["run_options"]["seed"] == 3

    meta = json.loads((tmp_path / "meta.json").read_text())
    pkgs = {"jax", "jaxlib", "flax", "optax", "chex", "distrax", "gymnax", "brax", "numpy"}
    assert pkgs <= meta["packages"].keys()
    assert all(meta["packages"][p] for p in pkgs)  # all installed here
    import jaxrl

    assert meta["jaxrl_version"] == jaxrl.__version__
    git = subprocess.run(["git", "-C", str(jaxrl.__path__[0]), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert meta["git_commit"] == (git.stdout.strip() if git.returncode == 0 else None)
    assert meta["python"] == ".".join(map(str, sys.version_info[:3]))
    assert meta["device_count"] == jax.device_count() and meta["process_count"] == 1
    assert meta["device_kind"] == jax.devices()[0].device_kind and meta["hostname"] == socket.gethostname()
    start = datetime.datetime.fromisoformat(meta["start_time"])
    assert start <= datetime.datetime.fromisoformat(meta["end_time"]) and meta["status"] == "finished"

    header, rows = read_csv(tmp_path / "metrics.csv")
    assert header == ["chunk", "seed", "env_steps", "loss", "return"]  # pytree (sorted) order
    assert len(rows) == NUM_CHUNKS * NUM_SEEDS
    table = np.array(rows, dtype=np.float64).reshape(NUM_CHUNKS, NUM_SEEDS, len(header))
    np.testing.assert_array_equal(table[..., 0], np.repeat(np.arange(NUM_CHUNKS)[:, None], NUM_SEEDS, 1))
    np.testing.assert_array_equal(table[..., 1], np.repeat(np.arange(NUM_SEEDS)[None], NUM_CHUNKS, 0))
    for j, name in enumerate(header[2:], start=2):  # float32 values written exactly
        np.testing.assert_array_equal(table[..., j].astype(np.float32), res.metrics[name].astype(np.float32))

    final = json.loads((tmp_path / "final.json").read_text())
    last = res.metrics["return"][-1].astype(np.float64)
    np.testing.assert_allclose(final["per_seed"], last, rtol=1e-7)
    np.testing.assert_allclose(final["mean"], last.mean(), rtol=1e-7)
    np.testing.assert_allclose(final["std"], last.std(), rtol=1e-7)
    np.testing.assert_allclose(final["iqm"], np.sort(last)[1:4].mean(), rtol=1e-7)  # 5 seeds: cut 1 each end
    assert final["seeds"] == list(range(NUM_SEEDS)) and final["env_steps"] == NUM_CHUNKS * 100

    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert not (tmp_path / "metrics.parquet").exists()
    else:
        pt = pq.read_table(tmp_path / "metrics.parquet").to_pydict()
        assert list(pt) == header
        for j, name in enumerate(header):
            np.testing.assert_array_equal(np.asarray(pt[name], dtype=np.float32),
                                          table[..., j].ravel().astype(np.float32))


def test_same_config_and_seed_give_identical_csv(tmp_path):
    tracked(tmp_path / "a")
    tracked(tmp_path / "b")
    tracked(tmp_path / "c", cfg=Toy(scale=0.6))
    a = (tmp_path / "a" / "metrics.csv").read_bytes()
    assert a == (tmp_path / "b" / "metrics.csv").read_bytes()
    assert a != (tmp_path / "c" / "metrics.csv").read_bytes()
    assert (tmp_path / "a" / "final.json").read_bytes() == (tmp_path / "b" / "final.json").read_bytes()


def test_config_list_run_dir(tmp_path):
    cfgs = [Toy(0.5), Toy(0.9)]
    res = run_many(toy_train, cfgs, RunOptions(num_seeds=2, log_dir=str(tmp_path), progress=False))
    header, rows = read_csv(tmp_path / "metrics.csv")
    assert header[:3] == ["chunk", "config", "seed"] and len(rows) == NUM_CHUNKS * 2 * 2
    assert [r[:3] for r in rows[:4]] == [["0", "0", "0"], ["0", "0", "1"], ["0", "1", "0"], ["0", "1", "1"]]
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["configs"] == [C.to_dict(c) for c in cfgs] and cfg["varying"] == ["scale"]
    final = json.loads((tmp_path / "final.json").read_text())
    assert [c["changed"] for c in final["configs"]] == [{"scale": 0.5}, {"scale": 0.9}]
    np.testing.assert_allclose([c["per_seed"] for c in final["configs"]], res.final(), rtol=1e-7)


# ------------------------------------------------------------------------------------ statistics
def test_iqm_and_summary_hand_computed():
    assert tracking.iqm([1, 2, 3, 4, 5, 6, 7, 100]) == 4.5  # drop 2 each end: mean(3, 4, 5, 6)
    assert tracking.iqm([3.0, 1.0, 2.0]) == 2.0  # n = 3: nothing cut
    assert tracking.iqm([np.nan, 1, 2, 3, 10]) == 2.5  # NaN dropped; n = 4: cut 1 each end
    assert math.isnan(tracking.iqm([np.nan]))
    s = tracking.summary([1.0, np.nan, 3.0])
    assert s == {"per_seed": [1.0, None, 3.0], "mean": 2.0, "std": 1.0, "iqm": 2.0, "num_finite": 2}


# ------------------------------------------------------------------------------------ TensorBoard / W&B
def read_tfevents(path):
    """(tag, step, value) of every scalar in a TFRecord event file."""
    from tensorboardX.proto import event_pb2

    data, i, out = path.read_bytes(), 0, []
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        ev = event_pb2.Event()
        ev.ParseFromString(data[i + 12:i + 12 + n])
        i += 12 + n + 4
        out += [(v.tag, ev.step, v.simple_value) for v in ev.summary.value]
    return out


def test_tensorboard_scalars(tmp_path):
    res = tracked(tmp_path, tensorboard=True)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    scalars = read_tfevents(events[0])
    loss = sorted((s, v) for t, s, v in scalars if t == "loss")
    assert [s for s, _ in loss] == [100, 200, 300]  # step = env_steps
    np.testing.assert_allclose([v for _, v in loss], res.metrics["loss"].mean(1), rtol=1e-6)
    assert sorted(s for t, s, _ in scalars if t == "return") == [200, 300]  # all-NaN chunk 0 skipped


def test_wandb_logs_through_its_api(tmp_path, monkeypatch):
    calls = []

    class FakeRun:
        def log(self, data, step):
            calls.append(("log", step, data))

        def finish(self):
            calls.append(("finish",))

    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: calls.append(("init", kw)) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    res = tracked(tmp_path, wandb=True, wandb_project="proj")
    assert calls[0][0] == "init" and calls[0][1]["project"] == "proj"
    assert calls[0][1]["config"]["config"] == {"scale": 0.5, "num_chunks": NUM_CHUNKS}
    logs = [c for c in calls if c[0] == "log"]
    assert [c[1] for c in logs] == [100, 200, 300]
    np.testing.assert_allclose([c[2]["loss"] for c in logs], res.metrics["loss"].mean(1), rtol=1e-6)
    assert calls[-1] == ("finish",)


def test_wandb_missing_is_a_clear_error_before_writing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` fail
    with pytest.raises(ImportError, match=r"--wandb needs the wandb package.*pip install wandb"):
        tracked(tmp_path / "run", wandb=True)
    assert not (tmp_path / "run").exists()
