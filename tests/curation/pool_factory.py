"""Input factories for curation tests: a small multilingual META and small pools in every format.

Plain functions and constants, importable as `pool_factory` from any test folder (pyproject's pytest
`pythonpath`), so tests can build variants; tests/curation/conftest.py wraps them in session fixtures.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metadata.store import Block, append

META_ENTRIES = [
    ("en", "dog"), ("en", "cat"), ("en", "New York"), ("en", "York"), ("en", "red car"), ("en", "beach"),
    ("en", "0"), ("en", "42"), ("en", "photo"), ("en", "Tokyo"),
    ("de", "Hund"), ("de", "Strand"), ("de", "Katze"),
    ("zh", "北京"), ("zh", "天安门"), ("zh", "广场"),
    ("ja", "東京"), ("ja", "タワー"), ("ja", "夜景"),
]

# (text, lang) with texts long enough for lid.176 to identify them reliably.
POOL_TEXTS = [
    ("A photo of a dog running on the beach at sunset", "en"),
    ("My cat sleeps on the red car every morning", "en"),
    ("Skyline of New York at night, seen from the river", "en"),
    ("The answer is 42, said the old man with a smile", "en"),
    ("Nothing to see here, just some random words today", "en"),
    ("Ein Hund spielt am Strand mit einem Ball", "de"),
    ("Die Katze liegt den ganzen Tag auf dem Sofa", "de"),
    ("北京天安门广场的美丽夜景照片", "zh"),
    ("东京タワーの夜景がとてもきれいです", "ja"),
    ("東京の夜景とタワーの写真です", "ja"),
    ("Un chien joue sur la plage avec un ballon", "fr"),
    ("   ", "en"),
    ("", "en"),
    (None, "en"),
    ("\tdog\x00with control\x07 chars\n", "en"),
    ("York" + " lorem" * 20_000, "en"),  # 100k+ characters
]


def write_meta(folder: Path, entries=META_ENTRIES) -> Path:
    """A real META folder (metadata.store): entry_id i is entries[i] (consecutive runs of one language)."""
    blocks: list[Block] = []
    for lang, entry in entries:
        if not blocks or blocks[-1].lang != lang:
            blocks.append(Block(lang, "user", []))
        blocks[-1].entries.append(entry)
    append(folder, blocks, {"command": "tests"})
    return folder


def pool_table(repeat: int = 1, with_lang: bool = True) -> pa.Table:
    rows = [(t, lang) for _ in range(repeat) for t, lang in POOL_TEXTS]
    cols = {
        "text": pa.array([t for t, _ in rows], pa.string()),
        "uid": pa.array([f"img{i // 2:06d}" if i % 5 else None for i in range(len(rows))], pa.string()),
        "url": pa.array([f"http://example.com/{i}.jpg" if i % 3 else None for i in range(len(rows))], pa.string()),
    }
    if with_lang:
        cols["lang"] = pa.array([lang for _, lang in rows], pa.string())
    return pa.table(cols)


def repeated_pool(repeat: int, long_text: bool = True) -> pa.Table:
    """pool_table repeated, with its 100k-character text kept once (or not at all)."""
    table = pool_table(repeat=repeat)
    short = pc.less(pc.fill_null(pc.utf8_length(table.column("text")), 0), 1000)
    return pa.concat_tables([table.filter(short), pool_table().slice(len(POOL_TEXTS) - 1, int(long_text))])


def write_parquet_pool(folder: Path, table: pa.Table, files: int = 2, row_group_size: int = 7) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-table.num_rows // files)
    for i in range(files):
        pq.write_table(table.slice(i * per, per), folder / f"pool-{i}.parquet", row_group_size=row_group_size)
    return folder


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_img2dataset(folder: Path, texts: list[str | None], failed_every: int = 4) -> Path:
    """One img2dataset shard: 00000.parquet (key, url, caption, status, ...), 00000.tar, 00000_stats.json."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = [f"0000{i:05d}" for i in range(len(texts))]
    status = ["failed_to_download" if i % failed_every == failed_every - 1 else "success" for i in range(len(texts))]
    pq.write_table(pa.table({
        "key": keys, "url": [f"http://img.example/{k}.jpg" for k in keys], "caption": pa.array(texts, pa.string()),
        "status": status, "error_message": [None if s == "success" else "404" for s in status],
        "width": [64] * len(texts), "height": [64] * len(texts),
    }), folder / "00000.parquet")
    with tarfile.open(folder / "00000.tar", "w") as tar:
        for k, t, s in zip(keys, texts, status):
            if s == "success":
                _tar_add(tar, f"{k}.jpg", b"\xff\xd8fakejpeg")
                _tar_add(tar, f"{k}.txt", (t or "").encode())
                _tar_add(tar, f"{k}.json", json.dumps({"key": k, "caption": t}).encode())
    (folder / "00000_stats.json").write_text(json.dumps({"count": len(texts), "successes": status.count("success")}))
    return folder


