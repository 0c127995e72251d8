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


def test_check_sac_learner_names_the_bad_field():
    from types import SimpleNamespace

    ok = dict(env="Pendulum-v1", batch_size=16, buffer_size=64, actor_lr=1e-3, critic_lr=1e-3, tau=0.005,
              learning_starts=10, total=100)
    C.check_sac_learner(SimpleNamespace(**ok), "algo", "total")
    for bad, match in ((dict(batch_size=128), "batch_size=128 must be <= buffer_size=64"),
                       (dict(tau=0.0), "tau"), (dict(actor_lr=-1.0), "actor_lr"),
                       (dict(learning_starts=100), r"learning_starts=100 must be in \[0, total=100\)"),
                       (dict(env="CartPole-v1"), "algo with learner='sac' needs continuous actions")):
        with pytest.raises(ValueError, match=match):
            C.check_sac_learner(SimpleNamespace(**{**ok, **bad}), "algo", "total")
