"""PNG plots of a balance run (matplotlib Agg): rank-count curves before/after, language shares."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from core import storage

TOP_LANGS = 30
MAX_POINTS = 2000  # log-spaced ranks drawn per curve: same picture, fast to render


def _save(fig, path: Path) -> None:
    with storage.open_output(path) as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")


def rank_count(path: Path, lang: str, before: np.ndarray, after: np.ndarray, t: float) -> None:
    """Log-log rank-count curve of one language's entries before and after balancing, with t_L."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for counts, label in ((before, "before (matches in INDEX)"), (after, "after (kept images)")):
        c = np.sort(counts[counts > 0])[::-1]
        if len(c):
            ranks = np.unique(np.geomspace(1, len(c), num=min(len(c), MAX_POINTS)).astype(np.int64))
            ax.loglog(ranks, c[ranks - 1], label=label)
    if t > 0:
        ax.axhline(t, color="grey", linestyle="--", linewidth=1, label=f"t = {t:g}")
    ax.set_xlabel("entry rank")
    ax.set_ylabel("matches per entry")
    ax.set_title(f"{lang}: entry counts before / after balancing")
    ax.legend()
    _save(fig, path)
    plt.close(fig)


def language_shares(path: Path, per_lang: dict[str, dict]) -> None:
    """Bar chart of each language's share of images before and after balancing (top languages)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted(per_lang, key=lambda k: -per_lang[k]["images"])[:TOP_LANGS]
    before = np.array([per_lang[k]["images"] for k in langs], dtype=float)
    after = np.array([per_lang[k]["kept_images"] for k in langs], dtype=float)
    tot_b = sum(d["images"] for d in per_lang.values()) or 1
    tot_a = sum(d["kept_images"] for d in per_lang.values()) or 1
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(langs) + 2), 4))
    ax.bar(x - 0.2, before / tot_b, width=0.4, label="before (images)")
    ax.bar(x + 0.2, after / tot_a, width=0.4, label="after (kept images)")
    ax.set_xticks(x, langs, rotation=60 if len(langs) > 10 else 0)
    ax.set_ylabel("share of images")
    ax.set_ylim(0, 1.3 * max(float((before / tot_b).max(initial=0)), float((after / tot_a).max(initial=0)), 1e-9))
    ax.set_title("language shares before / after balancing")
    ax.legend()
    _save(fig, path)
    plt.close(fig)


def write_plots(folder: Path, by_lang: dict, after: np.ndarray, thresholds: dict[str, float],
                per_lang: dict[str, dict]) -> None:
    storage.makedirs(folder)
    for lang in per_lang:
        ids, c = by_lang[lang]
        a = after[ids] if len(after) else np.zeros(len(ids), np.int64)
        name = f"rank_count_{re.sub(r'[^A-Za-z0-9_-]', '_', lang)}.png"
        rank_count(storage.join(folder, name), lang, c, a, thresholds[lang])
    if per_lang:
        language_shares(storage.join(folder, "language_shares.png"), per_lang)
