import pytest

from core.errors import UserError
from metadata.languages import LID176, check_lang, parse_langs, script_ok, script_ranges


def test_lid176_labels_are_accepted():
    assert len(LID176) == 176
    for code in LID176:
        assert check_lang(code) == code


@pytest.mark.parametrize("code", ["en", "zh", "th", "fil", "yue", "haw"])
def test_iso_codes(code):
    assert check_lang(code) == code


@pytest.mark.parametrize("code,match", [
    ("xx", "unknown language code 'xx'"), ("EN", "unknown language code"), ("english", "unknown"),
    ("tha", "has the ISO 639-1 code 'th'"), ("qaa", "unknown"), ("und", "unknown"), ("", "unknown"),
])
def test_bad_codes(code, match):
    with pytest.raises(UserError, match=match):
        check_lang(code)


def test_parse_langs():
    assert parse_langs("en, zh,en", ["x"]) == ["en", "zh"]
    assert parse_langs("all", ["de", "en"]) == ["de", "en"]
    with pytest.raises(UserError, match="--langs"):
        parse_langs("en,zz", [])
    with pytest.raises(UserError, match="comma-separated"):
        parse_langs(" , ", [])


def test_script_ok():
    assert script_ok("北京", script_ranges("zh"))
    assert not script_ok("the", script_ranges("zh"))
    assert script_ok("สวัสดี", script_ranges("th")) and not script_ok("hello", script_ranges("th"))
    assert script_ok("カメラ", script_ranges("ja"))
    assert script_ok("42", script_ranges("ru"))  # digits are script-neutral
    assert not script_ok("🐄", script_ranges("hi"))
    assert script_ok("café", script_ranges("fr")) and not script_ok("собака", script_ranges("fr"))
