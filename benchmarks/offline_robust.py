"""Robust offline RL benchmark (issue "Offline RL II"): RIQL against IQL and CQL under each kind and
mode of data corruption, A2PR against TD3+BC on mixed-quality datasets, and RO2O's offline->online
curve against the same agent fine-tuned without its uncertainty and smoothness terms and against IQL
fine-tuning.

    python -m benchmarks.offline_robust --scale full      # brax hopper + halfcheetah, 5 seeds
    python -m benchmarks.offline_robust --scale reduced   # Pendulum-v1, 5 seeds, the CI tests' budgets
    python -m benchmarks.offline_robust --scale fields    # reduced, corruption of all four fields only
    python -m benchmarks.offline_robust --scale ro2o_curve  # reduced, offline -> online only, 18 scores
    python -m benchmarks.offline_robust --scale ro2o_warmup  # ro2o_curve, later and longer online phase
    python -m benchmarks.offline_robust --scale ro2o_mix  # ro2o_warmup's RO2O, dataset kept online or not
    python -m benchmarks.offline_robust --scale ro2o_long  # ro2o_warmup, 10k online steps
    python -m benchmarks.offline_robust --scale ro2o_strength  # ro2o_warmup, stronger regularisers
    python -m benchmarks.offline_robust --scale brax      # reduced corruption part on two brax envs
    python -m benchmarks.offline_robust --scale brax_fields  # the brax scale, all four fields, RIQL and IQL
    python -m benchmarks.offline_robust --scale brax_hopper_settings  # brax hopper, RIQL's official K, alpha
    python -m benchmarks.offline_robust --scale brax_hopper_actor  # brax hopper, RIQL's Gaussian actor
    python -m benchmarks.offline_robust --scale brax_hopper_long  # brax hopper, 100k updates, 5 seeds
    python -m benchmarks.offline_robust --scale brax_hopper_long_official  # the same, RIQL's hopper setting
    python -m benchmarks.offline_robust --scale brax_halfcheetah  # the brax scale on the brax halfcheetah
    python -m benchmarks.offline_robust --scale brax_halfcheetah_settings  # RIQL's halfcheetah settings
    python -m benchmarks.offline_robust --scale brax_halfcheetah_long_official  # the same at 100k updates
    python -m benchmarks.offline_robust --scale brax_halfcheetah_long_default  # its RIQL at default settings
    python -m benchmarks.offline_robust --scale brax_cql  # the brax scale's datasets, CQL
    python -m benchmarks.offline_robust --scale brax_cql_hopper  # brax_cql, the hopper only
    python -m benchmarks.offline_robust --scale brax_mixed  # A2PR vs TD3+BC, brax hopper medium-expert
    python -m benchmarks.offline_robust --scale brax_mixed_long  # brax_mixed, 100k updates
    python -m benchmarks.offline_robust --scale brax_ro2o  # RO2O, SAC-N, IQL fine-tuning on the brax hopper
    python -m benchmarks.offline_robust --scale brax_ro2o_n10  # brax_ro2o at N 10, 30k offline updates
    python -m benchmarks.offline_robust --scale brax_ro2o_n10_sacn  # its SAC-N row
    python -m benchmarks.offline_robust --scale gpu_hopper  # brax hopper, every field, official widths, 100k
    python -m benchmarks.offline_robust --scale gpu_ro2o_hopper  # RO2O vs IQL fine-tuning on the brax hopper
    python -m benchmarks.offline_robust --scale ci        # seconds-to-minutes: checks that it works

- Corruption (RIQL's Tables 1-2 setting): on each env's medium-replay dataset (the brax scale:
  medium), `envs.datasets.corrupt` makes one dataset per (field, mode) at rate c and scale eps (the
  README's 0.3 / 1.0); the adversarial kind attacks with `jaxrl.datasets.adversarial`'s Q-ensemble
  agent. For each algorithm the clean dataset and the eight corrupted ones train as ONE program (seeds
  x datasets). Scores are the last evaluation's normalised score, mean +- std over seeds.
- Mixed quality (A2PR's setting): A2PR and TD3+BC on medium-replay and medium-expert.
- Offline -> online (RO2O's setting): RO2O from the medium dataset (its online updates are plain
  SAC-N from a fresh buffer, as the official fine-tuning script: `online_regularizers` False), and
  the same schedule with its regularisers off offline too (beta_ood = beta_policy = eta = 0: SAC-N
  throughout); the score after every chunk gives the curve, and the "drop" is the lowest online
  score minus the last offline one. IQL fine-tuning (`iql`'s `online_steps`; the official fine-tuning
  script: minibatches from the dataset and the online transitions together, no actor lr decay) runs
  at RO2O's budget: as many offline updates, online steps and chunks.

Writes `offline_robust-<date>-<device>.csv`, `.md` and `.png` into --out-dir.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, dir_arg, machine, result_stem, write_csv

FIELDS = ("observations", "actions", "rewards", "dynamics")
MODES = ("random", "adversarial")
CORRUPTION_ALGOS = ("riql", "iql", "cql")
MIXED_ALGOS = ("a2pr", "td3_bc")
PENDULUM_GEN = dict(agent="ppo", agent_steps=60_000, snapshots=6, size=10_000, eval_episodes=8, num_envs=10)

SCALES = {
    "ci": dict(envs=("Pendulum-v1",), gen=PENDULUM_GEN, seeds=2, fields=("dynamics",), modes=("random",),
               rate=0.3, scale=1.0, attacker=dict(offline_updates=200, num_critics=2, hidden=(16,), num_perturb=2),
               offline=dict(total_updates=200, num_chunks=1, eval_episodes=2),
               hidden=(16, 16), mixed_levels=("medium-expert",),
               ro2o=dict(offline_updates=300, online_steps=300, learning_starts=100, buffer_size=300, num_chunks=2,
                         hidden=(16, 16), num_critics=2, num_perturb=2, batch_size=32, eval_episodes=2)),
    # reduced: the CI learning tests' settings (tests/algos/test_*.py, which learn at these budgets) on
    # 5 seeds; corruption of the dynamics only (the paper's headline case), both modes
    "reduced": dict(envs=("Pendulum-v1",), gen=PENDULUM_GEN, seeds=5, fields=("dynamics",), modes=MODES, rate=0.3,
                    scale=1.0, attacker=dict(offline_updates=1_000, num_critics=4, hidden=(32, 32), num_perturb=2,
                                             batch_size=128),
                    offline=dict(total_updates=4_000, num_chunks=1, eval_episodes=10), hidden=(64, 64),
                    mixed_levels=("medium-replay", "medium-expert"),
                    ro2o=dict(offline_updates=3_000, online_steps=1_500, learning_starts=300, buffer_size=1_500,
                              num_chunks=3, hidden=(64, 64), num_critics=4, num_perturb=4, batch_size=128,
                              eval_episodes=10)),
}
# fields: the reduced scale's corruption part for every field in both modes, in files of its own
SCALES["fields"] = {**SCALES["reduced"], "fields": FIELDS, "parts": ("corruption",), "files": "offline_robust_fields"}
# ro2o_curve: the reduced scale's offline -> online part only, scored every 250 steps (18 chunks) to show the
# dip, with RO2O's regularisers also kept online (the official script's first version) as a third variant
SCALES["ro2o_curve"] = {**SCALES["reduced"], "parts": ("offline_to_online",), "files": "offline_robust_ro2o",
                        "ro2o": SCALES["reduced"]["ro2o"] | dict(num_chunks=18),
                        "ro2o_variants": {"ro2o (regularisers online)": dict(online_regularizers=True)}}
# ro2o_warmup: ro2o_curve with online updates starting after 1,000 transitions (5 Pendulum episodes, not
# 1.5) and 3,000 online steps, and RO2O and SAC-N with the official ensemble and perturbation counts
# (N 10, n 20): is the dip the fresh buffer's first few episodes, or the small ensemble's?
SCALES["ro2o_warmup"] = {**SCALES["ro2o_curve"], "files": "offline_robust_ro2o_warmup",
                         "ro2o": SCALES["ro2o_curve"]["ro2o"] | dict(online_steps=3_000, learning_starts=1_000,
                                                                     buffer_size=3_000, num_chunks=24),
                         "ro2o_variants": {"ro2o, N 10, n 20": dict(num_critics=10, num_perturb=20),
                                           "sac-n, N 10": dict(num_critics=10, beta_ood=0.0, beta_policy=0.0,
                                                               q_smooth=0.0)}}
# ro2o_long: ro2o_warmup's RO2O, SAC-N and IQL fine-tuning with 10,000 online steps (50 Pendulum episodes),
# scored every 500: does the dip pass, and does each method end above or below its offline score?
SCALES["ro2o_long"] = {**SCALES["ro2o_warmup"], "files": "offline_robust_ro2o_long", "ro2o_variants": {},
                       "ro2o": SCALES["ro2o_warmup"]["ro2o"] | dict(online_steps=10_000, buffer_size=10_000,
                                                                    num_chunks=26)}
# ro2o_strength: ro2o_warmup's RO2O with stronger regularisers (perturbations of 0.1, not 0.01), also kept
# in the online losses, and with lambda fixed at 1 (the official AntMaze setting): can the regularisers
# remove the dip at any strength, when at the official 0.01 they leave RO2O level with SAC-N?
EPS_01 = dict(eps_q=0.1, eps_p=0.1, eps_ood=0.1)
STRONGER = {"ro2o, eps 0.1": EPS_01,
            "ro2o, eps 0.1, regularisers online": EPS_01 | dict(online_regularizers=True),
            "ro2o, eps 0.1, regularisers online, lambda 1": EPS_01 | dict(online_regularizers=True,
                                                                           ood_lambda_min=1.0)}
SCALES["ro2o_strength"] = {**SCALES["ro2o_warmup"], "files": "offline_robust_ro2o_strength",
                           "ro2o_variants": STRONGER, "o2o_algos": ("ro2o", *STRONGER)}
# brax: the reduced corruption part (dynamics, both modes) on two brax envs at a CPU budget: datasets of
# 50k transitions from our PPO agent (generate's brax preset, with as many steps per env as spread its 8
# snapshots from random to expert) and 20k offline updates. The medium data is corrupted: at this budget
# the agent passes medium within its first one or two snapshots, so medium-replay held only the first
# snapshots' near-random episodes (behaviour score 0.5 on the inverted pendulum, -0.3 on the hopper).
# CQL is left out (20k updates of it on 15 runs took over 40 minutes on the 2-core CPU). RIQL runs also
# with sigma 0.1 (Huber threshold 100, close to IQL's squared loss; the official per-setting configs
# range over 0.1-3): on the inverted pendulum's medium-replay data RIQL scored 4.2 at sigma 1 and 14.0
# at sigma 0.1 (IQL 21.4), and 3.8 with IQL's reward scaling
BRAX_GEN = dict(agent="ppo", snapshots=8, size=50_000, eval_episodes=8, num_envs=10)
SCALES["brax"] = {**SCALES["reduced"], "envs": ("brax/inverted_pendulum", "brax/hopper"), "parts": ("corruption",),
                  "gen": {"brax/inverted_pendulum": BRAX_GEN | dict(agent_steps=200_000),
                          "brax/hopper": BRAX_GEN | dict(agent_steps=400_000)},
                  "offline": dict(total_updates=20_000, num_chunks=1, eval_episodes=10), "files": "offline_robust_brax",
                  "corruption_level": "medium",
                  "corruption_algos": (("riql", "riql", {}), ("iql", "iql", {}),
                                       ("riql, sigma 0.1", "riql", dict(sigma=0.1)))}
# ro2o_mix: ro2o_warmup's RO2O and SAC-N with the dataset kept in the online minibatches (mix_offline),
# beside RO2O as the script runs it (the same program as ro2o_warmup's first row)
MIXED_ONLINE = {"ro2o, dataset mixed online": dict(mix_offline=True),
                "sac-n, dataset mixed online": dict(mix_offline=True, beta_ood=0.0, beta_policy=0.0, q_smooth=0.0)}
SCALES["ro2o_mix"] = {**SCALES["ro2o_warmup"], "files": "offline_robust_ro2o_mix",
                      "ro2o_variants": MIXED_ONLINE, "o2o_algos": ("ro2o", *MIXED_ONLINE)}
# brax_fields: the brax scale with every field corrupted in both modes (the full scale's kinds), RIQL and
# IQL only; its dynamics rows repeat the brax scale's
SCALES["brax_fields"] = {**SCALES["brax"], "fields": FIELDS, "files": "offline_robust_brax_fields",
                         "corruption_algos": SCALES["brax"]["corruption_algos"][:2]}
# brax_hopper_settings: the brax scale's hopper with RIQL as the official per-setting configs run it: K 5
# (the reduced scales' 3 is the CI tests' budget) at the clean-data alpha 0.25, and at alpha 0.5 (the
# configs' hopper dynamics setting, both modes); and with IQL's reward scaling (RIQL's code scales none)
SCALES["brax_hopper_settings"] = {**SCALES["brax"], "envs": ("brax/hopper",),
                                  "files": "offline_robust_brax_hopper_settings",
                                  "corruption_algos": (("riql, K 5, IQL's reward scaling", "riql",
                                                        dict(num_critics=5, reward_norm="returns")),
                                                       ("riql, K 5", "riql", dict(num_critics=5)),
                                                       ("riql, K 5, alpha 0.5", "riql",
                                                        dict(num_critics=5, quantile=0.5)))}
# brax_hopper_actor: brax_hopper_settings' RIQL (K 5) with the official code's Gaussian actor option
SCALES["brax_hopper_actor"] = {**SCALES["brax_hopper_settings"], "files": "offline_robust_brax_hopper_actor",
                               "corruption_algos": (("riql, K 5, Gaussian actor", "riql",
                                                     dict(num_critics=5, gaussian_actor=True)),)}
# brax_hopper_long: the brax scale's hopper (dynamics, both modes) at 100k updates, where RIQL's value
# levels off (20k stop it mid-training); on the 2-core CPU RIQL's program took 17.5 min, IQL's 19.5
SCALES["brax_hopper_long"] = {**SCALES["brax"], "envs": ("brax/hopper",),
                              "offline": SCALES["brax"]["offline"] | dict(total_updates=100_000),
                              "files": "offline_robust_brax_hopper_long",
                              "corruption_algos": SCALES["brax"]["corruption_algos"][:2]}
# brax_halfcheetah: the brax scale (RIQL, IQL, RIQL at sigma 0.1; dynamics, both modes; 20k updates) on a
# third brax env, the full scale's other one: the halfcheetah's data from 400k PPO steps as the hopper's
SCALES["brax_halfcheetah"] = {**SCALES["brax"], "envs": ("brax/halfcheetah",),
                              "gen": {"brax/halfcheetah": SCALES["brax"]["gen"]["brax/hopper"]},
                              "files": "offline_robust_brax_halfcheetah"}
# brax_hopper_long_official: brax_hopper_long's RIQL with the official hopper-dynamics setting (K 5, alpha
# 0.5, sigma 1), beside that scale's IQL row (the same data and budget)
SCALES["brax_hopper_long_official"] = {**SCALES["brax_hopper_long"],
                                       "files": "offline_robust_brax_hopper_long_official",
                                       "corruption_algos": (("riql, K 5, alpha 0.5", "riql",
                                                             dict(num_critics=5, quantile=0.5)),)}
# brax_halfcheetah_settings: brax_halfcheetah's RIQL with the official halfcheetah settings for dynamics
# corruption (random: sigma 3, alpha 0.25; adversarial: sigma 1, alpha 0.1; K 5), each on all three datasets
SCALES["brax_halfcheetah_settings"] = {**SCALES["brax_halfcheetah"],
                                       "files": "offline_robust_brax_halfcheetah_settings",
                                       "corruption_algos": (("riql, K 5, sigma 3", "riql",
                                                             dict(num_critics=5, sigma=3.0)),
                                                            ("riql, K 5, alpha 0.1", "riql",
                                                             dict(num_critics=5, quantile=0.1)))}
# brax_halfcheetah_long_official: the halfcheetah at brax_hopper_long_official's budget (100k updates), RIQL at
# the official halfcheetah setting of each corruption kind on that kind's data only (brax_halfcheetah_settings'
# bold cells) and IQL on both corrupted datasets (no clean rows, to halve the CPU time): with the hopper's 100k
# rows, RIQL against IQL under dynamics corruption on two brax envs at one budget and RIQL's official settings
SCALES["brax_halfcheetah_long_official"] = {
    **SCALES["brax_halfcheetah_settings"], "files": "offline_robust_brax_halfcheetah_long_official",
    "offline": SCALES["brax_hopper_long"]["offline"],
    "corruption_algos": SCALES["brax_halfcheetah_settings"]["corruption_algos"] + (("iql", "iql", {}),),
    "corruption_sets": {"riql, K 5, sigma 3": ("random dynamics",), "riql, K 5, alpha 0.1": ("adversarial dynamics",),
                        "iql": ("random dynamics", "adversarial dynamics")}}
# brax_halfcheetah_long_default: brax_halfcheetah_long_official's data and budget with RIQL at the brax scale's
# settings (K 3, alpha 0.25, sigma 1) on both corrupted datasets: how much of its lead is the official settings
SCALES["brax_halfcheetah_long_default"] = {
    **SCALES["brax_halfcheetah_long_official"], "files": "offline_robust_brax_halfcheetah_long_default",
    "corruption_algos": SCALES["brax"]["corruption_algos"][:1],
    "corruption_sets": {"riql": ("random dynamics", "adversarial dynamics")}}
# brax_cql: the brax scale (dynamics, both modes, both envs) with CQL, the third method; its
# inverted pendulum program took 56 min on the 2-core CPU (IQL's: 2.6), 10 sampled actions x 3 sources
SCALES["brax_cql"] = {**SCALES["brax"], "files": "offline_robust_brax_cql", "corruption_algos": (("cql", "cql", {}),)}
# brax_cql_hopper: brax_cql's hopper program alone (each env's program runs in turn, so the hopper's can
# run on its own)
SCALES["brax_cql_hopper"] = {**SCALES["brax_cql"], "envs": ("brax/hopper",), "files": "offline_robust_brax_cql_hopper"}
# brax_mixed: A2PR against TD3+BC on the brax hopper's medium-expert data (its medium and expert
# snapshots' episodes, behaviour 303 and 534), at the brax scale's budget (20k updates, 5 seeds); its
# medium-replay data is near-random at this budget (above), so it is left out
SCALES["brax_mixed"] = {**SCALES["brax"], "envs": ("brax/hopper",), "parts": ("mixed",),
                        "mixed_levels": ("medium-expert",), "files": "offline_robust_brax_mixed"}
# brax_mixed_long: brax_mixed at 100k updates (at 20k A2PR was below TD3+BC, 64.4 vs 94.3, with a wide
# seed spread; at 100k it leads, 107.1 vs 95.1)
SCALES["brax_mixed_long"] = {**SCALES["brax_mixed"], "files": "offline_robust_brax_mixed_long",
                             "offline": SCALES["brax"]["offline"] | dict(total_updates=100_000)}
# gpu_hopper: the brax_fields hopper (every field, both modes) with RIQL and IQL at their official widths
# (256x256, RIQL K 5) and 100k updates, sized for one lent GPU (benchmarks/gpu_session.sh). Measured on an
# H200 (benchmarks/gpu_probe.py): RIQL's 45 runs (9 datasets x 5 seeds) take 0.98 ms an update (the
# 2-core CPU: 873), one evaluation of 10 hopper episodes 6.7 s (CPU: 58), compiling 13-40 s, so each
# program about 150 s
SCALES["gpu_hopper"] = {**SCALES["brax_fields"], "envs": ("brax/hopper",), "hidden": None,
                        "offline": SCALES["brax"]["offline"] | dict(total_updates=100_000),
                        "files": "offline_robust_gpu_hopper"}
# gpu_ro2o_hopper: RO2O and IQL fine-tuning from the brax hopper's medium data at the official widths and
# counts (N 10, n 20, 256x256x256; IQL 256x256), 10k offline updates, then 10k online steps (online
# updates from 2,500 as the official script), scored every 2,000 iterations (an evaluation costs 6.7 s
# on the H200, and each online step a hopper step): the offline -> online curve on a brax env, about
# 250 s a program there by the probe's rates (RO2O's own update not yet measured on a GPU)
SCALES["gpu_ro2o_hopper"] = {**SCALES["brax"], "envs": ("brax/hopper",), "parts": ("offline_to_online",),
                             "files": "offline_robust_gpu_ro2o_hopper", "ro2o_variants": {},
                             "o2o_algos": ("ro2o", "iql fine-tuning"),
                             "ro2o": dict(offline_updates=10_000, online_steps=10_000, learning_starts=2_500,
                                          buffer_size=10_000, num_chunks=10, eval_episodes=10)}
# brax_ro2o: the offline -> online part on the brax hopper's medium data at a CPU budget: ro2o_curve's
# widths and counts ((64, 64), N 4, n 4, batch 128), 5k offline updates, then 5k online steps (online
# updates from 1,000), scored every 1,000 iterations with 5 episodes; about 10 minutes a program on the
# 2-core CPU (a hopper step is the cost). gpu_ro2o_hopper is the official-width run for a lent GPU
SCALES["brax_ro2o"] = {**SCALES["brax"], "envs": ("brax/hopper",), "parts": ("offline_to_online",),
                       "files": "offline_robust_brax_ro2o", "ro2o_variants": {},
                       "ro2o": SCALES["reduced"]["ro2o"] | dict(offline_updates=5_000, online_steps=5_000,
                                                                learning_starts=1_000, buffer_size=5_000,
                                                                num_chunks=10, eval_episodes=5)}
# brax_ro2o_n10: brax_ro2o with the official ensemble size (N 10; n stays 4) and 30k offline updates, where
# a 2-seed diagnostic learned offline (N 4 let Q diverge to about 4,000 by 30k and scored about 0), then
# 5k online steps scored every 1,000 iterations; RO2O against IQL fine-tuning (SAC-N is brax_ro2o_n10_sacn,
# a program of its own so that the two could run side by side)
SCALES["brax_ro2o_n10"] = {**SCALES["brax_ro2o"], "files": "offline_robust_brax_ro2o_n10",
                           "o2o_algos": ("ro2o", "iql fine-tuning"),
                           "ro2o": SCALES["brax_ro2o"]["ro2o"] | dict(num_critics=10, offline_updates=30_000,
                                                                     num_chunks=35)}
# brax_ro2o_n10_sacn: brax_ro2o_n10's SAC-N row (RO2O's regularisers off, N 10), run on its own
SCALES["brax_ro2o_n10_sacn"] = {**SCALES["brax_ro2o_n10"], "files": "offline_robust_brax_ro2o_n10_sacn",
                                "o2o_algos": ("sac-n (no smoothness/OOD)",)}
SCALES |= {
    "full": dict(envs=("brax/hopper", "brax/halfcheetah"), gen=dict(size=1_000_000), seeds=5, fields=FIELDS,
                 modes=MODES, rate=0.3, scale=1.0, attacker=dict(offline_updates=300_000),
                 offline=dict(total_updates=1_000_000, num_chunks=10, eval_episodes=10), hidden=None,
                 mixed_levels=("medium-replay", "medium-expert"),
                 ro2o=dict(offline_updates=1_000_000, online_steps=250_000, num_chunks=25)),
}


def _config(algo: str, s: dict):
    mod = importlib.import_module(f"jaxrl.algos.{algo}")
    kw = dict(s["offline"])
    if s["hidden"] is not None:
        kw |= dict(actor_hidden=s["hidden"], critic_hidden=s["hidden"], vae_hidden=s["hidden"]) if algo == "a2pr" \
            else dict(hidden=s["hidden"])
    if algo == "riql" and s["hidden"] is not None:
        kw["num_critics"] = 3
    return mod, mod.Config(**kw)


def _datasets(env: str, s: dict, cache_dir: str):
    from envs.datasets import load
    from jaxrl.datasets.generate import GenerateConfig, generate

    settings = s["gen"].get(env, s["gen"])  # one generation's settings, or per env
    gen = GenerateConfig(**{"env": env, "progress": False, "cache_dir": cache_dir, **settings})
    return {lvl: load(p) for lvl, p in generate(gen).items()}


def _score_rows(mod, cfg, datasets: dict, seeds: int, base: dict) -> list[dict]:
    t0 = time.perf_counter()
    _, m = mod.train_sweep(cfg, list(datasets.values()), seeds)
    score = np.asarray(m["normalized_score"])[:, :, -1]  # waits for the program (jax dispatches asynchronously)
    secs = time.perf_counter() - t0
    return [{**base, "dataset": name, "score_mean": float(sc.mean()), "score_std": float(sc.std()),
             "seeds": seeds, "program_s": secs, "datasets_in_program": len(datasets)}
            for name, sc in zip(datasets, score)]


def corruption(env: str, data: dict, s: dict):
    """Each algorithm on the clean data (the scale's `corruption_level`, else medium-replay) and its
    corrupted versions, one program each
    (yields each program's rows)."""
    import envs
    from envs.datasets.corrupt import corrupt
    from jaxrl.datasets.adversarial import attacker

    level = s.get("corruption_level", "medium-replay")
    clean = data[level]
    spec = envs.spec(env)
    sets = {"clean": clean}
    q_fn = policy_fn = None
    if "adversarial" in s["modes"]:
        q_fn, policy_fn = attacker(clean, **s["attacker"])
    for mode in s["modes"]:
        for field in s["fields"]:
            sets[f"{mode} {field}"] = corrupt(clean, field, mode, rate=s["rate"], scale=s["scale"], seed=0,
                                              q_fn=q_fn, policy_fn=policy_fn, action_bounds=(spec.low(), spec.high()))
    for name, algo, overrides in s.get("corruption_algos", [(a, a, {}) for a in CORRUPTION_ALGOS]):
        mod, cfg = _config(algo, s)
        only = s.get("corruption_sets", {}).get(name)  # a variant may run on some of the datasets only
        yield _score_rows(mod, dataclasses.replace(cfg, **overrides), sets if only is None else
                          {k: sets[k] for k in only}, s["seeds"],
                          {"benchmark": "corruption", "env": env, "algo": name, "level": level, "rate": s["rate"],
                           "scale": s["scale"]})


def mixed(env: str, data: dict, s: dict):
    """A2PR and TD3+BC on each mixed-quality level (yields each program's rows)."""
    for algo in MIXED_ALGOS:
        mod, cfg = _config(algo, s)
        for lvl in s["mixed_levels"]:
            ds = data[lvl]
            yield [{**r, "behavior_score": float(ds.normalized_score(ds.behavior_return))}
                   for r in _score_rows(mod, cfg, {lvl: ds}, s["seeds"], {"benchmark": "mixed", "env": env,
                                                                          "algo": algo})]


def offline_to_online(env: str, data: dict, s: dict):
    """RO2O, RO2O with its regularisers off (SAC-N) and IQL fine-tuning (the issue's baseline; the
    official fine-tuning settings: minibatches from the dataset and the online transitions together,
    no actor lr decay) from the medium dataset, at RO2O's budget: one row per chunk (yields each
    variant's rows)."""
    from jaxrl.algos import iql, ro2o

    r = s["ro2o"]
    variants = {"ro2o": {}, "sac-n (no smoothness/OOD)": dict(beta_ood=0.0, beta_policy=0.0, q_smooth=0.0)}
    variants |= s.get("ro2o_variants", {})
    variants = {name: (ro2o, ro2o.Config(**(r | kw))) for name, kw in variants.items()}
    same = {k: r[k] for k in ("hidden", "batch_size", "eval_episodes") if k in r}
    variants["iql fine-tuning"] = (iql, iql.Config(total_updates=r["offline_updates"], online_steps=r["online_steps"],
                                                   num_chunks=r["num_chunks"], actor_lr_decay=False, **same))
    for name, (mod, cfg) in variants.items():
        if name not in s.get("o2o_algos", variants):
            continue
        t0 = time.perf_counter()
        _, m = mod.train_sweep(cfg, [data["medium"]], s["seeds"])
        score, steps = np.asarray(m["normalized_score"])[0], np.asarray(m["online_steps"])[0, 0]  # waits for it
        secs = time.perf_counter() - t0
        yield [{"benchmark": "offline_to_online", "env": env, "algo": name, "chunk": c,
                "online_steps": int(steps[c]), "phase": "online" if steps[c] > 0 else "offline",
                "score_mean": float(score[:, c].mean()), "score_std": float(score[:, c].std()),
                "seeds": s["seeds"], "program_s": secs} for c in range(score.shape[1])]


def run_all(scale: str, cache_dir: str = "", done=None) -> list[dict]:
    """Every part on every env of the scale; `done(rows)` is called after each program (partial
    reports: a long run that is stopped keeps what it finished)."""
    s = SCALES[scale]
    parts = {"offline_to_online": offline_to_online, "mixed": mixed, "corruption": corruption}
    rows = []
    for env in s["envs"]:
        data = _datasets(env, s, cache_dir)
        for name in s.get("parts", tuple(parts)):
            for program_rows in parts[name](env, data, s):
                rows += program_rows
                if done is not None:
                    done(rows)
    return rows


# ----------------------------------------------------------------------------------- report


def o2o_summary(rows: list[dict]) -> list[dict]:
    """Per (env, algo): the last offline score, the lowest and the last online score, the drop."""
    out = []
    o2o = [r for r in rows if r["benchmark"] == "offline_to_online"]
    for key in dict.fromkeys((r["env"], r["algo"]) for r in o2o):
        rs = [r for r in o2o if (r["env"], r["algo"]) == key]
        off = [r["score_mean"] for r in rs if r["phase"] == "offline"]
        on = [r["score_mean"] for r in rs if r["phase"] == "online"]
        if off and on:
            out.append({"env": key[0], "algo": key[1], "offline_end": off[-1], "online_min": min(on),
                        "online_end": on[-1], "drop": min(on) - off[-1]})
    return out


def to_markdown(rows: list[dict], scale: str) -> str:
    m = machine()
    out = [f"# Robust offline RL ({scale} scale)", "", f"machine: {m['cpu']} ({m['cores']} cores), jax {m['jax']}", ""]
    cor = [r for r in rows if r["benchmark"] == "corruption"]
    if cor:
        algos = list(dict.fromkeys(r["algo"] for r in cor))
        out += [f"## Corruption ({cor[0].get('level', 'medium-replay')}, rate {cor[0]['rate']}, scale "
                f"{cor[0]['scale']}; last normalised score, mean ± std over {cor[0]['seeds']} seeds)", "",
                "| env | data | " + " | ".join(algos) + " |", "|---|---|" + "---|" * len(algos)]
        for key in dict.fromkeys((r["env"], r["dataset"]) for r in cor):
            cells = {r["algo"]: f"{r['score_mean']:.1f} ± {r['score_std']:.1f}" for r in cor
                     if (r["env"], r["dataset"]) == key}
            out.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells.get(a, "") for a in algos) + " |")
        for env in dict.fromkeys(r["env"] for r in cor):
            means = {a: np.mean([r["score_mean"] for r in cor if r["env"] == env and r["algo"] == a
                                 and r["dataset"] != "clean"]) for a in algos}
            out.append(f"| {env} | mean over corrupted | " + " | ".join(f"{means[a]:.1f}" for a in algos) + " |")
        out.append("")
    mix = [r for r in rows if r["benchmark"] == "mixed"]
    if mix:
        algos = list(dict.fromkeys(r["algo"] for r in mix))
        out += ["## Mixed-quality datasets", "", "| env | level | behaviour | " + " | ".join(algos) + " |",
                "|---|---|---|" + "---|" * len(algos)]
        for key in dict.fromkeys((r["env"], r["dataset"]) for r in mix):
            rs = [r for r in mix if (r["env"], r["dataset"]) == key]
            cells = {r["algo"]: f"{r['score_mean']:.1f} ± {r['score_std']:.1f}" for r in rs}
            out.append(f"| {key[0]} | {key[1]} | {rs[0]['behavior_score']:.1f} | "
                       + " | ".join(cells.get(a, "") for a in algos) + " |")
        out.append("")
    summ = o2o_summary(rows)
    if summ:
        out += ["## Offline -> online (from medium)", "",
                "| env | algo | last offline | lowest online | last online | drop |", "|---|---|---|---|---|---|"]
        out += [f"| {r['env']} | {r['algo']} | {r['offline_end']:.1f} | {r['online_min']:.1f} | {r['online_end']:.1f} "
                f"| {r['drop']:+.1f} |" for r in summ]
        out.append("")
    return "\n".join(out)


