"""Reading images and masks by content (some copies hold PNG data under ``.jpg`` names)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from segdec.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "P")
# PIL modes of grey pixels deeper than 8 bits (16-bit PNG and TIFF, 32-bit integer, float).
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
BIT_DEPTHS = (8, 10, 12, 14, 16)
MAX_BIT_DEPTH = 16
# How images are read without a run's bit_depth: check-data's report, and checkpoints written
# before bit_depth existed (whose networks were trained on images read this way).
HIGH_DEPTH_RULE = ("grey images deeper than 8 bits are scaled to 0-255 by the bit depth their "
                   "largest pixel value implies (8, 10, 12, 14 or 16 bits, more if needed; "
                   "floats of at most 1.0 as 0-1), each image by its own")


class DecodedImage(NamedTuple):
    pixels: np.ndarray  # uint8 [H, W] or [H, W, 3]
    bit_depth: str  # "8", "12", "float 0-1", ...: the depth the image's own largest value implies
    colour: bool  # whether the file holds colour (RGB, palette) rather than grey


def load_image(path: str | Path, channels: int = 1, bit_depth: int | None = None) -> np.ndarray:
    """``uint8`` array [H, W] (grey) or [H, W, 3] (colour); DataError names an unreadable file."""
    return decode_image(path, channels, bit_depth).pixels


def decode_image(path: str | Path, channels: int = 1, bit_depth: int | None = None
                 ) -> DecodedImage:
    """The pixels as ``load_image`` gives them, with the bit depth the image itself implies.

    ``convert("L")`` clips deeper pixels at 255, so a 12-bit camera's image would reach the
    network all white. Such images are scaled by the run's one ``bit_depth`` (value * 255 /
    (2**bit_depth - 1)), so that a dark image keeps its darkness beside its brighter neighbours;
    without one, each by the depth its own largest value implies (``HIGH_DEPTH_RULE``). Files of
    8 bits or fewer are read as they are, and floats of at most 1.0 as 0-1, whatever the depth.
    """
    with _open(path) as image:
        mode, colour = image.mode, image.mode not in GREY_MODES
        if mode not in HIGH_DEPTH_MODES:
            pixels = np.array(image.convert("L" if channels == 1 else "RGB"))
            return DecodedImage(pixels, "1" if mode == "1" else "8", colour)
        values = np.array(image, np.float64)
    top = _largest_value(values, path)
    depth = implied_depth(top, mode == "F")
    if depth == "float 0-1":
        full_scale = 1.0
    elif bit_depth is None:
        full_scale = 2.0 ** int(depth) - 1
    else:
        full_scale = 2.0**bit_depth - 1
        if top > full_scale:
            raise DataError(deeper_than_run(path, top, bit_depth))
    pixels = np.rint(np.clip(values, 0, full_scale) * (255 / full_scale)).astype(np.uint8)
    return DecodedImage(np.repeat(pixels[..., None], 3, axis=2) if channels == 3 else pixels,
                        depth, colour)


def implied_depth(top: float, is_float: bool = False) -> str:
    """The bit depth a largest pixel value implies: 8, 10, 12, 14 or 16, more if needed;
    "float 0-1" for floats of at most 1.0."""
    if is_float and top <= 1.0:
        return "float 0-1"
    return str(next((b for b in BIT_DEPTHS if top <= 2**b - 1), int(np.ceil(np.log2(top + 1)))))


def largest_deep_value(path: str | Path) -> float | None:
    """The largest pixel value of a grey image deeper than 8 bits, which sets the bit depth it
    needs; None for files of 8 bits or fewer (known from the header alone, so an 8-bit data set
    is not decoded) and for floats of at most 1.0, which need no bit depth."""
    with _open(path, decode=False) as image:
        if image.mode not in HIGH_DEPTH_MODES:
            return None
        is_float = image.mode == "F"
        image.load()
        values = np.array(image, np.float64)
    top = _largest_value(values, path)
    return None if implied_depth(top, is_float) == "float 0-1" else top


def deeper_than_run(path: str | Path, top: float, bit_depth: int) -> str:
    """Why an image cannot be read at the run's ``bit_depth``, and what to do."""
    needed = int(implied_depth(top))
    fix = (f"train with bit_depth {needed} (every image of a run is scaled by one bit depth)"
           if needed <= MAX_BIT_DEPTH else f"convert it to at most {MAX_BIT_DEPTH} bits")
    return (f"image {path} holds pixel values up to {top:g}, deeper than the run's bit_depth "
            f"{bit_depth} (0-{2**bit_depth - 1}); clipping would hide that, so it is refused: "
            f"{fix}, or remove the image")


