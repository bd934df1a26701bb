"""Issue 17, weak items: a careless user's mistakes get one clear line or a warning, and leave no debris."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.cli import main as curate
from index_factory import entries_table, make_index, synthetic_images
from pool_factory import write_img2dataset, write_meta


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("curate: error: ") and "Traceback" not in err, err
    return err


def test_balance_of_a_meta_folder_says_so(tmp_path, capsys):
    """17.17: it said "INDEX META is incomplete… rerun build-index"."""
    meta = write_meta(tmp_path / "META")
    assert curate(["balance", "--index", str(meta), "--out", str(tmp_path / "CUR"), "--t", "5"]) == 2
    assert "is a META folder (metadata entries), not an INDEX" in one_error_line(capsys)


def test_img2dataset_folder_with_a_stray_parquet_or_missing_tar(tmp_path, capsys):
    """17.13: it was silently read as plain Parquet ("no column 'text'"; with --text-column caption, failed
    downloads counted as texts)."""
    pool = write_img2dataset(tmp_path / "pool", ["a dog", "a cat", None, "a bird"])
    pq.write_table(pa.table({"caption": ["stray"]}), pool / "extra.parquet")
    argv = ["build-index", "--pool", str(pool), "--metadata", str(write_meta(tmp_path / "M")),
            "--out", str(tmp_path / "I")]
    assert curate(argv) == 2
    assert "looks like an img2dataset output (1 .parquet + .tar pairs) but extra.parquet has no .tar" in \
        one_error_line(capsys)
    (pool / "extra.parquet").unlink()
    write_img2dataset(tmp_path / "pool2", ["x"]).joinpath("00000.tar").rename(pool / "00001.tar")
    (tmp_path / "pool2" / "00000.parquet").rename(pool / "00001.parquet")
    (pool / "00000.tar").unlink()
    assert curate(argv) == 2
    assert "but 00000.parquet has no .tar beside it" in one_error_line(capsys)


def test_language_with_only_numbers_is_warned_about(tmp_path, capsys):
    """17.14: `--langs en,dee` (a typo that is a valid ISO 639-3 code) made a numbers-only language silently."""
    assert curate(["metadata", "build", "--langs", "dee", "--out", str(tmp_path / "META"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "dee: " in err and "WARNING: only the numbers 0..99" in err


@pytest.mark.slow
def test_resumed_balance_leaves_no_plot_temp_files(tmp_path, capsys):
    """17.16: a killed balance left plots/.*.tmp behind after the resume."""
    ent = entries_table({"en": 3, "de": 2})
    built = make_index(tmp_path, synthetic_images(20, ent), ent)
    cur = tmp_path / "CUR"
    argv = ["balance", "--index", str(built.index), "--out", str(cur), "--t", "3", "--workers", "1"]
    assert curate(argv) == 0
    manifest = json.loads((cur / "manifest.json").read_text())
    (cur / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))  # killed while plotting
    (cur / "plots" / ".rank_count_en.png.x1y2.tmp").write_bytes(b"half a png")
    assert curate(argv) == 0
    assert not list(cur.rglob("*.tmp"))


def test_error_line_is_not_glued_to_a_progress_bar(tmp_path, capsys):
    """17.20: an error raised inside an in-process task left its progress bar open: the error line
    continued the bar's line."""
    ent = entries_table({"en": 3})
    built = make_index(tmp_path, synthetic_images(30, ent), ent, sources=2)
    (built.pool / "00001.tar").unlink()
    assert curate(["balance", "--index", str(built.index), "--out", str(tmp_path / "CUR"), "--t", "1000",
                   "--workers", "1", "--shard-size", "5"]) == 2
    line = next(x for x in capsys.readouterr().err.split("\n") if "error:" in x)
    assert line.rsplit("\r", 1)[-1].startswith("curate: error: "), repr(line)
