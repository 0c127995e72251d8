"""The adversarial attacker: a tiny Q-ensemble agent trained on the small generated Pendulum data
gives q_fn/policy_fn on raw values, and RIQL's adversarial corruption with it lowers that agent's
Q on exactly the corrupted rows."""
import jax.numpy as jnp
import numpy as np

from envs.datasets.corrupt import corrupt
from jaxrl.datasets.adversarial import attacker
from tests.offline_data import pendulum


def test_adversarial_corruption_lowers_the_attackers_q():
    _, data = pendulum()
    ds = data["medium-replay"]
    q_fn, policy_fn = attacker(ds, offline_updates=300, num_critics=2, hidden=(32,), num_perturb=2, batch_size=64)
    a = policy_fn(jnp.asarray(ds.observations[:5], jnp.float32))
    assert a.shape == (5, 1) and bool(jnp.all(jnp.abs(a) <= 2.0))  # Pendulum's torque bounds
    bad = corrupt(ds, "observations", "adversarial", rate=0.3, scale=1.0, seed=0, q_fn=q_fn, policy_fn=policy_fn)
    idx = bad.extra_metadata["corruption/indices"]
    act = jnp.asarray(ds.actions[idx], jnp.float32)
    q_clean = np.asarray(q_fn(jnp.asarray(ds.observations[idx], jnp.float32), act))
    q_bad = np.asarray(q_fn(jnp.asarray(bad.observations[idx], jnp.float32), act))
    assert len(idx) == round(0.3 * len(ds))
    assert (q_bad < q_clean).mean() > 0.9 and q_bad.mean() < q_clean.mean()
