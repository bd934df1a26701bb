import random

import pytest

from core.errors import UserError
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
@pytest.mark.slow
def test_offline_segmenters(name, chunk, expected):
    assert load(name)(chunk) == expected


def test_missing_segmenters_say_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what the ckip loader sets; restored after the test
    with pytest.raises(UserError, match="pip install ckip-transformers"):
        load("ckip")
    monkeypatch.setattr(segmenters, "BOTOK_PACK", tmp_path / "general")
    with pytest.raises(UserError, match="dialect pack is not at .*general.*use --segmenter botok-syllables"):
        segmenters._botok()


def _reference_char_features(sentence, i):
    """mmCRFseg's create_char_features (the reference's lang_tokenizers/my.py), transcribed."""
    f = ["bias", "char=" + sentence[i][0]]
    if i >= 1:
        f.extend(["char-1=" + sentence[i - 1][0], "char-1:0=" + sentence[i - 1][0] + sentence[i][0]])
    else:
        f.append("BOS")
    if i >= 2:
        f.extend(["char-2=" + sentence[i - 2][0],
                  "char-2:0=" + sentence[i - 2][0] + sentence[i - 1][0] + sentence[i][0],
                  "char-2:-1=" + sentence[i - 2][0] + sentence[i - 1][0]])
    if i >= 3:
        f.extend(["char-3:0=" + sentence[i - 3][0] + sentence[i - 2][0] + sentence[i - 1][0] + sentence[i][0],
                  "char-3:-1=" + sentence[i - 3][0] + sentence[i - 2][0] + sentence[i - 1][0]])
    if i + 1 < len(sentence):
        f.extend(["char+1=" + sentence[i + 1][0], "char:+1=" + sentence[i][0] + sentence[i + 1][0]])
    else:
        f.append("EOS")
    if i + 2 < len(sentence):
        f.extend(["char+2=" + sentence[i + 2][0], "char:+2=" + sentence[i][0] + sentence[i + 1][0] + sentence[i + 2][0],
                  "char+1:+2=" + sentence[i + 1][0] + sentence[i + 2][0]])
    if i + 3 < len(sentence):
        f.extend(["char:+3=" + sentence[i][0] + sentence[i + 1][0] + sentence[i + 2][0] + sentence[i + 3][0],
                  "char+1:+3=" + sentence[i + 1][0] + sentence[i + 2][0] + sentence[i + 3][0]])
    return f


def test_mmcrfseg_features_and_tagging(monkeypatch, tmp_path):
    import pycrfsuite

    for text in ("မ", "မြန်", "မြန်မာစာကျောင်းသား"):
        assert [segmenters.char_features(text, i) for i in range(len(text))] == \
            [_reference_char_features(text, i) for i in range(len(text))]
    words = ["မြန်မာ", "စာ", "ကျောင်း", "သား"]
    rng = random.Random(0)
    trainer = pycrfsuite.Trainer(verbose=False)
    for _ in range(200):
        chars = "".join(seq := rng.choices(words, k=5))
        labels = ["1" if j == 0 else "0" for w in seq for j in range(len(w))]
        trainer.append([segmenters.char_features(chars, i) for i in range(len(chars))], labels)
    trainer.train(str(tmp_path / "model.crfsuite"))
    monkeypatch.setattr(segmenters, "MMCRFSEG_MODEL", tmp_path / "missing.crfsuite")
    with pytest.raises(UserError, match="mmCRFseg model is not at .*use --segmenter my-syllables"):
        segmenters._mmcrfseg()
    monkeypatch.setattr(segmenters, "MMCRFSEG_MODEL", tmp_path / "model.crfsuite")
    assert segmenters._mmcrfseg()("စာမြန်မာသားကျောင်း") == ["စာ", "မြန်မာ", "သား", "ကျောင်း"]
