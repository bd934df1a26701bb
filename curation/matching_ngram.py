"""The "ngram" matcher backend: substring matching as vectorised hash lookups, matches produced as arrays.

A padded key K matches a spaced text S when K occurs in S. All work is on the code points of a batch
of spaced texts, concatenated with a separator that is not a Unicode code point (0x110000), so no
key can span two texts. Every substring is identified by a polynomial hash over code points,
h(s) = sum(s[j] * B**j) mod 2**64, computed for any (start, length) from one prefix-sum array.

Keys are matched in two ways, both exact:
- token keys, " w1 w2 … wk " (words without spaces, single spaces between): K occurs in S exactly
  when k consecutive space-delimited tokens of S equal w1…wk, so only spans between two spaces of S
  are candidates. Starting at every space, spans grow one token at a time while the span is a token
  prefix " w1 … wm " of some key (the common case for space-separated languages: a handful of
  lookups per word);
- every other key (touching a no-space script or punctuation, or with odd spacing): starting at
  every code point that begins some key, spans grow one code point at a time while they are a
  prefix of some key.
The hash table holds every key and every prefix; a key hit is verified by comparing code points, so
a hash collision can cost time but never change the result. Keys whose hash collides with another
key's are handed to a small automaton (`fallback`) so that no key is shadowed.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

SEPARATOR = 0x110000  # beyond Unicode: never in a text or a key
SPACE = 32
_WRAP = tuple(ord(c) for c in ",.;:?!`")
_TO_SPACE = tuple(ord(c) for c in "\t\n\r")
_NOT_FOUND = np.int64(0)  # no key, no prefix
_FIB = np.uint64(0x9E3779B97F4A7C15)
_PREFIX = np.int64(1)  # value bit 0: span is a proper prefix of some key; bits 1..: key index + 1


def code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-32 code points of the concatenated texts and the offsets of each text in them."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32), offsets


def spaced_batch(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`spacing` of every text, vectorised: (code points of all spaced texts joined by SEPARATOR, starts).

    Text i's spaced form is cps[starts[i]:starts[i+1] - 1] (the last slot of each is the separator).
    """
    raw, offsets = code_points(texts)
    wrap = np.isin(raw, _WRAP)
    width = np.where(wrap, 3, 1)
    # output slot of each raw code point: 1 leading space per text, 2 + separator between texts
    pos = np.cumsum(width) - width
    text_of = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets))
    pos += 1 + 3 * text_of
    out_len = int(offsets[-1] + 2 * wrap.sum()) + 3 * len(texts)
    cps = np.full(out_len, SPACE, dtype=np.uint32)
    cps[pos + wrap] = np.where(np.isin(raw, _TO_SPACE), SPACE, raw)
    wraps_before = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(wrap, out=wraps_before[1:])
    starts = offsets + 2 * wraps_before[offsets] + 3 * np.arange(len(texts) + 1)
    cps[starts[1:] - 1] = SEPARATOR
    return cps, starts


class _Powers:
    """B**i and B**-i mod 2**64 for i < size, grown on demand."""

    def __init__(self, base: int) -> None:
        self.base, self.inv = np.uint64(base), np.uint64(pow(base, -1, 1 << 64))
        self.pow = np.ones(1, dtype=np.uint64)
        self.invpow = np.ones(1, dtype=np.uint64)

    def ensure(self, size: int) -> None:
        if size <= len(self.pow):
            return
        size = max(size, 2 * len(self.pow))
        for name, b in (("pow", self.base), ("invpow", self.inv)):
            arr = np.full(size, b, dtype=np.uint64)
            arr[0] = 1
            setattr(self, name, np.cumprod(arr, dtype=np.uint64))


def prefix_sums(cps: np.ndarray, powers: _Powers) -> np.ndarray:
    """G with G[i] = sum(cps[j] * B**j, j < i) mod 2**64, so h(cps[s:e]) = (G[e] - G[s]) * B**-s."""
    powers.ensure(len(cps) + 1)
    g = np.zeros(len(cps) + 1, dtype=np.uint64)
    np.cumsum(cps.astype(np.uint64) * powers.pow[: len(cps)], out=g[1:], dtype=np.uint64)
    return g


