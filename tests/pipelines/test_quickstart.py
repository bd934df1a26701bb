"""The whole demo pipeline end to end at a small size: every stage's outputs exist and REPORT.md is written."""
from __future__ import annotations

import json
import os

import pytest

from core.errors import UserError
from pipelines import quickstart


@pytest.mark.slow
def test_every_stage_ran_and_wrote_its_outputs(small_demo):
    out = small_demo
    assert sorted(p.name for p in (out / "demo" / "pool").glob("*.tar"))
    assert (out / "demo" / "eval" / "classnames.json").is_file()
    assert (out / "META" / "entries.parquet").is_file() and (out / "META" / "manifest.json").is_file()
    manifest = json.loads((out / "INDEX" / "manifest.json").read_text())
    totals = manifest["totals"]
    assert totals["rows_in"] == totals["matched"] + totals["unmatched"] + sum(totals["rejected"].values())
    assert list((out / "INDEX" / "matches").glob("part-*.parquet")) and (out / "INDEX" / "counts.parquet").is_file()
    for curated in ("CURATED", "UNBALANCED"):
        assert list((out / curated / "shards").glob("*.tar"))
        assert (out / curated / "curated.parquet").is_file() and (out / curated / "thresholds.parquet").is_file()
    assert (out / "TOKENIZER" / "sentencepiece.bpe.model").is_file()
    runs = [f"RUN_{c}_s{s}" for c in quickstart.CONDITIONS for s in range(quickstart.SMALL.seeds)]
    assert sorted(p.name for p in out.glob("RUN_*")) == sorted(runs + ["RUN_warm"])
    assert (out / "RUN_warm" / "hf" / "model.safetensors").is_file()
    for run in runs:
        assert (out / run / "hf" / "config.json").is_file()
        assert (out / run / "metrics.jsonl").read_text().strip()
        assert (out / run / "eval.json").is_file() == run.endswith("_s0")  # train --eval-data on seed 0 only
    for run in ("RUN_balanced_s0", "RUN_unbalanced_s0"):
        result = json.loads((out / run / "eval.json").read_text())
        assert set(result["zeroshot"]) >= {"en", "zh", "ja", "ar", "ko", "ru", "de", "es", "fr", "it"}
        assert result["retrieval"] is not None


@pytest.mark.slow
def test_every_condition_run_starts_from_the_one_warm_start_and_runs_equal_steps(small_demo):
    """Equal compute: both conditions start from RUN_warm/hf and differ only in shards (and seed, out, eval)."""
    warm = json.loads((small_demo / "RUN_warm" / "config.json").read_text())
    assert warm["init_from"] is None and warm["steps"] == quickstart.SMALL.warm_steps
    assert "UNBALANCED" in warm["shards"] and warm["seed"] == quickstart.WARM_SEED
    configs = {(c, s): json.loads((small_demo / f"RUN_{c}_s{s}" / "config.json").read_text())
               for c in quickstart.CONDITIONS for s in range(quickstart.SMALL.seeds)}
    from pipelines.report import read_metrics

    varying = {"shards", "out", "seed", "eval_data"}
    shared = [{k: v for k, v in cfg.items() if k not in varying} for cfg in configs.values()]
    assert all(cfg == shared[0] for cfg in shared)
    assert shared[0]["init_from"] == str(small_demo / "RUN_warm" / "hf")
    assert shared[0]["steps"] == quickstart.SMALL.steps and shared[0]["batch_size"] == quickstart.SMALL.batch_size
    for (cond, seed), cfg in configs.items():
        assert ("CURATED" if cond == "balanced" else "UNBALANCED") in cfg["shards"] and cfg["seed"] == seed
        assert read_metrics(small_demo / f"RUN_{cond}_s{seed}")[-1]["step"] == quickstart.SMALL.steps


@pytest.mark.slow
def test_ablation_has_every_bucket_language_and_seed(small_demo):
    from pipelines.demo_concepts import GLYPHS, LANGS

    result = json.loads((small_demo / "ABLATION" / "ablation.json").read_text())
    assert set(result["per_class"]) == set(quickstart.CONDITIONS)
    for seeds in result["per_class"].values():
        assert len(seeds) == quickstart.SMALL.seeds
        for per_class in seeds.values():
            assert set(per_class) == set(LANGS) and all(len(v) == len(GLYPHS) for v in per_class.values())
    for cond in quickstart.CONDITIONS:
        assert set(result["buckets"][cond]) == {"head", "middle", "tail", "all"}
        assert result["buckets"][cond]["tail"]["n"] == quickstart.SMALL.seeds
        assert set(result["by_lang"][cond]) == set(LANGS)
    assert set(result["verdict"]) == {"head", "middle", "tail", "all"}
    assert set(result["paired"]) == {"head", "middle", "tail", "all"}
    assert result["paired"]["tail"]["n"] == quickstart.SMALL.seeds
    assert set(result["warm_start"]["buckets"]) == {"head", "middle", "tail", "all"}
    assert set(result["warm_start"]["per_class"]) == set(LANGS)


