"""Small INDEX folders written directly in the build-index contract, over real small image pools.

`make_index(folder, images, kind=...)` writes a pool (WebDataset tars, an img2dataset folder, a Parquet
file with an image-bytes column, or URL-only Parquet) where every matched text is one pool sample
carrying its image, plus INDEX/{matches/part-*.parquet, entries.parquet, counts.parquet, manifest.json}.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from core.outputs import content_hash

MATCH_SCHEMA = pa.schema([("uid", pa.string()), ("text", pa.string()), ("url", pa.string()), ("lang", pa.string()),
                          ("entry_ids", pa.list_(pa.int32())), ("source", pa.string()), ("row", pa.int64()),
                          ("key", pa.string())])


def image_bytes(i: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (i % 256, (i // 256) % 256, 99)).save(buf, format=fmt)
    return buf.getvalue()


@dataclass
class Img:
    uid: str
    texts: list  # [(text, lang, [entry_ids])]
    data: bytes | None = None
    url: str | None = None


@dataclass
class Built:
    index: Path
    pool: Path
    rows: pa.Table  # every INDEX row
    samples: dict = field(default_factory=dict)  # key of pool sample -> (uid, bytes)


def entries_table(langs: dict[str, int]) -> pa.Table:
    """Dense entry ids: for each language (in order) n entries named '<lang>w<i>'."""
    ids, ls, es = [], [], []
    for lang, n in langs.items():
        for i in range(n):
            ids.append(len(ids))
            ls.append(lang)
            es.append(f"{lang}w{i}")
    return pa.table({"entry_id": pa.array(ids, pa.int32()), "lang": ls, "entry": es,
                     "source": ["user"] * len(ids)})


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def make_index(folder: Path, images: list[Img], entries: pa.Table, kind: str = "webdataset", sources: int = 2,
               part_rows: int = 50, fingerprint: str | None = None) -> Built:
    """Write a pool of `kind` and the INDEX of its texts under folder/pool and folder/INDEX."""
    pool, index = folder / "pool", folder / "INDEX"
    (index / "matches").mkdir(parents=True, exist_ok=True)
    pool.mkdir(parents=True, exist_ok=True)
    samples = [(im, t) for im in images for t in im.texts]
    per_source = -(-len(samples) // sources)
    rows, sample_map = [], {}
    for s in range(sources):
        chunk = samples[s * per_source:(s + 1) * per_source]
        members, prows = [], []
        for j, (im, (text, lang, ids)) in enumerate(chunk):
            key = f"s{s}_{j:05d}"
            url = im.url or f"http://img.test/{im.uid}.png"
            if kind in ("webdataset", "img2dataset") and im.data is not None:
                members.append((f"{key}.png", im.data))
            if kind in ("webdataset", "img2dataset"):
                members += [(f"{key}.txt", text.encode()),
                            (f"{key}.json", json.dumps({"uid": im.uid, "url": url, "lang": lang}).encode())]
            prows.append({"key": key, "caption": text, "url": url, "status": "success", "image": im.data})
            sample_map[key] = (im.uid, im.data)
            src = {"webdataset": pool / f"{s:05d}.tar", "img2dataset": pool / f"{s:05d}.parquet",
                   "parquet": pool / f"p{s}.parquet", "url": pool / f"p{s}.parquet"}[kind]
            rows.append({"uid": im.uid, "text": text, "url": url, "lang": lang, "entry_ids": sorted(set(ids)),
                         "source": str(src.resolve()), "row": j,
                         "key": key if kind in ("webdataset", "img2dataset") else None})
        if kind == "webdataset":
            _tar(pool / f"{s:05d}.tar", members)
        elif kind == "img2dataset":
            _tar(pool / f"{s:05d}.tar", members)
            pq.write_table(pa.Table.from_pylist(prows).drop_columns(["image"]), pool / f"{s:05d}.parquet")
        else:
            t = pa.Table.from_pylist(prows, schema=pa.schema([("key", pa.string()), ("caption", pa.string()),
                                                              ("url", pa.string()), ("status", pa.string()),
                                                              ("image", pa.binary())]))
            pq.write_table(t if kind == "parquet" else t.drop_columns(["image"]), pool / f"p{s}.parquet",
                           row_group_size=7)
    table = pa.Table.from_pylist(rows, schema=MATCH_SCHEMA)
    pq.write_table(entries, index / "entries.parquet")
    fp = fingerprint or content_hash(index / "entries.parquet")
    parts = {}
    order = np.random.default_rng(1).permutation(table.num_rows)  # parts need not follow pool order
    shuffled = table.take(pa.array(order))
    for i, start in enumerate(range(0, max(table.num_rows, 1), part_rows)):
        part = shuffled.slice(start, part_rows).replace_schema_metadata({"worldclip.metadata_fingerprint": fp})
        pq.write_table(part, index / "matches" / f"part-{i:05d}.parquet")
        parts[f"part-{i:05d}"] = {"rows_in": part.num_rows, "matched": part.num_rows}
    counts = np.zeros(entries.num_rows, dtype=np.int64)
    for r in rows:
        counts[r["entry_ids"]] += 1
    pq.write_table(entries.select(["entry_id", "lang", "entry"]).append_column("count", pa.array(counts)),
                   index / "counts.parquet")
    fmt = {"url": "parquet"}.get(kind, kind)
    manifest = {"version": 1, "metadata": {"path": str(index / "entries.parquet"), "fingerprint": fp},
                "inputs": [], "options": {}, "backend": "test", "totals": {}, "per_lang": {}, "parts": parts,
                "pool": {"format": fmt, "text_column": "caption", "uid_column": None, "url_column": "url",
                         "image_column": "image" if kind == "parquet" else None},
                "complete": True}
    (index / "manifest.json").write_text(json.dumps(manifest))
    return Built(index, pool, table, sample_map)


def synthetic_images(n: int, entries: pa.Table, seed: int = 0, max_texts: int = 3, with_data: bool = True
                     ) -> list[Img]:
    """n images with 1..max_texts texts each; each text matches 1-3 entries of one language."""
    rng = np.random.default_rng(seed)
    langs = entries.column("lang").to_pylist()
    names_of = entries.column("entry").to_pylist()
    by_lang: dict[str, list[int]] = {}
    for i, lang in enumerate(langs):
        by_lang.setdefault(lang, []).append(i)
    names = sorted(by_lang)
    out = []
    for i in range(n):
        texts = []
        for j in range(int(rng.integers(1, max_texts + 1))):
            lang = names[int(rng.integers(len(names)))]
            pool = by_lang[lang]
            k = int(rng.integers(1, 4))
            ids = sorted({pool[min(int(rng.zipf(1.5)) - 1, len(pool) - 1)] for _ in range(k)})
            texts.append((f"text {i} {j} " + " ".join(names_of[e] for e in ids), lang, ids))
        out.append(Img(f"uid{i:06d}", texts, image_bytes(i) if with_data else None))
    return out


def repart(index: Path, out: Path, part_rows: int, seed: int = 2) -> Path:
    """Copy an INDEX with its matches cut into parts of another size (and another row order)."""
    import shutil

    out.mkdir(parents=True)
    (out / "matches").mkdir()
    for name in ("entries.parquet", "counts.parquet"):
        shutil.copy(index / name, out / name)
    table = pa.concat_tables(pq.read_table(p) for p in sorted((index / "matches").glob("part-*.parquet")))
    meta = table.schema.metadata
    table = table.take(pa.array(np.random.default_rng(seed).permutation(table.num_rows)))
    parts = {}
    for i, start in enumerate(range(0, table.num_rows, part_rows)):
        pq.write_table(table.slice(start, part_rows).replace_schema_metadata(meta),
                       out / "matches" / f"part-{i:05d}.parquet")
        parts[f"part-{i:05d}"] = {}
    manifest = json.loads((index / "manifest.json").read_text())
    manifest["parts"] = parts
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out
