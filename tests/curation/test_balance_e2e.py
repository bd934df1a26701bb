"""build-index -> balance on a real WebDataset pool: the INDEX contract as build-index writes it."""
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from curation.balance_run import run_balance
from curation.build_index_run import build_index
from index_factory import entries_table, make_index, synthetic_images
from pool_factory import write_meta

pytestmark = pytest.mark.slow


def test_build_index_then_balance(tmp_path):
    ent = entries_table({"en": 10, "de": 6})
    built = make_index(tmp_path, synthetic_images(80, ent, seed=3), ent, kind="webdataset", sources=2)
    meta = write_meta(tmp_path / "META", list(zip(ent.column("lang").to_pylist(), ent.column("entry").to_pylist())))
    index = tmp_path / "REAL_INDEX"
    build_index([str(p) for p in sorted(built.pool.glob("*.tar"))], str(meta), str(index), lid="column:lang",
                uid_column="uid", workers=1)
    ours = built.rows.sort_by([("source", "ascending"), ("row", "ascending")])
    real = pq.read_table(index / "matches").select(ours.column_names).sort_by([("source", "ascending"),
                                                                              ("row", "ascending")])
    assert real.to_pylist() == ours.to_pylist()  # the factory writes what build-index writes
    stats = run_balance(index, tmp_path / "CUR", t=12, shard_size=20, workers=1)
    curated = pq.read_table(tmp_path / "CUR" / "curated.parquet").to_pylist()
    assert stats["totals"]["images"] == 80 and 0 < len(curated) == stats["totals"]["written"]
    image_of = {uid: data for uid, data in built.samples.values()}
    tars = sorted(str(p) for p in (tmp_path / "CUR" / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False).decode())
    assert [s["json"]["uid"] for s in samples] == [r["uid"] for r in curated]
    assert all(s["png"] == image_of[s["json"]["uid"]] for s in samples)
