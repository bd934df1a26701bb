import io
import random

import pytest

from core.errors import UserError
from metadata.segmenters import SEGMENTERS
from metadata.store import ENTRIES, load_entries, read_manifest
from metadata.wiki import build_wiki, count_titles, iter_articles, strip_markup
from wiki_dump_factory import EN_PAGES, ZH_PAGES, write_dump


def test_strip_markup():
    text = strip_markup(EN_PAGES[0]["text"], frozenset({"File", "Category"}))
    assert "Golden Retriever is a breed of dogs from Scotland. The Golden Retriever likes water." in text
    assert "History" in text and "Golden Retriever puppies & kittens" in text
    for gone in ("{{", "}}", "[[", "]]", "Infobox", "cite", "tablecell", "swimming", "hiddencomment", "Category", "de:",
                 "'''", "<ref"):
        assert gone not in text, gone
    assert strip_markup("see [http://a.org label] and [http://b.org]") == "see label and "
    assert strip_markup("[[:Star Wars: A New Hope|film]] x") == "film x"


def test_iter_articles_skips_other_namespaces_and_redirects(tmp_path):
    path = write_dump(tmp_path / "en.xml.bz2", "en", EN_PAGES, compress=True)
    titles = [t for t, _, _ in iter_articles(path)]
    assert titles == ["Golden Retriever", "Scotland", "Star Wars: A New Hope", "Water"]
    _, _, namespaces = next(iter_articles(path))
    assert {"File", "Category", "Talk"} <= namespaces


def test_build_wiki_en(tmp_path):
    path = write_dump(tmp_path / "enwiki-pages-articles.xml.bz2", "en", EN_PAGES, compress=True)
    meta = tmp_path / "META"
    result = build_wiki(str(path), "en", str(meta), pmi_threshold=0.0, use_wordnet=False, force_english=True,
                        progress=False)
    rows = load_entries(meta).to_pylist()
    by = {}
    for r in rows:
        by.setdefault(r["source"], []).append(r["entry"])
    stats = result["stats"]
    assert stats["pages"] == 4 and stats["titles"] == 3  # "Star Wars: A New Hope" has a ':'
    assert by["numbers"] == [str(i) for i in range(100)]
    assert len(by["wiki_unigram"]) == min(251465, int(0.1 * stats["distinct_unigrams"]))
    assert by["wiki_unigram"][0] == "water"  # most frequent token (6x), case kept
    for word in ("talkpageword", "redirectword", "tablecell", "hiddencomment"):
        assert all(word not in e for entries in by.values() for e in entries)
    assert all(len(b.split(" ")) == 2 for b in by["wiki_bigram"]) and "Golden Retriever" in by["wiki_bigram"]
    # titles: top int(0.76 * 3) = 2 new entries, ranked by occurrences in the text (case-sensitive, as
    # matching): Golden Retriever 4 and Scotland 4 (tie: dump order), Water 1; Golden Retriever is
    # already a bigram, so the two new ones are Scotland and Water
    assert by["wiki_title"] == ["Scotland", "Water"]
    manifest = read_manifest(meta)
    assert manifest["history"][-1]["command"] == "build-wiki" and manifest["history"][-1]["stats"]["pages"] == 4


def test_default_pmi_threshold_keeps_no_bigrams_of_a_tiny_dump(tmp_path):
    path = write_dump(tmp_path / "en.xml", "en", EN_PAGES)
    result = build_wiki(str(path), "en", str(tmp_path / "META"), use_wordnet=False, force_english=True, progress=False)
    assert result["stats"]["bigrams_over_pmi"] == 0  # log2 PMI > 30 needs > 2^30 tokens


def test_build_wiki_zh_segmentation(tmp_path):
    path = write_dump(tmp_path / "zhwiki.xml", "zh", ZH_PAGES)
    meta = tmp_path / "META"
    result = build_wiki(str(path), "zh", str(meta), pmi_threshold=0.0, progress=False)
    rows = [r for r in load_entries(meta).to_pylist() if r["lang"] == "zh"]
    entries = {r["entry"]: r["source"] for r in rows}
    assert result["stats"]["pages"] == 2
    assert "经济中心" in entries and entries["经济中心"] == "wiki_bigram"  # 经济 + 中心, joined without a space
    assert not any(" " in e for e in entries)
    assert "北京" in entries and "图片说明文字" not in "".join(entries) and "项目页面" not in entries
    unigrams = [e for e, s in entries.items() if s == "wiki_unigram"]
    assert unigrams and all(len(e) < 6 for e in unigrams)  # words, not whole sentences


