"""The runner: seeds vmapped and sharded over devices, padding, config lists (run_many), the NaN
guard and bad input. Multi-device checks run in a subprocess with 4 forced host devices (the XLA
flag must be set before jax is imported)."""
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core import config as C
from jaxrl.core.run import RunOptions, RunResult, run, seed_keys, seed_mesh
from jaxrl.core.sweep import run_many
from jaxrl.core.train import Trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHORT = dict(total_timesteps=10_240, num_chunks=2)  # PPO CartPole: 2 chunks of 10 updates


# ------------------------------------------------------------------------------------ a toy algorithm
@dataclass(frozen=True)
class Toy:
    """x <- scale * x + noise, `steps` times per chunk; elementwise only, so results do not depend
    on the batch (no reductions whose order XLA may change with the batch size)."""

    scale: float = 0.5
    steps: int = 3
    offset: float = 0.0
    num_chunks: int = 4

    def __post_init__(self):
        C.check_positive("scale", self.scale)
        C.check_positive("steps", self.steps)


def toy_train(cfg: Toy) -> Trainer:
    def init(key):
        return {"x": jax.random.normal(key, (2,)), "key": key, "t": jnp.int32(0)}

    def update(c):
        def body(c, _):
            key, k = jax.random.split(c["key"])
            x = c["x"] * cfg.scale + jax.random.normal(k, (2,)) + cfg.offset
            return {"x": x, "key": key, "t": c["t"] + 1}, x[0]
        c, first = jax.lax.scan(body, c, None, cfg.steps)
        return c, {"env_steps": c["t"] * 10, "return": first[-1], "loss": c["x"][1] * c["x"][1]}

    return Trainer(init, update, cfg.num_chunks)


def quiet(**kw):
    return RunOptions(progress=False, **kw)


# ------------------------------------------------------------------------------------ devices
SCRIPT = textwrap.dedent("""
    import sys
    import jax, numpy as np
    from jaxrl.algos import ppo
    from jaxrl.core.run import RunOptions, run, seed_mesh
    from jaxrl.core.sweep import run_many
    assert jax.device_count() == 4, jax.devices()
    mesh = seed_mesh()
    assert mesh.axis_names == ("seeds",) and mesh.devices.size == 4
    SHORT = %r
    cfg = ppo.Config(**SHORT)
    cfg2 = ppo.Config(**SHORT, lr=1e-3, ent_coef=0.0)
    t = ppo.make_train(cfg)
    o = lambda **k: RunOptions(progress=False, fast_compile=True, **k)  # compile-bound: XLA's cheap settings
    out = {}
    def put(name, r):
        for k, v in r.metrics.items():
            out[name + "/" + k] = v
        return r
    r = put("s8d4", run(t, o(num_seeds=8, num_devices=4)))
    out["s8d4_carry_devices"] = np.array(len(r.carry.key.sharding.device_set))
    put("s8d1", run(t, o(num_seeds=8, num_devices=1)))
    for n in (1, 3):
        put("s%%dd4" %% n, run(t, o(num_seeds=n, num_devices=4)))
    put("s20d4", run(t, o(num_seeds=20, num_devices=4)))  # two groups of 16
    for i in (0, 5):
        put("single%%d" %% i, run(t, o(num_seeds=1, num_devices=1), seeds=[i]))
    # traced hyperparameters against constants: XLA's default settings on both sides (the cheap
    # ones fold the two differently, measured ~1e-3 apart on the loss after 20k steps)
    full = lambda **k: RunOptions(progress=False, **k)
    put("many", run_many(ppo.make_train, [cfg, cfg2], full(num_seeds=2, num_devices=2)))
    put("cfg1", run(t, full(num_seeds=2, num_devices=1)))
    put("cfg2", run(ppo.make_train(cfg2), full(num_seeds=2, num_devices=1)))
    np.savez(sys.argv[1], **out)
    print("done")
""") % (SHORT,)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("devices") / "metrics.npz"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr[-3000:]
    with np.load(out) as f:
        return {k: f[k] for k in f}, proc.stderr


def _metrics(d, name):
    return {k.split("/", 1)[1]: v for k, v in d.items() if k.startswith(name + "/")}


# XLA's CPU reductions (sums and means inside the PPO loss, Adam, etc.) do not keep one summation
# order for every batch size: the same seed computed in a vmapped batch of 8 (one device), of 2
# (8 seeds over four devices) or of 1 (a single run) differs in the last bits (measured: ~1e-7
# relative on losses, ~1e-8 absolute on parameters after 20k steps; the checks now run 10k, which
# cut the subprocess from about 200 to 160 s here; the exact checks below show runs with equal
# per-device batches are bitwise equal). Sampled actions did not flip at either length, so returns
# and episode counts came out equal; losses get a tight tolerance.
TOL = dict(rtol=2e-5, atol=1e-6, equal_nan=True)


