"""segdec.records: copying finished runs' image-free records without overwriting a committed
one."""

import numpy as np
import pytest

from segdec.errors import DataError
from segdec.records import MAPS_RECORD, copy_records


def _run(root, name, ap="0.9", finished=True):
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"weights")
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "timing.json").write_text('[{"estimated_s": 100.0, "actual_s": 90.0}]')
    np.savez(run / "segmentation_maps.npz", names=np.array(["a.png"]), images=np.ones((1, 8, 8)),
             masks=np.ones((1, 8, 8)), seg_maps=np.full((1, 1, 1), float(ap)),
             scores=np.array([0.5]), labels=np.array([1]))
    if finished:
        (run / "metrics.json").write_text(f'{{"ap": {ap}}}')
    return run


def test_records_copy_finished_runs_without_weights_or_images(tmp_path):
    _run(tmp_path / "runs", "fold0/FS")
    _run(tmp_path / "runs", "fold1/FS", finished=False)
    copied, present = copy_records(tmp_path / "runs", tmp_path / "records")
    assert (copied, present) == (["fold0/FS"], [])
    record = tmp_path / "records" / "fold0" / "FS"
    assert sorted(p.name for p in record.iterdir()) == ["config.yaml", MAPS_RECORD,
                                                        "metrics.json", "timing.json"]
    with np.load(record / MAPS_RECORD) as maps:  # the maps without the images' pixels
        assert sorted(maps.files) == ["labels", "names", "scores", "seg_maps"]
        assert maps["seg_maps"].tolist() == [[[0.9]]]
    assert copy_records(tmp_path / "runs", tmp_path / "records") == ([], ["fold0/FS"])


def test_a_differing_record_is_never_overwritten(tmp_path):
    _run(tmp_path / "runs", "a", ap="0.9")
    _run(tmp_path / "runs", "b")
    _run(tmp_path / "records", "a", ap="0.5")
    with pytest.raises(DataError, match="a: metrics.json"):
        copy_records(tmp_path / "runs", tmp_path / "records")
    assert (tmp_path / "records" / "a" / "metrics.json").read_text() == '{"ap": 0.5}'
    assert not (tmp_path / "records" / "b").exists()  # nothing copied before the refusal


def test_maps_of_another_run_are_a_differing_record(tmp_path):
    _run(tmp_path / "runs", "a", ap="0.9")
    copy_records(tmp_path / "runs", tmp_path / "records")
    np.savez(tmp_path / "runs" / "a" / "segmentation_maps.npz", names=np.array(["a.png"]),
             images=np.ones((1, 8, 8)), masks=np.ones((1, 8, 8)),
             seg_maps=np.full((1, 1, 1), 0.1), scores=np.array([0.5]), labels=np.array([1]))
    with pytest.raises(DataError, match=f"a: {MAPS_RECORD}"):
        copy_records(tmp_path / "runs", tmp_path / "records")