def _largest_value(values: np.ndarray, path: str | Path) -> float:
    if not np.isfinite(values).all():
        raise DataError(f"image {path} holds NaN or infinite pixel values; replace the file")
    return float(values.max(initial=0.0))


def image_shape(path: str | Path) -> tuple[int, int]:
    """(H, W) from the file's header alone, so readers can check masks without decoding images."""
    with _open(path, decode=False) as image:
        return image.height, image.width


@contextmanager
def _open(path: str | Path, decode: bool = True) -> Iterator[Image.Image]:
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise DataError(f"image {path} is a symbolic link to {os.readlink(path)}, which does not "
                        "exist; restore its target or remove the link")
    if not path.is_file():
        raise DataError(f"image {path} does not exist; check the data root or the split CSV")
    try:
        with Image.open(path) as image:
            if decode:
                image.load()
            yield image
    # DecompressionBombError (a header declaring too many pixels) is not an OSError.
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as err:
        raise DataError(
            f"cannot read image {path} ({err}); replace the file or remove it from the dataset"
        ) from None


def load_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Binary ``uint8`` mask (non-zero = defect) that must match the image's ``shape``.

    A pixel is a defect when any colour channel is non-zero: a dark defect colour such as
    (0, 0, 1) would vanish in a conversion to grey. Palettes are resolved to their colours, and a
    fully transparent pixel is background whatever its colour: an editor's mask layer is often
    a defect painted on a transparent (0, 0, 0, 0 or 255, 255, 255, 0) background.
    """
    return read_mask(path, shape)[0]


# Formats whose compression changes pixel values: a mask saved in one gains faint non-zero
# pixels around its defects, and an empty mask may gain a few, which read as defect.
LOSSY_FORMATS = ("JPEG", "MPO")
FAINT_BELOW = 128  # a lossy mask's values from 1 to this are compression noise, not drawn


class MaskNoise(NamedTuple):
    """Compression noise of a mask in a lossy format."""

    file_format: str  # "JPEG"
    faint_max: int  # the largest faint value (1 to FAINT_BELOW - 1)
    only_faint: bool  # nothing but noise: no defect was drawn, yet the mask reads as one


def read_mask(path: str | Path, shape: tuple[int, int]) -> tuple[np.ndarray, MaskNoise | None]:
    """``load_mask``'s mask and, for a file in a lossy format (by content, not by name), its
    faint pixels; the file is read once (``segdec check-data`` reads every mask)."""
    with _open(path) as image:
        file_format = image.format
        if image.mode in ("1", "L", *HIGH_DEPTH_MODES):
            values = np.array(image)
        else:
            rgba = np.array(image.convert("RGBA"))
            values = rgba[..., :3].max(axis=-1) * (rgba[..., 3] > 0)
    if values.shape != shape:
        raise DataError(
            f"mask {path} is {values.shape[1]}x{values.shape[0]} but its image is "
            f"{shape[1]}x{shape[0]}; masks must have their image's size"
        )
    noise = None
    if file_format in LOSSY_FORMATS:
        faint = values[(values > 0) & (values < FAINT_BELOW)]
        if faint.size:
            noise = MaskNoise(file_format, int(faint.max()), bool(values.max() < FAINT_BELOW))
    return (values != 0).astype(np.uint8), noise


def resize(array: np.ndarray, size: tuple[int, int], mask: bool = False) -> np.ndarray:
    """Resize to (H, W); masks use nearest neighbour so they stay binary."""
    if array.shape[:2] == size:
        return array
    resample = Image.NEAREST if mask else Image.BILINEAR
    return np.array(Image.fromarray(array).resize((size[1], size[0]), resample))
