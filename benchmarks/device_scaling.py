"""PPO CartPole aggregate env-steps/s with the seed axis sharded over 1, 2 and 4 devices.

On a CPU host the devices are forced with `XLA_FLAGS=--xla_force_host_platform_device_count=N`
(set before jax starts, so each N runs in a subprocess); on a GPU/TPU host the real devices are
used. Each measurement is the fused program `jit(vmap(trainer.train))` with the seed axis on a
1-D "seeds" mesh, compile timed apart, best of `--repeats` executions.

    python -m benchmarks.device_scaling --devices 1 2 4 --seeds 16 --total-timesteps 500000
    python -m benchmarks.device_scaling --devices 1 --num-envs 2048 --seeds 4   # GPU throughput
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import REPO


def measure_here(devices: int, seeds: int, total_timesteps: int, num_envs: int, repeats: int) -> dict:
    """Measure in this process (jax must already see >= `devices` devices)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    from benchmarks.common import machine, time_program
    from jaxrl.algos import ppo
    from jaxrl.core.run import seed_keys, seed_mesh

    cfg = ppo.Config(total_timesteps=total_timesteps, num_envs=num_envs, num_chunks=1)
    trainer = ppo.make_train(cfg)
    shard = NamedSharding(seed_mesh(devices), P("seeds"))
    keys = jax.device_put(seed_keys(0, seeds), shard)
    fn = jax.jit(jax.vmap(trainer.train), out_shardings=shard)
    compile_s, train_s, (_, metrics) = time_program(fn, (keys,), repeats)
    steps = cfg.updates_per_chunk * cfg.num_chunks * cfg.batch_size * seeds
    return {
        "benchmark": "device_scaling", "devices": devices, "seeds": seeds, "num_envs": num_envs,
        "steps_per_seed": steps // seeds, "compile_s": round(compile_s, 2), "train_s": round(train_s, 3),
        "env_steps_per_s": round(steps / train_s), "final_return": round(float(metrics["return"][:, -1].mean()), 1),
        "platform": machine()["platform"], "device_kind": machine()["device_kind"],
    }


def measure(devices: int, seeds: int, total_timesteps: int, num_envs: int = 4, repeats: int = 2) -> dict:
    """Measure in a subprocess that sees `devices` devices (forced host devices on CPU)."""
    env = dict(os.environ)
    if env.get("JAX_PLATFORMS", "cpu") == "cpu" or not env.get("JAX_PLATFORMS"):
        flags = env.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count", "--ignored")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    code = (
        "import json, sys; from benchmarks.device_scaling import measure_here; "
        f"print('RESULT ' + json.dumps(measure_here({devices}, {seeds}, {total_timesteps}, {num_envs}, {repeats})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"benchmark": "device_scaling", "devices": devices, "status": "failed", "error": out.stderr[-2000:]}


def suite(scale: str, skip_peers: bool = False) -> list[dict]:
    if scale == "ci":
        return [measure(d, seeds=4, total_timesteps=16_384, repeats=1) for d in (1, 2)]
    return [measure(d, seeds=16, total_timesteps=500_000) for d in (1, 2, 4)]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--seeds", type=int, default=16, help="seeds (a multiple of every device count)")
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args(argv)
    bad = [d for d in a.devices if d <= 0 or a.seeds % d]
    if bad:
        raise ValueError(f"--seeds {a.seeds} must be a positive multiple of every --devices value; bad: {bad}")
    rows = [measure(d, a.seeds, a.total_timesteps, a.num_envs, a.repeats) for d in a.devices]
    for r in rows:
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main()
