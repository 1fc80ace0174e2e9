"""segdec.data (readers, splits, targets) and segdec.data.dataset: the error messages bad input
gets."""

import re

import numpy as np
import pandas as pd
import pytest
import torch

from segdec.data import (
    DataError,
    DefectDataset,
    Sample,
    TargetOptions,
    downsample_mask,
    load_split,
    make_split,
    read_severstal,
    save_split,
)
from segdec.data.dataset import distance_weights
from tests.helpers import shared_path
from tests.layouts import SHAPE, severstal_mask, write_layout


def test_synthetic_data_is_in_severstal_layout(tiny_severstal):
    header = (tiny_severstal / "train.csv").read_text().splitlines()[0]
    assert header == "ImageId,ClassId,EncodedPixels"
    samples = read_severstal(tiny_severstal)
    assert len(samples) == 40 and sum(s.label for s in samples) == 20
    for sample in samples:
        assert sample.name.endswith(".jpg")
        mask = sample.mask((64, 128))
        assert bool(mask.any()) == bool(sample.label)


def test_synthetic_defects_have_pixels_on_the_smallest_strip(tmp_path):
    """At 64x64 some pit clusters fall between pixels; each keeps at least a dot."""
    from segdec.data.synthetic import synthesize

    samples = read_severstal(synthesize(tmp_path / "s", n_pos=60, n_neg=0, shape=(64, 64)))
    assert len(samples) == 60 and all(s.mask((64, 64)).any() for s in samples)


def test_real_severstal_keeps_every_class():
    samples = {s.name: s for s in read_severstal(shared_path("severstal"))}
    assert len(samples) == 12 and sum(s.label for s in samples.values()) == 7
    both = samples["002fc4e19.jpg"]
    assert both.classes == (1, 2)
    masks = both.class_masks((256, 1600))
    assert masks[1].any() and masks[2].any()
    np.testing.assert_array_equal(both.mask((256, 1600)), masks[1] | masks[2])
    assert read_severstal(shared_path("severstal"), classes=[4])[1].label == 0


def test_legacy_csv_gives_identical_masks(tmp_path):
    from segdec.data.severstal import read_rle_rows

    current = read_rle_rows(shared_path("severstal_train_sample.csv"))
    legacy = read_rle_rows(shared_path("severstal_train_sample_legacy.csv"))
    columns = ["ImageId", "ClassId", "EncodedPixels"]
    pd.testing.assert_frame_equal(current[columns].sort_values(columns).reset_index(drop=True),
                                  legacy[columns].sort_values(columns).reset_index(drop=True))


def test_legacy_csv_reads_as_the_current_one(tmp_path):
    """The older wide train.csv, written here: the same samples, classes and masks."""
    read = {}
    for layout in ("severstal", "severstal-legacy"):
        expected = write_layout(layout, tmp_path / layout)
        samples = read_severstal(tmp_path / layout)
        assert {s.name: (s.label, bool(s.rles)) for s in samples} == expected
        read[layout] = {s.name: s for s in samples}
    for name, sample in read["severstal-legacy"].items():
        current = read["severstal"][name]
        assert sample.classes == current.classes
        np.testing.assert_array_equal(sample.mask(SHAPE), severstal_mask(name))
        np.testing.assert_array_equal(sample.mask(SHAPE), current.mask(SHAPE))
    assert read["severstal-legacy"]["a.jpg"].classes == (1, 3)
    assert read["severstal-legacy"]["a.jpg"].rle_rows == (2, 4)  # its line in the file
    assert read["severstal-legacy"]["scan_2.jpg"].rle_rows == (7,)


def test_malformed_rle_row_is_named(tiny_severstal, tmp_path):
    root = tmp_path / "bad"
    (root / "train_images").mkdir(parents=True)
    image = next((tiny_severstal / "train_images").iterdir())
    (root / "train_images" / image.name).write_bytes(image.read_bytes())
    (root / "train.csv").write_text(f"ImageId,ClassId,EncodedPixels\n{image.name},1,5 3 7\n")
    with pytest.raises(DataError, match=r"train.csv row 2 .*class 1.*odd number"):
        read_severstal(root)


def test_corrupt_image_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    dataset = DefectDataset([Sample("broken.jpg", str(bad), 0)], [True],
                            TargetOptions(size=(32, 32)))
    with pytest.raises(DataError, match="broken.jpg.*replace the file"):
        dataset[0]


def test_image_declaring_a_huge_size_is_named_not_decoded(tmp_path):
    """A header claiming 60000x60000 pixels: PIL's DecompressionBombError is no OSError, and
    escaped check-data, train and predict as a traceback."""
    import struct
    import zlib

    from segdec.data.images import load_image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 60001)) + chunk(b"IEND", b""))
    with pytest.raises(DataError, match=r"cannot read image .*huge.png \(Image size "
                                        r"\(3600000000 pixels\).*replace the file"):
        load_image(huge)

