"""The "ngram" matcher backend: substring matching as vectorised hash lookups, matches produced as arrays.

A padded key K matches a spaced text S when K occurs in S. All work is on the code points of a batch
of spaced texts, concatenated with a separator that is not a Unicode code point (0x110000), so no
key can span two texts. Every substring is identified by a polynomial hash over code points,
h(s) = F * sum(s[j] * B**j) mod 2**64 (B random, F an odd mixing constant), computed for any
(start, length) from one prefix-sum array.

Keys are matched in two ways, both exact:
- token keys, " w1 w2 … wk " (padded on both sides, the common case for space-separated languages):
  an occurrence starts and ends at a space of S, so only spans from one space of S to a later one
  are candidates. Starting at every space, spans grow one space-delimited token at a time while the
  span is a prefix of some key that ends at one of its spaces (a handful of lookups per word);
- every other key (touching a no-space script or punctuation, or with odd spacing): starting at
  every code point that begins some key, spans grow one code point at a time while they are a
  prefix of some key.
The hash table holds every key and every prefix; a key hit is verified by comparing code points, so
a hash collision can cost time but never change the result. Keys whose hash collides with another
key's are handed to a small automaton (`fallback`) so that no key is shadowed.

The walk itself runs in C (`matching/_ngram_kernel.c`, built at install) when that extension is
importable: one position at a time, it stops at the first span that is no key prefix. The kernel also
does `spacing` (of Python strings, or of an Arrow string array's UTF-8 buffers without making Python
strings: `match_utf8`) and the grouping of pairs into sorted entry ids per text (matcher.pairs_to_result).
Otherwise the same walk runs here in numpy, a round of spans at a time. Tables, hashes and results are
the same.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from matching.text import spacing

try:
    from matching import _ngram_kernel
except ImportError:  # built without a C compiler: the numpy walk gives the same results
    _ngram_kernel = None

SEPARATOR = 0x110000  # beyond Unicode: never in a text or a key
SPACE = 32
_JOIN_CANDIDATES = ("\x00", "\uffff", "\ufffe", "\x01", "\x02", "\x03")
# table values: bit 0 = the span is a proper prefix of some key; bits 1.. = key index + 1; 0 = absent
_NOT_FOUND = np.int64(0)
_FIB = np.uint64(0x9E3779B97F4A7C15)
_PAIR_MUL = np.uint64(0xC2B2AE3D27D4EB4F)
_TRIPLE_MUL = np.uint64(0x165667B19E3779F9)


def code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-32 code points of the concatenated texts and the offsets of each text in them."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32), offsets


def spaced_batch(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`spacing` of every text at once: (code points of all spaced texts joined by SEPARATOR, starts).

    Text i's spaced form is cps[starts[i]:starts[i+1] - 1] (the last slot of each is the separator).
    The texts are joined with a character none of them contains and `spacing`'s replacements run once
    over the joined string: they act character by character, so this equals spacing each text.
    """
    joined = _JOIN_CANDIDATES[0].join(texts)
    sep = next((c for c in _JOIN_CANDIDATES if c not in joined), None)
    if sep is None and len(texts) == 1:  # one text holding every candidate: no join needed
        cps = np.append(code_points([spacing(texts[0])])[0], np.uint32(SEPARATOR))
        return cps, np.array([0, len(cps)], dtype=np.int64)
    if sep is None:  # every candidate occurs in the batch: split it
        half = len(texts) // 2
        (a, sa), (b, sb) = spaced_batch(texts[:half]), spaced_batch(texts[half:])
        return np.concatenate([a, b]), np.concatenate([sa[:-1], sb + len(a)])
    if sep != _JOIN_CANDIDATES[0]:
        joined = sep.join(texts)
    for p in ",.;:?!`":
        joined = joined.replace(p, f" {p} ")
    for c in "\t\n\r":
        joined = joined.replace(c, " ")
    joined = " " + joined.replace(sep, f" {sep} ") + " " + sep
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
    ends = np.flatnonzero(cps == ord(sep))
    cps[ends] = SEPARATOR
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    starts[1:] = ends + 1
    return cps, starts


class _Powers:
    """B**i and F * B**-i mod 2**64 for i < size, grown on demand.

    F (odd) spreads short strings' hashes, which would otherwise differ in their low bits only, over
    all 64 bits: table slots and entries use the high bits.
    """

    def __init__(self, base: int) -> None:
        self.base, self.inv = np.uint64(base), np.uint64(pow(base, -1, 1 << 64))
        self.pow = np.ones(1, dtype=np.uint64)
        self.invpow = np.ones(1, dtype=np.uint64)

    def ensure(self, size: int) -> None:
        if size <= len(self.pow):
            return
        size = max(size, 2 * len(self.pow))
        for name, b, first in (("pow", self.base, 1), ("invpow", self.inv, int(_FIB))):
            arr = np.full(size, b, dtype=np.uint64)
            arr[0] = first
            setattr(self, name, np.cumprod(arr, dtype=np.uint64))


