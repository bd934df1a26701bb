"""Text tokenizer: XLM-V (facebook/xlm-v-base) or a locally trained SentencePiece BPE in its layout.

XLM-V ships `sentencepiece.bpe.model` and loads as XLMRobertaTokenizer: fairseq ids <s>=0, <pad>=1,
</s>=2, <unk>=3, every SentencePiece piece shifted by one, <mask> last. `train_sentencepiece` writes
the same layout (plus the transformers files), so the demo and tests take the XLM-V code path.
Texts become `<s> pieces… </s>` padded/truncated to 77 tokens; the model pools at the first </s>.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from core.errors import UserError

CONTEXT_LENGTH = 77
SPM_FILE = "sentencepiece.bpe.model"
XLM_V = "facebook/xlm-v-base"
WHERE = (
    f"put XLM-V's {SPM_FILE} (from https://huggingface.co/{XLM_V}) in a directory and pass --tokenizer DIR, "
    f"or download {XLM_V} into the local Hugging Face cache on a machine with network "
    f"(`huggingface-cli download {XLM_V}`), or train a small one with `train tokenizer`"
)


def train_sentencepiece(texts: Iterable[str], vocab_size: int, out_dir: str | os.PathLike,
                        character_coverage: float = 1.0, seed_sentencepiece_size: int = 1_000_000) -> int:
    """Train a BPE SentencePiece model on `texts` and write an XLM-V-layout tokenizer dir; returns len(tokenizer)."""
    import sentencepiece as spm

    out_dir = Path(out_dir)
    lines = (t.replace("\n", " ").replace("\r", " ").strip() for t in texts)
    lines = (t for t in lines if t)
    with tempfile.TemporaryDirectory(prefix=".spm.", dir=out_dir.parent if out_dir.parent.exists() else None) as tmp:
        prefix = Path(tmp) / "sentencepiece.bpe"
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_prefix=str(prefix), model_type="unigram",
                vocab_size=vocab_size, character_coverage=character_coverage, hard_vocab_limit=False,
                unk_id=0, bos_id=1, eos_id=2, pad_id=-1, input_sentence_size=2_000_000,
                shuffle_input_sentence=True, seed_sentencepiece_size=seed_sentencepiece_size,
                num_threads=max(1, os.cpu_count() or 1), minloglevel=2,
            )
        except RuntimeError as e:
            raise UserError(f"SentencePiece training failed with --vocab-size {vocab_size}: {e}; "
                            "try a smaller --vocab-size or more text") from e
        stage = Path(tmp) / "out"
        stage.mkdir()
        shutil.copy(f"{prefix}.model", stage / SPM_FILE)
        tokenizer = _from_spm_dir(stage)
        tokenizer.save_pretrained(stage)
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in sorted(stage.iterdir()):
            os.replace(f, out_dir / f.name)
    return len(tokenizer)


def _from_spm_dir(path: Path):
    """XLMRobertaTokenizer from a directory holding only sentencepiece.bpe.model (as XLM-V's repo)."""
    from transformers import XLMRobertaTokenizer

    return XLMRobertaTokenizer.from_pretrained(str(path), model_max_length=CONTEXT_LENGTH, local_files_only=True)


def tokenizer_dir(path: str | os.PathLike) -> Path:
    """The local folder of --tokenizer: the path itself, or the cached snapshot of a hub id such as
    facebook/xlm-v-base."""
    from training.hf_cache import hub_cache, is_repo_id, snapshot

    p = Path(path)
    if p.exists() or not is_repo_id(str(path)):
        return p
    folder = snapshot(str(path))
    if folder is None:
        raise UserError(f"--tokenizer {path}: no such directory, and not in the local Hugging Face cache "
                        f"({hub_cache()}); {WHERE}")
    return folder


def _check_spm(path: Path) -> None:
    """UserError naming `path` when it exists but is not a SentencePiece model."""
    import sentencepiece as spm

    if not path.is_file():
        return
    try:
        spm.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as e:
        raise UserError(f"--tokenizer: {path} is not a SentencePiece model ({str(e).splitlines()[0][:120]}); "
                        "replace it with XLM-V's or retrain it with `train tokenizer`") from e


def load_tokenizer(path: str | os.PathLike):
    """Tokenizer from a local directory or the local HF cache (never the network); UserError if absent or unreadable."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    p = tokenizer_dir(path)
    if p.is_file() and p.name.endswith(".model"):
        raise UserError(f"--tokenizer {path}: pass the directory that holds {SPM_FILE}, not the file")
    if not p.is_dir():
        raise UserError(f"--tokenizer {path}: directory not found; {WHERE}")
    _check_spm(p / SPM_FILE)
    try:
        if (p / "tokenizer_config.json").exists() or (p / "tokenizer.json").exists():
            tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        elif (p / SPM_FILE).exists():
            tok = _from_spm_dir(p)
        else:
            raise UserError(f"--tokenizer {path}: no {SPM_FILE} or tokenizer.json in this directory; {WHERE}")
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  (sentencepiece, tokenizers and transformers raise many types for bad files)
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise UserError(f"--tokenizer {path}: cannot load the tokenizer in {p} ({type(e).__name__}: {first}); "
                        f"replace a damaged {SPM_FILE} with XLM-V's or retrain it with `train tokenizer`") from e
    tok.model_max_length = CONTEXT_LENGTH
    return tok


def special_ids(tokenizer) -> dict[str, int]:
    """pad/bos/eos ids for the model config."""
    return {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id}


def tokenize(tokenizer, texts: list[str], context_length: int = CONTEXT_LENGTH):
    """(input_ids, attention_mask) int64 tensors [n, context_length]; long texts truncated, </s> kept."""
    enc = tokenizer(list(texts), max_length=context_length, truncation=True, padding="max_length",
                    return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


TOKEN_CACHE_TEXTS = 200_000  # a DataLoader worker's TokenCache holds at most this many rows (~250 MB)


class TokenCache:
    """`tokenize` with each distinct text encoded once: a text's row never depends on the rest of its batch
    (padding to `context_length`), so rows of texts seen before are reused; at most `limit` texts are kept (0: none,
    plain `tokenize`)."""

    def __init__(self, tokenizer, context_length: int = CONTEXT_LENGTH, limit: int = TOKEN_CACHE_TEXTS):
        self.tokenizer, self.context_length, self.limit = tokenizer, context_length, limit
        self.rows: dict[str, tuple] = {}

    def __call__(self, texts: list[str]):
        """(input_ids, attention_mask) as `tokenize(tokenizer, texts)` returns them."""
        import torch

        if not self.limit:
            return tokenize(self.tokenizer, texts, self.context_length)
        if len(self.rows) + len(texts) > self.limit:
            self.rows.clear()
        new = list(dict.fromkeys(t for t in texts if t not in self.rows))
        if new:
            ids, mask = tokenize(self.tokenizer, new, self.context_length)
            self.rows.update(zip(new, zip(ids, mask)))
        rows = [self.rows[t] for t in texts]
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


def trim_padding(input_ids, attention_mask, multiple: int = 8):
    """(input_ids, attention_mask) without the trailing columns that are padding in every row.

    The text towers are causal and pool at the first </s>, so positions after the longest text change
    no feature: a batch of short alt-texts then costs its longest text (rounded up to `multiple`, to
    bound the shapes `--compile` sees), not all 77 positions.
    """
    longest = int(attention_mask.sum(dim=1).max()) if attention_mask.numel() else 0
    keep = min(input_ids.shape[1], max(multiple, -(-longest // multiple) * multiple))
    return input_ids[:, :keep], attention_mask[:, :keep]
