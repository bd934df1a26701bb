import pytest

from curation.common import UserError
from metadata.store import load_entries, read_manifest
from metadata.wiki import build_wiki, iter_articles, strip_markup

from wiki_dump_factory import EN_PAGES, ZH_PAGES, write_dump


def test_strip_markup():
    text = strip_markup(EN_PAGES[0]["text"], frozenset({"File", "Category"}))
    assert "Golden Retriever is a breed of dogs from Scotland. The Golden Retriever likes water." in text
    assert "History" in text and "Golden Retriever puppies & kittens" in text
    for gone in ("{{", "}}", "[[", "]]", "Infobox", "cite", "tablecell", "swimming", "hiddencomment", "Category", "de:", "'''", "<ref"):
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
    result = build_wiki(str(path), "en", str(meta), pmi_threshold=0.0, use_wordnet=False, progress=False)
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
    result = build_wiki(str(path), "en", str(tmp_path / "META"), use_wordnet=False, progress=False)
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
        build_wiki(str(tmp_path / "nope.xml"), "en", str(tmp_path / "M"), progress=False)
    (tmp_path / "notxml.xml").write_text("hello")
    with pytest.raises(UserError, match="not well-formed XML"):
        build_wiki(str(tmp_path / "notxml.xml"), "en", str(tmp_path / "M"), progress=False)
    (tmp_path / "other.xml").write_text("<html><body/></html>")
    with pytest.raises(UserError, match="not a Wikipedia XML dump"):
        build_wiki(str(tmp_path / "other.xml"), "en", str(tmp_path / "M"), progress=False)
    full = write_dump(tmp_path / "full.xml.bz2", "en", EN_PAGES, compress=True).read_bytes()
    (tmp_path / "cut.xml.bz2").write_bytes(full[: len(full) // 2])
    with pytest.raises(UserError, match="cut.xml.bz2"):
        build_wiki(str(tmp_path / "cut.xml.bz2"), "en", str(tmp_path / "M"), progress=False)
    empty = write_dump(tmp_path / "empty.xml", "en", [EN_PAGES[2]])
    with pytest.raises(UserError, match="no articles"):
        build_wiki(str(empty), "en", str(tmp_path / "M"), progress=False)
    with pytest.raises(UserError, match="no offline word segmenter"):
        build_wiki(str(empty), "km", str(tmp_path / "M"), progress=False)
    assert not (tmp_path / "M" / "entries.parquet").exists()
