import argparse
import json

import pytest

from curation.cli import build_parser, main
from metadata.store import load_entries
from wiki_dump_factory import EN_PAGES, write_dump


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("curate: error: ") and "Traceback" not in err
    return lines[0]


def test_add_and_stats(tmp_path, capsys):
    meta = str(tmp_path / "META")
    f = tmp_path / "metadata.json"
    f.write_text(json.dumps(["dog", "hot dog", "dog", " cat"]))
    rc, out, err = _run(capsys, "metadata", "add", "--out", meta, "--lang", "en", "--file", str(f),
                        "--source", "metaclip1")
    assert rc == 0
    assert "added 2 entries" in out and "skipped 1 duplicates" in out
    assert "1 leading/trailing whitespace (first: " in err and "element 4" in err
    rc, out, err = _run(capsys, "metadata", "stats", meta)
    assert rc == 0
    assert out.splitlines()[0].split() == ["lang", "entries", "metaclip1", "samples"]
    assert out.splitlines()[1].split()[:3] == ["en", "2", "2"]
    assert "2 entries in 1 languages" in out


@pytest.mark.parametrize("argv,match", [
    (["metadata", "add", "--lang", "xx", "--file", "{f}"], "--lang: unknown language code 'xx'"),
    (["metadata", "add", "--lang", "en", "--file", "{d}/missing.txt"], "missing.txt: file not found"),
    (["metadata", "add", "--lang", "en", "--file", "{bad}"], "bad.txt:2: not valid UTF-8"),
    (["metadata", "build", "--langs", "en,zz"], "--langs: unknown language code 'zz'"),
    (["metadata", "build-wiki", "--dump", "{d}/none.xml.bz2", "--lang", "de"], "none.xml.bz2: file not found"),
    (["metadata", "build-wiki", "--dump", "{f}", "--lang", "de", "--max-pages", "0"], "--max-pages must be at least 1"),
    (["metadata", "build-wiki", "--dump", "{f}", "--lang", "en"], "uses MetaCLIP 1's 500k entries"),
    (["metadata", "build-wiki", "--dump", "{f}", "--lang", "ja", "--segmenter", "jieba"],
     "--segmenter jieba: not one for --lang ja"),
    (["metadata", "build", "--langs", "en", "--max-unigrams", "-1"], "--max-unigrams must be 0 or more"),
    (["metadata", "add", "--lang", "tha", "--file", "{f}"], "use 'th'"),
])
def test_errors_are_one_line_exit_2(tmp_path, capsys, argv, match):
    f = tmp_path / "ok.txt"
    f.write_text("dog\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"dog\nca\xe9t\n")
    argv = [a.format(f=f, d=tmp_path, bad=bad) for a in argv] + ["--out", str(tmp_path / "META")]
    rc, _, err = _run(capsys, *argv)
    assert rc == 2
    assert match in _one_error_line(err)
    assert not (tmp_path / "META" / "entries.parquet").exists()


def test_stats_of_missing_meta(tmp_path, capsys):
    rc, _, err = _run(capsys, "metadata", "stats", str(tmp_path / "nope"))
    assert rc == 2 and "metadata folder not found" in _one_error_line(err)


def test_build_and_build_wiki(tmp_path, capsys):
    meta = str(tmp_path / "META")
    rc, out, err = _run(capsys, "metadata", "build", "--langs", "vi", "--out", meta, "--quiet", "--max-unigrams", "500")
    assert rc == 0 and "vi: no wordnet" in err and "1 language(s)" in out and "a starting point" in out
    dump = write_dump(tmp_path / "enwiki.xml.bz2", "en", EN_PAGES, compress=True)
    rc, out, err = _run(capsys, "metadata", "build-wiki", "--dump", str(dump), "--lang", "en", "--out", meta,
                        "--quiet", "--no-wordnet", "--pmi-threshold", "0", "--force-english")
    assert rc == 0 and "4 articles" in err and "tokenizer: simple_tokenizer (= reference)" in err
    langs = set(load_entries(meta)["lang"].to_pylist())
    assert langs == {"vi", "en"}


def test_every_flag_has_help():
    parser = build_parser()
    meta = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["metadata"]
    subs = next(a for a in meta._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(subs) == {"build", "build-wiki", "add", "stats"}
    for name, sub in subs.items():
        for action in sub._actions:
            assert action.help, f"metadata {name} {action.dest} has no help"


def test_cli_defaults_are_the_recipe_constants():
    """build-wiki's defaults come from metadata.recipe, the one home of these numbers."""
    from metadata import recipe

    meta = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["metadata"]
    wiki = next(a for a in meta._actions if isinstance(a, argparse._SubParsersAction)).choices["build-wiki"]
    defaults = {a.dest: a.default for a in wiki._actions}
    assert defaults["pmi_threshold"] == recipe.BIGRAM_PMI and defaults["memory_budget"] == recipe.DEFAULT_BUDGET_MIB
