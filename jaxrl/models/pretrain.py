"""Train, cache and load the "pretrained" models of RLCM and DDPO: our own, reproducible from a seed.

One `Recipe` (a seed and the training sizes) makes four networks, each trained by the code below:

1. the diffusion model: a `Denoiser` trained with the DDPM loss E||eps - eps_hat(x_tau, tau, c)||^2,
   tau ~ U{0..999} (Ho et al. 2020), on scikit-learn's 8x8 digits;
2. the consistency model: latent-consistency distillation (LCM, Luo et al. 2023, Alg. 1 without
   guidance) of (1): for tau_{n+k} on LCM's 50-step grid (k = 20 timesteps), the teacher's DDIM
   (eta = 0) step gives x_{tau_n}, and the student minimises ||f(x_{tau_{n+k}}, tau_{n+k}) -
   f^-(x_{tau_n}, tau_n)||^2 against an EMA copy f^- (decay 0.95); the student starts from the teacher;
3. the digit classifier (prompt-alignment reward, and the judge of the tests), trained on the
   train split with light noise augmentation; its accuracy on the held-out split is recorded;
4. the "aesthetic" scorer, fitted by a Bradley-Terry loss to pairwise choices of the simulated
   rater `envs.generative.rewards.rater_utility` between real and perturbed digits.

Each network is saved as Flax msgpack bytes under `$JAXRL_CACHE/generative/<recipe hash>/`
(default `~/.cache/jaxrl`), with a manifest of the recipe, per-file SHA-256 and a few quality
numbers. The pretrained set is named by its content hash (the first 16 hex digits of the SHA-256
of the four files' hashes): a run stores that hash in its config, and `load_by_hash` finds and
verifies those exact weights. The same recipe on the same machine gives the same bytes (XLA's CPU
programs are deterministic), so a lost cache rebuilds the same weights.

Run: `python -m jaxrl.models.pretrain --seed 0` (prints the hash and the quality numbers).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from envs.generative import denoising as D
from envs.generative.data import load_digits
from envs.generative.prompts import NUM_CLASSES
from envs.generative.rewards import rater_utility
from jaxrl.core import config as C
from jaxrl.models.generative import Classifier, Denoiser, Scorer

NETWORKS = ("diffusion", "consistency", "classifier", "aesthetic")
CACHE_ENV = "JAXRL_CACHE"


@dataclass(frozen=True)
class Recipe:
    """How the pretrained networks are made; its hash names the cache folder."""

    seed: int = 0
    """seed of every initialisation, batch and noise draw"""
    hidden: int = 128
    """width of the Denoiser's residual MLP"""
    depth: int = 2
    """residual blocks of the Denoiser"""
    batch_size: int = 128
    """images per gradient step (all four networks)"""
    diffusion_steps: int = 2000
    """gradient steps of the DDPM loss"""
    diffusion_lr: float = 2e-3
    """Adam learning rate of the diffusion model (cosine decay to 0)"""
    distill_steps: int = 1000
    """gradient steps of consistency distillation"""
    distill_lr: float = 5e-4
    """Adam learning rate of consistency distillation (cosine decay to 0)"""
    distill_ema: float = 0.95
    """EMA decay of the distillation target f^- (LCM's)"""
    classifier_steps: int = 500
    """gradient steps of the classifier"""
    scorer_steps: int = 500
    """gradient steps of the aesthetic scorer"""
    rater_temperature: float = 0.05
    """the simulated rater prefers image a over b with probability sigmoid((u_a - u_b) / temperature)"""

    def __post_init__(self):
        for name in ("hidden", "depth", "batch_size", "diffusion_steps", "distill_steps",
                     "classifier_steps", "scorer_steps", "diffusion_lr", "distill_lr", "rater_temperature"):
            C.check_positive(name, getattr(self, name))
        C.check_range("distill_ema", self.distill_ema, 0.0, 1.0, hi_open=True)

    @property
    def hash(self) -> str:
        return C.config_hash(self)


class Pretrained(NamedTuple):
    """Parameters of the four networks, the recipe that made them and their content hash."""

    recipe: Recipe
    diffusion: Any
    consistency: Any
    classifier: Any
    aesthetic: Any
    hash: str
    info: dict

    def denoiser(self) -> Denoiser:
        return Denoiser(self.recipe.hidden, self.recipe.depth)

    def classifier_logits(self, images):
        return Classifier().apply(self.classifier, images)

    def aesthetic_score(self, images):
        return Scorer().apply(self.aesthetic, images)


