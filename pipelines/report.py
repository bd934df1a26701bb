"""REPORT.md for a quickstart run: what each stage did, with figures, read back from its outputs.

Everything is read from the files the stages wrote (INDEX/manifest.json, counts.parquet,
CURATED/thresholds.parquet, curated.parquet, plots/, RUN/metrics.jsonl, eval.json), so the report
shows what the commands produced. A stage that did not run gets a line saying so, not a gap.
Figures go to OUT/figures/ (matplotlib, Agg backend).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from curation.common import write_bytes_atomic

HEAD = 3  # the three most frequent demo concepts (Zipf ranks 1-3)
TAIL = 4  # the four least frequent (ranks 7-10)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _rel(path: Path, root: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- data read back from the stages

def concept_counts(index: Path, curated: Path | None) -> dict[str, dict[str, list[int]]]:
    """{lang: {"before": [matched texts per concept], "after": [kept images per concept]}} for the demo words.

    Before: INDEX/counts.parquet (texts that matched the concept word). After: kept images of
    curated.parquet whose chosen text matched it (entry_ids)."""
    import duckdb

    from pipelines.demo_pool import WORDS

    con = duckdb.connect()
    counts = {(lang, entry): int(c) for lang, entry, c in con.execute(
        "select lang, entry, count from read_parquet(?)", [str(index / "counts.parquet")]).fetchall()}
    after: dict[tuple[str, str], int] = {}
    if curated is not None and (curated / "curated.parquet").is_file():
        after = {(lang, entry): int(c) for lang, entry, c in con.execute("""
            with kept as (select unnest(entry_ids) as entry_id from read_parquet(?))
            select e.lang, e.entry, count(*) from kept join read_parquet(?) e using (entry_id)
            group by 1, 2""", [str(curated / "curated.parquet"), str(index / "entries.parquet")]).fetchall()}
    return {lang: {"before": [counts.get((lang, w), 0) for w in words], "after": [after.get((lang, w), 0) for w in words]}
            for lang, words in WORDS.items()}


def read_metrics(run: Path) -> list[dict]:
    rows = []
    path = run / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return [r for r in rows if "loss" in r and "step" in r]


def per_class_top1(model_dir: Path, eval_dir: Path, batch_size: int = 64) -> dict[str, list[float]]:
    """{lang: top-1 per class} of zero-shot classification, with the evaluation module's own pieces."""
    import torch

    from training.eval import embed_images, load_model, zeroshot_classifier
    from training.eval_data import open_source
    from training.eval_templates import templates_for

    source = open_source(eval_dir)
    model, tokenizer, processor = load_model(model_dir, "cpu")
    emb = embed_images(model, processor, source, batch_size, 0, "cpu")
    labels = torch.tensor(emb.labels)
    out: dict[str, list[float]] = {}
    for lang, names in source.classnames.items():
        classifier = zeroshot_classifier(model, tokenizer, names, templates_for(lang), batch_size, "cpu")
        pred = (emb.images @ classifier.T).argmax(dim=1)
        out[lang] = [float((pred[labels == c] == c).float().mean()) if (labels == c).any() else float("nan")
                     for c in range(len(names))]
    return out


# ---------------------------------------------------------------- figures

