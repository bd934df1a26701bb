import string
import sys

import pytest

from metadata.tokenizer import (
    PUNCTUATION,
    is_cjk_or_similar,
    is_pure_punctuation,
    is_weird,
    remove_html_tags,
    simple_tokenize,
)


def _char_loop(text: str) -> list[str]:
    """simple_tokenizer as the reference writes it: one character at a time."""
    tokens, current = [], ""
    for ch in text:
        if is_cjk_or_similar(ch) or ch.isspace():
            if current:
                tokens.append(current)
            current = ""
            if not ch.isspace():
                tokens.append(ch)
        else:
            current += ch
    return tokens + [current] if current else tokens


@pytest.mark.slow
def test_simple_tokenize_equals_the_character_loop_on_every_code_point():
    chars = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert simple_tokenize(chars) == _char_loop(chars)
    mixed = "U.S. don't  e-mail\tcafé,bar\u3000北京大学 «Hallo» x¿y ສະບາຍດີ a\u00a0b\u2028c ｶﾀｶﾅ"
    assert simple_tokenize(mixed) == _char_loop(mixed)
    assert simple_tokenize("北京 x") == ["北", "京", "x"]


def test_punctuation_is_the_reference_set():
    assert set(string.punctuation) <= PUNCTUATION and {"，", "。", "¿", "—", "『"} <= PUNCTUATION
    assert not {"«", "»", "।", "…", "・", "–"} & PUNCTUATION
    assert is_pure_punctuation("...") and is_pure_punctuation("，。") and not is_pure_punctuation("«»")


def test_weird_tokens():
    assert is_weird("(abc") and is_weird("abc)") and is_weird("(abc)") and not is_weird("a(b)c")
    assert is_weird("ab』") and not is_weird("ab『c")  # the reference pairs "『 " (with a space) and "』"


def test_remove_html_tags_within_a_line():
    assert remove_html_tags("a<b>c</b> d&lt;x&gt;e") == "ac de"
    assert remove_html_tags("a < b\nc > d") == "a < b\nc > d"
    assert remove_html_tags("a<b<c>d") == "ad"
