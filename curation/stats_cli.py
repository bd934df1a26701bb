"""Reads an INDEX (counts.parquet, matches/) or a CURATED folder (thresholds.parquet, curated.parquet,
stats.json) with DuckDB and prints per-language tables.
"""
from __future__ import annotations

import argparse

from core import storage
from core.errors import UserError
from core.flags import COUNT
from curation.index import match_files


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="print per-language tables of an INDEX or a CURATED folder",
                              description=__doc__)
    p.add_argument("folder", metavar="INDEX|CURATED", help="output folder of build-index or balance")
    p.add_argument("--top", type=COUNT, default=0, metavar="N",
                   help="also print the N most matched entries per language (INDEX only; default: 0)")
    p.set_defaults(func=run)


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """Plain aligned text table; floats with 4 significant digits."""
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)
    cells = [columns] + [[cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _query(con, sql: str) -> str:
    rel = con.sql(sql)
    return format_table(rel.columns, rel.fetchall())


def folder_kind(folder: str) -> str:
    if any(storage.exists(storage.join(folder, name)) for name in ("thresholds.parquet", "curated.parquet")):
        return "curated"
    if storage.exists(storage.join(folder, "counts.parquet")):
        return "index"
    raise UserError(f"{folder} is neither an INDEX (counts.parquet) nor a finished CURATED (thresholds.parquet)")


def _register(con, name: str, urls: list[str]) -> None:
    """Give DuckDB Parquet files (paths or URLs) as a table `name`: streamed through core.storage, no path in SQL."""
    con.register(name, storage.arrow_dataset(urls))


def index_report(folder: str, top: int = 0) -> str:
    import duckdb

    con = duckdb.connect()
    _register(con, "counts", [storage.join(folder, "counts.parquet")])
    parts = match_files(folder)
    if parts:
        _register(con, "matches", parts)
    texts = ("(SELECT lang, count(*) AS matched_texts, count(DISTINCT uid) AS images FROM matches GROUP BY lang)"
             if parts else "(SELECT NULL AS lang, 0 AS matched_texts, 0 AS images WHERE false)")
    out = [f"INDEX {folder}", _query(con, f"""
        SELECT c.lang, count(*) AS entries, count(*) FILTER (WHERE c.count > 0) AS entries_matched,
               sum(c.count)::BIGINT AS matches, any_value(coalesce(t.matched_texts, 0)) AS matched_texts,
               any_value(coalesce(t.images, 0)) AS images, max(c.count) AS max_count
        FROM counts c LEFT JOIN {texts} t USING (lang)
        GROUP BY c.lang HAVING sum(c.count) > 0 ORDER BY matches DESC, c.lang""")]
    if top > 0:
        out.append(_query(con, f"""
            SELECT lang, entry, count FROM (
              SELECT lang, entry, count, row_number() OVER (PARTITION BY lang ORDER BY count DESC, entry) AS r
              FROM counts WHERE count > 0)
            WHERE r <= {int(top)} ORDER BY lang, count DESC, entry"""))
    return "\n\n".join(out)


def curated_report(folder: str) -> str:
    import duckdb

    con = duckdb.connect()
    out = [f"CURATED {folder}"]
    if storage.exists(storage.join(folder, "thresholds.parquet")):
        _register(con, "thresholds", [storage.join(folder, "thresholds.parquet")])
        out.append(_query(con, """
            SELECT lang, t, tail_share, entries, entries_matched, head_entries, matched_texts, images, kept,
                   round(kept / greatest(images, 1), 4) AS kept_share
            FROM thresholds ORDER BY images DESC, lang"""))
    if storage.exists(storage.join(folder, "curated.parquet")):
        _register(con, "curated", [storage.join(folder, "curated.parquet")])
        out.append(_query(con, """SELECT status, count(*) AS images, count(DISTINCT shard) AS shards
                                  FROM curated GROUP BY status ORDER BY status"""))
    if storage.exists(storage.join(folder, "stats.json")):
        stats = storage.read_json(storage.join(folder, "stats.json"))
        totals = stats["totals"]
        out.append(format_table(list(totals), [tuple(totals.values())]))
        if caps := stats.get("captions"):
            cols = ["captioned", "uncaptioned", "unknown_uids", "duplicate_uids"]
            out.append(format_table(["caption_source", *cols],
                                    [(k, *(v.get(c) for c in cols)) for k, v in sorted(caps.items())]))
    return "\n\n".join(out)


def run(args: argparse.Namespace) -> int:
    folder = storage.normalize(args.folder)
    with storage.errors(folder, "INDEX|CURATED"):
        kind = folder_kind(folder)
    print(index_report(folder, args.top) if kind == "index" else curated_report(folder))
    return 0