def _assert_close(a: dict, b: dict, exact: bool):
    assert a.keys() == b.keys() and {"return", "loss", "env_steps"} <= a.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        if exact or k in ("env_steps", "episodes"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], err_msg=k, **TOL)


@pytest.mark.timeout(600)
def test_8_seeds_on_4_devices_equal_1_device(four_devices):
    d, _ = four_devices
    a, b = _metrics(d, "s8d4"), _metrics(d, "s8d1")
    assert a["return"].shape == (2, 8)
    assert int(d["s8d4_carry_devices"]) == 4  # the seed axis really was sharded
    assert not np.array_equal(a["return"][:, 0], a["return"][:, 1])  # seeds differ
    _assert_close(a, b, exact=False)


@pytest.mark.timeout(600)
def test_seed_i_on_4_devices_is_the_same_for_every_number_of_seeds(four_devices):
    d, _ = four_devices
    full = _metrics(d, "s8d4")
    for n in ("s1d4", "s3d4", "s20d4"):
        part = _metrics(d, n)
        k = min(part["return"].shape[1], 8)
        _assert_close({m: v[:, :k] for m, v in part.items()}, {m: v[:, :k] for m, v in full.items()}, exact=True)


@pytest.mark.timeout(600)
def test_vmapped_seeds_equal_single_runs(four_devices):
    d, _ = four_devices
    full = _metrics(d, "s8d1")
    for i in (0, 5):
        single = _metrics(d, f"single{i}")
        assert single["return"].shape == (2, 1)
        _assert_close(single, {k: v[:, i:i + 1] for k, v in full.items()}, exact=False)


@pytest.mark.timeout(600)
def test_config_list_equals_separate_runs(four_devices):
    d, _ = four_devices
    many = _metrics(d, "many")
    assert many["return"].shape == (2, 2, 2)  # chunks, configs (lr/ent_coef), seeds
    # traced lr/ent_coef in one program against the constants of separate runs
    _assert_close({k: v[:, 0] for k, v in many.items()}, _metrics(d, "cfg1"), exact=False)
    _assert_close({k: v[:, 1] for k, v in many.items()}, _metrics(d, "cfg2"), exact=False)
    assert not np.allclose(many["loss"][:, 0], many["loss"][:, 1])  # the configs did differ


# ------------------------------------------------------------------------------------ bad input
def test_more_devices_than_exist_is_a_value_error():
    n = jax.device_count()
    with pytest.raises(ValueError, match=rf"num_devices={n + 1} but only {n} device"):
        seed_mesh(n + 1)
    with pytest.raises(ValueError, match=rf"num_devices={n + 3} but only {n} device"):
        run(toy_train(Toy()), quiet(num_devices=n + 3))


@pytest.mark.parametrize("kw,match", [
    ({"num_seeds": 0}, "num_seeds must be a positive int"),
    ({"num_devices": 0}, "num_devices must be a positive int"),
    ({"checkpoint_every": -1}, "checkpoint_every must be an int >= 0"),
    ({"block_size": -2}, "block_size must be an int >= 0"),
    ({"checkpoint_every": 2}, "checkpoint_every needs log_dir"),
    ({"tensorboard": True}, "tensorboard needs log_dir"),
])
def test_bad_run_options(kw, match):
    with pytest.raises(ValueError, match=match):
        RunOptions(**kw)


# ------------------------------------------------------------------------------------ toy runs
def test_seed_keys_do_not_depend_on_num_seeds():
    np.testing.assert_array_equal(seed_keys(3, 8)[5], seed_keys(3, 6)[5])
    np.testing.assert_array_equal(seed_keys(3, 2)[1], jax.random.fold_in(jax.random.PRNGKey(3), 1))


def test_run_explicit_seeds_and_final():
    t = toy_train(Toy())
    full = run(t, quiet(num_seeds=4, seed=7))
    part = run(t, quiet(seed=7), seeds=[3, 1])
    assert part.seeds == [3, 1] and part.metrics["return"].shape == (4, 2)
    for k in full.metrics:
        np.testing.assert_array_equal(part.metrics[k], full.metrics[k][:, [3, 1]])
    # RunResult.final: last non-NaN per seed (and per config)
    r = RunResult({"return": np.array([[1.0, np.nan, 3.0], [2.0, np.nan, np.nan]])}, None)
    np.testing.assert_array_equal(r.final(), [2.0, np.nan, 3.0])
    r3 = RunResult({"return": np.array([[[1.0, 2.0]], [[np.nan, 5.0]]])}, None)
    np.testing.assert_array_equal(r3.final(), [[1.0, 5.0]])


