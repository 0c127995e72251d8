"""The contract of tests/algos/contract.py for the online learners (PPO, DQN, stream-x, SAC, TD3)."""
from tests.algos import contract
from tests.algos.contract import (  # noqa: F401  (collected in this file)
    test_bad_config_raises_before_compiling,
    test_cli_bad_config_is_one_line,
    test_resume_equals_uninterrupted,
    test_seed_results_do_not_depend_on_the_number_of_seeds,
    tiny_dataset,
)

GROUP = "online"
algo = contract.algo_fixture(GROUP)
