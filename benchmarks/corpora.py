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
NO_SPACE_LANGS = ("zh", "ja", "th")  # written without spaces between words


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
    joiner = "" if lang in NO_SPACE_LANGS else " "
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


# The web pool of issue 15: share of rows per language (16 with metadata), the rest in languages the
# metadata does not have (rejected as no_metadata_language); entries per language besides en and cjk.
WEB_LANGS = {"en": 0.35, "zh": 0.08, "es": 0.07, "ja": 0.06, "de": 0.06, "fr": 0.06, "pt": 0.05, "ru": 0.05,
             "ko": 0.03, "it": 0.03, "ar": 0.03, "th": 0.02, "nl": 0.02, "pl": 0.02, "tr": 0.02, "vi": 0.02}
WEB_OTHER_LANGS = {"sw": 0.01, "und": 0.01, None: 0.01}
WEB_TEXT_LANG = {"sw": "ms", "und": "hu", None: "fi"}  # words of these rows' texts (wordfreq has no sw/und)
WEB_MESSY = ["", " ", "   ", "\t\n", "\u00a0", "\u3000", "\u2028", "\x1c\x1f", "\x85", "\u200b", "\x00",
             "\x01\x02 icon", "logo\x7f", "\ufeffbanner"]


def word_entries(lang: str, n: int, seed: int = 0) -> list[str]:
    """n distinct entries of a space-separated language: wordfreq's words, then Zipf-sampled bigrams."""
    import wordfreq

    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    _distinct_fill(out, (str(i) for i in range(100)), n)
    _distinct_fill(out, wordfreq.top_n_list(lang, int(n * 0.7), wordlist="best"), n)
    words, p = _zipf_words(lang, 30_000, "best")
    while len(out) < n:
        picks = rng.choice(len(words), size=(20_000, 2), p=p).tolist()
        _distinct_fill(out, (f"{words[a]} {words[b]}" for a, b in picks), n)
    return list(out)


def web_entries(seed: int = 0, en: int = 500_000, cjk_n: int = 500_000, other: int = 40_000
                ) -> tuple[list[str], list[str]]:
    """A MetaCLIP 2-style metadata over WEB_LANGS: 500k English, 500k zh/ja/ko/th, `other` per other language."""
    entries, langs = english_entries(en, seed), ["en"] * en
    e, lg = cjk_entries(cjk_n, seed)
    entries, langs = entries + e, langs + lg
    for i, lang in enumerate(x for x in WEB_LANGS if x not in ("en", *LANG_SHARE)):
        e = word_entries(lang, other, seed + 10 + i)
        entries, langs = entries + e, langs + [lang] * len(e)
    return entries, langs


def web_pool(n_rows: int, seed: int = 0, dup_rate: float = 0.1):
    """A web-like pool table (text, lang, uid, url) of n_rows over WEB_LANGS + WEB_OTHER_LANGS.

    Rows are alt-texts of images: 1-4 per image (same uid and url), images in random order, languages mixed.
    Messy classes: ~3% of texts replaced by WEB_MESSY values or padded with NBSP/U+3000/control
    characters, ~1% null texts, 0.05% very long texts (5k-40k characters); 10% of images have a null uid
    and 1% a blank one (uids derived from the url), 2% of images repeat an earlier image's uid and url.
    """
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    shares = {**WEB_LANGS, **WEB_OTHER_LANGS}
    texts, langs = [], []
    for i, (lang, share) in enumerate(shares.items()):
        k = int(round(n_rows * share)) if i < len(shares) - 1 else n_rows - len(texts)
        texts += alt_texts(WEB_TEXT_LANG.get(lang, lang), k, seed + 100 + i, dup_rate)
        langs += [lang] * k
    order = rng.permutation(n_rows)
    texts = [texts[i] for i in order]
    langs = [langs[i] for i in order]
    long_rows = np.flatnonzero(rng.random(n_rows) < 0.0005)
    for r in long_rows.tolist():
        same = [j for j in rng.integers(0, n_rows, 2000).tolist() if langs[j] == langs[r]][:400]
        texts[r] = " ".join(texts[j] for j in same[: int(rng.integers(30, 400))])
    draw = rng.random(n_rows)
    for r in np.flatnonzero(draw < 0.015).tolist():
        texts[r] = WEB_MESSY[int(rng.integers(len(WEB_MESSY)))]
    pads = ("\u00a0", "\u3000", " \t", "\x00", "\u2009", "\x1f")
    for r in np.flatnonzero((draw >= 0.015) & (draw < 0.03)).tolist():
        texts[r] = pads[int(rng.integers(len(pads)))] + texts[r] + pads[int(rng.integers(len(pads)))]
    for r in np.flatnonzero((draw >= 0.03) & (draw < 0.04)).tolist():
        texts[r] = None
    sizes = rng.choice([1, 1, 1, 2, 2, 3, 4], size=n_rows)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_rows)) + 1]
    sizes[-1] -= int(sizes.sum()) - n_rows
    n_img = len(sizes)
    img_uid = np.array([f"{a:016x}{b:016x}" for a, b in zip(rng.integers(0, 1 << 62, n_img).tolist(),
                                                               rng.integers(0, 1 << 62, n_img).tolist())], dtype=object)
    img_url = np.array([f"https://img{k % 97}.example.com/{u[:20]}.jpg" for k, u in enumerate(img_uid)], dtype=object)
    again = np.flatnonzero(rng.random(n_img) < 0.02)
    again = again[again > 0]
    src = (rng.random(len(again)) * again).astype(np.int64)
    img_uid[again], img_url[again] = img_uid[src], img_url[src]
    u = rng.random(n_img)
    img_uid[u < 0.10] = None
    img_uid[(u >= 0.10) & (u < 0.11)] = " "
    image = np.repeat(np.arange(n_img), sizes)
    return pa.table({"text": pa.array(texts, pa.string()), "lang": pa.array(langs, pa.string()),
                     "uid": pa.array(img_uid[image].tolist(), pa.string()),
                     "url": pa.array(img_url[image].tolist(), pa.string())})
