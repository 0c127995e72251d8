"""Checkpoint and resume: a stopped run resumed from its latest checkpoint ends bitwise equal to an
uninterrupted one (metrics, carry, metrics.csv); checkpoints of another config, truncated or
incomplete ones are refused with a ValueError and leave the run directory untouched; saves are
atomic."""
import hashlib
import importlib
import json
import os
import shutil
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core import checkpoint as ckpt
from jaxrl.core import config as C
from jaxrl.core.run import RunOptions, run
from jaxrl.core.sweep import run_many
from jaxrl.core.train import Trainer

ALGOS = {
    # algorithm module -> short config: 4 chunks, stopped after chunk 3, checkpoints every 2 chunks
    "ppo": dict(total_timesteps=20_000, num_chunks=4),
}


def quiet(**kw):
    """Options of these short, compile-bound runs: XLA's cheap compile settings (resume equals an
    uninterrupted run under any one set of compile options)."""
    return RunOptions(progress=False, fast_compile=True, **kw)


def tree_hash(root) -> dict:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def assert_same_run(a, b):
    assert a.metrics.keys() == b.metrics.keys()
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    la, lb = jax.tree.leaves(a.carry), jax.tree.leaves(b.carry)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


_RUNS = {}


def stopped_and_reference(algo, tmp_path_factory):
    """(module, config, trainer, uninterrupted result, its dir, stopped run dir); computed once per algo."""
    if algo not in _RUNS:
        try:
            mod = importlib.import_module(f"jaxrl.algos.{algo}")
        except ModuleNotFoundError as e:
            if e.name != f"jaxrl.algos.{algo}":
                raise
            pytest.skip(f"jaxrl/algos/{algo}.py does not exist (yet)")
        cfg = mod.Config(**ALGOS[algo])
        t = mod.make_train(cfg)
        root = tmp_path_factory.mktemp(algo)
        ref = run(t, quiet(num_seeds=2, log_dir=str(root / "ref"), checkpoint_every=2), config=cfg)
        stop = run(t, quiet(num_seeds=2, log_dir=str(root / "stopped"), checkpoint_every=2, stop_after=3), config=cfg)
        assert stop.metrics["return"].shape == (3, 2)  # it ran 3 of 4 chunks, its checkpoint is at 2
        assert [c for c, _ in ckpt.list_checkpoints(str(root / "stopped" / "checkpoints"))] == [2]
        _RUNS[algo] = (mod, cfg, t, ref, root / "ref", root / "stopped")
    return _RUNS[algo]


