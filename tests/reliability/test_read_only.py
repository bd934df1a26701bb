"""Issue 17.15: a read-only output folder is one error line naming the path, not an OSError traceback."""
from __future__ import annotations

import subprocess

import pytest

from curation.cli import main as curate
from index_factory import entries_table, make_index, synthetic_images


@pytest.fixture
def read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        yield ro
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_read_only_out_is_one_line(tmp_path, read_only, capsys):
    words = tmp_path / "words.txt"
    words.write_text("dog\ncat\n")
    assert curate(["metadata", "add", "--lang", "en", "--file", str(words), "--out", str(read_only / "META")]) == 2
    assert "Read-only file system" in one_line(capsys)
    ent = entries_table({"en": 3})
    built = make_index(tmp_path, synthetic_images(10, ent), ent)
    assert curate(["balance", "--index", str(built.index), "--out", str(read_only / "CUR"), "--t", "5",
                   "--workers", "1"]) == 2
    assert f"{read_only / 'CUR'}" in one_line(capsys)
