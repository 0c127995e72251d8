import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_collection_modifyitems(config, items):
    """Full-length learning runs (`@pytest.mark.slow`) run only with JAXRL_FULL=1
    (`python -m benchmarks.run --suite learning --scale full` sets it); CI runs the short forms."""
    if os.environ.get("JAXRL_FULL") == "1":
        return
    skip = pytest.mark.skip(reason="full-length learning run; set JAXRL_FULL=1 (benchmarks.run --suite learning)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
