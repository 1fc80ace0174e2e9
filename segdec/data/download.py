"""Datasets fetched, checked and laid out: a safe extraction, a verified tree or nothing.

Severstal comes from Kaggle (credentials first), KolektorSDD and KolektorSDD2 from ViCoS's public
server (size and SHA-256 checked), DAGM 2007 from an archive downloaded in a browser (``--zip``):
its page names no stable direct link. Any of them takes ``--zip``. The archive is extracted into a
staging folder beside the destination; only a tree that the project's own reader reads, with the
published number of images, is moved into place, carrying a marker file that records the check.
A verified destination is not downloaded again; a failed run leaves the destination as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import io
import json
import logging
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

from segdec import __version__
from segdec.data.dagm import read_dagm
from segdec.data.dataset import Sample
from segdec.data.images import image_shape
from segdec.data.ksdd import read_ksdd
from segdec.data.ksdd2 import read_ksdd2
from segdec.data.rle import SEVERSTAL_SHAPE
from segdec.data.severstal import read_severstal
from segdec.errors import ConfigError, DataError
from segdec.io import write_json
from segdec.outputs import writable_folder

logger = logging.getLogger(__name__)

COMPETITION = "severstal-steel-defect-detection"
RULES_URL = f"https://www.kaggle.com/competitions/{COMPETITION}/rules"
SEVERSTAL_IMAGES = 12568
MARKER = ".segdec-verified.json"
DAGM_DEVELOPMENT_CLASSES = 6  # classes 1-6: 1000 defect-free and 150 defective images each
CREDENTIALS_HELP = f"""no Kaggle credentials found. Provide one of:
  - ~/.kaggle/kaggle.json (or $KAGGLE_CONFIG_DIR/kaggle.json): on kaggle.com open Settings ->
    API -> "Create New Token", save the file there and `chmod 600` it;
  - the environment variables KAGGLE_USERNAME and KAGGLE_KEY (both);
  - an API token in the environment variable KAGGLE_API_TOKEN or in ~/.kaggle/access_token;
  - `kaggle auth login`, which signs in in a browser and keeps the credentials itself.
Then accept the competition's rules at {RULES_URL} (Kaggle answers 403 Forbidden until you do).
Or download the archive in a browser and pass it with --zip FILE."""


class DownloadError(DataError):
    """The download, the archive or its contents failed; the message says what to do."""


@contextlib.contextmanager
def _kaggle_answers() -> Iterator[None]:
    """Kaggle's refusals and a missing network (errors of requests, which kaggle uses) as one
    line that says what to do."""
    import requests

    try:
        yield
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 403:
            raise DownloadError(f"Kaggle refused the download (403 Forbidden): accept the "
                                f"competition's rules at {RULES_URL}, then run again") from None
        if status == 401:
            raise DownloadError("Kaggle rejected the credentials (401 Unauthorized); create a "
                                "new API token on kaggle.com (Settings -> API)") from None
        raise DownloadError(f"the download failed (HTTP {status}); run again later") from None
    except (requests.ConnectionError, requests.Timeout) as err:
        raise DownloadError(
            f"could not reach Kaggle ({type(err).__name__}); check the network connection and "
            "run again, or download the archive in a browser and pass it with --zip"
        ) from None


def kaggle_api(api: Any = None) -> Any:
    """A Kaggle API client holding credentials, found by the kaggle package's own
    ``authenticate``; ``api`` stands in for ``KaggleApi()`` in tests.

    Where kaggle finds no credentials it prints its help and exits: CREDENTIALS_HELP says it
    instead. Anything else it prints (a key file readable by others) becomes a warning. It is
    imported only here, because importing it already looks for credentials.
    """
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), _kaggle_answers():
        if api is None:
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
        try:
            api.authenticate()
        except SystemExit:
            raise DownloadError(CREDENTIALS_HELP) from None
    if printed.getvalue().strip():
        logger.warning("kaggle: %s", printed.getvalue().strip())
    logger.info("using the Kaggle credentials of %s", api.config_values.get("username"))
    return api


def fetch_from_kaggle(folder: Path, api: Any) -> Path:
    """Download the competition archive into ``folder`` (with progress) through ``api``, from
    ``kaggle_api``; its path."""
    with _kaggle_answers():
        api.competition_download_files(COMPETITION, path=str(folder), quiet=False)
    archives = sorted(folder.glob("*.zip"))
    if not archives:
        raise DownloadError(f"Kaggle sent no zip archive for {COMPETITION}; run again")
    return archives[0]


def _unsafe(name: str) -> bool:
    """An absolute path, a drive letter or a ``..`` step: the entry could land outside."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or ":" in (path.parts or ("",))[0]


