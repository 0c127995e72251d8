"""A list of configs as one program: `run_many(make_train, configs, opts)`.

The configs must be instances of one dataclass that differ only in numeric fields which change
neither the carry's shapes nor any loop length (learning rates, coefficients, env physics). Each
config is validated concretely; the differing fields are then passed to `make_train` as traced
scalars inside the vmapped function (the `check_*` helpers skip tracers), so every (config, seed)
pair is one row of the same program: a learning-rate sweep over 64 seeds compiles once. A field
that changes shapes or must be concrete (a scan length, a Python `if`) is refused with a
ValueError naming it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxrl.core.config import config_hash, to_dict
from jaxrl.core.loop import Program
from jaxrl.core.run import (RunOptions, RunResult, algorithm_name, describe, devices, execute, final_summary, gather,
                            init_distributed, keys_for, seed_list, seed_mesh)
from jaxrl.core.train import Trainer

_NUMERIC = (bool, int, float, np.integer, np.floating, np.bool_)


def varying_fields(configs: list) -> list[str]:
    """The fields in which the configs differ; ValueError unless all are numeric."""
    cls = type(configs[0])
    if not dataclasses.is_dataclass(cls) or any(type(c) is not cls for c in configs):
        raise ValueError(f"configs must all be instances of one dataclass, got {[type(c).__name__ for c in configs]}")
    names = [f.name for f in dataclasses.fields(cls)]
    varying = [n for n in names if any(getattr(c, n) != getattr(configs[0], n) for c in configs[1:])]
    for n in varying:
        vals = [getattr(c, n) for c in configs]
        if not all(isinstance(v, _NUMERIC) for v in vals):
            raise ValueError(
                f"configs differ in {n!r} ({vals}), which is not numeric; only numeric fields that change "
                f"no shapes or loop lengths can differ within one run_many (run the others separately)"
            )
    return varying


def _culprits(make_train, configs, varying, i, same) -> list[str]:
    """The varying fields that, taken alone from config i into config 0, break `same(trainer)`."""
    base = configs[0]
    return [n for n in varying
            if not same(make_train(dataclasses.replace(base, **{n: getattr(configs[i], n)})))] or varying


def check_static(make_train, configs, varying, key) -> list[Trainer]:
    """ValueError naming the field when configs differ in chunk count or carry shapes."""
    trainers = [make_train(c) for c in configs]
    chunks = trainers[0].num_chunks
    shapes0 = describe(jax.eval_shape(trainers[0].init, key))
    for i, t in enumerate(trainers[1:], 1):
        if t.num_chunks != chunks:
            bad = _culprits(make_train, configs, varying, i, lambda t: t.num_chunks == chunks)
            raise ValueError(f"configs differ in {bad}, which changes the number of chunks ({chunks} for config 0, "
                             f"{t.num_chunks} for config {i}); such fields cannot vary within one run_many")
        shapes = describe(jax.eval_shape(t.init, key))
        if shapes != shapes0:
            bad = _culprits(make_train, configs, varying, i, lambda t: describe(jax.eval_shape(t.init, key)) == shapes0)
            a, b = next((a, b) for a, b in zip(shapes0, shapes) if a != b) if len(shapes) == len(shapes0) else (
                ("<structure>", len(shapes0)), ("", len(shapes)))
            raise ValueError(f"configs differ in {bad}, which changes the shapes of the training carry; e.g. carry "
                             f"leaf {a[0]} is {a[1]} for config 0, {b[1]} for config {i}; only fields that leave "
                             f"shapes and loop lengths unchanged can vary within one run_many")
    return trainers


def _dtype(configs, n):
    vals = [getattr(c, n) for c in configs]
    if all(isinstance(v, (bool, np.bool_)) for v in vals):
        return np.bool_
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        return np.int32
    return np.float32


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def traced_program(make_train, configs, varying, key):
    """init(vals, key) -> carry leaves and update(leaves, vals) -> (leaves, metrics) with the
    varying fields as traced scalars; ValueError naming a field that cannot be traced."""
    base = configs[0]

    def build(vals):
        return make_train(dataclasses.replace(base, **vals))

    def init(vals, key):
        return jax.tree.leaves(build(vals).init(key))

    def update(leaves, vals):
        t = build(vals)  # the carry's static parts (e.g. TrainState.tx) must be this trace's
        structure = jax.tree.structure(jax.eval_shape(t.init, key))
        carry, metrics = t.update(jax.tree.unflatten(structure, leaves))
        return jax.tree.leaves(carry), metrics

    def trace(names):
        vals = {n: jax.ShapeDtypeStruct((), _dtype(configs, n)) for n in names}
        jax.eval_shape(lambda v, k: update(init(v, k), v), vals, key)

    try:
        trace(varying)
    except Exception as err:  # noqa: BLE001 - find which field, if any, is to blame
        try:
            trace([])
        except Exception:  # noqa: BLE001 - not about the varying fields
            raise err from None
        for n in varying:
            try:
                trace([n])
            except Exception as e:  # noqa: BLE001
                raise ValueError(
                    f"configs differ in {n!r}, which cannot vary within one vmapped program: make_train needs its "
                    f"value concretely (a shape, a loop length or a Python branch); run configs that differ in "
                    f"{n!r} separately. ({_first_line(e)})") from e
        raise err
    return init, update


def run_many(make_train: Callable[[Any], Trainer], configs: Sequence[Any], opts: RunOptions = RunOptions(),
             seeds: Sequence[int] | None = None) -> RunResult:
    """Run every config of `configs` for every seed as ONE vmapped program over (config, seed).
    Config c with seed s uses the key of `run(make_train(configs[c]), opts)`'s seed s. Metrics are
    [chunks, configs, seeds]; the carry's leaves are [configs, seeds, ...] and its static parts
    (e.g. a TrainState's optimizer) are those of configs[0]."""
    init_distributed(opts)
    configs = list(configs)
    if not configs:
        raise ValueError("run_many needs at least one config")
    varying = varying_fields(configs)
    seeds = seed_list(opts, seeds)
    key = keys_for(opts.seed, seeds[:1])[0]
    trainers = check_static(make_train, configs, varying, key)
    t0 = trainers[0]
    abstract = jax.eval_shape(t0.init, key)
    init, update = traced_program(make_train, configs, varying, key)
    S, Cn = len(seeds), len(configs)
    values = {n: np.repeat(np.asarray([getattr(c, n) for c in configs], dtype=_dtype(configs, n)), S) for n in varying}
    keys = np.tile(np.asarray(keys_for(opts.seed, seeds)), (Cn, 1))
    shard = devices.shard(seed_mesh(opts.num_devices))
    cfg_dicts = [to_dict(c) for c in configs]
    hashes = [config_hash(c) for c in configs]
    ident = {"configs": cfg_dicts, "config_hashes": hashes, "num_chunks": t0.num_chunks,
             "carry_paths": [p for p, _, _ in describe(abstract)], "run": {"seed": opts.seed, "seeds": seeds, "num_configs": Cn}}
    config_json = {"algorithm": algorithm_name(configs[0]), "configs": cfg_dicts, "config_hashes": hashes,
                   "varying": varying}
    names = list(values)

    def init_group(k, *v):  # the config values ride in the carry, so each group keeps its own
        return jax.vmap(init)(dict(zip(names, v)), k), v

    def update_group(carry):
        leaves, v = carry
        leaves, metrics = jax.vmap(update)(leaves, dict(zip(names, v)))
        return (leaves, v), metrics

    ident["carry_paths"] += [f"<config value {n}>" for n in names]
    prog = Program(
        init=jax.jit(init_group, out_shardings=shard),
        update=jax.jit(update_group, out_shardings=shard, donate_argnums=0),
        inputs=(keys, *values.values()), num_chunks=t0.num_chunks, batch_shape=(Cn, S),
        labels=[(c, s) for c in range(Cn) for s in seeds], identity=ident, config_json=config_json,
        score=t0.score, progress=t0.progress)
    changed = [{f: cfg_dicts[c][f] for f in varying} for c in range(Cn)]
    prog.final_json = lambda m: final_summary(m, prog.labels, t0.score, t0.progress, t0.num_chunks, changed)
    carries, metrics, layout, log_dir = execute(prog, opts)
    leaves = [x.reshape((Cn, S) + x.shape[1:]) for x in gather(carries, layout)[0]]
    return RunResult(metrics, jax.tree.unflatten(jax.tree.structure(abstract), leaves), seeds=seeds,
                     configs=configs, log_dir=log_dir, score=t0.score)
