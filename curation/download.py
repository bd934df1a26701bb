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
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation import duck
from curation.images import IMAGE_EXTS, image_format
from curation.common import (UserError, atomic_path, output_lock, read_json, write_json_atomic,
                             write_parquet_atomic)
from curation.balance_stats import write_sizes
from curation.shards import end_of_archive, member
from curation.tars import TarDamaged
from curation.tars import members as tar_members

EXTRA_COLUMNS = ["uid", "lang", "entry_ids", "text", "texts"]


def download_input(curated: Path) -> Path:
    """CURATED/download/input.parquet: the rows img2dataset fetches (url, caption + extra columns)."""
    src = curated / "curated.parquet"
    if not src.exists():
        raise UserError(f"{curated} has no curated.parquet: run `curate balance --out {curated}` first")
    todo = pq.read_table(src)
    if todo.num_rows == 0:
        raise UserError(f"{curated}/curated.parquet has no images to download")
    out = curated / "download" / "input.parquet"
    if not out.exists():
        table = pa.table({"url": todo.column("url"), "caption": todo.column("text"),
                          **{c: todo.column(c) for c in EXTRA_COLUMNS}})
        write_parquet_atomic(out, table)
    return out


def _normalise_json(data: bytes) -> bytes:
    meta = json.loads(data)
    texts = meta.get("texts")
    if isinstance(texts, list):
        meta["texts"] = [[x["text"], x["lang"], x["entry_ids"]] if isinstance(x, dict) else x for x in texts]
    return json.dumps(meta, ensure_ascii=False).encode()


def normalise_shard(path: Path) -> None:
    """Rewrite a downloaded shard: json texts as [[text, lang, entry_ids], ...], image ext from magic bytes."""
    def chunks():
        with open(path, "rb") as f:
            for m, data in _whole_members(path, f, lambda m: True):
                stem, _, ext = m.name.rpartition(".")
                if ext == "json":
                    data = _normalise_json(data)
                elif ext in IMAGE_EXTS:
                    ext = image_format(data) or ext
                yield member(f"{stem}.{ext}", data)
    size = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for c in chunks():
            f.write(c)
            size += len(c)
        f.write(end_of_archive(size))


def _tar_samples(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for m, _ in _whole_members(path, f, lambda m: False) if m.name.endswith(".json"))


def _whole_members(path: Path, f, want):
    """tars.members of a downloaded shard; a cut or damaged one is a UserError saying how to refetch it."""
    try:
        yield from tar_members(f, want)
    except TarDamaged as e:
        raise UserError(f"{path}: {e}; delete it and its _stats.json, then rerun the same `curate download` "
                        "to fetch that shard again") from e


def collect_results(curated: Path) -> dict:
    """Join img2dataset's per-shard parquet back into curated.parquet; returns download totals."""
    shards = curated / "shards"
    metas = sorted(str(p) for p in shards.glob("[0-9]*.parquet"))
    stats = [read_json(p) for p in sorted(shards.glob("*_stats.json"))]
    totals = {"attempted": sum(s.get("count", 0) for s in stats),
              "downloaded": sum(s.get("successes", 0) for s in stats),
              "failed_downloads": sum(s.get("failed_to_download", 0) + s.get("failed_to_resize", 0) for s in stats)}
    if not metas:
        return totals
    con = duck.connect()
    src = curated / "curated.parquet"
    query = """
        SELECT c.* EXCLUDE (shard, key, status),
               CASE WHEN d.status = 'success' THEN d.shard END AS shard,
               CASE WHEN d.status = 'success' THEN d.key END AS key,
               CASE WHEN d.status = 'success' THEN 'written' ELSE 'failed_download' END AS status
        FROM read_parquet(?) c LEFT JOIN (
            SELECT uid, key, status, regexp_extract(filename, '([0-9]+)\\.parquet$', 1)::INTEGER AS shard
            FROM read_parquet(?, filename = true)) d USING (uid)
        ORDER BY shard NULLS LAST, key"""
    duck.copy_parquet(con, query, [str(src), metas], src)
    con.close()
    return totals


def run_download(curated: str, *, processes: int = 1, thread_count: int = 32, image_size: int = 256,
                 resize_mode: str = "no", timeout: int = 10, retries: int = 0, encode_format: str = "jpg",
                 shard_size: int | None = None) -> dict:
    """Download the curated URLs into CURATED/shards; returns the updated stats.json content."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    folder = Path(curated)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: give the CURATED folder written by `curate balance`")
    stats_path = folder / "stats.json"
    stats = read_json(stats_path)
    if not stats.get("url_only"):
        raise UserError(f"{folder} already has shards written from the pool's own images; `curate download` "
                        "is for URL-only pools (WAT, Parquet without an image column)")
    with output_lock(folder):
        src = download_input(folder)
        from img2dataset import download

        shards = folder / "shards"
        shards.mkdir(exist_ok=True)
        manifest = read_json(folder / "manifest.json") if (folder / "manifest.json").exists() else {}
        size = shard_size or (manifest.get("options") or {}).get("shard_size") or 10000
        # img2dataset's incremental mode reads every shards/*.json as "<shard>_stats.json": a rerun would crash on ours
        (shards / "sizes.json").unlink(missing_ok=True)
        download(url_list=str(src), input_format="parquet", url_col="url", caption_col="caption",
                 save_additional_columns=EXTRA_COLUMNS, output_format="webdataset", output_folder=str(shards),
                 processes_count=processes, thread_count=thread_count, image_size=image_size,
                 resize_mode=resize_mode, timeout=timeout, retries=retries, encode_format=encode_format,
                 disable_all_reencoding=resize_mode == "no", number_sample_per_shard=int(size),
                 distributor="multiprocessing", incremental_mode="incremental", enable_wandb=False,
                 compute_hash=None)
        for tar in sorted(shards.glob("[0-9]*.tar")):
            normalise_shard(tar)
        totals = collect_results(folder)
        write_sizes(shards, {int(p.stem): _tar_samples(p) for p in shards.glob("[0-9]*.tar")})
        stats["totals"].update({"failed_downloads": totals["failed_downloads"], "written": totals["downloaded"],
                                "shards": len(list(shards.glob("[0-9]*.tar")))})
        stats["download"] = totals
        write_json_atomic(stats_path, stats)
    return stats
