"""Read and write datasets: `.npz`, D4RL-style HDF5 (h5py) and Minari datasets on local disk.

    ds = load("hopper_medium-v2.hdf5")                   # a real D4RL file, unchanged
    ds = load("~/.minari/datasets/mujoco/hopper/medium-v0")  # a Minari dataset directory (no download)
    save(ds, "data.npz"); save(ds, "data.hdf5"); write_minari(ds, "jaxrl/hopper/medium-v0", root=...)

HDF5 layout (D4RL's): the six arrays at the root; per-step extras under `infos/` (D4RL's qpos,
qvel, action_log_probs); other content under `metadata/` (nested groups allowed) is kept as
`extra_metadata`. As D4RL's loader does, [N, 1] rewards/terminals/timeouts are squeezed to [N]. A file
without `next_observations` gets them from the next row, dropping the rows whose successor is not
in the file (timeouts and the last row), as D4RL's `qlearning_dataset` does. Our own metadata is one
JSON string in the root attribute `jaxrl`. The name of a D4RL file ("hopper_medium-v2.hdf5") gives
its task, level, reference scores and brax stand-in env, the score marked approximate.

Minari (optional `minari` package, local only): episodes become rows in order; each episode's
observations[:-1] and [1:] become observations and next_observations; terminations/truncations
become terminals/timeouts; `ref_min_score`/`ref_max_score` come from the dataset's metadata.
Exported episodes split at terminals | timeouts; within an episode next_observations[i] must equal
observations[i + 1] (Minari stores each observation once), and the last row ends an episode.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import warnings

import numpy as np

from envs.datasets.dataset import KEYS, Dataset, DatasetError, meta_from_json
from envs.datasets.reference import BRAX_EQUIVALENT, D4RL_REFERENCE, d4rl_name_parts

HDF5_SUFFIXES = (".hdf5", ".h5")


def load(path: str, *, env: str | None = None) -> Dataset:
    """Read a dataset from `.npz`, `.hdf5`/`.h5` or a Minari dataset directory, by its suffix.
    `env` overrides the env it is evaluated in."""
    path = os.path.expanduser(str(path))
    if path.endswith(".npz"):
        ds = read_npz(path)
    elif path.endswith(HDF5_SUFFIXES):
        ds = read_hdf5(path)
    elif os.path.isdir(path):
        ds = read_minari(path)
    elif not os.path.exists(path):
        raise FileNotFoundError(f"no dataset at {path!r}")
    else:
        raise DatasetError(f"cannot tell the format of {path!r}: use .npz, .hdf5/.h5 or a Minari dataset directory")
    return ds.replace(env=env) if env else ds


def save(ds: Dataset, path: str) -> str:
    """Write `ds` as `.npz` or `.hdf5`/`.h5` by the suffix of `path` (parents created); returns the path."""
    path = os.path.expanduser(str(path))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".npz"):
        write_npz(ds, path)
    elif path.endswith(HDF5_SUFFIXES):
        write_hdf5(ds, path)
    else:
        raise DatasetError(f"cannot tell the format of {path!r}: use .npz or .hdf5/.h5 (Minari: write_minari)")
    return path


# --------------------------------------------------------------------------------------- npz


def write_npz(ds: Dataset, path: str) -> None:
    arrays = dict(ds.arrays)
    arrays.update({f"infos/{k}": v for k, v in ds.infos.items()})
    arrays.update({f"metadata/{k}": np.asarray(v) for k, v in ds.extra_metadata.items()})
    arrays["__jaxrl__"] = np.asarray(ds.meta_json())
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read_npz(path: str) -> Dataset:
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    meta = meta_from_json(str(data.pop("__jaxrl__"))) if "__jaxrl__" in data else {}
    infos = {k[len("infos/"):]: data.pop(k) for k in list(data) if k.startswith("infos/")}
    extra = {k[len("metadata/"):]: data.pop(k) for k in list(data) if k.startswith("metadata/")}
    meta = {**_d4rl_meta(path), **meta} if not meta.get("source") else meta
    return Dataset.from_dict(data, infos=infos, extra_metadata=extra, **meta)


# --------------------------------------------------------------------------------------- hdf5


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a core requirement
        raise ImportError("reading HDF5 datasets needs h5py: pip install h5py") from e
    return h5py


def write_hdf5(ds: Dataset, path: str) -> None:
    h5py = _h5py()
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        for k, v in ds.arrays.items():
            f.create_dataset(k, data=v)
        for k, v in ds.infos.items():
            f.create_dataset(f"infos/{k}", data=v)
        for k, v in ds.extra_metadata.items():
            f.create_dataset(f"metadata/{k}", data=v)
        f.attrs["jaxrl"] = ds.meta_json()
    os.replace(tmp, path)


def _walk(group, prefix: str = "") -> dict:
    out = {}
    for name, item in group.items():
        key = f"{prefix}{name}"
        if hasattr(item, "items"):
            out.update(_walk(item, key + "/"))
        else:
            out[key] = item[()]
    return out


def read_hdf5(path: str) -> Dataset:
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        data = _walk(f)
        attr = f.attrs.get("jaxrl")
    meta = meta_from_json(attr.decode() if isinstance(attr, bytes) else attr) if attr is not None else {}
    if not meta.get("source"):
        meta = {**_d4rl_meta(path), **meta}
    extra = {k[len("metadata/"):]: v for k, v in data.items() if k.startswith("metadata/")}
    infos = {k[len("infos/"):]: v for k, v in data.items() if k.startswith("infos/")}
    top = {k: v for k, v in data.items() if "/" not in k}
    for k in ("rewards", "terminals", "timeouts"):  # D4RL's loader squeezes [N, 1] to [N]
        if k in top and np.ndim(top[k]) == 2 and np.shape(top[k])[1] == 1:
            top[k] = top[k][:, 0]
    if "timeouts" not in top and "terminals" in top:
        top["timeouts"] = np.zeros(np.shape(top["terminals"]), bool)
    infos.update({k: v for k, v in top.items() if k not in KEYS})
    if "next_observations" not in top and {"observations", "terminals", "timeouts"} <= set(top):
        top, infos = _next_from_successor(top, infos)
    return Dataset.from_dict({k: v for k, v in top.items() if k in KEYS}, infos=infos,
                             extra_metadata=extra, **meta)


def _next_from_successor(top: dict, infos: dict) -> tuple[dict, dict]:
    """next_observations[i] = observations[i + 1], keeping only rows whose successor belongs to the
    same episode or which are terminal (D4RL's qlearning_dataset drops timeouts and the last row)."""
    n = len(top["observations"])
    keep = ~np.asarray(top["timeouts"], bool)
    keep[-1] = False
    idx = np.flatnonzero(keep)
    top = {k: v[idx] for k, v in top.items()} | {"next_observations": top["observations"][idx + 1]}
    infos = {k: v[idx] for k, v in infos.items() if np.shape(v)[:1] == (n,)}
    return top, infos


def _d4rl_meta(path: str) -> dict:
    """Metadata a D4RL file name implies: task, level, reference scores, brax stand-in env."""
    parts = d4rl_name_parts(path)
    if parts is None:
        return {}
    task, level, version = parts
    lo, hi = D4RL_REFERENCE[task]
    env = BRAX_EQUIVALENT.get(task, "")
    return {"source": f"d4rl:{task}-{level}{'-' + version if version else ''}", "level": level,
            "env": env, "ref_min_score": lo, "ref_max_score": hi, "approximate_score": bool(env)}


# --------------------------------------------------------------------------------------- minari


def _minari():
    try:
        import minari
    except ImportError as e:
        raise ImportError("Minari datasets need the optional minari package: pip install 'jaxrl[minari]'") from e
    return minari


@contextlib.contextmanager
def _minari_root(root: str | None):
    if root is None:
        yield
        return
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = os.path.abspath(os.path.expanduser(root))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def minari_path(dataset_id: str, root: str | None = None) -> str:
    """The local directory of Minari dataset `dataset_id` (under `root`, else Minari's own root:
    $MINARI_DATASETS_PATH or ~/.minari/datasets). Nothing is downloaded."""
    _minari()
    from minari.storage import get_dataset_path

    with _minari_root(root):
        return str(get_dataset_path(dataset_id))


def read_minari(path_or_id: str, *, root: str | None = None) -> Dataset:
    """A Minari dataset from its local directory (or its id under `root` / Minari's local root)."""
    _minari()
    from minari.dataset.minari_dataset import MinariDataset

    path = os.path.expanduser(str(path_or_id))
    if not os.path.isdir(path):
        path = minari_path(path_or_id, root)
    data_dir = os.path.join(path, "data") if os.path.isdir(os.path.join(path, "data")) else path
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"no Minari dataset at {path!r} (only local datasets are read; nothing is downloaded)")
    mds = MinariDataset(data_dir)
    cols = {k: [] for k in KEYS}
    for i, ep in enumerate(mds.iterate_episodes()):
        obs = np.asarray(ep.observations)
        if not isinstance(ep.observations, np.ndarray) or obs.dtype == object:
            raise DatasetError(f"Minari episode {i}: 'observations' must be one array (dict/tuple spaces are not supported)")
        t = len(ep.rewards)
        cols["observations"].append(obs[:t])
        cols["next_observations"].append(obs[1:t + 1])
        cols["actions"].append(np.asarray(ep.actions).reshape(t, -1))
        cols["rewards"].append(np.asarray(ep.rewards))
        cols["terminals"].append(np.asarray(ep.terminations, bool))
        cols["timeouts"].append(np.asarray(ep.truncations, bool))
    if not cols["rewards"]:
        raise DatasetError(f"Minari dataset {mds.id!r} has no episodes: the dataset is empty")
    arrays = {k: np.concatenate(v) for k, v in cols.items()}
    md = mds.storage.metadata
    stored = md.get("jaxrl")
    meta = meta_from_json(stored) if isinstance(stored, str) else {}
    meta.setdefault("source", f"minari:{mds.id}")
    for k in ("ref_min_score", "ref_max_score"):
        if k in md and k not in meta:
            meta[k] = float(md[k])
    return Dataset.from_dict(arrays, **meta)


