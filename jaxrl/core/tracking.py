"""What a run with a `log_dir` leaves behind, so that it can be read, compared and reproduced later:

    config.json      the algorithm config(s) with their hash, and the run options
    meta.json        jaxrl version, git commit (null outside a git checkout), Python and package
                     versions, device kind and count, process count, hostname, start/end time,
                     status ("running", "finished", "interrupted", "failed: ..."), and `sessions`:
                     argv, start, end and status of every start and resume of the run
    metrics.csv      one row per chunk and seed (and config): chunk, [config,] seed, metrics...
                     no timestamps, so the same config and seed give the same file
    metrics.parquet  the same table, when pyarrow is importable (written when the run ends)
    final.json       final return per seed (last non-NaN value) with mean, std and IQM
    tensorboard/     scalars per chunk, with `--tensorboard` (tensorboardX)
    and a W&B run with `--wandb` (only if wandb is importable; otherwise an ImportError says so)

TensorBoard and W&B are off by default. Only process 0 writes (see `jaxrl.core.run`).
"""
from __future__ import annotations

import csv
import datetime
import importlib.metadata
import json
import math
import os
import platform
import socket
import subprocess
import sys
from typing import Any, Sequence

import numpy as np

PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "distrax", "gymnax", "brax", "numpy",
            "orbax-checkpoint", "tyro")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit(path: str | None = None) -> str | None:
    """The commit of the git checkout holding `path` (default: the jaxrl package), else None."""
    path = path or os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    out = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def run_meta() -> dict[str, Any]:
    """Where and with what a run ran (no start/end time: the Tracker adds those)."""
    import jax

    import jaxrl

    devices = jax.devices()
    return {
        "jaxrl_version": jaxrl.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "platform": jax.default_backend(),
        "device_kind": devices[0].device_kind if devices else None,
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "hostname": socket.gethostname(),
        "argv": list(sys.argv),
    }


