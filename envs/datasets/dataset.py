"""One in-memory offline dataset in D4RL's flat key layout, with its metadata and validation.

    ds = Dataset(observations=..., actions=..., rewards=..., terminals=..., timeouts=...,
                 next_observations=..., env="brax/hopper", level="medium",
                 ref_min_score=-20.27, ref_max_score=3234.3)
    ds.validate(envs.spec("brax/hopper"))   # DatasetError naming the key and index, or ds
    ds.normalized_score(returns)            # 100 (R - ref_min) / (ref_max - ref_min), as D4RL
    ds.content_hash()                       # sha256 of every array's dtype, shape and bytes

Row i is one transition (s_i, a_i, r_i, s'_i); `terminals[i]` says s'_i is terminal (no bootstrap),
`timeouts[i]` that the episode was cut after row i (time limit, or the end of a collection stream),
so episode boundaries are `terminals | timeouts`. Arrays keep the dtype they were given (a D4RL
file's float64 stays float64); learners convert to float32 on the device. Per-step arrays beyond the
six (D4RL's `infos/qpos`, ...) ride along in `infos`, other file content in `extra_metadata`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KEYS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
FLAG_KEYS = ("terminals", "timeouts")
META_FIELDS = ("env", "level", "source", "behavior_return", "ref_min_score", "ref_max_score",
               "approximate_score")


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names the key (and index) at fault."""