def fresh_copy(src, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.timeout(400)
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_resume_equals_uninterrupted_run(algo, tmp_path_factory, tmp_path):
    mod, cfg, t, ref, ref_dir, stopped = stopped_and_reference(algo, tmp_path_factory)
    d = fresh_copy(stopped, tmp_path)
    res = run(t, quiet(num_seeds=2, resume=str(d), checkpoint_every=2), config=cfg)
    assert res.log_dir == str(d)
    assert_same_run(res, ref)
    # chunk 3 was run twice (before the stop and after the resume): the CSV has it once
    assert (d / "metrics.csv").read_bytes() == (ref_dir / "metrics.csv").read_bytes()
    assert json.loads((d / "final.json").read_text()) == json.loads((ref_dir / "final.json").read_text())
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "finished"
    # both sessions are kept: the first stopped after chunk 3, the second resumed at 2 and finished
    first, second = meta["sessions"]
    assert first["status"] == "stopped after chunk 3" and "resumed_from" not in first
    assert second["resumed_at_chunk"] == 2 and second["status"] == "finished"
    assert first["start_time"] <= second["start_time"] and meta["start_time"] == first["start_time"]
    assert [c for c, _ in ckpt.list_checkpoints(str(d / "checkpoints"))] == [2, 4]


@pytest.mark.timeout(400)
def test_cli_resume_takes_config_from_checkpoint(tmp_path_factory, tmp_path):
    mod, cfg, t, ref, ref_dir, stopped = stopped_and_reference("ppo", tmp_path_factory)
    d = fresh_copy(stopped, tmp_path)
    res = mod.main(["--resume", str(d), "--progress", "False", "--fast-compile"])  # config and seeds from the checkpoint
    assert_same_run(res, ref)
    assert (d / "metrics.csv").read_bytes() == (ref_dir / "metrics.csv").read_bytes()


@pytest.mark.timeout(300)
def test_mismatched_config_is_refused_and_changes_nothing(tmp_path_factory, tmp_path, capsys):
    mod, cfg, t, ref, ref_dir, stopped = stopped_and_reference("ppo", tmp_path_factory)
    d = fresh_copy(stopped, tmp_path)
    before = tree_hash(d)
    other = mod.Config(**{**ALGOS["ppo"], "lr": 1e-3})
    with pytest.raises(ValueError, match=r"mismatching fields:\n  lr: checkpoint 0.00025, this run 0.001"):
        run(mod.make_train(other), quiet(num_seeds=2, resume=str(d)), config=other)
    with pytest.raises(SystemExit) as exit_:  # the CLI: one line, exit code 2
        mod.main(["--resume", str(d), "--ent-coef", "0.05", "--progress", "False"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "ent_coef: checkpoint 0.01, this run 0.05" in err[0], err
    with pytest.raises(ValueError, match=r"seeds: checkpoint \[0, 1\], this run \[0, 1, 2\]"):
        run(t, quiet(num_seeds=3, resume=str(d)), config=cfg)
    with pytest.raises(ValueError, match=r"seed: checkpoint 0, this run 5"):
        run(t, quiet(num_seeds=2, seed=5, resume=str(d)), config=cfg)
    assert tree_hash(d) == before


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(max(os.path.getsize(path) // 2, 1) - 1)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("damage,match", [
    ("truncate", r"is corrupt: file 'state/.*' has \d+ bytes, expected \d+ \(truncated\?\)"),
    ("delete", r"is corrupt: file 'state/.*' is missing"),
    ("manifest", r"is incomplete or corrupt: manifest.json is missing"),
    ("flip", r"is corrupt: file 'meta.json' does not match its sha256"),
])
def test_corrupt_checkpoint_is_refused_and_changes_nothing(damage, match, tmp_path_factory, tmp_path):
    mod, cfg, t, ref, ref_dir, stopped = stopped_and_reference("ppo", tmp_path_factory)
    d = fresh_copy(stopped, tmp_path)
    cp = d / "checkpoints" / "chunk_000002"
    state_files = sorted((p for p in (cp / "state").rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
    if damage == "truncate":
        _truncate(state_files[0])  # the largest array file
    elif damage == "delete":
        state_files[0].unlink()
    elif damage == "manifest":
        (cp / "manifest.json").unlink()
    else:  # same size, different bytes
        meta = (cp / "meta.json").read_text()
        (cp / "meta.json").write_text(meta.replace('"chunk": 2', '"chunk": 3'))
    before = tree_hash(d)
    with pytest.raises(ValueError, match=match):
        run(t, quiet(num_seeds=2, resume=str(d)), config=cfg)
    assert tree_hash(d) == before


# ------------------------------------------------------------------------------------ toy runs
@dataclass(frozen=True)
class Toy:
    scale: float = 0.5
    num_chunks: int = 4

    def __post_init__(self):
        C.check_positive("scale", self.scale)


def toy_train(cfg: Toy) -> Trainer:
    """A carry with a typed PRNG key (jax.random.key), which checkpoints store as key data."""

    def init(key):
        k = jax.random.key(jax.random.randint(key, (), 0, 2 ** 30))
        return {"x": jnp.zeros(3), "key": k}

    def update(c):
        key, k = jax.random.split(c["key"])
        x = c["x"] * cfg.scale + jax.random.normal(k, (3,))
        return {"x": x, "key": key}, {"return": x[0], "loss": x[1] * x[1], "env_steps": jnp.int32(1)}

    return Trainer(init, update, cfg.num_chunks)


def test_typed_keys_and_config_list_resume(tmp_path):
    cfgs = [Toy(0.5), Toy(0.8)]
    ref = run_many(toy_train, cfgs, quiet(num_seeds=3, log_dir=str(tmp_path / "ref")))
    run_many(toy_train, cfgs, quiet(num_seeds=3, log_dir=str(tmp_path / "b"), checkpoint_every=1, stop_after=2))
    res = run_many(toy_train, cfgs, quiet(num_seeds=3, resume=str(tmp_path / "b")))
    assert res.metrics["return"].shape == (4, 2, 3)
    assert_same_run(res, ref)
    assert (tmp_path / "b" / "metrics.csv").read_bytes() == (tmp_path / "ref" / "metrics.csv").read_bytes()
    before = tree_hash(tmp_path / "b")
    with pytest.raises(ValueError, match=r"config 1: scale: checkpoint 0.8, this run 0.9"):
        run_many(toy_train, [Toy(0.5), Toy(0.9)], quiet(num_seeds=3, resume=str(tmp_path / "b")))
    with pytest.raises(ValueError, match=r"number of configs: checkpoint 2, this run 1"):
        run_many(toy_train, [Toy(0.5)], quiet(num_seeds=3, resume=str(tmp_path / "b")))
    assert tree_hash(tmp_path / "b") == before


def test_keep_checkpoints_and_fresh_run_into_checkpointed_dir(tmp_path):
    t = toy_train(Toy())
    run(t, quiet(num_seeds=2, log_dir=str(tmp_path), checkpoint_every=1, keep_checkpoints=2), config=Toy())
    assert [c for c, _ in ckpt.list_checkpoints(str(tmp_path / "checkpoints"))] == [3, 4]
    before = tree_hash(tmp_path)
    with pytest.raises(ValueError, match=r"already holds a run .*--resume .*--overwrite"):
        run(t, quiet(num_seeds=2, log_dir=str(tmp_path)), config=Toy(scale=0.7))
    assert tree_hash(tmp_path) == before  # every byte of the first run is unchanged
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="cannot resume: no checkpoint"):
        run(t, quiet(num_seeds=2, resume=str(tmp_path / "empty")), config=Toy())


def test_finished_run_without_checkpoints_is_not_overwritten(tmp_path):
    t = toy_train(Toy())
    run(t, quiet(num_seeds=2, log_dir=str(tmp_path / "a")), config=Toy())
    before = tree_hash(tmp_path / "a")
    with pytest.raises(ValueError, match=r"already holds a run \(config.json, meta.json, metrics.csv"):
        RunOptions(log_dir=str(tmp_path / "a"))  # refused when the options are made, before any output
    assert tree_hash(tmp_path / "a") == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"log_dir '.*file' is a file, not a directory"):
        RunOptions(log_dir=str(tmp_path / "file"))
    # --overwrite replaces the old run (its files are deleted first, so no stale final.json stays)
    run(toy_train(Toy(scale=0.7)), quiet(num_seeds=2, log_dir=str(tmp_path / "a"), overwrite=True), config=Toy(scale=0.7))
    assert json.loads((tmp_path / "a" / "config.json").read_text())["config"]["scale"] == 0.7


def test_corrupt_newest_checkpoint_names_the_newest_valid_one(tmp_path):
    t = toy_train(Toy())
    run(t, quiet(num_seeds=2, log_dir=str(tmp_path), checkpoint_every=1, keep_checkpoints=0), config=Toy())
    (tmp_path / "checkpoints" / "chunk_000004" / "manifest.json").unlink()
    older = str(tmp_path / "checkpoints" / "chunk_000003")
    with pytest.raises(ValueError, match=rf"chunk_000004.*newest valid checkpoint is '{older}': resume from it with "
                                         rf"--resume {older}"):
        run(t, quiet(num_seeds=2, resume=str(tmp_path)), config=Toy())


def test_crash_mid_save_leaves_previous_checkpoint_valid(tmp_path, monkeypatch):
    root = str(tmp_path / "checkpoints")
    meta = {"configs": None, "config_hashes": None, "run": {}, "num_chunks": 4,
            "carry": {"paths": ["['x']"], "leaves": [[[3], "float32"]]}}
    x1 = np.arange(6, dtype=np.float32).reshape(2, 3)
    ckpt.save(root, 1, [x1], {"return": np.ones((1, 2), np.float32)}, meta)

    def crash(path):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt, "_sha256", crash)  # orbax has written state/ when the manifest is hashed
    with pytest.raises(OSError, match="simulated"):
        ckpt.save(root, 2, [x1 + 1], {"return": np.ones((2, 2), np.float32)}, meta)
    monkeypatch.undo()
    assert any(n.startswith(".tmp-chunk_000002") for n in os.listdir(root))  # the half-written one
    latest = ckpt.find(str(tmp_path))
    assert latest.endswith("chunk_000001")
    got_meta, leaves, metrics = ckpt.load(latest, meta)
    assert got_meta["chunk"] == 1
    np.testing.assert_array_equal(leaves[0], x1)
    np.testing.assert_array_equal(metrics["return"], np.ones((1, 2)))
    ckpt.save(root, 2, [x1 + 1], {"return": np.ones((2, 2), np.float32)}, meta)  # cleans the temporary
    assert sorted(os.listdir(root)) == ["chunk_000001", "chunk_000002"]


def test_zero_size_leaves_round_trip(tmp_path):
    """A carry leaf with no elements (SAC's n-step window when n_step = 1) is kept by its shape."""
    meta = {"configs": None, "config_hashes": None, "run": {}, "num_chunks": 2,
            "carry": {"paths": ["['x']", "['window']"], "leaves": [[[3], "float32"], [[0, 4], "float32"]]}}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = ckpt.save(str(tmp_path), 1, [x, np.zeros((2, 0, 4), np.float32)], {"return": np.ones((1, 2), np.float32)}, meta)
    _, leaves, _ = ckpt.load(path, meta)
    np.testing.assert_array_equal(leaves[0], x)
    assert leaves[1].shape == (2, 0, 4) and leaves[1].dtype == np.float32
