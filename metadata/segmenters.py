"""Word segmenters of the no-space languages of MetaCLIP 2's `build_ngram.py`, all offline.

Each segments one whitespace-free chunk of text into words, as the reference's per-language
`lang_tokenizers/*.py` do. The first segmenter listed for a language is its default; `--segmenter`
chooses another. `reference` says whether it is the reference's own segmenter.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from core.errors import UserError

Segment = Callable[[str], list[str]]


@dataclass(frozen=True)
class Segmenter:
    name: str
    package: str  # what to pip install
    reference: bool  # the same segmenter (and model) as MetaCLIP 2's


# The reference's segmenter per language, as MetaCLIP 2's lang_tokenizers use it.
REFERENCE = {
    "zh": "CKIP BERT (ckip-transformers bert-base)", "ja": "MeCab + IPAdic", "th": "thai-segmenter",
    "lo": "laonlp", "km": "a CRF model of its own, not published", "my": "mmCRFseg (model fetched at run time)",
    "bo": "botok with its dialect pack (fetched at first use)",
}
REFERENCE.update({"yue": REFERENCE["zh"], "lzh": REFERENCE["zh"], "ryu": REFERENCE["ja"], "dz": REFERENCE["bo"]})

_ZH = (Segmenter("jieba", "jieba", False), Segmenter("ckip", "ckip-transformers", True))
_JA = (Segmenter("mecab", "mecab-python3 ipadic", True), Segmenter("tinysegmenter", "tinysegmenter", False))
_BO = (Segmenter("botok-syllables", "botok", False), Segmenter("botok", "botok", True))
SEGMENTERS: dict[str, tuple[Segmenter, ...]] = {
    "zh": _ZH, "yue": _ZH, "lzh": _ZH, "ja": _JA, "ryu": _JA, "bo": _BO, "dz": _BO,
    "th": (Segmenter("thai-segmenter", "thai-segmenter", True), Segmenter("pythainlp-newmm", "pythainlp", False)),
    "lo": (Segmenter("laonlp", "laonlp", True),),
    "km": (Segmenter("khmer-nltk", "khmer-nltk", False),),
    "my": (Segmenter("my-syllables", "(none: built in)", False), Segmenter("mmcrfseg", "python-crfsuite", True)),
}
BOTOK_PACK = Path.home() / "general"  # where the reference's botok Config(base_path=Path.home()) keeps it
MMCRFSEG_MODEL = Path.home() / "mm-word-segmentation-300.crfsuite"  # mmCRFseg's model, as the reference names it


def choose(lang: str, name: str | None = None) -> Segmenter | None:
    """The segmenter `name` (default: the language's first) of a no-space language; None if spaced."""
    options = SEGMENTERS.get(lang)
    if options is None:
        if name:
            raise UserError(f"--segmenter {name}: --lang {lang} is written with spaces and takes no segmenter")
        return None
    if name is None:
        return options[0]
    for s in options:
        if s.name == name:
            return s
    raise UserError(f"--segmenter {name}: not one for --lang {lang}; "
                    f"choose one of {', '.join(s.name for s in options)}")


def help_table() -> str:
    """Per group of languages: its segmenters, default first, each marked = or != the reference's."""
    groups: dict[tuple[Segmenter, ...], list[str]] = {}
    for lang, options in SEGMENTERS.items():
        groups.setdefault(options, []).append(lang)
    parts = []
    for options, langs in groups.items():
        names = ", ".join(f"{s.name} ({'=' if s.reference else '!='} reference)" for s in options)
        gap = "" if any(s.reference for s in options) else f" [reference: {REFERENCE[langs[0]]}]"
        parts.append(f"{'/'.join(langs)}: {names}{gap}")
    return "; ".join(parts)


@lru_cache(maxsize=None)
def load(name: str) -> Segment:
    """The segmenting function of segmenter `name`; a UserError says what to install if it is missing."""
    try:
        return _LOADERS[name]()
    except ImportError as e:
        package = next(s.package for options in SEGMENTERS.values() for s in options if s.name == name)
        raise UserError(f"--segmenter {name}: {e.name or e} is not installed: pip install {package}") from e


def _jieba() -> Segment:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut


def _ckip() -> Segment:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights come from the local cache, never a download
    from ckip_transformers.nlp import CkipWordSegmenter

    try:
        driver = CkipWordSegmenter(model="bert-base", device=-1)
    except (OSError, ValueError) as e:
        raise UserError(f"--segmenter ckip: the model ckiplab/bert-base-chinese-ws is not in the local "
                        f"Hugging Face cache ({e}): download it there first, or use --segmenter jieba") from e
    return lambda chunk: driver([chunk], show_progress=False)[0]


def _mecab() -> Segment:
    import ipadic
    import MeCab

    tagger = MeCab.Tagger(ipadic.MECAB_ARGS + " -Owakati")
    return lambda chunk: tagger.parse(chunk).split()


def _tinysegmenter() -> Segment:
    import tinysegmenter

    return tinysegmenter.TinySegmenter().tokenize


def _thai_segmenter() -> Segment:
    from thai_segmenter import tokenize

    return tokenize


def _newmm() -> Segment:
    from pythainlp.tokenize import word_tokenize

    return lambda chunk: word_tokenize(chunk, engine="newmm", keep_whitespace=False)


def _laonlp() -> Segment:
    from laonlp.tokenize import word_tokenize

    return word_tokenize


def _khmer_nltk() -> Segment:
    import logging

    from khmernltk import word_tokenize

    logging.getLogger("khmer-nltk").setLevel(logging.WARNING)
    return word_tokenize


def _botok() -> Segment:
    if not (BOTOK_PACK / "dictionary").is_dir():
        raise UserError(f"--segmenter botok: botok's 'general' dialect pack is not at {BOTOK_PACK} (botok would "
                        f"download it; build-wiki never does): unpack it there, or use --segmenter botok-syllables")
    from botok import WordTokenizer
    from botok.config import Config

    tokenizer = WordTokenizer(config=Config(dialect_name="general", base_path=BOTOK_PACK.parent))
    return lambda chunk: [t.text for t in tokenizer.tokenize(chunk, split_affixes=False)]


def _botok_syllables() -> Segment:
    from botok.tokenizers.simpletokenizer import SimpleTokenizer

    return lambda chunk: [t.text for t in SimpleTokenizer.tokenize(chunk)]


# A Burmese syllable starts at a consonant that is neither stacked (after U+1039) nor killed (before
# U+103A asat or U+1039), at an independent vowel, digit, or a run of characters outside the script.
_MY_SYLLABLE_START = re.compile(
    "(?<!\u1039)[\u1000-\u1021](?![\u103a\u1039])|[\u1023-\u102a\u103f\u104c-\u104f\u1040-\u104b]|[^\u1000-\u109f]+")


def _my_syllables() -> Segment:
    def segment(chunk: str) -> list[str]:
        starts = [m.start() for m in _MY_SYLLABLE_START.finditer(chunk) if m.start()] + [len(chunk)]
        return [chunk[a:b] for a, b in zip([0, *starts], starts) if a < b]

    return segment


def char_features(chars: str, i: int) -> list[str]:
    """mmCRFseg's features of character i: itself and the character n-grams up to 3 either side."""
    n = len(chars)
    features = ["bias", "char=" + chars[i]]
    if i >= 1:
        features += ["char-1=" + chars[i - 1], "char-1:0=" + chars[i - 1:i + 1]]
    else:
        features.append("BOS")
    if i >= 2:
        features += ["char-2=" + chars[i - 2], "char-2:0=" + chars[i - 2:i + 1], "char-2:-1=" + chars[i - 2:i]]
    if i >= 3:
        features += ["char-3:0=" + chars[i - 3:i + 1], "char-3:-1=" + chars[i - 3:i]]
    if i + 1 < n:
        features += ["char+1=" + chars[i + 1], "char:+1=" + chars[i:i + 2]]
    else:
        features.append("EOS")
    if i + 2 < n:
        features += ["char+2=" + chars[i + 2], "char:+2=" + chars[i:i + 3], "char+1:+2=" + chars[i + 1:i + 3]]
    if i + 3 < n:
        features += ["char:+3=" + chars[i:i + 4], "char+1:+3=" + chars[i + 1:i + 4]]
    return features


def _mmcrfseg() -> Segment:
    if not MMCRFSEG_MODEL.is_file():
        raise UserError(f"--segmenter mmcrfseg: the mmCRFseg model is not at {MMCRFSEG_MODEL} (the reference "
                        f"downloads it; build-wiki never does): put it there, or use --segmenter my-syllables")
    import pycrfsuite

    tagger = pycrfsuite.Tagger()
    tagger.open(str(MMCRFSEG_MODEL))

    def segment(chunk: str) -> list[str]:
        labels = tagger.tag([char_features(chunk, i) for i in range(len(chunk))])
        starts = [i for i, label in enumerate(labels) if label == "1" and i] + [len(chunk)]
        return [chunk[a:b] for a, b in zip([0, *starts], starts) if a < b]

    return segment


_LOADERS: dict[str, Callable[[], Segment]] = {
    "jieba": _jieba, "ckip": _ckip, "mecab": _mecab, "tinysegmenter": _tinysegmenter,
    "thai-segmenter": _thai_segmenter, "pythainlp-newmm": _newmm, "laonlp": _laonlp, "khmer-nltk": _khmer_nltk,
    "botok": _botok, "botok-syllables": _botok_syllables, "my-syllables": _my_syllables, "mmcrfseg": _mmcrfseg,
}
