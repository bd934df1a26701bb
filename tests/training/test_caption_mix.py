"""Caption mixing: per (seed, epoch, uid) draws, fallback counting, language limits, online curation unchanged."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from curation.captions import attach
from curation.sampling import uid_hash64
from shard_factory import shard_metas, write_shards
from training.caption_mix import parse_mix
from training.data import Position, ShardStream, Stats, expand_sources, load_curation
from training.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def captioned(tmp_path_factory) -> Path:
    """2 shards x 20 online-curated samples; even uids have captions.vecap = 'VECAP <uid>'."""
    cur = tmp_path_factory.mktemp("captioned")
    write_shards(cur, 2, 20, seed=3, n_texts=2, online=True, t=5)
    caps = tmp_path_factory.mktemp("caps") / "c.parquet"
    uids = [f"u{i:06d}" for i in range(0, 40, 2)]
    pq.write_table(pa.table({"uid": uids, "caption": [f"VECAP {u}" for u in uids]}), caps)
    attach(cur, "vecap", [caps])
    return cur


def _items(curated: Path, tokenizer_dir, mix, curation=True, workers=1, passes=1):
    """{(pass, uid): caption} of every kept sample of the first passes, read by logical worker 0..workers-1."""
    src = expand_sources(str(curated / "shards" / "{00000..00001}.tar"))
    cur = load_curation(src, 0) if curation else None
    ds = ShardStream(src, load_tokenizer(tokenizer_dir), 4, 32, num_workers=workers, curation=cur, caption_mix=mix,
                     shuffle_block=7)
    out, stats, fallbacks = {}, Stats(), 0
    for w in range(workers):
        for item, pos in ds._items(w, Position(), stats):
            if pos.pass_index >= passes:
                break
            fallbacks = stats.caption_fallback
            if item is not None:
                out[(pos.pass_index, item[2])] = item[1]
    return out, fallbacks


def test_parse_mix_errors_and_weights():
    assert parse_mix(None, 0) is None
    m = parse_mix("alt:1,vecap:3", 7, "en, de")
    assert m.sources == ("alt", "vecap") and m.cumulative == (0.25, 1.0) and m.langs == {"en", "de"}
    for bad in ("alt", "alt:x", "alt:-1", "alt:0", "alt:1,alt:1", ":1"):
        with pytest.raises(UserError, match="--caption-mix"):
            parse_mix(bad, 0)
    with pytest.raises(UserError, match="needs --caption-mix"):
        parse_mix(None, 0, "en")


@pytest.mark.slow
def test_draw_follows_the_weights_and_depends_on_seed_epoch_uid():
    m = parse_mix("alt:1,vecap:3", 0)
    keys = uid_hash64([f"u{i}" for i in range(20000)])
    share = np.mean([m.draw(int(k), 0) == "vecap" for k in keys])
    assert 0.73 < share < 0.77
    e0, e1 = [m.draw(int(k), 0) for k in keys[:200]], [m.draw(int(k), 1) for k in keys[:200]]
    assert e0 != e1 and e0 == [m.draw(int(k), 0) for k in keys[:200]]
    assert e0 != [parse_mix("alt:1,vecap:3", 1).draw(int(k), 0) for k in keys[:200]]


def test_stream_uses_captions_and_counts_fallbacks(captioned, tokenizer_dir):
    got, stats = _items(captioned, tokenizer_dir, parse_mix("vecap:1", 0), curation=False)
    assert len(got) == 40
    for (_, uid), text in got.items():
        assert (text == f"VECAP {uid}") == (int(uid[1:]) % 2 == 0)
    assert stats == 20
    plain, stats = _items(captioned, tokenizer_dir, None, curation=False)
    assert not any(t.startswith("VECAP") for t in plain.values()) and stats == 0


def test_online_curation_is_unchanged_and_mix_is_worker_independent(captioned, tokenizer_dir):
    mix = parse_mix("alt:0.5,vecap:0.5", 0)
    plain, _ = _items(captioned, tokenizer_dir, None, passes=2)
    one, _ = _items(captioned, tokenizer_dir, mix, passes=2)
    two, _ = _items(captioned, tokenizer_dir, mix, workers=2, passes=2)
    assert set(plain) == set(one) == set(two) and one == two
    assert 0 < sum(t.startswith("VECAP") for t in one.values()) < len(one)
    for key, text in one.items():
        assert text == plain[key] or text == f"VECAP {key[1]}"


def test_caption_mix_langs_limits_enrichment(captioned, tokenizer_dir):
    got, _ = _items(captioned, tokenizer_dir, parse_mix("vecap:1", 0, "de"), curation=False)
    metas = shard_metas(captioned)
    enriched = {uid for (_, uid), t in got.items() if t.startswith("VECAP")}
    assert enriched and enriched == {u for u, m in metas.items() if m["lang"] == "de" and "captions" in m}


@pytest.mark.slow
def test_train_cli_reports_fallbacks(captioned, tokenizer_dir, tmp_path):
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "training.cli",
                        "--shards", str(captioned / "shards" / "{00000..00001}.tar"), "--tokenizer", str(tokenizer_dir),
                        "--out", str(run), "--steps", "2", "--batch-size", "4", "--workers", "0",
                        "--caption-mix", "alt:0,vecap:1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "samples lacked the drawn caption source" in r.stderr
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["caption_fallback"] > 0
    bad = subprocess.run([sys.executable, "-m", "training.cli", "--shards", str(captioned / "shards" / "00000.tar"),
                          "--tokenizer", str(tokenizer_dir), "--out", str(tmp_path / "r2"), "--steps", "1",
                          "--caption-mix", "vecap"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--caption-mix" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_resume_with_caption_mix_is_exact(captioned, tokenizer_dir, tmp_path):
    import shutil

    import torch

    from training.train import TrainConfig, train

    cfg = dict(shards=str(captioned / "shards" / "{00000..00001}.tar"), tokenizer=str(tokenizer_dir), steps=6,
               batch_size=4, lr=1e-3, warmup=2, workers=2, save_every=3, shuffle_block=8, seed=5,
               caption_mix="alt:0.5,vecap:0.5")
    straight = tmp_path / "straight"
    train(TrainConfig(out=str(straight), **cfg))
    crashed = tmp_path / "crashed"
    shutil.copytree(straight, crashed, ignore=shutil.ignore_patterns("step_00000006.pt", "hf", ".lock"))
    train(TrainConfig(out=str(crashed), resume="latest", **cfg))
    wa, wb = (torch.load(r / "checkpoints" / "step_00000006.pt", weights_only=False) for r in (straight, crashed))
    assert wa["loader"] == wb["loader"] and wa["loader"]["caption_fallback"] > 0
    for k, v in wa["model"].items():
        assert torch.allclose(v, wb["model"][k], atol=1e-6), k
    plain = tmp_path / "plain"
    train(TrainConfig(out=str(plain), **{**cfg, "caption_mix": None}))
    wp = torch.load(plain / "checkpoints" / "step_00000006.pt", weights_only=False)
    key = "text_model.embeddings.token_embedding.weight"
    assert not torch.allclose(wp["model"][key], wa["model"][key])  # the mix changed what was trained on
