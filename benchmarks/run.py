"""Run registered benchmark suites and write `benchmarks/results/<date>-<device>.md` and `.json`.

    python -m benchmarks.run                                  # every suite, ci scale
    python -m benchmarks.run --suite speed stream-x --scale full
    python -m benchmarks.run --suite speed --scale ci --skip-peers   # jaxrl only, no peer venvs

Suites live in `benchmarks.suites`. A file of the same date and device gets the suites that ran
replaced and keeps the others, so suites can be run one at a time. Exits 1 if a suite failed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time

from benchmarks.common import RESULTS, device_slug, dir_arg, machine
from benchmarks.suites import SUITES

OK = {"ok", "passed", "collected", "skipped"}


def suite_status(rows: list[dict]) -> str:
    states = {r.get("status", "ok") for r in rows}
    if not rows or states == {"unavailable"}:
        return "unavailable"
    return "ok" if states <= OK | {"unavailable"} else "failed"


def run_suites(names: list[str], scale: str, skip_peers: bool) -> dict[str, dict]:
    results = {}
    for name in names:
        print(f"[benchmarks] {name} ({scale}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            rows = SUITES[name](scale, skip_peers=skip_peers)
        except Exception as e:  # one broken suite must not lose the others' results
            rows = [{"benchmark": name, "status": "failed", "error": f"{type(e).__name__}: {e}"}]
        results[name] = {"scale": scale, "status": suite_status(rows),
                         "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    return results


def _cell(v) -> str:
    if isinstance(v, (list, tuple)):
        v = ", ".join(map(str, v))
    return " ".join(str(v).split()).replace("|", "\\|")[:200]


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Benchmarks {report['date']} on {m['device_kind']} ({m['platform']})", "",
             f"CPU {m['cpu']} x {m['cores']}, {m['device_count']} device(s), jax {m['jax']}, "
             f"jaxlib {m['jaxlib']}, python {m['python']}."]
    for name, s in report["suites"].items():
        lines += ["", f"## {name} ({s['scale']} scale): {s['status']}, {s['seconds']} s", ""]
        cols = list(dict.fromkeys(k for r in s["rows"] for k in r))
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in s["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Run jaxrl's benchmark suites.")
    p.add_argument("--suite", nargs="+", default=None, choices=sorted(SUITES),
                   help="suites to run (default: all)")
    p.add_argument("--scale", choices=("ci", "full"), default="ci")
    p.add_argument("--skip-peers", "--skip-rejax", dest="skip_peers", action="store_true",
                   help="time jaxrl only: no peer libraries (rejax, official stream-x scripts)")
    p.add_argument("--out-dir", type=dir_arg, default=RESULTS)
    args = p.parse_args(argv)

    results = run_suites(args.suite or sorted(SUITES), args.scale, args.skip_peers)
    date = datetime.date.today().isoformat()
    stem = args.out_dir / f"{date}-{device_slug()}"
    json_path = stem.with_suffix(".json")
    suites = json.loads(json_path.read_text())["suites"] if json_path.exists() else {}
    suites.update(results)
    report = {"date": date, "machine": machine(), "suites": suites}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md = to_markdown(report)
    stem.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {stem}.md and .json", file=sys.stderr)
    return 1 if any(s["status"] == "failed" for s in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
