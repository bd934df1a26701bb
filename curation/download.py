"""`curate download`: fetch a URL-only CURATED's images with img2dataset into CURATED/shards.

img2dataset gets curated.parquet's url and text (as its caption) plus uid, lang, entry_ids, text and
texts as additional columns, so every sample's json carries them. Afterwards each shard's json
`texts` is rewritten to [[text, lang, entry_ids], ...] (img2dataset stores Arrow structs as
objects) and each image member named by its real format (img2dataset names kept bytes by
--encode-format), curated.parquet gets each image's shard, key and status, and stats.json the number of
failed downloads. Rerunning resumes (img2dataset's incremental mode skips finished shards).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core import storage
from core.errors import UserError
from core.tars import TarDamaged
from core.tars import members as tar_members
from curation.balance_stats import write_sizes
from curation.images import IMAGE_EXTS, image_format
from curation.shards import end_of_archive, member

EXTRA_COLUMNS = ["uid", "lang", "entry_ids", "text", "texts"]
DISTRIBUTORS = ("multiprocessing", "pyspark")


def download_input(curated: str) -> str:
    """CURATED/download/input.parquet: the rows img2dataset fetches (url, caption + extra columns)."""
    src = storage.join(curated, "curated.parquet")
    if not storage.exists(src):
        raise UserError(f"{curated} has no curated.parquet: run `curate balance --out {curated}` first")
    todo = storage.read_parquet(src, columns=list(dict.fromkeys(["url", "text", *EXTRA_COLUMNS])))
    if todo.num_rows == 0:
        raise UserError(f"{src} has no images to download")
    out = storage.join(curated, "download", "input.parquet")
    if not storage.exists(out):
        table = pa.table({"url": todo.column("url"), "caption": todo.column("text"),
                          **{c: todo.column(c) for c in EXTRA_COLUMNS}})
        storage.write_parquet(out, table)
    return out


def _normalise_json(data: bytes) -> bytes:
    meta = json.loads(data)
    texts = meta.get("texts")
    if isinstance(texts, list):
        meta["texts"] = [[x["text"], x["lang"], x["entry_ids"]] if isinstance(x, dict) else x for x in texts]
    return json.dumps(meta, ensure_ascii=False).encode()


def normalise_shard(path: str | Path) -> None:
    """Rewrite a downloaded shard: json texts as [[text, lang, entry_ids], ...], image ext from magic bytes.
    Streamed member by member from and to the shard's store (the new shard replaces it whole)."""
    with storage.open_input(path) as raw, storage.open_output(path) as out:
        size = 0
        for m, data in _whole_members(path, raw, lambda m: True):
            stem, _, ext = m.name.rpartition(".")
            if ext == "json":
                data = _normalise_json(data)
            elif ext in IMAGE_EXTS:
                ext = image_format(data) or ext
            chunk = member(f"{stem}.{ext}", data)
            out.write(chunk)
            size += len(chunk)
        out.write(end_of_archive(size))


def _tar_samples(path: str) -> int:
    with storage.open_input(path) as raw:
        return sum(1 for m, _ in _whole_members(path, raw, lambda m: False) if m.name.endswith(".json"))


def _whole_members(path: str | Path, f, want):
    """tars.members of a downloaded shard; a cut or damaged one is a UserError saying how to refetch it."""
    try:
        yield from tar_members(f, want)
    except TarDamaged as e:
        raise UserError(f"{path}: {e}; delete it and its _stats.json, then rerun the same `curate download` "
                        "to fetch that shard again") from e


def _shard_results(metas: list[str]) -> pa.Table:
    """uid, key, status and shard number of every row img2dataset recorded in its per-shard Parquet files."""
    tables = []
    for m in metas:
        t = storage.read_parquet(m, columns=["uid", "key", "status"])
        shard = int(storage.name(m).split(".")[0])
        tables.append(t.append_column("shard", pa.array([shard] * t.num_rows, pa.int32())))
    return pa.concat_tables(tables)


