"""benchmarks.robust: registered as the "robust" suite; its grid-speed part at the tiny scale, and
its files (CSV, markdown, PNG) from rows of the shape its other parts produce. The training parts
compile several learners, so they run in the benchmark itself, not here."""
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import robust, suites  # noqa: E402


@pytest.mark.timeout(300)
def test_grid_speed_tiny_and_files(tmp_path):
    assert suites.MODULE_SUITES["robust"] == ["benchmarks.robust"] and "robust" in suites.SUITES
    (speed,) = robust.grid_speed("tiny")
    assert speed["points"] == 9 and speed["vmap_s"] > 0 and speed["loop_s"] > 0 and speed["same_returns"]
    assert speed["ratio"] == pytest.approx(speed["loop_s"] / speed["vmap_s"], rel=0.05)
    rob = [{"benchmark": "robust", "part": "robustness", "method": "m", "worst": 10.0, "average": 20.0}]
    cert = [{"benchmark": "robust", "part": "certificates", "sigma": 0.2, "epsilon": e, "certified_return": 9.0 - e}
            for e in robust.EPSILONS]
    files = robust.write(rob + cert + [speed], {("CartPole-v1", "m"): np.arange(9.0)}, "tiny", tmp_path)
    for path in (files["csv"], files["md"], str(Path(files["csv"]).with_suffix(".png"))):
        assert Path(path).stat().st_size > 100
    assert "grid_speed" in Path(files["md"]).read_text() and "partial" not in Path(files["md"]).read_text()
    saved = np.load(Path(files["csv"]).with_suffix(".npz"))
    assert list(saved["env"]) == ["CartPole-v1"] and list(saved["method"]) == ["m"]
    np.testing.assert_array_equal(saved["returns"], [np.arange(9.0)])
    png = Path(files["csv"]).with_suffix(".png")
    png.unlink()
    robust.main(["--redraw", str(png.with_suffix(".npz"))])  # the PNG again, from the npz and the CSV
    assert png.stat().st_size > 100
    for bad in (png, tmp_path / "none.npz"):  # not an npz; no such run: one line, exit 2
        with pytest.raises(SystemExit) as e:
            robust.main(["--redraw", str(bad)])
        assert e.value.code == 2
    files = robust.write(rob, {}, "tiny", tmp_path / "partial", running=True)  # a long run's files while it goes
    assert "partial" in Path(files["md"]).read_text()
    assert np.load(Path(files["csv"]).with_suffix(".npz"))["returns"].size == 0


def test_every_env_builds_every_method():
    """The full scale's envs and methods pass their config checks (channels, sets, action types)
    before an hour of training finds out."""
    assert set(robust.SCALES["full"]["envs"]) == set(robust.ENVS)
    module = {"ppo_nominal": "ppo", "ppo_dr": "iwocs", "rarl": "rarl", "qarl": "qarl", "qarl_linear": "qarl",
              "iwocs": "iwocs", "iwocs_sac": "iwocs", "qarl_sac": "qarl"}
    for env in robust.ENVS:
        for name in robust.METHODS:
            method = robust._method(name, 100_000, (8,), env)
            if method is None:  # SAC on CartPole's discrete actions
                assert name in robust.SAC_METHODS and env == "CartPole-v1"
                continue
            cfg, mod, _ = method
            assert cfg.env == env and mod.__name__ == f"jaxrl.algos.{module[name]}"
