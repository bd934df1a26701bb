import math
import random

import pytest

from metadata.ngrams import NgramCounts, tokenize
from metadata.tokenizer import remove_html_tags


def test_tokenize_spaced_as_simple_tokenizer():
    assert tokenize("U.S. don't e-mail café,bar", "de") == [
        "U", ".", "S", ".", "don", "'", "t", "e", "-", "mail", "café", ",", "bar"]
    assert tokenize("नमस्ते दुनिया।", "hi") == ["नमस्ते", "दुनिया।"]  # । is not punctuation in the reference


@pytest.mark.slow
def test_tokenize_no_space_languages_segment_each_chunk():
    assert tokenize("私は東京に住んでいます", "ja") == ["私", "は", "東京", "に", "住ん", "で", "い", "ます"]
    assert "北京" in tokenize("我爱北京天安门", "zh")
    assert tokenize("สวัสดีครับ ผม", "th") == ["สวัสดี", "ครับ", "ผม"]
    assert len(tokenize("ខ្ញុំស្រឡាញ់ប្រទេសកម្ពុជា", "km")) == 4


def test_counts_break_at_punctuation_not_at_lines():
    c = NgramCounts("de")
    c.add_text("a b, c\nd U.S. don't")
    assert c.unigrams == {"a": 1, "b": 1, "c": 1, "d": 1, "U": 1, "S": 1, "don": 1, "t": 1}
    assert c.bigrams == {("a", "b"): 1, ("c", "d"): 1, ("d", "U"): 1}


def test_html_tags_are_removed_before_tokenizing():
    c = NgramCounts("en")
    c.add_text('<doc id="1" title="x">\nred <b>car</b> &lt;span&gt;blue')
    assert c.unigrams == {"red": 1, "car": 1, "blue": 1}
    assert c.bigrams == {("red", "car"): 1, ("car", "blue"): 1}


def test_pmi_is_nltk_log2_formula():
    c = NgramCounts("en")
    c.add_text("new york.\nnew york.\nnew car.\nold york.\nred car")
    n = 10
    expected = math.log2(2 * n / (3 * 3))
    scored = dict(c.pmi_bigrams(threshold=-100))
    assert scored["new york"] == pytest.approx(expected)
    assert [b for b, _ in c.pmi_bigrams(threshold=-100)] == ["red car", "old york", "new york", "new car"]
    assert [b for b, _ in c.pmi_bigrams(threshold=expected)] == ["red car", "old york"]  # strictly greater
    assert "new york" not in dict(c.pmi_bigrams(threshold=-100, min_count=3))


def test_no_space_bigrams_are_concatenated_and_weird_tokens_break():
    c = NgramCounts("zh")
    c.add_tokens(["经济", "中心", "（", "北京", "上海）", "广州", " 深圳 "])
    assert c.join("经济", "中心") == "经济中心"
    assert c.bigrams == {("经济", "中心"): 1, ("广州", "深圳"): 1}
    assert "上海）" not in c.unigrams and c.unigrams["深圳"] == 1


def test_weird_tokens_count_in_spaced_languages():
    c = NgramCounts("en")
    c.add_tokens(["a(b", "c"])
    assert c.bigrams == {("a(b", "c"): 1}


def test_spaced_fast_path_counts_as_the_token_loop():
    rng = random.Random(0)
    alphabet = list("ab cd,.!'-«»\n\t北京ส") + ["U.S.", " don't ", "<i>", "</i>"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        fast, loop = NgramCounts("de"), NgramCounts("de")
        fast.add_text(text)
        loop.add_tokens(tokenize(remove_html_tags(text), "de"))
        assert list(fast.unigrams.items()) == list(loop.unigrams.items())
        assert list(fast.bigrams.items()) == list(loop.bigrams.items())
