"""segdec.data.download: ``segdec download`` against local archives (file:// URLs) and a
stand-in Kaggle API; no network."""

import contextlib
import hashlib
import http.client
import io
import json
import logging
import os
import re
import socket
import urllib.request
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from segdec.cli import main
from segdec.config import RunConfig
from segdec.data.catalogue import load_samples
from segdec.data.download import (
    CREDENTIALS_HELP,
    MARKER,
    SOURCES,
    DownloadError,
    download,
    extract_safely,
    fetch_from_kaggle,
    kaggle_api,
)
from tests.helpers import shared_path
from tests.layouts import mask, write_layout

SMALL = {"expected_images": 40, "expected_shape": (64, 128)}


def _zip(tree: Path, path: Path, extra: dict[str, bytes] | None = None, prefix: str = "") -> Path:
    """``tree`` zipped, each name after ``prefix`` (a wrapping folder), plus ``extra`` entries."""
    with zipfile.ZipFile(path, "w") as zipped:
        for file in sorted(tree.rglob("*")):
            if file.is_file():
                zipped.write(file, prefix + file.relative_to(tree).as_posix())
        for name, data in (extra or {}).items():
            zipped.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def good_zip(tiny_severstal, tmp_path_factory) -> Path:
    return _zip(tiny_severstal, tmp_path_factory.mktemp("zips") / "severstal.zip")


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """The real kaggle package, offline, with an empty home: no variable, token or kaggle.json."""
    for name in [name for name in os.environ if name.startswith("KAGGLE_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))

    def offline(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", offline)
    with contextlib.redirect_stdout(io.StringIO()):  # importing kaggle looks for credentials
        from kaggle.api.kaggle_api_extended import KaggleApi
    # kaggle fixes its kaggle.json path when first imported; point it into the empty home
    monkeypatch.setattr(KaggleApi, "config", str(home / ".kaggle" / "kaggle.json"))


def _left_behind(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_good_archive_is_verified_and_not_fetched_again(good_zip, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="segdec")
    dest = download("severstal", tmp_path / "severstal", archive=good_zip, **SMALL)
    marker = json.loads((dest / MARKER).read_text())
    assert marker["images"] == 40 and marker["defective"] == 20
    assert marker["image_shape"] == [64, 128]
    assert len(list((dest / "train_images").iterdir())) == 40
    assert _left_behind(tmp_path) == []
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"PK not a zip")
    download("severstal", dest, archive=damaged, **SMALL)  # verified: the archive is not opened
    assert caplog.messages == [f"verified 40 images (20 defective) in {dest}",
                               f"{dest} already holds the verified dataset ({MARKER}); nothing "
                               "to do"]


def test_truncated_archive_leaves_nothing(good_zip, tmp_path):
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good_zip.read_bytes()[: good_zip.stat().st_size // 2])
    with pytest.raises(DownloadError, match=r"truncated.zip is damaged .*download again"):
        download("severstal", tmp_path / "severstal", archive=truncated, **SMALL)
    assert not (tmp_path / "severstal").exists() and _left_behind(tmp_path) == []


@pytest.mark.parametrize("entry", ["../escaped.txt", "/tmp/absolute.txt", "a/../../up.txt"])
def test_entries_outside_the_destination_are_refused(tiny_severstal, tmp_path, entry):
    evil = _zip(tiny_severstal, tmp_path / "evil.zip", {entry: b"gotcha"})
    with pytest.raises(DownloadError, match="holds an entry outside the destination"):
        download("severstal", tmp_path / "out" / "severstal", archive=evil, **SMALL)
    assert not (tmp_path / "out" / "severstal").exists()
    assert sorted(p.name for p in tmp_path.rglob("*.txt")) == []


def test_wrong_image_count_and_size_are_refused(good_zip, tmp_path, capsys):
    assert main(["download", "severstal", "--dest", str(tmp_path / "a"), "--zip",
                 str(good_zip)]) == 2
    assert ("expected 12568 training images in train_images/, found 40; the archive is "
            "incomplete") in capsys.readouterr().err
    with pytest.raises(DownloadError, match=r"is 128x64, not 1600x256"):
        download("severstal", tmp_path / "b", archive=good_zip, expected_images=40)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert _left_behind(tmp_path) == []


def test_archive_without_train_csv_is_refused(tiny_severstal, tmp_path):
    images_only = _zip(tiny_severstal / "train_images", tmp_path / "images.zip")
    with pytest.raises(DownloadError, match="holds no usable Severstal dataset: .*train_images"):
        download("severstal", tmp_path / "severstal", archive=images_only, **SMALL)


def test_unverified_destination_with_files_is_kept(good_zip, tmp_path):
    (tmp_path / "severstal").mkdir()
    (tmp_path / "severstal" / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="holds files but no verified dataset"):
        download("severstal", tmp_path / "severstal", archive=good_zip, **SMALL)
    assert (tmp_path / "severstal" / "notes.txt").read_text() == "mine"


def test_missing_credentials_are_explained_before_anything_is_written(no_credentials, tmp_path,
                                                                      capsys):
    with pytest.raises(DownloadError) as caught:
        download("severstal", tmp_path / "severstal")
    message = str(caught.value)
    for hint in ("kaggle.json", "KAGGLE_USERNAME and KAGGLE_KEY", "KAGGLE_API_TOKEN",
                 "accept the competition's rules", "403", "--zip"):
        assert hint in message
    assert not (tmp_path / "severstal").exists() and _left_behind(tmp_path) == []
    assert main(["download", "severstal", "--dest", str(tmp_path / "severstal")]) == 2
    out, err = capsys.readouterr()
    assert err == f"segdec download: error: {CREDENTIALS_HELP}\n"
    assert out == ""  # kaggle's own help, printed before it exits, is replaced by ours


def test_the_kaggle_package_finds_the_credentials_and_they_are_never_shown(
        no_credentials, monkeypatch, tmp_path, caplog):
    """kaggle's own authenticate, offline: a key in the environment or in kaggle.json."""
    caplog.set_level(logging.INFO, logger="segdec")
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    with pytest.raises(DownloadError, match="no Kaggle credentials found"):  # no key
        kaggle_api()
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-key")
    assert kaggle_api().config_values["key"] == "s3cr3t-key"
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    token = tmp_path / "home" / ".kaggle" / "kaggle.json"
    token.parent.mkdir(parents=True)
    token.write_text('{"username": "someone else", "key": "s3cr3t-key"}')
    token.chmod(0o644)
    assert kaggle_api().config_values["username"] == "someone else"
    assert caplog.messages == [
        "using the Kaggle credentials of someone",
        "kaggle: Warning: Your Kaggle API key is readable by other users on this system! To fix "
        f"this, you can run 'chmod 600 {token}'",
        "using the Kaggle credentials of someone else"]


class FakeKaggle:
    """Stands in for kaggle.KaggleApi: authenticates or exits, then 'downloads' or refuses."""

    def __init__(self, archive: Path | None = None, status: int | None = None,
                 authenticated: bool = True) -> None:
        self.archive, self.status, self.authenticated = archive, status, authenticated

    def authenticate(self) -> None:
        if not self.authenticated:
            raise SystemExit(1)
        self.config_values = {"username": "someone"}

    def competition_download_files(self, competition, path, quiet):
        assert competition == "severstal-steel-defect-detection" and not quiet
        if self.status:
            response = requests.Response()
            response.status_code = self.status
            raise requests.HTTPError(f"{self.status}", response=response)
        (Path(path) / f"{competition}.zip").write_bytes(self.archive.read_bytes())


def test_kaggle_answers_are_explained(tmp_path):
    with pytest.raises(DownloadError, match="no Kaggle credentials found"):
        kaggle_api(FakeKaggle(authenticated=False))
    with pytest.raises(DownloadError, match=r"403 Forbidden\): accept the competition's rules "
                                            r"at https://www.kaggle.com/competitions/"):
        fetch_from_kaggle(tmp_path, FakeKaggle(status=403))
    with pytest.raises(DownloadError, match="rejected the credentials"):
        fetch_from_kaggle(tmp_path, FakeKaggle(status=401))


def test_download_through_the_kaggle_api(good_zip, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="segdec")
    dest = download("severstal", tmp_path / "severstal", api=FakeKaggle(good_zip), **SMALL)
    assert caplog.messages == ["using the Kaggle credentials of someone",
                               f"verified 40 images (20 defective) in {dest}"]
    assert (dest / MARKER).is_file() and (dest / "train.csv").is_file()
    assert not list(dest.glob("*.zip")) and _left_behind(tmp_path) == []


# ---- KolektorSDD, KolektorSDD2 and DAGM 2007 -----------------------------------------------------
WRAPPER = {"ksdd": "KolektorSDD/", "ksdd2": "", "dagm": "DAGM_KaggleUpload/"}  # as users meet them
KSDD2_STRAYS = {"train/10301 (copy).png": b"copy", "train/10301_GT (copy).png": b"copy"}


def _published(monkeypatch, dataset: str, images: int, defective: int, **changes) -> None:
    """Make the small test copy the published dataset: its counts (and source) replace the real."""
    monkeypatch.setitem(SOURCES, dataset, replace(SOURCES[dataset], images=images,
                                                  defective=defective, **changes))


def _dataset_zip(dataset: str, tmp_path: Path, extra: dict[str, bytes] | None = None) -> Path:
    expected = write_layout(dataset, tmp_path / "src")
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    return _zip(tmp_path / "src", tmp_path / f"{dataset}.zip", extra, prefix=WRAPPER[dataset])


@pytest.mark.parametrize("dataset", ["ksdd", "ksdd2", "dagm"])
def test_each_dataset_is_laid_out_where_its_reader_finds_it(dataset, monkeypatch, tmp_path):
    strays = KSDD2_STRAYS if dataset == "ksdd2" else {}
    archive = _dataset_zip(dataset, tmp_path, strays)
    expected = {name: tuple(v) for name, v in json.loads((tmp_path / "expected.json").read_text())
                .items()}
    _published(monkeypatch, dataset, 6 if dataset != "ksdd2" else 5, 2 if dataset != "ksdd2" else 3)
    (tmp_path / "out").mkdir()
    dest = download(dataset, tmp_path / "out" / dataset, archive=archive)
    marker_folder = dest / "Class1" if dataset == "dagm" else dest
    marker = json.loads((marker_folder / MARKER).read_text())
    assert (marker["images"], marker["defective"], marker["counts_checked"]) == (
        len(expected), sum(label for label, _ in expected.values()), True)
    assert marker["removed_strays"] == sorted(strays)
    config = RunConfig(dataset=dataset, data_root=str(dest), dataset_class=1)
    samples = load_samples(config)
    assert {s.name: (s.label, s.has_mask) for s in samples} == expected
    assert not any((dest / name).exists() for name in strays)
    assert _left_behind(tmp_path / "out") == []


def test_counts_other_than_the_published_ones_are_refused(monkeypatch, tmp_path, capsys):
    archive = _dataset_zip("ksdd", tmp_path)
    dest = tmp_path / "out" / "ksdd"
    assert main(["download", "ksdd", "--dest", str(dest), "--zip", str(archive)]) == 2
    assert (f"{archive}: expected 399 images in the kosNN folders, found 6; the archive is "
            "incomplete: download it again") in capsys.readouterr().err
    _published(monkeypatch, "ksdd", 6, 3)
    with pytest.raises(DownloadError, match="expected 3 defective images, found 2; the archive "
                                            "is not KolektorSDD as published"):
        download("ksdd", dest, archive=archive)
    assert not dest.exists() and _left_behind(tmp_path / "out") == []
    # a subset: only its image count is checked, and the verified copy is not laid out again
    for _ in range(2):
        assert main(["download", "ksdd", "--dest", str(dest), "--zip", str(archive),
                     "--expected-images", "6"]) == 0
    assert "already holds the verified dataset" in capsys.readouterr().out
    assert json.loads((dest / MARKER).read_text())["counts_checked"] is True


def _ksdd_small_mask(src: Path) -> None:
    mask(src / "kos02" / "Part1_label.bmp", shape=(20, 24))


def _ksdd_without_item_folders(src: Path) -> None:
    for file in src.glob("kos*/*"):
        file.rename(src / f"{file.parent.name}_{file.name}")
    for item in src.glob("kos*/"):
        item.rmdir()


@pytest.mark.parametrize("dataset, spoil, message", [
    ("ksdd", {"../escaped.txt": b"x"}, r"holds an entry outside the destination \('../escaped"),
    ("ksdd2", {"a/../../escaped.txt": b"x"}, "holds an entry outside the destination"),
    ("dagm", {"../escaped.txt": b"x"}, "holds an entry outside the destination"),
    ("ksdd", _ksdd_small_mask, "no usable KolektorSDD dataset: mask KolektorSDD/kos02/"
                               "Part1_label.bmp is 24x20 but its image is 24x40"),
    ("ksdd2", lambda src: (src / "test" / "20001_GT.png").unlink(),
     "no usable KolektorSDD2 dataset: test/20001.png has no ground truth 20001_GT.png"),
    ("dagm", lambda src: (src / "Class1" / "Test" / "Label" / "Labels.txt").unlink(),
     "no usable DAGM 2007 dataset: DAGM_KaggleUpload/Class1/Test/Label/Labels.txt does not exist"),
    ("dagm", lambda src: (src / "Class1").rename(src / "Images"),
     "no usable DAGM 2007 dataset: no ClassN folder"),
    ("ksdd", _ksdd_without_item_folders,
     r"no usable KolektorSDD dataset: KolektorSDD holds no item folders \(kos01, kos02"),
])
def test_bad_archives_are_refused_naming_the_file(dataset, spoil, message, monkeypatch,
                                                    tmp_path):
    _published(monkeypatch, dataset, 6 if dataset != "ksdd2" else 5, None)
    if callable(spoil):
        write_layout(dataset, tmp_path / "src")
        spoil(tmp_path / "src")
        archive = _zip(tmp_path / "src", tmp_path / "bad.zip", prefix=WRAPPER[dataset])
    else:
        archive = _dataset_zip(dataset, tmp_path, spoil)
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError, match=rf"^{re.escape(str(archive))}.*{message}"):
        download(dataset, tmp_path / "out" / dataset, archive=archive)
    assert list((tmp_path / "out").iterdir()) == []  # no destination, no staging folder
    assert not list(tmp_path.rglob("escaped.txt"))


def test_dagm_needs_the_archive_and_says_where_to_get_it(tmp_path, capsys):
    assert main(["download", "dagm", "--dest", str(tmp_path / "dagm")]) == 2
    err = capsys.readouterr().err
    assert ("DAGM 2007 has no direct download: open https://hci.iwr.uni-heidelberg.de/content/"
            "weakly-supervised-learning-industrial-optical-inspection, download the archive "
            "(ClassN.zip) in a browser and pass it with --zip FILE") in err
    assert list(tmp_path.iterdir()) == []


def test_dagm_classes_arrive_one_archive_at_a_time(monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="segdec")
    class1 = _dataset_zip("dagm", tmp_path)
    class7 = _zip(tmp_path / "src" / "Class1", tmp_path / "Class7.zip", prefix="Class7/")
    dest = tmp_path / "out" / "dagm"
    with pytest.raises(DownloadError, match="expected 1150 images in Train/ and Test/, found 6"):
        download("dagm", dest, archive=class1)  # classes 1-6: 1000 + 150 images each
    _published(monkeypatch, "dagm", 6, 2)
    download("dagm", dest, archive=class1)
    download("dagm", dest, archive=class7)  # classes 7-10: no published count to check
    assert json.loads((dest / "Class7" / MARKER).read_text())["counts_checked"] is False
    assert json.loads((dest / "Class1" / MARKER).read_text())["counts_checked"] is True
    for number in (1, 7):
        config = RunConfig(dataset="dagm", data_root=str(dest), dataset_class=number)
        assert len(load_samples(config)) == 6
    download("dagm", dest, archive=class1)
    assert caplog.messages == [f"verified 6 images (2 defective) in {dest / 'Class1'}",
                               f"verified 6 images (2 defective) in {dest / 'Class7'}",
                               f"{dest / 'Class1'} already holds the verified dataset "
                               f"({MARKER}); nothing to do"]
    (dest / "Class1" / MARKER).unlink()  # an unverified class is kept, and nothing else is added
    both = _zip(dest, tmp_path / "both.zip")
    with pytest.raises(DownloadError, match="Class1 holds files but no verified dataset"):
        download("dagm", dest, archive=both)
    assert (dest / "Class1" / "Train" / "0001.PNG").is_file()
    assert _left_behind(tmp_path / "out") == []


@pytest.fixture
def served_ksdd(monkeypatch, tmp_path) -> Path:
    """The small KolektorSDD archive as the published one, at a file:// URL (urllib, no network)."""
    archive = _dataset_zip("ksdd", tmp_path)
    data = archive.read_bytes()
    _published(monkeypatch, "ksdd", 6, 2, url=archive.as_uri(), archive_bytes=len(data),
               sha256=hashlib.sha256(data).hexdigest())
    return archive


def test_a_direct_download_is_checked_against_its_published_size_and_checksum(served_ksdd,
                                                                              tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["download", "ksdd", "--dest", str(tmp_path / "out" / "ksdd")]) == 0
    out = capsys.readouterr().out
    assert f"KolektorSDD from {served_ksdd.as_uri()}; licence: CC BY-NC-SA 4.0" in out
    assert "verified 6 images (2 defective)" in out
    assert sorted(p.name for p in (tmp_path / "out" / "ksdd").iterdir()) == [
        MARKER, "kos01", "kos02", "kos03"]  # the wrapper is gone, and so is the archive
    assert _left_behind(tmp_path / "out") == []


def test_a_changed_or_unreachable_download_is_refused(served_ksdd, monkeypatch, tmp_path):
    source = SOURCES["ksdd"]
    monkeypatch.setitem(SOURCES, "ksdd", replace(source, sha256="0" * 64))
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError, match=rf"sent {source.archive_bytes} bytes with SHA-256 "
                                            f"{source.sha256}, not the published .* with 0000"):
        download("ksdd", tmp_path / "out" / "ksdd")
    monkeypatch.setitem(SOURCES, "ksdd", replace(source, url=(tmp_path / "gone.zip").as_uri()))
    with pytest.raises(DownloadError, match="the download from file:///.*gone.zip failed .*"
                                            "download KolektorSDD.zip from https://www.vicos.si/"
                                            "resources/kolektorsdd/ in a browser and pass it "
                                            "with --zip"):
        download("ksdd", tmp_path / "out" / "ksdd")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_download_cut_short_is_one_line(served_ksdd, monkeypatch, tmp_path):
    class CutShort(io.BytesIO):
        headers = {"Content-Length": "100"}

        def read(self, size=-1):
            raise http.client.IncompleteRead(b"x" * 40, 60)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: CutShort())
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError, match=r"the download from file:.* failed \(IncompleteRead"):
        download("ksdd", tmp_path / "out" / "ksdd")
    assert list((tmp_path / "out").iterdir()) == []


