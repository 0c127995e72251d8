"""Config checks (jaxrl.core.config) name the bad field."""
import jax
import jax.numpy as jnp
import pytest

from jaxrl.core import config as C

f32 = lambda x: jnp.asarray(x, jnp.float32)


# ---------------------------------------------------------------- config checks
def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="lr must be > 0, got -1"):
        C.check_positive("lr", -1)
    with pytest.raises(ValueError, match=r"trace_lambda must be in \[0, 1\], got 1.5"):
        C.check_range("trace_lambda", 1.5, 0, 1)
    with pytest.raises(ValueError, match=r"allowed values: \[1, 2, 3, 6\]"):
        C.check_divides("num_minibatches", 4, "batch", 6)
    with pytest.raises(ValueError, match="must be one of"):
        C.check_choice("opt", "sgdd", ["sgd", "adam"])
    # traced values pass through (they were validated before tracing)
    jax.jit(lambda x: C.check_positive("lr", x) or x)(-1.0)
