"""matching.text equals Python's str.strip() on any text, including rare Unicode whitespace."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.text import PY_WHITESPACE, nonblank, strip

SPACE_HEAVY = st.text(alphabet=st.one_of(st.sampled_from(PY_WHITESPACE + "\u200b\ufeff\x00\x1b"), st.characters(
    blacklist_categories=("Cs",))), max_size=12)


@given(st.lists(st.one_of(st.none(), SPACE_HEAVY), max_size=20))
@settings(max_examples=400, deadline=None)
def test_strip_equals_python(values):
    got = strip(pa.array(values, pa.string())).to_pylist()
    assert got == [v.strip() if v is not None else None for v in values]
    assert nonblank(pa.array(values, pa.string())).tolist() == [bool(v and v.strip()) for v in values]


def test_whitespace_set_is_python_isspace():
    import sys

    assert PY_WHITESPACE == "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert "\u3000" in PY_WHITESPACE and "\x1c" in PY_WHITESPACE and "\u200b" not in PY_WHITESPACE
    chunked = pa.chunked_array([["\u00a0a\u3000"], [None, " "]])
    assert strip(chunked).to_pylist() == ["a", None, ""]
