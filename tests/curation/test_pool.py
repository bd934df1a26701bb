"""Pool readers: format detection, column checks, deterministic parts, every format's rows, bad files."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from curation.pool import (
    BATCH_SCHEMA,
    Part,
    PoolColumns,
    ReadStats,
    expand_paths,
    make_parts,
    read_part,
    resolve_columns,
)
from pool_factory import POOL_TEXTS, pool_table, write_parquet_pool, write_wat, write_webdataset


def read_all(path, fmt, cols, part_size=None, num_rows=None):
    files = [(path, fmt)]
    pool_files, _ = resolve_columns(files, text=None, uid=None, url=None, image=None, lang="lang",
                                    lang_required=False) if fmt in ("parquet", "img2dataset") else (None, None)
    parts = make_parts(pool_files, part_size) if pool_files else [Part(0, str(path), fmt)]
    stats = ReadStats()
    tables = [t for p in parts for t in read_part(p, cols, stats)]
    table = pa.concat_tables(tables) if tables else BATCH_SCHEMA.empty_table()
    assert table.schema == BATCH_SCHEMA
    return table, stats


def test_expand_paths_detects_formats(parquet_pool, img2dataset_pool, webdataset_pool, wat_pool):
    files = expand_paths([str(parquet_pool), str(img2dataset_pool), str(webdataset_pool), str(wat_pool)])
    fmts = sorted(fmt for _, fmt in files)
    assert fmts == ["img2dataset", "parquet", "parquet", "wat", "webdataset"]
    assert all(Path(p).is_absolute() for p, _ in files)
    assert expand_paths([str(parquet_pool / "*.parquet")]) == expand_paths([str(parquet_pool)])
    first = str(img2dataset_pool / "00000.parquet")
    assert expand_paths([first]) == [(first, "img2dataset")]


def test_expand_paths_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        expand_paths([str(tmp_path / "missing.parquet")])
    with pytest.raises(UserError, match="no file matches"):
        expand_paths([str(tmp_path / "*.parquet")])
    (tmp_path / "notes.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="unknown file type"):
        expand_paths([str(tmp_path / "notes.csv")])
    with pytest.raises(UserError, match="no .parquet"):
        expand_paths([str(tmp_path)])


def test_missing_text_column_lists_columns(tmp_path):
    pq.write_table(pa.table({"caption": ["a dog"], "url": ["u"]}), tmp_path / "p.parquet")
    with pytest.raises(UserError, match=r"no column 'text'.*columns found: caption, url"):
        resolve_columns(expand_paths([str(tmp_path)]), text=None, uid=None, url=None, image=None, lang=None,
                        lang_required=False)
    _, cols = resolve_columns(expand_paths([str(tmp_path)]), text="caption", uid=None, url=None, image=None,
                              lang="lang", lang_required=False)
    assert (cols.text, cols.uid, cols.url, cols.lang) == ("caption", None, "url", None)
    with pytest.raises(UserError, match=r"no column 'id' \(--uid-column\)"):
        resolve_columns(expand_paths([str(tmp_path)]), text="caption", uid="id", url=None, image=None, lang=None,
                        lang_required=False)
    with pytest.raises(UserError, match=r"--lid column:language"):
        resolve_columns(expand_paths([str(tmp_path)]), text="caption", uid=None, url=None, image=None,
                        lang="language", lang_required=True)


def test_corrupt_parquet_footer_is_a_clear_error(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UserError, match=r"bad.parquet: not a readable Parquet file"):
        resolve_columns(expand_paths([str(tmp_path)]), text=None, uid=None, url=None, image=None, lang=None,
                        lang_required=False)


def test_image_column_detected(tmp_path):
    pq.write_table(pa.table({"text": ["a"], "jpg": pa.array([b"\xff\xd8"], pa.binary())}), tmp_path / "p.parquet")
    _, cols = resolve_columns(expand_paths([str(tmp_path)]), text=None, uid=None, url=None, image=None, lang=None,
                              lang_required=False)
    assert cols.image == "jpg"


@pytest.mark.parametrize("part_size", [1, 4, 7, 100])
def test_parquet_parts_cover_every_row_once(tmp_path, part_size):
    table = pool_table(repeat=3)
    folder = write_parquet_pool(tmp_path, table, files=2, row_group_size=5)
    files, cols = resolve_columns(expand_paths([str(folder)]), text=None, uid=None, url=None, image=None,
                                  lang="lang", lang_required=False)
    parts = make_parts(files, part_size)
    assert [p.part for p in parts] == list(range(len(parts)))
    assert parts == make_parts(files, part_size)
    stats = ReadStats()
    got = {(p.path, r["row"]): r["text"] for p in parts for t in read_part(p, cols, stats) for r in t.to_pylist()}
    half = -(-table.num_rows // 2)
    expected = {(files[i // half].path, i % half): t for i, t in enumerate(table.column("text").to_pylist())}
    assert got == expected
    assert not stats.rejected


def test_img2dataset_rows_keys_and_failed_downloads(img2dataset_pool):
    cols = PoolColumns(text="caption", uid=None, url="url", lang=None, key="key")
    table, stats = read_all(img2dataset_pool / "00000.parquet", "img2dataset", cols, part_size=3)
    n = len(POOL_TEXTS)
    failed = [i for i in range(n) if i % 4 == 3]
    assert stats.rejected == {"download_failed": len(failed)}
    assert table.column("row").to_pylist() == [i for i in range(n) if i not in failed]
    assert table.column("key").to_pylist() == [f"0000{i:05d}" for i in range(n) if i not in failed]
    assert table.column("text").to_pylist()[0] == POOL_TEXTS[0][0]


def test_webdataset_samples_in_tar_order(tmp_path):
    path = write_webdataset(tmp_path / "a.tar", [
        {"key": "k0", "txt": "a dog", "json": {"url": "http://a/0.jpg", "uid": "U0", "lang": "en"}},
        {"key": "k1"},  # image without text
        {"key": "k2", "txt": "plain text, no json"},
        {"key": "k3", "txt": "x", "json": {"url": "http://a/3.jpg"}},
    ])
    cols = PoolColumns(text=None, uid="uid", url="url", lang="lang")
    table, stats = read_all(path, "webdataset", cols)
    assert table.to_pylist() == [
        {"text": "a dog", "uid": "U0", "url": "http://a/0.jpg", "lang": "en", "key": "k0", "row": 0},
        {"text": "plain text, no json", "uid": None, "url": None, "lang": None, "key": "k2", "row": 2},
        {"text": "x", "uid": None, "url": "http://a/3.jpg", "lang": None, "key": "k3", "row": 3},
    ]
    assert stats.rejected == {"missing_text": 1}


def test_webdataset_undecodable_text_and_truncated_tar(tmp_path):
    import io
    import tarfile

    path = tmp_path / "b.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in [("s0.txt", b"good text"), ("s1.txt", b"\xff\xfe bad utf8"), ("s2.txt", b"ok " * 400)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    cols = PoolColumns(text=None, uid="uid", url="url", lang=None)
    table, stats = read_all(path, "webdataset", cols)
    assert table.column("text").to_pylist()[0] == "good text"
    assert stats.rejected == {"undecodable_text": 1}
    data = path.read_bytes()
    path.write_bytes(data[:1700])  # cut in s1's padding: the third header is gone, and s1 may have lost members
    table, stats = read_all(path, "webdataset", cols)
    assert table.column("text").to_pylist() == ["good text"]
    assert stats.rejected == {"unreadable_file": 1} and stats.errors[0]["after_samples"] == 1
    assert "damaged after byte 1024" in stats.errors[0]["error"]
    assert "b.tar" in stats.errors[0]["source"]


def test_wat_img_alt_and_title_like_parse_wat(wat_pool):
    cols = PoolColumns(text=None, uid="uid", url="url", lang="lang")
    table, stats = read_all(wat_pool, "wat", cols)
    assert table.select(["text", "url", "row"]).to_pylist() == [
        {"text": "A dog on the beach", "url": "http://site.example/a/img/dog.jpg", "row": 0},
        {"text": "My cat and dog", "url": "http://site.example/a/img/dog.jpg", "row": 1},
        {"text": "", "url": "http://cdn.example/x.png", "row": 2},
        {"text": "New York skyline", "url": "http://cdn.example/x.png", "row": 3},
        {"text": "Tokyo tower at night", "url": "http://site.example/c/tokyo.jpg", "row": 4},
    ]
    assert table.column("uid").null_count == table.num_rows  # derived later from the url
    assert not stats.rejected


def test_wat_lone_surrogate_and_truncated_gzip(tmp_path):
    path = write_wat(tmp_path / "s.warc.wat.gz", [("http://p.example/", [
        {"path": "IMG@/src", "url": "a.jpg", "alt": "dog \ud800 cat"}])])
    cols = PoolColumns(text=None, uid="uid", url="url", lang=None)
    table, stats = read_all(path, "wat", cols)
    assert table.column("text").to_pylist() == ["dog ? cat"]  # stored as valid UTF-8
    assert not stats.rejected
    path.write_bytes(path.read_bytes()[:-30])
    table, stats = read_all(path, "wat", cols)
    assert stats.rejected.get("unreadable_file") == 1
    assert stats.errors and "s.warc.wat.gz" in stats.errors[0]["source"]


def test_corrupt_parquet_data_counts_rows_as_unreadable(tmp_path):
    table = pa.table({"text": [f"text number {i}" for i in range(1000)]})
    pq.write_table(table, tmp_path / "p.parquet", compression="none", row_group_size=500)
    data = bytearray((tmp_path / "p.parquet").read_bytes())
    data[4:40] = b"\xff" * 36  # destroy the first row group's page header, keep the footer
    (tmp_path / "p.parquet").write_bytes(bytes(data))
    files, cols = resolve_columns(expand_paths([str(tmp_path)]), text=None, uid=None, url=None, image=None,
                                  lang=None, lang_required=False)
    stats = ReadStats()
    rows = [r for p in make_parts(files, 500) for t in read_part(p, cols, stats) for r in t.column("row").to_pylist()]
    assert rows == list(range(500, 1000))
    assert stats.rejected == {"unreadable_file": 500}
    assert stats.errors[0]["rows"] == [0, 500]


@pytest.mark.parametrize("column,values,flag", [
    ("text", pa.array([["a dog"], ["a cat"], []], pa.list_(pa.string())), "--text-column"),
    ("text", pa.array([1, 2, 3], pa.int64()), "--text-column"),
    ("url", pa.array([1.5, 2.5, 3.5]), "--url-column"),
    ("uid", pa.array([{"a": 1}] * 3), "--uid-column"),
])
def test_wrong_column_type_is_one_line_naming_file_column_type(tmp_path, column, values, flag):
    """Issue 17.9/17.10: a list-typed text column lost its rows from the accounting ("rows_in 0"), an
    integer one was cast to strings silently."""
    cols = {"text": ["a dog", "a cat", "x"], column: values}
    pq.write_table(pa.table(cols), tmp_path / "p.parquet")
    with pytest.raises(UserError, match=rf"p\.parquet: column '{column}' has type .+, not string \({flag}\)"):
        resolve_columns(expand_paths([str(tmp_path)]), text=None, uid=None, url=None, image=None, lang="lang",
                        lang_required=False)


def test_integer_uid_column_is_accepted(tmp_path):
    pq.write_table(pa.table({"text": ["a dog", "a cat"], "uid": [7, 8]}), tmp_path / "p.parquet")
    table, stats = read_all(tmp_path / "p.parquet", "parquet", PoolColumns(text="text", uid="uid", url=None, lang=None),
                            part_size=10)
    assert table.column("uid").to_pylist() == ["7", "8"] and not stats.rejected


def test_interleaved_members_of_two_samples_are_two_rows(tmp_path):
    """Issue 17.12: a.txt, b.txt, a.json, b.json used to be 4 rows with 2 false missing_text."""
    import io
    import json
    import tarfile

    path = tmp_path / "i.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in [("a.txt", b"a dog"), ("b.txt", b"a cat"), ("a.json", json.dumps({"url": "http://a"}).encode()),
                           ("b.json", json.dumps({"url": "http://b"}).encode()), ("a.jpg", b"x"), ("b.jpg", b"y")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    table, stats = read_all(path, "webdataset", PoolColumns(text=None, uid="uid", url="url", lang=None))
    assert table.select(["text", "url", "key", "row"]).to_pylist() == [
        {"text": "a dog", "url": "http://a", "key": "a", "row": 0},
        {"text": "a cat", "url": "http://b", "key": "b", "row": 1}]
    assert not stats.rejected
