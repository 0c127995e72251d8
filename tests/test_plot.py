"""jaxrl.plot: the statistics against hand-computed cases, the figures, and load_run on a real run's CSV."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import plot
from jaxrl.core.run import RunOptions, run
from jaxrl.core.train import Trainer

pytestmark = pytest.mark.timeout(120)


def test_iqm_is_mean_of_middle_half():
    assert plot.iqm(np.arange(100)) == pytest.approx(49.5)  # mean of 25..74
    # 8 values: 2 cut from each end -> mean of 3, 4, 5, 100
    x = np.array([100.0, -50.0, 3.0, 4.0, 5.0, 1e6, 0.0, 6.0])
    assert plot.iqm(x) == pytest.approx((3 + 4 + 5 + 6) / 4)
    # pooled over runs x tasks unless an axis is given
    m = np.arange(100.0).reshape(25, 4)
    assert plot.iqm(m) == pytest.approx(49.5)
    # column 0 is 0, 4, ..., 96: int(0.25 * 25) = 6 cut from each end leaves 24, 28, ..., 72
    np.testing.assert_allclose(plot.iqm(m, axis=0), [48.0, 49.0, 50.0, 51.0])


def test_optimality_gap():
    # shortfalls below threshold 1: 0.5, 0 (1.5 is capped), 0, 1
    assert plot.optimality_gap([0.5, 1.5, 1.0, 0.0]) == pytest.approx(0.375)
    assert plot.optimality_gap([0.5, 1.5, 1.0, 0.0], gamma=2.0) == pytest.approx((1.5 + 0.5 + 1 + 2) / 4)


def test_stratified_bootstrap_keeps_tasks_apart():
    # task a scores all 0, task b all 1: every stratified resample holds four of each, so the
    # mean is exactly 0.5 in every resample (a pooled bootstrap would vary the mix)
    scores = {"a": [0.0] * 4, "b": [1.0] * 4}
    assert plot.stratified_bootstrap(scores, plot.optimality_gap) == (0.5, 0.5, 0.5)
    # one run per task: nothing to resample
    assert plot.stratified_bootstrap({"a": [0.2], "b": [0.9]}, plot.iqm) == pytest.approx((0.55, 0.55, 0.55))


def test_bootstrap_ci_matches_normal_theory():
    # percentile bootstrap CI of a mean of n iid values ~ mean +- 1.96 sd / sqrt(n)
    x = np.random.default_rng(3).normal(10.0, 2.0, size=400)
    point, lo, hi = plot.stratified_bootstrap({"t": x}, np.mean, reps=4000, seed=1)
    half = 1.96 * x.std() / np.sqrt(x.size)
    assert point == pytest.approx(x.mean())
    assert lo < point < hi
    assert hi - point == pytest.approx(half, rel=0.1)
    assert point - lo == pytest.approx(half, rel=0.1)
    # the seed-axis bootstrap of the learning curves gives the same interval shape
    p2, lo2, hi2 = plot.bootstrap_mean_ci(x[None], reps=4000, seed=1)
    assert p2[0] == pytest.approx(x.mean()) and (hi2[0] - lo2[0]) == pytest.approx(2 * half, rel=0.1)


def test_aggregate_deterministic_covers_point_and_normalises():
    rng = np.random.default_rng(0)
    raw = {"ppo": {"CartPole-v1": rng.uniform(300, 500, 16), "Acrobot-v1": rng.uniform(-120, -80, 16)},
           "random": np.column_stack([rng.uniform(15, 30, 16), rng.uniform(-500, -450, 16)])}
    norm = {"CartPole-v1": (0.0, 500.0), "Acrobot-v1": (-500.0, -60.0), "0": (0.0, 500.0), "1": (-500.0, -60.0)}
    res = plot.aggregate(raw, normalizers=norm, reps=500, seed=7)
    assert res == plot.aggregate(raw, normalizers=norm, reps=500, seed=7)
    assert res != plot.aggregate(raw, normalizers=norm, reps=500, seed=8)
    for algo in res:
        for point, lo, hi in res[algo].values():
            assert lo <= point <= hi
    # point estimates are the metrics of the normalised pooled scores
    ppo = np.concatenate([raw["ppo"]["CartPole-v1"] / 500, (raw["ppo"]["Acrobot-v1"] + 500) / 440])
    assert res["ppo"]["IQM"][0] == pytest.approx(plot.iqm(ppo))
    assert res["ppo"]["Optimality gap"][0] == pytest.approx(np.mean(1 - np.minimum(ppo, 1)))
    assert res["random"]["Optimality gap"][0] > 0.9 > res["ppo"]["Optimality gap"][0]
    with pytest.raises(ValueError, match="no normalizer"):
        plot.aggregate(raw, normalizers={"CartPole-v1": (0, 500)})


def _fake_metrics(num_seeds=4, num_chunks=6, offset=0.0):
    rng = np.random.default_rng(int(offset))
    ret = rng.normal(offset, 1.0, size=(num_chunks, num_seeds))
    ret[0] = np.nan  # no episode ended in the first chunk
    ret[1, 1:] = np.nan  # only seed 0 finished one
    steps = np.tile(np.arange(1, num_chunks + 1)[:, None] * 512.0, (1, num_seeds))
    return {"env_steps": steps, "return": ret}


def test_learning_curves_png_pdf_and_values(tmp_path):
    runs = {"ppo": _fake_metrics(), "other": _fake_metrics(offset=5.0)}
    fig = plot.learning_curves(runs, path=tmp_path / "curves.png")
    data = (tmp_path / "curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ppo (4 seeds)", "other (4 seeds)"]
    xs, ys = ax.lines[0].get_data()
    np.testing.assert_allclose(xs, np.arange(1, 7) * 512.0)
    ret = runs["ppo"]["return"]
    assert np.isnan(ys[0]) and ys[1] == ret[1, 0]
    np.testing.assert_allclose(ys[2:], ret[2:].mean(axis=1))
    # the band surrounds the mean where more than one seed reported
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() < ys[2:].min() and band[:, 1].max() > ys[2:].max()
    plot.learning_curves(runs["ppo"], x="chunk", path=tmp_path / "one.pdf")
    assert (tmp_path / "one.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(KeyError, match="no metric 'loss'"):
        plot.learning_curves(runs, y="loss")


def test_plot_aggregate_png(tmp_path):
    res = plot.aggregate({"a": np.full((5, 2), 0.5), "b": np.linspace(0, 1, 10).reshape(5, 2)}, reps=200)
    fig = plot.plot_aggregate(res, path=tmp_path / "agg.png")
    assert (tmp_path / "agg.png").read_bytes()[:4] == b"\x89PNG"
    assert [ax.get_title() for ax in fig.axes] == ["IQM", "Optimality gap"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]


def test_load_run_reads_run_csv(tmp_path):
    # a tiny Trainer (no env) so the test is about the CSV, not about compiling PPO
    def init(key):
        return jax.random.uniform(key), jnp.int32(0)

    def update(carry):
        x, n = carry
        n = n + 1
        ret = jnp.where(n == 1, jnp.nan, x * n)
        return (x, n), {"env_steps": n * 100, "return": ret, "loss": x - n}

    result = run(Trainer(init, update, 5), RunOptions(num_seeds=3, seed=2, log_dir=str(tmp_path), progress=False))
    loaded = plot.load_run(tmp_path)
    assert sorted(loaded) == sorted(result.metrics) == ["env_steps", "loss", "return"]
    for name, m in result.metrics.items():
        assert loaded[name].shape == (5, 3)
        np.testing.assert_allclose(loaded[name], m, rtol=1e-6, equal_nan=True)
    assert np.isnan(loaded["return"][0]).all()
    assert plot.load_run(tmp_path / "metrics.csv").keys() == loaded.keys()
    plot.learning_curves(str(tmp_path), path=tmp_path / "from_dir.png")
    with pytest.raises(FileNotFoundError, match="RunOptions"):
        plot.load_run(tmp_path / "nowhere")


def test_load_run_config_column_and_seed_values(tmp_path):
    # a run_many-style file: chunk, config, seed (seed values, not indices), metrics
    (tmp_path / "metrics.csv").write_text(
        "chunk,config,seed,return\n"
        "0,0,7,1.0\n0,0,3,2.0\n0,1,7,3.0\n0,1,3,4.0\n"
        "1,0,7,5.0\n1,0,3,nan\n1,1,7,7.0\n1,1,3,8.0\n"
    )
    m = plot.load_run(tmp_path)["return"]
    assert m.shape == (2, 2, 2)  # chunks, configs, seeds (7 first, then 3)
    np.testing.assert_array_equal(m[0], [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(m[1], [[5.0, np.nan], [7.0, 8.0]])
    with pytest.raises(ValueError, match="not \\[chunks, seeds\\]"):
        plot.learning_curves(str(tmp_path))
    plot.learning_curves({"config 1": {"return": m[:, 1]}}, x="chunk")
    (tmp_path / "bad.csv").write_text("step,return\n0,1\n")
    with pytest.raises(ValueError, match="not a jaxrl metrics.csv"):
        plot.load_run(tmp_path / "bad.csv")