def write_webdataset(path: Path, samples: list[dict]) -> Path:
    """samples: {"key", optional "txt" (str), optional "json" (dict)}; each gets a .jpg member."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for s in samples:
            _tar_add(tar, f"{s['key']}.jpg", b"\xff\xd8fakejpeg")
            if "txt" in s:
                _tar_add(tar, f"{s['key']}.txt", s["txt"].encode())
            if "json" in s:
                _tar_add(tar, f"{s['key']}.json", json.dumps(s["json"]).encode())
    return path


def _warc_record(headers: dict, body: bytes) -> bytes:
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body + b"\r\n\r\n"


def write_wat(path: Path, pages: list[tuple[str, list[dict]]]) -> Path:
    """A Common Crawl WAT file: a warcinfo record, then per page a metadata record whose JSON payload
    has Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata.Links; each record is its own
    gzip member, as in real .warc.wat.gz files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(_warc_record({"WARC-Type": "warcinfo", "WARC-Filename": path.name},
                                           b"software: test\r\nformat: WARC File Format 1.0\r\n")))
        for i, (uri, links) in enumerate(pages):
            envelope = {"Envelope": {"Format": "WARC", "WARC-Header-Metadata": {"WARC-Type": "response",
                                                                                 "WARC-Target-URI": uri},
                                     "Payload-Metadata": {"Actual-Content-Type": "application/http; msgtype=response",
                                                          "HTTP-Response-Metadata": {
                                                              "Response-Message": {"Status": "200"},
                                                              "HTML-Metadata": {"Head": {"Title": f"page {i}"},
                                                                                "Links": links}}}}}
            body = json.dumps(envelope).encode()
            f.write(gzip.compress(_warc_record({"WARC-Type": "metadata", "WARC-Target-URI": uri,
                                                "WARC-Date": "2024-01-01T00:00:00Z",
                                                "Content-Type": "application/json"}, body)))
        # a request-metadata record without HTML-Metadata: contributes no texts
        req = json.dumps({"Envelope": {"Payload-Metadata": {"HTTP-Request-Metadata": {"Request-Message": {}}}}})
        f.write(gzip.compress(_warc_record({"WARC-Type": "metadata", "WARC-Target-URI": "http://x.example/"},
                                           req.encode())))
    return path


WAT_PAGES = [
    ("http://site.example/a/page.html", [
        {"path": "IMG@/src", "url": "img/dog.jpg", "alt": "A dog on the beach", "title": "My cat and dog"},
        {"path": "A@/href", "url": "/other.html", "text": "dog link (not an image)"},
        {"path": "IMG@/src", "url": "http://cdn.example/x.png", "alt": "", "data-image-title": "New York skyline"},
        {"path": "IMG@/src", "url": "/noalt.gif"},
    ]),
    ("http://site.example/b/", [
        {"path": "IMG@/src", "url": "../c/tokyo.jpg", "alt": "Tokyo tower at night", "title": None},
    ]),
]


def tar_cut_points(data: bytes) -> list[int]:
    """Every member boundary and points inside every header (name, checksum, magic) and data block, and inside
    the end block: where a cut tar must be reported, not read as a clean end."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        ms = tar.getmembers()
    end = ms[-1].offset_data + -(-ms[-1].size // 512) * 512
    points = {end, end + 1, end + 511}
    for m in ms:
        points |= {m.offset, m.offset + 1, m.offset + 100, m.offset + 148, m.offset + 257, m.offset + 511,
                   m.offset_data + 1, m.offset_data + m.size // 2, m.offset_data + m.size - 1}
    return sorted(p for p in points if 0 < p < end + 512)
