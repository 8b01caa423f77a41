"""On-device batch preparation: gather by id, normalise, augment per example (seeded)."""
import jax
import jax.numpy as jnp


def normalize(x, mean, std):
    return (x.astype(jnp.float32) - mean) / std


def random_crop(rng, x, pad):
    """Pad-`pad` reflect, then a crop at an independent random offset for every example."""
    b, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    offsets = jax.random.randint(rng, (b, 2), 0, 2 * pad + 1)
    crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c))
    return jax.vmap(crop)(padded, offsets)


def random_flip(rng, x):
    flip = jax.random.bernoulli(rng, 0.5, (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


def prepare_batch(images, mean, std, idx, rng, augment, crop_pad):
    """images: all training images on device; idx: [B] ids. Returns normalised float32 [B,H,W,C]."""
    return prepare_gathered(images[idx], mean, std, rng, augment, crop_pad)


def prepare_gathered(x, mean, std, rng, augment, crop_pad):
    """prepare_batch of an already gathered batch x [B, H, W, C] (the host pipeline's)."""
    x = normalize(x, mean, std)
    crop_rng, flip_rng = jax.random.split(rng)
    if augment in ("crop", "crop_flip") and crop_pad > 0:
        x = random_crop(crop_rng, x, crop_pad)
    if augment in ("flip", "crop_flip"):
        x = random_flip(flip_rng, x)
    return x
