"""`make demo`: the whole worldclip pipeline, end to end, on the embedded demo pool.

    python -m pipelines.quickstart --out DIR [--small] [--from-urls]

Runs the real commands, each as a user would type it (printed before it runs):
demo pool -> `curate metadata build` + `curate metadata add` (the demo concept words) ->
`curate build-index` (Ray) -> `curate balance --t T` (balanced: T chosen so that about 30% of the
matched images are kept) and `curate balance --t <huge>` (unbalanced: every matched image kept) ->
`train tokenizer` -> `train` a warm start on the unbalanced shards -> `train --init-from` it on each condition,
same steps × batch, for several seeds ->
evaluation at the end of `train --eval-data` (= `train eval`: zero-shot per language and retrieval
on the held-out captioned shard) -> the ablation (per-class zero-shot on the class-balanced held-out
set, per frequency bucket and language, mean ± sd over seeds) -> DIR/REPORT.md with figures.

`--from-urls` curates a URL-only Parquet pool instead: the demo images are served by a local
http.server on 127.0.0.1 and `curate download` (img2dataset) fetches the curated URLs.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import UserError

MARKER = ".worldclip-quickstart"
HUGE_T = 10**12  # a threshold no count reaches: p_e = 1 for every entry, so every matched image is kept


@dataclass(frozen=True)
class Sizes:
    """How big each stage runs; FULL is `make demo`, SMALL is the test-suite run."""

    images: int
    eval_per_class: int
    vocab_size: int
    warm_steps: int  # the warm start: one run on the unbalanced shards that every condition's runs start from
    steps: int  # steps per condition run, after the warm start
    batch_size: int
    lr: float
    warmup: int
    shard_size: int
    seeds: int  # training seeds per condition (balanced, unbalanced)
    keep_share: float  # share of matched images the balanced run keeps (t is chosen for it)


# FULL: 30,000 images so that the balanced subset (~8,000) is seen several times, not memorised; batch 64 and lr 2e-3
# learnt fastest per sample in the search recorded in BENCHMARKS.md ("Demo ablation"). The warm start (400 steps)
# takes every run past the contrastive plateau (loss ≈ ln 64), whose seed-dependent exit was the main seed noise;
# 600 steps after it separated the tails more than 400 (BENCHMARKS.md, "warm start" search).
FULL = Sizes(images=30000, eval_per_class=10, vocab_size=4000, warm_steps=400, steps=600, batch_size=64, lr=2e-3,
             warmup=20, shard_size=5000, seeds=3, keep_share=0.3)
SMALL = Sizes(images=300, eval_per_class=1, vocab_size=400, warm_steps=3, steps=4, batch_size=32, lr=1e-3, warmup=2,
              shard_size=200, seeds=2, keep_share=0.3)
CONDITIONS = ("balanced", "unbalanced")
WARM_SEED = 1000  # not a condition seed: no condition run replays the warm start's data order


@dataclass
class StageResult:
    name: str
    command: str
    output: str
    seconds: float
    status: str  # "ok", or "skipped: <why>"


@dataclass
class Paths:
    """Where every stage writes, under the --out folder."""

    root: Path
    demo: Path = field(init=False)
    meta: Path = field(init=False)
    index: Path = field(init=False)
    balanced: Path = field(init=False)
    unbalanced: Path = field(init=False)
    tokenizer: Path = field(init=False)
    warm: Path = field(init=False)
    ablation: Path = field(init=False)

    def __post_init__(self) -> None:
        r = self.root
        self.demo, self.meta, self.index = r / "demo", r / "META", r / "INDEX"
        self.balanced, self.unbalanced = r / "CURATED", r / "UNBALANCED"
        self.tokenizer, self.warm, self.ablation = r / "TOKENIZER", r / "RUN_warm", r / "ABLATION"

    def curated(self, condition: str) -> Path:
        return self.balanced if condition == "balanced" else self.unbalanced

    def run(self, condition: str, seed: int) -> Path:
        """RUN_<condition>_s<seed>: one training run of the ablation."""
        return self.root / f"RUN_{condition}_s{seed}"

    def runs(self, seeds: int) -> dict[str, dict[int, Path]]:
        return {c: {s: self.run(c, s) for s in range(seeds)} for c in CONDITIONS}


class Pipeline:
    """Runs stages in order, printing each command and where its output is; records timings."""

    def __init__(self, paths: Paths, sizes: Sizes, workers: int) -> None:
        self.paths, self.sizes, self.workers = paths, sizes, workers
        self.results: list[StageResult] = []
        self.env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "RAY_USAGE_STATS_ENABLED": "0",
                    "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
                    # one torch thread per process: on 2 shared cores, more threads spin-wait on each other
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}

    def _banner(self, name: str, command: str) -> None:
        print(f"\n=== [{len(self.results) + 1}] {name}\n$ {command}", flush=True)

    @staticmethod
    def _command(program: str, args: list[str]) -> tuple[list[str], str]:
        """(argv of this Python running `curate|train ARGS`, the command line a user types)."""
        module = {"curate": "curation.cli", "train": "training.cli"}[program]
        return [sys.executable, "-m", module, *args], " ".join([program, *map(shlex.quote, args)])

    def run(self, name: str, program: str, args: list[str], output: Path | str) -> StageResult:
        """Run `curate|train ARGS` as a subprocess (what a user types); raise on failure."""
        argv, command = self._command(program, args)
        self._banner(name, command)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=self.env)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise UserError(f"stage '{name}' failed (exit {proc.returncode}): {command}")
        return self._done(name, command, output, seconds)

    def run_parallel(self, jobs: list[tuple[str, str, list[str], Path | str]], at_once: int) -> None:
        """Run `(name, program, args, output)` jobs, `at_once` at a time (training runs on the 2 cores);
        each job's output goes to LOGS/<job name>.log (printed if it fails); raise on the first failure."""
        logs = self.paths.root / "LOGS"
        logs.mkdir(exist_ok=True)
        pending, running = list(jobs), []
        while pending or running:
            while pending and len(running) < max(1, at_once):
                name, program, args, output = pending.pop(0)
                argv, command = self._command(program, args)
                log = logs / (re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") + ".log")
                self._banner(f"{name} (started; output in {log})", command)
                with open(log, "wb") as f:
                    proc = subprocess.Popen(argv, env=self.env, stdout=f, stderr=subprocess.STDOUT)
                running.append((proc, name, command, output, log, time.perf_counter()))
            time.sleep(0.2)
            for job in [j for j in running if j[0].poll() is not None]:
                running.remove(job)
                proc, name, command, output, log, start = job
                if proc.returncode != 0:
                    for other in running:
                        other[0].kill()
                    sys.stdout.write(log.read_text(errors="replace")[-4000:])
                    raise UserError(f"stage '{name}' failed (exit {proc.returncode}, output in {log}): {command}")
                self._done(name, command, output, time.perf_counter() - start)

    def call(self, name: str, command: str, fn, output: Path | str):
        """Run an in-process step (demo pool, serving, the report); returns what `fn` returns."""
        self._banner(name, command)
        start = time.perf_counter()
        value = fn()
        self._done(name, command, output, time.perf_counter() - start)
        return value

    def skip(self, name: str, why: str) -> None:
        print(f"\n=== [{len(self.results) + 1}] {name}: SKIPPED ({why})", flush=True)
        self.results.append(StageResult(name, "", "", 0.0, f"skipped: {why}"))

    def _done(self, name: str, command: str, output: Path | str, seconds: float) -> StageResult:
        result = StageResult(name, command, str(output), seconds, "ok")
        self.results.append(result)
        print(f"--- {name}: done in {seconds:.1f}s -> {output}", flush=True)
        return result


def available(module: str) -> bool:
    """True when a stage's module has landed (lets the demo run whatever exists while others build)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def choose_t(index: Path, share: float) -> int:
    """t for the balanced run: the English threshold at which curate balance keeps about `share` of
    the matched images (the head is cut hard, the tail kept), found with balance's own decision code."""
    from pipelines.threshold import t_for_share

    t, got = t_for_share(index, share)
    print(f"choose t: --t {t} keeps {got:.1%} of the matched images (target {share:.0%})", flush=True)
    return t


def shard_pattern(curated: Path) -> str:
    """Brace pattern over CURATED/shards/*.tar, as train --shards expects."""
    tars = sorted(p.name for p in (curated / "shards").glob("*.tar"))
    if not tars:
        raise UserError(f"{curated}/shards: no shards were written")
    first, last = tars[0].removesuffix(".tar"), tars[-1].removesuffix(".tar")
    return str(curated / "shards" / (f"{first}.tar" if first == last else f"{{{first}..{last}}}.tar"))


def curate_stages(p: Pipeline, pool_args: list[str], url_only: bool) -> int | None:
    """metadata -> build-index -> balance (balanced and unbalanced) [-> download]; returns t."""
    from pipelines.demo_concepts import LANGS

    paths, sizes, w = p.paths, p.sizes, str(p.workers)
    if not available("metadata.cli"):
        p.skip("metadata build", "metadata.cli is not there yet")
        return None
    p.run("metadata build", "curate", ["metadata", "build", "--langs", ",".join(LANGS), "--out", str(paths.meta)],
          paths.meta)
    for lang in LANGS:
        p.run(f"metadata add ({lang} demo words)", "curate",
              ["metadata", "add", "--out", str(paths.meta), "--lang", lang,
               "--file", str(paths.demo / "metadata" / f"{lang}.txt")],
              paths.meta / "entries.parquet")
    if not available("curation.build_index_cli"):
        p.skip("build-index", "curation.build_index_cli is not there yet")
        return None
    p.run("build-index (Ray)", "curate", ["build-index", "--pool", *pool_args, "--metadata", str(paths.meta),
                                          "--out", str(paths.index), "--workers", w], paths.index)
    if not available("curation.balance_cli"):
        p.skip("balance", "curation.balance_cli is not there yet")
        return None
    t = choose_t(paths.index, sizes.keep_share)
    # the two balances go side by side, each in its own process (--workers 1: no Ray start-up for a small INDEX)
    p.run_parallel([(name, "curate", ["balance", "--index", str(paths.index), "--t", str(tt), "--out", str(out),
                                      "--shard-size", str(sizes.shard_size), "--workers", "1"], out)
                    for name, out, tt in (("balance (balanced)", paths.balanced, t),
                                          ("balance (unbalanced: keep all)", paths.unbalanced, HUGE_T))],
                   at_once=p.workers)
    if url_only:
        for out in (paths.balanced, paths.unbalanced):
            p.run(f"download {out.name} (img2dataset)", "curate", ["download", str(out), "--processes", w],
                  out / "shards")
    return t


def train_stages(p: Pipeline) -> None:
    """tokenizer -> the warm start -> train every condition and seed from it -> eval each."""
    paths, sizes = p.paths, p.sizes
    if not (paths.balanced / "shards").is_dir():
        p.skip("train", "no curated shards (curation stages skipped)")
        return
    if not available("training.tokenizer_cli"):
        p.skip("train tokenizer", "training.tokenizer_cli is not there yet")
        return
    p.run("train tokenizer", "train", ["tokenizer", "--shards", shard_pattern(paths.unbalanced),
                                       "--vocab-size", str(sizes.vocab_size), "--out", str(paths.tokenizer)],
          paths.tokenizer)
    if not available("training.train_cli"):
        p.skip("train", "training.train_cli is not there yet")
        return
    # the warm start runs alone; --workers 1 decodes its batches on the other core
    p.run("train: warm start (unbalanced shards, shared by every run)", "train",
          warm_args(paths, sizes) + ["--workers", "1"], paths.warm / "hf")
    jobs = []
    for seed in range(sizes.seeds):
        for condition in CONDITIONS:
            run = paths.run(condition, seed)
            # seed 0 also runs `train --eval-data` (zero-shot + retrieval -> eval.json); the ablation
            # evaluates every run per class, so the other seeds skip that duplicate pass
            evaluate = ["--eval-data", str(paths.demo / "eval_captions" / "00000.tar")] if seed == 0 else []
            jobs.append((f"train{' + eval' if evaluate else ''} ({condition}, seed {seed})", "train",
                         train_args(paths, sizes, paths.curated(condition), run, seed) + evaluate,
                         run / ("eval.json" if evaluate else "hf")))
    # one torch thread each: the runs go side by side, one per core
    p.run_parallel(jobs, at_once=p.workers)


def common_args(paths: Paths, sizes: Sizes) -> list[str]:
    """`train` arguments every run of the demo shares: model, tokenizer, batch, lr, warmup, device."""
    return ["--model", "tiny", "--tokenizer", str(paths.tokenizer), "--batch-size", str(sizes.batch_size),
            "--lr", str(sizes.lr), "--warmup", str(sizes.warmup), "--device", "cpu"]


def warm_args(paths: Paths, sizes: Sizes) -> list[str]:
    """The warm start's `train` arguments: `warm_steps` on the unbalanced shards (the matched pool as it is)."""
    return ["--shards", shard_pattern(paths.unbalanced), *common_args(paths, sizes), "--out", str(paths.warm),
            "--steps", str(sizes.warm_steps), "--seed", str(WARM_SEED), "--save-every", str(sizes.warm_steps)]


def train_args(paths: Paths, sizes: Sizes, curated: Path, run: Path, seed: int) -> list[str]:
    """The ablation's `train` arguments: the same warm start, model, steps × batch and settings for every
    condition; only the shards differ."""
    return ["--shards", shard_pattern(curated), *common_args(paths, sizes), "--out", str(run),
            "--init-from", str(paths.warm / "hf"), "--steps", str(sizes.steps), "--workers", "0",
            "--seed", str(seed), "--save-every", str(sizes.steps)]


def ablation_stage(p: Pipeline) -> None:
    """Per-class zero-shot of every run and of the warm start on the class-balanced held-out set, `workers`
    processes at a time -> ABLATION/ablation.json."""
    from pipelines.ablation import run_ablation

    runs = p.paths.runs(p.sizes.seeds)
    models = [run for seeds in runs.values() for run in seeds.values()] + [p.paths.warm]
    if not all((run / "hf" / "config.json").is_file() for run in models):
        p.skip("ablation", "not every training run finished")
        return
    p.call("ablation: per-class zero-shot per bucket and language, mean ± sd over seeds, paired differences",
           f"python -c 'pipelines.ablation.run_ablation(...)' on {p.paths.demo / 'eval'}",
           lambda: run_ablation(runs, p.paths.demo / "eval", p.paths.ablation, warm=p.paths.warm, workers=p.workers),
           p.paths.ablation / "ablation.json")


def url_pool(p: Pipeline, base_url: str) -> list[str]:
    """A URL-only Parquet pool (url + text) of the demo alt-texts, pointing at the local server."""
    from pipelines.serve import write_url_pool

    out = p.paths.root / "url_pool" / "pool.parquet"
    return [str(p.call("URL-only pool", f"write {out} (urls at {base_url})",
                       lambda: write_url_pool(p.paths.demo / "pool", out, base_url), out))]


def prepare_out(out: Path) -> None:
    """Start from an empty `out`: a folder an earlier quickstart wrote is replaced, any other refused."""
    import shutil

    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise UserError(f"--out {out}: exists, is not empty and was not written by the quickstart; "
                            f"give a new or empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()


def run_quickstart(out: Path, sizes: Sizes, from_urls: bool = False, workers: int = 2, seed: int = 0) -> Path:
    """Run every stage into `out`; return the path of REPORT.md."""
    from pipelines import demo_pool
    from pipelines.report import write_report

    prepare_out(out)
    paths = Paths(out)
    p = Pipeline(paths, sizes, workers)
    started = time.perf_counter()
    pool = p.call("demo pool",
                  f"python -m pipelines.demo_pool --out {paths.demo} --images {sizes.images} --seed {seed} "
                  f"--eval-per-class {sizes.eval_per_class} --workers {workers}",
                  lambda: demo_pool.make_demo_pool(paths.demo, sizes.images, seed, eval_per_class=sizes.eval_per_class,
                                                   workers=workers),
                  paths.demo)
    if from_urls:
        from pipelines.serve import export_images, serve_folder

        www = paths.root / "www"
        p.call("export images to serve", f"write {www}", lambda: export_images(paths.demo / "pool", www), www)
        with serve_folder(www) as base_url:
            print(f"serving {www} at {base_url}", flush=True)
            t = curate_stages(p, url_pool(p, base_url), url_only=True)
    else:
        t = curate_stages(p, [str(pool.pool)], url_only=False)
    train_stages(p)
    ablation_stage(p)
    total = time.perf_counter() - started
    report = p.call("report", f"write {out}/REPORT.md",
                    lambda: write_report(out, paths, [asdict(r) for r in p.results], sizes=asdict(sizes), t=t,
                                         total_seconds=total, from_urls=from_urls),
                    out / "REPORT.md")
    print(f"\nquickstart: {sum(r.status == 'ok' for r in p.results)} stages ok, "
          f"{sum(r.status != 'ok' for r in p.results)} skipped, {time.perf_counter() - started:.0f}s; report: {report}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder for every stage and REPORT.md")
    parser.add_argument("--small", action="store_true", help="a few hundred images and a few dozen steps (tests)")
    parser.add_argument("--from-urls", action="store_true",
                        help="curate a URL-only pool served from 127.0.0.1 and download it with `curate download`")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers / download processes (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="demo pool seed (default 0)")
    args = parser.parse_args(argv)
    try:
        run_quickstart(Path(args.out), SMALL if args.small else FULL, args.from_urls, args.workers, args.seed)
    except UserError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
