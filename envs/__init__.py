"""JAX environments and wrappers for jaxrl, all in the gymnax 1.0 functional interface."""
from envs.make import BRAX_ENVS, is_discrete, make, registered
from envs.wrappers import BraxToGymnax, EpisodeStats, Wrapper

__all__ = ["make", "registered", "is_discrete", "BRAX_ENVS", "EpisodeStats", "BraxToGymnax", "Wrapper"]