def prefix_sums(cps: np.ndarray, powers: _Powers) -> np.ndarray:
    """G with G[i] = sum(cps[j] * B**j, j < i) mod 2**64, so h(cps[s:e]) = (G[e] - G[s]) * F * B**-s."""
    powers.ensure(len(cps) + 1)
    g = np.zeros(len(cps) + 1, dtype=np.uint64)
    np.cumsum(cps.astype(np.uint64) * powers.pow[: len(cps)], out=g[1:], dtype=np.uint64)
    return g


def key_prefix_sums(cps: np.ndarray, offsets: np.ndarray, powers: _Powers) -> np.ndarray:
    """prefix_sums with each key's powers counted from its own start: G[i] = sum(cps[j] * B**(j - s_j), j < i)
    where s_j starts j's key, so a span that starts a key hashes to (G[e] - G[s]) * F, as span_hash, and
    powers are needed only up to the longest key (not the length of all keys together)."""
    lengths = np.diff(offsets)
    powers.ensure(int(lengths.max(initial=0)) + 1)
    rel = np.arange(len(cps)) - np.repeat(offsets[:-1], lengths)
    g = np.zeros(len(cps) + 1, dtype=np.uint64)
    np.cumsum(cps.astype(np.uint64) * powers.pow[rel], out=g[1:], dtype=np.uint64)
    return g


