"""benchmarks.offline_robust at a tiny scale: the report's tables and plot from hand-made rows (no
training), and its registration as the "offline-robust" suite. The training paths are run by the
ci scale (`python -m benchmarks.run --suite offline-robust`) and the committed reduced result."""
import csv
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks import offline_robust, suites  # noqa: E402


def rows():
    out = []
    for algo, base in (("riql", 50.0), ("iql", 40.0)):
        for data in ("clean", "random dynamics", "adversarial rewards"):
            out.append({"benchmark": "corruption", "env": "Pendulum-v1", "algo": algo, "dataset": data, "rate": 0.3,
                        "scale": 1.0, "score_mean": base - (data != "clean") * 10, "score_std": 1.0, "seeds": 2})
    out.append({"benchmark": "mixed", "env": "Pendulum-v1", "algo": "a2pr", "dataset": "medium-expert",
                "score_mean": 70.0, "score_std": 2.0, "seeds": 2, "behavior_score": 65.0})
    for algo, online in (("ro2o", (60.0, 62.0)), ("sac-n", (30.0, 55.0))):
        for c, (sc, steps) in enumerate(zip((58.0,) + online, (0, 100, 200))):
            out.append({"benchmark": "offline_to_online", "env": "Pendulum-v1", "algo": algo, "chunk": c,
                        "online_steps": steps, "phase": "online" if steps else "offline", "score_mean": sc,
                        "score_std": 1.0, "seeds": 2})
    return out