def span_hash(g: np.ndarray, powers: _Powers, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Hash of cps[start:end] for arrays of spans (never 0, which marks an empty table slot)."""
    return np.maximum((g[end] - g[start]) * powers.invpow[start], np.uint64(1))


class HashTable:
    """Open addressing (linear probing) from uint64 hash to an int64 value, built and probed in numpy."""

    def __init__(self, hashes: np.ndarray, values: np.ndarray) -> None:
        bits = max(4, int(np.ceil(np.log2(max(len(hashes), 1) * 3))))
        self.mask = np.int64((1 << bits) - 1)
        self.shift = np.uint64(64 - bits)
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        self.values = np.full(1 << bits, _NOT_FOUND, dtype=np.int64)
        slot = self._slot(hashes)
        todo = np.arange(len(hashes))
        while len(todo):
            # place one hash per free slot per round; collisions move on to the next slot
            s = slot[todo]
            free = self.keys[s] == 0
            s_free, first = np.unique(s[free], return_index=True)
            placed = todo[free][first]
            self.keys[s_free] = hashes[placed]
            self.values[s_free] = values[placed]
            done = np.zeros(len(todo), dtype=bool)
            done[np.flatnonzero(free)[first]] = True
            todo = todo[~done]
            slot[todo] = (slot[todo] + 1) & self.mask

    def _slot(self, hashes: np.ndarray) -> np.ndarray:
        """Home slot: top bits after a Fibonacci multiply (short strings' hashes differ in low bits only)."""
        return ((hashes * _FIB) >> self.shift).astype(np.int64)

    def get(self, hashes: np.ndarray) -> np.ndarray:
        """Value per hash, 0 where absent."""
        out = np.full(len(hashes), _NOT_FOUND, dtype=np.int64)
        slot = self._slot(hashes)
        todo = np.arange(len(hashes))
        h = hashes
        while len(todo):
            k = self.keys[slot]
            hit = k == h
            out[todo[hit]] = self.values[slot[hit]]
            more = ~hit & (k != 0)
            todo, h, slot = todo[more], h[more], (slot[more] + 1) & self.mask
        return out


def _table(hashes: np.ndarray, key_index: np.ndarray, is_prefix: np.ndarray) -> tuple[HashTable, np.ndarray]:
    """Merge key and prefix hashes into one table; returns it and the keys whose hash another key holds."""
    value = np.where(key_index >= 0, (key_index + 1) << 1, 0) | is_prefix.astype(np.int64)
    order = np.lexsort((-value >> 1, hashes))  # per hash: the key entry (if any) first
    h, v = hashes[order], value[order]
    first = np.ones(len(h), dtype=bool)
    first[1:] = h[1:] != h[:-1]
    group = np.cumsum(first) - 1
    merged = np.zeros(int(first.sum()), dtype=np.int64)
    np.bitwise_or.at(merged, group, v & 1)
    keyed = v >> 1
    merged |= np.where(keyed[first] > 0, keyed[first] << 1, 0)
    shadowed = keyed[~first & (keyed > 0)] - 1  # a second key with the same hash
    return HashTable(h[first], merged), shadowed


class NgramBackend:
    """Exact substring matching of padded keys by vectorised hashing (see module docstring).

    keys: distinct padded keys (non-empty). match(texts) -> (text index, key index) arrays.
    fallback(keys) builds a matcher with the same interface for the few keys a hash collision hides.
    """

    def __init__(self, keys: Sequence[str], fallback: Callable[[list[str]], object], *,
                 seed: int | None = None, chunk_code_points: int = 1 << 20) -> None:
        rng = np.random.default_rng(seed if seed is not None else int.from_bytes(os.urandom(8), "little"))
        self.powers = _Powers(int(rng.integers(1 << 62)) * 2 + 1)
        self.chunk = chunk_code_points
        self.key_cps, self.key_offsets = code_points(keys)
        n = len(keys)
        lengths = np.diff(self.key_offsets)
        token = np.array([_is_token_key(k) for k in keys], dtype=bool) if n else np.zeros(0, dtype=bool)
        g = prefix_sums(self.key_cps, self.powers)
        self.token_table = self.char_table = None
        shadowed = []
        if token.any():
            self.token_table, s = self._token_table(g, np.flatnonzero(token))
            shadowed.append(s)
        if (~token).any():
            self.char_table, s, first = self._char_table(g, np.flatnonzero(~token), lengths)
            shadowed.append(s)
            self.first_char = np.zeros(SEPARATOR + 1, dtype=bool)
            self.first_char[first] = True
        self.shadowed = np.concatenate(shadowed) if shadowed else np.zeros(0, dtype=np.int64)
        self.fallback = fallback([keys[i] for i in self.shadowed]) if len(self.shadowed) else None

    def _token_table(self, g: np.ndarray, idx: np.ndarray) -> tuple[HashTable, np.ndarray]:
        starts = self.key_offsets[idx]
        ends = self.key_offsets[idx + 1]
        spaces = np.flatnonzero(self.key_cps == SPACE)
        # every space inside a key ends one token prefix " w1 … wm " (m >= 1); the last one ends the key
        owner = np.searchsorted(ends, spaces, side="right")
        inside = (owner < len(idx)) & (spaces > starts[np.minimum(owner, len(idx) - 1)])
        spaces, owner = spaces[inside], owner[inside]
        is_key = spaces + 1 == ends[owner]
        h = span_hash(g, self.powers, starts[owner], spaces + 1)
        return _table(h, np.where(is_key, idx[owner], -1), ~is_key)

    def _char_table(self, g: np.ndarray, idx: np.ndarray, lengths: np.ndarray):
        starts = self.key_offsets[idx]
        lens = lengths[idx]
        owner = np.repeat(np.arange(len(idx)), lens)
        ends = np.arange(len(owner)) - np.repeat(np.cumsum(lens) - lens, lens) + 1 + starts[owner]
        is_key = ends == starts[owner] + lens[owner]
        h = span_hash(g, self.powers, starts[owner], ends)
        table, shadowed = _table(h, np.where(is_key, idx[owner], -1), ~is_key)
        return table, shadowed, self.key_cps[starts]

    def match(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All (text index, key index) pairs with the key in the spaced text; unordered, may repeat."""
        pairs = []
        bounds = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 8)
        cut = np.searchsorted(bounds, np.arange(self.chunk, int(bounds[-1]) if len(bounds) else 0, self.chunk))
        for a, b in zip(np.r_[0, cut], np.r_[cut, len(texts)]):
            if b > a:
                t, k = self._match_chunk(texts[a:b])
                pairs.append((t + a, k))
        if self.fallback is not None:
            t, k = self.fallback.match(texts)
            pairs.append((t, self.shadowed[k]))
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])

    def _match_chunk(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        cps, starts = spaced_batch(texts)
        g = prefix_sums(cps, self.powers)
        found_pos, found_len, found_key = [], [], []
        if self.token_table is not None:
            spaces = np.flatnonzero(cps == SPACE)
            cand = np.arange(len(spaces) - 1)
            n = 1
            while len(cand):
                s, e = spaces[cand], spaces[cand + n] + 1
                v = self.token_table.get(span_hash(g, self.powers, s, e))
                hit = v > 1
                found_pos.append(s[hit])
                found_len.append(e[hit] - s[hit])
                found_key.append((v[hit] >> 1) - 1)
                cand = cand[(v & 1).astype(bool)]
                n += 1
                cand = cand[cand + n < len(spaces)]
        if self.char_table is not None:
            start = np.flatnonzero(self.first_char[cps])
            length = 1
            while len(start):
                e = start + length
                ok = e <= len(cps)
                start, e = start[ok], e[ok]
                v = self.char_table.get(span_hash(g, self.powers, start, e))
                hit = v > 1
                found_pos.append(start[hit])
                found_len.append(np.full(int(hit.sum()), length))
                found_key.append((v[hit] >> 1) - 1)
                start = start[(v & 1).astype(bool)]
                length += 1
        if not found_pos:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        pos, length, key = np.concatenate(found_pos), np.concatenate(found_len), np.concatenate(found_key)
        ok = self._verify(cps, pos, length, key)
        text = np.searchsorted(starts, pos[ok], side="right") - 1
        return text, key[ok]

    def _verify(self, cps: np.ndarray, pos: np.ndarray, length: np.ndarray, key: np.ndarray) -> np.ndarray:
        """True where cps[pos:pos+length] equals key's code points (rules out hash collisions)."""
        if not len(pos):
            return np.zeros(0, dtype=bool)
        total = int(length.sum())
        seg = np.repeat(np.arange(len(pos)), length)
        rel = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
        diff = cps[pos[seg] + rel] != self.key_cps[self.key_offsets[key][seg] + rel]
        return np.bincount(seg, weights=diff, minlength=len(pos)) == 0


def _is_token_key(key: str) -> bool:
    """True for " w1 w2 … wk ": padded both sides, single spaces, no empty token."""
    return len(key) >= 3 and key[0] == " " and key[-1] == " " and key[1] != " " and key[-2] != " " \
        and "  " not in key
