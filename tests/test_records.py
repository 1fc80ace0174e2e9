"""Copying finished runs' image-free records without overwriting a committed one."""

import pytest

from segdec.data.images import DataError
from segdec.records import copy_records


def _run(root, name, ap="0.9", finished=True):
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"weights")
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "segmentation_maps.npz").write_bytes(b"maps")
    if finished:
        (run / "metrics.json").write_text(f'{{"ap": {ap}}}')
    return run


def test_records_copy_finished_runs_without_weights_or_images(tmp_path):
    _run(tmp_path / "runs", "fold0/FS")
    _run(tmp_path / "runs", "fold1/FS", finished=False)
    copied, present = copy_records(tmp_path / "runs", tmp_path / "records")
    assert (copied, present) == (["fold0/FS"], [])
    assert sorted(p.name for p in (tmp_path / "records" / "fold0" / "FS").iterdir()) == [
        "config.yaml", "metrics.json"]
    assert copy_records(tmp_path / "runs", tmp_path / "records") == ([], ["fold0/FS"])


def test_a_differing_record_is_never_overwritten(tmp_path):
    _run(tmp_path / "runs", "a", ap="0.9")
    _run(tmp_path / "runs", "b")
    _run(tmp_path / "records", "a", ap="0.5")
    with pytest.raises(DataError, match="a: metrics.json"):
        copy_records(tmp_path / "runs", tmp_path / "records")
    assert (tmp_path / "records" / "a" / "metrics.json").read_text() == '{"ap": 0.5}'
    assert not (tmp_path / "records" / "b").exists()  # nothing copied before the refusal
