"""Robust RL: worst case and average over an uncertainty set, certified rewards of policy
smoothing, and the speed of a vmapped worst-case grid against a Python loop.

1. `robustness`, per env of the scale: PPO on the nominal env, PPO with domain randomisation
   (IWOCS's first problem, `iwocs` with one chunk), RARL, QARL (SPDL and linear curricula) and IWOCS
   (CMA-ES search) train for the same number of env steps (both players' steps counted for
   RARL/QARL), seeds vmapped in one program per method; on continuous-action envs also IWOCS and
   QARL with their papers' learner, SAC (`iwocs_sac`, `qarl_sac`, at the scale's `sac_steps`: SAC
   needs far fewer env steps and each costs a gradient update); each seed's deterministic policy is then
   evaluated on a grid over the env's set (`ENVS`, both end points included), `eval_episodes`
   episodes per point. Rows: worst case (min over the grid) and average, mean and std over seeds.
2. `certificates` (CartPole): one noise-trained PPO (policy smoothing, sigma 0.2) smoothed at several
   noise levels sigma; for each, n smoothed episodes and the certified expected reward (DKW, alpha
   0.05) at per-step l2 budgets epsilon (B = epsilon sqrt(500)).
3. `grid_speed` (CartPole): the returns of a fixed policy over a 10 x 10 grid of the set, in one
   vmapped call against a Python loop over the 100 points of one compiled single-point evaluation
   (the peers' way: RRLS and Robust-Gymnasium step one env per point). Rows give both times and
   their ratio.

Writes `benchmarks/results/robust-<date>-<device>.{csv,md,png,npz}` after each method and at the end
(the npz holds the heat maps' grids; reduced scale; `robust_full-*` at full scale; ci and tiny scales
into a temporary directory unless `--out-dir`). The papers' budgets (millions of steps) are not run.

Run: `python -m benchmarks.robust --scale reduced --envs CartPole-v1 brax/inverted_pendulum`
(`--methods qarl qarl_sac --files NAME`: those methods' rows only, in files of their own)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS, dir_arg, markdown_parts, result_stem, write_csv

# Per env: the uncertainty set of the evaluation (and of domain randomisation and IWOCS), the
# adversary's channels and bound for RARL and QARL, and PPO settings every method shares (on top of
# 8 envs x 128 steps, PureJaxRL's CartPole config). CartPole's push is 10 N, brax's inverted pendulum
# motor pushes up to 300 N and RRLS's hopper force sets are +-3 per component. On the brax inverted
# pendulum PPO with 16 x 64 steps, lr 1e-3 and 10 epochs reached a return of 930-990 (of 1000) in
# 200k steps on 2 seeds here; with the CartPole settings it was at 30 after 100k.
_BRAX_PPO = dict(num_envs=16, num_steps=64, lr=1e-3, update_epochs=10, ent_coef=0.0)
# Pendulum: ppo.PENDULUM's settings; the players scale rewards by a fixed 0.1 where PPO itself keeps
# a running return std (normalize_reward). Without either, PPO was at -955 after 200k steps here.
_PENDULUM_PPO = dict(num_envs=8, num_steps=256, update_epochs=10, num_minibatches=8, lr=1e-3, gamma=0.95,
                     ent_coef=0.0, reward_scale=0.1)
# QARL's SPDL moves its temperatures only while the protagonist's return G reaches `perf_lb` (qarl's
# default, 10, suits CartPole's and brax's +1 per step). Pendulum's returns are negative, so 10 is
# never reached and the curriculum never moves. Measured here at a fixed temperature: PPO's G
# (rewards x 0.1, gamma 0.95) ends at -2.7 / -3.9 on two seeds after 200k steps; SAC's (gamma 0.99)
# is -300 to -500 before it swings up and -5 to -60 after.
_PENDULUM_PERF_LB = {"ppo": -4.0, "sac": -100.0}
ENVS = {
    "CartPole-v1": dict(set=(("length", 0.25, 2.5), ("masspole", 0.05, 1.0)), channels=("cart_force",),
                        bound=3.0, ppo={}),
    "Pendulum-v1": dict(set=(("m", 0.5, 2.0), ("l", 0.5, 2.0)), channels=("m", "l"), bound=0.3, ppo=_PENDULUM_PPO,
                        perf_lb=_PENDULUM_PERF_LB),
    "brax/inverted_pendulum": dict(set=(("pole_mass", 1.0, 31.0), ("cart_mass", 1.0, 11.0)),
                                   channels=("cart_force_x",), bound=30.0, ppo=_BRAX_PPO),
    "brax/hopper": dict(set=(("torso_mass", 0.1, 3.0), ("friction", 0.1, 3.0)),
                        channels=("foot_force_x", "foot_force_z"), bound=3.0, ppo=_BRAX_PPO),
}
SET = ENVS["CartPole-v1"]["set"]
METHODS = ("ppo_nominal", "ppo_dr", "rarl", "qarl", "qarl_linear", "iwocs", "iwocs_sac", "qarl_sac")
SAC_METHODS = ("iwocs_sac", "qarl_sac")
# IWOCS's SAC learner: sac.PENDULUM's settings (one env, batch 128, lr 1e-3, learning after 1k steps)
_SAC = dict(learner="sac", num_envs=1, batch_size=128, learning_starts=1_000, actor_lr=1e-3, critic_lr=1e-3)
SCALES = {
    "tiny": dict(steps=2048, seeds=1, points=3, eval_episodes=1, methods=("ppo_nominal",), cert_n=16,
                 sigmas=(0.2,), ps_steps=1024, hidden=(8,), speed_points=3, envs=("CartPole-v1",)),
    "ci": dict(steps=100_000, sac_steps=6_000, seeds=2, points=10, eval_episodes=2, methods=METHODS, cert_n=500,
               sigmas=(0.1, 0.2, 0.4), ps_steps=100_000, hidden=(32, 32), speed_points=10,
               envs=("CartPole-v1",)),
    "reduced": dict(steps=200_000, sac_steps=15_000, seeds=5, points=10, eval_episodes=2, methods=METHODS, cert_n=500,
                    sigmas=(0.1, 0.2, 0.4), ps_steps=100_000, hidden=(32, 32), speed_points=10,
                    envs=("CartPole-v1", "Pendulum-v1", "brax/inverted_pendulum")),
    "full": dict(files="robust_full", steps=500_000, sac_steps=30_000, seeds=5, points=10, eval_episodes=4, methods=METHODS,
                 cert_n=10_000, sigmas=(0.1, 0.2, 0.4, 0.8), ps_steps=500_000, hidden=(64, 64), speed_points=10,
                 envs=tuple(ENVS)),
}
EPSILONS = (0.0, 0.01, 0.02, 0.05, 0.1)


def _method(name: str, steps: int, hidden, env: str = "CartPole-v1", sac_steps: int = 15_000):
    """(config, module, policy_of(carry)) of one method on `env` at a budget of `steps` env steps
    (`sac_steps` for `iwocs_sac`); None where the method does not apply (SAC on discrete actions)."""
    import envs
    from jaxrl.algos import iwocs, ppo, qarl, rarl

    e = ENVS[env]
    if name in SAC_METHODS and envs.spec(env).discrete:
        return None
    if name == "qarl_sac":  # 200 steps per round; SPDL every 4 pairs (one env per iteration)
        cfg = qarl.Config(env=env, total_timesteps=sac_steps, num_chunks=1, num_steps=200, channels=e["channels"],
                          force_bound=e["bound"], hidden=tuple(hidden), spdl_min_samples=4,
                          perf_lb=e.get("perf_lb", {}).get("sac", 10.0), **_SAC)
        return cfg, qarl, lambda c: qarl.make_policy(cfg, c.pro)
    if name == "iwocs_sac":
        search = dict(search_population=16, search_generations=4, search_episodes=2)
        cfg = iwocs.Config(env=env, num_chunks=3, steps_per_problem=sac_steps // 3, robust_set=e["set"],
                           hidden=tuple(hidden), **search, **_SAC)
        return cfg, iwocs, lambda c: iwocs.make_policy(cfg, c)
    small = dict(env=env, num_envs=8, num_steps=128, hidden=tuple(hidden))
    small.update(e["ppo"])
    game = dict(channels=e["channels"], force_bound=e["bound"])
    if name == "ppo_nominal":
        scaled = small.pop("reward_scale", 1.0) != 1.0
        cfg = ppo.Config(total_timesteps=steps, num_chunks=1, normalize_reward=scaled, **small)
        return cfg, ppo, lambda c: ppo.make_policy(cfg, c)
    if name in ("ppo_dr", "iwocs"):
        chunks = 1 if name == "ppo_dr" else 3
        search = dict(search_population=16, search_generations=4, search_episodes=2)
        cfg = iwocs.Config(num_chunks=chunks, steps_per_problem=steps // chunks, robust_set=e["set"], **search, **small)
        return cfg, iwocs, lambda c: iwocs.make_policy(cfg, c)
    if name == "rarl":
        cfg = rarl.Config(total_timesteps=steps, num_chunks=1, **game, **small)
        return cfg, rarl, lambda c: rarl.make_policy(cfg, c.pro)
    cfg = qarl.Config(total_timesteps=steps, num_chunks=1, curriculum="linear" if name == "qarl_linear" else "spdl",
                      perf_lb=e.get("perf_lb", {}).get("ppo", 10.0), **game, **small)
    return cfg, qarl, lambda c: qarl.make_policy(cfg, c.pro)


def robustness(scale: str, env_names=None, methods=None, on_row=None) -> tuple[list[dict], dict]:
    """Rows and the seed-mean return grids {(env, method): [points^2]} of every env and method;
    `on_row(rows, grids)` after each method, with everything so far."""
    import envs
    from envs.robust import UncertaintySet, make_robust
    from jaxrl.core.robust_eval import grid_returns

    s = SCALES[scale]
    rows, grids = [], {}
    for env_name in env_names or s["envs"]:
        uset = UncertaintySet(env_name, ENVS[env_name]["set"])
        env, params = make_robust(env_name)
        horizon = envs.spec(env_name).max_steps
        for name in methods or s["methods"]:
            method = _method(name, s["steps"], s["hidden"], env_name, s.get("sac_steps", 15_000))
            if method is None:
                continue
            cfg, mod, policy_of = method
            trainer = mod.make_train(cfg)
            t0 = time.perf_counter()

            def one(key):
                carry, _ = trainer.train(key)
                res = grid_returns(env, params, uset, uset.grid(s["points"]), policy_of(carry),
                                   jax.random.key(123), s["eval_episodes"], horizon)
                return res.returns

            returns = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), s["seeds"])))
            worst, mean = returns.min(1), returns.mean(1)
            grids[env_name, name] = returns.mean(0)
            rows.append({"benchmark": "robust", "part": "robustness", "env": env_name, "method": name,
                         "seeds": s["seeds"], "env_steps": s.get("sac_steps", 15_000)
                         if name in SAC_METHODS else s["steps"], "worst": round(float(worst.mean()), 1),
                         "worst_std": round(float(worst.std()), 1), "average": round(float(mean.mean()), 1),
                         "average_std": round(float(mean.std()), 1), "grid": f"{s['points']}x{s['points']}",
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
            if on_row is not None:
                on_row(rows, grids)
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
    """One row of heat maps per env (a column per method), and the certified-reward curves."""
    from envs.robust import UncertaintySet
    from jaxrl.core.robust_eval import heatmap
    from jaxrl.plot import _figure, _save

    env_names = list(dict.fromkeys(e for e, _ in grids))
    methods = list(dict.fromkeys(m for _, m in grids))
    rows, cols = max(len(env_names), 1), len(methods) + 1
    fig = _figure(figsize=(4.5 * cols, 3.8 * rows), layout="constrained")  # colour bars clear of the next map
    for i, env_name in enumerate(env_names):
        uset = UncertaintySet(env_name, ENVS[env_name]["set"])
        for j, name in enumerate(methods):
            if (env_name, name) in grids:
                heatmap(uset, points, grids[env_name, name], ax=fig.add_subplot(rows, cols, i * cols + j + 1),
                        title=f"{env_name}: {name}")
    if not cert_rows:
        _save(fig, path)
        return
    ax = fig.add_subplot(rows, cols, cols)
    for sigma in sorted({r["sigma"] for r in cert_rows}):
        rs = [r for r in cert_rows if r["sigma"] == sigma]
        ax.plot([r["epsilon"] for r in rs], [r["certified_return"] for r in rs], "o-", label=f"sigma {sigma}")
    ax.set_title("CartPole: policy smoothing")
    ax.set_xlabel("per-step l2 budget epsilon")
    ax.set_ylabel("certified expected return")
    ax.legend()
    _save(fig, path)


def write(rows: list[dict], grids: dict, scale: str, out_dir: Path, files: str | None = None,
          running: bool = False) -> dict:
    """CSV, markdown, PNG and the heat maps' data (`.npz`: env, method and the seed-mean return at each
    grid point, in `UncertaintySet.grid` order); `running` marks the markdown as partial (a run still
    going, or stopped)."""
    stem = result_stem(out_dir, files or SCALES[scale].get("files", "robust"))  # a scale may name its own files
    write_csv(rows, stem.with_suffix(".csv"))
    title = f"Robust RL ({scale} scale{', partial: written after each method' if running else ''})"
    stem.with_suffix(".md").write_text(markdown_parts(rows, title, ("robustness", "certificates", "grid_speed")))
    plot(grids, [r for r in rows if r["part"] == "certificates"], SCALES[scale]["points"], stem.with_suffix(".png"))
    keys = list(grids)
    np.savez(stem.with_suffix(".npz"), env=np.array([e for e, _ in keys]), method=np.array([m for _, m in keys]),
             returns=np.array([np.asarray(grids[k]).ravel() for k in keys]))
    return {"csv": str(stem.with_suffix(".csv")), "md": str(stem.with_suffix(".md"))}


def load_grids(npz: Path) -> dict:
    """The heat maps' grids {(env, method): returns} that `write` saved in `npz`."""
    saved = np.load(npz)
    return {(str(e), str(m)): r for e, m, r in zip(saved["env"], saved["method"], saved["returns"])}