def span_hash(g: np.ndarray, powers: _Powers, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Hash of cps[start:end] for arrays of spans."""
    return (g[end] - g[start]) * powers.invpow[start]


class HashTable:
    """Open addressing (linear probing) from uint64 hash to a small value, built and probed in numpy.

    One uint64 per slot: the hash's high bits with the value in the low `value_bits` (8 MB per million
    entries, so probes mostly hit cache). Two hashes equal in their high bits are one entry: for keys
    that is a collision like any other (verified; shadowed keys go to the fallback).
    """

    def __init__(self, hashes: np.ndarray, values: np.ndarray) -> None:
        self.value_bits = np.uint64(max(int(values.max(initial=1)).bit_length(), 1))
        self.value_mask = np.uint64((1 << int(self.value_bits)) - 1)
        self.floor = np.uint64(1 << int(self.value_bits))  # hashes below it have all-zero high bits
        bits = max(4, int(np.ceil(np.log2(max(len(hashes), 1) * 2))))
        self.mask = np.int64((1 << bits) - 1)
        self.shift = np.uint64(64 - bits)
        self.slots = np.zeros(1 << bits, dtype=np.uint64)
        packed = (hashes & ~self.value_mask) | values.astype(np.uint64)
        slot = self._slot(hashes)
        todo = np.arange(len(hashes))
        while len(todo):
            # place one hash per free slot per round; collisions move on to the next slot
            s = slot[todo]
            free = self.slots[s] == 0
            s_free, first = np.unique(s[free], return_index=True)
            self.slots[s_free] = packed[todo[free][first]]
            done = np.zeros(len(todo), dtype=bool)
            done[np.flatnonzero(free)[first]] = True
            todo = todo[~done]
            slot[todo] = (slot[todo] + 1) & self.mask

    def _slot(self, hashes: np.ndarray) -> np.ndarray:
        """Home slot: the top bits."""
        return (hashes >> self.shift).view(np.int64)

    def get(self, hashes: np.ndarray) -> np.ndarray:
        """Value per hash, 0 where absent.

        An empty slot (0) "matches" a hash whose high bits are all zero, with value 0: absent, as it
        should be, so no hash needs remapping here.
        """
        slot = self._slot(hashes)
        row = self.slots[slot]
        hit = (row ^ hashes) < self.floor
        out = np.where(hit, row & self.value_mask, np.uint64(0)).view(np.int64)
        todo = np.flatnonzero(~hit & (row != 0))
        while len(todo):  # the home slot held another hash
            slot[todo] = (slot[todo] + 1) & self.mask
            row = self.slots[slot[todo]]
            hit = (row ^ hashes[todo]) < self.floor
            out[todo[hit]] = (row[hit] & self.value_mask).view(np.int64)
            todo = todo[~hit & (row != 0)]
        return out


def _table(hashes: np.ndarray, key_index: np.ndarray, is_prefix: np.ndarray) -> tuple[HashTable, np.ndarray]:
    """Merge key and prefix hashes into one table; returns it and the keys whose hash another key holds.

    Entries with one hash form a group (a key that is also a prefix of longer keys, or a collision): the
    group keeps the prefix bit if any has it and the highest key index; its other keys are shadowed."""
    value = np.where(key_index >= 0, (key_index + 1) << 1, 0) | is_prefix.astype(np.int64)
    bits = max(int(value.max(initial=1)).bit_length(), 1)  # as HashTable: entries are the high bits
    ident = hashes >> np.uint64(bits)
    order = np.argsort(ident)
    h, v, ident = hashes[order], value[order], ident[order]
    first = np.ones(len(h), dtype=bool)
    first[1:] = ident[1:] != ident[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    keyed = v >> 1
    kept = np.maximum.reduceat(keyed, starts) if len(h) else np.zeros(0, dtype=np.int64)
    merged = np.where(kept > 0, kept << 1, 0) | (np.bitwise_or.reduceat(v & 1, starts) if len(h) else 0)
    shadowed = keyed[(keyed > 0) & (keyed != kept[group])] - 1  # a second key with the same hash
    cand = np.flatnonzero(keyed == kept[group])  # each group's stored hash: its kept key's (else any)
    rep = cand[np.r_[True, group[cand][1:] != group[cand][:-1]]] if len(cand) else cand
    return HashTable(h[rep], merged), shadowed


class NgramBackend:
    """Exact substring matching of padded keys by vectorised hashing (see module docstring).

    keys: distinct padded keys (non-empty). match(texts) -> (text index, key index) arrays.
    base: the odd hash base B (random by default; tests force a weak one to provoke collisions).
    fallback(keys) builds a matcher with the same interface for the few keys a hash collision hides.
    kernel: walk in C (default: when the extension is built) or in numpy (False).
    """

    def __init__(self, keys: Sequence[str], fallback: Callable[[list[str]], object], *,
                 seed: int | None = None, base: int | None = None, chunk_code_points: int = 1 << 20,
                 kernel: bool | None = None) -> None:
        if kernel and _ngram_kernel is None:
            raise RuntimeError("matching._ngram_kernel is not built: reinstall worldclip with a C compiler")
        self.kernel = _ngram_kernel is not None if kernel is None else kernel
        rng = np.random.default_rng(seed if seed is not None else int.from_bytes(os.urandom(8), "little"))
        self.powers = _Powers(base if base is not None else int(rng.integers(1 << 62)) * 2 + 1)
        self.chunk = chunk_code_points
        self.key_cps, self.key_offsets = code_points(keys)
        lengths = np.diff(self.key_offsets)
        token = _token_keys(self.key_cps, self.key_offsets)
        g = key_prefix_sums(self.key_cps, self.key_offsets, self.powers)
        self.token_table = self.char_table = None
        shadowed = []
        if token.any():
            self.token_table, s = self._token_table(g, np.flatnonzero(token))
            shadowed.append(s)
        if (~token).any():
            self.char_table, s = self._char_table(g, np.flatnonzero(~token), lengths)
            shadowed.append(s)
            self._char_filters(self.key_offsets[:-1][~token], lengths[~token], np.flatnonzero(~token))
        self.shadowed = np.concatenate(shadowed) if shadowed else np.zeros(0, dtype=np.int64)
        self.fallback = fallback([keys[i] for i in self.shadowed]) if len(self.shadowed) else None
        self._scan_args = self._kernel_args()

    def _kernel_args(self) -> tuple:
        """The tables in the form `_ngram_kernel.scan` takes after the code points (see its header)."""
        tables = [None if t is None else (t.slots, int(t.mask), int(t.shift), int(t.floor), int(t.value_mask))
                  for t in (self.token_table, self.char_table)]
        none = np.zeros(1, dtype=np.uint8)
        if self.char_table is not None:
            single_key = np.full(self.top + 1, -1, dtype=np.int32)
            single_key[self.single_cps] = self.single_keys
            key_starts = (self.first_char.view(np.uint8), self.single_char.view(np.uint8), self.top,
                          np.packbits(self.first_pair, bitorder="little"), self.pair_bits, single_key)
        else:
            key_starts = (none, none, 0, np.zeros(1, dtype=np.uint8), 3, np.zeros(1, dtype=np.int32))
        return (*tables, key_starts, self.key_cps, self.key_offsets, int(self.powers.base), int(_FIB))

    def _token_table(self, g: np.ndarray, idx: np.ndarray) -> tuple[HashTable, np.ndarray]:
        starts = self.key_offsets[idx]
        ends = self.key_offsets[idx + 1]
        spaces = np.flatnonzero(self.key_cps == SPACE)
        # every space inside a key ends one token prefix " w1 … wm " (m >= 1); the last one ends the key
        owner = np.searchsorted(ends, spaces, side="right")
        inside = (owner < len(idx)) & (spaces > starts[np.minimum(owner, len(idx) - 1)])
        spaces, owner = spaces[inside], owner[inside]
        is_key = spaces + 1 == ends[owner]
        h = (g[spaces + 1] - g[starts[owner]]) * _FIB  # span_hash of a span from its key's start
        return _table(h, np.where(is_key, idx[owner], -1), ~is_key)

    def _char_table(self, g: np.ndarray, idx: np.ndarray, lengths: np.ndarray):
        starts = self.key_offsets[idx]
        lens = lengths[idx]
        owner = np.repeat(np.arange(len(idx)), lens)
        ends = np.arange(len(owner)) - np.repeat(np.cumsum(lens) - lens, lens) + 1 + starts[owner]
        is_key = ends == starts[owner] + lens[owner]
        h = (g[ends] - g[starts[owner]]) * _FIB  # span_hash of a span from its key's start
        return _table(h, np.where(is_key, idx[owner], -1), ~is_key)

    def _char_filters(self, starts: np.ndarray, lengths: np.ndarray, idx: np.ndarray) -> None:
        """Exact tables for the first code point, a bitmap of first 2-3 code points of non-token keys.

        Code point tables stop after the largest first code point (index min(cp, top)), so they stay
        small for languages whose keys start in low planes.
        """
        cps = self.key_cps
        self.top = int(cps[starts].max()) + 1
        self.first_char = np.zeros(self.top + 1, dtype=bool)
        self.first_char[cps[starts]] = True
        one = lengths == 1
        self.single_cps = cps[starts[one]]
        order = np.argsort(self.single_cps)
        self.single_cps, self.single_keys = self.single_cps[order], idx[one][order]
        self.single_char = np.zeros(self.top + 1, dtype=bool)
        self.single_char[self.single_cps] = True
        two, three = starts[lengths == 2], starts[lengths >= 3]
        self.pair_bits = int(np.clip(np.ceil(np.log2(max(len(starts), 1) * 16)), 10, 22))
        self.first_pair = np.zeros(1 << self.pair_bits, dtype=bool)
        self.first_pair[_pair_slot(self.pair_bits, cps[two], cps[two + 1])] = True
        self.first_pair[_pair_slot(self.pair_bits, cps[three], cps[three + 1], cps[three + 2])] = True

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

    def match_utf8(self, data, offsets: np.ndarray, texts: Callable[[], list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """match() of the UTF-8 texts data[offsets[i]:offsets[i+1]] (an Arrow string array's buffers, int64
        offsets), spaced by the C kernel without Python strings; `texts()` gives them as str for the fallback.

        Needs the kernel (self.kernel); chunks bound code points by bytes (a code point has >= 1 byte)."""
        n = len(offsets) - 1
        pairs = []
        bounds = offsets[1:] - offsets[0] + 8 * np.arange(1, n + 1)
        cut = np.searchsorted(bounds, np.arange(self.chunk, int(bounds[-1]) if n else 0, self.chunk))
        for a, b in zip(np.r_[0, cut].tolist(), np.r_[cut, n].tolist()):
            if b > a:
                cps = _ngram_kernel.space_utf8(data, np.ascontiguousarray(offsets[a:b + 1]))
                t, k = _ngram_kernel.scan(cps, *self._scan_args)
                pairs.append((np.frombuffer(t, dtype=np.int32) + np.int32(a), np.frombuffer(k, dtype=np.int32)))
        if self.fallback is not None:
            t, k = self.fallback.match(texts())
            pairs.append((t, self.shadowed[k]))
        if not pairs:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
        return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])

    def _match_chunk(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if not self.kernel:
            return self._match_chunk_numpy(*spaced_batch(texts))
        t, k = _ngram_kernel.scan(_ngram_kernel.space_str(list(texts)), *self._scan_args)
        return np.frombuffer(t, dtype=np.int32), np.frombuffer(k, dtype=np.int32)

    def _match_chunk_numpy(self, cps: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = prefix_sums(cps, self.powers)
        found_pos, found_len, found_key = [], [], []
        exact_pos = exact_key = np.zeros(0, dtype=np.int64)
        if self.token_table is not None:
            spaces = np.flatnonzero(cps == SPACE)
            # span from space i to space j (inclusive) hashes to (g_after[j] - g_at[i]) * unpow[i]
            g_at, g_after, unpow = g[spaces], g[spaces + 1], self.powers.invpow[spaces]
            cand = np.arange(len(spaces) - 1)
            n = 1
            hit_from, hit_to = [], []
            while len(cand):
                end = cand + n
                v = self.token_table.get((g_after[end] - g_at[cand]) * unpow[cand])
                hit = np.flatnonzero(v > 1)
                hit_from.append(cand[hit])
                hit_to.append(end[hit])
                found_key.append((v[hit] >> 1) - 1)
                n += 1
                cand = cand[((v & 1) != 0) & (end < len(spaces) - 1)]
            if hit_from:
                s, e = spaces[np.concatenate(hit_from)], spaces[np.concatenate(hit_to)] + 1
                found_pos.append(s)
                found_len.append(e - s)
        if self.char_table is not None:
            # cps ends with SEPARATOR, never a first code point: start + 1 is in range
            start = np.flatnonzero(self.first_char[np.minimum(cps, self.top)])
            c0, c1 = cps[start], cps[start + 1]
            c2 = cps[np.minimum(start + 2, len(cps) - 1)]
            single = self.single_char[c0]
            one = start[single]  # one-code-point keys: exact, no hash or verification needed
            exact_pos, exact_key = one, self.single_keys[np.searchsorted(self.single_cps, c0[single])]
            start = start[self.first_pair[_pair_slot(self.pair_bits, c0, c1)]
                          | self.first_pair[_pair_slot(self.pair_bits, c0, c1, c2)]]
            length = 2
            start = start[start + length <= len(cps)]
            while len(start):
                v = self.char_table.get(span_hash(g, self.powers, start, start + length))
                hit = np.flatnonzero(v > 1)
                found_pos.append(start[hit])
                found_len.append(np.full(len(hit), length))
                found_key.append((v[hit] >> 1) - 1)
                length += 1
                start = start[((v & 1) != 0) & (start + length <= len(cps))]
        pos, length, key = (np.concatenate(x) if x else np.zeros(0, dtype=np.int64)
                            for x in (found_pos, found_len, found_key))
        ok = self._verify(cps, pos, length, key)
        pos, key = np.concatenate([exact_pos, pos[ok]]), np.concatenate([exact_key, key[ok]])
        text_of = np.repeat(np.arange(len(starts) - 1, dtype=np.int32), np.diff(starts))
        return text_of[pos], key

    def _verify(self, cps: np.ndarray, pos: np.ndarray, length: np.ndarray, key: np.ndarray) -> np.ndarray:
        """True where cps[pos:pos+length] equals key's code points (rules out hash collisions)."""
        if not len(pos):
            return np.zeros(0, dtype=bool)
        # int32 indices: a chunk, its matches and the key code points stay far below 2**31
        length = length.astype(np.int32)
        first = np.cumsum(length, dtype=np.int32) - length
        step = np.arange(int(first[-1] + length[-1]), dtype=np.int32)
        at_text = np.repeat((pos - first).astype(np.int32), length) + step
        at_key = np.repeat((self.key_offsets[key] - first).astype(np.int32), length) + step
        diff = cps[at_text] != self.key_cps[at_key]
        return ~np.logical_or.reduceat(diff, first)


def _pair_slot(bits: int, first: np.ndarray, second: np.ndarray, third: np.ndarray | None = None) -> np.ndarray:
    """Slot of the first 2 (or 3) code points in a bitmap that pre-filters starts of non-token keys."""
    mixed = first.astype(np.uint64) * _FIB ^ second.astype(np.uint64) * _PAIR_MUL
    if third is not None:
        mixed ^= (third.astype(np.uint64) + np.uint64(1)) * _TRIPLE_MUL
    return (mixed >> np.uint64(64 - bits)).view(np.int64)


def _token_keys(cps: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """_is_token_key of every key, from the keys' code points and offsets."""
    starts, ends = offsets[:-1], offsets[1:]
    if not len(starts):
        return np.zeros(0, dtype=bool)
    long = ends - starts >= 2
    return long & (cps[np.minimum(starts, len(cps) - 1)] == SPACE) & (cps[np.maximum(ends - 1, 0)] == SPACE)


def _is_token_key(key: str) -> bool:
    """True for keys that start and end with a space: they can only occur between two spaces of a text."""
    return len(key) >= 2 and key[0] == " " and key[-1] == " "
