import pytest

from curation.common import UserError
from metadata import segmenters
from metadata.segmenters import SEGMENTERS, choose, help_table, load


def test_defaults_and_choice():
    assert choose("de") is None and choose("ja").name == "mecab" and choose("zh").name == "jieba"
    assert choose("th").name == "thai-segmenter" and choose("th", "pythainlp-newmm").name == "pythainlp-newmm"
    assert [s.name for s in SEGMENTERS["bo"]] == ["botok-syllables", "botok"]
    with pytest.raises(UserError, match="--segmenter mecab: not one for --lang zh; choose one of jieba, ckip"):
        choose("zh", "mecab")
    with pytest.raises(UserError, match="--lang de is written with spaces"):
        choose("de", "jieba")


def test_every_no_space_language_of_the_reference_has_a_segmenter():
    assert {"bo", "dz", "ja", "km", "lo", "my", "th", "zh"} <= set(SEGMENTERS)
    table = help_table()
    for name in ("mecab (= reference)", "jieba (!= reference)", "thai-segmenter (= reference)", "laonlp (= reference)",
                 "khmer-nltk (!= reference)", "my-syllables (!= reference)"):
        assert name in table


@pytest.mark.parametrize("name, chunk, expected", [
    ("mecab", "東京に住んでいます", ["東京", "に", "住ん", "で", "い", "ます"]),
    ("thai-segmenter", "สวัสดีครับ", ["สวัสดี", "ครับ"]),
    ("laonlp", "ພາສາລາວມີຄວາມສວຍງາມ", ["ພາສາລາວ", "ມີ", "ຄວາມ", "ສວຍງາມ"]),
    ("khmer-nltk", "ខ្ញុំស្រឡាញ់ប្រទេសកម្ពុជា", ["ខ្ញុំ", "ស្រឡាញ់", "ប្រទេស", "កម្ពុជា"]),
    ("botok-syllables", "བཀྲ་ཤིས་བདེ་ལེགས།", ["བཀྲ་", "ཤིས་", "བདེ་", "ལེགས", "།"]),
    ("my-syllables", "မြန်မာစာabc၁၂", ["မြန်", "မာ", "စာ", "abc", "၁", "၂"]),
])
def test_offline_segmenters(name, chunk, expected):
    assert load(name)(chunk) == expected


def test_missing_segmenters_say_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(UserError, match="pip install ckip-transformers"):
        load("ckip")
    monkeypatch.setattr(segmenters, "BOTOK_PACK", tmp_path / "general")
    with pytest.raises(UserError, match="dialect pack is not at .*general.*use --segmenter botok-syllables"):
        segmenters._botok()
