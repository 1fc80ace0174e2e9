"""Reading images and masks by content (some copies hold PNG data under ``.jpg`` names)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from segdec.errors import SegdecError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class DataError(SegdecError, ValueError):
    """Bad input data; the message names the file or row and says what to do."""


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "P")
# PIL modes of grey pixels deeper than 8 bits (16-bit PNG and TIFF, 32-bit integer, float).
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
BIT_DEPTHS = (8, 10, 12, 14, 16)
# How load_image brings them to 8 bits; ONNX metadata records it for inference outside segdec.
HIGH_DEPTH_RULE = ("grey images deeper than 8 bits are scaled to 0-255 by the bit depth their "
                   "largest pixel value implies (8, 10, 12, 14 or 16 bits, more if needed; "
                   "floats of at most 1.0 as 0-1), each image by its own")


class DecodedImage(NamedTuple):
    pixels: np.ndarray  # uint8 [H, W] or [H, W, 3]
    bit_depth: str  # "8", "12", "float 0-1", ...: what the pixels were scaled from
    colour: bool  # whether the file holds colour (RGB, palette) rather than grey


def load_image(path: str | Path, channels: int = 1) -> np.ndarray:
    """``uint8`` array [H, W] (grey) or [H, W, 3] (colour); DataError names an unreadable file."""
    return decode_image(path, channels).pixels


def decode_image(path: str | Path, channels: int = 1) -> DecodedImage:
    """The pixels as ``load_image`` gives them, with the bit depth they were scaled from.

    ``convert("L")`` clips deeper pixels at 255, so a 12-bit camera's image would reach the
    network all white; such images are scaled by their bit depth instead (``HIGH_DEPTH_RULE``).
    """
    with _open(path) as image:
        mode, colour = image.mode, image.mode not in GREY_MODES
        if mode not in HIGH_DEPTH_MODES:
            pixels = np.array(image.convert("L" if channels == 1 else "RGB"))
            return DecodedImage(pixels, "1" if mode == "1" else "8", colour)
        values = np.array(image, np.float64)
    pixels, depth = _scale_to_8_bits(values, mode == "F", path)
    return DecodedImage(np.repeat(pixels[..., None], 3, axis=2) if channels == 3 else pixels,
                        depth, colour)


def _scale_to_8_bits(values: np.ndarray, is_float: bool, path: str | Path
                     ) -> tuple[np.ndarray, str]:
    if not np.isfinite(values).all():
        raise DataError(f"image {path} holds NaN or infinite pixel values; replace the file")
    top = float(values.max(initial=0.0))
    if is_float and top <= 1.0:
        full_scale, depth = 1.0, "float 0-1"
    else:
        bits = next((b for b in BIT_DEPTHS if top <= 2**b - 1), int(np.ceil(np.log2(top + 1))))
        full_scale, depth = 2.0**bits - 1, str(bits)
    return np.rint(np.clip(values, 0, None) * (255 / full_scale)).astype(np.uint8), depth


def image_shape(path: str | Path) -> tuple[int, int]:
    """(H, W) from the file's header alone, so readers can check masks without decoding images."""
    with _open(path, decode=False) as image:
        return image.height, image.width


@contextmanager
def _open(path: str | Path, decode: bool = True) -> Iterator[Image.Image]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist; check the data root or the split CSV")
    try:
        with Image.open(path) as image:
            if decode:
                image.load()
            yield image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
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
    with _open(path) as image:
        if image.mode in ("1", "L", *HIGH_DEPTH_MODES):
            mask = np.array(image) != 0
        else:
            rgba = np.array(image.convert("RGBA"))
            mask = rgba[..., :3].any(axis=-1) & (rgba[..., 3] > 0)
    if mask.shape != shape:
        raise DataError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{shape[1]}x{shape[0]}; masks must have their image's size"
        )
    return mask.astype(np.uint8)


def resize(array: np.ndarray, size: tuple[int, int], mask: bool = False) -> np.ndarray:
    """Resize to (H, W); masks use nearest neighbour so they stay binary."""
    if array.shape[:2] == size:
        return array
    resample = Image.NEAREST if mask else Image.BILINEAR
    return np.array(Image.fromarray(array).resize((size[1], size[0]), resample))
