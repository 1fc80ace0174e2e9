import pytest

from segdec.io import atomic_write, write_json


def test_failed_write_keeps_the_old_file(tmp_path):
    target = write_json(tmp_path / "metrics.json", {"ap": 0.9})

    def crash(tmp):
        tmp.write_text('{"ap": 0.')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
