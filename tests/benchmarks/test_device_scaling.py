"""benchmarks.device_scaling measures PPO with seeds sharded over forced host devices."""
import pytest

from benchmarks import device_scaling


@pytest.mark.timeout(300)
def test_two_forced_devices_measure_and_agree_with_one():
    one = device_scaling.measure(1, seeds=2, total_timesteps=4096, repeats=1)
    two = device_scaling.measure(2, seeds=2, total_timesteps=4096, repeats=1)
    for r in (one, two):
        assert "error" not in r, r.get("error")
        assert r["env_steps_per_s"] > 0 and r["steps_per_seed"] == 4096
    assert two["devices"] == 2
    # the same seeds on another device count learn the same (CartPole returns are counts)
    assert two["final_return"] == one["final_return"]


def test_seeds_must_divide_over_devices():
    with pytest.raises(ValueError, match=r"--seeds 6 must be a positive multiple of every --devices value; bad: \[4\]"):
        device_scaling.main(["--devices", "1", "2", "4", "--seeds", "6"])
