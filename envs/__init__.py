"""JAX environments and wrappers for jaxrl, all in the gymnax 1.0 functional interface."""
from envs.make import BRAX_ENVS, is_discrete, make, registered
from envs.spec import EnvSpec, spec, spec_of
from envs.wrappers import BraxToGymnax, EpisodeStats, GymnaxEnv, VecEnv, Wrapper, auto_reset_step

__all__ = ["make", "registered", "is_discrete", "spec", "spec_of", "EnvSpec", "BRAX_ENVS", "EpisodeStats",
           "BraxToGymnax", "GymnaxEnv", "VecEnv", "Wrapper", "auto_reset_step"]