def _is_symlink(entry: zipfile.ZipInfo) -> bool:
    """A Unix symbolic link stored in the zip (file type in the high bits of external_attr)."""
    return stat.S_ISLNK(entry.external_attr >> 16)


def extract_safely(archive: Path, out: Path) -> None:
    """Extract ``archive`` into ``out``; refuse it whole if any entry would land outside ``out``."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            entries = zipped.infolist()
            unsafe = [e.filename for e in entries if _unsafe(e.filename)]
            if unsafe:
                raise DownloadError(f"{archive} holds an entry outside the destination "
                                    f"({unsafe[0]!r}); refusing to extract it")
            links = [e.filename for e in entries if _is_symlink(e)]
            if links:
                raise DownloadError(f"{archive} holds a symbolic link ({links[0]!r}), which no "
                                    "dataset's archive does; refusing to extract it")
            for entry in tqdm(entries, desc="extracting", unit="file"):
                zipped.extract(entry, out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DownloadError(f"{archive} is damaged ({err}); delete it and download again") from None


def _unpacked_size(archive: Path) -> str:
    """The size of an archive's files once extracted: "1.9 GB", "0.4 MB"."""
    with zipfile.ZipFile(archive) as zipped:
        size = sum(entry.file_size for entry in zipped.infolist())
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from and what a complete copy holds, as its authors publish it."""

    title: str
    page: str
    licence: str
    top: str  # a glob that matches in the folder holding the layout's top level
    counted: str  # where the images are counted, for messages
    read: Callable[[Path], list[Sample]]  # the project's reader, on the folder moved into place
    images: int | None = None
    defective: int | None = None
    image_shape: tuple[int, int] | None = None  # (H, W), where every image has the same size
    archive: str = ""  # the archive's name at the source
    url: str = ""  # a stable direct download; empty where the page needs a browser or an account
    archive_bytes: int = 0
    sha256: str = ""
    strays: tuple[str, ...] = ()  # files of the published archive that are not part of the data


def _class_number(folder: Path) -> int | None:
    """N of a DAGM ``ClassN`` folder; ``None`` for any other name."""
    number = folder.name.removeprefix("Class")
    return int(number) if number.isdigit() else None


def _read_dagm_class(folder: Path) -> list[Sample]:
    return read_dagm(folder.parent, _class_number(folder))


SOURCES: dict[str, Source] = {
    "severstal": Source(
        "Severstal", f"https://www.kaggle.com/competitions/{COMPETITION}/data",
        f"the competition's rules ({RULES_URL})", "train.csv",
        "training images in train_images/", read_severstal, SEVERSTAL_IMAGES,
        image_shape=SEVERSTAL_SHAPE, archive=f"{COMPETITION}.zip"),
    "ksdd": Source(
        "KolektorSDD", "https://www.vicos.si/resources/kolektorsdd/",
        "CC BY-NC-SA 4.0 (non-commercial; cite Tabernik et al. 2019)", "kos[0-9]*",
        "images in the kosNN folders", read_ksdd, 399, 52, archive="KolektorSDD.zip",
        url="https://data.vicos.si/datasets/KSDD/KolektorSDD.zip", archive_bytes=101_831_129,
        sha256="65dc621693418585de9c4467d1340ea7958a6181816f0dc2883a1e8b61f9d4dc"),
    "ksdd2": Source(
        "KolektorSDD2", "https://www.vicos.si/resources/kolektorsdd2/",
        "CC BY-NC-SA 4.0 (non-commercial; cite Božič et al. 2021)", "train",
        "images in train/ and test/", read_ksdd2, 3335, 356, archive="KolektorSDD2.zip",
        url="https://data.vicos.si/datasets/KSDD/KolektorSDD2.zip", archive_bytes=853_126_555,
        sha256="edcdb486809b24f1d17b785e30c52fafc5999554dd5fe18ddf77b61ceb6f36a8",
        strays=("train/10301 (copy).png", "train/10301_GT (copy).png")),  # copies of 10301
    "dagm": Source(
        "DAGM 2007",
        "https://hci.iwr.uni-heidelberg.de/content/weakly-supervised-learning-industrial-optical-inspection",
        "non-commercial research; cite the DAGM 2007 competition", "Class[0-9]*",
        "images in Train/ and Test/", _read_dagm_class, 1150, 150, archive="ClassN.zip"),
}


def fetch_url(source: Source, folder: Path) -> Path:
    """Download ``source.url`` into ``folder`` (with progress), refused unless its size and
    SHA-256 are the published ones; its path."""
    path = folder / source.archive
    by_hand = f"download {source.archive} from {source.page} in a browser and pass it with --zip"
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(source.url, timeout=60) as response, path.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=source.archive) as progress:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{source.url} answered HTTP {err.code}; run again later, or "
                            f"{by_hand}") from None
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
        raise DownloadError(f"the download from {source.url} failed "
                            f"({getattr(err, 'reason', None) or repr(err)}); check the network "
                            f"connection and run again, or {by_hand}") from None
    size, sha256 = path.stat().st_size, digest.hexdigest()
    if (size, sha256) != (source.archive_bytes, source.sha256):
        raise DownloadError(f"{source.url} sent {size} bytes with SHA-256 {sha256}, not the "
                            f"published {source.archive_bytes} bytes with {source.sha256}; the "
                            f"download was cut short or the file changed: run again, or {by_hand}")
    return path


def layout_root(tree: Path, top: str) -> Path:
    """The folder of ``tree`` whose entries match ``top``: ``tree`` itself, or the one that single
    wrapping folders (``KolektorSDD/``, ``DAGM_KaggleUpload/``) lead to; else the innermost of
    those, for the reader to say what it lacks."""
    folder = tree
    while not any(folder.glob(top)):
        inner = [p for p in folder.iterdir() if p.is_dir() and p.name != "__MACOSX"]
        if len(inner) != 1:
            break
        folder = inner[0]
    return folder


def verify(folder: Path, source: Source, expected: tuple[int | None, int | None],
           expected_shape: tuple[int, int] | None = None) -> dict:
    """Read an extracted tree with the project's reader and check its counts (``None``: not
    checked) and image size; the record written to the marker file."""
    try:
        samples = source.read(folder)
    except DataError as err:
        raise DownloadError(f"the archive holds no usable {source.title} dataset: {err}") from None
    images, defective = expected
    found = len(samples), sum(s.label for s in samples)
    if images is not None and found[0] != images:
        raise DownloadError(f"expected {images} {source.counted}, found {found[0]}; the archive "
                            "is incomplete: download it again")
    if defective is not None and found[1] != defective:
        raise DownloadError(f"expected {defective} defective images, found {found[1]}; the "
                            f"archive is not {source.title} as published")
    record = {"dataset": source.title, "source": source.page, "licence": source.licence,
              "images": found[0], "defective": found[1], "counts_checked": images is not None,
              "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "segdec_version": __version__}
    if expected_shape:
        height, width = expected_shape
        for sample in tqdm(samples, desc="verifying", unit="image"):
            if image_shape(sample.image) != (height, width):
                found_h, found_w = image_shape(sample.image)
                raise DownloadError(f"{sample.image} is {found_w}x{found_h}, not {width}x{height}; "
                                    f"the archive is not the {source.title} data")
        record["image_shape"] = [height, width]
    return record


def verified(dest: Path, expected_images: int | None) -> bool:
    """Whether ``dest`` carries a marker (of ``expected_images`` images, where given)."""
    record = _marker_record(dest)
    return record is not None and (expected_images is None
                                   or record.get("images") == expected_images)


def _marker_record(dest: Path) -> dict | None:
    """The record of ``dest``'s marker file; None where it has none or an unreadable one."""
    try:
        record = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _pending(target: Path, expected_images: int | None) -> bool:
    """Whether ``target`` still needs the dataset; refuses a folder holding unverified files,
    or a verified dataset of another size than the one asked for."""
    if verified(target, expected_images):
        logger.info("%s already holds the verified dataset (%s); nothing to do", target, MARKER)
        return False
    if target.exists() and not target.is_dir():
        raise DownloadError(f"{target} is a file, not a folder; give --dest a folder for the "
                            "dataset")
    record = _marker_record(target)
    if record is not None:
        raise DownloadError(
            f"{target} already holds a verified dataset of {record.get('images')} images "
            f"({MARKER}), not the {expected_images} asked for; pass --expected-images "
            f"{record.get('images')} to use it as it is, or choose another --dest")
    if (target / MARKER).exists():
        raise DownloadError(f"{target / MARKER} is damaged, so the files in {target} are not "
                            "known to be verified; empty the folder or choose another --dest")
    if target.exists() and any(target.iterdir()):
        raise DownloadError(f"{target} holds files but no verified dataset ({MARKER}); empty it "
                            "or choose another --dest")
    return True


