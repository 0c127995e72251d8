"""Robust RL envs: uncertainty sets over dynamics parameters, a zero-sum adversary, observation noise."""
from envs.robust.adversary import Adversarial, ObservationNoise
from envs.robust.sets import (
    SETS, BraxDynamics, BraxDynamicsParams, UncertaintySet, make_robust, parameters, reference_set,
)

__all__ = ["UncertaintySet", "make_robust", "parameters", "reference_set", "SETS", "BraxDynamics",
           "BraxDynamicsParams", "Adversarial", "ObservationNoise"]