def interquartile_mean(scores, axis=None) -> np.ndarray:
    """Interquartile mean (Agarwal et al. 2021): the mean of the middle 50% of the scores, cutting
    floor(n/4) from each end of the sorted values (scipy's `trim_mean(x, 0.25)`), over all scores
    or along `axis`."""
    x = np.asarray(scores, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    x = np.sort(np.moveaxis(x, axis, -1), axis=-1)
    n = x.shape[-1]
    cut = int(0.25 * n)
    return x[..., cut:n - cut].mean(axis=-1)


def iqm(values) -> float:
    """Interquartile mean of the non-NaN values; NaN if there are none."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    return float(interquartile_mean(x)) if x.size else math.nan


def _num(v) -> float | None:
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def summary(values) -> dict:
    """per_seed (null where NaN), mean/std/iqm over the non-NaN values, and their count."""
    x = np.asarray(values, dtype=np.float64).ravel()
    ok = x[~np.isnan(x)]
    return {
        "per_seed": [_num(v) for v in x],
        "mean": _num(ok.mean()) if ok.size else None,
        "std": _num(ok.std()) if ok.size else None,
        "iqm": _num(iqm(ok)) if ok.size else None,
        "num_finite": int(ok.size),
    }


def _dump(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


class Tracker:
    """Writes a run directory; `log(chunk, metrics)` after each chunk, `finish(...)` at the end.

    `metrics` arrays have the run layout: shape [seeds] or [configs, seeds]. `history` (a list of
    such dicts) is written first when a run resumes, so metrics.csv ends as an uninterrupted run's.
    """

    def __init__(
        self,
        log_dir: str,
        *,
        config: dict,
        seeds: Sequence[int],
        num_configs: int | None = None,
        tensorboard: bool = False,
        wandb: bool = False,
        wandb_project: str = "jaxrl",
        history: Sequence[dict] = (),
        meta_extra: dict | None = None,
        progress: str = "env_steps",
    ):
        # optional back-ends first, so that a missing package fails before anything is written
        self._tb = self._wandb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as e:
                raise ImportError(f"--tensorboard needs tensorboardX (pip install 'jaxrl[tracking]'): {e}") from None
        if wandb:
            try:
                import wandb as wandb_mod
            except ImportError as e:
                raise ImportError(
                    f"--wandb needs the wandb package, which is not importable here ({e}); "
                    f"install it (pip install wandb) or run without --wandb"
                ) from None
        self.log_dir = log_dir
        self.progress = progress
        self.seeds = list(seeds)
        self.num_configs = num_configs
        self.rows: list[list] = []
        self.header: list[str] | None = None
        os.makedirs(log_dir, exist_ok=True)
        _dump(os.path.join(log_dir, "config.json"), config)
        self.meta = self._start_session(meta_extra or {})
        _dump(os.path.join(log_dir, "meta.json"), self.meta)
        self._csv_file = open(os.path.join(log_dir, "metrics.csv"), "w", newline="")
        self._csv = csv.writer(self._csv_file)
        if tensorboard:
            self._tb = SummaryWriter(os.path.join(log_dir, "tensorboard"))
        if wandb:
            self._wandb = wandb_mod.init(
                project=wandb_project, dir=log_dir, config=config, name=os.path.basename(os.path.abspath(log_dir))
            )
        for chunk, m in enumerate(history):
            self._write_rows(chunk, m)
        self._csv_file.flush()

    def _start_session(self, extra: dict) -> dict:
        """meta.json of this start: where and with what it runs, plus the history of every earlier
        start and resume of the run (`sessions`: argv, start, end, status) kept from the file."""
        sessions = []
        path = os.path.join(self.log_dir, "meta.json")
        if extra.get("resumed_from") and os.path.isfile(path):
            try:
                with open(path) as f:
                    old = json.load(f)
                sessions = list(old.get("sessions") or [])
            except (OSError, ValueError):
                sessions = []
        meta = run_meta()
        session = {"argv": meta.pop("argv"), "start_time": now(), "end_time": None, "status": "running", **extra}
        sessions.append(session)
        first = sessions[0]["start_time"]
        return {**meta, "start_time": first, "end_time": None, "status": "running", "sessions": sessions}

    def _index(self):
        if self.num_configs is None:
            return [((), s, i) for i, s in enumerate(self.seeds)]
        return [((c,), s, (c, i)) for c in range(self.num_configs) for i, s in enumerate(self.seeds)]

    def _write_rows(self, chunk: int, metrics: dict) -> None:
        if self.header is None:
            self.header = ["chunk"] + (["config"] if self.num_configs is not None else []) + ["seed", *metrics]
            self._csv.writerow(self.header)
        names = self.header[len(self.header) - len(metrics):]
        for cfg, seed, idx in self._index():
            row = [chunk, *cfg, seed, *(np.asarray(metrics[n])[idx] for n in names)]
            self._csv.writerow(row)
            self.rows.append(row)

    def log(self, chunk: int, metrics: dict) -> None:
        self._write_rows(chunk, metrics)
        self._csv_file.flush()
        step = chunk + 1
        if self.progress in metrics:
            step = int(np.max(metrics[self.progress]))
        scalars = {}
        for name, v in metrics.items():
            v = np.asarray(v, dtype=np.float64)
            if self.num_configs is None:
                if not np.isnan(v).all():
                    scalars[name] = float(np.nanmean(v))
            else:
                for c in range(self.num_configs):
                    if not np.isnan(v[c]).all():
                        scalars[f"{name}/config_{c}"] = float(np.nanmean(v[c]))
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, global_step=step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log({**scalars, "chunk": chunk}, step=step)

    def _parquet(self) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return
        cols = {h: [r[i] for r in self.rows] for i, h in enumerate(self.header or [])}
        table = pa.table({h: pa.array([np.asarray(x).item() for x in v]) for h, v in cols.items()})
        pq.write_table(table, os.path.join(self.log_dir, "metrics.parquet"))

    def finish(self, final: dict | None, status: str = "finished") -> None:
        """Close the files; write final.json (when given), metrics.parquet and the end time."""
        self.close()
        if final is not None:
            _dump(os.path.join(self.log_dir, "final.json"), final)
            if self.rows:
                self._parquet()
        end = now()
        self.meta.update(end_time=end, status=status)
        self.meta["sessions"][-1].update(end_time=end, status=status)
        _dump(os.path.join(self.log_dir, "meta.json"), self.meta)

    def close(self) -> None:
        if not self._csv_file.closed:
            self._csv_file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
