"""segdec.data.ksdd, dagm, ksdd2 and folder readers (via segdec.data.catalogue and splits):
fixed test sets and whole-item splits."""

import logging
from pathlib import Path

import pandas as pd
import pytest

from segdec.cli import main
from segdec.config import RunConfig
from segdec.data import Sample, make_split
from segdec.data.bozic import bozic_split, severstal_split
from segdec.data.catalogue import load_samples
from segdec.data.dagm import read_dagm
from segdec.data.folder import detect_layout, read_folder
from segdec.data.ksdd import ksdd_folds, read_ksdd
from segdec.data.ksdd2 import read_ksdd2
from segdec.data.prepare import common_size, input_size, prepare_data, size_spread_warning
from segdec.data.splits import subset
from segdec.errors import DataError
from tests.helpers import shared_path
from tests.layouts import image, mask, write_layout


# ---- KolektorSDD ---------------------------------------------------------------------------------
@pytest.fixture
def small_ksdd(tmp_path) -> Path:
    """6 items of 3 parts; part 0 of every item is defective; .bmp masks as in the original."""
    for item in range(1, 7):
        for part in range(3):
            image(tmp_path / f"kos{item:02d}" / f"Part{part}.jpg")
            mask(tmp_path / f"kos{item:02d}" / f"Part{part}_label.bmp", defect=part == 0)
    return tmp_path


def test_ksdd_folds_keep_items_whole(small_ksdd):
    samples = read_ksdd(small_ksdd, fold=1)
    assert len(samples) == 18 and sum(s.label for s in samples) == 6
    assert {s.group for s in samples if s.fixed_subset == "test"} == {"kos02", "kos05"}
    assert samples[0].name == "kos01/Part0.jpg" and samples[0].mask_path.endswith(".bmp")
    folds = ksdd_folds([f"kos{i:02d}" for i in range(1, 7)])
    assert sorted(sum(folds, [])) == [f"kos{i:02d}" for i in range(1, 7)]
    split = make_split(samples, None, None, seed=0, n_val=3)
    group = {s.name: s.group for s in samples}
    items = {part: set(split.query(f"subset == '{part}'").image.map(group)) for part in
             ("train", "val", "test")}
    assert items["test"] == {"kos02", "kos05"}
    assert not items["train"] & items["val"] and not items["train"] & items["test"]
    assert len(items["val"]) == 1  # one whole item: 1 positive and 2 negatives


