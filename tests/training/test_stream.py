"""The global stream: the samples of each step depend on (seed, lanes, global batch), not on processes or workers."""
from __future__ import annotations

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
