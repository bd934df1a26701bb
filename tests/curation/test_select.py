"""Per-image choice + keep over Arrow tables: order-free, canonical, and statistically exact."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curation import balance, sampling
from curation.select import select_images
from index_factory import MATCH_SCHEMA


def table(rows):
    return pa.Table.from_pylist(rows, schema=MATCH_SCHEMA)


def synthetic(n_images, n_entries, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        for j in range(int(rng.integers(1, 4))):
            ids = sorted({min(int(rng.zipf(1.3)) - 1, n_entries - 1) for _ in range(int(rng.integers(1, 3)))})
            rows.append({"uid": f"u{i}", "text": f"t{ids[0]:03d}", "url": None, "lang": "en",
                         "entry_ids": ids, "source": f"/s{j % 2}", "row": int(rng.integers(1000)), "key": None})
    return table(rows)


def by_uid(t):
    return t.sort_by("uid").drop_columns(["keep"]).to_pylist()


def test_result_independent_of_row_order_and_partition():
    t = synthetic(2000, 50)
    p = np.linspace(0.05, 1, 50)
    whole, _ = select_images(t, p, seed=7)
    shuffled, _ = select_images(t.take(pa.array(np.random.default_rng(1).permutation(t.num_rows))), p, seed=7)
    assert by_uid(whole) == by_uid(shuffled)
    h = sampling.uid_hash64(t.column("uid"))
    parts = [select_images(t.filter(pa.array(h % 3 == k)), p, seed=7)[0] for k in range(3)]
    assert by_uid(pa.concat_tables(parts)) == by_uid(whole)
    other, _ = select_images(t, p, seed=8)
    assert by_uid(other) != by_uid(whole)


def test_texts_in_canonical_order_and_choice_is_the_drawn_index():
    rows = [{"uid": "img", "text": tx, "url": "u", "lang": "en", "entry_ids": [0], "source": src, "row": r,
             "key": None} for tx, src, r in [("b", "/a", 0), ("a", "/b", 5), ("a", "/b", 2), ("a", "/a", 9)]]
    out, _ = select_images(table(rows), np.ones(1), seed=0)
    texts = out.column("texts")[0].as_py()
    assert [(x["text"]) for x in texts] == ["a", "a", "a", "b"]
    key = sampling.uid_hash64(["img"])
    i = int(sampling.choose_index(key, [4], seed=0)[0])
    canonical = [("a", "/a", 9), ("a", "/b", 2), ("a", "/b", 5), ("b", "/a", 0)]
    assert (out.column("source")[0].as_py(), out.column("row")[0].as_py()) == canonical[i][1:]


def test_hash_collision_keeps_images_apart():
    t = table([{"uid": u, "text": "x", "url": None, "lang": "en", "entry_ids": [0], "source": "/s", "row": r,
                "key": None} for r, u in enumerate(["a", "b", "a"])])
    t = t.append_column("uid_hash", pa.array([42, 42, 42], pa.uint64()))  # forced collision
    out, st = select_images(t, np.ones(1), seed=0)
    assert sorted(out.column("uid").to_pylist()) == ["a", "b"] and st.images == {"en": 2}
    assert {r["uid"]: len(r["texts"]) for r in out.to_pylist()} == {"a": 2, "b": 1}


def test_keep_all_returns_every_image_with_its_draw():
    t = synthetic(300, 20)
    p = np.full(20, 0.3)
    kept, _ = select_images(t, p, seed=1)
    everything, _ = select_images(t, p, seed=1, keep_all=True)
    assert everything.num_rows == len(set(t.column("uid").to_pylist()))
    flagged = everything.filter(everything.column("keep"))
    assert set(flagged.column("uid").to_pylist()) == set(kept.column("uid").to_pylist())


@pytest.mark.slow
def test_kept_matches_per_entry_within_4_sigma_of_exact_expectation():
    n_entries = 40
    t = synthetic(60000, n_entries, seed=3)
    counts = np.zeros(n_entries, np.int64)
    for ids in t.column("entry_ids").to_pylist():
        counts[ids] += 1
    p_entry = balance.count_to_prob(counts, 1500)
    out, st = select_images(t, p_entry, seed=11)
    # exact: per image, entry e is counted iff the chosen text holds e and the image is kept
    q = {}
    for uid, ids in zip(t.column("uid").to_pylist(), t.column("entry_ids").to_pylist()):
        q.setdefault(uid, []).append(ids)
    mean, var = np.zeros(n_entries), np.zeros(n_entries)
    for texts in q.values():
        qi = np.zeros(n_entries)
        for ids in texts:
            keep = 1 - np.prod(1 - p_entry[ids])
            qi[ids] += keep / len(texts)
        mean += qi
        var += qi * (1 - qi)
    observed = np.zeros(n_entries, np.int64)
    for ids in out.column("entry_ids").to_pylist():
        observed[ids] += 1
    assert np.array_equal(observed, st.counts_after)
    sigma = np.sqrt(var)
    ok = sigma > 0
    assert np.all(np.abs(observed[ok] - mean[ok]) <= 4 * sigma[ok]), (observed, mean, sigma)
    assert np.all(observed[~ok] == mean[~ok])
    assert (counts > 1500).sum() >= 3  # the test exercises head entries
    assert pc.all(out.column("keep")).as_py()