def test_bad_dumps(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        build_wiki(str(tmp_path / "nope.xml"), "en", str(tmp_path / "M"), force_english=True, progress=False)
    (tmp_path / "notxml.xml").write_text("hello")
    with pytest.raises(UserError, match="not well-formed XML"):
        build_wiki(str(tmp_path / "notxml.xml"), "en", str(tmp_path / "M"), force_english=True, progress=False)
    (tmp_path / "other.xml").write_text("<html><body/></html>")
    with pytest.raises(UserError, match="not a Wikipedia XML dump"):
        build_wiki(str(tmp_path / "other.xml"), "en", str(tmp_path / "M"), force_english=True, progress=False)
    full = write_dump(tmp_path / "full.xml.bz2", "en", EN_PAGES, compress=True).read_bytes()
    (tmp_path / "cut.xml.bz2").write_bytes(full[: len(full) // 2])
    with pytest.raises(UserError, match="cut.xml.bz2"):
        build_wiki(str(tmp_path / "cut.xml.bz2"), "en", str(tmp_path / "M"), force_english=True, progress=False)
    empty = write_dump(tmp_path / "empty.xml", "en", [EN_PAGES[2]])
    with pytest.raises(UserError, match="no articles"):
        build_wiki(str(empty), "en", str(tmp_path / "M"), force_english=True, progress=False)
    with pytest.raises(UserError,
                       match="--lang en: MetaCLIP 2 does not rebuild English .* metaclip1`, or pass --force-english"):
        build_wiki(str(empty), "en", str(tmp_path / "M"), progress=False)
    with pytest.raises(UserError, match="--segmenter mecab: not one for --lang zh"):
        build_wiki(str(empty), "zh", str(tmp_path / "M"), segmenter="mecab", progress=False)
    assert not (tmp_path / "M" / "entries.parquet").exists()


def _random_pages(seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    text = lambda: " ".join(rng.choice(words[: rng.randint(3, 40)]) for _ in range(rng.randint(1, 12)))
    return [{"title": f"w{i % 9} w{i % 5}" if i % 3 else f"Page {i}", "text": text() + rng.choice([".", "", "\nw1 w2"])}
            for i in range(n)]


def test_tiny_budget_gives_byte_identical_entries(tmp_path):
    dump = write_dump(tmp_path / "en.xml.bz2", "en", _random_pages(1, 200), compress=True)
    stats = {}
    for name, max_ngrams in (("unlimited", None), ("tiny", 5)):
        stats[name] = build_wiki(str(dump), "en", str(tmp_path / name), pmi_threshold=0.0, use_wordnet=False,
                                 force_english=True, progress=False, max_ngrams=max_ngrams,
                                 tmp_dir=str(tmp_path / "work"))["stats"]
    assert stats["unlimited"]["runs"] == 1 and stats["tiny"]["runs"] > 50
    for key in ("tokens", "distinct_unigrams", "distinct_bigrams", "bigrams_over_pmi", "titles"):
        assert stats["unlimited"][key] == stats["tiny"][key]
    assert (tmp_path / "unlimited" / ENTRIES).read_bytes() == (tmp_path / "tiny" / ENTRIES).read_bytes()
    assert list((tmp_path / "work").iterdir()) == []  # runs, DuckDB files and spooled text are removed


def test_count_titles_counts_every_occurrence_as_the_automaton_walk():
    import ahocorasick

    from matching.matcher import pad_entry, spacing

    titles = ["Scotland", "New York", "北京", "a", "York"]
    lines = ["Scotland Scotland, Scotland.", "New York New York York", "北京北京 in 北京大学", "a a a", "", "none here"]
    automaton = ahocorasick.Automaton()
    for i, title in enumerate(titles):
        automaton.add_word(pad_entry(title), i)
    automaton.make_automaton()
    expected = [0] * len(titles)
    for line in lines:
        for _, i in automaton.iter(spacing(line.strip())):
            expected[i] += 1
    got = count_titles(titles, io.StringIO("\n".join(lines) + "\n"), progress=False, batch_lines=2)
    assert got.tolist() == expected and expected[:4] == [3, 2, 3, 3]


@pytest.mark.parametrize("lang, text, word", [
    ("km", "ខ្ញុំស្រឡាញ់ប្រទេសកម្ពុជា។ ខ្ញុំស្រឡាញ់ប្រទេសកម្ពុជា", "ខ្ញុំ"),
    ("lo", "ພາສາລາວມີຄວາມສວຍງາມ ພາສາລາວມີຄວາມສວຍງາມ", "ພາສາລາວ"),
    ("bo", "བཀྲ་ཤིས་བདེ་ལེགས། བཀྲ་ཤིས་བདེ་ལེགས།", "བཀྲ་"),
    ("my", "မြန်မာစာ မြန်မာစာ", "မြန်"),
    ("ja", "私は東京に住んでいます。東京に住んでいます", "東京"),
])
def test_build_wiki_no_space_languages_segment_offline(tmp_path, lang, text, word):
    """The most frequent word (first seen among equals, within the 10% cap) is a unigram entry."""
    pages = [{"title": f"T{i}", "text": text} for i in range(30)]
    build_wiki(str(write_dump(tmp_path / "d.xml", lang, pages)), lang, str(tmp_path / "META"),
               pmi_threshold=-100.0, use_wordnet=False, progress=False)
    entries = {r["entry"]: r["source"] for r in load_entries(tmp_path / "META").to_pylist()}
    assert entries.get(word) == "wiki_unigram" and not any(" " in e for e in entries)
    assert any(s == "wiki_bigram" for s in entries.values())
    assert read_manifest(tmp_path / "META")["history"][-1]["options"]["segmenter"] == SEGMENTERS[lang][0].name
