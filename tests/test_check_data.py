"""segdec.data.check: ``segdec check-data`` and the check train runs before its first epoch:
every problem at once."""

from __future__ import annotations

import logging
import shutil

import pandas as pd
import pytest

from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.catalogue import load_samples
from segdec.data.check import check_samples
from segdec.data.folder import read_folder
from segdec.demo import demo_config
from segdec.errors import DataError
from segdec.train import train
from tests.layouts import DEFECT, camera_image, image, mask, write_layout


def test_a_good_folder_is_summarised(tmp_path, capsys):
    write_layout("masks-beside", tmp_path)
    image(tmp_path / "item1" / "colour.png", colour=True)
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "12 images checked, 0 with problems" in out
    assert "image sizes (W x H): 1 distinct; most common 24x40 (12)" in out
    assert "mask coverage of defective images: median 5.21%" in out  # 50 of 960 pixels
    assert "grey 11, colour 1" in out
    assert "bit depth: 8 (12 images)\n  a run reads them at bit_depth 8 (the deepest" in out
    assert "warnings:" not in out


def test_bit_depths_are_reported_with_the_one_a_run_would_use(tmp_path, capsys):
    """Mixed depths no longer warn (one run, one depth); an image deeper than a configured
    bit_depth is a problem, as it is for train."""
    write_layout("images-masks", tmp_path)
    camera_image(tmp_path / "images" / "c.png")  # 16-bit PNG of 12-bit values, labelled 1
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("bit depth: 8 (3 images), 12 (1 image)\n  a run scales grey images deeper than 8 "
            "bits by bit_depth 12 (the deepest here; a run takes its training images' deepest "
            "unless set)\n") in out
    assert "warnings:" not in out
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path),
                 "--bit-depth", "10"]) == 2
    out = capsys.readouterr().out
    assert "reads them at bit_depth 10 (set in the configuration)" in out
    assert (f"c.png: image {tmp_path / 'images' / 'c.png'} holds pixel values up to 4095, deeper "
            "than the run's bit_depth 10 (0-1023)") in out


def test_bad_folders_give_every_problem_and_a_nonzero_exit(tmp_path, capsys):
    write_layout("images-masks", tmp_path)
    (tmp_path / "images" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # label only
    (tmp_path / "images" / "d.png").write_bytes(b"")
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "4 images checked, 2 with problems" in out
    assert "c.png: cannot read image" in out and "d.png: cannot read image" in out
    mask(tmp_path / "masks" / "a.png", shape=(20, 20))  # a reader error: named, exit 2
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path)]) == 2
    assert "is 20x20 but its image is 24x40" in capsys.readouterr().err


def test_every_problem_of_a_folder_listing_is_reported_at_once(tmp_path, capsys):
    """The folder reader stopped at the first problem, so each rerun of check-data found one."""
    write_layout("images-masks", tmp_path)
    (tmp_path / "labels.csv").write_text("image,label\nc.png,yes\n")  # and d.png loses its row
    mask(tmp_path / "masks" / "a.png", shape=(20, 20))
    mask(tmp_path / "masks" / "zz.png")
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"4 problem(s) in {tmp_path}:\n" in err
    for problem in (f"mask {tmp_path / 'masks' / 'a.png'} is 20x20 but its image is 24x40",
                    f"mask {tmp_path / 'masks' / 'zz.png'} has no image zz.* in",
                    f"{tmp_path / 'labels.csv'} row 2: label 'yes' must be 0 (good) or 1",
                    f"{tmp_path / 'images' / 'd.png'} has neither a mask in"):
        assert f"\n  {problem}" in err
    with pytest.raises(DataError, match=r"4 problem\(s\)"):  # what training gets
        load_samples(RunConfig(dataset="folder", data_root=str(tmp_path)))


def test_an_rle_run_past_the_end_is_found_with_its_row(tiny_severstal, tmp_path):
    data = tmp_path / "severstal"
    shutil.copytree(tiny_severstal, data)
    table = pd.read_csv(data / "train.csv")
    table.loc[0, "EncodedPixels"] = "8190 10"  # runs past the end of a 128x64 image
    table.to_csv(data / "train.csv", index=False)
    check = check_samples(load_samples(demo_config(tmp_path, data_root=str(data))))
    assert len(check.problems) == 1
    assert f"{table.ImageId[0]}: " in check.problems[0] and "row 2" in check.problems[0]


