"""Session-scoped, read-only curation inputs built by pool_factory: a META and one small pool per format."""
from __future__ import annotations

from pathlib import Path

import pytest

from pool_factory import (
    POOL_TEXTS,
    WAT_PAGES,
    pool_table,
    write_img2dataset,
    write_meta,
    write_parquet_pool,
    write_wat,
    write_webdataset,
)


@pytest.fixture(scope="session")
def meta_dir(tmp_path_factory) -> Path:
    return write_meta(tmp_path_factory.mktemp("meta"))


@pytest.fixture(scope="session")
def parquet_pool(tmp_path_factory) -> Path:
    return write_parquet_pool(tmp_path_factory.mktemp("parquet_pool"), pool_table())


@pytest.fixture(scope="session")
def img2dataset_pool(tmp_path_factory) -> Path:
    return write_img2dataset(tmp_path_factory.mktemp("img2dataset") / "shards", [t for t, _ in POOL_TEXTS])


@pytest.fixture(scope="session")
def webdataset_pool(tmp_path_factory) -> Path:
    samples = [{"key": f"s{i:04d}", "txt": t, "json": {"url": f"http://wds.example/{i}.jpg", "lang": lang}}
               for i, (t, lang) in enumerate(POOL_TEXTS) if t is not None]
    samples.append({"key": "notext", "json": {"url": "http://wds.example/notext.jpg"}})
    return write_webdataset(tmp_path_factory.mktemp("wds") / "00000.tar", samples)


@pytest.fixture(scope="session")
def wat_pool(tmp_path_factory) -> Path:
    return write_wat(tmp_path_factory.mktemp("wat") / "CC-MAIN-test-00000.warc.wat.gz", WAT_PAGES)
