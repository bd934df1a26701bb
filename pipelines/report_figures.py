"""The demo report's figures (matplotlib, Agg backend), each from numbers the stages wrote."""
from __future__ import annotations

from pathlib import Path

COLOURS = {"balanced": "tab:blue", "unbalanced": "tab:orange", "warm": "tab:grey"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)


def fig_long_tail(before: list[int], after: list[int], ranks: list[int], path: Path) -> None:
    """Images per concept by Zipf rank, before (every matched image) and after balancing (log-log)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = list(range(1, len(ranks) + 1))
    ax.loglog(x, [max(0.5, before[c]) for c in ranks], "o-", ms=3, label="matched images (unbalanced)",
              color=COLOURS["unbalanced"])
    ax.loglog(x, [max(0.5, after[c]) for c in ranks], "o-", ms=3, label="kept images (balanced)",
              color=COLOURS["balanced"])
    ax.set_xlabel("concept rank in the pool (1 = most frequent)")
    ax.set_ylabel("images naming the concept")
    ax.set_title("The long tail before and after balancing")
    ax.legend()
    _save(fig, path)


def fig_seen(seen: dict[str, list[float]], ranks: list[int], bounds: list[int], path: Path) -> None:
    """Expected training samples per concept (steps × batch drawn from the kept images) by rank."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = list(range(1, len(ranks) + 1))
    for cond, values in seen.items():
        ax.semilogy(x, [max(0.1, values[c]) for c in ranks], "o-", ms=3, label=cond, color=COLOURS.get(cond))
    for b in bounds:
        ax.axvline(b + 0.5, color="grey", linestyle=":")
    ax.set_xlabel("concept rank (head | middle | tail)")
    ax.set_ylabel("samples seen in training")
    ax.set_title("Same compute, different exposure: how often training sees each concept")
    ax.legend()
    _save(fig, path)


def fig_accuracy_vs_frequency(points: dict[str, tuple[list[float], list[float], list[float]]], path: Path) -> None:
    """Top-1 per frequency bin: {cond: (matched images per concept, mean top-1, sd over seeds)}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for k, (cond, (freq, mean, sd)) in enumerate(points.items()):
        shifted = [f * (1.04 if k else 0.96) for f in freq]
        ax.errorbar(shifted, mean, yerr=sd, fmt="o-", ms=4, capsize=3, label=cond, color=COLOURS.get(cond))
    ax.set_xscale("log")
    ax.set_xlabel("images per concept in the pool (bin mean)")
    ax.set_ylabel("zero-shot top-1 (mean over languages)")
    ax.set_title("Accuracy vs concept frequency (mean ± sd over seeds)")
    ax.legend()
    _save(fig, path)


def fig_buckets(stats: dict[str, dict], buckets: list[str], chance: float, path: Path) -> None:
    """Bars per bucket and condition with sd error bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(1, len(stats))
    for k, (cond, by_bucket) in enumerate(stats.items()):
        xs = [i + k * width - 0.4 + width / 2 for i in range(len(buckets))]
        ax.bar(xs, [by_bucket[b]["mean"] for b in buckets], width=width, yerr=[by_bucket[b]["sd"] for b in buckets],
               capsize=4, label=cond, color=COLOURS.get(cond.split(" ")[0]))
    ax.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.3f})")
    ax.set_xticks(range(len(buckets)), buckets)
    ax.set_ylabel("zero-shot top-1")
    ax.set_title("Held-out top-1 per frequency bucket (mean ± sd over seeds)")
    ax.legend(fontsize=8)
    _save(fig, path)


def fig_loss(runs: dict[str, list[dict]], path: Path) -> None:
    """Loss curves, one line per run, coloured by condition."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, rows in runs.items():
        if rows:
            cond = name.split(" ")[0]  # "balanced s0", "unbalanced s1", "warm start"
            ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=name, color=COLOURS.get(cond),
                    alpha=0.7)
    ax.set_xlabel("step (the condition runs continue from the warm start's last step)")
    ax.set_ylabel("contrastive loss")
    ax.set_title("Training loss")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)
