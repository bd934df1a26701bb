import json

import pytest

from core.errors import UserError
from metadata.importers import add, read_entries
from metadata.store import load_entries


def _entries(meta):
    return [(r["entry_id"], r["lang"], r["entry"], r["source"]) for r in load_entries(meta).to_pylist()]


def test_metaclip1_metadata_json_order_and_dense_ids(tmp_path):
    # MetaCLIP 1's metadata.json: one JSON list of strings, WordNet synsets first, then wiki n-grams/titles
    entries = ["zygote", "Aaron", "hot dog", "New York", "1", "été", "C++", "A", "a"]
    f = tmp_path / "metadata.json"
    f.write_text(json.dumps(entries, ensure_ascii=False))
    summary, skipped, _ = add(str(tmp_path / "META"), "en", str(f), source="metaclip1")
    assert summary.n_added == len(entries) and not skipped
    assert _entries(tmp_path / "META") == [(i, "en", e, "metaclip1") for i, e in enumerate(entries)]


def test_append_keeps_existing_ids(tmp_path):
    meta = str(tmp_path / "META")
    (tmp_path / "a.txt").write_text("dog\ncat\n")
    (tmp_path / "b.txt").write_text("bird\ncat\nfish\n")
    add(meta, "en", str(tmp_path / "a.txt"))
    summary, _, _ = add(meta, "en", str(tmp_path / "b.txt"))
    assert summary.n_added == 2 and summary.n_duplicates == 1
    assert [(i, e) for i, _, e, _ in _entries(meta)] == [(0, "dog"), (1, "cat"), (2, "bird"), (3, "fish")]


def test_lines_crlf_bom_and_json_object(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes("\ufeffdog\r\nhot dog\r\n".encode())
    assert read_entries(f) == [("dog", "line 1"), ("hot dog", "line 2")]
    g = tmp_path / "zh.json"
    g.write_text(json.dumps({"北京": "t", "上海": "u"}, ensure_ascii=False))
    assert [e for e, _ in read_entries(g)] == ["北京", "上海"]
    h = tmp_path / "brackets.txt"
    h.write_text("[citation needed]\nok\n")
    assert [e for e, _ in read_entries(h)] == ["[citation needed]", "ok"]


def test_blank_whitespace_duplicates_counted(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("dog\n\n cat\ndog\nbird \n\t\nfish\n")
    summary, skipped, first = add(str(tmp_path / "META"), "en", str(f))
    assert [e for _, _, e, _ in _entries(tmp_path / "META")] == ["dog", "fish"]
    assert skipped == {"blank": 2, "leading/trailing whitespace": 2}
    assert first["leading/trailing whitespace"].endswith("x.txt line 3")
    assert first["blank"].endswith("line 2")
    assert summary.n_duplicates == 1


@pytest.mark.parametrize("content,match", [
    (b"", "file is empty"),
    (b"\n\n  \n", "file is empty"),
    (b"dog\ncat\n\xff\xfe bad\n", r"x.txt:3: not valid UTF-8"),
])
def test_bad_files(tmp_path, content, match):
    f = tmp_path / "x.txt"
    f.write_bytes(content)
    with pytest.raises(UserError, match=match):
        add(str(tmp_path / "META"), "en", str(f))
    assert not (tmp_path / "META" / "entries.parquet").exists()


def test_bad_json(tmp_path):
    f = tmp_path / "m.json"
    f.write_text('[\n "a",\n "b"\n "c"]')
    with pytest.raises(UserError, match=r"m.json:4: not valid JSON"):
        add(str(tmp_path / "META"), "en", str(f))
    f.write_text('["a", 3]')
    with pytest.raises(UserError, match="element 2 is 3"):
        add(str(tmp_path / "META"), "en", str(f))
    f.write_text('"a"')
    with pytest.raises(UserError, match="expected a list of strings"):
        add(str(tmp_path / "META"), "en", str(f))
    f.write_text('[" ", ""]')
    with pytest.raises(UserError, match="no usable entries"):
        add(str(tmp_path / "META"), "en", str(f))


def test_missing_file_unknown_lang_bad_source(tmp_path):
    with pytest.raises(UserError, match="nope.txt: file not found"):
        add(str(tmp_path / "META"), "en", str(tmp_path / "nope.txt"))
    f = tmp_path / "x.txt"
    f.write_text("dog\n")
    with pytest.raises(UserError, match="unknown language code 'xx'"):
        add(str(tmp_path / "META"), "xx", str(f))
    with pytest.raises(UserError, match="--source"):
        add(str(tmp_path / "META"), "en", str(f), source="My Source")
    assert not (tmp_path / "META").exists()
