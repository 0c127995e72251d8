"""The command line (jaxrl.core.cli) as a user meets it: flags, one-line errors with exit code 2,
and SIGTERM mid-run leaving a resumable checkpoint whose resumed run equals an uninterrupted one.
The error and signal tests run the real CLI in subprocesses."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PPO = [sys.executable, "-m", "jaxrl.algos.ppo"]


def test_cli_run_flags():
    from jaxrl.algos import ppo
    from jaxrl.core.cli import parse

    cfg, opts = parse(ppo.Config, ["--num-seeds", "3", "--log-dir", "runs/x", "--tensorboard",
                                   "--checkpoint-every", "2", "--anneal-lr", "False", "--progress", "False",
                                   "--num-devices", "1"])
    assert cfg.anneal_lr is False and cfg == ppo.Config(anneal_lr=False)
    assert (opts.num_seeds, opts.log_dir, opts.tensorboard, opts.wandb, opts.checkpoint_every,
            opts.progress, opts.num_devices) == (3, "runs/x", True, False, 2, False, 1)
    assert opts.coordinator_address is None  # single-host unless asked
    with pytest.raises(ValueError, match="tensorboard needs log_dir"):
        parse(ppo.Config, ["--tensorboard"])


def _cli(args, **kw):
    return subprocess.Popen(PPO + args, cwd=kw.pop("cwd", REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


@pytest.mark.timeout(400)
def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    cases = {
        "unknown env": (["--env", "CartPol"], "unknown env 'CartPol'. Did you mean: CartPole-v1?"),
        "zero seeds": (["--num-seeds", "0"], "num_seeds must be a positive int, got 0"),
        "negative size": (["--num-envs", "-4"], "num_envs must be > 0, got -4"),
        "bad lr": (["--lr", "-0.1"], "lr must be > 0, got -0.1"),
        "missing resume dir": (["--resume", str(tmp_path / "nope")], "is not a directory"),
        "log dir is a file": (["--log-dir", str(tmp_path / "a-file")], "is a file, not a directory"),
    }
    procs = {k: _cli(args) for k, (args, _) in cases.items()}
    for k, p in procs.items():
        out, err = p.communicate(timeout=300)
        lines = err.strip().splitlines()
        assert p.returncode == 2, (k, err[-3000:])
        assert len(lines) == 1 and lines[0].startswith("error: ") and cases[k][1] in lines[0], (k, err[-3000:])
        assert out == "", (k, out)  # the config is not printed before the error


@pytest.mark.timeout(600)
def test_sigterm_checkpoints_and_resume_equals_uninterrupted(tmp_path):
    # --fast-compile: this run is compile-bound; every run here (and the resume) compiles the same way
    args = ["--total-timesteps", "20480", "--num-chunks", "10", "--num-seeds", "2", "--progress", "False", "--fast-compile"]
    ref = _cli(args + ["--log-dir", str(tmp_path / "ref")])
    run_dir = tmp_path / "run"
    p = _cli(args + ["--log-dir", str(run_dir), "--checkpoint-every", "100"])
    deadline = time.time() + 400
    while not (run_dir / "metrics.csv").exists() or len((run_dir / "metrics.csv").read_text().splitlines()) < 3:
        assert p.poll() is None and time.time() < deadline, p.communicate()
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)  # after the first chunk's rows: the run is mid-way
    out, err = p.communicate(timeout=300)
    assert p.returncode == 143, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [l for l in err.strip().splitlines() if l.startswith("[jaxrl] interrupted") or l.startswith("resume with")]
    assert lines[0].startswith("[jaxrl] interrupted by SIGTERM after chunk ") and "checkpoint saved at" in lines[0]
    assert lines[1] == f"resume with: python -m jaxrl.algos.ppo --resume {run_dir}", lines
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    stopped_at = int(lines[0].split("after chunk ")[1].split(";")[0])
    assert 0 < stopped_at < 10
    res = _cli(["--resume", str(run_dir), "--progress", "False", "--fast-compile"])
    out, err = res.communicate(timeout=400)
    assert res.returncode == 0, err[-3000:]
    ref_out, ref_err = ref.communicate(timeout=400)
    assert ref.returncode == 0, ref_err[-3000:]
    assert (run_dir / "metrics.csv").read_bytes() == (tmp_path / "ref" / "metrics.csv").read_bytes()
    assert json.loads((run_dir / "final.json").read_text()) == json.loads((tmp_path / "ref" / "final.json").read_text())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert [s["status"] for s in meta["sessions"]] == ["interrupted", "finished"]
    assert meta["sessions"][1]["resumed_at_chunk"] == stopped_at and meta["status"] == "finished"
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["algorithm"] == "jaxrl.algos.ppo"
