"""The core of build-index: one part of the pool -> its matched texts, per-entry counts and accounting.

Pure over Arrow/numpy (curation.index.write_part puts a part's two files in place atomically).
Per batch, columnar (Arrow/numpy; Python objects only for the matcher's distinct texts and derived
uids): text = Python `str.strip()` (matching.text); empty/whitespace/null -> rejected
"empty_text"; the language comes from the --lid mode (curation.lid) mapped to a metadata language,
else rejected "no_metadata_language"; the text is matched against its language's entries only (one
Matcher per language, built on first use and kept); counts c_e = number of texts that matched e.

A part's result is its matches (curation.index.MATCH_SCHEMA, FINGERPRINT_KEY in the schema metadata)
and dense per-entry counts; curation.index writes them in the INDEX contract.
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.index import FINGERPRINT_KEY, MATCH_SCHEMA
from curation.lid import ALL_LANGUAGES, Detector, LanguageMap, LidMode
from curation.pool import Part, PoolColumns, ReadStats, read_part
from matching.matcher import Matcher
from matching.text import nonblank, nonempty, strip


def fill_uids(rows: pa.Table, source: str) -> pa.Array:
    """The uid column of `rows` (uid, url, row), derive_uid's value where the uid is null or blank."""
    uids = rows.column("uid").combine_chunks()
    missing = ~nonblank(uids)
    todo = np.flatnonzero(missing)
    if not len(todo):
        return uids
    urls = rows.column("url").combine_chunks().take(todo)
    has_url = nonblank(urls)
    derived = np.empty(len(todo), dtype=object)
    if has_url.any():  # an image's alt-texts share its url: hash each distinct url once
        enc = urls.filter(pa.array(has_url)).dictionary_encode()
        hashed = np.array([_blake2b_hex(u) for u in enc.dictionary.cast(pa.binary()).to_pylist()] or [""],
                          dtype=object)
        derived[has_url] = hashed[enc.indices.to_numpy(zero_copy_only=False)]
    if not has_url.all():
        prefix = f"{source}\0".encode("utf-8", "surrogatepass")
        rownums = rows.column("row").take(todo[~has_url]).to_pylist()
        derived[~has_url] = [_blake2b_hex(prefix + str(r).encode()) for r in rownums]
    return pc.replace_with_mask(uids, pa.array(missing), pa.array(derived.tolist(), pa.string()))