@dataclass(frozen=True)
class _Unit:
    """One folder moved into place: the dataset, or one DAGM class."""

    staged: Path
    target: Path
    expected: tuple[int | None, int | None]


def _counts(source: Source, expected_images: int | None, published: bool = True
            ) -> tuple[int | None, int | None]:
    """(images, defective) to check, ``None`` where not checked: ``expected_images`` alone for a
    subset, else the published counts where there are some."""
    if expected_images is not None:
        return expected_images, None
    return (source.images, source.defective) if published else (None, None)


def _units(dataset: str, root: Path, dest: Path, expected_images: int | None) -> list[_Unit]:
    source = SOURCES[dataset]
    if dataset != "dagm":
        return [_Unit(root, dest, _counts(source, expected_images))]
    classes = sorted((p for p in root.glob(source.top) if p.is_dir() and _class_number(p)),
                     key=_class_number)
    if not classes:
        raise DownloadError(f"the archive holds no usable {source.title} dataset: no ClassN "
                            "folder (Class1 ... Class10) holding Train/ and Test/")
    return [_Unit(folder, dest / folder.name, _counts(
        source, expected_images, published=_class_number(folder) <= DAGM_DEVELOPMENT_CLASSES))
        for folder in classes]  # classes 7-10: no published count to check


