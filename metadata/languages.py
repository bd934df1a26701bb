"""Metadata language codes and the scripts they are written in.

A metadata language is named by its ISO 639-1 code where one exists, else its ISO 639-3 code
(checked against the IANA subtag registry that ships with `langcodes`). Every label of fastText's
lid.176 (the LID MetaCLIP 2 uses) is accepted as is, including its few non-ISO labels (als, eml, bh,
nah, sh, …), so that LID output always names a metadata language.
"""
from __future__ import annotations

import re
from functools import lru_cache

from core.errors import UserError

LID176 = frozenset("""
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs
cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb
ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv
mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl
pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr
tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh
""".split())

_NOT_LANGUAGES = frozenset({"mis", "mul", "und", "zxx"})
_CODE = re.compile(r"[a-z]{2,3}")


def check_lang(code: str, where: str = "--lang") -> str:
    """Return `code` if it names a metadata language, else raise a UserError saying what to use."""
    if code in LID176:
        return code
    if not _CODE.fullmatch(code or ""):
        raise UserError(f"{where}: unknown language code {code!r}: use a lower-case ISO 639-1 code (e.g. en, zh, th) "
                        "or ISO 639-3 where none exists")
    import langcodes

    private = "qaa" <= code <= "qtz"
    if private or code in _NOT_LANGUAGES or not langcodes.tag_is_valid(code):
        raise UserError(f"{where}: unknown language code {code!r}: use an ISO 639-1 code (e.g. en, zh, th) "
                        "or ISO 639-3 where none exists")
    standard = langcodes.standardize_tag(code)
    if standard != code and re.fullmatch(r"[a-z]{2}", standard):
        raise UserError(f"{where}: language {code!r} has the ISO 639-1 code {standard!r}: use {standard!r}")
    return code


def parse_langs(value: str, available: list[str]) -> list[str]:
    """`--langs en,de,…` or `all` (= `available`) → validated codes, order kept, duplicates dropped."""
    if value.strip() == "all":
        return list(available)
    codes = [c.strip() for c in value.split(",") if c.strip()]
    if not codes:
        raise UserError("--langs: give a comma-separated list of language codes (e.g. en,de,zh) or 'all'")
    return list(dict.fromkeys(check_lang(c, "--langs") for c in codes))


# Unicode blocks of each language's script(s). A packaged source's entry must contain at least one
# letter of them: this drops stray Latin words, emoji and symbols that frequency lists of e.g. zh,
# ja or hi contain, and makes "no English entries in other languages" checkable.
_LATIN = ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF))
_CYRILLIC = ((0x400, 0x52F),)
_ARABIC = ((0x600, 0x6FF), (0x750, 0x77F), (0x8A0, 0x8FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
_HAN = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2EBEF), (0xF900, 0xFAFF))
_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))
_HANGUL = ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))
SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "zh": _HAN, "ja": _HAN + _KANA, "ko": _HANGUL + _HAN,
    "th": ((0x0E00, 0x0E7F),), "lo": ((0x0E80, 0x0EFF),), "my": ((0x1000, 0x109F),), "km": ((0x1780, 0x17FF),),
    "ar": _ARABIC, "fa": _ARABIC, "ur": _ARABIC, "he": ((0x590, 0x5FF), (0xFB1D, 0xFB4F)), "yi": ((0x590, 0x5FF),),
    "hi": ((0x900, 0x97F),), "mr": ((0x900, 0x97F),), "ne": ((0x900, 0x97F),), "bn": ((0x980, 0x9FF),),
    "ta": ((0xB80, 0xBFF),), "te": ((0xC00, 0xC7F),), "gu": ((0xA80, 0xAFF),), "ka": ((0x10A0, 0x10FF),),
    "el": ((0x370, 0x3FF), (0x1F00, 0x1FFF)), "hy": ((0x530, 0x58F),),
    "ru": _CYRILLIC, "uk": _CYRILLIC, "bg": _CYRILLIC, "mk": _CYRILLIC, "be": _CYRILLIC, "kk": _CYRILLIC,
    "sh": _LATIN + _CYRILLIC, "sr": _LATIN + _CYRILLIC,
}


def script_ranges(lang: str) -> tuple[tuple[int, int], ...]:
    """The code-point ranges of `lang`'s script(s); Latin for languages not listed."""
    return SCRIPTS.get(lang, _LATIN)


def script_ok(entry: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    """False for an entry whose letters are all of another script, or that has no letter or digit
    at all (emoji, symbols). Entries of digits and punctuation only are script-neutral."""
    if _script_pattern(ranges).search(entry):
        return True
    return not any(ch.isalpha() for ch in entry) and any(ch.isdigit() for ch in entry)


@lru_cache(maxsize=None)
def _script_pattern(ranges: tuple[tuple[int, int], ...]) -> re.Pattern:
    """A regex matching one letter of the script (its non-letters, e.g. Thai digits, excluded)."""
    return re.compile("(?=[^\\W\\d_])[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges) + "]")
