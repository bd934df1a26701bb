"""REPORT.md for a quickstart run: what each stage did, with figures, read back from its outputs.

Everything is read from the files the stages wrote (INDEX/manifest.json, entries.parquet,
CURATED/thresholds.parquet, curated.parquet, plots/, RUN_warm and RUN_*/metrics.jsonl, eval.json,
ABLATION/ablation.json), so the report shows what the commands produced. A stage that did not run
gets a line saying so, not a gap. Figures go to OUT/figures/ (pipelines.report_figures).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.atomic import write_bytes_atomic
from pipelines import report_figures as figs

BUCKETS = ("head", "middle", "tail")


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


def _pm(stat: dict) -> str:
    """'mean ± sd' of an ablation statistic."""
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def _img(path: Path, root: Path, alt: str) -> str:
    return f"![{alt}]({_rel(path, root)})"


def read_metrics(run: Path) -> list[dict]:
    """The loss rows of RUN/metrics.jsonl (unreadable lines skipped)."""
    rows = []
    path = run / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return [r for r in rows if "loss" in r and "step" in r]


def bucket_bounds(buckets: dict[str, list[int]]) -> list[int]:
    """Rank positions where one bucket ends and the next starts (for vertical lines)."""
    sizes = [len(buckets[b]) for b in BUCKETS]
    return [sum(sizes[:i + 1]) for i in range(len(sizes) - 1)]


# ---------------------------------------------------------------- sections

def _stages_section(stages: list[dict], root: Path) -> str:
    rows = [[i + 1, s["name"], f"`{s['command']}`" if s["command"] else "", s["status"], f"{s['seconds']:.1f}",
             f"`{_rel(Path(s['output']), root)}`" if s["output"] else ""] for i, s in enumerate(stages)]
    return ("## Stages\n\n" + _table(["#", "stage", "command", "status", "seconds", "output"], rows)
            + "\n\nThe two balances and the condition `train` runs go side by side (`--workers` at a time, default 2: "
            "one per core), so their seconds overlap; each one's output is in `LOGS/`. The warm start runs alone.")


def _pool_section(demo: Path) -> str:
    import pyarrow.parquet as pq

    from pipelines.demo_concepts import GLYPHS, LANGS

    files = sorted((demo / "pool").glob("*.parquet"))
    if not files:
        return "## 1. The demo pool\n\nNot written."
    rows = ok = 0
    urls: set[str] = set()
    for f in files:
        t = pq.read_table(f, columns=["url", "status"]).to_pydict()
        rows += len(t["url"])
        ok += sum(s == "success" for s in t["status"])
        urls.update(t["url"])
    return ("## 1. The demo pool\n\n"
            f"`{_rel(demo / 'pool', demo.parent)}/` is in img2dataset's output format ({len(files)} shard(s) of "
            f"`NNNNN.tar` + `NNNNN.parquet` + `NNNNN_stats.json`): {rows} alt-texts for {len(urls)} image urls "
            f"({rows - len(urls)} rows are extra alt-texts of an image already seen), {rows - ok} rows failed to "
            f"download. Each image shows one of {len(GLYPHS)} symbols (rendered from DejaVu Sans with pose, scale, "
            f"colour, clutter and background variation); captions name it by its CLDR name in one of "
            f"{len(LANGS)} languages ({', '.join(LANGS)}), in web-like phrasing, with Zipf-distributed concept "
            "frequencies (s = 1.1) plus web noise. The class-balanced held-out set is "
            f"`{_rel(demo / 'eval', demo.parent)}/` (image folder) and `{_rel(demo / 'eval_captions', demo.parent)}/` "
            "(captioned WebDataset, for retrieval).")


def _index_section(index: Path, root: Path) -> str:
    manifest = _read_json(index / "manifest.json")
    if manifest is None:
        return "## 2. Matching (`curate build-index`)\n\nNot run."
    totals = manifest.get("totals", {})
    return "\n".join(["## 2. Matching (`curate build-index`)", "", f"`{_rel(index, root)}/manifest.json` totals:", "",
                      "```json", json.dumps(totals, indent=1, ensure_ascii=False)[:3000], "```"])


def _balance_section(root: Path, paths, t: int | None, share: float, figures: Path,
                     buckets: dict[str, list[int]]) -> str:
    import pyarrow.parquet as pq

    from pipelines.demo_pool import concept_ranks
    from pipelines.exposure import images_per_concept

    out = ["## 3. Balancing (`curate balance`)", ""]
    if not (paths.balanced / "thresholds.parquet").is_file() or not (paths.unbalanced / "curated.parquet").is_file():
        return "\n".join(out + ["Not run."])
    before, n_before = images_per_concept(paths.index, paths.unbalanced)
    after, n_after = images_per_concept(paths.index, paths.balanced)
    out.append(f"English threshold `--t {t}`, chosen so that the balanced run keeps about {share:.0%} "
               f"of the matched images (it kept {n_after} of {n_before}, {n_after / max(1, n_before):.1%}); "
               "every other language gets t_L = p_to_t(C_L, t_to_p(C_en, t)). The unbalanced run is "
               "`curate balance` with a threshold no count reaches (every matched image kept).")
    th = pq.read_table(paths.balanced / "thresholds.parquet").to_pylist()
    if th:
        out += ["", _table(list(th[0]), [list(r.values()) for r in th])]
    figs.fig_long_tail(before, after, concept_ranks(), figures / "long_tail.png")
    rows = [[b, len(cs), sum(before[c] for c in cs), sum(after[c] for c in cs),
             f"{sum(after[c] for c in cs) / max(1, sum(before[c] for c in cs)):.0%}"] for b, cs in buckets.items()]
    out += ["", _img(figures / "long_tail.png", root, "long tail before and after"), "",
            "Images per frequency bucket (an image counts for a concept when its chosen alt-text names it):", "",
            _table(["bucket", "concepts", "matched images", "kept images", "kept share"], rows)]
    plots = sorted((paths.balanced / "plots").glob("*.png")) if (paths.balanced / "plots").is_dir() else []
    if plots:
        out += ["", "Plots written by `curate balance`:", ""] + [_img(p, root, p.stem) for p in plots]
    return "\n".join(out)


def _training_section(root: Path, runs: dict[str, Path], warm: Path, figures: Path) -> str:
    """Loss curves of the warm start and of every run, the condition runs drawn after the warm start's steps."""
    warm_rows = read_metrics(warm)
    offset = warm_rows[-1]["step"] if warm_rows else 0
    metrics = {"warm start": warm_rows, **{name: read_metrics(run) for name, run in runs.items()}}
    if not any(metrics.values()):
        return "## 4. Training (`train`)\n\nNot run."
    shifted = {name: [{**r, "step": r["step"] + (offset if name != "warm start" else 0)} for r in rows]
               for name, rows in metrics.items()}
    figs.fig_loss(shifted, figures / "loss.png")
    rows = [[name, rows[-1]["step"], rows[0]["loss"], rows[-1]["loss"], rows[-1].get("seen", "")]
            for name, rows in metrics.items() if rows]
    return "\n".join(["## 4. Training (`train`)", "",
                      f"The warm start (`{_rel(warm, root)}`: {offset} steps on the unbalanced shards, i.e. the "
                      "matched pool as it is) takes the model past the contrastive plateau (loss ≈ ln batch) once; "
                      "every condition run starts from its weights (`train --init-from`) with a fresh optimiser and "
                      "schedule and trains the same steps × batch on its own shards.", "",
                      _img(figures / "loss.png", root, "loss"), "",
                      _table(["run", "steps", "first loss", "last loss", "samples"], rows)])


