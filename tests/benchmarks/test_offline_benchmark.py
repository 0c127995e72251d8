"""benchmarks.offline at ci scale: the score table (a seeds x datasets program per algorithm on the
small generated Pendulum data, shared with the offline tests' cache), the speed rows against the
published peers, and the CSV and markdown files; registered as the "offline" suite."""
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import offline, suites  # noqa: E402
from tests.offline_data import SMALL, pendulum  # noqa: E402


def test_offline_ci_scores_speed_and_files(tmp_path):
    assert suites.MODULE_SUITES["offline"] == ["benchmarks.offline"] and "offline" in suites.SUITES
    gen = offline.SCALES["ci"]["gen"]
    assert {k: SMALL[k] for k in gen} == gen  # same settings as the tests' data: one generation for both
    cfg, _ = pendulum()
    rows = offline.scores("ci", cache_dir=cfg.cache_dir) + offline.speed("ci", algos=("iql",))
    sc = [r for r in rows if r["benchmark"] == "offline_scores"]
    assert {(r["algo"], r["level"]) for r in sc} == {(a, lvl) for a in offline.ALGOS for lvl in ("medium", "expert")}
    assert all(r["datasets_in_program"] == 2 and r["seeds"] == 2 for r in sc)  # medium + expert in one program
    sp = [r for r in rows if r["benchmark"] == "offline_speed"]
    assert [r["seeds"] for r in sp] == [1, 2] and all(r["updates_per_s"] > 0 for r in sp)
    assert sp[0]["est_1M_updates_1seed_s"] > 0 and sp[0]["jax_corl_updates_per_s"] == 1e6 / 540
    files = offline.write(rows, "ci", tmp_path)
    table = Path(files["md"]).read_text()
    assert "| Pendulum-v1 | medium |" in table and "## Updates per second" in table
    with open(files["csv"]) as f:
        assert len(list(csv.DictReader(f))) == len(rows)
