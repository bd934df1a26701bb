"""LID: --lid parsing, code mapping to metadata languages, fastText lid.176 detection offline."""
from __future__ import annotations

import pytest

from curation.lid import Detector, LanguageMap, LidMode, parse_lid


def test_parse_lid_modes():
    assert parse_lid("auto") == LidMode("auto")
    assert parse_lid("fasttext") == LidMode("fasttext")
    assert parse_lid("none") == LidMode("none")
    assert parse_lid("column:language") == LidMode("column", "language")
    assert str(parse_lid("column:lang")) == "column:lang"
    for bad in ("column:", "fastText", "", "lid176"):
        with pytest.raises(ValueError, match="--lid"):
            parse_lid(bad)


def test_language_map_exact_region_alias_unknown():
    m = LanguageMap(["en", "zh", "nb", "fil", "pt-BR"])
    assert m("en") == "en"
    assert m("EN") == "en"
    assert m("en_US") == "en"
    assert m("zh-Hans") == "zh"
    assert m("no") == "nb"  # lid.176 says "no", metadata carries Bokmål
    assert m("tl") == "fil"
    assert m("pt") == "pt-BR"  # the only Portuguese variant in the metadata
    assert m("fr") is None
    assert m(None) is None
    assert m("xx-unknown") is None


def test_language_map_ambiguous_base_is_not_guessed():
    m = LanguageMap(["zh-Hans", "zh-Hant"])
    assert m("zh") is None
    assert m("zh-hant") == "zh-Hant"


def test_detector_offline_lid176():
    d = Detector()
    texts = ["A photo of a dog running on the beach at sunset", "Ein Hund spielt am Strand mit einem Ball",
             "北京天安门广场的美丽夜景照片", "東京の夜景とタワーの写真です",
             "Un chien joue sur la plage avec un ballon"]
    assert d.detect(texts) == ["en", "de", "zh", "ja", "fr"]


def test_detector_handles_newlines_control_chars_and_huge_texts():
    d = Detector()
    out = d.detect(["first line\nsecond line of english text", "dog\x00with\x07control", "York " * 20_000, "x"])
    assert len(out) == 4
    assert out[0] == "en" and out[2] == "en"
    assert all(isinstance(c, str) and c for c in out)


def test_detector_empty_batch():
    assert Detector().detect([]) == []
