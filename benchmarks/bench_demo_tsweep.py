"""t sweep for the demo's balancing ablation: tail/middle/head top-1 against the kept share.

Reuses a finished `python -m pipelines.quickstart --out DEMO` (its INDEX, TOKENIZER, warm start RUN_warm,
the unbalanced runs and its own balanced t): for every extra --t, `curate balance` writes
DEMO/SWEEP/t<T>/CURATED and the tiny model is trained with the demo's exact settings (from the same warm
start, same steps × batch, tokenizer, seeds), then evaluated per class as the demo's ablation (the demo's
own t and the unbalanced runs are read from DEMO/ABLATION/ablation.json). Prints a Markdown table, with
the paired (per-seed) difference of each t against keep-all on the tail, and writes DEMO/SWEEP/sweep.json.

    .venv/bin/python benchmarks/bench_demo_tsweep.py --demo demo_out --t 3 25 --seeds 3
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.atomic import write_json_atomic
from pipelines import ablation, quickstart  # noqa: E402
from pipelines.threshold import kept_share  # noqa: E402


def sweep_point(p: quickstart.Pipeline, t: int, seeds: int) -> tuple[dict[int, Path], list]:
    """Balance at --t t; returns ({seed: run folder}, the `train` jobs of the runs not finished yet)."""
    root = p.paths.root / "SWEEP" / f"t{t}"
    curated = root / "CURATED"
    if not (curated / "curated.parquet").is_file():
        p.run(f"balance --t {t}", "curate", ["balance", "--index", str(p.paths.index), "--t", str(t),
                                             "--out", str(curated), "--shard-size", str(p.sizes.shard_size),
                                             "--workers", "2"], curated)
    runs = {s: root / f"RUN_s{s}" for s in range(seeds)}
    jobs = [(f"train --t {t} seed {s}", "train",
             quickstart.train_args(p.paths, p.sizes, curated, run, s) + ["--overwrite"], run)
            for s, run in runs.items() if not (run / "hf" / "config.json").is_file()]
    return runs, jobs


def per_class(run: Path, eval_dir: Path) -> dict[str, list[float]]:
    """The run's per-class top-1 (ablation.per_class_top1), cached in RUN/per_class.json."""
    cache = run / "per_class.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    result = ablation.per_class_top1(run / "hf", eval_dir)
    write_json_atomic(cache, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", required=True, help="a finished quickstart output folder (FULL size)")
    parser.add_argument("--t", type=int, nargs="+", required=True, help="extra English thresholds to sweep")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    paths = quickstart.Paths(Path(args.demo))
    p = quickstart.Pipeline(paths, quickstart.FULL, workers=2)
    demo_t = int(json.loads((paths.balanced / "stats.json").read_text())["t"])
    planned = {f"t={t}": sweep_point(p, t, args.seeds) for t in args.t}
    p.run_parallel([job for _, jobs in planned.values() for job in jobs], at_once=2)  # one run per core, as the demo
    points: dict[str, dict[int, Path]] = {name: runs for name, (runs, _) in planned.items()}
    eval_dir = paths.demo / "eval"
    per_run = {name: {str(s): per_class(run, eval_dir) for s, run in runs.items()}  # seeds as ablation.json has them
               for name, runs in points.items()}
    demo = json.loads((paths.ablation / "ablation.json").read_text())["per_class"]  # the demo's own runs, all seeds
    per_run[f"t={demo_t} (demo)"] = demo["balanced"]
    per_run["keep all (unbalanced)"] = demo["unbalanced"]
    summary = ablation.summarise(per_run)["buckets"]
    groups = ablation.buckets()
    paired_tail = {name: ablation.paired({"balanced": seeds, "unbalanced": per_run["keep all (unbalanced)"]},
                                         groups)["tail"] for name, seeds in per_run.items()}
    shares = {f"t={t}": kept_share(paths.index, t) for t in [*args.t, demo_t]}
    shares[f"t={demo_t} (demo)"] = shares.pop(f"t={demo_t}")
    write_json_atomic(paths.root / "SWEEP" / "sweep.json", {"buckets": summary, "kept": shares, "per_class": per_run,
                                                            "paired_tail_vs_keep_all": paired_tail})
    print("| setting | seeds | kept images | head | middle | tail | all | tail − keep-all, paired by seed |\n"
          "|---|---|---|---|---|---|---|---|")
    for name, stats in summary.items():
        kept = shares.get(name)
        kept_s = f"{kept[0]} / {kept[1]} ({kept[0] / kept[1]:.0%})" if kept else ""
        cells = " | ".join(f"{stats[g]['mean']:.3f} ± {stats[g]['sd']:.3f}" for g in ("head", "middle", "tail", "all"))
        pair = paired_tail[name]
        print(f"| {name} | {stats['all']['n']} | {kept_s} | " + cells + f" | {pair['mean']:+.3f} ± {pair['sd']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
