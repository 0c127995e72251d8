"""Rewards of the digit generator, all in one place, chosen by name with `make_reward`.

Each reward is `reward(images, prompts) -> [N] float32` for images [N, 8, 8] in [-1, 1] and
prompts [N] (digit classes), jittable and vmappable.

- `compressibility` / `incompressibility`: minus / plus the size in bytes of the image saved as
  an 8-bit greyscale PNG by Pillow (zlib level 6) -- a real compressed size, as DDPO and RLCM use
  JPEG sizes. It runs on the host through `jax.pure_callback` (vmap-safe: the callback takes any
  batch shape). A blank image is 69 bytes; real digits 105..132; uniform noise about 140.
- `compressibility_proxy` / `incompressibility_proxy`: a jittable stand-in for the PNG size, for
  accelerators where a host round-trip per batch is costly: the fraction of pixels whose 8-bit
  grey level differs from its left neighbour's (the non-zero bytes that PNG's "Sub" filter leaves
  for zlib to code). It is a proxy, not a size: its Spearman rank correlation with the PNG size
  was 0.50 on real digits and 0.88 on a mix of real, noisy and faded digits (measured; checked
  in tests/envs/test_generative.py).
- `aesthetic`: a learned scorer standing in for human preference (DDPO and RLCM use the LAION
  aesthetic predictor). Its labels come from a simulated rater, `rater_utility` below, who prefers
  bold strokes that stay clear of the border; jaxrl.models.generative fits a small network to
  that rater's pairwise choices (Bradley-Terry), and the fitted network, not the rater, is the reward.
- `prompt_alignment`: the probability a trained digit classifier gives to the asked digit.

The learned rewards take their networks as functions: `classifier(images) -> logits [N, 10]`
and `aesthetic(images) -> scores [N]`.
"""
from __future__ import annotations

import io
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from envs.generative.data import to_uint8

REWARDS = ("compressibility", "incompressibility", "compressibility_proxy", "incompressibility_proxy",
           "aesthetic", "prompt_alignment")
NEEDS = {"aesthetic": "aesthetic", "prompt_alignment": "classifier"}
PNG_COMPRESS_LEVEL = 6


def png_bytes_np(images) -> np.ndarray:
    """Sizes in bytes (float32, shape images.shape[:-2]) of each image saved as a greyscale PNG."""
    from PIL import Image

    pixels = to_uint8(images)
    flat = pixels.reshape((-1,) + pixels.shape[-2:])
    sizes = np.empty(len(flat), np.float32)
    for i, img in enumerate(flat):
        buf = io.BytesIO()
        Image.fromarray(img, mode="L").save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        sizes[i] = buf.tell()
    return sizes.reshape(pixels.shape[:-2])


def png_bytes(images) -> jax.Array:
    """`png_bytes_np` from inside jit/vmap, through a host callback."""
    images = jnp.asarray(images, jnp.float32)
    out = jax.ShapeDtypeStruct(images.shape[:-2], jnp.float32)
    return jax.pure_callback(png_bytes_np, out, images, vmap_method="expand_dims")


def compression_proxy(images) -> jax.Array:
    """Fraction of pixels whose 8-bit grey level differs from the pixel to its left (the first
    column from 0, as PNG's Sub filter does): a jittable stand-in that grows with the PNG size."""
    g = jnp.round((jnp.clip(images, -1.0, 1.0) + 1.0) * 127.5)
    padded = jnp.concatenate([jnp.zeros_like(g[..., :1]), g], axis=-1)
    return (jnp.diff(padded, axis=-1) != 0).mean((-2, -1)).astype(jnp.float32)


def rater_utility(images) -> jax.Array:
    """The simulated rater's hidden taste, in [-1, 1]: mean ink of the central 4x4 pixels minus
    mean ink of the outer ring of pixels (ink = (x + 1) / 2). Used only to label preference pairs
    for the learned `aesthetic` scorer; never as a reward itself."""
    ink = (jnp.clip(images, -1.0, 1.0) + 1.0) / 2.0
    centre = ink[..., 2:6, 2:6].mean((-2, -1))
    ring = (ink.sum((-2, -1)) - ink[..., 1:7, 1:7].sum((-2, -1))) / 28.0
    return centre - ring


def prompt_alignment(logits, prompts) -> jax.Array:
    """p(asked digit | image) under the classifier's logits."""
    probs = jax.nn.softmax(logits, axis=-1)
    return jnp.take_along_axis(probs, jnp.asarray(prompts, jnp.int32)[..., None], axis=-1)[..., 0]


def check_reward(name: str) -> str:
    if name not in REWARDS:
        raise ValueError(f"reward must be one of {list(REWARDS)}, got {name!r}")
    return name


def make_reward(name: str, *, classifier: Callable | None = None, aesthetic: Callable | None = None) -> Callable:
    """`reward(images, prompts) -> [N]` for reward `name` (see REWARDS); ValueError for an unknown
    name, or a learned reward whose network is not given. Images are clipped to [-1, 1] first
    (what a saved image can hold), so no reward can be raised by leaving the pixel range."""
    check_reward(name)
    models = {"classifier": classifier, "aesthetic": aesthetic}
    if name in NEEDS and models[NEEDS[name]] is None:
        raise ValueError(f"reward {name!r} needs the {NEEDS[name]} network (pass {NEEDS[name]}=...)")
    fn = _reward_fn(name, classifier, aesthetic)
    return lambda images, prompts: fn(jnp.clip(images, -1.0, 1.0), prompts)


def _reward_fn(name, classifier, aesthetic):
    if name == "compressibility":
        return lambda images, prompts: -png_bytes(images)
    if name == "incompressibility":
        return lambda images, prompts: png_bytes(images)
    if name == "compressibility_proxy":
        return lambda images, prompts: -compression_proxy(images)
    if name == "incompressibility_proxy":
        return lambda images, prompts: compression_proxy(images)
    if name == "aesthetic":
        return lambda images, prompts: aesthetic(images)
    return lambda images, prompts: prompt_alignment(classifier(images), prompts)
