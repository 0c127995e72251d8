"""The chunk loop: call the compiled chunk program on every group of runs, then hand the chunk's
metrics to a few small parts (tracker, NaN guard, progress bar, checkpointer) and stop cleanly on
SIGINT/SIGTERM. `execute(program, opts)` is all of it; each part is a few lines below.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np

from jaxrl.core import checkpoint as ckpt
from jaxrl.core import devices


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after finishing its current chunk. `resume` is the
    command-line flag that continues it (None when it has no checkpoint to continue from)."""

    def __init__(self, signame: str, chunk: int, checkpoint: str | None, log_dir: str | None):
        self.signame, self.chunk, self.checkpoint, self.log_dir = signame, chunk, checkpoint, log_dir
        self.resume = f"--resume {log_dir}" if checkpoint else None
        saved = (f"checkpoint saved at {checkpoint}" if checkpoint else
                 "no checkpoint saved (checkpointing is off: run with --checkpoint-every K to make runs resumable)")
        super().__init__(f"interrupted by {signame} after chunk {chunk}; {saved}")


@dataclass
class Program:
    """A trainer (or a list of configs) made ready to run: compiled init/update over one group."""

    init: Callable  # jitted: group inputs -> group carry
    update: Callable  # jitted, donating its argument: group carry -> (group carry, metrics [group])
    inputs: tuple  # host arrays with the runs on axis 0 (unpadded)
    num_chunks: int
    batch_shape: tuple  # (seeds,) or (configs, seeds)
    labels: Any  # for messages: seeds list, or (configs, seeds) pairs
    identity: dict  # configs, hashes, run: what a checkpoint must match (carry specs are added here)
    config_json: dict  # config.json
    score: str = "return"
    progress: str = "env_steps"
    final_json: Callable | None = None  # metrics -> final.json contents


# --------------------------------------------------------------------------------------- parts


class StopSignal:
    """While active, SIGINT/SIGTERM ask the loop to stop after the current chunk; a second SIGINT
    abandons the chunk at once (KeyboardInterrupt)."""

    def __init__(self):
        self.name: str | None = None
        self._old = {}

    def _handle(self, signum, frame):
        if self.name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.name = signal.Signals(signum).name
        print(f"\n[jaxrl] {self.name}: stopping after this chunk (Ctrl-C again abandons it)", file=sys.stderr)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def nan_guard(m: dict, chunk: int, num_chunks: int, labels) -> None:
    """FloatingPointError naming the metric, chunk and runs when a loss metric is NaN or inf."""
    for name, v in m.items():
        if not name.endswith("loss"):
            continue
        v = np.asarray(v, dtype=np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            what = "NaN" if np.isnan(v[bad]).any() else "inf"
            where = [labels[i] for i in np.flatnonzero(bad.reshape(-1))]
            kind = "seeds" if v.ndim == 1 else "(config, seed)"
            raise FloatingPointError(f"metric {name!r} is {what} after chunk {chunk} (of {num_chunks}) for {kind} {where}")


class Progress:
    """A tqdm bar over chunks showing the score and the progress counter (as an integer)."""

    def __init__(self, on: bool, total: int, start: int, score: str, progress: str):
        self.score, self.progress = score, progress
        self.bar = None
        if on:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc="train", unit="chunk", file=sys.stderr)

    def update(self, m: dict) -> None:
        if self.bar is None:
            return
        post = {}
        s = m.get(self.score)
        if s is not None and not np.isnan(np.asarray(s, np.float64)).all():
            post[self.score] = f"{np.nanmean(s):.1f}"
        if self.progress in m:
            post[self.progress.replace("env_", "")] = f"{int(np.max(m[self.progress])):,}"
        self.bar.set_postfix(post)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class Checkpointer:
    """Saves the whole carry of every run, and the metrics so far, every `every` chunks, at the
    end, and when asked (on a signal)."""

    def __init__(self, opts, log_dir, layout, identity, key_leaves, run_options):
        self.every, self.keep, self.layout = opts.checkpoint_every, opts.keep_checkpoints, layout
        self.root = os.path.join(log_dir, "checkpoints") if log_dir else None
        self.meta = {**identity, "run_options": run_options, "key_leaves": key_leaves}
        self.last: str | None = None

    def due(self, done: int, num_chunks: int) -> bool:
        return bool(self.every) and (done % self.every == 0 or done == num_chunks)

    def save(self, done: int, carries: list, history: list) -> str | None:
        if not self.every:
            return None
        n = self.layout.num_runs
        groups = [devices.fetch(ckpt.encode(jax.tree.leaves(c))) for c in carries]
        host = [np.concatenate(xs)[:n] for xs in zip(*groups)]
        if jax.process_index() == 0:
            hist = {k: np.stack([h[k].reshape(n) for h in history]) for k in history[0]}
            self.last = ckpt.save(self.root, done, host, hist, self.meta, keep=self.keep)
        return self.last


# --------------------------------------------------------------------------------------- the loop


def run_chunks(prog: Program, carries: list, start: int, end: int, layout, history: list, parts) -> list:
    """Chunks start..end-1 over every group; returns the carries. `parts`: (tracker, progress,
    checkpointer, stop signal)."""
    tracker, bar, saver, stop = parts
    for chunk in range(start, end):
        outs = [prog.update(c) for c in carries]  # dispatched asynchronously, one group after another
        carries = [c for c, _ in outs]
        m = {k: np.concatenate(v)[: layout.num_runs].reshape(prog.batch_shape)
             for k, v in _by_name(devices.fetch([m for _, m in outs])).items()}
        history.append(m)
        if tracker is not None:
            tracker.log(chunk, m)
        nan_guard(m, chunk, prog.num_chunks, prog.labels)
        bar.update(m)
        done = chunk + 1
        if saver.due(done, prog.num_chunks):
            saver.save(done, carries, history)
        if stop.name is not None and done < end:
            saved = saver.last if saver.due(done, prog.num_chunks) else saver.save(done, carries, history)
            raise RunInterrupted(stop.name, done, saved, ckpt.run_dir_of(saved) if saved else None)
    return carries


def _by_name(metric_dicts: list[dict]) -> dict[str, list]:
    return {k: [d[k] for d in metric_dicts] for k in metric_dicts[0]}
