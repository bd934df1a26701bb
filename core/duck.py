"""DuckDB without SQL built from paths or flags (DESIGN.md: a user's strings never become code).

Settings go in through the connection's config, files as query parameters (explicit file lists, never
globs, so `[`, `*` or `?` in a folder name mean themselves), and results are written to Parquet by
pyarrow from a streamed result, since `COPY … TO` would need the output path inside the SQL.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import pyarrow.parquet as pq

from core.atomic import atomic_path
from core.errors import UserError

STREAM_ROWS = 65_536


def connect(database: str | os.PathLike = ":memory:", **config: Any):
    """A DuckDB connection with `config` settings (e.g. temp_directory, memory_limit) set as values.

    DuckDB reads a `?` in a database file name as the start of URI options, so such a path is refused."""
    import duckdb  # lazy: DuckDB loads only where a query runs (not for --help or the matcher)

    if "?" in str(database):
        raise UserError(f"{database}: DuckDB cannot open a database whose path holds '?'; choose another folder "
                        "(e.g. --tmp-dir)")
    return duckdb.connect(str(database), config={k: str(v) if isinstance(v, Path) else v for k, v in config.items()})


def files(paths: Sequence[str | os.PathLike]) -> list[str]:
    """A file list as a query parameter for read_parquet(?)."""
    return [str(p) for p in paths]


def copy_parquet(con, query: str, params: Sequence[Any], path: str | os.PathLike,
                 row_group_size: int | None = None) -> int:
    """Stream `query`'s result into the Parquet file `path` (written atomically); returns the row count."""
    reader = con.sql(query, params=list(params)).to_arrow_reader(STREAM_ROWS)
    rows = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch, row_group_size=row_group_size)
                rows += batch.num_rows
    return rows
