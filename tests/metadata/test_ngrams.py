import math

import pytest

from curation.common import UserError
from metadata.ngrams import NgramCounts, is_weird, segmenter, tokenize


def test_tokenize_spaced_splits_edge_punctuation():
    assert tokenize('The dog, "Rex" (a puppy) can\'t swim.', "en") == [
        "The", "dog", ",", '"', "Rex", '"', "(", "a", "puppy", ")", "can't", "swim", "."]
    assert tokenize("नमस्ते दुनिया।", "hi") == ["नमस्ते", "दुनिया", "।"]


def test_tokenize_no_space_languages():
    assert "北京" in tokenize("我爱北京天安门", "zh")
    assert len(tokenize("私は東京に住んでいます", "ja")) > 3
    assert "สวัสดี" in tokenize("สวัสดีครับ", "th")
    with pytest.raises(UserError, match="no offline word segmenter"):
        segmenter("km")


def test_counts_break_at_punctuation_and_lines():
    c = NgramCounts("en")
    c.add_text("a b, c\nd")
    assert c.unigrams == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert c.bigrams == {("a", "b"): 1}


def test_pmi_is_nltk_log2_formula():
    c = NgramCounts("en")
    c.add_text("new york\nnew york\nnew car\nold york\nred car")
    n = 10
    expected = math.log2(2 * n / (3 * 3))
    scored = dict(c.pmi_bigrams(threshold=-100))
    assert scored["new york"] == pytest.approx(expected)
    assert [b for b, _ in c.pmi_bigrams(threshold=-100)] == ["red car", "old york", "new york", "new car"]
    assert [b for b, _ in c.pmi_bigrams(threshold=expected)] == ["red car", "old york"]  # strictly greater
    assert "new york" not in dict(c.pmi_bigrams(threshold=-100, min_count=3))


def test_no_space_bigrams_are_concatenated_and_weird_tokens_break():
    c = NgramCounts("zh")
    c.add_tokens(["经济", "中心", "（", "北京"])
    assert c.join("经济", "中心") == "经济中心"
    assert ("经济", "中心") in c.bigrams and ("中心", "北京") not in c.bigrams
    assert is_weird("(abc") and is_weird("abc)") and is_weird("(abc)") and not is_weird("a(b)c")
