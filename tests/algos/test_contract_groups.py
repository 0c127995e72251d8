"""Every registered algorithm is checked by the contract: in exactly one of its groups."""
from jaxrl.algos import REGISTRY
from tests.algos.contract import GROUPS


def test_every_registered_algorithm_is_in_one_group():
    names = [n for g in GROUPS.values() for n in g]
    assert sorted(names) == sorted(REGISTRY), set(names) ^ set(REGISTRY)
