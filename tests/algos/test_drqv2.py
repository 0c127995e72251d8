"""Tests of jaxrl.algos.drqv2: config errors (before compiling), learning state-based Pendulum-v1.
The shared pieces (random shift, dormant ratio, noisy actions) are tested in tests/core/test_drq.py
and the replay in tests/core/test_frame_buffer.py."""
import numpy as np
import pytest

from jaxrl.algos import drqv2
from jaxrl.core.run import RunOptions, run


@pytest.mark.parametrize("kwargs, match", [
    ({"env": "CartPole-v1"}, "drqv2 needs continuous actions; env 'CartPole-v1' has discrete actions"),
    ({"env": "pixels/pendulum_swingup", "image_size": 16}, "image_size must be an int >= 32, got 16"),
    ({"env": "pixels/pendulum_swingup", "frame_stack": 0}, "frame_stack must be > 0"),
    ({"env": "pixels/pendulum_swingup", "image_size": 32, "encoder_features": (8,) * 16}, "image_size=32 is too small"),
    ({"tau": 0.0}, r"tau must be in \(0.0, 1.0\]"),
    ({"batch_size": 512, "buffer_size": 256}, "batch_size=512 must be <= buffer_size=256"),
    ({"learning_starts": 100_000}, "learning_starts=100000 must be < total_timesteps=100000"),
])
def test_bad_config_raises_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        drqv2.Config(**kwargs)


# CI form: 3k agent steps; the full form (`slow`) runs drqv2.PENDULUM (8k steps) on 4 seeds.
CI = dict(drqv2.PENDULUM, total_timesteps=3_000, num_chunks=2)


@pytest.fixture(scope="module")
def pendulum_run():
    return run(drqv2.make_train(drqv2.Config(**CI)), RunOptions(progress=False, num_seeds=2, block_size=0))


def test_learns_pendulum_from_states(pendulum_run):
    final = np.asarray(pendulum_run.metrics["eval_return"][-1])
    assert np.all(final >= -400), final


def test_logs_dormant_ratios_every_chunk(pendulum_run):
    for k in ("actor_dormant", "critic_dormant"):
        r = np.asarray(pendulum_run.metrics[k])
        assert r.shape == (2, 2) and np.all((r >= 0) & (r <= 1))


@pytest.mark.slow
def test_learns_pendulum_full():
    res = run(drqv2.make_train(drqv2.Config(**drqv2.PENDULUM)), RunOptions(progress=False, num_seeds=4))
    assert np.all(np.asarray(res.metrics["eval_return"][-1]) >= -400)
