"""The command line every algorithm file shares: flat flags for its Config and the RunOptions,
parsed by tyro; prints the config, runs with progress, ends with a table of final returns."""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from jaxrl.core.config import format_config
from jaxrl.core.run import RunOptions, RunResult, run


def parse(config_cls, argv: Sequence[str] | None = None, description: str | None = None):
    """Parse `argv` into (config, RunOptions) with tyro; flags are `--field-name`."""
    import tyro

    cfg_fields = {f.name for f in dataclasses.fields(config_cls)}
    run_fields = [f for f in dataclasses.fields(RunOptions)]
    clash = cfg_fields & {f.name for f in run_fields}
    if clash:
        raise ValueError(f"config fields clash with run options: {sorted(clash)}")
    combined = dataclasses.make_dataclass(
        config_cls.__name__,
        [(f.name, f.type, f) for f in dataclasses.fields(config_cls)]
        + [(f.name, f.type, f) for f in run_fields],
        frozen=True,
    )
    combined.__doc__ = description or config_cls.__doc__
    # the dynamic class needs the modules' globals to resolve string annotations
    import sys

    ns = {**vars(sys.modules[RunOptions.__module__]), **vars(sys.modules[config_cls.__module__])}
    combined.__module__ = config_cls.__module__
    args = tyro.cli(combined, args=argv, config=(tyro.conf.FlagConversionOff,), description=combined.__doc__)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(combined)}
    del ns
    cfg = config_cls(**{k: v for k, v in values.items() if k in cfg_fields})
    opts = RunOptions(**{k: v for k, v in values.items() if k not in cfg_fields})
    return cfg, opts


def final_table(result: RunResult, name: str = "return") -> str:
    final = result.final(name)
    lines = [f"{'seed':>6}  final {name}"] + [f"{s:>6}  {v:12.2f}" for s, v in enumerate(final)]
    lines.append(f"{'mean':>6}  {np.nanmean(final):12.2f}  (std {np.nanstd(final):.2f})")
    return "\n".join(lines)


def main(config_cls, make_train: Callable, argv: Sequence[str] | None = None) -> RunResult:
    cfg, opts = parse(config_cls, argv)
    print(format_config(cfg))
    print(format_config(opts))
    result = run(make_train(cfg), opts)
    print(final_table(result))
    return result