@dataclass(frozen=True, eq=False)
class Dataset:
    observations: np.ndarray
    """[N, *obs_shape] float"""
    actions: np.ndarray
    """[N, action_dim] float"""
    rewards: np.ndarray
    """[N] float"""
    terminals: np.ndarray
    """[N] bool (or 0/1 numbers): s' is terminal"""
    timeouts: np.ndarray
    """[N] bool (or 0/1 numbers): the episode was cut after this step without terminating"""
    next_observations: np.ndarray
    """[N, *obs_shape] float"""
    env: str = ""
    """the env to evaluate in (an `envs.make` name, e.g. "brax/hopper"); "" if unknown"""
    level: str = ""
    """D4RL level: random, medium, expert, medium-replay, medium-expert (or any label)"""
    source: str = ""
    """where the data comes from, e.g. "d4rl:hopper-medium-v2", "minari:...", "jaxrl:ppo seed 0" """
    behavior_return: float = math.nan
    """mean undiscounted return of the behaviour policy's episodes"""
    ref_min_score: float = math.nan
    """reference random-policy return (0 on the normalised scale)"""
    ref_max_score: float = math.nan
    """reference expert return (100 on the normalised scale)"""
    approximate_score: bool = False
    """the reference returns were measured in another simulator (a D4RL MuJoCo file evaluated in brax)"""
    infos: dict = field(default_factory=dict)
    """extra per-step arrays, name -> [N, ...] (D4RL's infos/*), kept bit for bit"""
    extra_metadata: dict = field(default_factory=dict)
    """other file content, path -> numpy value (D4RL's metadata/*), kept bit for bit"""

    # ----------------------------------------------------------------- views

    def __len__(self) -> int:
        return int(np.shape(self.rewards)[0]) if np.ndim(self.rewards) else 0

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in KEYS}

    @property
    def meta(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in META_FIELDS}

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.observations.shape[1:])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    def replace(self, **kw) -> "Dataset":
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_dict(cls, arrays: dict, **meta) -> "Dataset":
        """A dataset from a mapping holding the six D4RL keys (others go to `infos`)."""
        missing = [k for k in KEYS if k not in arrays]
        if missing:
            raise DatasetError(
                f"dataset is missing key(s) {missing}; a D4RL-layout dataset needs {list(KEYS)}")
        infos = {k: np.asarray(v) for k, v in arrays.items() if k not in KEYS}
        infos.update(meta.pop("infos", {}))
        return cls(**{k: np.asarray(arrays[k]) for k in KEYS}, infos=infos, **meta)

    # ----------------------------------------------------------------- scores

    def normalized_score(self, returns):
        """D4RL's normalised score 100 (R - ref_min) / (ref_max - ref_min) (NaN without references)."""
        return 100.0 * (np.asarray(returns, np.float64) - self.ref_min_score) / (
            self.ref_max_score - self.ref_min_score)

    def episode_ends(self) -> np.ndarray:
        """Indices i where an episode ends after row i (terminal or timeout), plus the last row."""
        done = np.asarray(self.terminals, bool) | np.asarray(self.timeouts, bool)
        done[-1:] = True
        return np.flatnonzero(done)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of every episode (the last one may be unfinished)."""
        ends = self.episode_ends()
        sums = np.add.reduceat(np.asarray(self.rewards, np.float64), np.r_[0, ends[:-1] + 1]) if len(self) else []
        return np.asarray(sums, np.float64)

    # ----------------------------------------------------------------- identity

    def content_hash(self) -> str:
        """16 hex digits of sha256 over every array (the six keys and `infos`): dtype, shape, bytes.
        Metadata is not hashed: relabelling a dataset does not change what a learner trains on."""
        h = hashlib.sha256()
        for name, x in [*self.arrays.items(), *sorted(self.infos.items())]:
            x = np.ascontiguousarray(x)
            h.update(f"{name}|{x.dtype.str}|{x.shape}|".encode())
            h.update(memoryview(x).cast("B"))
        return h.hexdigest()[:16]

    def meta_json(self) -> str:
        return json.dumps({k: _jsonable(v) for k, v in self.meta.items()}, sort_keys=True)

    # ----------------------------------------------------------------- checks

    def validate(self, spec=None, *, action_tol: float = 1e-5) -> "Dataset":
        """Raise DatasetError naming the key (and first bad index) unless every array is usable:
        all six keys present, equal lengths, float observations/actions/rewards, 0/1 flags, ranks
        (rewards/flags [N], actions [N, A], next_observations shaped as observations), no NaN or
        inf, at least one row. With an `envs.EnvSpec`, also the observation and action layout of
        that env and actions within its bounds (to `action_tol`). Returns the dataset."""
        arrays = self.arrays
        for k in KEYS:
            if arrays[k] is None:
                raise DatasetError(f"dataset is missing key {k!r}")
        n = len(self)
        if np.ndim(self.rewards) != 1:
            raise DatasetError(f"'rewards' must have rank 1 (shape [N]), got shape {np.shape(self.rewards)}")
        if n == 0:
            raise DatasetError("dataset is empty: 'rewards' has 0 rows")
        for k, x in arrays.items():
            if np.shape(x)[:1] != (n,):
                raise DatasetError(f"mismatched lengths: {k!r} has {np.shape(x)[0] if np.ndim(x) else 0} "
                                   f"rows, 'rewards' has {n}")
        for k, x in self.infos.items():
            if np.shape(x)[:1] != (n,):
                raise DatasetError(f"mismatched lengths: infos[{k!r}] has shape {np.shape(x)}, expected {n} rows")
        for k in ("observations", "actions", "rewards", "next_observations"):
            if not np.issubdtype(arrays[k].dtype, np.floating):
                raise DatasetError(f"{k!r} must be a float array, got dtype {arrays[k].dtype}")
        for k in FLAG_KEYS:
            x = arrays[k]
            if x.dtype != np.bool_ and not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
                raise DatasetError(f"{k!r} must be bool (or 0/1 numbers), got dtype {x.dtype}")
            if x.ndim != 1:
                raise DatasetError(f"{k!r} must have rank 1 (shape [N]), got shape {x.shape}")
            if x.dtype != np.bool_:
                bad = np.flatnonzero((x != 0) & (x != 1))
                if bad.size:
                    raise DatasetError(f"{k!r} must hold 0 or 1; index {bad[0]} holds {x[bad[0]]!r}")
        if self.observations.ndim < 2:
            raise DatasetError(f"'observations' must have rank >= 2 ([N, *obs_shape]), got shape {self.observations.shape}")
        if self.next_observations.shape != self.observations.shape:
            raise DatasetError(f"'next_observations' has shape {self.next_observations.shape}, "
                               f"'observations' has {self.observations.shape}")
        if self.actions.ndim != 2:
            raise DatasetError(f"'actions' must have rank 2 ([N, action_dim]), got shape {self.actions.shape}")
        for k in ("observations", "actions", "rewards", "next_observations"):
            finite = np.isfinite(arrays[k])
            if not finite.all():
                i = int(np.argwhere(~finite)[0][0])
                raise DatasetError(f"{k!r} holds NaN or inf at index {i}")
        if spec is not None:
            check_layout(self, spec, action_tol=action_tol)
        return self


def check_layout(ds: Dataset, spec, *, action_tol: float = 1e-5) -> None:
    """Raise DatasetError unless `ds` fits env `spec` (an `envs.EnvSpec`): observation shape, continuous
    actions of the same size, actions within the bounds."""
    where = f" (dataset {ds.source or ds.env or 'in memory'})"
    if tuple(spec.obs_shape) != ds.obs_shape:
        raise DatasetError(f"'observations' have shape {ds.obs_shape} per step but env {spec.name!r} "
                           f"observes {tuple(spec.obs_shape)}{where}: the layouts differ")
    if spec.discrete:
        raise DatasetError(f"'actions': env {spec.name!r} has discrete actions; offline learners here "
                           "need continuous ones")
    if spec.action_dim != ds.action_dim:
        raise DatasetError(f"'actions' have size {ds.action_dim} but env {spec.name!r} takes "
                           f"{spec.action_dim}{where}: the layouts differ")
    low, high = spec.low(), spec.high()
    a = ds.actions
    outside = (a < low - action_tol) | (a > high + action_tol)
    if outside.any():
        i, j = (int(v) for v in np.argwhere(outside)[0])
        raise DatasetError(
            f"'actions' outside env {spec.name!r}'s bounds [{low[j]}, {high[j]}]: index {i}, dimension {j} "
            f"holds {a[i, j]!r} ({int(outside.any(1).sum())} rows outside); clip them with "
            "ds.replace(actions=np.clip(ds.actions, low, high)) if that is what you want")


def concatenate(datasets: list[Dataset], **meta) -> Dataset:
    """Rows of `datasets` one after another (D4RL's medium-expert = medium then expert). Each part's
    last row becomes a timeout unless it is terminal, so no episode runs across the seam."""
    if not datasets:
        raise DatasetError("concatenate needs at least one dataset")
    parts = []
    for d in datasets:
        t = np.array(d.timeouts, copy=True)
        if len(d) and not bool(d.terminals[-1]):
            t[-1] = True if t.dtype == np.bool_ else 1
        parts.append(d.replace(timeouts=t))
    keys = set(parts[0].infos)
    arrays = {k: np.concatenate([getattr(p, k) for p in parts]) for k in KEYS}
    infos = {k: np.concatenate([p.infos[k] for p in parts]) for k in keys if all(k in p.infos for p in parts)}
    first = datasets[0]
    fields = {k: getattr(first, k) for k in META_FIELDS} | meta
    return Dataset(**arrays, infos=infos, **fields)


def _jsonable(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def meta_from_json(text: str) -> dict:
    d = json.loads(text)
    out = {k: d[k] for k in META_FIELDS if k in d}
    for k in ("behavior_return", "ref_min_score", "ref_max_score"):
        if k in out:
            out[k] = math.nan if out[k] is None else float(out[k])
    return out
