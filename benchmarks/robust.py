"""Robust RL on CartPole: worst case and average over an uncertainty set, certified rewards of
policy smoothing, and the speed of a vmapped worst-case grid against a Python loop.

1. `robustness`: PPO on the nominal pole, PPO with domain randomisation (IWOCS's first problem,
   `iwocs` with one chunk), RARL, QARL (SPDL and linear curricula) and IWOCS (CMA-ES search) train
   for the same number of env steps (both players' steps counted for RARL/QARL), seeds vmapped in
   one program per method; each seed's deterministic policy is then evaluated on a grid over the set
   length [0.25, 2.5] x masspole [0.05, 1.0] (both end points included), `eval_episodes` episodes
   per point. Rows: worst case (min over the grid) and average, mean and std over seeds.
2. `certificates`: one noise-trained PPO (policy smoothing, sigma 0.2) smoothed at several noise
   levels sigma; for each, n smoothed episodes and the certified expected reward (DKW, alpha 0.05)
   at per-step l2 budgets epsilon (B = epsilon sqrt(500)).
3. `grid_speed`: the returns of a fixed policy over a 10 x 10 grid of the set, in one vmapped call
   against a Python loop over the 100 points of one compiled single-point evaluation (the peers' way:
   RRLS and Robust-Gymnasium step one env per point). Rows give both times and their ratio.

Writes `benchmarks/results/robust-<date>-<device>.{csv,md,png}` (full scale; ci and tiny scales into
a temporary directory unless `--out-dir`). Not run: Pendulum and brax sets, and the papers' budgets.

Run: `python -m benchmarks.robust --scale ci --out-dir benchmarks/results`
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS, markdown_parts, result_stem, write_csv

SET = (("length", 0.25, 2.5), ("masspole", 0.05, 1.0))
SCALES = {
    "tiny": dict(steps=2048, seeds=1, points=3, eval_episodes=1, methods=("ppo_nominal",), cert_n=16,
                 sigmas=(0.2,), ps_steps=1024, hidden=(8,), speed_points=3),
    "ci": dict(steps=100_000, seeds=2, points=10, eval_episodes=2,
               methods=("ppo_nominal", "ppo_dr", "rarl", "qarl", "qarl_linear", "iwocs"), cert_n=500,
               sigmas=(0.1, 0.2, 0.4), ps_steps=100_000, hidden=(32, 32), speed_points=10),
    "full": dict(steps=500_000, seeds=5, points=10, eval_episodes=4,
                 methods=("ppo_nominal", "ppo_dr", "rarl", "qarl", "qarl_linear", "iwocs"), cert_n=10_000,
                 sigmas=(0.1, 0.2, 0.4, 0.8), ps_steps=500_000, hidden=(64, 64), speed_points=10),
}
EPSILONS = (0.0, 0.01, 0.02, 0.05, 0.1)


def _method(name: str, steps: int, hidden):
    """(config, module, policy_of(carry)) of one method at a budget of `steps` env steps."""
    from jaxrl.algos import iwocs, ppo, qarl, rarl

    small = dict(num_envs=8, num_steps=128, hidden=tuple(hidden))
    if name == "ppo_nominal":
        cfg = ppo.Config(total_timesteps=steps, num_chunks=1, **small)
        return cfg, ppo, lambda c: ppo.make_policy(cfg, c)
    if name in ("ppo_dr", "iwocs"):
        chunks = 1 if name == "ppo_dr" else 3
        search = dict(search_population=16, search_generations=4, search_episodes=2)
        cfg = iwocs.Config(num_chunks=chunks, steps_per_problem=steps // chunks, robust_set=SET, **search, **small)
        return cfg, iwocs, lambda c: iwocs.make_policy(cfg, c)
    if name == "rarl":
        cfg = rarl.Config(total_timesteps=steps, num_chunks=1, **small)
        return cfg, rarl, lambda c: rarl.make_policy(cfg, c.pro)
    cfg = qarl.Config(total_timesteps=steps, num_chunks=1, curriculum="linear" if name == "qarl_linear" else "spdl",
                      **small)
    return cfg, qarl, lambda c: qarl.make_policy(cfg, c.pro)


def robustness(scale: str) -> list[dict]:
    from envs.robust import UncertaintySet, make_robust
    from jaxrl.core.robust_eval import grid_returns

    s = SCALES[scale]
    uset = UncertaintySet("CartPole-v1", SET)
    env, params = make_robust("CartPole-v1")
    rows, grids = [], {}
    for name in s["methods"]:
        cfg, mod, policy_of = _method(name, s["steps"], s["hidden"])
        trainer = mod.make_train(cfg)
        t0 = time.perf_counter()

        def one(key):
            carry, _ = trainer.train(key)
            res = grid_returns(env, params, uset, uset.grid(s["points"]), policy_of(carry), jax.random.key(123),
                               s["eval_episodes"], 500)
            return res.returns

        returns = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), s["seeds"])))
        worst, mean = returns.min(1), returns.mean(1)
        grids[name] = returns.mean(0)
        rows.append({"benchmark": "robust", "part": "robustness", "method": name, "seeds": s["seeds"],
                     "env_steps": s["steps"], "worst": round(float(worst.mean()), 1),
                     "worst_std": round(float(worst.std()), 1), "average": round(float(mean.mean()), 1),
                     "average_std": round(float(mean.std()), 1), "grid": f"{s['points']}x{s['points']}",
                     "seconds": round(time.perf_counter() - t0, 1)})
    return rows, grids


def certificates(scale: str) -> list[dict]:
    from jaxrl.algos import policy_smoothing as ps

    s = SCALES[scale]
    cfg = ps.Config(total_timesteps=s["ps_steps"], num_envs=8, num_steps=128, hidden=tuple(s["hidden"]),
                    sigma=0.2, num_chunks=1)
    carry, _ = jax.jit(ps.make_train(cfg).train)(jax.random.key(0))
    rows = []
    for sigma in s["sigmas"]:
        rets = np.asarray(jax.jit(lambda k: ps.smoothed_returns(cfg, carry.ts, k, s["cert_n"], sigma))(
            jax.random.key(1)))
        for eps in EPSILONS:
            cert = float(ps.certified_reward(rets, sigma, ps.budget(eps, 500), 0.05))
            rows.append({"benchmark": "robust", "part": "certificates", "method": "policy_smoothing",
                         "train_sigma": 0.2, "sigma": sigma, "epsilon": eps, "episodes": s["cert_n"],
                         "smoothed_return": round(float(rets.mean()), 1), "certified_return": round(cert, 1)})
    return rows


def grid_speed(scale: str) -> list[dict]:
    """A fixed (randomly initialised) policy: the time is the env's and the grid's, not learning's."""
    from envs.robust import UncertaintySet, make_robust
    from jaxrl.core.evaluate import evaluate
    from jaxrl.core.ppo_players import Player
    from jaxrl.core.robust_eval import grid_returns

    s = SCALES[scale]
    uset = UncertaintySet("CartPole-v1", SET)
    env, params = make_robust("CartPole-v1")
    net = Player(2, True, (64, 64))
    w = net.init(jax.random.key(0), jnp.zeros((1, 4)))

    def policy(obs, key):
        return jnp.argmax(net.apply(w, obs[None])[0].logits[0])

    points = uset.grid(s["speed_points"])
    vmapped = jax.jit(lambda k: grid_returns(env, params, uset, points, policy, k, 1, 500).returns)
    single = jax.jit(lambda v, k: evaluate(env, uset.apply(params, v), policy, k, 1, 500)[0])
    key = jax.random.key(0)
    jax.block_until_ready(vmapped(key)), jax.block_until_ready(single(points[0], key))  # compile both
    t0 = time.perf_counter()
    a = np.asarray(jax.block_until_ready(vmapped(key)))
    t_vmap = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = np.array([float(single(v, key)) for v in points])
    t_loop = time.perf_counter() - t0
    return [{"benchmark": "robust", "part": "grid_speed", "points": int(points.shape[0]), "episode_steps": 500,
             "vmap_s": round(t_vmap, 4), "loop_s": round(t_loop, 4), "ratio": round(t_loop / t_vmap, 2),
             "same_returns": bool(np.allclose(a, b))}]


