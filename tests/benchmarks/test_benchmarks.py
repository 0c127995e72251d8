"""benchmarks.run: the speed suite at ci scale (jaxrl only) writes its markdown and JSON; the
registry reports missing modules as unavailable; JUnit reports become learning-suite rows."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import run as bench_run  # noqa: E402
from benchmarks import suites  # noqa: E402


@pytest.mark.timeout(400)
def test_run_speed_ci_writes_md_and_json(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--suite", "speed", "--scale", "ci", "--skip-rejax",
         "--out-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=380,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (js,) = tmp_path.glob("*.json")
    (md,) = tmp_path.glob("*.md")
    assert js.stem == md.stem and js.stem.startswith(tuple("0123456789"))
    report = json.loads(js.read_text())
    assert {"cpu", "cores", "device_kind", "jax"} <= set(report["machine"])
    speed = report["suites"]["speed"]
    assert speed["status"] == "ok" and speed["scale"] == "ci"
    rows = speed["rows"]
    assert [(r["impl"], r["seeds"]) for r in rows] == [("jaxrl", 1), ("jaxrl", 4)]
    for r in rows:
        assert r["env_steps"] >= 32_768 and r["env_steps"] % 512 == 0
        assert r["compile_s"] > 0 and r["train_s"] > 0
        assert r["steps_per_s"] == pytest.approx(r["env_steps"] * r["seeds"] / r["train_s"], rel=0.01)
        assert 8 <= r["final_return"] <= 500  # a CartPole return
        assert "ratio" not in r  # rejax skipped
    table = md.read_text()
    assert "## speed (ci scale): ok" in table and "| jaxrl | 4 |" in table
    assert "## speed" in proc.stdout


def test_registry_lazy_modules_and_failures(monkeypatch):
    assert {"speed", "stream-x", "learning"} <= set(suites.SUITES)
    missing = suites.module_suite(["benchmarks.no_such_benchmark"])("ci")
    assert missing == [{"benchmark": "no_such_benchmark", "status": "unavailable"}]
    assert bench_run.suite_status(missing) == "unavailable"
    assert bench_run.suite_status([{"status": "ok"}, {"status": "unavailable"}]) == "ok"
    assert bench_run.suite_status([{"status": "passed"}, {"status": "failed"}]) == "failed"

    def broken(scale, skip_peers=False):
        raise RuntimeError("boom")

    monkeypatch.setitem(suites.SUITES, "broken", broken)
    res = bench_run.run_suites(["broken"], "ci", skip_peers=True)
    assert res["broken"]["status"] == "failed" and "boom" in res["broken"]["rows"][0]["error"]


def test_junit_rows(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text("""<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_ok" time="12.34"/>
<testcase classname="tests.test_a" name="test_bad" time="1"><failure message="x"/></testcase>
<testcase classname="tests.test_b" name="test_skip" time="0"><skipped message="y"/></testcase>
</testsuite></testsuites>""")
    assert suites.junit_rows(str(xml)) == [
        {"benchmark": "learning", "test": "tests.test_a::test_ok", "status": "passed", "time_s": 12.3},
        {"benchmark": "learning", "test": "tests.test_a::test_bad", "status": "failed", "time_s": 1.0},
        {"benchmark": "learning", "test": "tests.test_b::test_skip", "status": "skipped", "time_s": 0.0},
    ]


@pytest.mark.parametrize("module, flag, name", [("offline_robust", "--out-dir", ""), ("robust", "--out-dir", ""),
                                                ("run", "--out-dir", ""), ("ppo_speed", "--out", "x.json"),
                                                ("stream_speed", "--out", "x.json"), ("gpu_probe", "--out", "x.jsonl")])
def test_an_unwritable_out_path_stops_the_command_line_before_any_run(tmp_path, capsys, module, flag, name):
    """--out-dir / --out under a plain file: argparse's one-line error naming the path, exit 2, when the
    command line is read (before, an hour-long program ran first and then failed to write)."""
    import importlib

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = blocker / "results" / name if name else blocker / "results"
    with pytest.raises(SystemExit) as e:
        importlib.import_module(f"benchmarks.{module}").main([flag, str(bad)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "is not a writable directory" in err[-1] and str(bad.parent if name else bad) in err[-1]
