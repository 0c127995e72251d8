"""scikit-learn's 8x8 handwritten digits (1,797 images, UCI; shipped inside the package, so
nothing is downloaded), as float32 images in [-1, 1] with integer labels 0..9."""
from __future__ import annotations

import numpy as np

IMAGE_SHAPE = (8, 8)
MAX_INK = 16.0  # the data set's pixel values are integers 0..16


def load_digits(split: str = "all", test_fraction: float = 0.2, seed: int = 0):
    """(images [N, 8, 8] float32 in [-1, 1], labels [N] int32).

    `split`: "all", "train" or "test"; train/test is one fixed permutation (from `seed`) cut at
    `test_fraction`, so the two never overlap."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # pragma: no cover - declared in the `generative` extra
        raise ImportError("the digits data set needs scikit-learn: pip install 'jaxrl[generative]'") from e
    d = _load()
    images = (d.images / MAX_INK * 2.0 - 1.0).astype(np.float32)
    labels = d.target.astype(np.int32)
    if split == "all":
        return images, labels
    perm = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    idx = perm[:n_test] if split == "test" else perm[n_test:]
    return images[idx], labels[idx]


def to_uint8(images) -> np.ndarray:
    """Images in [-1, 1] (clipped) as uint8 grey levels 0..255, black background."""
    x = np.clip(np.asarray(images, dtype=np.float32), -1.0, 1.0)
    return np.round((x + 1.0) * 127.5).astype(np.uint8)
