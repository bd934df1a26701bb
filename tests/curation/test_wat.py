"""curation.wat (FastWARC): the same texts and urls as the old line scanner on valid WAT files; records
found by WARC framing; skipped records counted by kind; damage costs only the tail, with its offset."""
from __future__ import annotations

import gzip
import json
import random
from collections import Counter

import pyarrow as pa
import pytest

from curation.pool import Part, PoolColumns, PoolFile, ReadStats, make_parts, read_part
from curation.wat import WatDamaged, image_links
from pool_factory import WAT_PAGES, _warc_record, write_wat
from wat_reference import reference_wat_rows

COLS = PoolColumns(text=None, uid="uid", url="url", lang=None)
WORDS = ["dog", "Hund", "北京", "東京タワー", "chat noir", "\ud800x", "a\u00a0b", "  spaced  ", "", "émoji 🐕"]


def read(path) -> tuple[list[dict], ReadStats]:
    stats = ReadStats()
    tables = list(read_part(Part(0, str(path), "wat"), COLS, stats))
    rows = pa.concat_tables(tables).select(["text", "url", "row"]).to_pylist() if tables else []
    return rows, stats


def random_pages(rng: random.Random, n: int) -> list[tuple[str, list[dict]]]:
    pages = []
    for i in range(n):
        links = []
        for j in range(rng.randrange(0, 6)):
            link = {"path": rng.choice(["IMG@/src", "IMG@/src", "A@/href", "IMG@/srcset"]),
                    "url": rng.choice([f"img/{i}_{j}.jpg", f"/abs/{j}.png", f"http://cdn{j}.example/x.webp",
                                       f"../up/{i}.gif", "", "//proto.example/p.jpg", "http://[bad/x.jpg"])}
            for k in ("alt", "title", "data-image-title"):
                if rng.random() < 0.5:
                    link[k] = rng.choice(WORDS + [None, 5])
            links.append(link)
        pages.append((rng.choice([f"http://site{i}.example/a/b/page{i}.html", f"https://ü.example/{i}/"]), links))
    return pages


@pytest.mark.parametrize("seed", range(5))
def test_same_texts_urls_and_rows_as_the_line_scanner(tmp_path, seed):
    path = write_wat(tmp_path / f"r{seed}.warc.wat.gz", random_pages(random.Random(seed), 40))
    rows, stats = read(path)
    assert rows == reference_wat_rows(path)
    assert len(rows) > 20 and set(stats.rejected) <= {"bad_url"}
    assert not stats.errors and stats.skipped_records == {"not_metadata": 1, "not_response": 1}


def write_records(path, records: list[tuple[dict, bytes]]) -> None:
    with open(path, "wb") as f:
        for headers, body in records:
            f.write(gzip.compress(_warc_record(headers, body)))


def envelope(links: list[dict], warc_type: str = "response") -> dict:
    return {"Envelope": {"WARC-Header-Metadata": {"WARC-Type": warc_type}, "Payload-Metadata": {
        "HTTP-Response-Metadata": {"HTML-Metadata": {"Links": links}}}}}


META = {"WARC-Type": "metadata", "WARC-Target-URI": "http://p.example/x/", "Content-Type": "application/json"}
DOG = [{"path": "IMG@/src", "url": "d.jpg", "alt": "a dog"}]


