"""`curate metadata stats`: per-language sizes by source and a few sample entries."""
from __future__ import annotations

from metadata.languages import check_lang
from metadata.store import load_entries, read_manifest


def language_table(meta_dir: str, samples: int = 3, langs: list[str] | None = None) -> list[dict]:
    """One row per language: entries, entries per source, and `samples` deterministic sample entries."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    entries = load_entries(meta_dir)
    if langs:
        entries = entries.filter(pc.is_in(entries.column("lang"), pa.array([check_lang(c, "--langs") for c in langs])))
    con = duckdb.connect()
    con.register("entries", entries)
    sizes = con.execute("select lang, source, count(*) from entries group by 1, 2 order by 1, 2").fetchall()
    picks = con.execute(
        "select lang, entry from (select lang, entry, row_number() over (partition by lang order by hash(entry_id)) "
        "as rn from entries) where rn <= ? order by lang, rn", [samples]).fetchall()
    rows: dict[str, dict] = {}
    for lang, source, n in sizes:
        row = rows.setdefault(lang, {"lang": lang, "entries": 0, "sources": {}, "samples": []})
        row["entries"] += n
        row["sources"][source] = n
    for lang, entry in picks:
        rows[lang]["samples"].append(entry)
    return list(rows.values())


def print_stats(meta_dir: str, samples: int = 3, langs: str | None = None) -> None:
    manifest = read_manifest(meta_dir)
    codes = [c.strip() for c in langs.split(",") if c.strip()] if langs else None
    rows = language_table(meta_dir, samples, codes)
    sources = sorted({s for r in rows for s in r["sources"]})
    header = ["lang", "entries", *sources, "samples"]
    table = [[r["lang"], str(r["entries"]), *(str(r["sources"].get(s, 0)) for s in sources),
              " | ".join(r["samples"])] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(header)]
    def line(cells: list[str]) -> str:  # first and last column left-aligned, the counts right-aligned
        return "  ".join(c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(header))
    for t in table:
        print(line(t))
    total = sum(r["entries"] for r in rows)
    print(f"{meta_dir}: {total} entries in {len(rows)} languages (META has {manifest['entries']}; "
          f"created {manifest.get('created')}, updated {manifest.get('updated')}, "
          f"worldclip {manifest.get('worldclip_version')})")
