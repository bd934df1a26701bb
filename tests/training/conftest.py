"""Session-scoped training inputs: shard sets from shard_factory and a tokenizer trained on their captions."""
from __future__ import annotations

from pathlib import Path

import pytest

from shard_factory import caption_corpus, write_shards


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A SentencePiece tokenizer in XLM-V's layout, trained on the fixture captions."""
    from training.tokenizer import train_sentencepiece

    d = tmp_path_factory.mktemp("tokenizer")
    train_sentencepiece(caption_corpus(), 200, d)
    return d


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> str:
    """4 shards x 24 samples of learnable colour images (offline curation)."""
    return write_shards(tmp_path_factory.mktemp("curated"), 4, 24)


@pytest.fixture(scope="session")
def online_shards(tmp_path_factory) -> str:
    """4 shards x 50 samples with 1-3 texts each, online curation at t=20."""
    return write_shards(tmp_path_factory.mktemp("curated_online"), 4, 50, seed=1, n_texts=3, online=True, t=20)