def collect_results(curated: str) -> dict:
    """Join img2dataset's per-shard parquet back into curated.parquet; returns download totals."""
    import duckdb

    shards = storage.join(curated, "shards")
    metas = [u for u in storage.glob_in(shards, "*.parquet") if storage.name(u)[:1].isdigit()]
    stats = [storage.read_json(u) for u in storage.glob_in(shards, "*_stats.json")]
    totals = {"attempted": sum(s.get("count", 0) for s in stats),
              "downloaded": sum(s.get("successes", 0) for s in stats),
              "failed_downloads": sum(s.get("failed_to_download", 0) + s.get("failed_to_resize", 0) for s in stats)}
    if not metas:
        return totals
    con = duckdb.connect()
    src = storage.join(curated, "curated.parquet")
    con.register("c", storage.arrow_dataset([src]))
    con.register("d", _shard_results(metas))
    reader = con.sql("""
        SELECT c.* EXCLUDE (shard, key, status),
               CASE WHEN d.status = 'success' THEN d.shard END AS shard,
               CASE WHEN d.status = 'success' THEN d.key END AS key,
               CASE WHEN d.status = 'success' THEN 'written' ELSE 'failed_download' END AS status
        FROM c LEFT JOIN d USING (uid)
        ORDER BY shard NULLS LAST, key""").fetch_arrow_reader(65_536)
    with storage.open_output(src) as f, pq.ParquetWriter(f, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    con.close()
    return totals


def _check_distributor(distributor: str) -> None:
    """A known distributor whose package is here; for pyspark without an active session (img2dataset then starts
    a local one) its Python workers run this interpreter, not whatever `python3` is on the PATH."""
    if distributor not in DISTRIBUTORS:
        raise UserError(f"--distributor {distributor}: expected one of {', '.join(DISTRIBUTORS)}")
    if distributor == "pyspark":
        try:
            from pyspark.sql import SparkSession
        except ImportError as e:
            raise UserError("--distributor pyspark: pyspark is not installed here; `pip install pyspark` "
                            "(and run inside a Spark session), or use --distributor multiprocessing") from e
        if SparkSession.getActiveSession() is None:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def run_download(curated: str, *, processes: int = 1, thread_count: int = 32, image_size: int = 256,
                 resize_mode: str = "no", timeout: int = 10, retries: int = 0, encode_format: str = "jpg",
                 shard_size: int | None = None, distributor: str = "multiprocessing") -> dict:
    """Download the curated URLs into CURATED/shards (a path or URL); returns the updated stats.json content."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    _check_distributor(distributor)
    folder = storage.normalize(curated)
    with storage.errors(folder, "CURATED"):
        if not storage.isdir(folder):
            raise UserError(f"{folder} is not a folder: give the CURATED folder written by `curate balance`")
        stats_path = storage.join(folder, "stats.json")
        stats = storage.read_json(stats_path)
        if not stats.get("url_only"):
            raise UserError(f"{folder} already has shards written from the pool's own images; `curate download` "
                            "is for URL-only pools (WAT, Parquet without an image column)")
        with storage.lock(folder):
            return _download(folder, stats, processes=processes, thread_count=thread_count, image_size=image_size,
                             resize_mode=resize_mode, timeout=timeout, retries=retries, encode_format=encode_format,
                             shard_size=shard_size, distributor=distributor)


def _download(folder: str, stats: dict, *, processes: int, thread_count: int, image_size: int, resize_mode: str,
              timeout: int, retries: int, encode_format: str, shard_size: int | None, distributor: str) -> dict:
    src = download_input(folder)
    from img2dataset import download

    shards = storage.join(folder, "shards")
    storage.makedirs(shards)
    manifest_url = storage.join(folder, "manifest.json")
    manifest = storage.read_json(manifest_url) if storage.exists(manifest_url) else {}
    size = shard_size or (manifest.get("options") or {}).get("shard_size") or 10000
    # img2dataset's incremental mode reads every shards/*.json as "<shard>_stats.json": a rerun would crash on ours
    storage.remove(storage.join(shards, "sizes.json"))
    with storage.fsspec_config(shards):  # img2dataset's spawned processes open the store with fsspec themselves
        download(url_list=src, input_format="parquet", url_col="url", caption_col="caption",
                 save_additional_columns=EXTRA_COLUMNS, output_format="webdataset", output_folder=shards,
                 processes_count=processes, thread_count=thread_count, image_size=image_size,
                 resize_mode=resize_mode, timeout=timeout, retries=retries, encode_format=encode_format,
                 disable_all_reencoding=resize_mode == "no", number_sample_per_shard=int(size),
                 distributor=distributor, incremental_mode="incremental", enable_wandb=False,
                 compute_hash=None)
    tars = [u for u in storage.glob_in(shards, "*.tar") if storage.name(u)[:1].isdigit()]
    for tar in tars:
        normalise_shard(tar)
    totals = collect_results(folder)
    write_sizes(shards, {int(storage.name(u).split(".")[0]): _tar_samples(u) for u in tars})
    stats["totals"].update({"failed_downloads": totals["failed_downloads"], "written": totals["downloaded"],
                            "shards": len(tars)})
    stats["download"] = totals
    storage.write_json(storage.join(folder, "stats.json"), stats)
    return stats
