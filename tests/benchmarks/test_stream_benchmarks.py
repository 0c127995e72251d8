"""benchmarks.stream_speed and benchmarks.stream_barrier at tiny scale: the speed rows are
consistent and positive (official worker skipped), the barrier writes its CSV and PNG and has a
row per learner x variant; plus the helpers they rest on, against hand-computed values."""
import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import stream_barrier, stream_speed  # noqa: E402
from benchmarks.stream_speed_official import episode_return  # noqa: E402


@pytest.mark.timeout(150)
def test_stream_speed_tiny_without_official():
    rows = stream_speed.measure(total_timesteps=1_000, seeds=(1, 2), repeats=1, skip_official=True)
    assert [(r["impl"], r["seeds"]) for r in rows] == [("jaxrl", 1), ("jaxrl", 2)]
    for r in rows:
        assert r["env_steps"] >= 1_000
        assert r["compile_s"] > 0 and r["train_s"] > 0
        assert r["steps_per_s"] > 0
        # train_s is rounded to 1 ms, so allow for that in the aggregate steps/s
        assert r["steps_per_s"] * r["train_s"] == pytest.approx(r["env_steps"] * r["seeds"], abs=r["steps_per_s"] * 6e-4)
        assert "ratio" not in r
    table = stream_speed.format_table(rows + [{"impl": "official", "seeds": 1, "status": "unavailable",
                                               "reason": "no checkout"}])
    assert "jaxrl" in table and "unavailable: no checkout" in table


def test_official_unavailable_says_why(tmp_path):
    why = stream_speed.official_unavailable(tmp_path, Path(sys.executable))
    assert why is not None and "streaming-drl" in why and str(tmp_path) in why
    (tmp_path / "stream_ac_discrete.py").write_text("")
    missing = stream_speed.official_unavailable(tmp_path, tmp_path / "no-such-python")
    assert "torch" in missing and "no-such-python" in missing
    assert stream_speed.official_repo(tmp_path) == tmp_path


def test_official_episode_return_unwraps_float_and_array():
    # the official scripts index info['episode']['r'][0], which fails on current gymnasium (a float)
    assert episode_return({"episode": {"r": 37.0}}) == 37.0
    assert episode_return({"episode": {"r": np.array([12.0])}}) == 12.0


def test_final_returns_and_nonfinite_seeds():
    r = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan], [5.0, 6.0, np.nan], [7.0, 8.0, np.nan]])
    # last 50% of 4 chunks = 2 chunks, NaNs ignored; an all-NaN seed stays NaN
    np.testing.assert_array_equal(stream_barrier.final_returns(r, 0.5)[:2], [6.0, 7.0])
    assert np.isnan(stream_barrier.final_returns(r, 0.5)[2])
    np.testing.assert_array_equal(stream_barrier.final_returns(r, 0.01)[:2], [7.0, 8.0])  # at least one chunk
    carry = {"w": np.array([[0.0, 1.0], [np.inf, 0.0], [0.0, np.nan]]), "step": np.array([1, 2, 3])}
    assert stream_barrier.nonfinite_seeds(carry, 3) == 2


@pytest.mark.timeout(200)
def test_stream_barrier_ci_writes_csv_png_and_rows(tmp_path):
    rows = stream_barrier.suite("ci", out_dir=tmp_path)
    names = list(stream_barrier.variants())
    assert [(r["algo"], r["variant"]) for r in rows] == [(a, v) for a, _ in stream_barrier.CASES for v in names]
    ci = stream_barrier.SCALES["ci"]
    for r in rows:
        assert r["benchmark"] == "stream_barrier" and r["env"] == "CartPole-v1"
        assert r["seeds"] == ci["seeds"] and r["env_steps"] >= ci["total_timesteps"]
        assert 8 <= r["final_return"] <= 500  # a CartPole return
        assert r["ci_low"] <= r["final_return"] <= r["ci_high"]
        assert r["toolkit"] == (r["variant"] == "stream-x")
    assert {r["optimizer"] for r in rows} == {"obgd", "sgd", "adam"}

    (png,) = tmp_path.glob("stream_barrier-*.png")
    (csv_path,) = tmp_path.glob("stream_barrier-*.csv")
    (js,) = tmp_path.glob("stream_barrier-*.json")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with open(csv_path, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows) * ci["seeds"] * ci["num_chunks"]
    assert {(t["algo"], t["variant"]) for t in table} == {(r["algo"], r["variant"]) for r in rows}
    assert {int(t["seed"]) for t in table} == set(range(ci["seeds"]))
    report = json.loads(js.read_text())
    assert report["config"]["scale"] == "ci" and len(report["rows"]) == len(rows)
    # the per-seed finals in the JSON average to the row's final return
    for full, r in zip(report["rows"], rows):
        assert np.nanmean(full["final_returns"]) == pytest.approx(r["final_return"], abs=0.06)
