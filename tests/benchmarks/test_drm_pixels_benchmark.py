"""benchmarks.drm_pixels: registered as the "pixels" suite; its ci scale runs end to end (rendering
speed, both methods' curves and dormant ratios, training speed) and writes its CSV, markdown and PNG."""
import csv
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import drm_pixels, suites  # noqa: E402


@pytest.mark.timeout(300)
def test_ci_scale_rows_and_files(tmp_path):
    assert suites.MODULE_SUITES["pixels"] == ["benchmarks.drm_pixels"] and "pixels" in suites.SUITES
    rows = drm_pixels.suite("ci", out_dir=tmp_path)
    s = drm_pixels.SCALES["ci"]
    parts = {p: [r for r in rows if r["part"] == p] for p in ("render_speed", "curve", "summary", "train_speed")}
    assert [r["envs"] for r in parts["render_speed"]] == list(s["render_envs"])
    assert all(r["frames"] == r["envs"] * s["render_steps"] and r["frames_per_s"] > 0 for r in parts["render_speed"])
    assert {(r["algo"], r["chunk"]) for r in parts["curve"]} == {
        (a, c) for a in drm_pixels.ALGOS for c in range(s["algo"]["num_chunks"])}
    for r in parts["curve"]:
        assert 0.0 <= r["actor_dormant"] <= 1.0 and 0.0 <= r["critic_dormant"] <= 1.0
        assert math.isfinite(r["return"]) and 0.0 <= r["return"] <= 2 * s["algo"]["episode_steps"]  # [0, 1] per control step
    assert [r["algo"] for r in parts["summary"]] == list(drm_pixels.ALGOS)
    frames = s["algo"]["total_timesteps"] * 2  # action repeat 2, whole chunks
    assert all(r["frames"] >= frames for r in parts["summary"])
    assert {(r["algo"], r["seeds"]) for r in parts["train_speed"]} == {
        (a, n) for a in drm_pixels.ALGOS for n in s["speed_seeds"]}
    for r in parts["train_speed"]:
        assert r["env_frames"] > 0 and r["updates"] > 0 and r["env_frames_per_s"] > 0 and r["updates_per_s"] > 0
    stem = Path(rows[0]["csv"]).with_suffix("")
    for ext in (".csv", ".md", ".png"):
        assert stem.with_suffix(ext).stat().st_size > 100
    with open(stem.with_suffix(".csv")) as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert "## train_speed" in stem.with_suffix(".md").read_text()


def test_every_scale_builds_both_methods_on_its_tasks(tmp_path):
    """Each scale's settings pass both Configs' checks on each of its tasks (the swing-up and full
    scales run for tens of minutes, so a bad setting would otherwise surface late); the swingup
    scale writes files of its own."""
    for scale, s in drm_pixels.SCALES.items():
        for task in s["tasks"]:
            for algo in drm_pixels.ALGOS:
                cfg, mod = drm_pixels._config(algo, task, scale)
                assert cfg.env == f"pixels/{task}" and mod.__name__.endswith(algo)
    assert set(drm_pixels.SCALES["swingup"]["tasks"]) == {"cartpole_swingup", "pendulum_swingup"}
    assert drm_pixels.SCALES["swingup"]["algo"]["frame_stack"] >= 2  # a swing-up needs velocities
    assert Path(drm_pixels.write([], {}, "swingup", tmp_path)["md"]).name.startswith("drm_pixels_swingup-")