def test_toy_run_matches_hand_rolled_loop():
    cfg = Toy(scale=0.5, steps=2, num_chunks=2)
    res = run(toy_train(cfg), quiet(num_seeds=2))
    for s, key in enumerate(seed_keys(0, 2)):
        x = np.asarray(jax.random.normal(key, (2,)))
        for chunk in range(2):
            for _ in range(2):
                key, k = jax.random.split(key)
                x = x * 0.5 + np.asarray(jax.random.normal(k, (2,)))
            np.testing.assert_allclose(res.metrics["return"][chunk, s], x[0], rtol=1e-6)
            np.testing.assert_allclose(res.metrics["loss"][chunk, s], x[1] ** 2, rtol=1e-6)
    np.testing.assert_array_equal(res.metrics["env_steps"][:, 0], [20, 40])


def test_run_many_toy_equals_separate_runs_and_shapes():
    cfgs = [Toy(scale=0.5), Toy(scale=0.9, offset=1.0), Toy(scale=0.2, offset=-1.0)]
    many = run_many(toy_train, cfgs, quiet(num_seeds=3, seed=1))
    assert many.metrics["return"].shape == (4, 3, 3) and many.configs == cfgs
    assert many.carry["x"].shape == (3, 3, 2)
    for c, cfg in enumerate(cfgs):
        one = run(toy_train(cfg), quiet(num_seeds=3, seed=1))
        for k in one.metrics:
            np.testing.assert_array_equal(many.metrics[k][:, c], one.metrics[k], err_msg=f"{k} config {c}")
        np.testing.assert_array_equal(many.carry["x"][c], one.carry["x"])


def test_run_many_refuses_a_loop_length_field():
    with pytest.raises(ValueError, match=r"configs differ in 'steps', which cannot vary.*ConcretizationTypeError"):
        run_many(toy_train, [Toy(steps=2), Toy(steps=3)], quiet())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("field,value,match", [
    ("num_envs", 8, r"configs differ in \['num_envs'\], which changes the shapes of the training carry"),
    ("num_steps", 64, r"configs differ in 'num_steps', which cannot vary within one vmapped program"),
    ("env", "Acrobot-v1", r"configs differ in 'env' .*which is not numeric"),
])
def test_run_many_ppo_unequal_configs_are_value_errors(field, value, match):
    from jaxrl.algos import ppo

    cfgs = [ppo.Config(**SHORT), ppo.Config(**{**SHORT, field: value})]
    with pytest.raises(ValueError, match=match):
        run_many(ppo.make_train, cfgs, quiet(num_seeds=2))


# ------------------------------------------------------------------------------------ NaN guard
def test_nan_loss_raises_naming_metric_chunk_and_seeds(tmp_path):
    x0 = np.asarray(jax.vmap(lambda k: jax.random.normal(k, (2,)))(seed_keys(0, 4)))[:, 0]
    bad_seeds = [i for i in range(4) if x0[i] > 0]
    assert 0 < len(bad_seeds) < 4  # the test picks some seeds, not all

    def make(cfg):
        t = toy_train(cfg)

        def init(key):
            c = t.init(key)
            return {**c, "x0": c["x"][0]}

        def update(c):
            x0 = c.pop("x0")
            c, m = t.update(c)
            m["value_loss"] = jnp.where((c["t"] == 2 * cfg.steps) & (x0 > 0), jnp.nan, 1.0)
            m["return"] = jnp.nan  # NaN in a non-loss metric is fine
            return {**c, "x0": x0}, m

        return Trainer(init, update, cfg.num_chunks)

    msg = f"metric 'value_loss' is NaN after chunk 1 (of 4) for seeds {bad_seeds}"
    with pytest.raises(FloatingPointError, match=re.escape(msg)):
        run(make(Toy()), quiet(num_seeds=4, log_dir=str(tmp_path)))
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"].startswith("failed: FloatingPointError")
    rows = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 4  # the failing chunk is in the CSV, for diagnosis
    assert not (tmp_path / "final.json").exists()
    # with XLA's cheap settings the message says so: such code has turned finite programs NaN
    with pytest.raises(FloatingPointError, match=re.escape(msg) + r" \(compiled with fast_compile: rerun without it"):
        run(make(Toy()), quiet(num_seeds=4, fast_compile=True))


# ------------------------------------------------------------------------------------ multi-host
MH_TOY = textwrap.dedent("""
    import jax
    from jaxrl.core.train import Trainer
    def _init(key):
        return {"x": jax.random.normal(key, (2,)), "key": key}
    def _update(c):
        key, k = jax.random.split(c["key"])
        x = c["x"] * 0.5 + jax.random.normal(k, (2,))
        return {"x": x, "key": key}, {"return": x[0], "loss": x[1] * x[1]}
    TOY = Trainer(_init, _update, 4)
""")