def download(
    dataset: str,
    dest: str | Path,
    archive: str | Path | None = None,
    expected_images: int | None = None,
    expected_shape: tuple[int, int] | None = None,
    api: Any = None,
) -> Path:
    """Put the verified ``dataset`` at ``dest`` (DAGM: each class of the archive at
    ``dest/ClassN``), from its source or a local ``archive``.

    ``expected_images`` replaces the published count, for a subset (the defective count is then
    not checked); ``expected_shape`` (H, W) replaces the published one; ``api`` stands in for
    Kaggle.
    """
    source, dest = SOURCES[dataset], Path(dest)
    if dataset != "dagm" and not _pending(dest, _counts(source, expected_images)[0]):
        return dest
    try:
        writable_folder(dest, "the dataset (--dest)")
    except ConfigError as err:
        raise DownloadError(str(err)) from None
    if archive is not None and not Path(archive).is_file():
        raise DownloadError(f"archive {archive} does not exist")
    if archive is None and dataset == "severstal":
        api = kaggle_api(api)  # before anything is written
    elif archive is None and not source.url:
        raise DownloadError(f"{source.title} has no direct download: open {source.page}, download "
                            f"the archive ({source.archive}) in a browser and pass it with --zip "
                            f"FILE. Licence: {source.licence}")
    elif archive is None:
        logger.info("%s from %s; licence: %s", source.title, source.url, source.licence)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
    try:
        if archive is not None:
            zip_path = Path(archive)
        elif dataset == "severstal":
            zip_path = fetch_from_kaggle(staging, api)
        else:
            zip_path = fetch_url(source, staging)
        tree = staging / "tree"
        tree.mkdir()
        try:
            extract_safely(zip_path, tree)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DownloadError(
                f"the disk holding {dest.parent} filled up while extracting {zip_path.name} "
                f"({_unpacked_size(zip_path)} unpacked); nothing was kept: free that much "
                "space there, or choose a --dest on another disk, and run again") from None
        try:
            _lay_out(dataset, layout_root(tree, source.top), dest, expected_images, expected_shape)
        except DownloadError as err:  # name the archive's files, not the staging folder's
            message = str(err).replace(f"{tree}{os.sep}", "").replace(str(tree), "the archive")
            raise DownloadError(f"{archive or source.archive}: {message}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _lay_out(dataset: str, root: Path, dest: Path, expected_images: int | None,
             expected_shape: tuple[int, int] | None) -> None:
    """Verify every unit of the extracted ``root``, then move them all into place."""
    source = SOURCES[dataset]
    removed = [name for name in source.strays if (root / name).is_file()]
    for name in removed:
        (root / name).unlink()
    units = [unit for unit in _units(dataset, root, dest, expected_images)
             if _pending(unit.target, unit.expected[0])]
    checked = [(unit, verify(unit.staged, source, unit.expected,
                             expected_shape or source.image_shape))
               for unit in units]
    for unit, record in checked:
        write_json(unit.staged / MARKER, {**record, "removed_strays": removed})
    for unit, record in checked:
        if unit.target.exists():
            unit.target.rmdir()  # empty: _pending refused any other
        unit.target.parent.mkdir(parents=True, exist_ok=True)
        unit.staged.rename(unit.target)
        logger.info("verified %d images (%d defective) in %s", record["images"],
                    record["defective"], unit.target)