def fig_concepts(counts: dict[str, dict[str, list[int]]], path: Path) -> None:
    from pipelines.demo_pool import CONCEPTS

    plt = _plt()
    before = [sum(c["before"][i] for c in counts.values()) for i in range(len(CONCEPTS))]
    after = [sum(c["after"][i] for c in counts.values()) for i in range(len(CONCEPTS))]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = range(len(CONCEPTS))
    ax.bar([i - 0.2 for i in x], before, width=0.4, label="matched texts (INDEX)")
    ax.bar([i + 0.2 for i in x], after, width=0.4, label="kept images (CURATED)")
    ax.set_xticks(list(x), CONCEPTS)
    ax.set_ylabel("count, all languages")
    ax.set_title("Demo concepts before and after balancing (Zipf head cut, tail kept)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fig_loss(runs: dict[str, list[dict]], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, rows in runs.items():
        if rows:
            ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title("Training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fig_zeroshot(evals: dict[str, dict], chance: float, path: Path) -> None:
    plt = _plt()
    langs = sorted({lang for e in evals.values() for lang in e.get("zeroshot", {})})
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / max(1, len(evals))
    for k, (name, e) in enumerate(evals.items()):
        ax.bar([i + k * width - 0.4 + width / 2 for i in range(len(langs))],
               [e.get("zeroshot", {}).get(lang, {}).get("top1", 0.0) for lang in langs], width=width, label=name)
    ax.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.2f})")
    ax.axhline(3 * chance, color="red", linestyle="--", label=f"3x chance ({3 * chance:.2f})")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_ylim(0, 1)
    ax.set_ylabel("zero-shot top-1")
    ax.set_title("Zero-shot classification on the held-out set, per language")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fig_head_tail(per_class: dict[str, dict[str, list[float]]], path: Path) -> None:
    from pipelines.demo_pool import CONCEPTS

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / max(1, len(per_class))
    for k, (name, langs) in enumerate(per_class.items()):
        mean = [sum(v[i] for v in langs.values()) / len(langs) for i in range(len(CONCEPTS))]
        ax.bar([i + k * width - 0.4 + width / 2 for i in range(len(CONCEPTS))], mean, width=width, label=name)
    ax.set_xticks(range(len(CONCEPTS)), CONCEPTS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("top-1, mean over languages")
    ax.set_title("Per-concept zero-shot accuracy (concepts in Zipf order: head left, tail right)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- sections

def _stages_section(stages: list[dict], root: Path) -> str:
    rows = [[i + 1, s["name"], f"`{s['command']}`" if s["command"] else "", s["status"], f"{s['seconds']:.1f}",
             f"`{_rel(Path(s['output']), root)}`" if s["output"] else ""] for i, s in enumerate(stages)]
    return "## Stages\n\n" + _table(["#", "stage", "command", "status", "seconds", "output"], rows)


def _pool_section(demo: Path) -> str:
    import pyarrow.parquet as pq

    files = sorted((demo / "pool").glob("*.parquet"))
    if not files:
        return "## 1. The demo pool\n\nNot written."
    rows = statuses = 0
    ok = 0
    urls: set[str] = set()
    for f in files:
        t = pq.read_table(f, columns=["url", "status"]).to_pydict()
        rows += len(t["url"])
        ok += sum(s == "success" for s in t["status"])
        urls.update(t["url"])
    statuses = rows - ok
    return ("## 1. The demo pool\n\n"
            f"`{_rel(demo / 'pool', demo.parent)}/` is in img2dataset's output format ({len(files)} shard(s) of "
            f"`NNNNN.tar` + `NNNNN.parquet` + `NNNNN_stats.json`): {rows} alt-texts for {len(urls)} image urls "
            f"({rows - len(urls)} rows are extra alt-texts of an image already seen), {statuses} rows failed to "
            "download. Captions name one of 10 concepts in 10 languages, with Zipf-distributed concept "
            "frequencies, plus web noise (camera file names, link text, SEO keyword stuffing, languages without "
            "metadata, emoji, very long and empty alt-texts). The held-out evaluation set is "
            f"`{_rel(demo / 'eval', demo.parent)}/` (image folder) and `{_rel(demo / 'eval_captions', demo.parent)}/` "
            "(captioned WebDataset, for retrieval).")


def _index_section(index: Path, root: Path) -> str:
    manifest = _read_json(index / "manifest.json")
    if manifest is None:
        return "## 2. Matching (`curate build-index`)\n\nNot run."
    totals = manifest.get("totals", {})
    lines = ["## 2. Matching (`curate build-index`)", "",
             f"`{_rel(index, root)}/manifest.json` totals:", "", "```json",
             json.dumps(totals, indent=1, ensure_ascii=False)[:3000], "```"]
    return "\n".join(lines)


def _balance_section(root: Path, index: Path, curated: Path, t: int | None, figures: Path) -> str:
    out = ["## 3. Balancing (`curate balance`)", ""]
    if not (curated / "thresholds.parquet").is_file():
        return "\n".join(out + ["Not run."])
    import pyarrow.parquet as pq

    out.append(f"English threshold `--t {t}` (the count of the median English demo concept, so the head is cut "
               "visibly); every other language gets t_L = p_to_t(C_L, t_to_p(C_en, t)).")
    th = pq.read_table(curated / "thresholds.parquet").to_pylist()
    if th:
        out += ["", _table(list(th[0]), [list(r.values()) for r in th])]
    counts = concept_counts(index, curated)
    fig_concepts(counts, figures / "concepts_before_after.png")
    out += ["", f"![concepts before and after]({_rel(figures / 'concepts_before_after.png', root)})", ""]
    from pipelines.demo_pool import CONCEPTS

    rows = [[lang] + [f"{b}→{a}" for b, a in zip(c["before"], c["after"])] for lang, c in counts.items()]
    out += ["Matched texts → kept images per demo concept and language:", "", _table(["lang", *CONCEPTS], rows)]
    plots = sorted((curated / "plots").glob("*.png")) if (curated / "plots").is_dir() else []
    if plots:
        out += ["", "Plots written by `curate balance`:", ""]
        out += [f"![{p.stem}]({_rel(p, root)})" for p in plots]
    return "\n".join(out)


def _training_section(root: Path, runs: dict[str, Path], figures: Path) -> str:
    metrics = {name: read_metrics(run) for name, run in runs.items()}
    if not any(metrics.values()):
        return "## 4. Training (`train`)\n\nNot run."
    fig_loss(metrics, figures / "loss.png")
    out = ["## 4. Training (`train`)", "", f"![loss]({_rel(figures / 'loss.png', root)})", ""]
    rows = [[name, rows[-1]["step"], rows[0]["loss"], rows[-1]["loss"]] for name, rows in metrics.items() if rows]
    out += [_table(["run", "steps", "first loss", "last loss"], rows), ""]
    for name, run in runs.items():
        plots = sorted((run / "plots").glob("*.png")) if (run / "plots").is_dir() else []
        out += [f"![{name} {p.stem}]({_rel(p, root)})" for p in plots]
    return "\n".join(out)


def _eval_section(root: Path, runs: dict[str, Path], eval_dir: Path, figures: Path) -> tuple[str, dict]:
    from pipelines.demo_pool import CONCEPTS

    evals = {name: e for name, run in runs.items() if (e := _read_json(run / "eval.json")) is not None}
    verdict: dict = {}
    if not evals:
        return "## 5. Zero-shot classification (`train eval`)\n\nNot run.", verdict
    chance = 1.0 / len(CONCEPTS)
    fig_zeroshot(evals, chance, figures / "zeroshot.png")
    langs = sorted({lang for e in evals.values() for lang in e.get("zeroshot", {})})
    rows = [[lang] + [e.get("zeroshot", {}).get(lang, {}).get("top1", float("nan")) for e in evals.values()] for lang in langs]
    out = ["## 5. Zero-shot classification (`train eval`)", "",
           f"{len(CONCEPTS)} classes, chance = {chance:.2f}; the target is at least 3x chance ({3 * chance:.2f}) "
           "in every language.", "", f"![zero-shot]({_rel(figures / 'zeroshot.png', root)})", "",
           _table(["lang", *[f"{n} top-1" for n in evals]], rows)]
    first = next(iter(evals))
    verdict = {lang: evals[first]["zeroshot"][lang]["top1"] >= 3 * chance for lang in evals[first].get("zeroshot", {})}
    return "\n".join(out), verdict


def _head_tail_section(root: Path, runs: dict[str, Path], eval_dir: Path, figures: Path) -> str:
    from pipelines.demo_pool import CONCEPTS

    have = {name: run for name, run in runs.items() if (run / "hf" / "config.json").is_file()}
    if len(have) < 2:
        return "## 6. Does balancing help the tail?\n\nNeeds both trained models; not run."
    per_class = {name: per_class_top1(run / "hf", eval_dir) for name, run in have.items()}
    fig_head_tail(per_class, figures / "head_vs_tail.png")

    def mean(langs: dict[str, list[float]], idx: range) -> float:
        vals = [v[i] for v in langs.values() for i in idx]
        return sum(vals) / len(vals)

    head, tail = range(HEAD), range(len(CONCEPTS) - TAIL, len(CONCEPTS))
    rows = [[name, mean(langs, head), mean(langs, tail), mean(langs, range(len(CONCEPTS)))] for name, langs in per_class.items()]
    gain = rows[0][2] - rows[1][2]
    verdict = (f"On this run the {rows[0][0]} model's tail top-1 is {gain:+.3f} against the {rows[1][0]} model's. "
               "When both saturate (easy concepts, enough steps), balancing cannot show a gain; it matters when "
               "head concepts would otherwise take most of the training budget.")
    return "\n".join([
        "## 6. Does balancing help the tail?", "",
        "Both models trained the same number of steps with the same settings; one on the balanced shards, one "
        "on every matched image (balance with a threshold no count reaches). Head = the "
        f"{HEAD} most frequent concepts ({', '.join(CONCEPTS[:HEAD])}), tail = the {TAIL} least frequent "
        f"({', '.join(CONCEPTS[-TAIL:])}); zero-shot top-1 averaged over all languages.", "",
        f"![head vs tail]({_rel(figures / 'head_vs_tail.png', root)})", "",
        _table(["model", "head top-1", "tail top-1", "all top-1"], rows), "", verdict])


def _retrieval_section(runs: dict[str, Path]) -> str:
    rows = []
    for name, run in runs.items():
        e = _read_json(run / "eval.json")
        if e and e.get("retrieval"):
            r = e["retrieval"]
            rows.append([name] + [r["image_to_text"][k] for k in ("R@1", "R@5", "R@10")]
                        + [r["text_to_image"][k] for k in ("R@1", "R@5", "R@10")])
    if not rows:
        return "## 7. Image↔text retrieval\n\nNot run."
    return "\n".join(["## 7. Image↔text retrieval", "",
                      "On the captioned held-out shard (one caption per image, languages in turn; many captions are "
                      "identical across images of a concept, so R@1 is bounded well below 1).", "",
                      _table(["model", "i→t R@1", "i→t R@5", "i→t R@10", "t→i R@1", "t→i R@5", "t→i R@10"], rows)])


def write_report(out: Path, paths, stages: list[dict], sizes: dict, t: int | None, total_seconds: float,
                 from_urls: bool = False) -> Path:
    """Write OUT/REPORT.md (and OUT/figures/) from the stage outputs under `paths`; returns its path."""
    out = Path(out)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    runs = {"balanced": paths.run_balanced, "unbalanced": paths.run_unbalanced}
    eval_text, verdict = _eval_section(out, runs, paths.demo / "eval", figures)
    if verdict:
        ok = all(verdict.values())
        summary = (f"**Zero-shot at least 3x chance in every language: {'yes' if ok else 'NO'}** "
                   f"({sum(verdict.values())}/{len(verdict)} languages, balanced model).")
    else:
        summary = "**Training and evaluation did not run** (see the stage table)."
    skipped = [s["name"] for s in stages if s["status"] != "ok"]
    parts = [
        "# worldclip demo report", "",
        f"`python -m pipelines.quickstart --out {out}{' --from-urls' if from_urls else ''}` ran "
        f"{len(stages) - len(skipped)} stages in {total_seconds:.0f} s on {os.cpu_count()} CPU cores.", "",
        summary, "",
        ("Skipped stages: " + ", ".join(skipped)) if skipped else "Every stage ran.", "",
        f"Sizes: `{json.dumps(sizes)}`", "",
        _stages_section(stages, out), "",
        _pool_section(paths.demo), "",
        _index_section(paths.index, out), "",
        _balance_section(out, paths.index, paths.balanced, t, figures), "",
        _training_section(out, runs, figures), "",
        eval_text, "",
        _head_tail_section(out, runs, paths.demo / "eval", figures), "",
        _retrieval_section(runs), "",
        "Inspect the Parquet outputs with DuckDB in `notebooks/inspect_curation.ipynb` "
        f"(`WORLDCLIP_DEMO={out}`).", "",
    ]
    report = out / "REPORT.md"
    write_bytes_atomic(report, "\n".join(parts).encode())
    return report