def test_ksdd_bad_input_is_named(small_ksdd):
    with pytest.raises(DataError, match="fold=3, but KolektorSDD has folds 0, 1 and 2"):
        read_ksdd(small_ksdd, fold=3)
    (small_ksdd / "kos03" / "Part1_label.bmp").unlink()
    with pytest.raises(DataError, match=r"kos03/Part1.jpg has no mask Part1_label.bmp or .png"):
        read_ksdd(small_ksdd)
    mask(small_ksdd / "kos03" / "Part1_label.png", shape=(20, 24))
    with pytest.raises(DataError, match="Part1_label.png is 24x20 but its image is 24x40"):
        read_ksdd(small_ksdd)
    mask(small_ksdd / "kos03" / "Part1_label.png")
    (small_ksdd / "kos04" / "Part2.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match="cannot read image .*kos04/Part2.jpg"):
        read_ksdd(small_ksdd)
    with pytest.raises(DataError, match="does not exist"):
        read_ksdd(small_ksdd / "nowhere")


def test_real_ksdd_reads_every_item():
    samples = read_ksdd(shared_path("ksdd"), fold=0)
    assert len(samples) == 399 and sum(s.label for s in samples) == 52
    assert len({s.group for s in samples}) == 50
    test = [s for s in samples if s.fixed_subset == "test"]
    assert {s.group for s in test} == set(ksdd_folds(sorted({s.group for s in samples}))[0])
    assert sum(s.label for s in test) == 17


# ---- Božič's published splits (segdec.data.bozic) -----------------------------------------------
def _small_folds(path: Path) -> Path:
    """Božič's ksdd_folds.csv layout for small_ksdd: fold 0 tests kos01-kos02, (33, 1) segments
    kos04 and (33, 0) none."""
    rows = [(33, n_seg, 0, f"kos{item:02d}", "test" if item <= 2 else "train",
             int(n_seg == 33 or (n_seg == 1 and item == 4) or item <= 2))
            for n_seg in (0, 1, 33) for item in range(1, 7)]
    pd.DataFrame(rows, columns=["n_positive", "n_segmented", "fold", "item", "split",
                                "segmented"]).to_csv(path / "ksdd_folds.csv", index=False)
    return path


def test_bozic_ksdd_fold_takes_his_items_and_his_segmented_items(small_ksdd, tmp_path):
    folds = _small_folds(tmp_path)
    samples = read_ksdd(small_ksdd, fold=0)
    split = bozic_split("ksdd", samples, folds, fold=0, n_all=None, n_seg=1, n_val=0)
    assert split.groupby("subset")["image"].apply(list).to_dict() == {
        "test": [f"kos0{i}/Part{p}.jpg" for i in (1, 2) for p in range(3)],
        "val": [f"kos0{i}/Part{p}.jpg" for i in (1, 2) for p in range(3)],
        "train": [f"kos0{i}/Part{p}.jpg" for i in range(3, 7) for p in range(3)]}
    train = split[split["subset"] == "train"]
    assert train.loc[train["label"] == 1, "has_pixel_label"].tolist() == [False, True, False,
                                                                         False]
    assert train.loc[train["label"] == 0, "has_pixel_label"].all()
    for n_seg, labelled in ((0, 0), (None, 4)):
        split = bozic_split("ksdd", samples, folds, fold=0, n_all=None, n_seg=n_seg, n_val=0)
        train = split[(split["subset"] == "train") & (split["label"] == 1)]
        assert int(train["has_pixel_label"].sum()) == labelled


def test_bozic_splits_name_what_is_wrong(small_ksdd, tmp_path):
    samples = read_ksdd(small_ksdd, fold=0)
    folds = _small_folds(tmp_path)
    cases = [({"n_seg": 7}, r"no split for n_seg=7 items in fold 0; Božič published "
              r"n_positive/n_segmented/fold = 33/0/0, 33/1/0, 33/33/0"),
             ({"n_val": None}, r"set n_val: 0"),
             ({"n_all": 3}, r"set n_all: null"),
             ({"fold": 1}, r"no split for n_seg=1 items in fold 1")]
    for change, message in cases:
        arguments = {"fold": 0, "n_all": None, "n_seg": 1, "n_val": 0, **change}
        with pytest.raises(DataError, match=message):
            bozic_split("ksdd", samples, folds, **arguments)
    with pytest.raises(DataError, match=r"nowhere/ksdd_folds.csv does not exist.*splits_root"):
        bozic_split("ksdd", samples, tmp_path / "nowhere", fold=0, n_all=None, n_seg=1, n_val=0)
    with pytest.raises(DataError, match="KolektorSDD and Severstal only, not dagm"):
        bozic_split("dagm", samples, folds, fold=0, n_all=None, n_seg=1, n_val=0)
    with pytest.raises(ValueError, match="split_csv=s.csv and splits=bozic both"):
        RunConfig(dataset="ksdd", splits="bozic", split_csv="s.csv")


def test_real_ksdd_prepared_on_bozic_folds_is_his_csv():
    """The prepared split of every fold and mode is Božič's: his test and training items, his
    segmented items (kos38 and kos39 bring two defective images each)."""
    folds = pd.read_csv(shared_path("bozic_splits", "ksdd_folds.csv"))
    counts = []
    for fold in range(3):
        for n_seg in (0, 5, None):
            config = RunConfig(dataset="ksdd", data_root=str(shared_path("ksdd")), splits="bozic",
                               splits_root=str(shared_path("bozic_splits")), fold=fold,
                               n_all=None, n_seg=n_seg, n_val=0, input_height=264,
                               input_width=96)
            _, data = prepare_data(config)
            split = data.split.assign(item=data.split["image"].str.split("/").str[0])
            his = folds[(folds["n_positive"] == 33) & (folds["fold"] == fold)
                        & (folds["n_segmented"] == (33 if n_seg is None else n_seg))]
            for part in ("train", "test"):
                assert set(split.loc[split["subset"] == part, "item"]) == set(
                    his.loc[his["split"] == part, "item"])
            train = split[(split["subset"] == "train") & (split["label"] == 1)]
            assert set(train.loc[train["has_pixel_label"], "item"]) == set(
                his.loc[(his["split"] == "train") & (his["segmented"] == 1), "item"])
            counts.append((len(train), int(train["has_pixel_label"].sum()),
                           int((split["subset"] == "test").sum())))
    assert counts == [(34, 0, 135), (34, 5, 135), (34, 34, 135),
                      (34, 0, 136), (34, 6, 136), (34, 34, 136),
                      (36, 0, 128), (36, 6, 128), (36, 36, 128)]


def test_bozic_severstal_split_is_his_image_list():
    """Every Severstal setting's train, validation and test images and pixel labels are his
    (the images stand in as samples: the full training set is not at hand here)."""
    table = pd.read_csv(shared_path("bozic_splits", "severstal_splits.csv.gz"),
                        dtype={"image_id": str})
    weak = table[(table["n_all"] == 300) & (table["n_segmented"] == 0)]
    positives = set(weak.loc[(weak["split"] == "train") & (weak["segmented"] == 0), "image_id"])
    samples = [Sample(name=f"{image}.jpg", image="", label=int(image in positives))
               for image in weak["image_id"]]
    split = severstal_split(samples, shared_path("bozic_splits", "severstal_splits.csv.gz"),
                            n_all=300, n_seg=10)
    his = table[(table["n_all"] == 300) & (table["n_segmented"] == 10)]
    renamed = {"train": "train", "validation": "val", "test": "test"}
    ours = zip(split["image"], split["subset"], split["has_pixel_label"], strict=True)
    his_rows = zip(his["image_id"], his["split"], his["segmented"], strict=True)
    assert sorted(ours) == sorted((f"{i}.jpg", renamed[s], bool(g)) for i, s, g in his_rows)
    assert split["subset"].value_counts().to_dict() == {"train": 4443, "test": 2400, "val": 1118}
    train = split[split["subset"] == "train"]
    assert (int(train["label"].sum()), int(train.loc[train["label"] == 1,
                                                      "has_pixel_label"].sum())) == (300, 10)
    with pytest.raises(DataError, match=r"names 8 images that the Severstal folder lacks"):
        severstal_split(samples[8:], shared_path("bozic_splits", "severstal_splits.csv.gz"),
                        n_all=300, n_seg=10)
    with pytest.raises(DataError, match=r"no split for n_all=300, n_seg=20"):
        severstal_split(samples, shared_path("bozic_splits", "severstal_splits.csv.gz"),
                        n_all=300, n_seg=20)


def test_ksdd_defaults_to_bozic_size(small_ksdd):
    config = RunConfig(dataset="ksdd", data_root=str(small_ksdd))
    assert input_size(config, [str(small_ksdd / "kos01" / "Part0.jpg")]) == (1408, 512)
    assert input_size(config.replace(input_width=64), []) == (1408, 64)


# ---- DAGM ----------------------------------------------------------------------------------------
def _dagm_split(folder: Path, ids: range, defective: set[int]) -> None:
    rows = [str(len(ids))]
    for i in ids:
        image(folder / f"{i:04d}.PNG", shape=(32, 32))
        if i in defective:
            mask(folder / "Label" / f"{i:04d}_label.PNG", shape=(32, 32))
            rows.append(f"{i:04d}\t1\t{i:04d}.PNG\t0\t{i:04d}_label.PNG")
        else:
            rows.append(f"{i:04d}\t0\t{i:04d}.PNG\t0\t0\t")
    (folder / "Label" / "Labels.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "Label" / "Labels.txt").write_bytes(("\r\n".join(rows) + "\r\n").encode())


@pytest.fixture
def small_dagm(tmp_path) -> Path:
    _dagm_split(tmp_path / "Class3" / "Train", range(1, 9), {2, 5})
    _dagm_split(tmp_path / "Class3" / "Test", range(9, 17), {9, 12, 15})
    return tmp_path


def test_dagm_train_and_test_folders(small_dagm):
    samples = read_dagm(small_dagm, dataset_class=3)
    assert len(samples) == 16 and sum(s.label for s in samples) == 5
    assert {s.name for s in samples if s.fixed_subset == "test"} == {
        f"Test/{i:04d}.PNG" for i in range(9, 17)}
    split = make_split(samples, None, None, n_val=0)
    assert set(split.query("subset == 'test'").image) == {f"Test/{i:04d}.PNG" for i in
                                                          range(9, 17)}
    assert split.query("subset == 'val'").image.tolist() == split.query(
        "subset == 'test'").image.tolist()  # n_val=0: validate on the test set, as Božič
    with pytest.raises(DataError, match=r"Class1 does not exist \(found: Class3\)"):
        read_dagm(small_dagm, dataset_class=1)


def test_dagm_bad_labels_are_named(small_dagm):
    train = small_dagm / "Class3" / "Train"
    (train / "Label" / "0005_label.PNG").unlink()
    with pytest.raises(DataError, match=r"Labels.txt line 6 marks 0005.PNG defective but its mask"):
        read_dagm(small_dagm, 3)
    mask(train / "Label" / "0005_label.PNG", shape=(32, 32), defect=False)
    with pytest.raises(DataError, match=r"line 6 marks 0005.PNG defective but its mask .* empty"):
        read_dagm(small_dagm, 3)
    mask(train / "Label" / "0005_label.PNG", shape=(32, 32))
    (train / "0003.PNG").unlink()
    with pytest.raises(DataError, match=r"Labels.txt line 4 names 0003.PNG, which is not in"):
        read_dagm(small_dagm, 3)
    image(train / "0003.PNG", shape=(32, 32))
    image(train / "0099.PNG", shape=(32, 32))
    with pytest.raises(DataError, match=r"Labels.txt has no row for 0099.PNG"):
        read_dagm(small_dagm, 3)


def test_real_dagm_class1_loads_with_its_labels():
    samples = read_dagm(shared_path("dagm"), dataset_class=1)
    assert len(samples) == 142 and sum(s.label for s in samples) == 71
    assert all(s.name.startswith("Test/") and not s.fixed_subset for s in samples)
    positive = next(s for s in samples if s.name == "Test/0002.PNG")
    assert positive.label == 1 and positive.mask((512, 512)).any()
    split = make_split(samples, None, None, seed=0)  # only Test/ here: a seeded split of it
    assert split.equals(make_split(samples, None, None, seed=0))
    assert set(split.subset) == {"train", "val", "test"}


# ---- KolektorSDD2 --------------------------------------------------------------------------------
def test_ksdd2_colour_ground_truth(tmp_path):
    for folder, ids in (("train", (10000, 10001, 10002)), ("test", (20000, 20001))):
        for i in ids:
            image(tmp_path / folder / f"{i}.png", colour=True)
            mask(tmp_path / folder / f"{i}_GT.png", defect=i % 2 == 0, colour=True)
    samples = read_ksdd2(tmp_path)
    assert [s.name for s in samples if s.label] == ["train/10000.png", "train/10002.png",
                                                    "test/20000.png"]
    assert {s.fixed_subset for s in samples if s.name.startswith("test/")} == {"test"}
    assert samples[0].mask((40, 24)).sum() == 50
    (tmp_path / "test" / "20001_GT.png").unlink()
    with pytest.raises(DataError, match="20001.png has no ground truth 20001_GT.png"):
        read_ksdd2(tmp_path)
    with pytest.raises(DataError, match="neither a train nor a test folder"):
        read_ksdd2(tmp_path / "test")


# ---- folder --------------------------------------------------------------------------------------
@pytest.fixture
def own_images(tmp_path) -> Path:
    for name in ("a.png", "b.jpg", "c.png", "d.png", "e.png"):
        image(tmp_path / "images" / name)
    mask(tmp_path / "masks" / "a.png")
    mask(tmp_path / "masks" / "b.png", defect=False)
    (tmp_path / "labels.csv").write_text("image,label\nc.png,1\nd.png,0\ne.png,0\n")
    return tmp_path


def test_folder_labels_from_csv_or_mask(own_images):
    samples = {s.name: s for s in read_folder(own_images)}
    assert {n: s.label for n, s in samples.items()} == {"a.png": 1, "b.jpg": 0, "c.png": 1,
                                                        "d.png": 0, "e.png": 0}
    assert samples["a.png"].has_mask and not samples["c.png"].has_mask
    config = RunConfig(dataset="folder", data_root=str(own_images))
    assert [s.name for s in load_samples(config)] == sorted(samples)


def test_folder_bad_input_is_named(own_images):
    (own_images / "labels.csv").write_text("image,label\nc.png,1\nd.png,0\n")
    with pytest.raises(DataError, match=r"e.png has neither a mask in .*masks nor a row in"):
        read_folder(own_images)
    (own_images / "labels.csv").write_text("image,label\nc.png,1\nd.png,0\ne.png,0\na.png,0\n")
    with pytest.raises(DataError, match=r"labels.csv row 5 labels a.png 0 but its mask .*a.png "
                                        "has defect pixels"):
        read_folder(own_images)
    (own_images / "labels.csv").write_text("image,label\nc.png,yes\n")
    with pytest.raises(DataError, match=r"row 2: label 'yes' must be 0 \(good\) or 1"):
        read_folder(own_images)
    (own_images / "labels.csv").write_text("image,label\nz.png,1\nimages/e.png,0\n")
    with pytest.raises(DataError, match=r"row 2 names 'z.png', which is no image of the dataset; "
                                        r"write the file name of an image in .*images, such as "
                                        r"'a.png'\n.*row 3 names 'images/e.png', which is no "
                                        r"image of the dataset; .* \('e.png'\?\)"):
        read_folder(own_images)
    (own_images / "labels.csv").write_text("image,label\nc.png,1\n\nd.png,0\ne.png,0\na.png,0\n")
    with pytest.raises(DataError, match=r"labels.csv row 6 labels a.png 0"):  # its line, 6
        read_folder(own_images)
    mask(own_images / "masks" / "zz.png")
    with pytest.raises(DataError, match=r"mask .*zz.png has no image zz"):
        read_folder(own_images)
    with pytest.raises(DataError, match="masks is in none of the folder layouts segdec reads:"
                                        r"\n  images-masks: images/"):
        read_folder(own_images / "masks")
    (own_images / "masks" / "zz.png").unlink()
    image(own_images / "images" / "a.jpg")
    with pytest.raises(DataError, match=r"images/a.jpg and .*images/a.png share the stem a; "
                                        "masks are matched by stem, so rename all but one"):
        read_folder(own_images)


def test_positives_without_masks_are_never_pixel_labelled():
    masked = [Sample(f"m{i}", "", 1, mask_path="x") for i in range(20)]
    weak = [Sample(f"w{i}", "", 1) for i in range(20)]
    negatives = [Sample(f"n{i}", "", 0) for i in range(40)]
    split = make_split(masked + weak + negatives, None, None, n_test=10, n_val=10)
    train = split.query("subset == 'train' and label == 1")
    assert set(train.query("has_pixel_label").image) == {n for n in train.image if n[0] == "m"}
    with pytest.raises(DataError, match="n_seg=30 exceeds the .* training positives with masks"):
        make_split(masked + weak + negatives, None, 30, n_test=10, n_val=10)


# ---- splits with fixed test sets and groups ------------------------------------------------------
def _grouped(n_items: int, fixed_test: set[int] = frozenset()) -> list[Sample]:
    """Items of 5 images, the first of each defective."""
    return [
        Sample(f"i{item:02d}/p{part}", "", int(part == 0), mask_path="m", group=f"i{item:02d}",
               fixed_subset="test" if item in fixed_test else "train")
        for item in range(n_items) for part in range(5)
    ]


def test_fixed_test_set_is_used_and_subsampled():
    samples = _grouped(30, fixed_test={0, 1, 2, 3, 4, 5})
    whole = make_split(samples, None, None, seed=3)
    assert set(whole.query("subset == 'test'").image) == {
        s.name for s in samples if s.fixed_subset == "test"}
    few = make_split(samples, None, None, seed=3, n_test=10)
    test = few.query("subset == 'test'")
    assert len(test) == 10 and test.label.sum() == 2
    assert not set(few.query("subset != 'test'").image) & {
        s.name for s in samples if s.fixed_subset == "test"}  # unused test images stay unused
    with pytest.raises(DataError, match="n_test=31 asks for more images than the data hold"):
        make_split(samples, None, None, n_test=31)


def test_whole_groups_that_cannot_fit_are_reported():
    with pytest.raises(DataError, match="no whole items fit a validation split of 3 images"):
        make_split(_grouped(30, fixed_test={0, 1}), None, None, n_val=3)


def test_empty_subset_is_reported():
    split = pd.DataFrame({"image": ["a"], "subset": ["train"], "label": [1],
                          "has_pixel_label": [True]})
    with pytest.raises(DataError, match="the val split is empty"):
        subset(split, [Sample("a", "", 1)], "val")


# ---- segdec split --------------------------------------------------------------------------------
def test_split_cli_writes_a_reusable_csv(tiny_severstal, tmp_path, capsys):
    out = tmp_path / "split.csv"
    args = ["split", "--data-root", str(tiny_severstal), "--n-all", "6", "--n-seg", "2",
            "--seed", "4", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "pixel_labelled" in printed and f"--split-csv {out}" in printed
    split = pd.read_csv(out)
    assert len(split.query("subset == 'train' and label == 1")) == 6
    assert split.query("subset == 'train' and label == 1").has_pixel_label.sum() == 2
    assert main(args[:-1] + [str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_text() == out.read_text()  # deterministic
    assert main(["split", "--data-root", str(tiny_severstal), "--n-all", "500", "--out",
                 str(tmp_path / "x.csv")]) == 2
    assert "n_all=500 asks for more training positives" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


# ---- the layouts engineers already have ------------------------------------------------------
@pytest.mark.parametrize("layout", ["images-masks", "mvtec", "class-folders", "masks-beside"])
def test_every_folder_layout_is_read_back(layout, tmp_path):
    expected = write_layout(layout, tmp_path)
    assert detect_layout(tmp_path) == layout
    samples = {s.name: s for s in read_folder(tmp_path)}
    assert {name: (s.label, s.has_mask) for name, s in samples.items()} == expected
    assert all(Path(s.image).is_file() for s in samples.values())  # read in place, not copied


def test_masks_beside_keep_an_item_together_and_read_ksdd():
    ksdd = read_folder(shared_path("ksdd"))
    assert (len(ksdd), sum(s.label for s in ksdd)) == (399, 52)
    assert {s.group for s in ksdd if s.name.startswith("kos07/")} == {"kos07"}


def test_subfolders_are_whole_items_only_when_small(tmp_path):
    """Twenty parts of two images each stay whole; one folder of forty (a lot, DAGM's Test/) is
    split image by image, since one item that large could not be dealt out."""
    for part in range(20):
        for view in range(2):
            image(tmp_path / "parts" / f"part{part:02d}" / f"v{view}.png")
            image(tmp_path / "lot" / "all" / f"p{part:02d}v{view}.png")
    mask(tmp_path / "parts" / "part00" / "v0_mask.png")
    mask(tmp_path / "lot" / "all" / "p00v0_mask.png")
    assert len({s.group for s in read_folder(tmp_path / "parts")}) == 20
    assert {s.group for s in read_folder(tmp_path / "lot")} == {""}
    dagm = read_folder(shared_path("dagm") / "Class1")  # the Test/ folder inside
    split = make_split(dagm, None, None)
    assert split["subset"].value_counts().to_dict() == {"train": 102, "test": 27, "val": 13}


def test_masks_in_a_label_folder_beside_the_images_read_dagm():
    dagm = read_folder(shared_path("dagm") / "Class1" / "Test")
    assert (len(dagm), sum(s.label for s in dagm), sum(s.has_mask for s in dagm)) == (142, 71, 71)
    assert {s.group for s in dagm} == {""}


def test_folder_layouts_refuse_what_they_cannot_read(tmp_path):
    image(tmp_path / "x" / "a.png")
    with pytest.raises(DataError, match="none of the folder layouts segdec reads"):
        read_folder(tmp_path)
    write_layout("class-folders", tmp_path / "classes")
    mask(tmp_path / "classes" / "masks" / "good" / "g0.jpg")  # a defect in a good image
    with pytest.raises(DataError, match=r"g0.jpg is in a good folder but its mask .* has "
                                        "defect pixels"):
        read_folder(tmp_path / "classes")
    write_layout("masks-beside", tmp_path / "beside")
    mask(tmp_path / "beside" / "item1" / "lost_mask.png")
    with pytest.raises(DataError, match=r"lost_mask.png has no image lost\.\* beside it"):
        read_folder(tmp_path / "beside")
    (tmp_path / "beside" / "item1" / "lost_mask.png").unlink()
    mask(tmp_path / "beside" / "dagm" / "Label" / "0003_label.PNG")
    with pytest.raises(DataError, match=r"0003_label.PNG has no image 0003\.\* beside it \(or, "
                                        r"in a Label/ folder, beside that folder\)"):
        read_folder(tmp_path / "beside")


def test_masks_beside_named_by_no_rule_are_warned_about(tmp_path, caplog):
    """img3-mask.png (a dash) became one more clean image, and img3 lost its defect, silently."""
    caplog.set_level(logging.INFO, logger="segdec")
    write_layout("masks-beside", tmp_path)
    image(tmp_path / "item1" / "p3.png")
    mask(tmp_path / "item1" / "p3-mask.png")
    mask(tmp_path / "item2" / "p0 GT.png")
    image(tmp_path / "item2" / "budget_01.png")  # not a mask word: no warning
    samples = {s.name for s in read_folder(tmp_path)}
    assert {"item1/p3-mask.png", "item2/p0 GT.png", "item2/budget_01.png"} <= samples
    assert caplog.record_tuples == [
        ("segdec.data.folder", logging.WARNING,
         f"{tmp_path / name} looks like a mask but matches no mask rule, so it is read as an image "
         "(label 0); in the masks-beside layout masks are images in nested folders, masks beside "
         "them (or in Label/ beside them) as <stem>_mask|_GT|_label.*: rename it")
        for name in ("item1/p3-mask.png", "item2/p0 GT.png")]  # budget_01: no warning


@pytest.mark.parametrize("layout", ["images-masks", "masks-beside"])
def test_macos_resource_forks_are_skipped_with_a_warning(layout, tmp_path, caplog):
    expected = write_layout(layout, tmp_path)
    first = tmp_path / ("images" if layout == "images-masks" else "item1")
    forks = [first / "._a.png", first / "._p0.png", tmp_path / "._x.jpg"]
    for fork in forks:
        fork.write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    assert {s.name for s in read_folder(tmp_path)} == set(expected)
    assert caplog.record_tuples == [("segdec.data.folder", logging.WARNING, (
        f"skipped 3 macOS resource-fork file(s) (._*, not images): "
        f"{', '.join(str(p) for p in sorted(forks))}; delete them (dot_clean, or find . -name "
        "'._*' -delete)"))]


def test_masks_beside_labels_name_relative_paths(tmp_path):
    """A bare file name was answered with "not in images/", a folder this layout does not have."""
    write_layout("masks-beside", tmp_path)
    (tmp_path / "labels.csv").write_text("image,label\np2.png,1\nitem1/p2.png,1\n")
    with pytest.raises(DataError, match=r"1 problem\(s\) in .*\n  .*labels.csv row 2 names "
                                        r"'p2.png', which is no image of the dataset; write the "
                                        r"image's path relative to .*, such as 'a/b/item3/p0.png' "
                                        r"\('a/b/item3/p2.png' or 'item1/p2.png' or "
                                        r"'item2/p2.png'\?\)$"):
        read_folder(tmp_path)


def test_varied_sizes_get_the_median_aspect_at_the_median_area(tmp_path, caplog):
    assert common_size([(256, 1600)] * 3) == ((256, 1600), "every image is 1600x256")
    shapes = [(248, 122), (300, 200), (380, 602), (320, 240), (300, 300)]
    (height, width), why = common_size(shapes)
    # H/W: 2.03, 1.5, 0.63, 1.33, 1.0 -> median 1.33; areas -> median 76800 = 320 x 240
    assert (height, width) == (320, 240) and "median aspect ratio (H/W 1.33)" in why
    assert "spread widely" in size_spread_warning(shapes)
    assert size_spread_warning([(100, 100), (110, 100)]) is None
    for i, (h, w) in enumerate(shapes):
        image(tmp_path / "images" / f"{i}.png", shape=(h, w))
    (tmp_path / "labels.csv").write_text("image,label\n" + "".join(
        f"{i}.png,{i % 2}\n" for i in range(5)))
    config = RunConfig(dataset="folder", data_root=str(tmp_path))
    caplog.set_level(logging.INFO, logger="segdec")
    assert input_size(config, [str(p) for p in sorted((tmp_path / "images").iterdir())]) == (
        320, 240)
    assert caplog.record_tuples == [
        ("segdec.data.prepare", logging.INFO, f"input size 240x320 (W x H): {why}; set "
                                              "input_width and input_height to choose another"),
        ("segdec.data.prepare", logging.WARNING, size_spread_warning(shapes))]
