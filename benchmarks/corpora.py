"""Synthetic but realistic matching inputs: metadata entries and web-style alt-texts, built offline.

English: wordfreq's large English list (~320k words, with its long tail of names, numbers, foreign
words and emoji) plus Zipf-sampled bigrams and title-case phrases, plus entries with punctuation
("c++", "u.s.", "mr.") up to the requested size (MetaCLIP 1 ships 500k entries).
CJK-heavy: zh/ja word lists from wordfreq (jieba / MeCab-style tokens) plus CJK character n-grams,
Korean wordfreq tokens and the pythainlp Thai dictionary.
Alt-texts are sampled from the same languages' word frequencies with web noise: capitals, commas,
" - " and " | " separators, numbers, sizes, file names, tabs/newlines, NBSP; a fraction repeats
verbatim (web alt-texts repeat a lot: "image", "logo", product names).
Everything is a deterministic function of the seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_WORDS = ("IMG_{n}.jpg", "{n}x{m}", "{n}", "({n})", "#{n}", "v{n}.{m}", "{n}%", "${n}.99")
PUNCT_ENTRIES = ("c++", "c#", ".net", "u.s.", "mr.", "dr.", "st.", "inc.", "no.", "e.g.", "a.m.", "p.m.",
                 "at&t", "r&b", "q&a", "wi-fi", "t-shirt", "'s", "#1", "4:3", "16:9", "...", "!!!", "?!")
LANG_SHARE = {"zh": 0.4, "ja": 0.3, "ko": 0.15, "th": 0.15}


@dataclass
class Corpus:
    """A metadata (entries with global ids and a language each) and alt-texts with their language."""

    entries: list[str]
    langs: list[str]
    texts: list[str]
    text_langs: list[str]

    def by_lang(self) -> dict[str, tuple[list[str], list[int], list[str]]]:
        """lang -> (entries, entry_ids, texts) so each language is matched only against its own entries."""
        out: dict[str, tuple[list[str], list[int], list[str]]] = {}
        for i, (e, lang) in enumerate(zip(self.entries, self.langs)):
            out.setdefault(lang, ([], [], []))
            out[lang][0].append(e)
            out[lang][1].append(i)
        for t, lang in zip(self.texts, self.text_langs):
            out.setdefault(lang, ([], [], []))[2].append(t)
        return out


def _zipf_words(lang: str, n: int, wordlist: str) -> tuple[list[str], np.ndarray]:
    import wordfreq

    table = wordfreq.get_frequency_dict(lang, wordlist=wordlist)
    words = sorted(table, key=table.__getitem__, reverse=True)[:n]
    freq = np.array([table[w] for w in words], dtype=np.float64)
    return words, freq / freq.sum()


def _distinct_fill(out: dict[str, None], candidates, limit: int) -> None:
    for c in candidates:
        if len(out) >= limit:
            return
        if c and c == c.strip():
            out.setdefault(c)


def english_entries(n: int = 500_000, seed: int = 0) -> list[str]:
    """n distinct English-style entries: words, punctuation entries, numbers, bigrams, title phrases."""
    import wordfreq

    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    _distinct_fill(out, PUNCT_ENTRIES, n)
    _distinct_fill(out, (str(i) for i in range(100)), n)
    _distinct_fill(out, wordfreq.top_n_list("en", int(n * 0.62), wordlist="large"), n)
    words, p = _zipf_words("en", 30_000, "large")
    while len(out) < n:
        k = rng.choice([2, 2, 2, 3, 4], size=50_000)
        picks = rng.choice(len(words), size=(50_000, 4), p=p).tolist()
        title = (rng.random(50_000) < 0.25).tolist()
        phrases = (" ".join(words[j] for j in row[:kk]) for row, kk in zip(picks, k.tolist()))
        _distinct_fill(out, (s.title() if t else s for s, t in zip(phrases, title)), n)
    return list(out)


def cjk_entries(n: int = 500_000, seed: int = 0) -> tuple[list[str], list[str]]:
    """n distinct (entry, lang) over zh/ja/ko/th: wordfreq/pythainlp words plus CJK character n-grams."""
    import wordfreq
    from pythainlp.corpus import thai_words

    rng = np.random.default_rng(seed)
    sizes = {"zh": int(n * 0.45), "ja": int(n * 0.3), "ko": 30_000}
    sizes["th"] = n - sum(sizes.values())
    entries, langs = [], []
    for lang, size in sizes.items():
        out: dict[str, None] = {}
        _distinct_fill(out, (str(i) for i in range(100)), size)
        if lang == "th":
            words = sorted(thai_words())
            _distinct_fill(out, words, size)
        else:
            words = wordfreq.top_n_list(lang, int(size * 0.7), wordlist="large" if lang != "ko" else "best")
            _distinct_fill(out, words, size)
        words = words[:60_000]
        while len(out) < size:
            picks = rng.integers(0, len(words), size=(20_000, 2))
            cut = rng.integers(2, 7, size=20_000)
            grams = ((words[a] + words[b])[:k] for (a, b), k in zip(picks.tolist(), cut.tolist()))
            _distinct_fill(out, grams, size)
        entries += list(out)
        langs += [lang] * len(out)
    return entries, langs


def _noise(rng: np.random.Generator) -> str:
    return NOISE_WORDS[rng.integers(len(NOISE_WORDS))].format(n=int(rng.integers(1, 4000)),
                                                              m=int(rng.integers(1, 100)))


def alt_texts(lang: str, n: int, seed: int = 0, dup_rate: float = 0.1,
              min_chars: int = 20, max_chars: int = 200) -> list[str]:
    """n web-style alt-texts in `lang` (en/zh/ja/ko/th), min..max chars, dup_rate repeated verbatim."""
    rng = np.random.default_rng(seed)
    if lang == "th":
        from pythainlp.corpus import thai_words

        vocab = sorted(thai_words())[:20_000]
        words, p = vocab, np.full(len(vocab), 1 / len(vocab))
    else:
        words, p = _zipf_words(lang, 50_000, "large" if lang in ("en", "zh", "ja") else "best")
    joiner = " " if lang in ("en", "ko") else ""
    if lang in ("zh", "ja", "th"):
        min_chars, max_chars = max(8, min_chars // 2), max(16, max_chars // 3)
    seps = [", ", " - ", " | ", ". ", " ", ": ", "\t", " \u00a0"] if joiner else ["，", "。", "、", " ", "｜", "・", ""]
    picks = iter(rng.choice(len(words), size=n * 60, p=p))
    texts: list[str] = []
    for _ in range(n):
        if texts and rng.random() < dup_rate:
            texts.append(texts[int(rng.integers(max(0, len(texts) - 5000), len(texts)))])
            continue
        target = int(np.exp(rng.uniform(np.log(min_chars), np.log(max_chars))))
        parts, size = [], 0
        while size < target:
            r = rng.random()
            w = _noise(rng) if r < 0.04 else words[next(picks)]
            if joiner and r > 0.85:
                w = w.title()
            parts.append(w)
            parts.append(seps[rng.integers(len(seps))] if rng.random() < 0.12 else joiner)
            size += len(w) + 1
        text = "".join(parts[:-1])[:max_chars].strip()
        texts.append(text[0].upper() + text[1:] if text else "logo")
    return texts


def english(n_entries: int = 500_000, n_texts: int = 100_000, seed: int = 0, dup_rate: float = 0.1) -> Corpus:
    """500k English entries and English alt-texts (MetaCLIP 1 style: everything English)."""
    entries = english_entries(n_entries, seed)
    texts = alt_texts("en", n_texts, seed + 1, dup_rate)
    return Corpus(entries, ["en"] * len(entries), texts, ["en"] * len(texts))


def cjk(n_entries: int = 500_000, n_texts: int = 100_000, seed: int = 0, dup_rate: float = 0.1) -> Corpus:
    """CJK-heavy multilingual metadata (zh/ja/ko/th) and alt-texts in those languages."""
    entries, langs = cjk_entries(n_entries, seed)
    texts, text_langs = [], []
    for i, (lang, share) in enumerate(LANG_SHARE.items()):
        k = int(n_texts * share) if i < len(LANG_SHARE) - 1 else n_texts - len(texts)
        texts += alt_texts(lang, k, seed + 2 + i, dup_rate)
        text_langs += [lang] * k
    order = np.random.default_rng(seed + 99).permutation(len(texts))  # a web pool mixes its languages
    return Corpus(entries, langs, [texts[i] for i in order], [text_langs[i] for i in order])
