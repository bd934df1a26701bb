"""Fuzz the pool readers (Parquet, WebDataset tar, Common Crawl WAT) with hypothesis: random bytes and
mutations of valid files. The only clean outcomes are rows, counted rejects/errors, or a UserError;
any other exception is a bug. Kept small (max_examples) so it runs in CI; raise FUZZ_EXAMPLES to dig."""
from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import UserError
from curation.pool import ReadStats, expand_paths, make_parts, read_part, resolve_columns
from harness import curation_inputs

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seeds() -> dict[str, bytes]:
    """One small valid file of each format, the starting points of the mutations."""
    d = Path(tempfile.mkdtemp(prefix="fuzzseed"))
    pq_dir = curation_inputs.write_parquet_pool(d / "pq", curation_inputs.pool_table().slice(0, 12), files=1,
                                                row_group_size=4)
    samples = [{"key": f"k{i}", "txt": t, "json": {"url": f"http://x/{i}", "lang": lang}}
               for i, (t, lang) in enumerate(curation_inputs.POOL_TEXTS[:8]) if t is not None]
    tar = curation_inputs.write_webdataset(d / "w" / "00000.tar", samples)
    wat = curation_inputs.write_wat(d / "a.warc.wat.gz", curation_inputs.WAT_PAGES)
    return {"parquet": (pq_dir / "pool-0.parquet").read_bytes(), "tar": tar.read_bytes(), "wat": wat.read_bytes(),
            "wat_raw": gzip.decompress(wat.read_bytes())}


SEEDS = _seeds()
SUFFIX = {"parquet": ".parquet", "tar": ".tar", "wat": ".warc.wat.gz"}


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """A valid file with a few byte flips, a cut, an inserted run, or a splice of another file."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif data:
            end = min(len(data), pos + draw(st.integers(1, 512)))
            data[pos:end] = bytes(end - pos)
    return bytes(data)


def read_all(data: bytes, fmt: str) -> None:
    """Write `data` as a pool file and read every part; assert a clean outcome and complete accounting."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"f{SUFFIX[fmt]}"
        path.write_bytes(data)
        try:
            files, cols = resolve_columns(expand_paths([str(path)]), text=None, uid=None, url=None, image=None,
                                          lang="lang", lang_required=False)
        except UserError:
            return  # a clean refusal naming the file
        for part in make_parts(files, 5):
            stats = ReadStats()
            rows = 0
            for table in read_part(part, cols, stats):
                assert isinstance(table, pa.Table)
                rows += table.num_rows
                for text in table.column("text").to_pylist():
                    assert text is None or isinstance(text, str)
                    text is None or text.encode("utf-8")  # storable as UTF-8 (no lone surrogates)
            if part.num_rows is not None:  # Parquet: every row of the part is a row or a counted reject
                assert rows + sum(stats.rejected.values()) == part.num_rows
            if stats.errors:
                assert stats.rejected["unreadable_file"] > 0


@pytest.mark.parametrize("fmt", ["parquet", "tar", "wat"])
def test_valid_seed_files_read(fmt):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"f{SUFFIX[fmt]}"
        path.write_bytes(SEEDS[fmt])
        files, cols = resolve_columns(expand_paths([str(path)]), text=None, uid=None, url=None, image=None,
                                      lang="lang", lang_required=False)
        stats = ReadStats()
        rows = sum(t.num_rows for p in make_parts(files, 5) for t in read_part(p, cols, stats))
        assert rows > 0 and not stats.errors


@FUZZ
@given(data=st.binary(max_size=2048), fmt=st.sampled_from(["parquet", "tar", "wat"]))
def test_random_bytes(data, fmt):
    read_all(data, fmt)


@pytest.mark.slow
@FUZZ
@given(data=mutated(SEEDS["parquet"]))
def test_mutated_parquet(data):
    read_all(data, "parquet")


@pytest.mark.slow
@FUZZ
@given(data=mutated(SEEDS["tar"]))
def test_mutated_webdataset_tar(data):
    read_all(data, "tar")


@pytest.mark.slow
@FUZZ
@given(data=mutated(SEEDS["wat_raw"]), compress=st.booleans())
def test_mutated_wat(data, compress):
    """Mutations of the WARC text (then gzipped, so the parser sees them) and of the gzip stream itself."""
    read_all(gzip.compress(data) if compress else mutated_gzip(data), "wat")


def mutated_gzip(data: bytes) -> bytes:
    z = bytearray(gzip.compress(data))
    if len(z) > 40:
        z[len(z) // 2] ^= 0x55
    return bytes(z)