def _mechanism_section(root: Path, paths, sizes: dict, figures: Path, buckets: dict[str, list[int]]) -> str:
    from pipelines.demo_pool import concept_ranks
    from pipelines.exposure import seen_in_training

    if not (paths.balanced / "curated.parquet").is_file():
        return "## 5. The mechanism: exposure at equal compute\n\nNot run."
    samples = sizes["steps"] * sizes["batch_size"]
    warm_samples = sizes.get("warm_steps", 0) * sizes["batch_size"]
    seen = {"balanced": seen_in_training(paths.index, paths.balanced, samples)["seen"],
            "unbalanced": seen_in_training(paths.index, paths.unbalanced, samples)["seen"]}
    figs.fig_seen(seen, concept_ranks(), bucket_bounds(buckets), figures / "seen_per_concept.png")
    rows = []
    for b, cs in buckets.items():
        bal, unb = (sum(seen[c][k] for k in cs) / len(cs) for c in ("balanced", "unbalanced"))
        rows.append([b, bal, unb, f"{bal / unb:.2f}x" if unb else "-"])
    return "\n".join([
        "## 5. The mechanism: exposure at equal compute", "",
        f"Both conditions start from the same warm start ({warm_samples} samples of the unbalanced shards, the same "
        f"for both) and then train {sizes['steps']} steps × {sizes['batch_size']} = {samples} samples, drawn from "
        "their own shards; expected samples per concept after the warm start = samples × the concept's share of the "
        "shards. Balancing moves that fixed budget from the head to the tail:", "",
        _img(figures / "seen_per_concept.png", root, "samples seen per concept"), "",
        _table(["bucket", "balanced: samples per concept", "unbalanced: samples per concept",
                "balanced / unbalanced"], rows)])


