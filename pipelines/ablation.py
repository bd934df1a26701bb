"""The balanced-vs-unbalanced ablation: per-class zero-shot top-1 of every run, summarised per
frequency bucket and language as mean ± sd over seeds; written to ABLATION/ablation.json.

Besides the unpaired comparison (each condition's mean ± sd over seeds, the verdict), the paired one:
per seed, balanced − unbalanced (both runs share the warm start and the seed), mean ± sd over seeds.
The warm start itself is scored too, as the point both conditions left from.

Buckets are fixed before any run, from the pool's Zipf ranks alone: head = the 39 most frequent
concepts, middle = the next 39, tail = the 39 least frequent. The held-out set has the same number
of images per class, so each bucket's score is its classes' mean top-1 (averaged over languages).
"""
from __future__ import annotations

import math
from pathlib import Path

from core.atomic import write_json_atomic

BUCKETS = ("head", "middle", "tail")


def buckets() -> dict[str, list[int]]:
    """{bucket: concept ids}: the pool's Zipf ranks cut into thirds."""
    from pipelines.demo_pool import concept_ranks

    ranks = concept_ranks()
    third = math.ceil(len(ranks) / 3)
    return {b: ranks[i * third:(i + 1) * third] for i, b in enumerate(BUCKETS)}


def per_class_top1(model_dir: Path, eval_dir: Path, batch_size: int = 128) -> dict[str, list[float]]:
    """{lang: top-1 per class} of zero-shot classification, with training.eval's own pieces."""
    import torch

    from training.eval import embed_images, load_model, zeroshot_classifier
    from training.eval_data import open_source
    from training.eval_templates import templates_for

    source = open_source(eval_dir)
    model, tokenizer, processor = load_model(model_dir, "cpu")
    with torch.no_grad():
        emb = embed_images(model, processor, source, batch_size, 0, "cpu")
        labels = torch.tensor(emb.labels)
        out: dict[str, list[float]] = {}
        for lang, names in source.classnames.items():
            classifier = zeroshot_classifier(model, tokenizer, names, templates_for(lang), batch_size, "cpu")
            pred = (emb.images @ classifier.T).argmax(dim=1)
            out[lang] = [float((pred[labels == c] == c).float().mean()) if (labels == c).any() else float("nan")
                         for c in range(len(names))]
    return out


def bucket_top1(per_class: dict[str, list[float]], classes: list[int], langs: list[str] | None = None) -> float:
    """Mean top-1 over `classes` and `langs` (all languages by default)."""
    vals = [per_class[lang][c] for lang in (langs or list(per_class)) for c in classes]
    return sum(vals) / len(vals)


def mean_sd(values: list[float]) -> dict:
    """{mean, sd (sample, n-1), n, values}."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n, "values": values}


def summarise(per_run: dict[str, dict[int, dict[str, list[float]]]]) -> dict:
    """{condition: {seed: per_class}} -> bucket and per-language mean ± sd over seeds, the tail verdict and
    the paired (per-seed) differences."""
    groups = {**buckets(), "all": [c for b in buckets().values() for c in b]}
    langs = sorted(next(iter(next(iter(per_run.values())).values())))
    summary: dict = {"buckets": {}, "by_lang": {}}
    for cond, seeds in per_run.items():
        summary["buckets"][cond] = {g: mean_sd([bucket_top1(pc, cls) for pc in seeds.values()])
                                    for g, cls in groups.items()}
        summary["by_lang"][cond] = {lang: {g: mean_sd([bucket_top1(pc, cls, [lang]) for pc in seeds.values()])
                                           for g, cls in groups.items()} for lang in langs}
    summary["verdict"] = verdict(summary["buckets"])
    summary["paired"] = paired(per_run, groups)
    return summary


def verdict(stats: dict) -> dict:
    """Per bucket: balanced − unbalanced mean, and whether it exceeds 2 × the larger of the two sds."""
    out = {}
    if not {"balanced", "unbalanced"} <= set(stats):
        return out
    for g in stats["balanced"]:
        b, u = stats["balanced"][g], stats["unbalanced"][g]
        diff, sd = b["mean"] - u["mean"], max(b["sd"], u["sd"])
        out[g] = {"diff": diff, "two_sd": 2 * sd, "beyond_2sd": abs(diff) > 2 * sd}
    return out


def paired(per_run: dict[str, dict[int, dict[str, list[float]]]], groups: dict[str, list[int]]) -> dict:
    """Per bucket: mean ± sd over seeds of (balanced − unbalanced) at the same seed, over the seeds both have;
    beyond_2sd when |mean| > 2 sd of the differences."""
    if not {"balanced", "unbalanced"} <= set(per_run):
        return {}
    bal, unb = per_run["balanced"], per_run["unbalanced"]
    seeds = sorted(set(bal) & set(unb), key=str)
    out = {}
    for g, cls in groups.items():
        stat = mean_sd([bucket_top1(bal[s], cls) - bucket_top1(unb[s], cls) for s in seeds]) if seeds else None
        if stat:
            stat["beyond_2sd"] = stat["n"] > 1 and abs(stat["mean"]) > 2 * stat["sd"]
        out[g] = stat
    return out


def evaluate_runs(models: dict[str, Path], eval_dir: Path, workers: int = 1) -> dict[str, dict[str, list[float]]]:
    """{name: per_class_top1} of each model folder; `workers` processes at a time (one torch thread each)."""
    if workers <= 1 or len(models) <= 1:
        return {name: per_class_top1(model, eval_dir) for name, model in models.items()}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_one_thread) as pool:
        futures = {name: pool.submit(per_class_top1, model, eval_dir) for name, model in models.items()}
        return {name: f.result() for name, f in futures.items()}


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_ablation(runs: dict[str, dict[int, Path]], eval_dir: Path, out: Path, warm: Path | None = None,
                 workers: int = 1) -> dict:
    """Evaluate every run's RUN/hf (and the warm start's, if given) per class; write OUT/ablation.json
    (per-class scores + summary)."""
    models = {(cond, seed): run / "hf" for cond, seeds in runs.items() for seed, run in seeds.items()}
    if warm is not None:
        models[("warm start", 0)] = warm / "hf"
    scores = evaluate_runs(models, eval_dir, workers)
    per_run = {cond: {seed: scores[(cond, seed)] for seed in seeds} for cond, seeds in runs.items()}
    result = {"buckets_concepts": buckets(), "per_class": per_run, **summarise(per_run)}
    if warm is not None:
        warm_scores = scores[("warm start", 0)]
        groups = {**buckets(), "all": [c for b in buckets().values() for c in b]}
        result["warm_start"] = {"per_class": warm_scores,
                                "buckets": {g: bucket_top1(warm_scores, cls) for g, cls in groups.items()}}
    write_json_atomic(out / "ablation.json", result)
    return result
