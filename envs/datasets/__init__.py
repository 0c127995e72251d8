"""Offline datasets in D4RL's layout: the in-memory type, validation, IO (npz, D4RL HDF5, Minari)
and D4RL's reference scores. Usable without jaxrl (generation with our agents is
`jaxrl.datasets.generate`)."""
from envs.datasets.dataset import KEYS, Dataset, DatasetError, check_layout, concatenate
from envs.datasets.io import load, minari_path, read_hdf5, read_minari, read_npz, save, write_hdf5, write_minari, write_npz
from envs.datasets.reference import BRAX_EQUIVALENT, D4RL_REFERENCE, d4rl_name_parts, normalized_score, reference_scores

__all__ = ["KEYS", "Dataset", "DatasetError", "check_layout", "concatenate", "load", "save", "read_npz", "write_npz",
           "read_hdf5", "write_hdf5", "read_minari", "write_minari", "minari_path", "BRAX_EQUIVALENT",
           "D4RL_REFERENCE", "d4rl_name_parts", "normalized_score", "reference_scores"]
