"""Tokenizer: XLM-V layout from a locally trained SentencePiece model; multilingual, truncation, errors."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import sentencepiece as spm

from core.errors import UserError
from training.tokenizer import SPM_FILE, TokenCache, load_tokenizer, tokenize

TEXTS = ["a red square", "ein grün Quadrat", "一个红色的方块", "สี่เหลี่ยมสีแดง", "مربع أحمر", "青色 square 赤い"]


def test_ids_follow_xlmv_fairseq_layout(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_dir / SPM_FILE))
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == sp.get_piece_size() + 2  # + fairseq offset, + <mask>
    for text in TEXTS:
        # spm <unk>=0 -> 3
        assert tok(text)["input_ids"] == [0] + [i + 1 if i else 3 for i in sp.encode(text)] + [2], text


def test_spm_only_directory_loads_identically(tokenizer_dir, tmp_path):
    shutil.copy(tokenizer_dir / SPM_FILE, tmp_path / SPM_FILE)
    a, b = load_tokenizer(tokenizer_dir), load_tokenizer(tmp_path)
    assert [a(t)["input_ids"] for t in TEXTS] == [b(t)["input_ids"] for t in TEXTS]


def test_truncation_to_77_keeps_eos(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    ids, mask = tokenize(tok, ["red " * 2500 + "x" * 10, "blau"])
    assert ids.shape == mask.shape == (2, 77)
    assert ids[0, 0] == 0 and ids[0, -1] == 2 and int(mask[0].sum()) == 77
    n = int(mask[1].sum())
    assert ids[1, n - 1] == 2 and (ids[1, n:] == 1).all()



@pytest.mark.parametrize("limit", [200_000, 3])
def test_token_cache_gives_the_rows_of_tokenize(tokenizer_dir, limit):
    tok = load_tokenizer(tokenizer_dir)
    cache = TokenCache(tok, limit=limit)
    batches = [TEXTS[:4], TEXTS[2:] + ["red " * 2500], [TEXTS[0]] * 3 + TEXTS[4:], TEXTS[::-1]]
    for texts in batches:
        ids, mask = cache(texts)
        want_ids, want_mask = tokenize(tok, texts)
        assert ids.dtype == want_ids.dtype and mask.dtype == want_mask.dtype
        assert ids.equal(want_ids) and mask.equal(want_mask)
    assert len(cache.rows) <= max(limit, len(batches[-1]))


def test_missing_tokenizer_says_where_to_put_it(tmp_path):
    with pytest.raises(UserError, match="sentencepiece.bpe.model"):
        load_tokenizer(tmp_path)
    with pytest.raises(UserError, match="not found"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(UserError, match="local Hugging Face cache"):
        load_tokenizer("facebook/not-a-cached-model-xyz")


@pytest.mark.slow
def test_train_tokenizer_cli(shards, tmp_path):
    out = tmp_path / "tok"
    r = subprocess.run([sys.executable, "-m", "training.cli", "tokenizer", "--shards", shards, "--vocab-size", "120",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    tok = load_tokenizer(out)
    assert (out / SPM_FILE).exists() and tok("一个红色的方块")["input_ids"][0] == 0
    r = subprocess.run([sys.executable, "-m", "training.cli", "tokenizer", "--shards", str(tmp_path / "x/{0..3}.tar"),
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("layout", ["HF_HUB_CACHE", "HF_HOME"])
def test_hub_id_resolves_from_the_local_cache(tokenizer_dir, tmp_path, monkeypatch, layout):
    from test_hf_cache import cached_repo

    cache = tmp_path / "hub"
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(layout, str(cache if layout == "HF_HUB_CACHE" else tmp_path))
    cached_repo(cache, "facebook/xlm-v-base", {SPM_FILE: (tokenizer_dir / SPM_FILE).read_bytes()})
    a, b = load_tokenizer("facebook/xlm-v-base"), load_tokenizer(tokenizer_dir)
    assert [a(t)["input_ids"] for t in TEXTS] == [b(t)["input_ids"] for t in TEXTS]
    with pytest.raises(UserError, match=f"not in the local Hugging Face cache \\({cache}\\)"):
        load_tokenizer("facebook/xlm-roberta-base")


@pytest.mark.slow
def test_garbage_sentencepiece_model_is_one_line(shards, tmp_path):
    (tmp_path / SPM_FILE).write_bytes(bytes(range(256)) * 20)
    with pytest.raises(UserError, match="is not a SentencePiece model"):
        load_tokenizer(tmp_path)
    r = subprocess.run([sys.executable, "-m", "training.cli", "--shards", shards, "--tokenizer", str(tmp_path), "--out",
                        str(tmp_path / "run"), "--steps", "1"], capture_output=True, text=True)
    assert r.returncode == 2 and "is not a SentencePiece model" in r.stderr
    assert "Traceback" not in r.stderr and "tiktoken" not in r.stderr


@pytest.mark.slow
def test_train_with_the_cached_hub_id_exports_its_sentencepiece_model(shards, tokenizer_dir, tmp_path, monkeypatch):
    from test_hf_cache import cached_repo
    from training.train import TrainConfig, train

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cached_repo(tmp_path / "hub", "facebook/xlm-v-base", {SPM_FILE: (tokenizer_dir / SPM_FILE).read_bytes()})
    train(TrainConfig(shards=shards, tokenizer="facebook/xlm-v-base", out=str(tmp_path / "run"), steps=1, batch_size=4,
                      workers=0))
    assert (tmp_path / "run" / "hf" / SPM_FILE).read_bytes() == (tokenizer_dir / SPM_FILE).read_bytes()
