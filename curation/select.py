"""Image-level sampling over Arrow tables: group matched texts by uid, choose one, keep or drop.

A uid's texts are put in canonical order (text, then source, then row; byte order for strings), and
`sampling.draw` chooses one and keeps the image with probability 1 - prod(1 - p_e) over the chosen
text's entries (the same call as training's online curation). Every draw depends on (seed, uid[, epoch]) only,
so any grouping of the input into buckets, parts or workers gives the same decisions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation import sampling

TEXT_STRUCT = pa.struct([("text", pa.string()), ("lang", pa.string()), ("entry_ids", pa.list_(pa.int32()))])
SELECTED_SCHEMA = pa.schema([
    ("uid", pa.string()), ("uid_hash", pa.uint64()), ("url", pa.string()), ("lang", pa.string()),
    ("text", pa.string()), ("entry_ids", pa.list_(pa.int32())), ("texts", pa.list_(TEXT_STRUCT)),
    ("source", pa.string()), ("row", pa.int64()), ("key", pa.string()), ("keep", pa.bool_()),
])


@dataclass
class SelectStats:
    """What one batch of images contributed: per-language counts (by the chosen text) and kept matches."""

    texts: dict[str, int] = field(default_factory=dict)  # matched texts per language
    images: dict[str, int] = field(default_factory=dict)  # images whose chosen text is in the language
    kept: dict[str, int] = field(default_factory=dict)
    counts_after: np.ndarray | None = None  # per entry: kept images whose chosen text matched it

    def merge(self, other: "SelectStats") -> None:
        for name in ("texts", "images", "kept"):
            mine = getattr(self, name)
            for k, v in getattr(other, name).items():
                mine[k] = mine.get(k, 0) + v
        if other.counts_after is not None:
            self.counts_after = other.counts_after.copy() if self.counts_after is None \
                else self.counts_after + other.counts_after


def _value_counts(values: pa.Array) -> dict[str, int]:
    vc = pc.value_counts(values)
    return {k: int(n) for k, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())}


def canonical_order(table: pa.Table, uid_hash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row order, group offsets): rows sorted by (uid_hash, uid, text, source, row), groups = images.

    A stable numpy sort on the hash does the bulk; only rows whose hash repeats (images with several
    texts, or a 64-bit hash collision) go through Arrow's multi-column string sort.
    """
    n = table.num_rows
    order = np.argsort(uid_hash, kind="stable")
    hs = uid_hash[order]
    change = np.flatnonzero(hs[1:] != hs[:-1]) + 1
    run_starts = np.concatenate([[0], change]).astype(np.int64)
    run_ends = np.concatenate([change, [n]]).astype(np.int64)
    multi = (run_ends - run_starts) > 1
    bounds = [run_starts]
    if multi.any():
        pos = np.flatnonzero(np.repeat(multi, run_ends - run_starts))
        sub = table.select(["uid", "text", "source", "row"]).take(pa.array(order[pos], pa.int64()))
        sub = sub.append_column("uid_hash", pa.array(hs[pos], pa.uint64()))
        sorted_idx = pc.sort_indices(sub, sort_keys=[("uid_hash", "ascending"), ("uid", "ascending"),
                                                    ("text", "ascending"), ("source", "ascending"),
                                                    ("row", "ascending")]).to_numpy()
        order[pos] = order[pos][sorted_idx]
        uids = sub.column("uid").take(pa.array(sorted_idx, pa.int64())).combine_chunks()
        if len(uids) > 1:  # a uid change inside a hash run: a collision, a separate image
            differ = pc.not_equal(uids.slice(1), uids.slice(0, len(uids) - 1)).to_numpy(zero_copy_only=False)
            same_run = hs[pos][1:] == hs[pos][:-1]
            bounds.append(pos[1:][differ & same_run])
    if n == 0:
        return order, np.zeros(1, dtype=np.int64)
    starts = np.sort(np.concatenate(bounds + [np.array([n], dtype=np.int64)]))
    return order, starts


def list_offsets(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets rebased to 0, flat values) of a list<int32> column."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy()[offsets[0]:offsets[-1]]
    return offsets - offsets[0], values


def select_images(matches: pa.Table, p_entry: np.ndarray, seed: int, epoch: int = 0,
                  keep_all: bool = False) -> tuple[pa.Table, SelectStats]:
    """Matched texts (curation.index.MATCH_COLUMNS, optional uid_hash) -> one row per image (SELECTED_SCHEMA).

    With keep_all every image is returned (online curation) and `keep` records this epoch's draw;
    otherwise only kept images are returned.
    """
    keys_all = (matches.column("uid_hash").to_numpy() if "uid_hash" in matches.column_names
                else sampling.uid_hash64(matches.column("uid")))
    order, starts = canonical_order(matches, keys_all)
    first, n_texts = starts[:-1], np.diff(starts)
    keys = keys_all[order[first]]
    picked: list[pa.Table] = []  # the chosen texts' (lang, entry_ids), kept for the stats below

    def chosen_entries(choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        picked.append(matches.select(["lang", "entry_ids"]).take(pa.array(order[first + choice], pa.int64())))
        return list_offsets(picked[0].column("entry_ids"))

    choice, keep = sampling.draw(keys, n_texts, chosen_entries, p_entry, seed, epoch)
    chosen = order[first + choice]
    picked = picked[0]
    offsets, ids = list_offsets(picked.column("entry_ids"))

    stats = SelectStats(texts=_value_counts(matches.column("lang")), images=_value_counts(picked.column("lang")))
    kept_rows = np.flatnonzero(keep)
    stats.kept = _value_counts(picked.column("lang").take(pa.array(kept_rows, pa.int64()))) if len(kept_rows) else {}
    stats.counts_after = np.bincount(ids[np.repeat(keep, np.diff(offsets))].astype(np.int64),
                                     minlength=len(p_entry)).astype(np.int64)

    groups = np.arange(len(first)) if keep_all else kept_rows
    picked = matches.take(pa.array(chosen[groups], pa.int64()))
    lengths = n_texts[groups]
    rows = order[np.repeat(starts[groups] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
                 + np.arange(int(lengths.sum()))] if len(groups) else np.zeros(0, np.int64)
    all_texts = matches.select(["text", "lang", "entry_ids"]).take(pa.array(rows, pa.int64()))
    texts = pa.StructArray.from_arrays([all_texts.column(c).combine_chunks() for c in ("text", "lang", "entry_ids")],
                                       fields=list(TEXT_STRUCT))
    texts = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32()), texts)
    keep_col = keep if keep_all else keep[kept_rows]
    out = pa.table({
        "uid": picked.column("uid"), "uid_hash": pa.array(keys[groups], pa.uint64()), "url": picked.column("url"),
        "lang": picked.column("lang"), "text": picked.column("text"), "entry_ids": picked.column("entry_ids"),
        "texts": texts, "source": picked.column("source"), "row": picked.column("row"),
        "key": picked.column("key"), "keep": pa.array(keep_col, pa.bool_()),
    }).cast(SELECTED_SCHEMA)
    return out, stats