def test_the_real_ksdd_passes_the_published_counts(tmp_path):
    """The full KolektorSDD (../shared/data/ksdd, 399 images) zipped as its publisher does."""
    archive = _zip(shared_path("ksdd"), tmp_path / "KolektorSDD.zip")
    dest = download("ksdd", tmp_path / "ksdd", archive=archive)
    marker = json.loads((dest / MARKER).read_text())
    assert (marker["images"], marker["defective"]) == (399, 52)


def test_a_real_dagm_subset_is_checked_by_its_own_count(tmp_path, capsys):
    """../shared/data/dagm: 142 images of Class1's Test split, a subset: --expected-images."""
    archive = _zip(shared_path("dagm"), tmp_path / "Class1.zip")
    assert main(["download", "dagm", "--dest", str(tmp_path / "dagm"), "--zip", str(archive),
                 "--expected-images", "142"]) == 0
    assert "verified 142 images (71 defective)" in capsys.readouterr().out


def test_a_zip_with_a_symlink_is_refused(tmp_path):
    archive = tmp_path / "linked.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        link = zipfile.ZipInfo("train_images/evil.jpg")
        link.external_attr = (0o120777 << 16)  # a symbolic link
        zipped.writestr(link, "/etc/passwd")
    with pytest.raises(DownloadError, match="symbolic link"):
        extract_safely(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "train_images").exists()


def test_kaggle_without_a_network_is_one_line(tmp_path):
    class Offline:
        def competition_download_files(self, competition, path, quiet):
            raise requests.ConnectionError("Max retries exceeded with url: /api/v1/...")

    with pytest.raises(DownloadError, match="could not reach Kaggle.*--zip"):
        fetch_from_kaggle(tmp_path, Offline())
