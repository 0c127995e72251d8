"""The registry of benchmark suites that `python -m benchmarks.run --suite NAME` runs.

A suite is a function `(scale, skip_peers) -> list[dict]`: one dict per result row, each with at
least "benchmark" and "status" ("ok", "unavailable", "failed", "passed", ...). `scale` is "ci"
(small: checks that the suite works) or "full" (the measurement).

To add a benchmark module to a suite:
1. give the module `def suite(scale: str, skip_peers: bool = False) -> list[dict]`
   (`skip_peers`: do not run peer libraries that need venvs or installs of their own);
2. add its module name to the suite's list in `MODULE_SUITES` below.
Modules are imported only when their suite runs; one that does not exist yet gives an
"unavailable" row instead of an error. A suite that is not made of modules registers a function
with `@register("name")`.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from typing import Callable

from benchmarks.common import REPO

MODULE_SUITES: dict[str, list[str]] = {
    "speed": ["benchmarks.ppo_speed"],
    "offpolicy": ["benchmarks.offpolicy_speed"],
    "scaling": ["benchmarks.device_scaling", "benchmarks.seed_blocks"],
    "stream-x": ["benchmarks.stream_speed", "benchmarks.stream_barrier"],
    "generative": ["benchmarks.rlcm_vs_ddpo"],
    "offline": ["benchmarks.offline"],
    "robust": ["benchmarks.robust"],
    "offline-robust": ["benchmarks.offline_robust"],
    "pixels": ["benchmarks.drm_pixels"],
}

SUITES: dict[str, Callable[..., list[dict]]] = {}


def register(name: str):
    """Decorator: register `fn(scale, skip_peers=False) -> list[dict]` as suite `name`."""
    def deco(fn):
        if name in SUITES:
            raise ValueError(f"suite {name!r} is registered twice")
        SUITES[name] = fn
        return fn
    return deco


def module_suite(modules: list[str]) -> Callable[..., list[dict]]:
    """A suite made of the `suite(scale, skip_peers)` functions of `modules`, imported lazily."""
    def run(scale: str, skip_peers: bool = False) -> list[dict]:
        rows = []
        for name in modules:
            try:
                mod = importlib.import_module(name)
            except ModuleNotFoundError as e:
                if e.name != name:  # the module exists but one of its imports is missing
                    raise
                rows.append({"benchmark": name.rsplit(".", 1)[-1], "status": "unavailable"})
                continue
            rows += [{**r, "status": r.get("status", "ok")} for r in mod.suite(scale, skip_peers=skip_peers)]
        return rows
    return run


for _name, _modules in MODULE_SUITES.items():
    register(_name)(module_suite(_modules))


@register("learning")
def learning(scale: str, skip_peers: bool = False) -> list[dict]:
    """The full forms of the learning tests (`pytest -m slow`, with JAXRL_FULL=1), one row per test.
    At ci scale they are only collected, which checks that they import."""
    env = {**os.environ, "JAXRL_FULL": "1"}
    cmd = [sys.executable, "-m", "pytest", "-m", "slow", "-p", "no:cacheprovider", "tests"]
    if scale == "ci":
        proc = subprocess.run(cmd + ["--collect-only", "-q"], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if proc.returncode not in (0, 5):  # 5: nothing collected
            return [{"benchmark": "learning", "status": "failed", "error": proc.stdout[-2000:]}]
        return [{"benchmark": "learning", "test": line.strip(), "status": "collected"}
                for line in proc.stdout.splitlines() if "::" in line]
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, "junit.xml")
        proc = subprocess.run(cmd + ["-q", f"--junitxml={xml}"], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if not os.path.exists(xml):
            return [{"benchmark": "learning", "status": "failed", "error": proc.stdout[-2000:]}]
        return junit_rows(xml)


def junit_rows(path: str) -> list[dict]:
    """One row per test case of a JUnit XML report: test id, passed/failed/error/skipped, seconds."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        status = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                status = {"failure": "failed"}.get(tag, tag)
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        rows.append({"benchmark": "learning", "test": test, "status": status,
                     "time_s": round(float(case.get("time", 0.0)), 1)})
    return rows
