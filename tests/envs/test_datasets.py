"""envs.datasets: bit-for-bit round trips (npz, HDF5, Minari), a D4RL-layout HDF5 file with its
extra groups loads unchanged, a dataset Minari itself made loads, every validation error names
its key and index, D4RL's reference scores and normalisation."""
import math

import h5py
import numpy as np
import pytest

from envs.datasets import (
    KEYS, Dataset, DatasetError, concatenate, d4rl_name_parts, load, read_minari, reference_scores, save,
    write_minari,
)
from envs.spec import EnvSpec


def make_dataset(n=60, obs_dim=3, act_dim=2, dtype=np.float32, seed=0):
    """Two whole episodes (a terminal at 24, a timeout at the end), next_obs = the next row inside each."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n + 1, obs_dim)).astype(dtype)
    nxt = obs[1:].copy()
    terminals = np.zeros(n, bool)
    terminals[24] = True
    nxt[24] = rng.normal(size=obs_dim)  # the terminal's successor is not the next episode's start
    timeouts = np.zeros(n, bool)
    timeouts[-1] = True
    return Dataset(obs[:-1], rng.uniform(-1, 1, (n, act_dim)).astype(dtype), rng.normal(size=n).astype(dtype),
                   terminals, timeouts, nxt, env="Pendulum-v1", level="medium", source="test",
                   behavior_return=-5.5, ref_min_score=-10.0, ref_max_score=10.0)


SPEC = EnvSpec("fake", (3,), "float32", False, 2, (-1.0, -1.0), (1.0, 1.0), 200)


def assert_same(a: Dataset, b: Dataset, infos=True):
    for k in KEYS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert x.tobytes() == y.tobytes(), k
    if infos:
        assert a.infos.keys() == b.infos.keys()
        for k in a.infos:
            assert a.infos[k].tobytes() == b.infos[k].tobytes() and a.infos[k].dtype == b.infos[k].dtype
    assert a.content_hash() == b.content_hash()
    for k in ("env", "level", "source", "ref_min_score", "ref_max_score", "behavior_return"):
        x, y = getattr(a, k), getattr(b, k)
        assert x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)), k


@pytest.mark.parametrize("suffix", ["npz", "hdf5"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_bit_for_bit(tmp_path, suffix, dtype):
    ds = make_dataset(dtype=dtype).replace(infos={"qpos": np.arange(120.0).reshape(60, 2)},
                                           extra_metadata={"algorithm": np.bytes_("SAC")})
    back = load(save(ds, tmp_path / f"d.{suffix}"))
    assert_same(ds, back)
    assert back.extra_metadata["algorithm"] == b"SAC"


def test_minari_round_trip_bit_for_bit(tmp_path):
    pytest.importorskip("minari")
    ds = make_dataset()
    path = write_minari(ds, "jaxrl/test/medium-v0", root=str(tmp_path))
    back = read_minari(path)
    assert_same(ds, back, infos=False)
    assert load(path).content_hash() == ds.content_hash()


def test_minari_export_needs_consistent_next_observations(tmp_path):
    pytest.importorskip("minari")
    ds = make_dataset()
    nxt = ds.next_observations.copy()
    nxt[3] += 1.0
    with pytest.raises(DatasetError, match=r"'next_observations' at index 3"):
        write_minari(ds.replace(next_observations=nxt), "jaxrl/test/bad-v0", root=str(tmp_path))


def test_dataset_made_by_minari_loads(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = minari.DataCollector(gym.make("Pendulum-v1", max_episode_steps=50))
    env.reset(seed=0)
    for _ in range(2):
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            done = term or trunc
        env.reset()
    made = env.create_dataset("pendulum/random-v0", ref_min_score=-1500.0, ref_max_score=-150.0,
                              algorithm_name="random", author="test", author_email="t@t", code_permalink="none")
    ds = read_minari("pendulum/random-v0")
    assert len(ds) == 100 and ds.obs_shape == (3,) and ds.action_dim == 1
    assert ds.timeouts.sum() == 2 and not ds.terminals.any()
    ep = next(iter(made.iterate_episodes()))
    np.testing.assert_array_equal(ds.observations[:50], ep.observations[:-1])
    np.testing.assert_array_equal(ds.next_observations[:50], ep.observations[1:])
    assert (ds.ref_min_score, ds.ref_max_score) == (-1500.0, -150.0)
    assert ds.validate(EnvSpec("Pendulum-v1", (3,), "float32", False, 1, (-2.0,), (2.0,), 200)) is ds


def test_real_d4rl_layout_loads_unchanged(tmp_path):
    """D4RL's HDF5 layout: float64 arrays, [N, 1] rewards, infos/* and nested metadata/* groups,
    a name that says task and level."""
    rng = np.random.default_rng(1)
    n = 40
    path = tmp_path / "hopper_medium_replay-v2.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = rng.normal(size=(n, 11))
        f["next_observations"] = rng.normal(size=(n, 11))
        f["actions"] = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        f["rewards"] = rng.normal(size=(n, 1)).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = np.r_[np.zeros(n - 1, bool), True]
        f["infos/qpos"] = rng.normal(size=(n, 6))
        f["infos/action_log_probs"] = rng.normal(size=n).astype(np.float32)
        f["metadata/algorithm"] = np.bytes_("SAC")
        f["metadata/policy/fc0/weight"] = rng.normal(size=(4, 4)).astype(np.float32)
    ds = load(path)
    with h5py.File(path, "r") as f:
        assert ds.observations.dtype == np.float64 and ds.observations.tobytes() == f["observations"][()].tobytes()
        assert ds.rewards.tobytes() == f["rewards"][()][:, 0].tobytes()
        assert ds.infos["qpos"].tobytes() == f["infos/qpos"][()].tobytes()
        assert ds.extra_metadata["policy/fc0/weight"].tobytes() == f["metadata/policy/fc0/weight"][()].tobytes()
    assert (ds.source, ds.level, ds.env) == ("d4rl:hopper-medium-replay-v2", "medium-replay", "brax/hopper")
    assert (ds.ref_min_score, ds.ref_max_score) == (-20.272305, 3234.3) and ds.approximate_score
    hopper = EnvSpec("brax/hopper", (11,), "float32", False, 3, (-1.0,) * 3, (1.0,) * 3, 1000)
    ds.validate(hopper)
    assert_same(ds, load(save(ds, tmp_path / "again.hdf5")))
    ant = EnvSpec("brax/ant", (27,), "float32", False, 8, (-1.0,) * 8, (1.0,) * 8, 1000)
    with pytest.raises(DatasetError, match=r"'observations' have shape \(11,\).*'brax/ant' observes \(27,\)"):
        ds.validate(ant)


def test_d4rl_file_without_next_observations(tmp_path):
    """next_observations from the next row; timeouts and the last row dropped (qlearning_dataset)."""
    path = tmp_path / "walker2d_medium-v2.hdf5"
    obs = np.arange(10.0)[:, None] * np.ones((1, 17))
    with h5py.File(path, "w") as f:
        f["observations"], f["actions"] = obs, np.zeros((10, 6))
        f["rewards"], f["terminals"] = np.ones(10), np.zeros(10, bool)
        f["timeouts"] = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    ds = load(path)
    assert len(ds) == 8
    np.testing.assert_array_equal(ds.observations[:, 0], [0, 1, 2, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(ds.next_observations[:, 0], [1, 2, 3, 5, 6, 7, 8, 9])


def test_reference_scores_and_normalisation():
    assert reference_scores("halfcheetah-medium-v2") == (-280.178953, 12135.0)
    assert reference_scores("walker2d_medium_expert-v2.hdf5") == (1.629008, 4592.3)
    assert reference_scores("ant-random-v0") == (-325.6, 3879.7)
    assert reference_scores("pen-human-v1") == (96.262799, 3076.8331017826877)
    assert reference_scores("maze2d-umaze-v1") == (23.85, 161.86)
    assert reference_scores("cartpole") is None
    assert d4rl_name_parts("halfcheetah_medium_expert-v2.hdf5") == ("halfcheetah", "medium-expert", "v2")
    ds = make_dataset().replace(ref_min_score=-20.272305, ref_max_score=3234.3)
    assert ds.normalized_score(3234.3) == pytest.approx(100.0)
    assert ds.normalized_score(-20.272305) == pytest.approx(0.0)
    assert ds.normalized_score(1607.0138) == pytest.approx(50.0, abs=1e-4)  # 100 (R - min) / (max - min)
    np.testing.assert_allclose(make_dataset().episode_returns(),
                               [make_dataset().rewards[:25].sum(dtype=np.float64), make_dataset().rewards[25:].sum(dtype=np.float64)])


def test_concatenate_cuts_episodes_at_the_seam():
    a = make_dataset(n=30)
    b = make_dataset(n=30, seed=1)
    a = a.replace(timeouts=np.zeros(30, bool))  # a's last episode unfinished
    both = concatenate([a, b], level="medium-expert")
    assert len(both) == 60 and both.level == "medium-expert" and both.timeouts[29] and both.env == a.env


def _bad(**kw):
    ds = make_dataset()
    return ds.replace(**kw)


@pytest.mark.parametrize("change, message", [
    (lambda ds: ds.replace(rewards=ds.rewards[:-1]), r"mismatched lengths: 'observations' has 60 rows, 'rewards' has 59"),
    (lambda ds: ds.replace(actions=ds.actions.astype(np.int32)), r"'actions' must be a float array, got dtype int32"),
    (lambda ds: ds.replace(terminals=ds.terminals.astype("U1")), r"'terminals' must be bool"),
    (lambda ds: ds.replace(timeouts=np.where(np.arange(60) == 7, 2.0, 0.0)), r"'timeouts' must hold 0 or 1; index 7"),
    (lambda ds: ds.replace(rewards=ds.rewards[:, None]), r"'rewards' must have rank 1"),
    (lambda ds: ds.replace(actions=ds.actions[:, :, None]), r"'actions' must have rank 2"),
    (lambda ds: ds.replace(observations=ds.observations[:, 0], next_observations=ds.next_observations[:, 0]),
     r"'observations' must have rank >= 2"),
    (lambda ds: ds.replace(next_observations=ds.next_observations[:, :2]), r"'next_observations' has shape \(60, 2\)"),
    (lambda ds: ds.replace(observations=np.where(np.arange(60)[:, None] == 13, np.nan, ds.observations)),
     r"'observations' holds NaN or inf at index 13"),
    (lambda ds: ds.replace(rewards=np.where(np.arange(60) == 41, np.inf, ds.rewards)), r"'rewards' holds NaN or inf at index 41"),
    (lambda ds: Dataset(*(getattr(ds, k)[:0] for k in KEYS)), r"dataset is empty"),
])
def test_validation_errors_name_key_and_index(change, message):
    with pytest.raises(DatasetError, match=message):
        change(make_dataset()).validate()


def test_validation_against_env():
    ds = make_dataset()
    assert ds.validate(SPEC) is ds
    a = ds.actions.copy()
    a[17, 1] = 1.5
    with pytest.raises(DatasetError, match=r"'actions' outside env 'fake'.s bounds \[-1.0, 1.0\]: index 17, dimension 1"):
        ds.replace(actions=a).validate(SPEC)
    with pytest.raises(DatasetError, match=r"'actions' have size 2 but env 'fake3' takes 3"):
        ds.validate(EnvSpec("fake3", (3,), "float32", False, 3, (-1.0,) * 3, (1.0,) * 3, 200))
    with pytest.raises(DatasetError, match=r"discrete actions"):
        ds.validate(EnvSpec("disc", (3,), "float32", True, 2, None, None, 200))


def test_missing_key():
    arrays = make_dataset().arrays
    del arrays["timeouts"]
    with pytest.raises(DatasetError, match=r"missing key\(s\) \['timeouts'\]"):
        Dataset.from_dict(arrays)
    with pytest.raises(DatasetError, match=r"missing key\(s\) \['next_observations'\]"):
        Dataset.from_dict({k: v for k, v in make_dataset().arrays.items() if k != "next_observations"})


def test_content_hash_sees_every_bit():
    ds = make_dataset()
    r = ds.rewards.copy()
    r[5] = np.nextafter(r[5], np.float32(np.inf))
    assert ds.content_hash() != ds.replace(rewards=r).content_hash()
    assert ds.content_hash() == ds.replace(level="other").content_hash()  # metadata is not data
    assert not math.isnan(ds.normalized_score(0.0))
