"""kill -9 of a whole job at seeded points, then the same command again: the final outputs equal an
uninterrupted run's (nothing lost, nothing duplicated, accounting complete) for every stage."""
from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from pathlib import Path

import pytest

from harness import (
    ENTRIES,
    big_pool,
    count_files,
    count_lines,
    curated_state,
    curation_inputs,
    index_factory,
    index_state,
    kill_when,
    manifest,
    read_parquet_rows,
    shard_members,
    start,
    temp_files,
    training_inputs,
)

pytestmark = pytest.mark.slow
SEEDS = [0, 1, 2]


# ---- metadata ------------------------------------------------------------------------------------

def test_metadata_add_killed_then_rerun(tmp_path):
    from core.outputs import content_hash
    from curation.cli import main as curate
    from metadata.store import load_entries, read_manifest

    words = tmp_path / "words.txt"
    words.write_text("".join(f"word{i} w{i % 977}x\n" for i in range(300_000)))
    argv = ["metadata", "add", "--lang", "en", "--file", str(words), "--source", "user"]
    assert curate([*argv, "--out", str(tmp_path / "clean")]) == 0
    clean = load_entries(tmp_path / "clean")
    killed = 0
    for seed in SEEDS:
        out = tmp_path / f"meta{seed}"
        proc = start(["curate", *argv, "--out", str(out)], tmp_path / f"log{seed}")
        killed += kill_when(proc, lambda: out.exists(), seed, max_delay=2.5)
        assert curate([*argv, "--out", str(out)]) == 0
        assert load_entries(out, verify=True).equals(clean)
        assert read_manifest(out)["entries_sha256"] == content_hash(out / "entries.parquet")
        assert not temp_files(out)
    assert killed, "no kill landed while the job was running"


# ---- build-index ---------------------------------------------------------------------------------

def test_build_index_killed_then_rerun(ray_address, tmp_path):
    from curation.cli import main as curate

    meta = curation_inputs.write_meta(tmp_path / "meta")
    pool = big_pool(tmp_path / "pool", 40_000)
    argv = ["build-index", "--pool", str(pool), "--metadata", str(meta), "--part-size", "2000", "--workers", "1",
            "--backend", "pyahocorasick", "--ray-address", ray_address]
    assert curate([*argv, "--out", str(tmp_path / "clean")]) == 0
    clean = index_state(tmp_path / "clean")
    report = clean[2]
    assert report["rows_in"] == 80_000 == report["matched"] + report["unmatched"] + sum(report["rejected"].values())
    partial = 0
    for seed in SEEDS:
        out = tmp_path / f"index{seed}"
        proc = start(["curate", *argv, "--out", str(out)], tmp_path / f"log{seed}")
        journal = out / "parts.jsonl"
        kill_when(proc, lambda: count_lines(journal) >= 1 + 4 * seed, seed, max_delay=0.3)
        done = count_lines(journal)
        partial += 0 < done < 40 and not (out / "counts.parquet").exists()
        assert curate([*argv, "--out", str(out)]) == 0
        assert index_state(out) == clean
        assert len(manifest(out)["parts"]) == 40 and not temp_files(out)
    assert partial, "no kill landed mid-run"


# ---- balance -------------------------------------------------------------------------------------

def test_balance_killed_then_rerun(tmp_path):
    from curation.cli import main as curate

    built = index_factory.make_index(tmp_path, index_factory.synthetic_images(300, ENTRIES, seed=3), ENTRIES,
                                     sources=6, part_rows=40)
    argv = ["balance", "--index", str(built.index), "--t", "20", "--shard-size", "10", "--workers", "1"]
    assert curate([*argv, "--out", str(tmp_path / "clean")]) == 0
    clean = curated_state(tmp_path / "clean")
    curated = clean[1].to_pylist()
    assert clean[3]["kept"] == len(curated) == len({r["uid"] for r in curated}) == clean[3]["written"] > 30
    assert sum(len(m) for m in clean[0].values()) == 3 * len(curated)
    partial = 0
    for seed in SEEDS:
        out = tmp_path / f"cur{seed}"
        proc = start(["curate", *argv, "--out", str(out)], tmp_path / f"log{seed}")
        n = [1, 8, 16][seed]
        kill_when(proc, lambda: len(list(out.rglob("*"))) >= n, seed, max_delay=0.2)
        partial += not (out / "stats.json").exists()
        assert curate([*argv, "--out", str(out)]) == 0
        state = curated_state(out)
        assert state[0] == clean[0] and state[1].equals(clean[1]) and state[2].equals(clean[2])
        assert state[3] == clean[3] and manifest(out)["complete"]
        assert not temp_files(out) and not (out / ".work").exists()
    assert partial, "no kill landed mid-run"


# ---- download ------------------------------------------------------------------------------------

@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def url_curated(tmp_path: Path, root: Path, base: str, n: int = 24) -> Path:
    from curation.balance_run import run_balance

    ent = index_factory.entries_table({"en": 4})
    imgs = []
    for i in range(n):
        if i % 13 != 5:  # some 404s
            (root / f"img{i}.png").write_bytes(index_factory.image_bytes(i))
        imgs.append(index_factory.Img(f"u{i:03d}", [(f"a photo {i}", "en", [i % 4])], None, f"{base}/img{i}.png"))
    built = index_factory.make_index(tmp_path / "src", imgs, ent, kind="url")
    cur = tmp_path / "CUR"
    run_balance(built.index, cur, t=1000, shard_size=8, workers=1)
    return cur


