"""One file per algorithm. `REGISTRY` lists them with a tiny config (a few seconds on a CPU), which
`tests/algos/test_contract.py` runs to check what every algorithm promises: resume equals an
uninterrupted run, seed i's result does not depend on the number of seeds, the same seed gives
the same bits, a bad config raises before compiling, and the CLI turns it into one line. A new
algorithm gets these checks by adding a line here."""

REGISTRY: dict[str, dict] = {
    "ppo": dict(total_timesteps=4096, num_steps=64, num_chunks=4),
    "dqn": dict(total_timesteps=2000, learning_starts=500, buffer_size=1000, num_chunks=4),
    "stream_ac": dict(total_timesteps=800, num_chunks=4),
    "stream_q": dict(total_timesteps=800, num_chunks=4),
    "stream_td": dict(total_timesteps=800, num_chunks=4),
    "sac": dict(total_timesteps=800, learning_starts=200, buffer_size=1000, batch_size=32, hidden=(16, 16),
                eval_episodes=1, num_chunks=4),
    "td3": dict(total_timesteps=800, learning_starts=200, buffer_size=1000, batch_size=32, hidden=(16, 16),
                eval_episodes=1, num_chunks=4),
    "drqv2": dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, buffer_size=500, batch_size=16,
                  feature_dim=8, hidden=(16,), n_step=2, eval_episodes=1, num_chunks=4),
    "drm": dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, buffer_size=500, batch_size=16,
                feature_dim=8, hidden=(16,), n_step=2, eval_episodes=1, num_chunks=4, perturb_interval=200),
}