def test_mask_of_wrong_size_is_named(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "a_label.png")
    sample = Sample("a.png", str(tmp_path / "a.png"), 1, mask_path=str(tmp_path / "a_label.png"))
    dataset = DefectDataset([sample], [True], TargetOptions(size=(32, 32)))
    with pytest.raises(DataError, match="a_label.png is 32x16 but its image is 32x32"):
        dataset[0]


def test_targets_are_soft_downsampled_masks():
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    small = downsample_mask(mask)
    assert small.shape == (1, 1, 8, 8)
    assert small[0, 0, 4, 4] == 1 and small[0, 0, 0, 0] == 0
    assert 0 < small[0, 0, 2, 4] < 1  # the border is soft


def test_targets_and_size_rounding_follow_the_networks_output_stride(monkeypatch, tmp_path):
    """One constant, SegDecNet.output_stride, sets the target resolution and the sizes the data
    pipeline rounds to; a second copy of it would leave these at 8."""
    from PIL import Image

    from segdec.data.prepare import common_size
    from segdec.data.synthetic import synthesize
    from segdec.errors import ConfigError
    from segdec.model import SegDecNet

    monkeypatch.setattr(SegDecNet, "output_stride", 16)
    assert downsample_mask(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 4, 4)
    Image.fromarray(np.zeros((64, 96), np.uint8)).save(tmp_path / "a.png")
    item = DefectDataset([Sample("a.png", str(tmp_path / "a.png"), 0)], [True],
                         TargetOptions(size=(64, 96)))[0]
    assert item["seg_target"].shape == (1, 4, 6)
    assert common_size([(100, 200)] * 2)[0] == (96, 192)
    with pytest.raises(ConfigError, match="multiple of 16"):
        synthesize(tmp_path / "s", 1, 1, shape=(64, 72))


def test_synthetic_shapes_are_height_width_inside_and_width_x_height_on_the_command_line(
        tmp_path):
    from PIL import Image

    from segdec.cli import main
    from segdec.config import RunConfig
    from segdec.data.synthetic import synthesize
    from segdec.demo import ensure_synthetic

    root = synthesize(tmp_path / "inside", 1, 0, shape=(64, 128))
    assert Image.open(next((root / "train_images").iterdir())).size == (128, 64)  # PIL: (W, H)
    assert main(["synth", "--out", str(tmp_path / "cli"), "--n-pos", "1", "--n-neg", "0",
                 "--size", "128x64"]) == 0
    assert Image.open(next((tmp_path / "cli" / "train_images").iterdir())).size == (128, 64)
    with pytest.raises(TypeError):  # a (width, height) pair cannot slip in by position
        ensure_synthetic(RunConfig(data_root=str(tmp_path / "e")), 1, 0, (128, 64))


def test_the_quick_demo_is_named_apart_from_make_demo_and_reads_the_demo_set(capsys):
    """``make demo`` is the 10-run batch; the 3-run CLI demo is ``segdec quick-demo``, whose
    defaults are the one definition of the demo's synthetic set."""
    from segdec.cli import build_parser

    args = build_parser().parse_args(["quick-demo"])
    assert (args.n_pos, args.n_neg, args.size) == (60, 60, (64, 320))  # --size 320x64
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo"])
    assert "invalid choice: 'demo'" in capsys.readouterr().err


def test_distance_weights_fall_to_the_defect_border():
    mask = np.zeros((21, 21), np.uint8)
    mask[5:16, 5:16] = 1
    weights = distance_weights(mask, power=2, max_weight=1)
    assert weights[0, 0] == 1 and weights[10, 10] == pytest.approx(1.0)
    assert weights[5, 10] < weights[8, 10] < weights[10, 10]


def _samples(n_pos, n_neg, **fields):
    return [Sample(f"p{i:04d}", "", 1, rles=("1 1",), classes=(1,), **fields)
            for i in range(n_pos)] + [Sample(f"n{i:04d}", "", 0, **fields) for i in range(n_neg)]