MH_WORKER = textwrap.dedent("""
    import os, sys
    pid, port, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    from jaxrl.core.run import RunOptions, run, init_distributed
    dist = dict(coordinator_address="127.0.0.1:" + port, num_processes=2, process_id=pid)
    init_distributed(RunOptions(**dist))  # first thing, before any JAX computation
    import jax, numpy as np
    %s
    o = lambda **k: RunOptions(num_seeds=6, progress=False, **dist, **k)
    full = run(TOY, o(log_dir=root + "/full"))
    run(TOY, o(log_dir=root + "/stopped", checkpoint_every=2, stop_after=3))
    res = run(TOY, o(resume=root + "/stopped"))
    np.savez(root + "/p%%d.npz" %% pid, full=full.metrics["return"], resumed=res.metrics["return"],
             x=res.carry["x"], procs=jax.process_count(), devs=jax.device_count())
""") % MH_TOY


def _two_processes(root, port: str) -> list[tuple[int, str]]:
    """Run MH_WORKER as processes 0 and 1 writing under `root`: [(return code, stderr)]."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    logs = [open(root / f"stderr{i}.txt", "w") for i in range(2)]  # files: a full pipe would block a worker
    procs = [subprocess.Popen([sys.executable, "-c", MH_WORKER, str(i), port, str(root)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=log) for i, log in enumerate(logs)]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        if any(p.poll() not in (None, 0) for p in procs):
            break  # one failed: the other would wait for it until its own timeout
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    for log in logs:
        log.close()
    return [(p.returncode, (root / f"stderr{i}.txt").read_text()) for i, p in enumerate(procs)]


@pytest.mark.timeout(300)
def test_two_processes_with_jax_distributed_equal_one(tmp_path):
    """Two local processes x 2 CPU devices each, joined by jax.distributed over the loopback
    interface: a global 4-device mesh, 6 seeds padded to 8, metrics gathered to every process,
    process 0 writing the run dir and checkpoints, and a resume. Results equal one process.
    (This test once failed now and then with a Gloo timeout in process 0: process 1 had died
    refusing the run dir that process 0 had just started writing; only process 0 checks it now.)"""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    for rc, err in _two_processes(tmp_path, port):
        assert rc == 0, err[-3000:]
    ns = {}
    exec(MH_TOY, ns)
    ref = run(ns["TOY"], quiet(num_seeds=6, log_dir=str(tmp_path / "single")))
    for i in range(2):
        with np.load(tmp_path / f"p{i}.npz") as f:
            assert int(f["procs"]) == 2 and int(f["devs"]) == 4
            np.testing.assert_array_equal(f["full"], ref.metrics["return"])
            np.testing.assert_array_equal(f["resumed"], ref.metrics["return"])
            np.testing.assert_array_equal(f["x"], ref.carry["x"])
    for d in ("full", "stopped"):
        assert (tmp_path / d / "metrics.csv").read_bytes() == (tmp_path / "single" / "metrics.csv").read_bytes()
    meta = json.loads((tmp_path / "full" / "meta.json").read_text())
    assert (meta["process_count"], meta["device_count"], meta["local_device_count"]) == (2, 4, 2)


# ------------------------------------------------------------------------------------ env lists
@dataclass(frozen=True)
class RandomCartPole:
    """A random policy on CartPole whose gravity is a config field (an env parameter)."""

    gravity: float = 9.8
    num_chunks: int = 2

    def __post_init__(self):
        C.check_positive("gravity", self.gravity)


def random_cartpole(cfg: RandomCartPole) -> Trainer:
    import envs

    env, params = envs.make("CartPole-v1", gravity=cfg.gravity)

    def init(key):
        k, key = jax.random.split(key)
        obs, state = env.reset(k, params)
        return {"state": state, "key": key}

    def update(c):
        def step(c, _):
            key, k_a, k_s = jax.random.split(c["key"], 3)
            a = jax.random.randint(k_a, (), 0, 2)
            obs, state, r, term, trunc, info = env.step(k_s, c["state"], a, params)
            return {"state": state, "key": key}, obs
        c, obs = jax.lax.scan(step, c, None, 50)
        return c, {"theta_dot": obs[-1, 3], "x": obs[-1, 0]}

    return Trainer(init, update, cfg.num_chunks)


def test_run_many_over_env_params_equals_separate_runs():
    cfgs = [RandomCartPole(9.8), RandomCartPole(20.0)]
    many = run_many(random_cartpole, cfgs, quiet(num_seeds=2))
    for c, cfg in enumerate(cfgs):
        one = run(random_cartpole(cfg), quiet(num_seeds=2))
        for k in one.metrics:
            np.testing.assert_array_equal(many.metrics[k][:, c], one.metrics[k], err_msg=k)
    assert not np.array_equal(many.metrics["theta_dot"][:, 0], many.metrics["theta_dot"][:, 1])
