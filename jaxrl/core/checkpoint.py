"""Checkpoints of a whole run: the vmapped carry of every seed (and config), the metrics so far,
the chunk index, and the config they belong to, so that `--resume DIR` ends exactly where an
uninterrupted run would (the carry holds the RNG keys).

Layout, one directory per checkpoint under `<log_dir>/checkpoints/`:

    chunk_000006/
        state/          orbax (StandardCheckpointHandler): {"carry": {leaf_00000: [runs, ...], ...},
                        "metrics": {m_000: [chunks, runs], ...}} as plain numpy arrays
        meta.json       chunk index, config dict(s) and hash(es), run identity (seed, seeds, number
                        of configs), run options, carry structure (leaf paths, shapes, dtypes),
                        metric names
        manifest.json   size and sha256 of every file above; written last

A checkpoint is written into a hidden temporary directory next to its final place and renamed
when complete, so a crash mid-save leaves the previous checkpoint as the latest valid one.
`load` checks the manifest (a truncated, changed or deleted file is refused), the config (a
different config is refused, naming the fields that differ) and the carry's structure before it
reads any array, and it never writes anything.

This module owns what a checkpoint is: the encoding of a training carry (typed PRNG keys are
stored as their key data, with the implementation's name to wrap them again), the identity a
checkpoint must match to be resumed (`identity`: configs and their hashes, the run's seeds, the
number of chunks, the carry's structure, and content hashes of data a run closes over, such as an
offline dataset or pretrained weights), and saving, finding, verifying and loading.

Multi-host: the carry is gathered to every host before `save` and only process 0 writes (the
checkpoint directory must be on a filesystem all hosts see for `--resume`). This path is not
exercised by the tests here, which are single-host.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from typing import Sequence

import numpy as np

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed by this run (another run's, missing, unreadable)."""


class CorruptCheckpoint(CheckpointError):
    """A checkpoint whose files do not match their manifest or cannot be read."""

_NAME = re.compile(r"^chunk_(\d+)$")


def checkpoint_name(chunk: int) -> str:
    return f"chunk_{chunk:06d}"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: str) -> list[str]:
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def _checkpointer():
    import jax
    import orbax.checkpoint as ocp

    kw = {}
    if jax.process_count() > 1:  # only process 0 writes; do not wait on the others
        kw["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
            primary_host=jax.process_index(), active_processes={jax.process_index()}
        )
    return ocp.Checkpointer(ocp.StandardCheckpointHandler(), **kw)


def list_checkpoints(root: str) -> list[tuple[int, str]]:
    """(chunk, path) of the checkpoint directories in `root`, oldest first (temporaries skipped)."""
    if not os.path.isdir(root):
        return []
    out = []
    for n in os.listdir(root):
        m = _NAME.match(n)
        if m and os.path.isdir(os.path.join(root, n)):
            out.append((int(m.group(1)), os.path.join(root, n)))
    return sorted(out)


def find(path: str) -> str:
    """The checkpoint `--resume path` means: `path` itself if it is a checkpoint, else the latest
    one in `path` (a checkpoints directory) or in `path/checkpoints` (a run directory)."""
    if not os.path.isdir(path):
        raise CheckpointError(f"cannot resume: {path!r} is not a directory")
    if _NAME.match(os.path.basename(os.path.normpath(path))) or os.path.exists(os.path.join(path, "manifest.json")):
        return path
    for root in (os.path.join(path, "checkpoints"), path):
        found = list_checkpoints(root)
        if found:
            return found[-1][1]
    raise CheckpointError(f"cannot resume: no checkpoint (chunk_NNNNNN directory) in {path!r} or {path!r}/checkpoints")


def run_dir_of(checkpoint_path: str) -> str:
    """The run directory a checkpoint belongs to (`<run>/checkpoints/chunk_N` -> `<run>`)."""
    parent = os.path.dirname(os.path.normpath(checkpoint_path))
    if os.path.basename(parent) == "checkpoints":
        return os.path.dirname(parent)
    return parent


