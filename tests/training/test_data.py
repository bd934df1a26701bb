"""Data stream: shard specs, coverage and determinism, online curation draws, bad samples."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import UserError
from curation.sampling import STREAM_CHOICE, STREAM_KEEP, keep_probability, uid_hash64, uniform
from shard_factory import write_shards
from training.data import Curation, ShardStream, Unit, expand_sources, load_curation, make_loader, read_raw
from training.tokenizer import load_tokenizer


def stream(spec, tokenizer_dir, workers=0, batch=4, curation=None, seed=0, block=10, rank=0, world=1, start=None):
    src = expand_sources(spec)
    ds = ShardStream(src, load_tokenizer(tokenizer_dir), batch, 32, seed=seed, rank=rank, world_size=world,
                     num_workers=workers, curation=curation, start=start, shuffle_block=block)
    return iter(make_loader(ds, workers))


def all_uids(spec):
    return [json.loads(r["json"])["uid"] for s in expand_sources(spec) for u in s.urls for r in read_raw(Unit(u))]


def test_missing_shards_and_bad_weights_are_user_errors(tmp_path, shards):
    with pytest.raises(UserError, match="not found"):
        expand_sources(str(tmp_path / "{00000..00003}.tar"))
    with pytest.raises(UserError, match="shards-weights"):
        expand_sources(shards + "::" + shards, "1")
    assert [len(s.urls) for s in expand_sources(shards + "::" + shards, "1::2")] == [4, 4]


def small_source_share(tmp_path, weights, passes=4000):
    """Share of shard draws going to a 1-shard source next to a 9-shard one, over `passes` passes."""
    from training.data import pass_units

    for name in [f"big{i}.tar" for i in range(9)] + ["small0.tar"]:
        (tmp_path / name).touch()
    sources = expand_sources(f"{tmp_path}/big{{0..8}}.tar::{tmp_path}/small0.tar", weights)
    units = [u.url for k in range(passes) for u in pass_units(sources, 0, k, 1)]
    return sum(u.endswith("small0.tar") for u in units) / len(units)


@pytest.mark.parametrize("weights, share", [(None, 0.1), ("1::1", 0.1), ("1::1.0001", 0.1), ("2::2", 0.1),
                                            ("1::9", 0.5), ("2::1", 1 / 19), ("1::0.5", 0.5 / 9.5),
                                            ("0.1::1", 1 / 1.9)])
def test_shards_weights_are_openclip_upsampling_factors(tmp_path, weights, share):
    assert small_source_share(tmp_path, weights) == pytest.approx(share, abs=0.01)


def test_weights_sample_with_replacement_and_reject_non_finite(tmp_path):
    from training.data import pass_units

    for name in ("a.tar", "b.tar"):
        (tmp_path / name).touch()
    spec = f"{tmp_path}/a.tar::{tmp_path}/b.tar"
    draws = [tuple(u.url for u in pass_units(expand_sources(spec, "1::1"), 0, k, 1)) for k in range(50)]
    assert any(len(set(d)) == 1 for d in draws)  # resampled, as OpenCLIP's --dataset-resampled
    for bad in ("1::inf", "1::nan", "1::-1", "1::0"):
        with pytest.raises(UserError, match="positive finite"):
            expand_sources(spec, bad)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_one_pass_covers_every_sample_once_and_is_deterministic(shards, tokenizer_dir, workers):
    def first_pass():
        it, got = stream(shards, tokenizer_dir, workers=workers, batch=1), []
        for _ in range(150):
            b = next(it)
            if b["position"]["pass_index"] == 0:
                got += b["uids"]
        return got

    a = first_pass()
    assert sorted(a) == sorted(all_uids(shards)) and len(a) == 96
    assert a == first_pass()
    assert a != sorted(a)  # shuffled


def test_ranks_split_the_pass(shards, tokenizer_dir):
    seen = []
    for rank in range(2):
        it = stream(shards, tokenizer_dir, batch=1, rank=rank, world=2)
        seen.append({u for b in (next(it) for _ in range(60)) if b["position"]["pass_index"] == 0 for u in b["uids"]})
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(all_uids(shards))


@pytest.mark.slow
def test_online_decisions_follow_the_formula():
    rng = np.random.default_rng(0)
    n_entries = 6
    p_entry = np.array([1.0, 0.5, 0.2, 0.05, 0.8, 0.3])
    cur = Curation(p_entry=p_entry, seed=3)
    uids = [f"img{i}" for i in range(40000)]
    texts = [[[f"t{k}", "en", sorted(set(rng.integers(0, n_entries, rng.integers(1, 3)).tolist()))]
              for k in range(rng.integers(1, 4))] for _ in uids]
    keep, choice = cur.decide(uids, texts, epoch=2)
    keys = uid_hash64(uids)
    n = np.array([len(t) for t in texts])
    assert (choice == np.floor(uniform(keys, 3, 2, STREAM_CHOICE) * n).astype(int)).all()
    ents = [texts[i][choice[i]][2] for i in range(len(uids))]
    off = np.concatenate([[0], np.cumsum([len(e) for e in ents])])
    prob = keep_probability(off, np.concatenate(ents), p_entry)
    assert (keep == (uniform(keys, 3, 2, STREAM_KEEP) < prob)).all()
    single = np.array([len(e) == 1 for e in ents])
    for e in range(n_entries):  # statistically: single-entry texts kept at rate p_e
        sel = single & np.array([e in x for x in ents])
        assert abs(keep[sel].mean() - p_entry[e]) < 4 * np.sqrt(p_entry[e] * (1 - p_entry[e]) / sel.sum()) + 1e-9
    keep3, _ = cur.decide(uids, texts, epoch=3)
    assert (keep3 != keep).any()  # a fresh draw each epoch


@pytest.mark.slow
def test_online_stream_keeps_the_formula_set_for_any_worker_count(online_shards, tokenizer_dir):
    cur = load_curation(expand_sources(online_shards), seed=0)
    assert cur is not None
    metas = [json.loads(r["json"]) for s in expand_sources(online_shards) for u in s.urls for r in read_raw(Unit(u))]
    keep, choice = cur.decide([m["uid"] for m in metas], [m["texts"] for m in metas], epoch=0)
    expected = {m["uid"]: m["texts"][c][0] for m, k, c in zip(metas, keep, choice) if k}
    assert 0 < len(expected) < len(metas)
    for workers in (0, 2):
        it, got = stream(online_shards, tokenizer_dir, workers=workers, batch=1, curation=cur), {}
        dropped = 0
        for _ in range(2 * len(metas)):
            b = next(it)
            if b["position"]["pass_index"] == 0:
                got.update(zip(b["uids"], b["input_ids"].tolist()))
                dropped += b["stats"]["dropped"]
        assert got.keys() == expected.keys(), workers
    tok = load_tokenizer(tokenizer_dir)
    uid = next(iter(expected))
    assert got[uid][:5] == tok(expected[uid], max_length=77, truncation=True, padding="max_length")["input_ids"][:5]


def test_curation_t_changes_probabilities(online_shards):
    src = expand_sources(online_shards)
    low, high = load_curation(src, 0, t=5).p_entry, load_curation(src, 0, t=1000).p_entry
    assert (low <= high).all() and (low < high).any() and (high == 1).all()


def test_curation_t_without_online_set_is_an_error(shards):
    with pytest.raises(UserError, match="online"):
        load_curation(expand_sources(shards), 0, t=5)


def test_corrupt_empty_and_huge_samples(tmp_path, tokenizer_dir):
    extra = {1: {"png": b"not an image"}, 2: {"txt": "red " * 2500, "json": None}, 5: {"json": "{broken"}}
    curated = tmp_path / "c"
    spec = write_shards(curated, 2, 6,
                        extra={k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in extra.items()})
    import webdataset as wds
    with wds.TarWriter(str(curated / "shards" / "00002.tar")):
        pass  # an empty shard
    spec = str(curated / "shards" / "{00000..00002}.tar")
    it, got, corrupt, first = stream(spec, tokenizer_dir, batch=1), [], 0, ""
    for _ in range(40):
        b = next(it)
        if b["position"]["pass_index"] == 0:
            got += b["uids"]
            corrupt += b["stats"]["corrupt"]
            first = first or b["stats"]["first_corrupt"]
    assert sorted(got) == sorted(f"u{i:06d}" for i in range(12) if i not in (1, 5))
    assert corrupt == 2 and "0000" in first and "key" in first


# ---- malformed user data: counted and skipped, or one clear line ------------------------------------------------

BAD_JSON = {  # sample index -> members that make it unusable
    1: {"json": "{broken"},
    2: {"json": json.dumps({"uid": "u000002", "texts": "a red square"})},
    3: {"json": json.dumps({"uid": "u000003", "texts": [["a red square", "en", [10 ** 6]]]})},
    4: {"json": json.dumps({"uid": "u000004", "texts": [["a red square", "en"]]})},
    5: {"json": json.dumps({"uid": "u000005", "texts": [["a red square", "en", [-1]]]})},
    6: {"json": "[" * 100_000},
    7: {"json": b'{"uid": "u\xff\xfe"}'},
}


def one_pass(spec, tokenizer_dir, curation=None):
    """(uids, corrupt messages) of exactly one pass of a 1-worker stream, sample by sample."""
    from training.data import Position, Stats

    ds = ShardStream(expand_sources(spec), load_tokenizer(tokenizer_dir), 1, 32, curation=curation, shuffle_block=10)
    stats, uids, bad = Stats(), [], []
    for item, pos in ds._items(0, Position(), stats):
        if pos.pass_index > 0:
            break
        if item is not None:
            uids.append(item[2])
        if stats.corrupt:
            bad.append(stats.take()["first_corrupt"])
    return uids, bad


def test_malformed_json_and_texts_are_counted_and_skipped(tmp_path, tokenizer_dir):
    spec = write_shards(tmp_path / "c", 2, 8, n_texts=2, online=True, t=20, extra=BAD_JSON)
    cur = load_curation(expand_sources(spec), 0, t=10 ** 6)  # keeps every well-formed sample
    uids, bad = one_pass(spec, tokenizer_dir, cur)
    assert sorted(uids) == [f"u{i:06d}" for i in range(16) if i not in BAD_JSON]
    assert len(bad) == len(BAD_JSON) and all("00000.tar key " in b for b in bad), bad
    assert sum("not a list" in b for b in bad) == 1 and sum("entry_id 1000000" in b for b in bad) == 1
    assert sum("entry_id -1" in b for b in bad) == 1 and sum("[text, lang, entry_ids]" in b for b in bad) == 1
    it, got = stream(spec, tokenizer_dir, workers=2, batch=2, curation=cur), set()
    for _ in range(12):  # and in DataLoader workers: no exception, never a bad sample
        got.update(next(it)["uids"])
    assert got and not got & {f"u{i:06d}" for i in BAD_JSON}


def test_txt_that_is_not_utf8_is_counted_and_skipped(tmp_path, tokenizer_dir):
    spec = write_shards(tmp_path / "c", 1, 6, extra={2: {"txt": b"a red \xff\xfe square"}})
    uids, bad = one_pass(spec, tokenizer_dir)
    assert sorted(uids) == [f"u{i:06d}" for i in range(6) if i != 2]
    assert len(bad) == 1 and "key 00000002" in bad[0] and "not UTF-8" in bad[0], bad


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg and "DataLoader worker" not in msg, msg
    return msg


@pytest.mark.parametrize("workers", [0, 2])
def test_shard_gone_after_start_is_one_clear_error(tmp_path, tokenizer_dir, workers):
    spec = write_shards(tmp_path / "c", 2, 8)
    it = stream(spec, tokenizer_dir, workers=workers)
    gone = tmp_path / "c" / "shards" / "00001.tar"
    gone.unlink()
    with pytest.raises(UserError) as e:
        for _ in range(20):
            next(it)
    msg = one_line_error(e)
    assert str(gone) in msg and "cannot open" in msg and "restore" in msg


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_no_usable_sample_is_one_clear_error(tmp_path, tokenizer_dir, workers):
    spec = write_shards(tmp_path / "c", 2, 4, extra={i: {"json": "{broken"} for i in range(8)})
    with pytest.raises(UserError) as e:
        next(stream(spec, tokenizer_dir, workers=workers))
    msg = one_line_error(e)
    assert "no usable sample" in msg and "shards/0000" in msg and "invalid .json" in msg


@pytest.mark.slow
def test_train_skips_malformed_samples_read_by_workers(tmp_path, tokenizer_dir):
    import re
    import subprocess
    import sys

    spec = write_shards(tmp_path / "c", 2, 8, n_texts=2, online=True, t=20, extra=BAD_JSON)
    r = subprocess.run([sys.executable, "-m", "training.cli", "--shards", spec, "--tokenizer", str(tokenizer_dir),
                        "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4", "--workers", "2",
                        "--curation-t", "1000000"], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert int(re.search(r"(\d+) corrupt\)", r.stderr).group(1)) >= 1, r.stderr[-1000:]


def test_count_samples_of_a_shard_cut_at_a_member_boundary_names_shard_and_offset(tmp_path):
    """tarfile reads a tar cut between two members as a clean, shorter archive: the --epochs count said nothing."""
    import tarfile

    from training.data import count_samples

    spec = write_shards(tmp_path / "c", 2, 6)
    whole = expand_sources(spec)[0].urls
    assert count_samples(whole) == 12
    cut = tmp_path / "c" / "shards" / "00001.tar"
    with tarfile.open(cut) as tar:
        offset = tar.getmembers()[4].offset
    cut.write_bytes(cut.read_bytes()[:offset])
    with pytest.raises(UserError) as e:
        count_samples(whole)
    msg = one_line_error(e)
    assert msg.startswith(f"--shards: {cut}: damaged after byte {offset} ") and "--steps" in msg
    assert count_samples(whole, at_most=6) == 6  # found in the whole first shard: the cut one is not read


def test_count_samples_stops_at_most_at_the_limit(tmp_path):
    from training.data import count_samples

    whole = expand_sources(write_shards(tmp_path / "c", 2, 6))[0].urls
    assert [count_samples(whole, at_most=k) for k in (1, 5, 7, 12, 13, 100)] == [1, 5, 7, 12, 12, 12]


def test_a_damaged_eval_shard_names_the_flag_that_gave_it(tmp_path):
    """The raw reader's hint names --data / --eval-data for evaluation data, not --shards."""
    from training.eval_data import open_source

    spec = write_shards(tmp_path / "c", 1, 6)
    shard = tmp_path / "c" / "shards" / "00000.tar"
    shard.write_bytes(shard.read_bytes()[:1500])
    for flag in ("--data", "--eval-data"):
        with pytest.raises(UserError) as e:
            list(open_source(spec, flag=flag).records())
        msg = one_line_error(e)
        assert str(shard) in msg and msg.endswith(f"restore it or leave it out of {flag}"), msg
    with pytest.raises(UserError) as e:
        list(read_raw(Unit(str(shard))))
    assert one_line_error(e).endswith("leave it out of --shards")