def cache_root() -> Path:
    """`$JAXRL_CACHE/generative`, default `~/.cache/jaxrl/generative`."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "jaxrl")
    return Path(base) / "generative"


# ------------------------------------------------------------------------------------------ training


def _adam(lr: float, steps: int):
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(lr, steps)))


def _fit(loss_fn, params, key, steps: int, lr: float, data: tuple, batch_size: int, extra=None, after_step=None):
    """`steps` Adam steps on minibatches of `data` drawn with replacement, as one `lax.scan`.
    `loss_fn(params, batch, key, extra) -> scalar`; `after_step(params, extra) -> extra` (e.g. EMA)."""
    tx = _adam(lr, steps)
    n = data[0].shape[0]

    def step(state, key):
        params, opt, extra = state
        k_idx, k_loss = jax.random.split(key)
        idx = jax.random.randint(k_idx, (batch_size,), 0, n)
        loss, grads = jax.value_and_grad(loss_fn)(params, tuple(d[idx] for d in data), k_loss, extra)
        updates, opt = tx.update(grads, opt, params)
        params = optax.apply_updates(params, updates)
        if after_step is not None:
            extra = after_step(params, extra)
        return (params, opt, extra), loss

    (params, _, extra), losses = jax.lax.scan(step, (params, tx.init(params), extra), jax.random.split(key, steps))
    return params, extra, losses


def train_diffusion(key, recipe: Recipe, images, labels):
    net = Denoiser(recipe.hidden, recipe.depth)
    alphas = jnp.asarray(D.alphas_cumprod())
    k_init, k_fit = jax.random.split(key)
    params = net.init(k_init, images[:1], jnp.zeros(1, jnp.int32), labels[:1])

    def loss_fn(params, batch, key, _):
        x0, c = batch
        k_t, k_n = jax.random.split(key)
        t = jax.random.randint(k_t, (x0.shape[0],), 0, D.NUM_TRAIN_TIMESTEPS)
        noise = jax.random.normal(k_n, x0.shape)
        eps = net.apply(params, D.add_noise(x0, noise, t, alphas), t, c)
        return ((eps - noise) ** 2).mean()

    params, _, losses = _fit(loss_fn, params, k_fit, recipe.diffusion_steps, recipe.diffusion_lr,
                             (images, labels), recipe.batch_size)
    return params, losses[-100:].mean()


def distill_consistency(key, recipe: Recipe, teacher, images, labels):
    net = Denoiser(recipe.hidden, recipe.depth)
    alphas = jnp.asarray(D.alphas_cumprod())
    skip = D.NUM_TRAIN_TIMESTEPS // D.ORIGIN_STEPS

    def f(params, x, t, c):
        return D.consistency_fn(net.apply(params, x, t, c), x, t, alphas)

    def loss_fn(params, batch, key, target_params):
        x0, c = batch
        k_t, k_n = jax.random.split(key)
        n = jax.random.randint(k_t, (x0.shape[0],), 1, D.ORIGIN_STEPS + 1)
        t = n * skip - 1
        s = t - skip  # -1 at the bottom of the grid: the boundary f(x, s) = x
        x_t = D.add_noise(x0, jax.random.normal(k_n, x0.shape), t, alphas)
        eps = net.apply(teacher, x_t, t, c)
        x0_hat = D.predict_x0(x_t, eps, alphas[t][:, None, None], True)
        ab_s = jnp.where(s >= 0, alphas[jnp.maximum(s, 0)], 1.0)[:, None, None]
        x_s = jnp.sqrt(ab_s) * x0_hat + jnp.sqrt(1.0 - ab_s) * eps  # teacher's DDIM (eta = 0) step
        target = jax.lax.stop_gradient(f(target_params, x_s, s, c))
        return ((f(params, x_t, t, c) - target) ** 2).mean()

    def ema(params, target):
        return jax.tree.map(lambda p, q: recipe.distill_ema * q + (1 - recipe.distill_ema) * p, params, target)

    params, _, losses = _fit(loss_fn, teacher, key, recipe.distill_steps, recipe.distill_lr,
                             (images, labels), recipe.batch_size, extra=teacher, after_step=ema)
    return params, losses[-100:].mean()


def train_classifier(key, recipe: Recipe, images, labels, test_images, test_labels):
    net = Classifier()
    k_init, k_fit = jax.random.split(key)
    params = net.init(k_init, images[:1])

    def loss_fn(params, batch, key, _):
        x, y = batch
        x = jnp.clip(x + 0.1 * jax.random.normal(key, x.shape), -1.0, 1.0)
        return optax.softmax_cross_entropy_with_integer_labels(net.apply(params, x), y).mean()

    params, _, _ = _fit(loss_fn, params, k_fit, recipe.classifier_steps, 3e-3, (images, labels), recipe.batch_size)
    acc = (net.apply(params, test_images).argmax(-1) == test_labels).mean()
    return params, acc


def perturb(key, images):
    """Real digits made worse or different in the ways a generator might: noise, fading, shifts."""
    k_n, k_s, k_f, k_dx, k_dy = jax.random.split(key, 5)
    n = images.shape[0]
    noisy = images + jax.random.uniform(k_s, (n, 1, 1), maxval=0.6) * jax.random.normal(k_n, images.shape)
    faded = (noisy + 1.0) * jax.random.uniform(k_f, (n, 1, 1), minval=0.3, maxval=1.2) - 1.0
    shift = jax.vmap(lambda x, dx, dy: jnp.roll(x, (dy, dx), axis=(0, 1)))
    shifted = shift(faded, jax.random.randint(k_dx, (n,), -1, 2), jax.random.randint(k_dy, (n,), -1, 2))
    return jnp.clip(shifted, -1.0, 1.0)


def train_scorer(key, recipe: Recipe, images, test_images):
    """Bradley-Terry fit to the simulated rater's choices between random pairs of (perturbed) digits.
    Returns params and the fraction of held-out pairs the scorer orders as the rater's utility does."""
    net = Scorer()
    k_init, k_fit, k_pool, k_test = jax.random.split(key, 4)
    pool = jnp.concatenate([images, perturb(k_pool, images)])
    params = net.init(k_init, images[:1])

    def loss_fn(params, batch, key, _):
        (a,) = batch
        k_b, k_pick = jax.random.split(key)
        b = pool[jax.random.randint(k_b, (a.shape[0],), 0, pool.shape[0])]
        p_rater = jax.nn.sigmoid((rater_utility(a) - rater_utility(b)) / recipe.rater_temperature)
        choice = jax.random.bernoulli(k_pick, p_rater).astype(jnp.float32)  # 1: the rater picked a
        margin = net.apply(params, a) - net.apply(params, b)
        return optax.sigmoid_binary_cross_entropy(margin, choice).mean()

    params, _, _ = _fit(loss_fn, params, k_fit, recipe.scorer_steps, 3e-3, (pool,), recipe.batch_size)
    test = jnp.concatenate([test_images, perturb(k_test, test_images)])
    a, b = test, jnp.roll(test, 1, axis=0)
    agree = (net.apply(params, a) > net.apply(params, b)) == (rater_utility(a) > rater_utility(b))
    return params, agree.mean()


