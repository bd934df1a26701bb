"""balance's outputs besides the shards: curated.parquet, thresholds.parquet, stats.json, plots/,
and for --online curation.json + counts.parquet (what training needs to re-draw every epoch)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation import balance, plots
from curation.common import atomic_path, write_json_atomic, write_parquet_atomic
from curation.select import SelectStats

WORK = ".work"


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def write_curated(out: Path, url_only: bool, online: bool) -> dict[str, int]:
    """curated.parquet: kept images in shard order with shard, key and status; returns status counts."""
    import duckdb

    work = out / WORK
    skipped = sorted((work / "skipped").glob("group-*.parquet"))
    skip_sql = (f"read_parquet({[str(s) for s in skipped]})" if skipped
                else "(SELECT NULL::BIGINT AS idx, NULL::VARCHAR AS status WHERE false)")
    written = "'url-only'" if url_only else "'written'"
    con = duckdb.connect()
    query = f"""
        SELECT k.uid, k.url, k.lang, k.text, k.entry_ids, k.texts,
               CASE WHEN s.status IS NULL AND NOT {url_only} THEN k.shard::INTEGER END AS shard,
               CASE WHEN s.status IS NULL AND NOT {url_only} THEN k.sample_key END AS key,
               coalesce(s.status, {written}) AS status, k.source, k."row"{", k.keep" if online else ""}
        FROM read_parquet('{work / "kept.parquet"}') k LEFT JOIN {skip_sql} s USING (idx)
        ORDER BY k.idx"""
    with atomic_path(out / "curated.parquet") as tmp:
        con.execute(f"COPY ({query}) TO '{tmp}' (FORMAT PARQUET)")
    counts = dict(con.execute(f"SELECT status, count(*) FROM read_parquet('{out / 'curated.parquet'}') "
                              "GROUP BY status").fetchall())
    if not url_only:
        sizes = con.execute(f"SELECT shard, count(*) FILTER (WHERE status = 'written') FROM "
                            f"read_parquet('{out / 'curated.parquet'}') WHERE shard IS NOT NULL GROUP BY shard").fetchall()
        write_sizes(out / "shards", {s: n for s, n in sizes})
    con.close()
    return counts


def write_sizes(folder: Path, per_shard: dict[int, int]) -> None:
    """shards/sizes.json {"00000.tar": n, ...}: OpenCLIP reads it to know the dataset size."""
    present = {p.name for p in folder.glob("*.tar")}
    write_json_atomic(folder / "sizes.json", {name: per_shard.get(int(name.split(".")[0]), 0)
                                              for name in sorted(present)})


def write_outputs(out: Path, idx, th: balance.Thresholds, by_lang: dict, st: SelectStats, total: int,
                  url_only: bool, identity: dict, seconds: float) -> dict:
    """Write every summary output; returns stats.json's content."""
    opts = identity["options"]
    status = write_curated(out, url_only, opts["online"]) if total else {}
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
    write_parquet_atomic(out / "thresholds.parquet", pa.Table.from_pylist(rows, schema=pa.schema([
        ("lang", pa.string()), ("t", pa.float64()), ("p", pa.float64()), ("tail_share", pa.float64()),
        ("entries", pa.int64()), ("entries_matched", pa.int64()), ("head_entries", pa.int64()),
        ("matched_texts", pa.int64()), ("images", pa.int64()), ("kept", pa.int64())])))
    kept = sum(st.kept.values())
    totals = {"matched_texts": sum(st.texts.values()), "images": sum(st.images.values()), "kept": kept,
              "written": status.get("written", 0), "shards": 0 if url_only else math.ceil(total / opts["shard_size"]),
              "corrupt_images": status.get("corrupt", 0), "missing_images": status.get("missing", 0),
              "url_only_images": status.get("url-only", 0), "failed_downloads": None}
    stats = {"t": opts["t"], "p": th.p, "seed": opts["seed"], "online": opts["online"], "url_only": url_only,
             "totals": totals, "per_lang": per_lang, "seconds": seconds}
    if opts["online"]:
        write_parquet_atomic(out / "counts.parquet", idx.counts.select(["entry_id", "lang", "count"]))
        write_json_atomic(out / "curation.json", {"online": True, "t": opts["t"], "p": th.p, "seed": opts["seed"],
                                                 "thresholds": {k: _number(v) for k, v in th.t.items()},
                                                 "counts": "counts.parquet"})
    plots.write_plots(out / "plots", by_lang, after, th.t, per_lang)
    write_json_atomic(out / "stats.json", stats)
    return stats