def test_splits_are_nested_and_deterministic():
    samples = _samples(400, 400)
    splits = {n: make_split(samples, n, n // 3, seed=7) for n in (30, 75, 150)}
    train = {n: s[s.subset == "train"] for n, s in splits.items()}
    for small, large in [(30, 75), (75, 150)]:
        small_pos = set(train[small].query("label == 1").image)
        assert small_pos <= set(train[large].query("label == 1").image)
        labelled = set(train[small].query("label == 1 and has_pixel_label").image)
        assert labelled <= set(train[large].query("label == 1 and has_pixel_label").image)
    for n in (75, 150):  # test, validation and training negatives are shared
        for part in ("test", "val"):
            assert splits[n].query(f"subset == '{part}'").image.tolist() == splits[30].query(
                f"subset == '{part}'").image.tolist()
        assert set(train[n].query("label == 0").image) == set(train[30].query("label == 0").image)
    pd.testing.assert_frame_equal(make_split(samples, 75, 25, seed=7), splits[75])
    assert not make_split(samples, 75, 25, seed=8).equals(splits[75])
    assert len(train[30].query("label == 1 and has_pixel_label")) == 10


def test_split_sizes_scale_to_small_data():
    split = make_split(_samples(400, 400), None, None)
    counts = split.subset.value_counts()
    assert counts["test"] == round(2400 * 800 / 12568)
    assert counts["val"] == round(1118 * 800 / 12568)


def test_split_errors_say_what_is_wrong():
    with pytest.raises(DataError, match="n_all=500 asks for more training positives"):
        make_split(_samples(100, 100), 500, 0)
    with pytest.raises(DataError, match="empty"):
        make_split([], None, None)
    with pytest.raises(DataError, match="no defect-free images for the test split"):
        make_split(_samples(20, 0), None, None)
    with pytest.raises(DataError, match="test split .* needs positives and negatives"):
        make_split(_samples(1, 100), None, None)  # one positive: too few for 2400/12568


def test_split_csv_round_trip_and_checks(tmp_path):
    samples = _samples(50, 50)
    split = make_split(samples, 20, 5, seed=1)
    path = save_split(split, tmp_path / "split.csv")
    pd.testing.assert_frame_equal(load_split(path, samples), split)
    with pytest.raises(DataError, match="not in the dataset"):
        load_split(path, samples[:10])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_images_are_scaled_by_their_bit_depth(tmp_path, suffix):
    """convert("L") clipped every value of a 12-bit camera (300-4095) to 255: an all-white image."""
    from segdec.data.images import decode_image
    from tests.layouts import camera_image

    twelve = decode_image(camera_image(tmp_path / f"c12{suffix}"))
    assert twelve.bit_depth == "12" and not twelve.colour
    # 300, 2197 and 4095 of 4095 -> round(value * 255 / 4095)
    assert (twelve.pixels[0, 0], twelve.pixels[1, 0], twelve.pixels[-1, -1]) == (19, 137, 255)
    assert twelve.pixels.dtype == np.uint8 and np.count_nonzero(twelve.pixels == 255) == 1
    rgb = decode_image(tmp_path / f"c12{suffix}", channels=3).pixels
    assert rgb.shape == (40, 24, 3) and tuple(rgb[1, 0]) == (137, 137, 137)
    # each image by its own depth: a largest value of 1000 fits 10 bits (1023)
    ten = decode_image(camera_image(tmp_path / f"c10{suffix}", low=300, high=1000))
    assert ten.bit_depth == "10"
    assert (ten.pixels[0, 0], ten.pixels[1, 0], ten.pixels[-1, -1]) == (75, 162, 249)


def test_float_images_of_0_to_1_are_scaled_by_255(tmp_path):
    from PIL import Image

    from segdec.data.images import decode_image

    pixels = np.full((8, 8), 0.5, np.float32)
    pixels[0, 0], pixels[0, 1] = 0.0, 1.0
    Image.fromarray(pixels).save(tmp_path / "f.tif")
    decoded = decode_image(tmp_path / "f.tif")
    assert decoded.bit_depth == "float 0-1"
    assert (decoded.pixels[0, 0], decoded.pixels[0, 1], decoded.pixels[1, 1]) == (0, 255, 128)
    pixels[1, 1] = np.nan
    Image.fromarray(pixels).save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match="nan.tif holds NaN or infinite pixel values"):
        decode_image(tmp_path / "nan.tif")


def test_the_dataset_feeds_16_bit_images_scaled(tmp_path):
    from tests.layouts import camera_image

    sample = Sample("c.png", str(camera_image(tmp_path / "c.png")), 0)
    item = DefectDataset([sample], [True], TargetOptions(size=(40, 24)))[0]
    assert item["image"][0, 0, 0].item() == pytest.approx(19 / 255)
    assert item["image"].max().item() == pytest.approx(1.0)
    assert item["image"][0, 1, 0].item() == pytest.approx(137 / 255)


def _dagm_of_a_12_bit_camera(root, dark_top=900, bright_top=4095):
    """DAGM's layout (fixed train and test folders) with two training images of a 12-bit camera:
    a dark one whose largest value is ``dark_top`` and a bright one up to ``bright_top``."""
    from tests.layouts import camera_image

    write_layout("dagm", root)
    train = root / "Class1" / "Train"
    camera_image(train / "0001.PNG", (64, 64), low=100, high=dark_top)  # 100, 500, dark_top
    camera_image(train / "0003.PNG", (64, 64), high=bright_top)  # 300, 2197, bright_top
    return root


def _prepare(root, **fields):
    from segdec.config import RunConfig
    from segdec.data.prepare import prepare_data

    return prepare_data(RunConfig(dataset="dagm", data_root=str(root), n_all=None, n_val=0,
                                  input_height=64, input_width=64, **fields))


def _pixels(dataset, name):
    """(top-left, row 1, last pixel) of a sample as the network receives it, in 0-255."""
    index = next(i for i, s in enumerate(dataset.samples) if s.name == name)
    image = (dataset[index]["image"][0] * 255).round().to(torch.uint8)
    return image[0, 0].item(), image[1, 0].item(), image[-1, -1].item()


def test_a_run_scales_every_image_by_one_bit_depth(tmp_path):
    """Each image scaled by its own maximum's depth read the dark image (largest value 900) as
    10-bit: 4x brighter than its 12-bit neighbours (900 -> 224), a brightness that isn't there."""
    config, data = _prepare(_dagm_of_a_12_bit_camera(tmp_path))
    assert config.bit_depth == 12 and data.test.options.bit_depth == 12
    # round(value * 255 / 4095) for both: 100, 500, 900 and 300, 2197, 4095
    assert _pixels(data.train, "Train/0001.PNG") == (6, 31, 56)
    assert _pixels(data.train, "Train/0003.PNG") == (19, 137, 255)
    assert _pixels(data.train, "Train/0002.PNG") == (100, 100, 100)  # an 8-bit file: as it is
    explicit, data = _prepare(tmp_path, bit_depth=14)  # a configured depth wins
    assert explicit.bit_depth == 14 and _pixels(data.train, "Train/0003.PNG") == (5, 34, 64)


def test_8_bit_data_is_read_byte_for_byte(tmp_path):
    """The committed KolektorSDD results depend on 8-bit images reaching the network unchanged."""
    from PIL import Image

    from segdec.data.images import decode_image

    pixels = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    for depth in (None, 8, 12):  # an 8-bit file is never scaled, whatever the run's depth
        np.testing.assert_array_equal(decode_image(tmp_path / "grey.png", 1, depth).pixels,
                                      pixels)
    write_layout("dagm", tmp_path / "dagm")
    Image.fromarray(pixels).save(tmp_path / "dagm" / "Class1" / "Train" / "0001.PNG")
    config, data = _prepare(tmp_path / "dagm")
    assert config.bit_depth == 8
    index = next(i for i, s in enumerate(data.train.samples) if s.name == "Train/0001.PNG")
    np.testing.assert_array_equal((data.train[index]["image"][0] * 255).round().byte().numpy(),
                                  pixels)


def test_an_image_deeper_than_the_runs_bit_depth_is_refused_by_name(tmp_path):
    """Clipping a test image at the training images' depth would hide its brightest parts."""
    from segdec.data.images import decode_image
    from tests.layouts import camera_image

    root = _dagm_of_a_12_bit_camera(tmp_path, bright_top=1000)  # training images: 10 bits
    deep = camera_image(root / "Class1" / "Test" / "0005.PNG", (64, 64))  # up to 4095
    named = f"image {re.escape(str(deep))} holds pixel values up to 4095, deeper than the run's"
    with pytest.raises(DataError, match=rf"{named} bit_depth 10 \(0-1023\); .* train with "
                       "bit_depth 12 .*; the run's bit_depth is the deepest of the training"):
        _prepare(root)
    with pytest.raises(DataError, match="bit_depth 8 .*set in the configuration"):
        _prepare(root, bit_depth=8)
    with pytest.raises(DataError, match=rf"{named} bit_depth 10"):  # predict reads this way
        decode_image(deep, bit_depth=10)


def _cache_size_in_worker(batch):
    """A collate function: how many images the worker's copy of the dataset has cached."""
    from torch.utils.data import get_worker_info

    return len(get_worker_info().dataset.cache)


def test_images_are_cached_in_the_main_process_only(tmp_path):
    """Each DataLoader worker holds its own copy of the dataset: caching there would keep the
    decoded images once per worker and loader, host memory growing with both."""
    from PIL import Image
    from torch.utils.data import DataLoader

    samples = []
    for i in range(3):
        Image.fromarray(np.full((32, 32), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        samples.append(Sample(f"{i}.png", str(tmp_path / f"{i}.png"), 0))
    dataset = DefectDataset(samples, [True] * 3, TargetOptions(size=(32, 32)))
    batches = DataLoader(dataset, batch_size=1, num_workers=1,
                         collate_fn=_cache_size_in_worker)
    assert list(batches) == [0, 0, 0]
    first = dataset[0]["image"]
    assert list(dataset.cache) == [0] and torch.equal(dataset[0]["image"], first)
