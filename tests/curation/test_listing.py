"""Common Crawl listings as pools (issue 11.4): `--pool …/wat.paths.gz --pool-base BASE`, locally and in a
real S3 bucket; the WAT files are read through core.storage and FastWARC."""
from __future__ import annotations

import gzip
import shutil

import pytest

from core.errors import UserError
from curation.pool import Part, PoolColumns, ReadStats, expand_paths, read_part
from pool_factory import WAT_PAGES, write_wat

KEYS = ["crawl-data/CC-MAIN-2024-10/segments/1/wat/a.warc.wat.gz",
        "crawl-data/CC-MAIN-2024-10/segments/2/wat/b.warc.wat.gz"]


def mirror(root) -> None:
    """A local mirror of a crawl: two WAT files under their Common Crawl keys, and wat.paths.gz."""
    for i, key in enumerate(KEYS):
        write_wat(root / key, WAT_PAGES[i:] + WAT_PAGES[:i])
    (root / "crawl-data" / "CC-MAIN-2024-10" / "wat.paths.gz").write_bytes(gzip.compress(
        ("\n".join(KEYS) + "\n").encode()))


def test_listing_with_a_local_base(tmp_path):
    mirror(tmp_path)
    listing = str(tmp_path / "crawl-data" / "CC-MAIN-2024-10" / "wat.paths.gz")
    assert expand_paths([listing], base=str(tmp_path)) == [(str(tmp_path / k), "wat") for k in KEYS]
    with pytest.raises(UserError, match="relative paths such as crawl-data/.+ --pool-base"):
        expand_paths([listing])
    (tmp_path / "empty.paths.gz").write_bytes(gzip.compress(b"\n"))
    with pytest.raises(UserError, match="names no file"):
        expand_paths([str(tmp_path / "empty.paths.gz")], base=str(tmp_path))
    (tmp_path / "odd.paths").write_text("x/readme.txt\n")
    with pytest.raises(UserError, match="lists .+readme.txt, not a .warc.wat.gz"):
        expand_paths([str(tmp_path / "odd.paths")], base=str(tmp_path))


def read_rows(files) -> list[dict]:
    cols = PoolColumns(text=None, uid="uid", url="url", lang=None)
    rows = []
    for i, (path, fmt) in enumerate(files):
        stats = ReadStats()
        rows += [r for t in read_part(Part(i, path, fmt), cols, stats) for r in t.to_pylist()]
        assert not stats.errors
    return [{k: r[k] for k in ("text", "url", "row")} for r in rows]


def test_listing_in_an_s3_bucket(tmp_path, s3):
    """wat.paths.gz and the WAT files in a bucket of a real S3 server: same texts as the local mirror."""
    mirror(tmp_path)
    shutil.copytree(tmp_path / "crawl-data", s3.path("crawl-data"))
    files = expand_paths([s3.url("crawl-data", "CC-MAIN-2024-10", "wat.paths.gz")], base=s3.url())
    assert files == [(s3.url(k), "wat") for k in KEYS]
    local = expand_paths([str(tmp_path / "crawl-data" / "CC-MAIN-2024-10" / "wat.paths.gz")], base=str(tmp_path))
    assert read_rows(files) == read_rows(local) and len(read_rows(local)) == 10