def test_records_by_framing_not_by_lines(tmp_path):
    """A payload spread over lines is read; a non-metadata record whose body looks like a WAT line is not."""
    path = tmp_path / "f.warc.wat.gz"
    fake = b"WARC-Target-URI: http://evil.example/\r\n" + json.dumps(envelope(DOG)).encode() + b"\r\n"
    write_records(path, [
        ({"WARC-Type": "resource", "WARC-Target-URI": "http://r.example/"}, fake),
        (META, json.dumps(envelope(DOG), indent=2).encode()),
        ({**META, "WARC-Target-URI": "http://q.example/"}, b"{not json"),
        ({**META}, json.dumps({"Envelope": {"Payload-Metadata": {"HTTP-Request-Metadata": {}}}}).encode()),
        ({**META}, json.dumps({"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {}}}}).encode()),
    ])
    rows, stats = read(path)
    assert rows == [{"text": "a dog", "url": "http://p.example/x/d.jpg", "row": 0}]
    assert stats.skipped_records == {"not_metadata": 1, "malformed_json": 1, "not_response": 1, "not_html": 1}
    assert not stats.errors


def test_truncated_file_keeps_the_texts_before_the_damage(tmp_path):
    """17.11: the old reader lost the texts before a cut too (gzip read-ahead); now only the tail is lost."""
    pages = [(f"http://s.example/{i}/", [{"path": "IMG@/src", "url": "i.jpg", "alt": f"text {i}"}]) for i in range(200)]
    path = write_wat(tmp_path / "t.warc.wat.gz", pages)
    whole, _ = read(path)
    data = path.read_bytes()
    for cut in (len(data) - 30, len(data) // 2, len(data) // 2 + 7, 300):
        path.write_bytes(data[:cut])
        rows, stats = read(path)
        assert rows == whole[:len(rows)]
        assert stats.rejected == {"unreadable_file": 1} and stats.errors[0]["after_rows"] == len(rows)
        assert "damaged after byte" in stats.errors[0]["error"]
        if cut > 1000:
            assert len(rows) >= len(whole) * (cut - 1000) // len(data) - 5


def test_corrupt_member_in_the_middle(tmp_path):
    pages = [(f"http://s.example/{i}/", DOG) for i in range(50)]
    path = write_wat(tmp_path / "c.warc.wat.gz", pages)
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    rows, stats = read(path)
    assert 10 < len(rows) < 50 and stats.rejected == {"unreadable_file": 1}


def test_not_a_warc_file(tmp_path):
    path = tmp_path / "n.warc.wat.gz"
    path.write_bytes(gzip.compress(b"hello, not a WARC file\n" * 50))
    with open(path, "rb") as f, pytest.raises(WatDamaged):
        list(image_links(f, Counter()))
    rows, stats = read(path)
    assert rows == [] and stats.rejected == {"unreadable_file": 1}


def test_fixture_wat_pages(tmp_path):
    path = write_wat(tmp_path / "w.warc.wat.gz", WAT_PAGES)
    assert read(path)[0] == reference_wat_rows(path)


def read_parts(path, part_bytes: int) -> tuple[list[dict], ReadStats, int]:
    files = [PoolFile(str(path), "wat", size=path.stat().st_size)]
    parts = make_parts(files, 1000, wat_part_bytes=part_bytes)
    stats = ReadStats()
    rows = [r for p in parts for t in read_part(p, COLS, stats) for r in t.select(["text", "url", "row"]).to_pylist()]
    return rows, stats, len(parts)


@pytest.mark.parametrize("part_bytes", [300, 1000, 4096])
def test_large_wat_files_are_read_in_parts_that_records_decide(tmp_path, part_bytes):
    """Issue 11.4: a WAT part is smaller than the file; each record goes to the part where its gzip member
    starts, so the parts together give every text once, in file order, with unique increasing rows."""
    path = write_wat(tmp_path / "big.warc.wat.gz", random_pages(random.Random(7), 60))
    whole, _ = read(path)
    rows, stats, n_parts = read_parts(path, part_bytes)
    assert n_parts > 1 and not stats.errors
    assert [(r["text"], r["url"]) for r in rows] == [(r["text"], r["url"]) for r in whole]
    assert [r["row"] for r in rows] == sorted({r["row"] for r in rows})
    assert stats.skipped_records == {"not_metadata": 1, "not_response": 1}


def test_wat_that_is_one_gzip_member_is_read_whole_by_its_first_part(tmp_path):
    path = write_wat(tmp_path / "one.warc.wat.gz", random_pages(random.Random(3), 30))
    single = tmp_path / "single.warc.wat.gz"
    single.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())))
    rows, stats, n_parts = read_parts(single, 500)
    assert n_parts > 1 and not stats.errors
    assert [(r["text"], r["url"]) for r in rows] == [(r["text"], r["url"]) for r in read(path)[0]]


def test_damage_in_one_part_costs_only_that_part(tmp_path):
    pages = [(f"http://s.example/{i}/", [{"path": "IMG@/src", "url": "i.jpg", "alt": f"text {i}"}]) for i in range(80)]
    path = write_wat(tmp_path / "d.warc.wat.gz", pages)
    data = bytearray(path.read_bytes())
    data[len(data) // 3:len(data) // 3 + 30] = b"\xff" * 30
    path.write_bytes(bytes(data))
    rows, stats, n_parts = read_parts(path, 2048)
    assert n_parts >= 4 and stats.rejected == {"unreadable_file": 1}
    got = [int(r["text"].split()[1]) for r in rows]
    assert 70 <= len(got) < 80 and got == sorted(set(got))  # in order, once each; only the damaged part's lost
    assert got[-1] == 79  # the parts after the damage were read
