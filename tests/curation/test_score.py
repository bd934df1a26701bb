"""curate score + balance --min-score / --score-top-fraction: scores equal a direct computation, and the
kept set is exactly the images that pass the filter (t large enough that balancing keeps everything)."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from curation.balance_run import run_balance
from curation.cli import main
from curation.score import score_curated
from index_factory import entries_table, make_index, synthetic_images

ENTRIES = entries_table({"en": 6, "de": 4})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(INDEX, CURATED with every image, tiny exported MetaClip2Model folder, scores table)."""
    from training.export import export_hf
    from training.models import build_model
    from training.tokenizer import load_tokenizer, special_ids, train_sentencepiece

    d = tmp_path_factory.mktemp("score")
    built = make_index(d, synthetic_images(40, ENTRIES), ENTRIES, kind="webdataset", sources=2)
    run_balance(built.index, d / "ALL", t=1e9, shard_size=16, workers=1, online=True)
    tok_dir = d / "tok"
    train_sentencepiece(built.rows.column("text").to_pylist() * 20, 60, tok_dir)
    tok = load_tokenizer(tok_dir)
    torch.manual_seed(0)
    hf = export_hf(build_model("tiny", len(tok), **special_ids(tok)), tok_dir, 32, d / "run" / "hf")
    score_curated(d / "ALL", str(hf), batch_size=5)
    return built, d / "ALL", hf, pq.read_table(d / "ALL" / "scores.parquet")


@pytest.mark.slow
def test_scores_equal_a_direct_computation(setup):
    import webdataset as wds
    from PIL import Image

    from curation.clip import load_model

    _, cur, hf, scores = setup
    model, tok, proc = load_model(hf, "cpu")
    sample = next(iter(wds.WebDataset(str(cur / "shards" / "00001.tar"), shardshuffle=False)))
    meta = json.loads(sample["json"])
    with torch.no_grad():
        img = model.get_image_features(pixel_values=proc(images=[Image.open(io.BytesIO(sample["png"])).convert("RGB")],
                                                          return_tensors="pt")["pixel_values"])
        t = tok([sample["txt"].decode()], padding=True, return_tensors="pt")
        txt = model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"])
    img, txt = [x if isinstance(x, torch.Tensor) else x.pooler_output for x in (img, txt)]
    want = torch.nn.functional.cosine_similarity(img, txt).item()
    got = dict(zip(scores.column("uid").to_pylist(), scores.column("score").to_pylist()))
    assert scores.num_rows == 40 and got[meta["uid"]] == pytest.approx(want, abs=1e-5)
    assert all(-1 <= s <= 1 for s in got.values())


@pytest.mark.slow
@pytest.mark.parametrize("how", ["min", "top"])
def test_filter_keeps_exactly_the_passing_images(setup, tmp_path, how):
    built, cur, _, scores = setup
    s = dict(zip(scores.column("uid").to_pylist(), scores.column("score").to_pylist()))
    if how == "min":
        cut = float(np.median(list(s.values())))
        want = {u for u, v in s.items() if v >= cut}
        flt = {"scores": str(cur / "scores.parquet"), "min_score": cut, "top_fraction": None}
    else:
        want = set(sorted(s, key=lambda u: -s[u])[:math.ceil(0.3 * len(s))])
        flt = {"scores": str(cur / "scores.parquet"), "min_score": None, "top_fraction": 0.3}
    stats = run_balance(built.index, tmp_path / "F", t=1e9, shard_size=16, workers=1, score_filter=flt)
    kept = set(pq.read_table(tmp_path / "F" / "curated.parquet").column("uid").to_pylist())
    assert kept == want and 0 < len(kept) < 40
    assert stats["score_filter"]["passed_images"] == len(want) and stats["score_filter"]["index_images"] == 40
    unfiltered = run_balance(built.index, tmp_path / "U", t=1e9, shard_size=16, workers=1)
    assert unfiltered["totals"]["kept"] == 40


@pytest.mark.slow
def test_filter_recomputes_counts_and_unscored_are_counted(setup, tmp_path):
    built, cur, _, scores = setup
    part = scores.slice(0, 30)
    pq.write_table(part, tmp_path / "s.parquet")
    flt = {"scores": str(tmp_path / "s.parquet"), "min_score": -1.0, "top_fraction": None}
    stats = run_balance(built.index, tmp_path / "F", t=1e9, shard_size=16, workers=1, score_filter=flt, online=True)
    assert stats["score_filter"]["unscored_images"] == 10 and stats["totals"]["kept"] == 30
    counts = pq.read_table(tmp_path / "F" / "counts.parquet").column("count").to_numpy()
    full = pq.read_table(built.index / "counts.parquet").column("count").to_numpy()
    assert (counts <= full).all() and counts.sum() < full.sum()


@pytest.mark.slow
def test_cli_flags(setup, tmp_path, capsys):
    built, cur, hf, _ = setup
    base = ["balance", "--index", str(built.index), "--out", str(tmp_path / "X"), "--t", "5", "--workers", "1"]
    assert main(base + ["--min-score", "0.1"]) == 2 and "need --scores" in capsys.readouterr().err
    assert main(base + ["--scores", str(cur), "--score-top-fraction", "1.5"]) == 2
    assert main(base + ["--scores", str(cur), "--score-top-fraction", "0.5"]) == 0
    assert main(["score", str(cur), "--model", str(tmp_path)]) == 2 and "config.json" in capsys.readouterr().err


@pytest.mark.slow
def test_curated_and_model_in_a_bucket_give_the_local_scores(setup, s3):
    from core import storage
    from test_captions import upload

    _, cur, hf, scores = setup
    upload(cur / "shards", s3.url("ALL", "shards"))
    upload(hf, s3.url("run", "hf"))
    r = score_curated(s3.url("ALL"), s3.url("run", "hf"), batch_size=5)
    got = pq.read_table(storage.open_input(s3.url("ALL", "scores.parquet")))
    assert r["images"] == 40 and got.to_pydict() == scores.to_pydict()
    assert got.schema.metadata[b"worldclip.score_model"] == s3.url("run", "hf").encode()
    assert not storage.exists(s3.url("ALL", ".scores")) and not storage.exists(s3.url("ALL", storage.LOCK_NAME))
