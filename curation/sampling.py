"""Deterministic random draws for balancing: every draw is a function of (seed, uid, epoch, stream).

Shared by `curate balance` (offline) and training's online curation so both draw identically.
uid -> 64-bit key with BLAKE2b (stable across Python versions and machines, unlike hash());
(key, seed, epoch, stream) -> uniform in [0, 1) with the SplitMix64 finaliser, vectorised in numpy.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

STREAM_CHOICE = 0  # which of an image's matched texts is used
STREAM_KEEP = 1  # whether the image is kept

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic)."""
    x = x.copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def uid_hash64(uids: Iterable[str]) -> np.ndarray:
    """64-bit BLAKE2b of each uid's UTF-8 bytes, as uint64."""
    b2 = hashlib.blake2b
    return np.fromiter(
        (int.from_bytes(b2(u.encode("utf-8"), digest_size=8).digest(), "little") for u in uids),
        dtype=np.uint64,
    )


def _salt(seed: int, epoch: int, stream: int) -> np.uint64:
    s = 0
    for part in (seed, epoch, stream):
        s = (s * _GOLDEN + (part & _MASK) + 1) & _MASK
        s = int(_mix(np.array([s], dtype=np.uint64))[0])
    return np.uint64(s)


def uniform(uid_keys: np.ndarray, seed: int, epoch: int = 0, stream: int = STREAM_KEEP) -> np.ndarray:
    """Uniform floats in [0, 1), one per uid key, identical for any batching or order."""
    x = _mix(np.asarray(uid_keys, dtype=np.uint64) ^ _salt(seed, epoch, stream))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def keep_probability(offsets: np.ndarray, entry_ids: np.ndarray, p_entry: np.ndarray) -> np.ndarray:
    """1 - prod(1 - p_e) over each text's entries; texts given as Arrow-style offsets + flat entry ids."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    if n <= 0:
        return np.zeros(0, dtype=np.float64)
    p = np.asarray(p_entry, dtype=np.float64)[np.asarray(entry_ids, dtype=np.int64)]
    certain = p >= 1.0
    log_miss = np.log1p(-np.where(certain, 0.0, p))
    lengths = np.diff(offsets)
    text_of = np.repeat(np.arange(n), lengths)
    sums = np.bincount(text_of, weights=log_miss, minlength=n)
    prob = np.maximum(-np.expm1(sums), 0.0)
    prob[text_of[certain]] = 1.0
    return prob
