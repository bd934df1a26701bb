"""The global sample stream: a function of (seed, lanes, pass, global sample index), not of the process layout.

The stream is built from `lanes` independent read streams. Lane l reads units l, l+lanes, … of each
pass (`data.pass_units` for `lanes` readers) with ShardStream's blocks, shuffles, online-curation draws
and decoding, so lane l's k-th kept sample depends only on (seed, pass, lane, k). Global step g takes
the next `global_batch / lanes` kept samples of every lane, in lane order: which samples make a step is
fixed by (seed, lanes, global batch) alone. Processes and DataLoader workers only decide who reads which
lane: rank r reads lanes [r L/N, (r+1) L/N), and its DataLoader worker w reads every W-th of those. Each
worker yields one bundle per step (empty when it owns no lane), so the loader's round-robin keeps the
bundles of a step together. A checkpoint records every lane's position after the step, a global state
that any layout whose process count divides `lanes` can continue exactly.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterator

import numpy as np
import torch

from core.errors import UserError
from training.data import Position, ShardStream, Source, Stats, _NoUsableSample


def default_lanes(world: int, workers: int, per_rank_samples: int) -> int:
    """processes x workers, reduced so that one step's samples per rank split evenly over a rank's lanes."""
    return world * math.gcd(max(workers, 1), per_rank_samples)


def layout_problem(lanes: int, global_batch: int, world: int) -> str:
    """Why `lanes` cannot serve this layout, or ""."""
    if lanes < 1:
        return f"--lanes {lanes}: must be at least 1"
    if lanes % world:
        return (f"the stream has {lanes} lanes, which {world} processes cannot split evenly; "
                f"use a process count that divides {lanes}")
    if global_batch % lanes:
        return (f"the global batch {global_batch} (batch size x processes x accum-freq) is not a multiple of the "
                f"stream's {lanes} lanes; change --batch-size or --accum-freq")
    return ""


@dataclass
class StreamState:
    """Global stream position: lanes, global batch, each lane's next read position, counters since the start."""

    lanes: int
    global_batch: int
    positions: dict = field(default_factory=dict)
    seen: int = 0
    dropped: int = 0
    corrupt: int = 0
    first_corrupt: str = ""
    caption_fallback: int = 0

    def merge(self, bundle: dict) -> None:
        """Take a step bundle's lane positions and counters."""
        self.positions.update({int(k): v for k, v in bundle["positions"].items()})
        s = bundle["stats"]
        self.seen += s["seen"]
        self.dropped += s["dropped"]
        self.corrupt += s["corrupt"]
        self.caption_fallback += s.get("caption_fallback", 0)
        self.first_corrupt = self.first_corrupt or s["first_corrupt"]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["positions"] = {str(k): v for k, v in sorted(self.positions.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StreamState":
        return cls(**{**d, "positions": {int(k): v for k, v in d["positions"].items()}})

    @classmethod
    def combine(cls, states: list[dict]) -> "StreamState":
        """One global state from every rank's: positions of disjoint lanes united, counters summed."""
        out = cls.from_dict(states[0])
        for d in states[1:]:
            other = cls.from_dict(d)
            out.positions.update(other.positions)
            out.seen, out.dropped = out.seen + other.seen, out.dropped + other.dropped
            out.corrupt += other.corrupt
            out.caption_fallback += other.caption_fallback
            out.first_corrupt = out.first_corrupt or other.first_corrupt
        return out

    def for_rank(self, rank: int) -> "StreamState":
        """This state with the counters kept on rank 0 only (they are summed over ranks)."""
        return self if rank == 0 else StreamState(self.lanes, self.global_batch, dict(self.positions))


class LaneStream(ShardStream):
    """One rank's share of the global stream; yields one bundle per step per DataLoader worker."""

    def __init__(self, sources: list[Source], tokenizer, image_size: int, state: StreamState, rank: int = 0,
                 world_size: int = 1, seed: int = 0, curation=None, shuffle_block: int = 1000, caption_mix=None):
        super().__init__(sources, tokenizer, state.global_batch // state.lanes, image_size, seed=seed, rank=0,
                         world_size=1, num_workers=state.lanes, curation=curation, shuffle_block=shuffle_block,
                         caption_mix=caption_mix)
        per_rank = state.lanes // world_size
        self.rank_lanes = list(range(rank * per_rank, (rank + 1) * per_rank))
        self.start_positions = {int(k): Position(**v) for k, v in state.positions.items()}

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        stats = Stats()
        lanes = self.rank_lanes[wid::nw]
        items = {lane: self._items(lane, self.start_positions.get(lane, Position()), stats) for lane in lanes}
        try:
            while True:
                yield self._bundle(items, stats)
        except _NoUsableSample as e:
            yield {"fatal": str(e)}  # a lane that cannot fill its share stops the whole step
        except UserError as e:
            yield {"fatal": str(e)}

    def _bundle(self, items: dict, stats: Stats) -> dict:
        """The next `batch_size` kept samples of each of this worker's lanes, collated, with lane ids and positions."""
        got, lane_ids, positions = [], [], {}
        for lane, it in items.items():
            n = 0
            while n < self.batch_size:
                item, pos = next(it)
                if item is not None:
                    got.append(item)
                    n += 1
            lane_ids += [lane] * n
            positions[lane] = asdict(pos)
        bundle = {"lanes": lane_ids, "positions": positions, "stats": stats.take(), "uids": [g[2] for g in got]}
        if got:
            images, texts, _ = zip(*got)
            bundle["input_ids"], bundle["attention_mask"] = self.tokenize(list(texts))
            bundle["images"] = torch.from_numpy(np.stack(images))
        return bundle


class StepReader:
    """Turns a loader over a LaneStream into steps: `accum` micro-batches of `batch_size` in lane order."""

    def __init__(self, batches: Iterator[dict], workers: int, batch_size: int, accum: int, state: StreamState):
        self.batches, self.bundles_per_step = batches, max(workers, 1)
        self.batch_size, self.accum, self.state = batch_size, accum, state

    def next_step(self) -> list[dict]:
        """This rank's micro-batches of the next step; the state then holds the positions after it."""
        bundles = [next(self.batches) for _ in range(self.bundles_per_step)]
        for b in bundles:
            self.state.merge(b)
        full = [b for b in bundles if b["uids"]]
        lanes = torch.tensor([lane for b in full for lane in b["lanes"]])
        order = torch.argsort(lanes, stable=True)
        cat = {k: torch.cat([b[k] for b in full])[order] for k in ("images", "input_ids", "attention_mask")}
        uids = [u for b in full for u in b["uids"]]
        cat["uids"] = [uids[i] for i in order.tolist()]
        n = self.batch_size
        return [{k: v[j * n:(j + 1) * n] for k, v in cat.items()} for j in range(self.accum)]
