"""Reading images and masks by content (some copies hold PNG data under ``.jpg`` names)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from segdec.errors import SegdecError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class DataError(SegdecError, ValueError):
    """Bad input data; the message names the file or row and says what to do."""


def load_image(path: str | Path, channels: int = 1) -> np.ndarray:
    """``uint8`` array [H, W] (grey) or [H, W, 3] (colour); DataError names an unreadable file."""
    with _open(path) as image:
        return np.array(image.convert("L" if channels == 1 else "RGB"))


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
    (0, 0, 1) would vanish in a conversion to grey. Alpha and palettes are resolved to RGB first.
    """
    with _open(path) as image:
        grey = image.mode in ("1", "L", "I", "I;16", "F")
        pixels = np.array(image if grey else image.convert("RGB"))
    mask = pixels.any(axis=-1) if pixels.ndim == 3 else pixels != 0
    if mask.shape != shape:
        raise DataError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{shape[1]}x{shape[0]}; masks must have their image's size"
        )
    return (mask > 0).astype(np.uint8)


def resize(array: np.ndarray, size: tuple[int, int], mask: bool = False) -> np.ndarray:
    """Resize to (H, W); masks use nearest neighbour so they stay binary."""
    if array.shape[:2] == size:
        return array
    resample = Image.NEAREST if mask else Image.BILINEAR
    return np.array(Image.fromarray(array).resize((size[1], size[0]), resample))
