"""One file per algorithm. `REGISTRY` lists them with a tiny config (a few seconds on a CPU), which
`tests/algos/contract.py` runs to check what every algorithm promises: resume equals an
uninterrupted run, seed i's result does not depend on the number of seeds, the same seed gives
the same bits, a bad config raises before compiling, and the CLI turns it into one line. A new
algorithm gets these checks by adding a line here and its name to one of that file's GROUPS. An
offline algorithm's `dataset="tiny"` stands for a small Pendulum-v1 dataset the contract test
writes (random transitions: the contract is about bits, not learning)."""

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
    "td3_bc": dict(dataset="tiny", total_updates=64, batch_size=32, hidden=(16, 16), eval_episodes=1, num_chunks=4),
    "iql": dict(dataset="tiny", total_updates=64, online_steps=64, batch_size=32, hidden=(16, 16), eval_episodes=1,
                num_chunks=4),  # with online fine-tuning: its carry holds the env and the online buffer
    "cql": dict(dataset="tiny", total_updates=64, batch_size=32, hidden=(16, 16), eval_episodes=1, num_chunks=4),
    "riql": dict(dataset="tiny", total_updates=64, batch_size=32, hidden=(16, 16), num_critics=3, eval_episodes=1,
                 num_chunks=4),
    "a2pr": dict(dataset="tiny", total_updates=64, batch_size=32, actor_hidden=(16, 16), critic_hidden=(16, 16),
                 vae_hidden=(16, 16), eval_episodes=1, num_chunks=4),
    "ro2o": dict(dataset="tiny", offline_updates=64, online_steps=64, learning_starts=16, buffer_size=128,
                 batch_size=32, hidden=(16, 16), num_critics=2, num_perturb=2, eval_episodes=1, num_chunks=4),
    "rlcm": dict(total_samples=128, samples_per_iter=32, num_minibatches=2, num_inference_steps=2, num_chunks=4),
    "ddpo": dict(total_samples=128, samples_per_iter=32, num_minibatches=2, num_inference_steps=4, num_chunks=4),
    "rarl": dict(total_timesteps=2048, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1, hidden=(8,),
                 num_chunks=4),
    "qarl": dict(total_timesteps=2048, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1, hidden=(8,),
                 spdl_candidates=8, num_chunks=4),
    "policy_smoothing": dict(total_timesteps=1024, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1,
                             hidden=(8,), cert_episodes=2, num_chunks=4),
    "iwocs": dict(num_chunks=4, steps_per_problem=256, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1,
                  hidden=(8,), search_population=4, search_generations=2, search_episodes=1, rho_candidates=2),
    "drqv2": dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, buffer_size=500, batch_size=16,
                  feature_dim=8, hidden=(16,), n_step=2, eval_episodes=1, num_chunks=4),
    "drm": dict(env="Pendulum-v1", total_timesteps=400, learning_starts=100, buffer_size=500, batch_size=16,
                feature_dim=8, hidden=(16,), n_step=2, eval_episodes=1, num_chunks=4, perturb_interval=200),
}