@functools.lru_cache(maxsize=4)
def _train_program(recipe: Recipe):
    """The whole of pretraining as one jitted function of (key, data): one compile (on a small CPU
    compiling costs more than these few thousand small steps), reused for the same recipe."""

    @jax.jit
    def train(key, data):  # the data as an argument: closed-over arrays become constants XLA folds slowly
        images, labels, test_images, test_labels = data
        k_diff, k_cd, k_cls, k_aes = jax.random.split(key, 4)
        params, info = {}, {}
        params["diffusion"], info["diffusion_loss"] = train_diffusion(k_diff, recipe, images, labels)
        params["consistency"], info["distill_loss"] = distill_consistency(
            k_cd, recipe, params["diffusion"], images, labels)
        params["classifier"], info["classifier_test_accuracy"] = train_classifier(
            k_cls, recipe, images, labels, test_images, test_labels)
        params["aesthetic"], info["scorer_pair_agreement"] = train_scorer(k_aes, recipe, images, test_images)
        return params, info

    return train


def train_all(recipe: Recipe) -> tuple[dict, dict]:
    """The four networks' parameters and quality numbers, trained from scratch."""
    data = tuple(jnp.asarray(a) for a in (*load_digits("train"), *load_digits("test")))
    t0 = time.perf_counter()
    program = _train_program(dataclasses.replace(recipe, seed=0))  # the seed is an input, not a shape
    params, info = jax.block_until_ready(program(jax.random.PRNGKey(recipe.seed), data))
    info = {k: round(float(v), 4) for k, v in info.items()}
    info["seconds"] = round(time.perf_counter() - t0, 1)
    return params, info