def _corruption_panel(ax, cor: list[dict]) -> None:
    names = list(dict.fromkeys(r["dataset"] for r in cor))
    algos = list(dict.fromkeys(r["algo"] for r in cor))
    w = 0.8 / len(algos)
    by = {(r["algo"], r["dataset"]): r for r in cor}  # a variant run on some datasets only leaves gaps (NaN)
    for i, a in enumerate(algos):
        vals = [by[a, n]["score_mean"] if (a, n) in by else np.nan for n in names]
        errs = [by[a, n]["score_std"] if (a, n) in by else np.nan for n in names]
        ax.bar(np.arange(len(names)) + i * w, vals, w, yerr=errs, label=a)
    ax.set_xticks(np.arange(len(names)) + 0.4 - w / 2, names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("normalised score")
    ax.set_title(f"corruption ({cor[0]['env']})")
    ax.legend()


def _o2o_panel(ax, o2o: list[dict], learning_starts: int | None = None) -> None:
    for a in dict.fromkeys(r["algo"] for r in o2o):
        rs = [r for r in o2o if r["algo"] == a]
        x = [r["chunk"] for r in rs]
        mean, std = np.array([r["score_mean"] for r in rs]), np.array([r["score_std"] for r in rs])
        ax.plot(x, mean, label=a)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    first_online = min((r["chunk"] for r in o2o if r["phase"] == "online"), default=None)
    if first_online is not None:
        ax.axvline(first_online - 0.5, color="gray", ls="--", lw=1)
    label = "chunk (dashed: online from here)"
    # RO2O's first online updates fall in the first chunk with more online steps than learning_starts
    learning = min((r["chunk"] for r in o2o if r["online_steps"] > learning_starts), default=None) \
        if learning_starts else None
    if learning is not None:
        ax.axvline(learning - 0.5, color="gray", ls=":", lw=1)
        label = f"chunk (dashed: online from here; dotted: RO2O updates from {learning_starts} steps)"
    ax.set_xlabel(label)
    ax.set_ylabel("normalised score")
    ax.set_title(f"offline -> online ({o2o[0]['env']})")
    ax.legend()


def _panels(rows: list[dict]) -> list[tuple]:
    """(draw, rows) per env and part present: corruption scores (bars), offline -> online curves."""
    parts = ((_corruption_panel, "corruption"), (_o2o_panel, "offline_to_online"))
    return [(draw, rs) for env in dict.fromkeys(r["env"] for r in rows) for draw, part in parts
            if (rs := [r for r in rows if r["env"] == env and r["benchmark"] == part])]


def plot(rows: list[dict], path: str, learning_starts: int | None = None) -> None:
    """One panel per env and part present (`_panels`); `learning_starts` (RO2O's) is marked on the
    offline -> online curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(rows)
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(6 * max(len(panels), 1), 4), squeeze=False)
    for ax, (draw, part) in zip(axes[0], panels):
        draw(ax, part, learning_starts) if draw is _o2o_panel else draw(ax, part)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(rows: list[dict], scale: str, out_dir: Path) -> dict:
    stem = result_stem(out_dir, SCALES[scale].get("files", "offline_robust"))  # a scale may name its own files
    write_csv(rows, f"{stem}.csv")
    Path(f"{stem}.md").write_text(to_markdown(rows, scale))
    plot(rows, f"{stem}.png", SCALES[scale]["ro2o"].get("learning_starts"))
    return {"csv": f"{stem}.csv", "md": f"{stem}.md", "png": f"{stem}.png"}


def suite(scale: str, skip_peers: bool = False, out_dir: Path | None = None) -> list[dict]:
    """Rows for `benchmarks.run` (no peers are run). Full scale writes into benchmarks/results/,
    ci scale into a temporary directory."""
    if out_dir is None:
        out_dir = RESULTS if scale == "full" else Path(tempfile.mkdtemp(prefix="offline-robust-ci-"))
    rows = run_all(scale, cache_dir="" if scale == "full" else str(out_dir / "cache"))
    files = write(rows, scale, out_dir)
    return [{**r, **files} for r in rows]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--out-dir", type=dir_arg, default=RESULTS)
    p.add_argument("--cache-dir", default="", help="dataset cache (default: the user cache)")
    args = p.parse_args(argv)
    rows = run_all(args.scale, args.cache_dir, done=lambda rows: write(rows, args.scale, args.out_dir))
    files = write(rows, args.scale, args.out_dir)
    print(to_markdown(rows, args.scale))
    print(f"wrote {files['csv']}, {files['md']} and {files['png']}")
    return rows


if __name__ == "__main__":
    main()