def test_report_tables_plot_and_registration(tmp_path):
    assert suites.MODULE_SUITES["offline-robust"] == ["benchmarks.offline_robust"] and "offline-robust" in suites.SUITES
    assert set(offline_robust.SCALES) == {"ci", "reduced", "fields", "full", "ro2o_curve", "ro2o_warmup", "ro2o_mix",
                                          "ro2o_long", "ro2o_strength",
                                          "brax", "brax_fields", "brax_hopper_settings",
                                          "brax_hopper_actor", "brax_hopper_long", "brax_cql",
                                          "brax_cql_hopper", "brax_mixed",
                                          "brax_mixed_long", "gpu_hopper", "gpu_ro2o_hopper",
                                          "brax_ro2o", "brax_halfcheetah", "brax_ro2o_n10", "brax_ro2o_n10_sacn",
                                          "brax_hopper_long_official", "brax_halfcheetah_settings",
                                          "brax_halfcheetah_long_official", "brax_halfcheetah_long_default"}
    curve = offline_robust.SCALES["ro2o_curve"]  # the reduced offline -> online part only, scored more often
    assert curve["parts"] == ("offline_to_online",) and curve["offline"] == offline_robust.SCALES["reduced"]["offline"]
    from jaxrl.algos import ro2o

    # each RO2O variant's settings, and the plain RO2O row's, pass RO2O's checks
    for name in ("ro2o_curve", "ro2o_warmup", "ro2o_mix", "ro2o_long", "ro2o_strength", "gpu_ro2o_hopper",
                 "brax_ro2o", "brax_ro2o_n10", "brax_ro2o_n10_sacn"):
        s = offline_robust.SCALES[name]
        o2o_rows = {"ro2o", "sac-n (no smoothness/OOD)", "iql fine-tuning", *s["ro2o_variants"]}
        assert set(s.get("o2o_algos", ())) <= o2o_rows  # every row a scale lists is one offline_to_online runs
        for kw in ({}, *s["ro2o_variants"].values()):
            assert ro2o.Config(**(s["ro2o"] | kw)).online_steps == s["ro2o"]["online_steps"]
    warm = offline_robust.SCALES["ro2o_warmup"]["ro2o"]  # later, longer online phase; same offline phase
    assert warm["learning_starts"] > curve["ro2o"]["learning_starts"] and warm["offline_updates"] == 3_000
    fields = offline_robust.SCALES["fields"]  # the reduced corruption part over every field
    assert fields["fields"] == offline_robust.FIELDS and fields["parts"] == ("corruption",)
    assert fields["offline"] == offline_robust.SCALES["reduced"]["offline"]
    assert offline_robust.SCALES["brax_fields"]["fields"] == offline_robust.FIELDS  # brax, every field
    brax = offline_robust.SCALES["brax"]  # the reduced corruption part on two brax envs, own datasets per env
    assert len(brax["envs"]) == 2 and all(e.startswith("brax/") for e in brax["envs"])
    assert brax["modes"] == offline_robust.MODES
    from jaxrl.datasets.generate import GenerateConfig

    cheetah = offline_robust.SCALES["brax_halfcheetah"]  # the brax scale's methods and budget on a third env
    assert cheetah["corruption_algos"] == brax["corruption_algos"] and cheetah["offline"] == brax["offline"]
    for s in (brax, cheetah):
        for env in s["envs"]:  # each env's generation settings pass their checks
            assert GenerateConfig(env=env, **s["gen"][env]).agent_steps > 0
    variants = brax["corruption_algos"] + sum((offline_robust.SCALES[k]["corruption_algos"]
                                               for k in ("brax_hopper_settings", "brax_hopper_actor",
                                                        "brax_hopper_long_official", "brax_halfcheetah_settings")), ())
    for name, algo, overrides in variants:  # each variant's settings pass the algorithm's checks
        _, cfg = offline_robust._config(algo, brax)
        assert dataclasses.replace(cfg, **overrides).total_updates == brax["offline"]["total_updates"]
    for name in ("brax_halfcheetah_long_official", "brax_halfcheetah_long_default"):  # variants on named datasets
        long_cheetah = offline_robust.SCALES[name]
        names = {n for n, _, _ in long_cheetah["corruption_algos"]}
        sets = {f"{m} {f}" for m in long_cheetah["modes"] for f in long_cheetah["fields"]}
        assert set(long_cheetah["corruption_sets"]) == names and all(
            set(v) <= sets for v in long_cheetah["corruption_sets"].values())
        assert long_cheetah["offline"] == offline_robust.SCALES["brax_hopper_long_official"]["offline"]
    gpu = offline_robust.SCALES["gpu_hopper"]  # the official widths (no hidden override), every field and mode
    for algo, width in (("riql", 5), ("iql", None)):
        _, cfg = offline_robust._config(algo, gpu)
        assert cfg.hidden == (256, 256) and cfg.total_updates == 100_000 and getattr(cfg, "num_critics", None) == width
    assert gpu["fields"] == offline_robust.FIELDS and gpu["modes"] == offline_robust.MODES
    assert offline_robust.SCALES["full"]["seeds"] >= 5 and len(offline_robust.SCALES["full"]["envs"]) >= 2
    summ = {r["algo"]: r for r in offline_robust.o2o_summary(rows())}
    assert summ["ro2o"]["drop"] == 2.0 and summ["sac-n"]["drop"] == -28.0  # lowest online - last offline
    files = offline_robust.write(rows(), "ci", tmp_path)
    table = Path(files["md"]).read_text()
    assert "| Pendulum-v1 | random dynamics | 40.0 ± 1.0 | 30.0 ± 1.0 |" in table
    assert "| Pendulum-v1 | mean over corrupted | 40.0 | 30.0 |" in table
    assert "| Pendulum-v1 | sac-n | 58.0 | 30.0 | 55.0 | -28.0 |" in table
    assert Path(files["png"]).stat().st_size > 1000
    with open(files["csv"]) as f:
        assert len(list(csv.DictReader(f))) == len(rows())
    # a variant run on some datasets only (corruption_sets) leaves empty cells and gaps in the bars
    gaps = [r for r in rows() if not (r["algo"] == "riql" and r["dataset"] == "clean")]
    files = offline_robust.write(gaps, "ci", tmp_path / "gaps")
    assert "| Pendulum-v1 | clean |  | 40.0 ± 1.0 |" in Path(files["md"]).read_text()
    assert Path(files["png"]).stat().st_size > 1000


def test_each_env_gets_its_own_panels():
    """With two envs (the brax and full scales) each env's corruption bars and curves are drawn from
    its own rows: the first env's values are not drawn under both."""
    two = rows() + [{**r, "env": "brax/hopper", "score_mean": r["score_mean"] + 1.0} for r in rows()
                    if r["benchmark"] == "corruption"]
    panels = offline_robust._panels(two)
    assert [(draw.__name__, {r["env"] for r in rs}) for draw, rs in panels] == [
        ("_corruption_panel", {"Pendulum-v1"}), ("_o2o_panel", {"Pendulum-v1"}), ("_corruption_panel", {"brax/hopper"})]
    assert len(panels[2][1]) == 6


def test_o2o_panel_marks_where_ro2o_starts_updating():
    """Dashed line before the first online chunk; dotted line before the first chunk with more online
    steps than `learning_starts` (online steps 0 / 100 / 200, learning_starts 150: chunk 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o2o = [r for r in rows() if r["benchmark"] == "offline_to_online"]
    fig, ax = plt.subplots()
    offline_robust._o2o_panel(ax, o2o, learning_starts=150)
    vlines = {ln.get_linestyle(): ln.get_xdata()[0] for ln in ax.lines if ln.get_xdata()[0] == ln.get_xdata()[1]}
    assert vlines == {"--": 0.5, ":": 1.5}
    assert "updates from 150 steps" in ax.get_xlabel()
    plt.close(fig)
