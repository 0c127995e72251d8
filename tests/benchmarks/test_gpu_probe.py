"""benchmarks/gpu_probe.py: its stand-in for offline.sweep returns sweep's result and times each
phase; its probes are valid configs at the gpu scales' widths."""
import jax.numpy as jnp
import numpy as np
import pytest

from tests.core.test_offline import _toy_data, _toy_learner


def test_timed_sweep_returns_sweeps_result_and_fills_the_times():
    from benchmarks.gpu_probe import _timed_sweep
    from jaxrl.core import offline

    datas = [_toy_data(2)._replace(rewards=jnp.full(2, r)) for r in (0.0, 1.0)]
    times = {}
    _, m = _timed_sweep(times)(_toy_learner(), datas, 2, 3)
    np.testing.assert_array_equal(m["total"], offline.sweep(_toy_learner(), datas, 2, 3)[1]["total"])
    assert set(times) == {"compile_s", "run1_s", "run2_s"} and all(v >= 0 for v in times.values())


def test_probes_are_the_gpu_scales_programs_at_small_budgets():
    from benchmarks.gpu_probe import probes

    rows = list(probes("data", updates=2_000, online=1_000))
    assert [r[0] for r in rows][:2] == ["riql K5 256x256, no eval", "riql K5 256x256, one eval"]
    for name, mod, cfg, datas, seeds, iters in rows:
        assert seeds == 5 and len(datas) in (1, 9)  # RO2O: the medium data; RIQL / IQL: clean + 8 corrupted
        assert iters == 2_000 + getattr(cfg, "online_steps", 0)
        assert cfg.hidden[0] == 256 and cfg.eval_episodes in (0, 10)


def test_a_zero_budget_stops_the_command_line(capsys):
    from benchmarks.gpu_probe import main

    with pytest.raises(SystemExit) as e:
        main(["--updates", "0"])
    assert e.value.code == 2 and "--updates must be positive" in capsys.readouterr().err.splitlines()[-1]
