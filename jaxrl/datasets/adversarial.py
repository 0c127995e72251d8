"""The Q-ensemble agent behind RIQL's adversarial corruption (`envs.datasets.corrupt`).

RIQL's code attacks with a pretrained EDAC agent (10 critics) trained on the clean dataset. Here the
agent is our RO2O run offline only (SAC-N with 10 critics plus its smoothness terms, which EDAC's
diversity term resembles in purpose); `attacker(dataset)` trains it and returns the two functions
`corrupt` takes, both on raw (dataset-scale) observations and actions:

    q_fn(obs, action) -> [batch]   the mean over the ensemble of Q_i(s, a)
    policy_fn(obs) -> action        the agent's deterministic action, in the env's bounds

    q_fn, policy_fn = attacker(ds)
    bad = corrupt(ds, "observations", "adversarial", rate=0.3, scale=1.0, q_fn=q_fn, policy_fn=policy_fn)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.algos import ro2o
from jaxrl.core import offline
from jaxrl.core.nets import QEnsemble
from jaxrl.core.run import RunOptions, run

DEFAULT = dict(offline_updates=100_000, online_steps=0, num_critics=10, num_chunks=1, eval_episodes=0)


def attacker(dataset, seed: int = 0, **overrides):
    """Train the attacking agent on `dataset` (RO2O offline; `overrides` change its Config) and return
    (q_fn, policy_fn) on raw values."""
    cfg = ro2o.Config(**(DEFAULT | overrides))
    ds, spec = offline.resolve_dataset(cfg, dataset)
    result = run(ro2o.make_train(cfg, ds), RunOptions(num_seeds=1, progress=False), seeds=[seed])
    carry = jax.tree.map(lambda x: x[0], result.carry)
    data = offline.device_data(ds, spec, normalize_obs=True)
    critic = QEnsemble(tuple(cfg.hidden), cfg.num_critics, "relu")
    actor = ro2o.Actor(spec.action_dim, tuple(cfg.hidden))
    low, high = jnp.asarray(spec.low()), jnp.asarray(spec.high())

    def q_fn(obs, action):
        a = 2.0 * (action - low) / (high - low) - 1.0
        return critic.apply(carry.critic.params, (obs - data.obs_mean) / data.obs_std, a).mean(0)

    def policy_fn(obs):
        return offline.env_action(spec, jnp.tanh(actor.apply(carry.actor.params, (obs - data.obs_mean) / data.obs_std)[0]))

    return q_fn, policy_fn


__all__ = ["attacker", "DEFAULT"]