def redraw(npz: Path) -> None:
    """Redraw a finished run's PNG from its files: the heat maps from `npz`, the certified-reward
    curves from the CSV beside it."""
    import csv

    grids = load_grids(npz)
    with open(npz.with_suffix(".csv")) as f:
        cert = [{k: float(r[k]) for k in ("sigma", "epsilon", "certified_return")} for r in csv.DictReader(f)
                if r["part"] == "certificates"]
    points = int(round(len(next(iter(grids.values()))) ** 0.5)) if grids else 1
    plot(grids, cert, points, npz.with_suffix(".png"))


def suite(scale: str, skip_peers: bool = False, out_dir: Path | None = None, env_names=None, methods=None,
          files: str | None = None) -> list[dict]:
    """Rows for `benchmarks.run` (the peers' grid loop is ours, so `skip_peers` changes nothing);
    `env_names` and `methods` override the scale's, and only a full run of the scale writes the
    certificates and grid-speed parts; `files` names the result files (default: the scale's)."""
    if out_dir is None:
        out_dir = RESULTS if scale in ("full", "reduced") else Path(tempfile.mkdtemp(prefix="robust-"))
    # written after each method too, so a long run stopped early keeps its finished rows and heat maps
    rob, grids = robustness(scale, env_names, methods,
                            on_row=lambda rows, grids: write(rows, grids, scale, out_dir, files, running=True))
    rows = rob if methods else rob + certificates(scale) + grid_speed(scale)
    files = write(rows, grids, scale, out_dir, files)
    return [{**r, **files} for r in rows]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--envs", nargs="+", choices=sorted(ENVS), default=None, help="override the scale's envs")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=None,
                   help="only these methods, and no certificates or grid speed (name the files with --files)")
    p.add_argument("--files", default=None, help="name of the result files (default: the scale's)")
    p.add_argument("--out-dir", type=dir_arg, default=None)
    p.add_argument("--redraw", type=Path, default=None, metavar="NPZ",
                   help="only redraw a run's PNG from its .npz and .csv")
    args = p.parse_args(argv)
    if args.redraw is not None:
        if args.redraw.suffix != ".npz":
            p.error(f"--redraw takes a run's .npz, got {str(args.redraw)!r}")
        for path in (args.redraw, args.redraw.with_suffix(".csv")):  # the grids and, beside them, the rows
            if not path.is_file():
                p.error(f"--redraw: no such file {str(path)!r}")
        redraw(args.redraw)
        return []
    if args.methods and not args.files and (args.out_dir is None and args.scale in ("full", "reduced")):
        p.error("--methods writes a partial table: give it --files so it does not replace the scale's files")
    rows = suite(args.scale, out_dir=args.out_dir, env_names=args.envs, methods=args.methods, files=args.files)
    print(Path(rows[0]["md"]).read_text())
    return rows


if __name__ == "__main__":
    main()
