"""segdec.paths: notebooks work from the repository root, whatever folder Jupyter opened them
in."""

from pathlib import Path

from segdec import paths

REPO = Path(__file__).resolve().parents[1]


def test_a_notebook_opened_from_notebooks_works_from_the_repository(monkeypatch):
    monkeypatch.chdir(REPO / "notebooks")
    assert paths.repository_root() == REPO
    assert paths.work_from_repository() == REPO and Path.cwd() == REPO


def test_outside_the_checkout_the_working_directory_stays(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.work_from_repository() == tmp_path
    monkeypatch.setattr(paths, "PACKAGE_ROOT", tmp_path / "site-packages" / "segdec")
    assert paths.repository_root() is None
