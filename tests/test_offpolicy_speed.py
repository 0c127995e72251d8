"""benchmarks.offpolicy_speed at ci scale, peers skipped: it is registered as the "offpolicy" suite,
times jaxrl's SAC and TD3 and reports consistent rows."""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import offpolicy_speed, suites  # noqa: E402


@pytest.mark.timeout(400)
def test_offpolicy_speed_ci_rows():
    assert suites.MODULE_SUITES["offpolicy"] == ["benchmarks.offpolicy_speed"] and "offpolicy" in suites.SUITES
    rows = offpolicy_speed.suite("ci", skip_peers=True)
    assert [(r["impl"], r["algo"], r["seeds"]) for r in rows] == [("jaxrl", "sac", 1), ("jaxrl", "td3", 1)]
    total = offpolicy_speed.SCALES["ci"]["total_timesteps"]
    for r in rows:
        assert r["benchmark"] == "offpolicy_speed"
        assert r["env_steps"] == total and r["updates"] == total - offpolicy_speed.COMMON["learning_starts"]
        assert r["compile_s"] > 0 and r["train_s"] > 0
        assert r["updates_per_s"] == pytest.approx(r["updates"] / r["train_s"], rel=0.01)
        assert r["steps_per_s"] == pytest.approx(r["env_steps"] / r["train_s"], rel=0.01)
        assert -2000 <= r["final_return"] <= 0  # a Pendulum return
        assert "ratio" not in r  # rejax skipped
