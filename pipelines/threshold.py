"""Choose the demo's balancing threshold from a target kept share, with curate balance's own code.

`kept_share(index, t)` runs the exact per-image decision `curate balance --t t` makes (curation's
entry_probabilities + select_images, same seed), without writing shards; `t_for_share` bisects on
t so that the balanced run keeps about the target share of the matched images (e.g. 0.3: the head
is cut hard, the tail kept whole).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pyarrow as pa


@lru_cache(maxsize=4)
def _tables(index: str) -> tuple[pa.Table, pa.Table]:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    counts = pq.read_table(Path(index) / "counts.parquet", columns=["entry_id", "lang", "count"])
    matches = ds.dataset(str(Path(index) / "matches"), format="parquet").to_table(
        columns=["uid", "text", "url", "lang", "entry_ids", "source", "row"])
    if "key" not in matches.column_names:
        matches = matches.append_column("key", pa.nulls(matches.num_rows, pa.string()))
    return counts, matches


def kept_share(index: Path, t: float, seed: int = 0) -> tuple[int, int]:
    """(kept images, matched images) that `curate balance --index INDEX --t t --seed seed` keeps."""
    from curation.balance import entry_probabilities
    from curation.select import select_images

    counts, matches = _tables(str(index))
    p_entry, _ = entry_probabilities(counts, t=t)
    kept, stats = select_images(matches, p_entry, seed)
    return kept.num_rows, sum(stats.images.values())


def t_for_share(index: Path, share: float, seed: int = 0, steps: int = 14) -> tuple[int, float]:
    """(t, kept share) with the kept share closest to `share`, by bisection on log t over [1, max count]."""
    import pyarrow.parquet as pq

    top = int(pq.read_table(Path(index) / "counts.parquet", columns=["count"]).column("count").to_numpy().max())
    lo, hi = 1, max(2, top)
    tried: dict[int, float] = {}

    def got(t: int) -> float:
        if t not in tried:
            kept, total = kept_share(index, t, seed)
            tried[t] = kept / max(1, total)
        return tried[t]

    for _ in range(steps):
        if hi - lo <= 1:
            break
        t = min(hi - 1, max(lo + 1, int(round((lo * hi) ** 0.5))))
        lo, hi = (t, hi) if got(t) < share else (lo, t)
    got(lo), got(hi)  # the bracket's ends: small pools have few distinct counts
    t = min(tried, key=lambda k: (abs(tried[k] - share), k))
    return t, tried[t]
