"""`curate metadata build-wiki`: MetaCLIP 2's metadata recipe from a Wikipedia pages-articles dump.

Per language, in id order, the first source winning a duplicate (MetaCLIP 2 build_metadata.py):
numbers "0".."99"; WordNet lemmas where a packaged wordnet covers the language ("+" removed in zh, ja
and fr, as there); unigrams by count, top min(251465, 10% of distinct unigrams); bigrams with
PMI > 30 (log2, NLTK's formula, as MetaCLIP 1), highest first, at most min(100646, distinct
bigrams), concatenated without a space in no-space languages; article titles (no ':'), ranked by
how often the title occurs in the dump text (matched the way entries match alt-texts,
matching.matcher), top min(61235, 76% of titles). Candidates that are empty, pure punctuation or
(except WordNet lemmas) over 256 characters are skipped, as in the recipe; caps count added entries
only and are checked after each addition, as there. N-grams are counted over the title line and the
text of each article, as the reference counts WikiExtractor's output (metadata.ngrams).

English is not rebuilt by the reference (it reuses MetaCLIP 1's 500k list): `force_english` asks.

The dump (.xml, .xml.bz2 or .xml.gz) is streamed once with iterparse, never loaded whole: it strips
markup, counts n-grams in bounded memory (metadata.wiki_counts: spilled Parquet runs, ranked in
DuckDB) and collects titles, spooling the plain text to a temporary file beside META (or in
--tmp-dir); a second pass over that text counts title occurrences with matching.matcher.Matcher.
"""
from __future__ import annotations

import bz2
import gzip
import html
import itertools
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from core.errors import UserError
from core.outputs import file_fingerprint
from matching.matcher import Matcher
from matching.text import pad_entry, spacing
from metadata import segmenters, wordnet
from metadata.languages import check_lang
from metadata.packaged import NUMBERS
from metadata.recipe import (
    BIGRAM_CAP,
    BIGRAM_PMI,
    DEFAULT_BUDGET_MIB,
    TITLE_CAP,
    TITLE_SHARE,
    UNIGRAM_CAP,
    UNIGRAM_SHARE,
)
from metadata.store import Block, append, entry_problem
from metadata.tokenizer import is_pure_punctuation
from metadata.wiki_counts import SpillingCounts

MAX_LEN = 256
PLUS_REMOVED = frozenset({"zh", "ja", "fr"})  # build_metadata.py drops "+" from these WordNet lemmas

_DROP_WITH_CONTENT = re.compile(
    r"<(ref|math|gallery|timeline|syntaxhighlight|source|score|chem|graph|mapframe|templatedata)\b[^>]*?(?<!/)>.*?</\1\s*>",
    re.S | re.I)
_SELF_CLOSING = re.compile(r"<(ref|references)\b[^>]*/>", re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_EXTERNAL = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]+\s*([^\]]*)\]")
_QUOTES = re.compile(r"'{2,5}")
_HEADING = re.compile(r"^=+\s*(.*?)\s*=+\s*$", re.M)
_TAG = re.compile(r"<[^<>]*>")
_MAGIC = re.compile(r"__[A-Z]+__")
_LIST = re.compile(r"^[*#:;]+\s*", re.M)
_LANG_PREFIX = re.compile(r"[a-z]{2,3}(-[a-z]+)*")


def _nested(pattern: re.Pattern, repl, text: str) -> str:
    """Apply `pattern` until nothing changes (innermost first), for nested templates/tables/links."""
    for _ in range(50):
        new = pattern.sub(repl, text)
        if new == text:
            return new
        text = new
    return text


