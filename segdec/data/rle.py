"""Kaggle run-length encoding of Severstal masks: ``start length`` pairs, 1-indexed, by column."""

from __future__ import annotations

import numpy as np

SEVERSTAL_SHAPE = (256, 1600)


class RLEError(ValueError):
    """A malformed run-length string; the message says what is wrong with it."""


def parse_runs(rle: str, n_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validated 1-indexed (starts, lengths); the end check needs the image's pixel count."""
    tokens = str(rle).split()
    try:
        numbers = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError as err:
        raise RLEError(f"non-integer token in run-length string: {err}") from None
    if numbers.size % 2:
        raise RLEError(f"odd number of values ({numbers.size}); expected 'start length' pairs")
    starts, lengths = numbers[0::2], numbers[1::2]
    if (starts < 1).any():
        raise RLEError(f"start {starts[starts < 1][0]} < 1; starts are 1-indexed")
    if (lengths < 1).any():
        raise RLEError(f"run length {lengths[lengths < 1][0]} < 1")
    ends = starts - 1 + lengths
    if n_pixels is not None and (ends > n_pixels).any():
        bad = int(np.argmax(ends > n_pixels))
        raise RLEError(f"run {starts[bad]} {lengths[bad]} ends past the last pixel ({n_pixels})")
    if (starts[1:] < ends[:-1] + 1).any():
        bad = int(np.argmax(starts[1:] < ends[:-1] + 1)) + 1
        raise RLEError(f"run starting at {starts[bad]} overlaps or precedes the run before it")
    return starts, lengths


def rle_decode(rle: str, shape: tuple[int, int] = SEVERSTAL_SHAPE) -> np.ndarray:
    """Decode to a ``uint8`` 0/1 mask of ``shape`` (H, W); raise RLEError on malformed input."""
    height, width = shape
    mask = np.zeros(height * width, dtype=np.uint8)
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        return mask.reshape(width, height).T.copy()
    starts, lengths = parse_runs(rle, mask.size)
    for start, end in zip(starts - 1, starts - 1 + lengths, strict=True):
        mask[start:end] = 1
    return mask.reshape(width, height).T.copy()


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (non-zero = defect) as a Kaggle RLE string; '' for an empty mask."""
    flat = np.asarray(mask).T.reshape(-1) > 0
    padded = np.concatenate([[False], flat, [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1]) + 1
    starts, stops = changes[0::2], changes[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, stops, strict=True))
