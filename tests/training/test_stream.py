"""The global stream: the samples of each step depend on (seed, lanes, global batch), not on processes or workers."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.data import expand_sources, make_loader
from training.stream import LaneStream, StepReader, StreamState, default_lanes, layout_problem
from training.tokenizer import load_tokenizer

LANES, GLOBAL = 4, 8


def steps(spec, tokenizer_dir, world, workers, n, state=None, curation=None):
    """Per step: the uids of every rank in rank order (each rank's in lane order), and the global state after."""
    state = state or StreamState(LANES, GLOBAL)
    per_rank, out, states = GLOBAL // world, [[] for _ in range(n)], []
    for rank in range(world):
        mine = StreamState.from_dict(state.to_dict())
        ds = LaneStream(expand_sources(spec), load_tokenizer(tokenizer_dir), 32, mine, rank=rank, world_size=world,
                        seed=7, curation=curation, shuffle_block=10)
        reader = StepReader(iter(make_loader(ds, workers)), workers, per_rank, 1, mine)
        for k in range(n):
            out[k] += reader.next_step()[0]["uids"]
        states.append(mine.to_dict())
    return out, StreamState.combine(states)


@pytest.mark.parametrize("world,workers", [(1, 2), (2, 0), (2, 1), (4, 1)])
def test_every_layout_gives_the_same_steps(shards, tokenizer_dir, world, workers):
    ref, ref_state = steps(shards, tokenizer_dir, 1, 0, 5)
    got, state = steps(shards, tokenizer_dir, world, workers, 5)
    assert got == ref
    assert state.positions == ref_state.positions and state.seen == ref_state.seen
    assert len({u for s in ref for u in s}) == 40  # 5 steps x 8 distinct samples within the first pass


@pytest.mark.slow
def test_a_state_continues_under_another_layout(online_shards, tokenizer_dir):
    from training.data import load_curation

    curation = load_curation(expand_sources(online_shards), 7, t=2)
    straight, _ = steps(online_shards, tokenizer_dir, 2, 1, 6, curation=curation)
    first, state = steps(online_shards, tokenizer_dir, 2, 1, 3, curation=curation)
    rest, _ = steps(online_shards, tokenizer_dir, 1, 2, 3, state=state, curation=curation)
    assert first + rest == straight
    assert state.dropped > 0


def test_layout_problems_name_what_to_change():
    assert layout_problem(4, 8, 2) == ""
    assert "3 processes cannot split" in layout_problem(4, 12, 3)
    assert "--batch-size or --accum-freq" in layout_problem(4, 6, 2)
    assert default_lanes(2, 2, 4) == 4 and default_lanes(1, 3, 4) == 1 and default_lanes(2, 0, 5) == 2


def _batches(spec, tokenizer_dir, n: int, cache: bool) -> list[dict]:
    """n steps of 8 samples from one lane; without `cache`, every image is decoded and every text tokenised anew."""
    from training.data import DecodedImages, RawSamples
    from training.tokenizer import TokenCache

    state = StreamState(1, 8)
    ds = LaneStream(expand_sources(spec), load_tokenizer(tokenizer_dir), 32, state, seed=7, shuffle_block=10)
    if not cache:
        ds.decoded, ds.tokenize = DecodedImages(32, limit=0), TokenCache(ds.tokenizer, limit=0)
        ds.raw_samples = RawSamples(limit=0)
    reader = StepReader(iter(make_loader(ds, 0)), 0, 8, 1, state)
    out = [reader.next_step()[0] for _ in range(n)]
    assert state.seen == 8 * n
    assert bool(ds.raw_samples.units) == bool(ds.decoded.images) == cache  # the small shards fit: kept
    return out


def test_samples_images_and_token_rows_kept_between_passes_change_no_batch(shards, tokenizer_dir):
    got, want = (_batches(shards, tokenizer_dir, 30, cache) for cache in (True, False))  # 240 samples: 2.5 passes
    for a, b in zip(got, want):
        assert a["uids"] == b["uids"]
        for k in ("images", "input_ids", "attention_mask"):
            assert a[k].dtype == b[k].dtype and a[k].equal(b[k]), k


def test_decoded_images_are_kept_up_to_the_limit():
    import io

    from PIL import Image

    from training.data import DecodedImages

    buf = io.BytesIO()
    Image.new("RGB", (80, 64), (200, 10, 30)).save(buf, format="JPEG")
    kept, none = DecodedImages(32), DecodedImages(32, limit=40 * 32 * 3 - 1)
    first = kept.get(("a.tar", "0"), buf.getvalue())
    assert first.size == (40, 32) and first.mode == "RGB"  # decoded at half scale: still covers 32 pixels
    assert kept.get(("a.tar", "0"), b"") is first and kept.size == 40 * 32 * 3
    none.get(("a.tar", "0"), buf.getvalue())
    assert none.images == {} and none.size == 0


def test_raw_samples_of_a_damaged_unit_are_read_again_and_damage_told_each_time(tmp_path):
    import tarfile

    from shard_factory import write_shards
    from training.data import RawSamples, Stats, Unit

    whole, cut = expand_sources(write_shards(tmp_path / "c", 2, 6))[0].urls
    with tarfile.open(cut) as tar:
        offset = tar.getmembers()[7].offset
    Path(cut).write_bytes(Path(cut).read_bytes()[:offset + 100])
    raw, stats = RawSamples(), Stats()
    first = list(raw.read(Unit(whole), stats))
    assert len(first) == 6 and list(raw.read(Unit(whole), stats)) == first and stats.corrupt == 0
    assert [len(list(raw.read(Unit(cut), stats))) for _ in range(2)] == [2, 2] and stats.corrupt == 2
    assert list(raw.units) == [(whole, 0, 1)]


def test_only_local_shards_that_fit_are_kept(shards, tmp_path):
    import math

    from training.data import RAW_CACHE_BYTES, Source, _shard_bytes

    sources = expand_sources(shards)
    size = sum(Path(u).stat().st_size for u in sources[0].urls)
    assert 0 < _shard_bytes(sources) == size < RAW_CACHE_BYTES
    assert _shard_bytes([*sources, Source(["s3://bucket/00000.tar"])]) == math.inf