def strip_markup(wikitext: str, namespaces: frozenset[str] = frozenset()) -> str:
    """Plain text of an article: drops comments, refs, templates, tables, files, categories and
    interlanguage links; [[a|b]] -> b, [[a]] -> a, [url label] -> label; drops bold/italic quotes,
    heading marks, list marks, HTML tags and magic words; decodes HTML entities."""
    ns = {n.lower() for n in namespaces} | {"file", "image", "media", "category"}

    def link(m: re.Match) -> str:
        target, _, label = m[1].partition("|")
        prefix, colon, _ = target.lstrip(":").partition(":")
        if colon and (prefix.strip().lower() in ns or _LANG_PREFIX.fullmatch(prefix.strip())):
            return ""
        return label if label else target

    text = _COMMENT.sub("", wikitext)
    text = _DROP_WITH_CONTENT.sub("", text)
    text = _SELF_CLOSING.sub("", text)
    text = _nested(_TEMPLATE, "", text)
    text = _nested(_TABLE, "", text)
    text = _nested(_LINK, link, text)
    text = _EXTERNAL.sub(r"\1", text)
    text = _QUOTES.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _MAGIC.sub("", text)
    text = _LIST.sub("", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    return _TAG.sub("", text)


def _open(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise UserError(f"--dump {path}: file not found")
    name = path.name.lower()
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def iter_articles(path: Path) -> Iterator[tuple[str, str, frozenset[str]]]:
    """(title, wikitext, namespace names) of each namespace-0, non-redirect page, streamed."""
    namespaces: set[str] = set()
    try:
        with _open(path) as f:
            context = ET.iterparse(f, events=("start", "end"))
            root = None
            for event, elem in context:
                if root is None:
                    root = elem
                    if _local(elem.tag) != "mediawiki":
                        raise UserError(f"--dump {path}: root element is <{_local(elem.tag)}>, not <mediawiki>: "
                                        "not a Wikipedia XML dump")
                if event != "end":
                    continue
                tag = _local(elem.tag)
                if tag == "namespace" and elem.text and elem.get("key") != "0":
                    namespaces.add(elem.text.strip())
                elif tag == "page":
                    ns = elem.findtext("{*}ns") or elem.findtext("ns") or "0"
                    title = (elem.findtext("{*}title") or elem.findtext("title") or "").strip()
                    redirect = elem.find("{*}redirect") is not None or elem.find("redirect") is not None
                    text = elem.findtext("{*}revision/{*}text") or elem.findtext("revision/text") or ""
                    if ns.strip() == "0" and not redirect and not text.lstrip().upper().startswith("#REDIRECT"):
                        yield title, text, frozenset(namespaces)
                    root.clear()
    except ET.ParseError as e:
        line, col = e.position
        raise UserError(f"--dump {path}:{line}: not well-formed XML (column {col}): "
                        "is it a complete pages-articles dump?") from e
    except (OSError, EOFError) as e:
        raise UserError(f"--dump {path}: cannot read ({e}): is the file complete?") from e


def _take(candidates, cap: int, seen: set[str], skipped: Counter, max_len: int | None = MAX_LEN) -> list[str]:
    """New entries from ranked candidates, as build_metadata.py: blank, pure-punctuation and (with
    max_len) too long candidates and duplicates are skipped; the cap counts added entries and is
    checked after each addition, so a cap of 0 still takes the first one."""
    out: list[str] = []
    for entry in candidates:
        entry = entry.strip()
        problem = entry_problem(entry) if entry else "blank"
        if problem is None and max_len is not None and len(entry) > max_len:
            problem = f"longer than {max_len} characters"
        if problem is None and is_pure_punctuation(entry):
            problem = "pure punctuation"
        if problem is not None:
            skipped[problem] += 1
        elif entry not in seen:
            seen.add(entry)
            out.append(entry)
            if len(out) >= cap:
                break
    return out


def wordnet_candidates(lang: str) -> list[str]:
    """The language's packaged WordNet lemmas as build_metadata.py reads them."""
    lemmas = wordnet.lemmas(lang)[0]
    return [m.replace("+", "") for m in lemmas] if lang in PLUS_REMOVED else lemmas


def tokenizer_label(lang: str, chosen: segmenters.Segmenter | None) -> str:
    """What tokenized the dump and whether it is the reference's, for the summary."""
    if chosen is None:
        return "simple_tokenizer (= reference)"
    if chosen.reference:
        return f"{chosen.name} (= reference)"
    return f"{chosen.name} (reference: {segmenters.REFERENCE[lang]})"


def check_english(lang: str, force_english: bool) -> None:
    """MetaCLIP 2 takes English from MetaCLIP 1; building it from a dump needs force_english."""
    if lang == "en" and not force_english:
        raise UserError("--lang en: MetaCLIP 2 does not rebuild English from Wikipedia but uses MetaCLIP 1's "
                        "500k entries: import them with `curate metadata add --lang en --file metadata.json "
                        "--source metaclip1`, or pass --force-english to build from this dump anyway")


def _occurrences(text: str, key: str) -> int:
    """Occurrences of `key` in `text`, overlapping ones included (as an Aho-Corasick walk reports)."""
    n, i = 0, text.find(key)
    while i >= 0:
        n += 1
        i = text.find(key, i + 1)
    return n


def count_titles(titles: list[str], text_file: IO[str], progress: bool, batch_lines: int = 50_000) -> np.ndarray:
    """How often each title occurs in the spooled text: one count per occurrence (overlapping ones
    too), matched as entries match alt-texts (matching.matcher). The fast Matcher finds which titles
    each line contains; only those (line, title) pairs are then counted exactly."""
    from tqdm import tqdm

    if not titles:
        return np.zeros(0, dtype=np.int64)
    counts = [0] * len(titles)
    matcher = Matcher(titles, range(len(titles)))
    keys = [pad_entry(t) for t in titles]
    text_file.seek(0)
    with tqdm(desc="title counts", unit=" lines", disable=not progress) as bar:
        while batch := [line.strip() for line in itertools.islice(text_file, batch_lines)]:
            found = matcher.match(batch)
            offsets, ids = found.offsets.tolist(), found.entry_ids.tolist()
            for i in np.flatnonzero(np.diff(found.offsets)).tolist():
                spaced = spacing(batch[i])
                for t in ids[offsets[i]:offsets[i + 1]]:
                    counts[t] += _occurrences(spaced, keys[t])
            bar.update(len(batch))
    return np.array(counts, dtype=np.int64)


def _work_folder(out: str, tmp_dir: str | None) -> Path:
    """Where spill runs, DuckDB's temp files and the spooled text go: --tmp-dir, else beside META (the temp
    folder when META is a URL)."""
    from core import storage

    beside = storage.local_path(out).resolve().parent if storage.is_local(out) else Path(tempfile.gettempdir())
    base = Path(tmp_dir) if tmp_dir else beside
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--tmp-dir {base}: cannot create ({e})") from e
    return base


def build_wiki(dump: str, lang: str, out: str, pmi_threshold: float = BIGRAM_PMI, use_wordnet: bool = True,
               max_pages: int | None = None, progress: bool = True, max_ngrams: int | None = None,
               memory_limit_mib: int = DEFAULT_BUDGET_MIB, tmp_dir: str | None = None,
               segmenter: str | None = None, force_english: bool = False) -> dict:
    """Build MetaCLIP 2 metadata for `lang` from `dump` and append it to META `out`.

    max_ngrams: distinct n-grams held in memory before the counters spill a run (None: never);
    memory_limit_mib: DuckDB's memory limit when aggregating the runs; tmp_dir: where runs go;
    segmenter: a no-space language's word segmenter (metadata.segmenters; None: its default).
    """
    from tqdm import tqdm

    check_lang(lang)
    check_english(lang, force_english)
    chosen = segmenters.choose(lang, segmenter)
    if chosen is not None:
        segmenters.load(chosen.name)
    if max_pages is not None and max_pages < 1:
        raise UserError(f"--max-pages must be at least 1, not {max_pages}")
    if max_ngrams is not None and max_ngrams < 1:
        raise UserError(f"--memory-budget must allow at least one n-gram, not {max_ngrams}")
    path = Path(dump)
    titles: dict[str, None] = {}
    pages = 0
    articles = iter_articles(path)
    first = next(articles, None)  # a missing or foreign file fails here, before any progress output
    if first is None:
        raise UserError(f"--dump {path}: no articles (namespace 0, not redirects) found")
    with tempfile.TemporaryDirectory(prefix=".build-wiki-", dir=_work_folder(out, tmp_dir)) as work, \
            open(Path(work) / "text.txt", "w+", encoding="utf-8") as spool:
        counts = SpillingCounts(lang, Path(work), max_ngrams or 2**62, memory_limit_mib, progress, segmenter)
        with tqdm(desc=f"wiki {lang}", unit=" pages", disable=not progress) as bar:
            for title, wikitext, namespaces in itertools.chain([first], articles):
                if max_pages is not None and pages >= max_pages:
                    break
                pages += 1
                bar.update()
                text = strip_markup(wikitext, namespaces)
                if counts.add_text(f"{title}\n\n{text}"):
                    bar.set_postfix(runs=counts.runs, refresh=False)
                spool.write(text.replace("\r", " ") + "\n")
                if title and ":" not in title:
                    titles.setdefault(title)
        ranked_counts = counts.finish()
        n_uni = min(UNIGRAM_CAP, int(ranked_counts.distinct_unigrams * UNIGRAM_SHARE))
        skipped: Counter = Counter()
        seen = set(NUMBERS)
        blocks = [Block(lang, "numbers", NUMBERS)]
        if use_wordnet and lang in wordnet.LANGUAGES:
            blocks.append(Block(lang, "wordnet", _take(wordnet_candidates(lang), 10**9, seen, skipped, max_len=None)))
        blocks.append(Block(lang, "wiki_unigram", _take(ranked_counts.top_unigrams(), n_uni, seen, skipped)))
        n_pmi, bigrams = ranked_counts.pmi_bigrams(pmi_threshold)
        n_bi = min(BIGRAM_CAP, ranked_counts.distinct_bigrams)
        blocks.append(Block(lang, "wiki_bigram", _take(bigrams, n_bi, seen, skipped)))
        ranked_counts.close()
        title_list = list(titles)
        title_counts = count_titles(title_list, spool, progress)

    ranked = np.argsort(-title_counts, kind="stable")
    n_title = min(TITLE_CAP, int(len(title_list) * TITLE_SHARE))
    blocks.append(Block(lang, "wiki_title", _take((title_list[i] for i in ranked), n_title, seen, skipped)))

    stats = {"pages": pages, "tokens": ranked_counts.tokens, "distinct_unigrams": ranked_counts.distinct_unigrams,
             "distinct_bigrams": ranked_counts.distinct_bigrams, "bigrams_over_pmi": n_pmi, "titles": len(title_list),
             "runs": counts.runs, "peak_ngrams_in_memory": counts.peak_in_memory,
             "tokenizer": tokenizer_label(lang, chosen),
             "caps": {"wiki_unigram": n_uni, "wiki_bigram": n_bi, "wiki_title": n_title}}
    record = {
        "command": "build-wiki",
        "langs": [lang],
        "dump": file_fingerprint(path),
        "options": {"pmi_threshold": pmi_threshold, "wordnet": use_wordnet, "max_pages": max_pages,
                    "segmenter": chosen.name if chosen else "simple_tokenizer",
                    "segmenter_is_reference": chosen.reference if chosen else True,
                    "force_english": force_english},
        "stats": stats,
        "sources": {s: {"dump": str(path.resolve())} for s in ("wiki_unigram", "wiki_bigram", "wiki_title")},
        "skipped": {lang: {"wiki": dict(skipped)}} if skipped else {},
    }
    summary = append(out, blocks, record)
    return {"summary": summary, "stats": stats, "skipped": dict(skipped)}
