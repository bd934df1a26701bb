"""Caption mixing (VeCLIP): each sample's caption source drawn per (seed, epoch, uid).

`--caption-mix alt:0.5,vecap:0.5` names sources and weights; `alt` is the alt-text (KEY.txt, or the
text online curation chose), any other name is a key of KEY.json's `captions` (see `curate captions
add` and `curate recaption`). The draw is uniform(uid key, seed, epoch, STREAM_CAPTION) against the
cumulative weights, so it is the same for any worker count and exact on resume. A sample lacking the
drawn source falls back to the alt-text and is counted (`caption_fallback`). With `--caption-mix-langs`,
only samples whose alt-text language is listed may get an enriched caption; the others keep the
alt-text (captioners usually write English). Online curation is not affected: it decides on the
alt-texts' matches before the caption is picked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import UserError
from curation.sampling import uniform

ALT = "alt"
STREAM_CAPTION = 2  # after curation.sampling's STREAM_CHOICE (0) and STREAM_KEEP (1)


@dataclass(frozen=True)
class CaptionMix:
    """Sources with cumulative weights, the seed, and the alt-text languages that may be enriched."""

    sources: tuple[str, ...]
    cumulative: tuple[float, ...]
    seed: int
    langs: frozenset[str] | None = None

    def draw(self, uid_key: int, epoch: int) -> str:
        """The source for one sample in one epoch."""
        u = float(uniform(np.array([uid_key], dtype=np.uint64), self.seed, epoch, STREAM_CAPTION)[0])
        return self.sources[min(int(np.searchsorted(self.cumulative, u, side="right")), len(self.sources) - 1)]

    def pick(self, meta: dict, alt_text: str, uid_key: int, epoch: int) -> tuple[str, bool]:
        """(caption, fell back): the drawn source's caption, or the alt-text (fell back when it was missing)."""
        source = self.draw(uid_key, epoch)
        if source == ALT or (self.langs is not None and alt_lang(meta, alt_text) not in self.langs):
            return alt_text, False
        caption = (meta.get("captions") or {}).get(source)
        if isinstance(caption, str) and caption.strip():
            return caption, False
        return alt_text, True


def alt_lang(meta: dict, alt_text: str) -> str | None:
    """Language of the alt-text in use: its entry in `texts` (online choice), else the sample's `lang`."""
    for t in meta.get("texts") or []:
        if t[0] == alt_text:
            return t[1]
    return meta.get("lang")


def parse_mix(spec: str | None, seed: int, langs: str | None = None) -> CaptionMix | None:
    """CaptionMix from `--caption-mix` and `--caption-mix-langs`; None when no mix is asked for."""
    if not spec:
        if langs:
            raise UserError("--caption-mix-langs needs --caption-mix, e.g. --caption-mix alt:0.5,vecap:0.5")
        return None
    names, weights = [], []
    for item in spec.split(","):
        name, sep, w = item.strip().rpartition(":")
        try:
            weight = float(w) if sep else float("nan")
        except ValueError:
            weight = float("nan")
        if not name or not weight >= 0 or name in names:
            raise UserError(f"--caption-mix {spec!r}: give distinct SOURCE:WEIGHT pairs with weights >= 0, "
                            "e.g. alt:0.5,vecap:0.5 (alt is the alt-text)")
        names.append(name), weights.append(weight)
    total = sum(weights)
    if total <= 0:
        raise UserError(f"--caption-mix {spec!r}: the weights sum to 0")
    cum = tuple(float(x) for x in np.cumsum(weights) / total)
    lang_set = frozenset(x.strip() for x in langs.split(",") if x.strip()) if langs else None
    return CaptionMix(tuple(names), cum, seed, lang_set)