def _ablation_section(root: Path, ablation: dict | None, figures: Path, counts: list[int] | None) -> str:
    title = "## 6. Does balancing help the tail? (equal compute, mean ± sd over seeds)"
    if not ablation:
        return f"{title}\n\nNot run."
    stats, verdict = ablation["buckets"], ablation.get("verdict", {})
    n_classes = len(ablation["buckets_concepts"]["head"]) * 3
    chance = 1 / n_classes
    warm = ablation.get("warm_start")
    bars = {**({"warm start": {g: {"mean": v, "sd": 0.0} for g, v in warm["buckets"].items()}} if warm else {}),
            **stats}
    figs.fig_buckets(bars, list(BUCKETS), chance, figures / "buckets.png")
    out = [title, "", f"Zero-shot top-1 on the class-balanced held-out set ({n_classes} classes, chance {chance:.3f}), "
           "averaged over the 10 languages; buckets are the pool's Zipf ranks in thirds (head = the 39 most frequent "
           "concepts), fixed before any run. Unpaired: each condition's mean ± sd over seeds; the difference counts "
           "as real only beyond 2 sd (the larger sd of the two conditions).", "",
           _img(figures / "buckets.png", root, "top-1 per bucket")]
    rows = [[g, f"{warm['buckets'][g]:.3f}" if warm else "-", _pm(stats["balanced"][g]), _pm(stats["unbalanced"][g]),
             f"{verdict[g]['diff']:+.3f}", f"{verdict[g]['two_sd']:.3f}", "yes" if verdict[g]["beyond_2sd"] else "no"]
            for g in verdict]
    out += ["", _table(["bucket", "warm start (both start here)", "balanced", "unbalanced", "difference", "2 sd",
                        "beyond 2 sd"], rows)]
    out += ["", _paired_table(ablation.get("paired") or {})]
    if counts is not None:
        out += ["", _accuracy_vs_frequency(root, ablation, counts, figures)]
    out += ["", "Per language (all classes, and the tail bucket):", "", _lang_table(ablation["by_lang"]), "",
            _conclusion(verdict, ablation["per_class"], ablation.get("paired"))]
    return "\n".join(out)


