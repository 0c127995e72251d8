"""RIQL's corruption model: exactly the asked fraction of transitions changes, in exactly the asked
field and nowhere else; the sizes match the paper's definitions; the adversarial search lowers a
hand-built Q; metadata records the corruption (and survives a file round trip); vmapping over rates
and seeds is one program; bad input is a ValueError naming the value."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.datasets import Dataset, load, save
from envs.datasets.corrupt import ARRAY_OF, FIELDS, corrupt, corrupt_arrays

N = 200


def small():
    rng = np.random.default_rng(0)
    return Dataset(observations=rng.normal(size=(N, 3)), actions=rng.uniform(-1, 1, (N, 2)),
                   rewards=rng.normal(size=N), terminals=np.zeros(N, bool), timeouts=np.arange(N) % 50 == 49,
                   next_observations=rng.normal(size=(N, 3)), env="Pendulum-v1", source="test")


def changed_rows(a, b):
    d = np.asarray(a) != np.asarray(b)
    return np.flatnonzero(d.reshape(len(d), -1).any(1))


def q_hand(obs, action):  # Q(s, a) = sum(s) + 2 sum(a): its minimiser in a box is the lower corner
    return obs.sum(-1) + 2.0 * action.sum(-1)


@pytest.mark.parametrize("field, mode, rate", [(f, m, 0.3) for f in FIELDS for m in ("random", "adversarial")]
                         + [("observations", "random", 0.0), ("dynamics", "adversarial", 1.0)])
def test_exact_fraction_in_exact_field(field, mode, rate):
    ds = small()
    out = corrupt(ds, field, mode, rate=rate, scale=1.0, seed=1, q_fn=q_hand, policy_fn=lambda s: s[:, :2] * 0.0,
                  attack_steps=5)
    name = ARRAY_OF[field]
    idx = out.extra_metadata["corruption/indices"]
    assert len(idx) == round(rate * N)
    np.testing.assert_array_equal(changed_rows(getattr(out, name), getattr(ds, name)), idx)
    for other, x in ds.arrays.items():  # every other key bit for bit
        if other != name:
            np.testing.assert_array_equal(getattr(out, other), x)
    assert out.extra_metadata["corruption/field"] == field and out.extra_metadata["corruption/mode"] == mode
    assert float(out.extra_metadata["corruption/rate"]) == rate and int(out.extra_metadata["corruption/seed"]) == 1


def test_random_sizes_follow_the_paper():
    ds = small()
    eps = 0.5
    obs = corrupt(ds, "observations", "random", rate=1.0, scale=eps, seed=0)
    lam = (obs.observations - ds.observations) / ds.observations.std(0)
    assert np.abs(lam).max() <= eps + 1e-5 and np.abs(lam).max() > 0.8 * eps  # U[-eps, eps] * std
    rew = corrupt(ds, "rewards", "random", rate=1.0, scale=eps, seed=0)
    assert np.abs(rew.rewards).max() <= 30 * eps and np.abs(rew.rewards).max() > 20 * eps  # U(-30 eps, 30 eps)
    adv = corrupt(ds, "rewards", "adversarial", rate=1.0, scale=eps, seed=0)
    np.testing.assert_allclose(adv.rewards, -eps * ds.rewards, rtol=1e-6)  # r <- -eps r


def test_adversarial_search_finds_the_hand_minimiser():
    """With Q = sum(s) + 2 sum(a), 200 sign steps of 0.01 eps from U[-eps, eps] reach p = -eps exactly
    (2 eps is the longest way); 100 steps (the paper's) lower Q on every row."""
    ds = small()
    out = corrupt(ds, "actions", "adversarial", rate=1.0, scale=1.0, seed=0, q_fn=q_hand, attack_steps=200)
    np.testing.assert_allclose(out.actions, ds.actions - ds.actions.std(0), rtol=1e-5, atol=1e-5)
    dyn = corrupt(ds, "dynamics", "adversarial", rate=1.0, scale=0.5, seed=0, q_fn=q_hand,
                  policy_fn=lambda s: jnp.zeros(s.shape[:-1] + (2,)), attack_steps=200)
    np.testing.assert_allclose(dyn.next_observations, ds.next_observations - 0.5 * ds.next_observations.std(0),
                               rtol=1e-5, atol=1e-5)
    obs = corrupt(ds, "observations", "adversarial", rate=1.0, scale=1.0, seed=0, q_fn=q_hand)
    assert (obs.observations.sum(1) < ds.observations.sum(1)).all()


def test_action_bounds_clip():
    ds = small()
    out = corrupt(ds, "actions", "random", rate=1.0, scale=5.0, seed=0, action_bounds=(-1.0, 1.0))
    assert np.abs(out.actions).max() <= 1.0


def test_vmaps_over_rates_and_seeds_in_one_program():
    ds = small()
    arrays = {k: jnp.asarray(v, jnp.float32) for k, v in ds.arrays.items() if k not in ("terminals", "timeouts")}
    rates = jnp.array([0.1, 0.25, 0.5])
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    f = jax.jit(jax.vmap(jax.vmap(lambda k, r: corrupt_arrays(k, arrays, "rewards", "random", r, 1.0), (0, None)),
                         (None, 0)))
    new, mask = f(keys, rates)
    assert mask.shape == (3, 2, N)
    assert mask.sum(-1).tolist() == [[20, 20], [50, 50], [100, 100]]
    assert not np.array_equal(mask[0, 0], mask[0, 1])  # seeds pick different rows


def test_metadata_survives_a_file_round_trip(tmp_path):
    out = corrupt(small(), "observations", "random", rate=0.3, seed=7)
    back = load(save(out, str(tmp_path / "c.npz")))
    np.testing.assert_array_equal(back.extra_metadata["corruption/indices"], out.extra_metadata["corruption/indices"])
    assert str(back.extra_metadata["corruption/field"]) == "observations"


@pytest.mark.parametrize("kw, message", [
    (dict(field="obs"), "corruption field must be one of"), (dict(mode="worst"), "corruption mode must be one of"),
    (dict(rate=1.5), "corruption rate must be in \\[0, 1\\], got 1.5"), (dict(rate=-0.1), "got -0.1"),
    (dict(scale=-1.0), "corruption scale must be finite and >= 0"),
])
def test_bad_input(kw, message):
    args = dict(field="rewards", mode="random", rate=0.3, scale=1.0) | kw
    with pytest.raises(ValueError, match=message):
        corrupt(small(), **args)


def test_adversarial_without_q_is_an_error():
    with pytest.raises(ValueError, match="needs q_fn"):
        corrupt(small(), "observations", "adversarial")
