"""Python's string semantics on Arrow string arrays, columnar (no per-row Python objects)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# every character `str.isspace()` accepts (tests/matching/test_text.py recomputes it over all of Unicode;
# computing it here cost ~0.5 s of every command's start-up)
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def strip(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`str.strip()` of every value (nulls stay null): trims exactly the characters `str.isspace()` accepts."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.utf8_trim(values, characters=PY_WHITESPACE)


def nonempty(values: pa.Array) -> np.ndarray:
    """bool per value: not null and not ""."""
    return pc.fill_null(pc.greater(pc.utf8_length(values), 0), False).to_numpy(zero_copy_only=False)


def nonblank(values: pa.Array) -> np.ndarray:
    """bool per value: not null and not empty after `str.strip()`."""
    return nonempty(strip(values))