def _paired_table(paired: dict) -> str:
    """Paired by seed: balanced − unbalanced at the same seed (same warm start), mean ± sd over seeds."""
    rows = [[g, f"{st['mean']:+.3f} ± {st['sd']:.3f}", f"{2 * st['sd']:.3f}", "yes" if st["beyond_2sd"] else "no",
             ", ".join(f"{v:+.3f}" for v in st["values"])] for g, st in paired.items() if st]
    if not rows:
        return ""
    return ("Paired (a second view of the same runs): per seed, balanced − unbalanced, both from the same warm start "
            "with the same `--seed`; mean ± sd of those differences over seeds:\n\n"
            + _table(["bucket", "paired difference", "2 sd", "beyond 2 sd", "per seed"], rows))


def _accuracy_vs_frequency(root: Path, ablation: dict, counts: list[int], figures: Path) -> str:
    """Accuracy against pool frequency, concepts binned in ranks of ~12, error bars over seeds."""
    from pipelines.ablation import mean_sd
    from pipelines.demo_pool import concept_ranks

    ranks = concept_ranks()
    bins = [ranks[i:i + 12] for i in range(0, len(ranks), 12)]
    points = {}
    for cond, seeds in ablation["per_class"].items():
        per_seed = [[sum(pc[lang][c] for lang in pc for c in b) / (len(pc) * len(b)) for b in bins]
                    for pc in seeds.values()]
        ms = [mean_sd([s[i] for s in per_seed]) for i in range(len(bins))]
        points[cond] = ([sum(counts[c] for c in b) / len(b) for b in bins],
                        [m["mean"] for m in ms], [m["sd"] for m in ms])
    figs.fig_accuracy_vs_frequency(points, figures / "accuracy_vs_frequency.png")
    return _img(figures / "accuracy_vs_frequency.png", root, "accuracy vs concept frequency")


def _lang_table(by_lang: dict) -> str:
    langs = sorted(next(iter(by_lang.values())))
    rows = [[lang] + [_pm(by_lang[c][lang][g]) for c in by_lang for g in ("all", "tail")] for lang in langs]
    return _table(["lang", *[f"{c}: {g}" for c in by_lang for g in ("all", "tail")]], rows)


def _conclusion(verdict: dict, per_class: dict, paired: dict | None = None) -> str:
    seeds = min(len(s) for s in per_class.values())
    tail = verdict.get("tail")
    if tail is None:
        return ""
    pair = (paired or {}).get("tail")
    pair_s = (f" Paired by seed: {pair['mean']:+.3f} ± {pair['sd']:.3f} "
              f"({'beyond' if pair['beyond_2sd'] else 'within'} 2 sd)." if pair else "")
    if seeds < 3:
        return (f"**Measured ({seeds} seeds per condition, a smoke-size run): "
                f"tail top-1 difference balanced − unbalanced = {tail['diff']:+.3f}, 2 sd = {tail['two_sd']:.3f}; "
                f"fewer than 3 seeds is too few for a verdict.{pair_s}**")
    what = ("beyond 2 sd: at equal compute the balanced model is better on the tail"
            if tail["beyond_2sd"] and tail["diff"] > 0 else
            "beyond 2 sd: at equal compute the balanced model is worse on the tail" if tail["beyond_2sd"] else
            "within 2 sd: this run does not show an effect of balancing on the tail beyond seed noise")
    return (f"**Measured ({seeds} seeds per condition, every run from the same warm start): tail top-1 difference "
            f"balanced − unbalanced = {tail['diff']:+.3f}, 2 sd = {tail['two_sd']:.3f}; {what}.{pair_s}**")