def download_state(cur: Path) -> tuple:
    stats = json.loads((cur / "stats.json").read_text())
    samples = {name: {k: v for k, v in members.items()} for name, members in shard_members(cur / "shards").items()}
    rows = sorted((r["uid"], r["status"], r["shard"], r["key"]) for r in read_parquet_rows(cur / "curated.parquet"))
    return samples, rows, stats["totals"], stats["download"]


def test_download_killed_then_rerun(tmp_path, server):
    import shutil

    from curation.cli import main as curate

    root, base = server
    cur = url_curated(tmp_path, root, base)
    pristine = tmp_path / "pristine"
    shutil.copytree(cur, pristine)
    argv = ["download", "--processes", "1", "--thread-count", "2", "--timeout", "5"]
    assert curate([*argv[:1], str(cur), *argv[1:]]) == 0
    clean = download_state(cur)
    assert clean[2]["written"] == 22 and clean[2]["failed_downloads"] == 2
    assert clean[3]["attempted"] == 24 == clean[3]["downloaded"] + clean[3]["failed_downloads"]
    assert sum(len(m) for m in clean[0].values()) == 3 * 22
    assert curate([*argv[:1], str(cur), *argv[1:]]) == 0  # rerun of a finished download: nothing changes
    assert download_state(cur) == clean
    partial = 0
    for seed in SEEDS[:2]:
        out = tmp_path / f"cur{seed}"
        shutil.copytree(pristine, out)
        proc = start(["curate", argv[0], str(out), *argv[1:]], tmp_path / f"log{seed}")
        kill_when(proc, lambda: count_files(out / "shards", "*") >= 1 + 3 * seed, seed, max_delay=0.5)
        partial += "download" not in json.loads((out / "stats.json").read_text())
        assert curate([argv[0], str(out), *argv[1:]]) == 0
        assert download_state(out) == clean
        assert not temp_files(out)
    assert partial, "no kill landed mid-run"


# ---- train ---------------------------------------------------------------------------------------

def latest_step(run: Path) -> int:
    steps = [int(m.group(1)) for p in (run / "checkpoints").glob("step_*.pt")
             if (m := re.fullmatch(r"step_(\d+)\.pt", p.name))] if (run / "checkpoints").is_dir() else []
    return max(steps, default=0)


def test_train_killed_then_resumed(tmp_path):
    import torch

    spec = training_inputs.write_shards(tmp_path / "curated", 3, 24, seed=1, n_texts=2, online=True, t=20)
    tok = tmp_path / "tok"
    from training.tokenizer import train_sentencepiece

    train_sentencepiece(training_inputs.caption_corpus(), 200, tok)
    argv = ["train", "--shards", spec, "--tokenizer", str(tok), "--steps", "10", "--batch-size", "4",
            "--save-every", "2", "--workers", "1", "--log-samples", "--shuffle-block", "8", "--seed", "5",
            "--lr", "1e-3", "--warmup", "2", "--device", "cpu"]
    from training.cli import main as train

    assert train([*argv[1:], "--out", str(tmp_path / "straight")]) == 0
    straight = tmp_path / "straight"
    killed = 0
    for seed in SEEDS[:2]:
        out = tmp_path / f"run{seed}"
        proc = start([*argv, "--out", str(out)], tmp_path / f"log{seed}")
        kill_when(proc, lambda: latest_step(out) >= 2 + 4 * seed, seed, max_delay=0.3)
        if latest_step(out) == 10:
            continue  # killed after the last checkpoint: see test_resume_of_a_finished_run
        killed += 1
        (out / "checkpoints" / ".step_00000099.pt.dead.tmp").write_bytes(b"half a checkpoint")  # as a kill leaves
        assert train([*argv[1:], "--out", str(out), "--resume", "latest"]) == 0
        assert (out / "samples" / "rank0.jsonl").read_text() == (straight / "samples" / "rank0.jsonl").read_text()
        assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == list(range(1, 11))
        a = torch.load(straight / "checkpoints" / "step_00000010.pt", weights_only=False)
        b = torch.load(out / "checkpoints" / "step_00000010.pt", weights_only=False)
        assert a["loader"] == b["loader"]
        for k, v in a["model"].items():
            assert torch.allclose(v, b["model"][k], atol=1e-6), k
        assert not temp_files(out)
    assert killed, "no kill landed before the last checkpoint"


def test_resume_of_a_finished_run(tmp_path):
    from training.cli import main as train
    from training.tokenizer import train_sentencepiece

    spec = training_inputs.write_shards(tmp_path / "curated", 1, 16)
    train_sentencepiece(training_inputs.caption_corpus(), 200, tmp_path / "tok")
    argv = ["--shards", spec, "--tokenizer", str(tmp_path / "tok"), "--steps", "2", "--batch-size", "4",
            "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert train(argv) == 0
    assert train([*argv, "--resume", "latest"]) == 0
