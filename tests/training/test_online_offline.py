"""Online curation = `curate balance`: training's first pass over a `balance --online` output keeps exactly
the images an offline balance with the same seed and t keeps, with the same chosen texts."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from curation.balance_run import run_balance
from index_factory import entries_table, make_index, synthetic_images
from training.data import Position, ShardStream, Stats, expand_sources, load_curation

ENTRIES = entries_table({"en": 12, "de": 8, "ja": 5})


def first_pass(curated, train_seed: int, t: float | None = None) -> dict[str, str]:
    """{uid: caption} of the samples training's data stream yields in its first pass (pass 0)."""
    n = len(list((curated / "shards").glob("*.tar")))
    sources = expand_sources(str(curated / "shards" / f"{{00000..{n - 1:05d}}}.tar"))
    curation = load_curation(sources, seed=train_seed, t=t)
    assert curation is not None
    stream = ShardStream(sources, None, 1, 16, seed=train_seed, curation=curation, shuffle_block=17)
    kept: dict[str, str] = {}
    for item, pos in stream._items(0, Position(), Stats()):  # what ShardStream.__iter__ batches
        if pos.pass_index > 0:
            break
        if item is not None:
            _, caption, uid = item
            assert uid not in kept
            kept[uid] = caption
    return kept


@pytest.mark.slow
@pytest.mark.parametrize("t,seed", [(15, 0), (6, 11)])
def test_first_online_pass_keeps_the_offline_balance(tmp_path, t, seed):
    built = make_index(tmp_path, synthetic_images(240, ENTRIES, seed=5, max_texts=3), ENTRIES, sources=2)
    run_balance(built.index, tmp_path / "OFF", t=t, seed=seed, shard_size=40, workers=1)
    run_balance(built.index, tmp_path / "ON", t=t, seed=seed, shard_size=40, workers=1, online=True)
    offline = {r["uid"]: r["text"] for r in pq.read_table(tmp_path / "OFF" / "curated.parquet",
                                                          columns=["uid", "text"]).to_pylist()}
    assert 0 < len(offline) < 240
    assert first_pass(tmp_path / "ON", train_seed=seed + 100) == offline  # curation.json's seed, not --seed
    # --curation-t re-draws with another threshold: an offline balance at that t
    run_balance(built.index, tmp_path / "OFF2", t=2 * t, seed=seed, shard_size=40, workers=1)
    offline2 = {r["uid"]: r["text"] for r in pq.read_table(tmp_path / "OFF2" / "curated.parquet",
                                                           columns=["uid", "text"]).to_pylist()}
    assert offline2 != offline
    assert first_pass(tmp_path / "ON", train_seed=1, t=2 * t) == offline2