@pytest.mark.slow
def test_train_lists_all_bad_images_before_the_first_epoch(tiny_severstal, tmp_path):
    data = tmp_path / "severstal"
    shutil.copytree(tiny_severstal, data)
    broken = sorted((data / "train_images").iterdir())[:2]
    for path in broken:
        path.write_bytes(path.read_bytes()[:100])  # truncated
    run = tmp_path / "run"
    with pytest.raises(DataError, match="2 problems in the 40 images of the split") as err:
        train(demo_config(tmp_path, data_root=str(data), epochs=1, out_dir=str(run)),
              progress=False)
    assert all(path.name in str(err.value) for path in broken)
    assert "start a new run" in str(err.value)
    assert not run.exists()  # nothing written


@pytest.mark.parametrize(("rows", "message"), [
    ("a.jpg,1,\n", r"row 2 \(a.jpg, class 1\) lists a defect without EncodedPixels"),
    ("a.jpg,0,1 3\n", r"row 2 \(a.jpg, class 0\): ClassId must be 1, 2, 3 or 4"),
    ("a.jpg,7,1 3\n", "class 7\\): ClassId must be 1, 2, 3 or 4"),
    ("a.jpg,-1,1 3\n", "class -1\\): ClassId must be 1, 2, 3 or 4"),
])
def test_severstal_rows_are_never_silently_relabelled(tmp_path, rows, message):
    from segdec.data.severstal import read_rle_rows

    csv = tmp_path / "train.csv"
    csv.write_text("ImageId,ClassId,EncodedPixels\n" + rows)
    with pytest.raises(DataError, match=message):
        read_rle_rows(csv)
    csv.write_text("")
    with pytest.raises(DataError, match="train.csv is empty; it needs the header"):
        read_rle_rows(csv)


def test_a_dark_colour_mask_is_a_defect(tmp_path):
    import numpy as np
    from PIL import Image

    from segdec.data.images import load_mask

    pixels = np.zeros((40, 24, 3), np.uint8)
    pixels[5, 6] = (0, 0, 1)  # grey conversion would round this to 0
    Image.fromarray(pixels).save(tmp_path / "m.png")
    mask = load_mask(tmp_path / "m.png", (40, 24))
    assert mask.sum() == 1 and mask[5, 6] == 1


def test_a_transparent_mask_background_is_not_a_defect(tmp_path):
    """Alpha was ignored: a white, fully transparent background made the whole image a defect."""
    import numpy as np

    from segdec.data.images import load_mask

    expected = np.zeros((40, 24), np.uint8)
    expected[DEFECT] = 1
    got = load_mask(mask(tmp_path / "m.png", background="transparent"), (40, 24))
    assert np.array_equal(got, expected)


def test_implausible_mask_coverage_is_warned_in_check_data_and_training(tmp_path, capsys,
                                                                        caplog):
    """A palette mask whose index 0 is white reads as defect everywhere but the defect."""
    write_layout("images-masks", tmp_path)
    mask(tmp_path / "masks" / "a.png", background="white-palette")  # 910 of 960 pixels
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    warning = (f"a.png: its mask ({tmp_path / 'masks' / 'a.png'}) marks 94.8% of the image as "
               "defect; a white or coloured background")
    assert f"warnings:\n  {warning}" in out
    caplog.clear()
    check = check_samples(read_folder(tmp_path))
    check.raise_for_problems()  # train's check before epoch 1
    assert len(check.warnings) == 1 and check.warnings[0].startswith(warning)
    assert caplog.record_tuples == [("segdec.data.check", logging.WARNING, check.warnings[0])]
    mask(tmp_path / "masks" / "a.png", background="transparent")
    assert main(["check-data", "--dataset", "folder", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "warnings:" not in out and "median 5.21%" in out


def test_messages_name_what_is_really_wrong(tmp_path):
    from segdec.data.dataset import Sample
    from segdec.data.severstal import read_rle_rows
    from segdec.data.splits import make_split

    csv = tmp_path / "train.csv"
    csv.write_text("Image,Class\na.jpg,1\n")
    with pytest.raises(DataError, match=r"has columns \['Image', 'Class'\]; expected"):
        read_rle_rows(csv)
    clean = [Sample(f"{i}.png", f"{i}.png", 0) for i in range(20)]
    with pytest.raises(DataError, match="the data hold no defective images for the test split"):
        make_split(clean, None, None)


def test_the_check_opens_each_image_and_mask_once(monkeypatch, tmp_path):
    from collections import Counter

    from PIL import Image

    write_layout("images-masks", tmp_path)
    samples = read_folder(tmp_path)  # which reads each mask (and the image's header) for labels
    opened, open_image = Counter(), Image.open

    def counted(path, *args, **kwargs):
        opened[str(path)] += 1
        return open_image(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counted)
    check = check_samples(samples)
    files = {s.image for s in samples} | {s.mask_path for s in samples if s.mask_path}
    assert len(check.images) == len(samples) and set(opened) == files
    assert set(opened.values()) == {1}
