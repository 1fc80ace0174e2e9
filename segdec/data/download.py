"""Severstal from Kaggle: credentials first, a safe extraction, a verified tree or nothing.

The archive is downloaded and extracted into a staging folder beside the destination; only a
tree that passed verification (``train.csv`` parses, the expected number of training images,
each of the expected size) is moved into place, carrying a marker file that records the check.
A verified destination is not downloaded again; a failed run leaves the destination as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

from segdec import __version__
from segdec.data.images import DataError, image_shape
from segdec.data.severstal import read_severstal
from segdec.io import write_json

COMPETITION = "severstal-steel-defect-detection"
RULES_URL = f"https://www.kaggle.com/competitions/{COMPETITION}/rules"
SEVERSTAL_IMAGES, SEVERSTAL_SIZE = 12568, (1600, 256)  # (W, H)
MARKER = ".segdec-verified.json"
CREDENTIALS_HELP = f"""no Kaggle credentials found. Provide one of:
  - ~/.kaggle/kaggle.json (or $KAGGLE_CONFIG_DIR/kaggle.json): on kaggle.com open Settings ->
    API -> "Create New Token", save the file there and `chmod 600` it;
  - the environment variables KAGGLE_USERNAME and KAGGLE_KEY (both);
  - an API token in the environment variable KAGGLE_API_TOKEN or in ~/.kaggle/access_token.
Then accept the competition's rules at {RULES_URL} (Kaggle answers 403 Forbidden until you do).
Or download the archive in a browser and pass it with --zip FILE."""


class DownloadError(DataError):
    """The download, the archive or its contents failed; the message says what to do."""


def kaggle_credentials() -> str:
    """Where the kaggle package will find credentials (never the secret itself)."""
    env = os.environ
    if env.get("KAGGLE_API_TOKEN"):
        return "the KAGGLE_API_TOKEN environment variable"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "the KAGGLE_USERNAME and KAGGLE_KEY environment variables"
    home = Path.home()
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"
    config_dirs = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    candidates = [d / "kaggle.json" for d in [*config_dirs, home / ".kaggle", xdg]] + [
        home / ".kaggle" / name for name in ("access_token", "access_token.txt", "credentials.json")
    ]
    for path in candidates:
        if path.is_file():
            return str(path)
    raise DownloadError(CREDENTIALS_HELP)


def fetch_from_kaggle(folder: Path, api: Any = None) -> Path:
    """Download the competition archive into ``folder`` (with progress); its path.

    ``api`` stands in for ``kaggle.KaggleApi()`` in tests; the kaggle package is imported only
    here, because importing it already tries to authenticate.
    """
    import requests

    if api is None:
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
    try:
        api.authenticate()
    except SystemExit:  # the kaggle package exits when it finds no usable credentials
        raise DownloadError(CREDENTIALS_HELP) from None
    try:
        api.competition_download_files(COMPETITION, path=str(folder), quiet=False)
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
                raise DownloadError(f"{archive} holds a symbolic link ({links[0]!r}), which the "
                                    "Kaggle archive never does; refusing to extract it")
            for entry in tqdm(entries, desc="extracting", unit="file"):
                zipped.extract(entry, out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DownloadError(f"{archive} is damaged ({err}); delete it and download again") from None


def verify(root: Path, expected_images: int, image_size: tuple[int, int]) -> dict:
    """Check an extracted tree; the record written to the marker file."""
    try:
        samples = read_severstal(root)
    except DataError as err:
        raise DownloadError(f"the archive holds no usable Severstal dataset: {err}") from None
    if len(samples) != expected_images:
        raise DownloadError(f"expected {expected_images} training images in train_images/, found "
                            f"{len(samples)}; the archive is incomplete: download it again")
    width, height = image_size
    for sample in tqdm(samples, desc="verifying", unit="image"):
        if image_shape(sample.image) != (height, width):
            found = image_shape(sample.image)
            raise DownloadError(f"{sample.image} is {found[1]}x{found[0]}, not {width}x{height}; "
                                "the archive is not the Severstal competition data")
    return {
        "competition": COMPETITION,
        "images": len(samples),
        "defective": sum(s.label for s in samples),
        "image_size": [width, height],
        "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "segdec_version": __version__,
    }


def verified(dest: Path, expected_images: int = SEVERSTAL_IMAGES) -> bool:
    marker = dest / MARKER
    if not marker.is_file() or not (dest / "train.csv").is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("images") == expected_images
    except ValueError:
        return False


def download_severstal(
    dest: str | Path,
    archive: str | Path | None = None,
    expected_images: int = SEVERSTAL_IMAGES,
    image_size: tuple[int, int] = SEVERSTAL_SIZE,
    api: Any = None,
) -> Path:
    """Put a verified Severstal training set at ``dest``, from Kaggle or a local ``archive``."""
    dest = Path(dest)
    if verified(dest, expected_images):
        print(f"{dest} already holds the verified dataset ({MARKER}); nothing to do")
        return dest
    if archive is None:
        print(f"using Kaggle credentials from {kaggle_credentials()}")
    elif not Path(archive).is_file():
        raise DownloadError(f"archive {archive} does not exist")
    if dest.exists() and any(dest.iterdir()):
        raise DownloadError(f"{dest} holds files but no verified dataset ({MARKER}); empty it or "
                            "choose another --dest")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
    try:
        zip_path = Path(archive) if archive else fetch_from_kaggle(staging, api)
        tree = staging / "tree"
        tree.mkdir()
        extract_safely(zip_path, tree)
        write_json(tree / MARKER, verify(tree, expected_images, image_size))
        if dest.exists():
            dest.rmdir()
        tree.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"verified {expected_images} training images in {dest}")
    return dest
