"""segdec.io: atomic writes keep the old file on failure and give the usual permissions."""

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


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    target = write_json(tmp_path / "metrics.json", {"ap": 0.9})
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(os.stat(target).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
