"""benchmarks.rlcm_vs_ddpo at ci scale: the generative suite runs and writes its PNG, CSV and JSON."""
import csv
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import rlcm_vs_ddpo, suites  # noqa: E402


@pytest.mark.timeout(600)
def test_generative_suite_ci(tmp_path):
    assert "generative" in suites.SUITES
    rows = rlcm_vs_ddpo.suite("ci", out_dir=tmp_path)
    assert [r["method"] for r in rows] == ["RLCM 2 steps", "DDPO 20 steps"]
    for r in rows:
        assert r["samples"] == 64 and r["seeds"] == 2 and r["train_s"] > 0 and r["inference_ms_per_image"] > 0
        assert len(r["final_reward_per_seed"]) == 2 and len(r["pretrained_hash"]) == 16
    (js,) = tmp_path.glob("*.json")
    assert js.with_suffix(".png").exists()
    report = json.loads(js.read_text())
    assert report["rows"] == json.loads(json.dumps(rows)) and "cpu" in report["machine"]
    with open(js.with_suffix(".csv")) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 * 2 * 2  # methods x chunks x seeds
