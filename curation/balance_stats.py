"""balance's outputs besides the shards: curated.parquet, thresholds.parquet, stats.json, plots/,
and for --online curation.json + counts.parquet (what training needs to re-draw every epoch).

stats.json per language: matched_texts (INDEX rows), matches (sum of c_e), images and kept_images
(counted by the language of the image's chosen text), entries, entries_matched (c_e > 0),
head_entries (c_e > t_L), head_matches (sum of head c_e), head_matches_kept (matches of head entries
among the kept images' chosen texts) and head_mass_removed = 1 - head_matches_kept / head_matches.
Totals add written / corrupt / missing / source_unreadable images (and failed downloads after `curate
download`); unreadable_sources lists each damaged pool file with its error and how many kept images
it cost.
With --online, kept counts are epoch 0's draw; every image is written.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import storage
from curation import balance, curated, plots, shards
from curation.select import SelectStats

WORK = ".work"
def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def write_curated(out: str, url_only: bool, online: bool, shard_size: int, work: Path | None = None) -> dict[str, int]:
    """curated.parquet: kept images in shard order with shard, key and status (streamed from kept.parquet,
    whose row position is the sample index); writes shards/sizes.json; returns status counts."""
    work = work or Path(out) / WORK
    skipped = [pq.read_table(p) for p in sorted((work / "skipped").glob("group-*.parquet"))]
    skip_idx = np.concatenate([t.column("idx").to_numpy() for t in skipped] + [np.zeros(0, np.int64)])
    skip_status = np.concatenate([np.asarray(t.column("status").to_pylist(), dtype=object) for t in skipped]
                                 + [np.zeros(0, dtype=object)])
    order = np.argsort(skip_idx)
    skip_idx, skip_status = skip_idx[order], skip_status[order]
    src = pq.ParquetFile(work / "kept.parquet")
    counts: dict[str, int] = {}
    sizes: dict[int, int] = {}
    pos = 0
    cols = ["uid", "url", "lang", "text", "entry_ids", "texts"]
    schema = curated.CURATED_SCHEMA if not online else curated.CURATED_SCHEMA.append(pa.field("keep", pa.bool_()))
    with storage.open_output(storage.join(out, curated.CURATED_PARQUET)) as tmp:
        writer = None
        for batch in src.iter_batches(batch_size=65536):
            n = batch.num_rows
            idx = np.arange(pos, pos + n, dtype=np.int64)
            status = np.full(n, "url-only" if url_only else "written", dtype=object)
            hit = np.searchsorted(skip_idx, idx)
            found = (hit < len(skip_idx)) & (skip_idx[np.minimum(hit, len(skip_idx) - 1)] == idx) if len(skip_idx) \
                else np.zeros(n, bool)
            status[found] = skip_status[hit[found]]
            written = status == "written"
            shard = idx // shard_size
            t = pa.table({c: batch.column(c) for c in cols} | {
                "shard": pa.array(shard.astype(np.int32), mask=~written),
                "key": pa.array([f"{i:0{shards.KEY_DIGITS}d}" if w else None for i, w in zip(idx.tolist(), written)],
                                pa.string()),
                "status": pa.array(status.tolist(), pa.string()), "source": batch.column("source"),
                "row": batch.column("row")} | ({"keep": batch.column("keep")} if online else {}))
            if writer is None:
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(t.cast(schema))
            for k, v in zip(*np.unique(status.astype(str), return_counts=True)):
                counts[str(k)] = counts.get(str(k), 0) + int(v)
            for k, v in zip(*np.unique(shard[written], return_counts=True)):
                sizes[int(k)] = sizes.get(int(k), 0) + int(v)
            pos += n
        if writer is None:
            pq.write_table(schema.empty_table(), tmp)
        else:
            writer.close()
    if not url_only:
        write_sizes(storage.join(out, "shards"), sizes)
    return counts


def write_sizes(folder: str | Path, per_shard: dict[int, int]) -> None:
    """shards/sizes.json {"00000.tar": n, ...}: OpenCLIP reads it to know the dataset size."""
    present = {storage.name(u) for u in storage.glob_in(folder, "*.tar")}
    storage.write_json(storage.join(folder, "sizes.json"), {name: per_shard.get(int(name.split(".")[0]), 0)
                                                            for name in sorted(present)})


def write_outputs(out: str, idx, th: balance.Thresholds, by_lang: dict, st: SelectStats, total: int,
                  url_only: bool, identity: dict, seconds: float, work: Path | None = None) -> dict:
    """Write every summary output (`work`: balance's work folder, default out/.work); returns stats.json's content."""
    opts = identity["options"]
    work = work or Path(out) / WORK
    status = write_curated(out, url_only, opts["online"], opts["shard_size"], work)
    after = st.counts_after if st.counts_after is not None else np.zeros(0, np.int64)
    per_lang, rows = {}, []
    for lang, (ids, c) in sorted(by_lang.items()):
        t_l = th.t[lang]
        head = balance.head_entries(c, t_l)
        a = after[ids] if len(after) else np.zeros(len(ids), np.int64)
        head_mass, head_kept = int(c[head].sum()), int(a[head].sum())
        d = {"t": _number(t_l), "entries": len(ids), "entries_matched": int((c > 0).sum()),
             "head_entries": int(head.sum()), "matched_texts": st.texts.get(lang, 0), "matches": int(c.sum()),
             "images": st.images.get(lang, 0), "kept_images": st.kept.get(lang, 0), "head_matches": head_mass,
             "head_matches_kept": head_kept,
             "head_mass_removed": (1.0 - head_kept / head_mass) if head_mass else 0.0}
        if d["matched_texts"] == 0 and d["entries_matched"] == 0:
            continue
        per_lang[lang] = d
        rows.append({"lang": lang, "t": float(t_l), "p": th.p,
                     "tail_share": balance.t_to_p(c, t_l) if c.sum() else 0.0, "entries": len(ids),
                     "entries_matched": d["entries_matched"], "head_entries": d["head_entries"],
                     "matched_texts": d["matched_texts"], "images": d["images"], "kept": d["kept_images"]})
    storage.write_parquet(storage.join(out, "thresholds.parquet"), pa.Table.from_pylist(rows, schema=pa.schema([
        ("lang", pa.string()), ("t", pa.float64()), ("p", pa.float64()), ("tail_share", pa.float64()),
        ("entries", pa.int64()), ("entries_matched", pa.int64()), ("head_entries", pa.int64()),
        ("matched_texts", pa.int64()), ("images", pa.int64()), ("kept", pa.int64())])))
    kept = sum(st.kept.values())
    totals = {"matched_texts": sum(st.texts.values()), "images": sum(st.images.values()), "kept": kept,
              "written": status.get("written", 0), "shards": 0 if url_only else math.ceil(total / opts["shard_size"]),
              "corrupt_images": status.get("corrupt", 0), "missing_images": status.get("missing", 0),
              "source_unreadable_images": status.get(shards.UNREADABLE, 0),
              "url_only_images": status.get("url-only", 0), "failed_downloads": None}
    unreadable = shards.unreadable_sources(sorted((work / "skipped").glob("group-*.parquet")))
    stats = {"t": opts["t"], "p": th.p, "seed": opts["seed"], "online": opts["online"], "url_only": url_only,
             "totals": totals, "unreadable_sources": unreadable, "per_lang": per_lang, "seconds": seconds}
    if opts["online"]:
        curated.write_online(out, idx.counts, t=opts["t"], p=th.p, seed=opts["seed"],
                             thresholds={k: _number(v) for k, v in th.t.items()})
    plots.write_plots(storage.join(out, "plots"), by_lang, after, th.t, per_lang)
    storage.write_json(storage.join(out, "stats.json"), stats)
    return stats
