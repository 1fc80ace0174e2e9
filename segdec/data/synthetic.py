"""Steel-like synthetic defect images written in the exact Severstal on-disk layout.

The embedded default for the demo and the tests: ``train.csv`` (current Kaggle format) and
``train_images/*.jpg``, so the Severstal reader treats it exactly like the real thing. Textures
are rolled-steel streaks with brightness drift and harmless smudges; defects are pits (class 1),
thin scratches (class 2), textured patches (class 3) and large blotches (class 4), sometimes
several classes on one image.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from segdec.data.rle import rle_encode
from segdec.errors import ConfigError
from segdec.model import SegDecNet

# The demo's synthetic set (segdec quick-demo, the bench's accuracy check, the teaching notebook
# without KolektorSDD): DEMO_IMAGES defective and as many clean images of DEMO_SHAPE (H, W).
DEMO_IMAGES, DEMO_SHAPE = 60, (64, 320)


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    columns = ndimage.gaussian_filter1d(rng.normal(0, 1, width), 1.5) * 12  # vertical streaks
    drift = ndimage.gaussian_filter1d(rng.normal(0, 1, width), width / 20) * 15
    shade = np.linspace(-1, 1, height)[:, None] * rng.normal(0, 8)  # lighting across the strip
    image = rng.uniform(90, 140) + columns[None, :] + drift[None, :] + shade
    image = image + ndimage.gaussian_filter(rng.normal(0, 7, (height, width)), (2.5, 0.6))
    for _ in range(rng.integers(0, 3)):  # smudges: soft, low-contrast, not defects
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.05, 0.2) * width
        yy, xx = np.ogrid[:height, :width]
        image += rng.uniform(-10, 10) * np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
    if rng.random() < 0.2:  # the dark background beside the strip's edge, as in real images
        edge = int(rng.uniform(0.05, 0.3) * width)
        image[:, :edge] = rng.uniform(0, 15) if rng.random() < 0.5 else image[:, :edge] * 0.1
    return image


def _ellipse(shape, cy, cx, ry, rx, angle=0.0) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    cos, sin = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def _defect(rng: np.random.Generator, class_id: int, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    unit = height / 8  # defect sizes scale with the strip's height
    cy, cx = rng.uniform(0.15, 0.85) * height, rng.uniform(0.05, 0.95) * width
    mask = np.zeros(shape, bool)
    if class_id == 1:  # a cluster of pits
        for _ in range(rng.integers(3, 8)):
            r = rng.uniform(0.15, 0.35) * unit
            mask |= _ellipse(shape, cy + rng.normal(0, unit), cx + rng.normal(0, 1.5 * unit),
                             r, r * rng.uniform(0.7, 1.4))
    elif class_id == 2:  # a thin scratch
        length = rng.uniform(2, 5) * unit
        mask |= _ellipse(shape, cy, cx, max(0.6, 0.08 * unit), length, rng.uniform(-0.6, 0.6))
    elif class_id == 3:  # an irregular textured patch
        blob = ndimage.gaussian_filter(rng.normal(0, 1, shape), unit * 0.4) > 0
        mask |= blob & _ellipse(shape, cy, cx, rng.uniform(0.8, 1.6) * unit,
                                rng.uniform(1.2, 3.0) * unit, rng.uniform(0, np.pi))
    else:  # a large blotch
        mask |= _ellipse(shape, cy, cx, rng.uniform(1.2, 2.2) * unit, rng.uniform(2, 5) * unit,
                         rng.uniform(-0.3, 0.3))
    if not mask.any():  # on a small strip the shape can fall between pixels: keep a dot
        mask |= _ellipse(shape, cy, cx, 1.0, 1.0)
    return mask


def _paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, class_id: int) -> None:
    soft = ndimage.gaussian_filter(mask.astype(float), 0.7)
    if class_id == 3:
        texture = ndimage.gaussian_filter(rng.normal(0, 1, image.shape), 1.0) * 25
        image += soft * (texture - rng.uniform(15, 30))
    else:
        image += soft * rng.choice([-1, 1], p=[0.8, 0.2]) * rng.uniform(25, 50)


def synthesize(
    out: str | Path,
    n_pos: int,
    n_neg: int,
    seed: int = 0,
    shape: tuple[int, int] = (256, 1600),
    overwrite: bool = False,
) -> Path:
    """Write ``n_pos`` defective and ``n_neg`` clean images of ``shape`` (height, width) to
    ``out``; Severstal's shape by default.

    The tree is built in a temporary folder beside ``out`` and moved into place at the end, so an
    interrupted run leaves nothing that looks like a finished dataset.
    """
    out = Path(out)
    height, width = shape
    stride, least = SegDecNet.output_stride, SegDecNet.min_size
    if width % stride or height % stride or min(height, width) < least:
        raise ConfigError(f"size {width}x{height} must be at least {least}x{least} and a "
                          f"multiple of {stride}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already holds files; pass overwrite=True (--overwrite)")
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "train_images").mkdir()
        rows = ["ImageId,ClassId,EncodedPixels"]
        labels = rng.permutation(np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)])
        for index, defective in enumerate(labels):
            name = f"{index:04d}{rng.integers(16**5):05x}.jpg"
            image = _texture(rng, height, width)
            if defective:
                n_classes = 1 if rng.random() < 0.8 else 2
                for class_id in sorted(rng.choice([1, 2, 3, 4], n_classes, replace=False,
                                                  p=[0.3, 0.3, 0.25, 0.15])):
                    mask = _defect(rng, int(class_id), (height, width))
                    _paint(rng, image, mask, int(class_id))
                    rows.append(f"{name},{class_id},{rle_encode(mask)}")
            pixels = np.clip(image, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(staging / "train_images" / name, quality=95)
        (staging / "train.csv").write_text("\n".join(rows) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out
