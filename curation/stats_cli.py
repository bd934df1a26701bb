"""`curate stats INDEX|CURATED`: print per-language tables from the Parquet outputs, via DuckDB."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="print per-language tables of an INDEX or a CURATED folder",
                              description="Reads an INDEX (counts.parquet, matches/) or a CURATED folder "
                                          "(thresholds.parquet, curated.parquet, stats.json) with DuckDB and "
                                          "prints per-language tables.")
    p.add_argument("folder", metavar="INDEX|CURATED", help="output folder of build-index or balance")
    p.add_argument("--top", type=int, default=0, metavar="N",
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


def folder_kind(folder: Path) -> str:
    from curation.common import UserError

    if (folder / "thresholds.parquet").exists() or (folder / "curated.parquet").exists():
        return "curated"
    if (folder / "counts.parquet").exists():
        return "index"
    raise UserError(f"{folder} is neither an INDEX (counts.parquet) nor a finished CURATED (thresholds.parquet)")


def index_report(folder: Path, top: int = 0) -> str:
    import duckdb

    con = duckdb.connect()
    counts = folder / "counts.parquet"
    parts = sorted(str(p) for p in (folder / "matches").glob("part-*.parquet"))
    texts = (f"(SELECT lang, count(*) AS matched_texts, count(DISTINCT uid) AS images FROM read_parquet({parts}) "
             "GROUP BY lang)") if parts else "(SELECT NULL AS lang, 0 AS matched_texts, 0 AS images WHERE false)"
    out = [f"INDEX {folder}", _query(con, f"""
        SELECT c.lang, count(*) AS entries, count(*) FILTER (WHERE c.count > 0) AS entries_matched,
               sum(c.count)::BIGINT AS matches, any_value(coalesce(t.matched_texts, 0)) AS matched_texts,
               any_value(coalesce(t.images, 0)) AS images, max(c.count) AS max_count
        FROM read_parquet('{counts}') c LEFT JOIN {texts} t USING (lang)
        GROUP BY c.lang HAVING sum(c.count) > 0 ORDER BY matches DESC, c.lang""")]
    if top > 0:
        out.append(_query(con, f"""
            SELECT lang, entry, count FROM (
              SELECT lang, entry, count, row_number() OVER (PARTITION BY lang ORDER BY count DESC, entry) AS r
              FROM read_parquet('{counts}') WHERE count > 0)
            WHERE r <= {int(top)} ORDER BY lang, count DESC, entry"""))
    return "\n\n".join(out)


def curated_report(folder: Path) -> str:
    import duckdb

    con = duckdb.connect()
    out = [f"CURATED {folder}"]
    if (folder / "thresholds.parquet").exists():
        out.append(_query(con, f"""
            SELECT lang, t, tail_share, entries, entries_matched, head_entries, matched_texts, images, kept,
                   round(kept / greatest(images, 1), 4) AS kept_share
            FROM read_parquet('{folder / 'thresholds.parquet'}') ORDER BY images DESC, lang"""))
    if (folder / "curated.parquet").exists():
        out.append(_query(con, f"""SELECT status, count(*) AS images, count(DISTINCT shard) AS shards
                                   FROM read_parquet('{folder / 'curated.parquet'}') GROUP BY status ORDER BY status"""))
    if (folder / "stats.json").exists():
        stats = json.loads((folder / "stats.json").read_text())
        totals = stats["totals"]
        out.append(format_table(list(totals), [tuple(totals.values())]))
        if caps := stats.get("captions"):
            cols = ["captioned", "uncaptioned", "unknown_uids", "duplicate_uids"]
            out.append(format_table(["caption_source", *cols], [(k, *(v.get(c) for c in cols)) for k, v in sorted(caps.items())]))
    return "\n\n".join(out)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    kind = folder_kind(folder)
    print(index_report(folder, args.top) if kind == "index" else curated_report(folder))
    return 0