@pytest.mark.slow
def test_report_has_every_section_and_its_figures(small_demo):
    text = (small_demo / "REPORT.md").read_text()
    assert "Every stage ran." in text
    for heading in ("## Stages", "## 1. The demo pool", "## 2. Matching", "## 3. Balancing", "## 4. Training",
                    "## 5. The mechanism", "## 6. Does balancing help the tail?", "## 7. Zero-shot per language",
                    "## 8. Image↔text retrieval"):
        assert heading in text
    assert "Not run." not in text and "tail top-1 difference balanced − unbalanced" in text
    assert "Paired (a second view of the same runs)" in text and "warm start (both start here)" in text
    assert "train: warm start" in text
    for name in ("long_tail.png", "loss.png", "seen_per_concept.png", "buckets.png", "accuracy_vs_frequency.png"):
        assert (small_demo / "figures" / name).stat().st_size > 1000


@pytest.mark.slow
def test_balancing_cut_the_head_and_kept_the_tail(small_demo):
    from pipelines.ablation import buckets
    from pipelines.exposure import images_per_concept

    before, _ = images_per_concept(small_demo / "INDEX", small_demo / "UNBALANCED")
    after, _ = images_per_concept(small_demo / "INDEX", small_demo / "CURATED")
    share = {b: sum(after[c] for c in cs) / max(1, sum(before[c] for c in cs)) for b, cs in buckets().items()}
    assert share["head"] < 0.6 and share["head"] < share["tail"]


def test_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="not written by the quickstart"):
        quickstart.prepare_out(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert quickstart.main(["--out", str(tmp_path), "--small"]) == 2


def test_replaces_its_own_earlier_output(tmp_path):
    quickstart.prepare_out(tmp_path / "o")
    (tmp_path / "o" / "stale").write_text("x")
    quickstart.prepare_out(tmp_path / "o")
    assert sorted(os.listdir(tmp_path / "o")) == [quickstart.MARKER]


def test_url_pool_and_local_server(tmp_path):
    import urllib.request

    import pyarrow.parquet as pq

    from pipelines.demo_pool import make_demo_pool
    from pipelines.serve import export_images, serve_folder, write_url_pool

    pool = make_demo_pool(tmp_path / "demo", n_images=30, seed=0, eval_per_class=1, progress=False)
    assert export_images(pool.pool, tmp_path / "www") > 0
    with serve_folder(tmp_path / "www") as base:
        table = write_url_pool(pool.pool, tmp_path / "pool.parquet", base)
        rows = pq.read_table(table).to_pylist()
        assert len(rows) == pool.rows and all(r["url"].startswith(base) for r in rows)
        ok = [r for r in pq.read_table(pool.pool / "00000.parquet").to_pylist() if r["status"] == "success"][0]
        served = urllib.request.urlopen(f"{base}/{ok['url'].rsplit('/', 1)[1]}").read()
        import hashlib
        assert hashlib.sha256(served).hexdigest() == ok["sha256"]
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{base}/no-such-image.jpg")


def test_export_images_of_a_cut_pool_tar_is_one_line(tmp_path):
    """pipelines.serve read pool tars with plain tarfile: one cut at a member boundary looked whole."""
    import tarfile

    from core.errors import UserError
    from pipelines.demo_pool import make_demo_pool
    from pipelines.serve import export_images

    pool = make_demo_pool(tmp_path / "demo", n_images=30, seed=0, eval_per_class=1, progress=False)
    tar = sorted(pool.pool.glob("*.tar"))[0]
    with tarfile.open(tar) as t:
        cut = t.getmembers()[3].offset
    tar.write_bytes(tar.read_bytes()[:cut])
    with pytest.raises(UserError, match=rf"{tar.name}: damaged after byte {cut} .*; rebuild the demo pool"):
        export_images(pool.pool, tmp_path / "www")
