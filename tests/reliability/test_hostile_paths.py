"""Issue 17.6: paths never become SQL. Every path flag of balance, stats, download, metadata build-wiki and
metadata stats under a folder whose name holds a quote, a semicolon, a newline, SQL and glob characters:
the commands succeed and give the same results as under a plain folder (today: a DuckDB parse error,
or SQL run from the path)."""
from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.cli import main as curate
from index_factory import Img, entries_table, image_bytes, make_index, synthetic_images
from wiki_dump_factory import EN_PAGES, write_dump

HOSTILE = "it's; DROP TABLE x; --\n') TO 'pwn.parquet' (FORMAT PARQUET); -- [1]*"


def run(capsys, *argv) -> str:
    rc = curate([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 0 and "Traceback" not in err, err
    return out


def curated_rows(cur: Path) -> list[tuple]:
    return sorted((r["uid"], r["status"], r["shard"], r["key"])
                  for r in pq.read_table(cur / "curated.parquet").to_pylist())


@pytest.mark.slow
def test_balance_and_stats_under_a_hostile_folder(tmp_path, capsys):
    ent = entries_table({"en": 6, "de": 3})
    imgs = synthetic_images(40, ent, seed=3)
    results = []
    for base in (tmp_path / "plain", tmp_path / HOSTILE):
        built = make_index(base, imgs, ent, sources=2)
        cur = base / "CUR"
        run(capsys, "balance", "--index", built.index, "--out", cur, "--t", "3", "--workers", "1", "--shard-size", "8")
        index_stats = run(capsys, "stats", built.index, "--top", "2")
        cur_stats = run(capsys, "stats", cur)
        sizes = json.loads((cur / "shards" / "sizes.json").read_text())
        results.append((curated_rows(cur), index_stats.split("\n\n", 1)[1], cur_stats.split("\n\n", 1)[1], sizes))
    assert results[0] == results[1] and sum(results[0][3].values()) > 0
    assert not list(tmp_path.rglob("pwn.parquet"))


@pytest.mark.slow
def test_download_under_a_hostile_folder(tmp_path, capsys):
    base = tmp_path / HOSTILE
    www = base / "www"
    www.mkdir(parents=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        ent = entries_table({"en": 2})
        imgs = []
        for i in range(4):
            (www / f"img{i}.png").write_bytes(image_bytes(i))
            imgs.append(Img(f"u{i}", [(f"a photo {i}", "en", [i % 2])], None, f"{url}/img{i}.png"))
        built = make_index(base, imgs, ent, kind="url")
        cur = base / "CUR"
        run(capsys, "balance", "--index", built.index, "--out", cur, "--t", "1000", "--workers", "1")
        run(capsys, "download", cur, "--processes", "1", "--thread-count", "2")
    finally:
        httpd.shutdown()
        httpd.server_close()
    rows = pq.read_table(cur / "curated.parquet").to_pylist()
    assert sorted(r["status"] for r in rows) == ["written"] * 4
    assert json.loads((cur / "stats.json").read_text())["download"]["downloaded"] == 4


def test_build_wiki_and_metadata_stats_under_a_hostile_folder(tmp_path, capsys):
    base = tmp_path / HOSTILE
    base.mkdir()
    dump = write_dump(base / "enwiki.xml.bz2", "en", EN_PAGES, compress=True)
    meta = base / "META"
    run(capsys, "metadata", "build-wiki", "--dump", dump, "--lang", "en", "--force-english", "--out", meta, "--quiet",
        "--no-wordnet", "--pmi-threshold", "0", "--tmp-dir", base / "tmp")
    out = run(capsys, "metadata", "stats", meta, "--langs", "en")
    assert out.splitlines()[1].split()[0] == "en"


def test_a_duckdb_database_path_with_a_question_mark_is_one_line(tmp_path, capsys):
    """DuckDB itself reads '?' in a database file name as URI options: refused, naming the path."""
    dump = write_dump(tmp_path / "enwiki.xml.bz2", "en", EN_PAGES, compress=True)
    rc = curate(["metadata", "build-wiki", "--dump", str(dump), "--lang", "en", "--force-english",
                 "--out", str(tmp_path / "META"), "--quiet", "--tmp-dir", str(tmp_path / "a?b")])
    err = capsys.readouterr().err
    assert rc == 2 and "holds '?'" in err and "Traceback" not in err
