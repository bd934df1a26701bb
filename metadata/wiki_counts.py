"""Bounded-memory unigram/bigram counting for build-wiki: Python counters spilled as Parquet runs,
merged, ranked and PMI-scored in DuckDB.

Counting happens in `metadata.ngrams.NgramCounts`. When it holds `max_ngrams` distinct n-grams the
counts are written as one run (gram, count, first) and cleared; `finish` always writes the last
run, so a dump that fits in memory is simply one run. DuckDB sums counts over runs, spilling to its
temp directory under `memory_limit`.

`first` keeps the order of the in-memory ranking ("ties keep first-seen order"): within a run a
Counter iterates in first-seen order, and an n-gram is first seen in the earliest run that has it,
so first = run << 40 | rank-in-run, minimised over runs, orders n-grams by first sighting in the
dump whatever the spill points.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metadata.ngrams import NgramCounts

BYTES_PER_NGRAM = 350  # per distinct n-gram held (dict slot, key tuple, strings, count); ~330 measured
RUN_SHIFT = 40  # up to 2^40 distinct n-grams per run, 2^23 runs
BATCH_ROWS = 65_536


def max_ngrams_for(memory_budget_mib: int) -> int:
    """Distinct n-grams held in memory before a spill, for a budget in MiB."""
    return max(1, memory_budget_mib * 2**20 // BYTES_PER_NGRAM)


@dataclass
class Ranked:
    """Merged counts, ready to read in ranked order (holds an open DuckDB connection)."""

    con: object
    tokens: int
    distinct_unigrams: int
    distinct_bigrams: int
    no_space: bool

    def top_unigrams(self) -> Iterator[str]:
        """Unigrams by count, most frequent first; ties in first-seen order (as NgramCounts.top_unigrams)."""
        yield from self._stream("SELECT gram FROM uni ORDER BY count DESC, first")

    def pmi_bigrams(self, threshold: float) -> tuple[int, Iterator[str]]:
        """(number of bigrams with PMI > threshold, those bigrams as entries, highest PMI first, ties in
        first-seen order): ngrams.nltk_pmi, same operations, same floats."""
        joined = "a || b" if self.no_space else "a || ' ' || b"
        self.con.execute(f"""
            CREATE OR REPLACE TABLE scored AS
            SELECT {joined} AS entry, pmi, first FROM (
                SELECT bi.a, bi.b, bi.first,
                       ln(bi.count::DOUBLE * ?::DOUBLE) / ln(2.0)
                       - ln(ua.count::DOUBLE * ub.count::DOUBLE) / ln(2.0) AS pmi
                FROM bi JOIN uni ua ON ua.gram = bi.a JOIN uni ub ON ub.gram = bi.b)
            WHERE pmi > ?::DOUBLE""", [self.tokens, threshold])
        n = self.con.execute("SELECT count(*) FROM scored").fetchone()[0]
        return n, self._stream("SELECT entry FROM scored ORDER BY pmi DESC, first")

    def _stream(self, query: str) -> Iterator[str]:
        reader = self.con.cursor().sql(query).to_arrow_reader(BATCH_ROWS)  # own cursor: streams may interleave
        for batch in reader:
            yield from batch.column(0).to_pylist()

    def close(self) -> None:
        self.con.close()


class SpillingCounts:
    """NgramCounts with at most `max_ngrams` distinct n-grams in memory; the rest in Parquet runs."""

    def __init__(self, lang: str, folder: Path, max_ngrams: int, memory_limit_mib: int, progress: bool = False,
                 segmenter: str | None = None):
        self.counts = NgramCounts(lang, segmenter)
        self.folder = Path(folder)
        self.max_ngrams = max_ngrams
        self.memory_limit_mib = memory_limit_mib
        self.progress = progress
        self.runs = 0
        self.peak_in_memory = 0

    @property
    def held(self) -> int:
        return len(self.counts.unigrams) + len(self.counts.bigrams)

    def add_text(self, text: str) -> bool:
        """Count a text; spill when over the limit. True when a run was spilled."""
        self.counts.add_text(text)
        if self.held >= self.max_ngrams:
            self.spill()
            return True
        return False

    def spill(self) -> None:
        """Write the in-memory counts as run number `self.runs` and clear them."""
        c = self.counts
        if self.runs and not self.held:
            return  # nothing new since the last run (one run always exists, even if empty)
        self.peak_in_memory = max(self.peak_in_memory, self.held)
        base = self.runs << RUN_SHIFT
        grams = list(c.unigrams)
        pq.write_table(pa.table({
            "gram": pa.array(grams, pa.string()),
            "count": pa.array(list(c.unigrams.values()), pa.int64()),
            "first": pa.array(base + np.arange(len(grams), dtype=np.int64)),
        }), self.folder / f"uni-{self.runs:06d}.parquet")
        pairs = list(c.bigrams)
        pq.write_table(pa.table({
            "a": pa.array([p[0] for p in pairs], pa.string()),
            "b": pa.array([p[1] for p in pairs], pa.string()),
            "count": pa.array(list(c.bigrams.values()), pa.int64()),
            "first": pa.array(base + np.arange(len(pairs), dtype=np.int64)),
        }), self.folder / f"bi-{self.runs:06d}.parquet")
        self.runs += 1
        c.unigrams.clear()
        c.bigrams.clear()

    def finish(self) -> Ranked:
        """Spill the last run and merge all runs in DuckDB (bounded by memory_limit, spilling to disk)."""
        from tqdm import tqdm

        from core import duck

        self.spill()
        con = duck.connect(self.folder / "counts.duckdb", memory_limit=f"{self.memory_limit_mib}MiB",
                           temp_directory=self.folder / "duckdb_tmp", preserve_insertion_order=False)
        steps = [
            ("CREATE TABLE uni AS SELECT gram, sum(count)::BIGINT AS count, min(first) AS first "
             "FROM read_parquet(?) GROUP BY gram", sorted(self.folder.glob("uni-*.parquet"))),
            ("CREATE TABLE bi AS SELECT a, b, sum(count)::BIGINT AS count, min(first) AS first "
             "FROM read_parquet(?) GROUP BY a, b", sorted(self.folder.glob("bi-*.parquet"))),
        ]
        for query, runs in tqdm(steps, desc=f"merge {self.runs} run(s)", unit=" table", disable=not self.progress):
            con.execute(query, [duck.files(runs)])
        tokens, n_uni = con.execute("SELECT coalesce(sum(count), 0)::BIGINT, count(*) FROM uni").fetchone()
        n_bi = con.execute("SELECT count(*) FROM bi").fetchone()[0]
        return Ranked(con, int(tokens), int(n_uni), int(n_bi), self.counts.no_space)