def save(
    root: str,
    chunk: int,
    carry_leaves: Sequence[np.ndarray],
    metrics: dict[str, np.ndarray],
    meta: dict,
    keep: int = 0,
) -> str:
    """Write checkpoint `chunk` (number of chunks done) into `root` atomically; keep the newest
    `keep` checkpoints (0: all). `carry_leaves` are host arrays with the runs on axis 0, in the
    carry's flatten order; `metrics` maps name -> [chunks, runs]. Returns the checkpoint path."""
    os.makedirs(root, exist_ok=True)
    for n in os.listdir(root):  # temporaries left by a crash mid-save
        if n.startswith(".tmp-") or n.startswith(".old-"):
            shutil.rmtree(os.path.join(root, n), ignore_errors=True)
    final = os.path.join(root, checkpoint_name(chunk))
    tmp = os.path.join(root, f".tmp-{checkpoint_name(chunk)}-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    names = list(metrics)
    carry_leaves = [np.asarray(x) for x in carry_leaves]
    # orbax cannot store arrays with no elements (e.g. an empty n-step window): keep their shape in meta.json
    empty = {str(i): [list(x.shape), str(x.dtype)] for i, x in enumerate(carry_leaves) if x.size == 0}
    tree = {
        "carry": {f"leaf_{i:05d}": x for i, x in enumerate(carry_leaves) if str(i) not in empty},
        "metrics": {f"m_{i:03d}": np.asarray(metrics[n]) for i, n in enumerate(names)},
    }
    import orbax.checkpoint as ocp

    ckptr = _checkpointer()
    ckptr.save(os.path.abspath(os.path.join(tmp, "state")), args=ocp.args.StandardSave(tree))
    ckptr.close()
    meta = {**meta, "format": FORMAT, "chunk": int(chunk), "metric_names": names, "empty_leaves": empty}
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    manifest = {p: [os.path.getsize(os.path.join(tmp, p)), _sha256(os.path.join(tmp, p))] for p in _files(tmp)}
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump({"files": manifest}, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    old = None
    if os.path.exists(final):  # re-saving a chunk after resuming from an earlier checkpoint
        old = os.path.join(root, f".old-{checkpoint_name(chunk)}-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    if keep and keep > 0:
        for _, path in list_checkpoints(root)[:-keep]:
            shutil.rmtree(path, ignore_errors=True)
    return final


def verify(path: str) -> dict:
    """Check every file of checkpoint `path` against its manifest; return its meta dict.
    Raises ValueError naming the first missing / truncated / changed file."""
    man_path = os.path.join(path, "manifest.json")
    if not os.path.isfile(man_path):
        raise CorruptCheckpoint(
            f"checkpoint {path!r} is incomplete or corrupt: manifest.json is missing "
            f"(a save that did not finish?); resume from an earlier checkpoint directory instead"
        )
    try:
        with open(man_path) as f:
            files = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CorruptCheckpoint(f"checkpoint {path!r} is corrupt: unreadable manifest.json ({e})") from None
    for rel, (size, digest) in sorted(files.items()):
        p = os.path.join(path, rel)
        if not os.path.isfile(p):
            raise CorruptCheckpoint(f"checkpoint {path!r} is corrupt: file {rel!r} is missing")
        if os.path.getsize(p) != size:
            raise CorruptCheckpoint(
                f"checkpoint {path!r} is corrupt: file {rel!r} has {os.path.getsize(p)} bytes, expected {size} "
                f"(truncated?)"
            )
        if _sha256(p) != digest:
            raise CorruptCheckpoint(f"checkpoint {path!r} is corrupt: file {rel!r} does not match its sha256")
    if "meta.json" not in files or not any(r.startswith("state" + os.sep) for r in files):
        raise CorruptCheckpoint(f"checkpoint {path!r} is corrupt: its manifest does not list meta.json and state/")
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path!r} has format {meta.get('format')!r}; this jaxrl reads format {FORMAT}")
    return meta


def config_diff(stored: dict, current: dict) -> list[str]:
    """`field: checkpoint X, this run Y` for every field whose value differs."""
    out = []
    for k in sorted(set(stored) | set(current)):
        a, b = stored.get(k, "<absent>"), current.get(k, "<absent>")
        if a != b:
            out.append(f"{k}: checkpoint {a!r}, this run {b!r}")
    return out


def check_compatible(path: str, meta: dict, expected: dict) -> None:
    """Raise ValueError unless checkpoint `meta` belongs to the run described by `expected`
    (same keys as the meta `make_meta` builds: configs, config_hashes, run, carry, num_chunks)."""
    problems = []
    s_cfgs, e_cfgs = meta.get("configs"), expected.get("configs")
    if e_cfgs is not None and s_cfgs is not None:
        if len(s_cfgs) != len(e_cfgs):
            problems.append(f"number of configs: checkpoint {len(s_cfgs)}, this run {len(e_cfgs)}")
        else:
            for i, (a, b) in enumerate(zip(s_cfgs, e_cfgs)):
                diff = config_diff(a, b)
                if diff:
                    where = f"config {i}: " if len(e_cfgs) > 1 else ""
                    problems += [where + d for d in diff]
        if not problems and meta.get("config_hashes") != expected.get("config_hashes"):
            problems.append(
                f"config hash: checkpoint {meta.get('config_hashes')}, this run {expected.get('config_hashes')}"
            )
    elif (e_cfgs is None) != (s_cfgs is None):
        problems.append(
            f"config: checkpoint {'has none' if s_cfgs is None else 'has one'}, "
            f"this run {'has none' if e_cfgs is None else 'has one'}"
        )
    for k, v in expected.get("run", {}).items():
        if meta.get("run", {}).get(k) != v:
            problems.append(f"{k}: checkpoint {meta.get('run', {}).get(k)!r}, this run {v!r}")
    for k, v in (expected.get("content_hashes") or {}).items():
        stored = (meta.get("content_hashes") or {}).get(k)
        if stored != v:
            problems.append(f"content hash of {k}: checkpoint {stored!r}, this run {v!r}")
    if meta.get("num_chunks") != expected.get("num_chunks"):
        problems.append(f"num_chunks: checkpoint {meta.get('num_chunks')!r}, this run {expected.get('num_chunks')!r}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path!r} belongs to a different run; mismatching fields:\n  " + "\n  ".join(problems)
        )
    s_carry, e_carry = meta.get("carry", {}), expected.get("carry", {})
    s_paths, e_paths = s_carry.get("paths", []), e_carry.get("paths", [])
    if s_paths != e_paths:
        only_s = [p for p in s_paths if p not in e_paths][:3]
        only_e = [p for p in e_paths if p not in s_paths][:3]
        raise CheckpointError(
            f"checkpoint {path!r}: the training carry has a different structure than this run's "
            f"(another algorithm or code version?); only in the checkpoint: {only_s}, only in this run: {only_e}"
        )
    for p, a, b in zip(e_paths, s_carry.get("leaves", []), e_carry.get("leaves", [])):
        if a != b:
            raise CheckpointError(f"checkpoint {path!r}: carry leaf {p} is (shape, dtype) {a}, this run expects {b}")
    chunk = meta.get("chunk")
    if not isinstance(chunk, int) or not 0 < chunk <= expected["num_chunks"]:
        raise CorruptCheckpoint(f"checkpoint {path!r} is corrupt: chunk {chunk!r}")


def load(path: str, expected: dict | None = None) -> tuple[dict, list[np.ndarray], dict[str, np.ndarray]]:
    """Verify and read checkpoint `path`: (meta, carry leaves [runs, ...], metrics {name: [chunks, runs]}).
    With `expected`, refuse (ValueError) a checkpoint of another run before reading any array.
    Writes nothing."""
    meta = verify(path)
    if expected is not None:
        check_compatible(path, meta, expected)
    try:
        tree = _checkpointer().restore(os.path.abspath(os.path.join(path, "state")))
    except Exception as e:  # noqa: BLE001 - anything orbax raises means the same to the user
        raise CorruptCheckpoint(f"checkpoint {path!r} is corrupt: orbax could not read it ({type(e).__name__}: {e})") from None
    specs = meta["carry"]["leaves"]
    empty = meta.get("empty_leaves", {})
    carry = [np.zeros(empty[str(i)][0], empty[str(i)][1]) if str(i) in empty else np.asarray(tree["carry"][f"leaf_{i:05d}"])
             for i in range(len(specs))]
    for i, (x, (shape, dtype)) in enumerate(zip(carry, specs)):
        want = (list(x.shape[1:]), str(x.dtype))
        if want != (shape, dtype):
            raise CorruptCheckpoint(
                f"checkpoint {path!r} is corrupt: carry leaf {i} is {want}, its meta says {(shape, dtype)}"
            )
    names = meta["metric_names"]
    metrics = {n: np.asarray(tree["metrics"][f"m_{i:03d}"]) for i, n in enumerate(names)}
    return meta, carry, metrics


# ----------------------------------------------------------------------------- carry encoding


def is_key(x) -> bool:
    import jax

    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _key_impl_name(x) -> str:
    import jax

    impl = getattr(x.dtype, "_impl", None)
    return impl.name if impl is not None else str(jax.random.key_impl(x))


def key_leaves(abstract_leaves) -> dict[str, str]:
    """{leaf index: PRNG implementation} of the typed-key leaves of a carry."""
    return {str(i): _key_impl_name(x) for i, x in enumerate(abstract_leaves) if is_key(x)}


def leaf_specs(abstract_leaves) -> list:
    """Per-run [shape, dtype] of each carry leaf as stored (typed keys as their key data)."""
    import jax

    out = []
    for x in abstract_leaves:
        if is_key(x):
            x = jax.eval_shape(jax.random.key_data, x)
        out.append([list(x.shape[1:]), str(x.dtype)])
    return out


def encode(leaves) -> list:
    """Carry leaves as storable arrays (typed keys -> key data); still on device."""
    import jax

    return [jax.random.key_data(x) if is_key(x) else x for x in leaves]


def decode(leaf, impl: str | None):
    """A stored leaf back as the carry holds it (key data -> typed keys of `impl`)."""
    import jax

    return leaf if impl is None else jax.random.wrap_key_data(leaf, impl=impl)


def identity(configs: list[dict] | None, config_hashes: list[str] | None, run: dict, num_chunks: int,
             carry_paths: list[str], abstract_leaves, content_hashes: dict | None = None) -> dict:
    """What a checkpoint must match to be resumed by a run (see `check_compatible`)."""
    out = {
        "configs": configs,
        "config_hashes": config_hashes,
        "run": run,
        "num_chunks": num_chunks,
        "carry": {"paths": carry_paths, "leaves": leaf_specs(abstract_leaves)},
    }
    if content_hashes:
        out["content_hashes"] = content_hashes
    return out


def newest_valid(root: str, below: int | None = None) -> str | None:
    """The newest checkpoint in `root` (older than chunk `below`) whose files match its manifest."""
    for chunk, path in reversed(list_checkpoints(root)):
        if below is not None and chunk >= below:
            continue
        try:
            verify(path)
        except ValueError:
            continue
        return path
    return None


def load_for_resume(path: str, expected: dict) -> tuple[str, dict, list[np.ndarray], dict[str, np.ndarray]]:
    """`find(path)` then `load`; when that checkpoint is corrupt, the error names the newest valid
    one before it and the command that resumes from it."""
    found = find(path)
    try:
        return (found, *load(found, expected))
    except CorruptCheckpoint as e:
        m = _NAME.match(os.path.basename(os.path.normpath(found)))
        older = newest_valid(os.path.dirname(os.path.normpath(found)), int(m.group(1))) if m else None
        hint = (f"; the newest valid checkpoint is {older!r}: resume from it with --resume {older}"
                if older else "; no older valid checkpoint exists")
        raise CorruptCheckpoint(str(e) + hint) from None