def _zeroshot_section(root: Path, runs: dict[str, dict[int, Path]], figures: Path, n_classes: int) -> str:
    evals = {c: [e for run in seeds.values() if (e := _read_json(run / "eval.json"))] for c, seeds in runs.items()}
    if not all(evals.values()):
        return "## 7. Zero-shot per language (`train --eval-data`)\n\nNot run."
    langs = sorted({lang for es in evals.values() for e in es for lang in e.get("zeroshot", {})})
    rows = [[lang] + [sum(e["zeroshot"][lang]["top1"] for e in es) / len(es) if es else float("nan")
                      for es in evals.values()] for lang in langs]
    return "\n".join(["## 7. Zero-shot per language (`train --eval-data`)", "",
                      "As `train --eval-data` reports it at the end of the seed-0 runs (`RUN_*_s0/eval.json`, the "
                      "captioned held-out shard; the mean ± sd over every seed is in section 6); chance = "
                      f"{1 / n_classes:.3f}.", "", _table(["lang", *[f"{c} top-1" for c in evals]], rows)])


def _retrieval_section(runs: dict[str, dict[int, Path]]) -> str:
    rows = []
    for cond, seeds in runs.items():
        for seed, run in seeds.items():
            e = _read_json(run / "eval.json")
            if e and e.get("retrieval"):
                r = e["retrieval"]
                rows.append([f"{cond} s{seed}"] + [r["image_to_text"][k] for k in ("R@1", "R@5", "R@10")]
                            + [r["text_to_image"][k] for k in ("R@1", "R@5", "R@10")])
    if not rows:
        return "## 8. Image↔text retrieval\n\nNot run."
    return "\n".join(["## 8. Image↔text retrieval", "",
                      "On the captioned held-out shard (one caption per image, languages in turn), seed-0 runs.", "",
                      _table(["run", "i→t R@1", "i→t R@5", "i→t R@10", "t→i R@1", "t→i R@5", "t→i R@10"], rows)])


def _summary(ablation: dict | None) -> str:
    if not ablation or "tail" not in ablation.get("verdict", {}):
        return "**The ablation did not run** (see the stage table)."
    return _conclusion(ablation["verdict"], ablation["per_class"], ablation.get("paired"))


def write_report(out: Path, paths, stages: list[dict], sizes: dict, t: int | None, total_seconds: float,
                 from_urls: bool = False) -> Path:
    """Write OUT/REPORT.md (and OUT/figures/) from the stage outputs under `paths`; returns its path."""
    from pipelines.ablation import buckets as make_buckets
    from pipelines.demo_concepts import GLYPHS

    out = Path(out)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    runs = paths.runs(sizes["seeds"])
    named = {f"{c} s{s}": run for c, seeds in runs.items() for s, run in seeds.items()}
    ablation = _read_json(paths.ablation / "ablation.json")
    buckets = make_buckets()
    counts = None
    if (paths.unbalanced / "curated.parquet").is_file():
        from pipelines.exposure import images_per_concept

        counts = images_per_concept(paths.index, paths.unbalanced)[0]
    skipped = [s["name"] for s in stages if s["status"] != "ok"]
    parts = [
        "# worldclip demo report", "",
        f"`python -m pipelines.quickstart --out {out}{' --from-urls' if from_urls else ''}` ran "
        f"{len(stages) - len(skipped)} stages in {total_seconds:.0f} s on {os.cpu_count()} CPU cores.", "",
        _summary(ablation), "",
        ("Skipped stages: " + ", ".join(skipped)) if skipped else "Every stage ran.", "",
        f"Sizes: `{json.dumps(sizes)}`", "",
        _stages_section(stages, out), "",
        _pool_section(paths.demo), "",
        _index_section(paths.index, out), "",
        _balance_section(out, paths, t, sizes["keep_share"], figures, buckets), "",
        _training_section(out, named, paths.warm, figures), "",
        _mechanism_section(out, paths, sizes, figures, buckets), "",
        _ablation_section(out, ablation, figures, counts), "",
        _zeroshot_section(out, runs, figures, len(GLYPHS)), "",
        _retrieval_section(runs), "",
        "Inspect the Parquet outputs with DuckDB in `notebooks/inspect_curation.ipynb` "
        f"(`WORLDCLIP_DEMO={out}`).", "",
    ]
    report = out / "REPORT.md"
    write_bytes_atomic(report, "\n".join(parts).encode())
    return report