def _blake2b_hex(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def derive_uid(url: str | None, source: str, row: int) -> str:
    """uid of a row without one: blake2b-128 of the url, else of "source\\0row" (stable across runs).

    An empty or blank url is no url."""
    data = url if url and url.strip() else f"{source}\0{row}"
    return hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass
class PartResult:
    """Everything one part contributes: matches table, dense counts and accounting."""

    matches: pa.Table
    counts: np.ndarray  # int64 per entry_id
    rows_in: int = 0
    matched: int = 0
    unmatched: int = 0
    rejected: Counter = field(default_factory=Counter)
    per_lang: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    skipped_records: Counter = field(default_factory=Counter)  # WAT records without image texts (not rows)

    def summary(self) -> dict:
        """JSON-able accounting (what the driver records for a finished part)."""
        out = {"rows_in": self.rows_in, "matched": self.matched, "unmatched": self.unmatched,
               "rejected": dict(sorted(self.rejected.items())), "per_lang": self.per_lang, "errors": self.errors}
        if self.skipped_records:
            out["skipped_records"] = dict(sorted(self.skipped_records.items()))
        return out


class PartProcessor:
    """Holds the metadata, one lazily built Matcher per language and the LID model; processes parts.

    entries: META entries (entry_id dense 0..N-1, lang, entry). Long-lived (one per Ray actor) so that
    each language's automaton is built once per worker, not once per part.
    """

    def __init__(self, entries: pa.Table, lid: LidMode, *, compat: bool, backend: str, cols: PoolColumns,
                 fingerprint: str) -> None:
        self.num_entries = entries.num_rows
        self.lid, self.compat, self.backend, self.cols = lid, compat, backend, cols
        self.fingerprint = fingerprint
        self._entries = entries
        self.meta_langs = sorted(pc.unique(entries.column("lang")).to_pylist())
        self.lang_map = LanguageMap(self.meta_langs)
        self.single_label = self.meta_langs[0] if len(self.meta_langs) == 1 else ALL_LANGUAGES
        self.labels = self.meta_langs if lid.mode != "none" else [self.single_label]  # sorted: group order
        self._matchers: dict[str, Matcher] = {}
        self._detector: Detector | None = None
        self.build_seconds = 0.0  # wall time spent building matchers (benchmarks: kept out of the steady rate)

    def matcher(self, lang: str) -> Matcher:
        """`lang`'s Matcher, built on first use and kept."""
        if lang not in self._matchers:
            t0 = time.perf_counter()
            self._matchers[lang] = self.build_matcher(lang)
            self.build_seconds += time.perf_counter() - t0
        return self._matchers[lang]

    def build_matcher(self, lang: str) -> Matcher:
        """A new Matcher of `lang`'s entries (of all entries with --lid none)."""
        t = self._entries
        if self.lid.mode != "none":
            t = t.filter(pc.equal(t.column("lang"), lang))
        return Matcher(t.column("entry"), t.column("entry_id"), compat=self.compat, backend=self.backend)

    def add_matchers(self, matchers: dict[str, Matcher]) -> None:
        """Keep matchers built elsewhere (build_matcher in another process) as if built here."""
        self._matchers.update(matchers)

    def labels_by_size(self) -> list[str]:
        """self.labels, the language with the most entries first (builds spread over workers end together)."""
        if self.lid.mode == "none":
            return list(self.labels)
        sizes = {d["values"]: d["counts"] for d in pc.value_counts(self._entries.column("lang")).to_pylist()}
        return sorted(self.labels, key=lambda lang: -sizes[lang])

    def load_detector(self) -> None:
        """Load the LID model now when every text is detected (before forking: the workers share it)."""
        if self.lid.mode == "fasttext" or (self.lid.mode == "auto" and self.cols.lang is None):
            self.detect([])

    def matcher_backend(self) -> str:
        """The backend `--backend` resolves to, with the ngram walk it runs (for the manifest and summary)."""
        return Matcher([], [], compat=self.compat, backend=self.backend).implementation

    def detect(self, texts: list[str]) -> list[str | None]:
        if self._detector is None:
            self._detector = Detector()
        return self._detector.detect(texts)

    def _codes(self, codes: list[str | None]) -> np.ndarray:
        """Index into self.labels of each code's metadata language, -1 when there is none."""
        index = {lang: i for i, lang in enumerate(self.labels)}
        return np.array([index.get(self.lang_map(c), -1) for c in codes], dtype=np.int64)

    def _column_codes(self, raw: pa.Array) -> np.ndarray:
        """self._codes of a language column, via its dictionary (one lookup per distinct code)."""
        enc = raw.dictionary_encode()
        lut = np.append(self._codes(enc.dictionary.to_pylist()), -1)
        return lut[pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False)]

    def language_codes(self, texts: pa.Array, raw_langs: pa.Array) -> np.ndarray:
        """Metadata language of each (non-empty, stripped) text as an index into self.labels, -1 when none."""
        mode = self.lid.mode
        if mode == "none":
            return np.zeros(len(texts), dtype=np.int64)
        from_column = mode == "column" or (mode == "auto" and self.cols.lang is not None)
        codes = self._column_codes(raw_langs) if from_column else np.full(len(texts), -1, dtype=np.int64)
        if mode == "column":
            return codes
        todo = np.flatnonzero(raw_langs.is_null().to_numpy(zero_copy_only=False)) if from_column \
            else np.arange(len(texts))
        if len(todo):
            codes[todo] = self._codes(self.detect(texts.take(todo).to_pylist()))
        return codes

    def process_batch(self, batch: pa.Table, source: str, result: PartResult, tables: list[pa.Table]) -> None:
        n = batch.num_rows
        result.rows_in += n
        stripped = strip(batch.column("text"))
        keep = np.flatnonzero(nonempty(stripped))
        result.rejected["empty_text"] += n - len(keep)
        texts = stripped.take(keep)
        codes = self.language_codes(texts, batch.column("lang").combine_chunks().take(keep))
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(-1, len(self.labels) + 1))
        result.rejected["no_metadata_language"] += int(bounds[1] - bounds[0])
        found_idx, found_len, found_ids = [], [], []  # per language: matched texts, their match counts, ids
        for code in range(len(self.labels)):
            idx = order[bounds[code + 1]:bounds[code + 2]]
            if not len(idx):
                continue
            lang = self.labels[code]
            res = self.matcher(lang).match_array(texts.take(idx))
            lengths = np.diff(res.offsets)
            nz = np.flatnonzero(lengths)
            stats = result.per_lang.setdefault(lang, {"texts": 0, "matched": 0})
            stats["texts"] += len(idx)
            stats["matched"] += len(nz)
            found_idx.append(idx[nz])
            found_len.append(lengths[nz])
            found_ids.append(res.entry_ids)
        if found_ids:  # one dense bincount per batch, not per language (META may have millions of entries)
            result.counts += np.bincount(np.concatenate(found_ids), minlength=self.num_entries)
        matched = sum(len(x) for x in found_idx)
        result.matched += matched
        result.unmatched += int(bounds[-1] - bounds[1]) - matched
        if matched:
            tables.append(self._matches_table(batch, keep, texts, codes, found_idx, found_len, found_ids, source))

    def _matches_table(self, batch: pa.Table, keep: np.ndarray, texts: pa.Array, codes: np.ndarray,
                       found_idx: list[np.ndarray], found_len: list[np.ndarray], found_ids: list[np.ndarray],
                       source: str) -> pa.Table:
        """Rows of the matched texts in batch order; found_*: per language, the matched texts' indices
        (into `texts`), their match counts and all their entry ids back to back."""
        idx, lens, flat = np.concatenate(found_idx), np.concatenate(found_len), np.concatenate(found_ids)
        order = np.argsort(idx, kind="stable")
        starts = np.cumsum(lens) - lens
        lens = lens[order]
        offsets = np.zeros(len(lens) + 1, dtype=np.int32)
        np.cumsum(lens, out=offsets[1:])
        ids = flat[np.repeat(starts[order] - offsets[:-1], lens) + np.arange(int(offsets[-1]))]
        order_idx = idx[order]
        sub = batch.select(["uid", "url", "row", "key"]).take(keep[order_idx])
        entry_ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids, pa.int32()))
        return pa.table([fill_uids(sub, source), texts.take(order_idx), sub.column("url"),
                         pa.array(self.labels, pa.string()).take(codes[order_idx]), entry_ids,
                         pa.repeat(pa.scalar(source, pa.string()), len(order_idx)), sub.column("row"),
                         sub.column("key")], schema=MATCH_SCHEMA)

    def process_part(self, part: Part) -> PartResult:
        """Read, identify, match and count one part of the pool."""
        result = PartResult(matches=None, counts=np.zeros(self.num_entries, dtype=np.int64))
        stats, tables = ReadStats(), []
        for batch in read_part(part, self.cols, stats):
            self.process_batch(batch, part.path, result, tables)
        for reason, n in stats.rejected.items():
            result.rejected[reason] += n
            result.rows_in += n
        result.rejected = Counter({k: v for k, v in result.rejected.items() if v})
        result.errors = stats.errors
        result.skipped_records = stats.skipped_records
        schema = MATCH_SCHEMA.with_metadata({FINGERPRINT_KEY: self.fingerprint.encode()})
        result.matches = pa.concat_tables(tables).replace_schema_metadata(schema.metadata) if tables \
            else schema.empty_table()
        return result

