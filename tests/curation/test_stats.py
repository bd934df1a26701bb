"""`curate stats` on an INDEX and on a CURATED folder (DuckDB over the Parquet outputs)."""
import pytest

from curation import cli
from curation.balance_run import run_balance
from index_factory import entries_table, make_index, synthetic_images

ENTRIES = entries_table({"en": 6, "de": 4})


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    d = tmp_path_factory.mktemp("stats")
    built = make_index(d, synthetic_images(60, ENTRIES, seed=9), ENTRIES)
    run_balance(built.index, d / "CUR", t=10, shard_size=20, workers=1)
    return built, d / "CUR"


def table_rows(text, header_start):
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.split()[:1] == [header_start])
    header = lines[i].split()
    rows = []
    for line in lines[i + 2:]:
        if not line.strip():
            break
        rows.append(dict(zip(header, line.split())))
    return rows


@pytest.mark.slow
def test_index_stats(folders, capsys):
    built, _ = folders
    assert cli.main(["stats", str(built.index), "--top", "1"]) == 0
    out = capsys.readouterr().out
    rows = {r["lang"]: r for r in table_rows(out, "lang")}
    langs = built.rows.column("lang").to_pylist()
    for lang in ("en", "de"):
        assert int(rows[lang]["matched_texts"]) == langs.count(lang)
        assert int(rows[lang]["entries"]) == (6 if lang == "en" else 4)


def test_curated_stats(folders, capsys):
    _, cur = folders
    assert cli.main(["stats", str(cur)]) == 0
    out = capsys.readouterr().out
    import json
    stats = json.loads((cur / "stats.json").read_text())
    rows = {r["lang"]: r for r in table_rows(out, "lang")}
    for lang, d in stats["per_lang"].items():
        assert int(rows[lang]["kept"]) == d["kept_images"] and int(rows[lang]["images"]) == d["images"]
    status = table_rows(out, "status")
    assert status == [{"status": "written", "images": str(stats["totals"]["written"]),
                       "shards": str(stats["totals"]["shards"])}]


def test_stats_on_other_folder_is_a_user_error(tmp_path, capsys):
    assert cli.main(["stats", str(tmp_path)]) == 2
    assert "neither an INDEX" in capsys.readouterr().err


def test_curated_stats_show_caption_sources(folders, tmp_path, capsys):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.captions import attach

    cur = tmp_path / "CUR"
    shutil.copytree(folders[1], cur)
    uids = pq.read_table(cur / "curated.parquet").column("uid").to_pylist()
    pq.write_table(pa.table({"uid": uids[:3] + ["nope"], "caption": ["a", "b", "c", "d"]}), tmp_path / "c.parquet")
    attach(cur, "vecap", [tmp_path / "c.parquet"])
    assert cli.main(["stats", str(cur)]) == 0
    rows = table_rows(capsys.readouterr().out, "caption_source")
    assert rows == [{"caption_source": "vecap", "captioned": "3", "uncaptioned": str(len(uids) - 3),
                     "unknown_uids": "1", "duplicate_uids": "0"}]