def write_minari(ds: Dataset, dataset_id: str, *, root: str | None = None, author: str = "jaxrl") -> str:
    """Export `ds` as Minari dataset `dataset_id` (e.g. "jaxrl/hopper/medium-v0") under `root` (else
    Minari's local root); returns its directory. Infos and extra metadata are not exported."""
    minari = _minari()
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer

    ds.validate()
    ends = ds.episode_ends()
    if not (bool(ds.terminals[-1]) or bool(ds.timeouts[-1])):
        raise DatasetError(f"'timeouts': the last row ({len(ds) - 1}) ends no episode; Minari stores whole "
                           "episodes (set its timeout to export the cut episode)")
    starts = np.r_[0, ends[:-1] + 1]
    inner = np.ones(len(ds), bool)
    inner[ends] = False
    idx = np.flatnonzero(inner)
    if idx.size and not np.array_equal(ds.next_observations[idx], ds.observations[idx + 1]):
        bad = idx[np.flatnonzero(np.any((ds.next_observations[idx] != ds.observations[idx + 1]).reshape(idx.size, -1), 1))[0]]
        raise DatasetError(f"'next_observations' at index {bad} differs from 'observations' at {bad + 1} inside one "
                           "episode; Minari stores each observation once")
    buffers = []
    for e, (s, t) in enumerate(zip(starts, ends)):
        sl = slice(s, t + 1)
        buffers.append(EpisodeBuffer(
            id=e, observations=np.concatenate([ds.observations[sl], ds.next_observations[t:t + 1]]),
            actions=ds.actions[sl], rewards=ds.rewards[sl],
            terminations=np.asarray(ds.terminals[sl], bool), truncations=np.asarray(ds.timeouts[sl], bool),
            infos={}))
    obs_space = gym.spaces.Box(-np.inf, np.inf, ds.obs_shape, ds.observations.dtype)
    act_space = gym.spaces.Box(-np.inf, np.inf, (ds.action_dim,), ds.actions.dtype)
    refs = {}
    if not (math.isnan(ds.ref_min_score) or math.isnan(ds.ref_max_score)):
        refs = {"ref_min_score": float(ds.ref_min_score), "ref_max_score": float(ds.ref_max_score)}
    with _minari_root(root), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no env spec, permalink, e-mail: none apply here
        out = minari.create_dataset_from_buffers(
            dataset_id, buffers, observation_space=obs_space, action_space=act_space, algorithm_name=ds.source or "jaxrl",
            author=author, description=f"{ds.env} {ds.level} (jaxrl)", **refs)
        out.storage.update_metadata({"jaxrl": ds.meta_json()})
        return minari_path(dataset_id)
