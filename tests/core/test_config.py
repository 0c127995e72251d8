"""Config checks (jaxrl.core.config) name the bad field."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core import config as C
from jaxrl.core.buffer import buffer_add, buffer_init, buffer_sample
from jaxrl.core.normalize import (
    reward_scale, reward_scaler_init, rms_init, rms_normalize, rms_update, rms_update_batch, rms_var,
)
from jaxrl.core.returns import gae, lambda_returns, nstep_returns

f32 = lambda x: jnp.asarray(x, jnp.float32)


# ---------------------------------------------------------------- config checks
def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="lr must be > 0, got -1"):
        C.check_positive("lr", -1)
    with pytest.raises(ValueError, match=r"lam must be in \[0, 1\], got 1.5"):
        C.check_range("lam", 1.5, 0, 1)
    with pytest.raises(ValueError, match=r"allowed values: \[1, 2, 3, 6\]"):
        C.check_divides("num_minibatches", 4, "batch", 6)
    with pytest.raises(ValueError, match="must be one of"):
        C.check_choice("opt", "sgdd", ["sgd", "adam"])
    # traced values pass through (they were validated before tracing)
    jax.jit(lambda x: C.check_positive("lr", x) or x)(-1.0)
