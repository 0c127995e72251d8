import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")


# The longest test files (about 2-6 minutes each on a 2-core CPU), longest first. pytest-xdist keeps
# a file on one worker (`--dist loadfile`) and, with `--no-loadscope-reorder`, hands files out in
# collection order: starting the long ones first lets the two workers finish together instead of
# one of them running a long file alone at the end.
LONGEST_FIRST = [
    "tests/test_notebooks.py", "tests/algos/test_sac.py", "tests/algos/test_drm.py", "tests/algos/test_stream_x.py",
    "tests/algos/test_contract_offline.py", "tests/algos/test_contract_pixels_generative.py",
    "tests/algos/test_contract_online.py", "tests/algos/test_contract_robust.py",
    "tests/benchmarks/test_offline_benchmark.py", "tests/algos/test_ppo.py", "tests/core/test_run.py",
    "tests/algos/test_td3.py", "tests/algos/test_dqn.py", "tests/algos/test_ro2o.py", "tests/core/test_cli.py",
    "tests/algos/test_iql.py",
]


def _file_rank(item) -> int:
    path = item.nodeid.split("::")[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    """Long files first (see LONGEST_FIRST; a stable sort keeps every file's own order). Full-length
    learning runs (`@pytest.mark.slow`) run only with JAXRL_FULL=1 (`python -m benchmarks.run
    --suite learning --scale full` sets it); CI runs the short forms."""
    items.sort(key=_file_rank)
    if os.environ.get("JAXRL_FULL") == "1":
        return
    skip = pytest.mark.skip(reason="full-length learning run; set JAXRL_FULL=1 (benchmarks.run --suite learning)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
