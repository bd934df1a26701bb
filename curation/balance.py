"""Balancing formulas, exactly as MetaCLIP 2's curate.py, over numpy count arrays.

t_to_p(C, t) = sum(c < t) / sum(C): the tail share of the matches under threshold t.
p_to_t(C, p) = sorted(C)[argmin |cumsum(sorted C) / sum C - p|]: the threshold giving tail share p
(ties: the first index, as numpy's argmin; zero counts take part, as in the reference).
English uses t_en = --t; every other language t_L = p_to_t(C_L, t_to_p(C_en, t_en)), with C_L over
ALL of the language's entries, zero counts included. p_e = t_L / max(c_e, t_L).

Two cases the reference leaves as NaN are defined here: a language with no matches at all gets
t_L = 0 (what the reference's argmin over NaNs returns), and t_L = 0 gives p_e = 0 (its texts are
never kept; the reference divides 0 by 0 only for entries nobody matched).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import UserError

ENGLISH = "en"


def t_to_p(counts: np.ndarray, t: float) -> float:
    """Share of all matches that fall on entries with count < t."""
    counts = np.asarray(counts)
    return float(counts[counts < t].sum() / counts.sum())


def p_to_t(counts: np.ndarray, p: float) -> float:
    """The count at which the cumulative share of the sorted counts is closest to p (0 if no matches)."""
    counts = np.sort(np.asarray(counts))
    total = counts.sum()
    if len(counts) == 0 or total == 0:
        return 0
    portion = np.cumsum(counts) / total
    return counts[np.abs(portion - p).argmin()].item()


def count_to_prob(counts: np.ndarray, t: float) -> np.ndarray:
    """p_e = t / max(c_e, t): 1 for tail entries, t / c_e for head entries (0 everywhere if t == 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    if t <= 0:
        return np.zeros(len(counts), dtype=np.float64)
    return t / np.maximum(counts, t)


@dataclass(frozen=True)
class Thresholds:
    """Per-language thresholds and the tail share they were derived from."""

    t: dict[str, float]  # lang -> t_L
    p: float  # tail share used for the non-English languages
    t_en: float | None  # --t (None when only --p was given)


def split_by_lang(counts: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """counts table (entry_id, lang, count) -> {lang: (entry_ids, counts)} in entry_id order."""
    ids = counts.column("entry_id").to_numpy().astype(np.int64)
    cnt = counts.column("count").to_numpy().astype(np.int64)
    codes = pc.dictionary_encode(counts.column("lang").combine_chunks())
    langs = codes.dictionary.to_pylist()
    idx = codes.indices.to_numpy(zero_copy_only=False)
    order = np.lexsort((ids, idx))
    bounds = np.searchsorted(idx[order], np.arange(len(langs) + 1))
    return {langs[k]: (ids[order[bounds[k]:bounds[k + 1]]], cnt[order[bounds[k]:bounds[k + 1]]])
            for k in range(len(langs))}


def thresholds(by_lang: dict[str, tuple[np.ndarray, np.ndarray]], t: float | None = None,
               p: float | None = None) -> Thresholds:
    """t_L per language: t for English, p_to_t(C_L, p) elsewhere, p = --p or t_to_p(C_en, t)."""
    if t is not None and not (t > 0 and math.isfinite(t)):
        raise UserError(f"--t must be a finite number > 0 (got {t}): "
                        "it is the English head/tail threshold, e.g. --t 20000")
    if p is not None and not 0 <= p <= 1:
        raise UserError(f"--p must be a tail share in [0, 1] (got {p})")
    if t is None and p is None:
        raise UserError("give --t (English threshold) or --p (tail share)")
    if p is None:
        en = by_lang.get(ENGLISH)
        if en is None or en[1].sum() == 0:
            raise UserError("the INDEX has no English matches, so --t cannot be turned into a tail share; "
                            "pass --p P (the share of matches to keep in tail entries, e.g. --p 0.1)")
        p = t_to_p(en[1], t)
    out = {}
    for lang, (_, c) in sorted(by_lang.items()):
        out[lang] = float(t) if lang == ENGLISH and t is not None else float(p_to_t(c, p))
    return Thresholds(out, float(p), None if t is None else float(t))


@dataclass(frozen=True)
class Probabilities:
    """What balancing draws with, from a counts table: counts per language, thresholds, p_e per entry_id."""

    by_lang: dict[str, tuple[np.ndarray, np.ndarray]]
    thresholds: Thresholds
    p_entry: np.ndarray  # float64, indexed by entry_id (0 for ids absent from the counts)


def probabilities(counts: pa.Table, t: float | None = None, p: float | None = None) -> Probabilities:
    """split_by_lang, thresholds and p_e of every entry: `curate balance` and training's online curation
    (through entry_probabilities) both start from this."""
    by_lang = split_by_lang(counts)
    th = thresholds(by_lang, t, p)
    n = int(counts.column("entry_id").to_numpy().max()) + 1 if counts.num_rows else 0
    p_entry = np.zeros(n, dtype=np.float64)
    for lang, (ids, c) in by_lang.items():
        p_entry[ids] = count_to_prob(c, th.t[lang])
    return Probabilities(by_lang, th, p_entry)


def entry_probabilities(counts: pa.Table, t: float | None = None, p: float | None = None
                        ) -> tuple[np.ndarray, dict[str, float]]:
    """p_e for every entry (indexed by entry_id) and {lang: t_L}; training's online curation uses this."""
    probs = probabilities(counts, t, p)
    return probs.p_entry, probs.thresholds.t


def head_entries(counts: np.ndarray, t: float) -> np.ndarray:
    """Mask of head entries (c_e > t_L): the ones balancing subsamples."""
    return np.asarray(counts) > t
