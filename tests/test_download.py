"""segdec download severstal against local archives and a stand-in Kaggle API; no network."""

import json
import zipfile
from pathlib import Path

import pytest
import requests

from segdec.cli import main
from segdec.data.download import (
    MARKER,
    DownloadError,
    download_severstal,
    fetch_from_kaggle,
    kaggle_credentials,
)

SMALL = {"expected_images": 40, "image_size": (128, 64)}


def _zip(tree: Path, path: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for file in sorted(tree.rglob("*")):
            if file.is_file():
                zipped.write(file, file.relative_to(tree).as_posix())
        for name, data in (extra or {}).items():
            zipped.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def good_zip(tiny_severstal, tmp_path_factory) -> Path:
    return _zip(tiny_severstal, tmp_path_factory.mktemp("zips") / "severstal.zip")


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))


def _left_behind(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_good_archive_is_verified_and_not_fetched_again(good_zip, tmp_path, capsys):
    dest = download_severstal(tmp_path / "severstal", archive=good_zip, **SMALL)
    marker = json.loads((dest / MARKER).read_text())
    assert marker["images"] == 40 and marker["defective"] == 20
    assert marker["image_size"] == [128, 64]
    assert len(list((dest / "train_images").iterdir())) == 40
    assert _left_behind(tmp_path) == []
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"PK not a zip")
    download_severstal(dest, archive=damaged, **SMALL)  # verified: the archive is not opened
    assert "already holds the verified dataset" in capsys.readouterr().out


def test_truncated_archive_leaves_nothing(good_zip, tmp_path):
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good_zip.read_bytes()[: good_zip.stat().st_size // 2])
    with pytest.raises(DownloadError, match=r"truncated.zip is damaged .*download again"):
        download_severstal(tmp_path / "severstal", archive=truncated, **SMALL)
    assert not (tmp_path / "severstal").exists() and _left_behind(tmp_path) == []


@pytest.mark.parametrize("entry", ["../escaped.txt", "/tmp/absolute.txt", "a/../../up.txt"])
def test_entries_outside_the_destination_are_refused(tiny_severstal, tmp_path, entry):
    evil = _zip(tiny_severstal, tmp_path / "evil.zip", {entry: b"gotcha"})
    with pytest.raises(DownloadError, match="holds an entry outside the destination"):
        download_severstal(tmp_path / "out" / "severstal", archive=evil, **SMALL)
    assert not (tmp_path / "out" / "severstal").exists()
    assert sorted(p.name for p in tmp_path.rglob("*.txt")) == []


def test_wrong_image_count_and_size_are_refused(good_zip, tmp_path, capsys):
    assert main(["download", "severstal", "--dest", str(tmp_path / "a"), "--zip",
                 str(good_zip)]) == 2
    assert ("expected 12568 training images in train_images/, found 40; the archive is "
            "incomplete") in capsys.readouterr().err
    with pytest.raises(DownloadError, match=r"is 128x64, not 1600x256"):
        download_severstal(tmp_path / "b", archive=good_zip, expected_images=40)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert _left_behind(tmp_path) == []


def test_archive_without_train_csv_is_refused(tiny_severstal, tmp_path):
    images_only = _zip(tiny_severstal / "train_images", tmp_path / "images.zip")
    with pytest.raises(DownloadError, match="holds no usable Severstal dataset: .*train_images"):
        download_severstal(tmp_path / "severstal", archive=images_only, **SMALL)


def test_unverified_destination_with_files_is_kept(good_zip, tmp_path):
    (tmp_path / "severstal").mkdir()
    (tmp_path / "severstal" / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="holds files but no verified dataset"):
        download_severstal(tmp_path / "severstal", archive=good_zip, **SMALL)
    assert (tmp_path / "severstal" / "notes.txt").read_text() == "mine"


def test_missing_credentials_are_explained_before_anything_is_written(no_credentials, tmp_path,
                                                                      capsys):
    with pytest.raises(DownloadError) as caught:
        download_severstal(tmp_path / "severstal")
    message = str(caught.value)
    for hint in ("kaggle.json", "KAGGLE_USERNAME and KAGGLE_KEY", "KAGGLE_API_TOKEN",
                 "accept the competition's rules", "403", "--zip"):
        assert hint in message
    assert not (tmp_path / "severstal").exists() and _left_behind(tmp_path) == []
    assert main(["download", "severstal", "--dest", str(tmp_path / "severstal")]) == 2
    assert "no Kaggle credentials found" in capsys.readouterr().err


def test_credentials_are_found_but_never_shown(no_credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    with pytest.raises(DownloadError):  # a username alone is not enough
        kaggle_credentials()
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-key")
    assert "s3cr3t-key" not in kaggle_credentials()
    monkeypatch.delenv("KAGGLE_KEY")
    token = tmp_path / "home" / ".kaggle" / "kaggle.json"
    token.parent.mkdir(parents=True)
    token.write_text('{"username": "someone", "key": "s3cr3t-key"}')
    assert kaggle_credentials() == str(token)


class FakeKaggle:
    """Stands in for kaggle.KaggleApi: authenticates or exits, then 'downloads' or refuses."""

    def __init__(self, archive: Path | None = None, status: int | None = None,
                 authenticated: bool = True) -> None:
        self.archive, self.status, self.authenticated = archive, status, authenticated

    def authenticate(self) -> None:
        if not self.authenticated:
            raise SystemExit(1)

    def competition_download_files(self, competition, path, quiet):
        assert competition == "severstal-steel-defect-detection" and not quiet
        if self.status:
            response = requests.Response()
            response.status_code = self.status
            raise requests.HTTPError(f"{self.status}", response=response)
        (Path(path) / f"{competition}.zip").write_bytes(self.archive.read_bytes())


def test_kaggle_answers_are_explained(tmp_path):
    with pytest.raises(DownloadError, match="no Kaggle credentials found"):
        fetch_from_kaggle(tmp_path, FakeKaggle(authenticated=False))
    with pytest.raises(DownloadError, match=r"403 Forbidden\): accept the competition's rules "
                                            r"at https://www.kaggle.com/competitions/"):
        fetch_from_kaggle(tmp_path, FakeKaggle(status=403))
    with pytest.raises(DownloadError, match="rejected the credentials"):
        fetch_from_kaggle(tmp_path, FakeKaggle(status=401))


def test_download_through_the_kaggle_api(good_zip, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token-value")
    dest = download_severstal(tmp_path / "severstal", api=FakeKaggle(good_zip), **SMALL)
    assert (dest / MARKER).is_file() and (dest / "train.csv").is_file()
    assert not list(dest.glob("*.zip")) and _left_behind(tmp_path) == []