# ------------------------------------------------------------------------------------------- caching


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(file_hashes: dict[str, str]) -> str:
    """The pretrained set's name: SHA-256 (16 hex digits) of its files' hashes in NETWORKS order."""
    return _sha256("".join(file_hashes[n] for n in NETWORKS).encode())[:16]


def _templates(recipe: Recipe) -> dict:
    """Parameter trees of the right structure (for `flax.serialization.from_bytes`)."""
    x, t, c = jnp.zeros((1, 8, 8)), jnp.zeros(1, jnp.int32), jnp.zeros(1, jnp.int32)
    key = jax.random.PRNGKey(0)
    den = jax.eval_shape(lambda: Denoiser(recipe.hidden, recipe.depth).init(key, x, t, c))
    return {"diffusion": den, "consistency": den,
            "classifier": jax.eval_shape(lambda: Classifier().init(key, x)),
            "aesthetic": jax.eval_shape(lambda: Scorer().init(key, x))}


def _read(folder: Path) -> Pretrained:
    manifest = json.loads((folder / "manifest.json").read_text())
    recipe = Recipe(**manifest["recipe"])
    templates = _templates(recipe)
    params, hashes = {}, {}
    for name in NETWORKS:
        blob = (folder / f"{name}.msgpack").read_bytes()
        hashes[name] = _sha256(blob)
        if hashes[name] != manifest["files"][name]:
            raise ValueError(f"pretrained file {folder / name}.msgpack does not match its manifest's SHA-256 "
                             f"(corrupt or edited); delete {folder} to rebuild it")
        params[name] = flax.serialization.from_bytes(templates[name], blob)
    return Pretrained(recipe, *(params[n] for n in NETWORKS), content_hash(hashes), manifest["info"])


def _write(folder: Path, recipe: Recipe, params: dict, info: dict) -> None:
    """Write atomically: into a temporary sibling folder, then rename (a concurrent writer of the
    same recipe makes the same bytes, so whichever rename wins is fine)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp", dir=folder.parent))
    files = {}
    for name in NETWORKS:
        blob = flax.serialization.to_bytes(jax.device_get(params[name]))
        (tmp / f"{name}.msgpack").write_bytes(blob)
        files[name] = _sha256(blob)
    manifest = {"recipe": dataclasses.asdict(recipe), "files": files, "hash": content_hash(files), "info": info,
                "versions": {"jax": jax.__version__, "backend": jax.default_backend()}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    try:
        os.rename(tmp, folder)
    except OSError:  # another process wrote it first
        shutil.rmtree(tmp, ignore_errors=True)


def ensure(recipe: Recipe | None = None, verbose: bool = False) -> Pretrained:
    """The recipe's networks, from the cache, or trained now and cached."""
    recipe = recipe or Recipe()
    folder = cache_root() / recipe.hash
    if not (folder / "manifest.json").exists():
        with _training_lock(folder):  # a second process asking for the same recipe waits, then reads
            if not (folder / "manifest.json").exists():
                if verbose:
                    print(f"training the pretrained networks of {recipe} into {folder} ...", flush=True)
                params, info = train_all(recipe)
                _write(folder, recipe, params, info)
    return _read(folder)


@contextlib.contextmanager
def _training_lock(folder: Path):
    """An exclusive lock on `<folder>.lock` (POSIX flock; a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_by_hash(content: str) -> Pretrained:
    """The cached pretrained set whose content hash is `content`; ValueError if none is cached."""
    root = cache_root()
    for manifest in sorted(root.glob("*/manifest.json")) if root.exists() else []:
        try:
            if json.loads(manifest.read_text()).get("hash") == content:
                return _read(manifest.parent)
        except (OSError, json.JSONDecodeError):
            continue
    raise ValueError(f"pretrained_hash {content!r}: no pretrained networks with that content hash under {root} "
                     f"(make them with `python -m jaxrl.models.pretrain --seed N`, or leave pretrained_hash empty)")


def resolve(pretrained_hash: str, pretrain_seed: int) -> Pretrained:
    """What an algorithm's config names: the set with `pretrained_hash`, or if that is empty, the
    default recipe with seed `pretrain_seed` (trained and cached if needed)."""
    if pretrained_hash:
        return load_by_hash(pretrained_hash)
    return ensure(Recipe(seed=pretrain_seed))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train and cache the pretrained networks of RLCM and DDPO.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pre = ensure(Recipe(seed=args.seed), verbose=True)
    print(f"pretrained hash: {pre.hash}  (cache: {cache_root() / pre.recipe.hash})")
    print(json.dumps(pre.info, indent=1))
    return pre


if __name__ == "__main__":
    main()