def plot(grids: dict, cert_rows: list[dict], points: int, path: Path) -> None:
    from envs.robust import UncertaintySet
    from jaxrl.core.robust_eval import heatmap
    from jaxrl.plot import _figure, _save

    uset = UncertaintySet("CartPole-v1", SET)
    n = len(grids) + 1
    fig = _figure(figsize=(4.5 * n, 3.8))
    for i, (name, r) in enumerate(grids.items()):
        heatmap(uset, points, r, ax=fig.add_subplot(1, n, i + 1), title=name)
    ax = fig.add_subplot(1, n, n)
    for sigma in sorted({r["sigma"] for r in cert_rows}):
        rs = [r for r in cert_rows if r["sigma"] == sigma]
        ax.plot([r["epsilon"] for r in rs], [r["certified_return"] for r in rs], "o-", label=f"sigma {sigma}")
    ax.set_xlabel("per-step l2 budget epsilon")
    ax.set_ylabel("certified expected return")
    ax.legend()
    _save(fig, path)


def write(rows: list[dict], grids: dict, scale: str, out_dir: Path) -> dict:
    stem = result_stem(out_dir, "robust")
    write_csv(rows, stem.with_suffix(".csv"))
    stem.with_suffix(".md").write_text(markdown_parts(rows, f"Robust RL on CartPole ({scale} scale)",
                                                      ("robustness", "certificates", "grid_speed")))
    plot(grids, [r for r in rows if r["part"] == "certificates"], SCALES[scale]["points"], stem.with_suffix(".png"))
    return {"csv": str(stem.with_suffix(".csv")), "md": str(stem.with_suffix(".md"))}


def suite(scale: str, skip_peers: bool = False, out_dir: Path | None = None) -> list[dict]:
    """Rows for `benchmarks.run`; `scale` "ci" runs the reduced form (the peers' grid loop is ours,
    so `skip_peers` changes nothing)."""
    if out_dir is None:
        out_dir = RESULTS if scale == "full" else Path(tempfile.mkdtemp(prefix="robust-"))
    rob, grids = robustness(scale)
    rows = rob + certificates(scale) + grid_speed(scale)
    files = write(rows, grids, scale, out_dir)
    return [{**r, **files} for r in rows]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--out-dir", type=Path, default=None)
    args = p.parse_args(argv)
    rows = suite(args.scale, out_dir=args.out_dir)
    print(Path(rows[0]["md"]).read_text())
    return rows


if __name__ == "__main__":
    main()
