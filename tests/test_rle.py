"""segdec.data.rle: Severstal run-length masks decode, round-trip and refuse bad strings."""

import numpy as np
import pytest

from segdec.data import RLEError, rle_decode, rle_encode
from tests.helpers import shared_path


def test_decode_is_one_indexed_and_column_major():
    mask = rle_decode("1 3 6 2", shape=(4, 3))
    expected = np.zeros((4, 3), np.uint8)
    expected[0:3, 0] = 1  # pixels 1-3: first column, top to bottom
    expected[1:3, 1] = 1  # pixels 6-7: second column, rows 1-2
    np.testing.assert_array_equal(mask, expected)


def test_round_trip_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = (rng.random((16, 40)) > 0.7).astype(np.uint8)
        np.testing.assert_array_equal(rle_decode(rle_encode(mask), mask.shape), mask)
    assert rle_encode(np.zeros((4, 4))) == ""
    assert rle_decode("", (4, 4)).sum() == 0


@pytest.mark.parametrize(
    "rle, message",
    [
        ("1 2 5", "odd number"),
        ("0 2", "1-indexed"),
        ("1 0", "length"),
        ("10 5", "past the last pixel"),
        ("5 3 6 1", "overlaps"),
        ("8 1 2 1", "overlaps or precedes"),
        ("1 x", "non-integer"),
    ],
)
def test_malformed_strings_are_refused(rle, message):
    with pytest.raises(RLEError, match=message):
        rle_decode(rle, shape=(3, 4))


def test_real_severstal_rows_decode_to_defects():
    import pandas as pd

    rows = pd.read_csv(shared_path("severstal_train_sample.csv"))
    for rle in rows["EncodedPixels"]:
        mask = rle_decode(rle)
        assert mask.shape == (256, 1600) and mask.sum() > 0
        assert rle_encode(mask) == rle
