"""Python's string semantics on Arrow string arrays, columnar (no per-row Python objects)."""
from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PY_WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


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
