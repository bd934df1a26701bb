"""Training data: a deterministic, resumable WebDataset stream with online curation.

Stream model. Each *pass* over the shard set (the online-curation epoch) orders the shards by
(seed, pass): a permutation, or with `--shards-weights` a draw with replacement in which each shard's
chance is its source's weight (OpenCLIP's upsampling factors with --dataset-resampled: `1::1` samples
the sources in proportion to their shard counts, `1::10` gives the second source's shards ten times
the chance). The pass's shards are split into *units* dealt round-robin to the global
workers (rank x DataLoader worker); a unit is a shard, or a 1/k slice of one by sample index when
there are fewer shards than workers. A worker reads its units in blocks of `shuffle_block` raw
samples, permutes each block by (seed, pass, unit, block), and for online curation draws the text
choice and keep decision per image with `curation.sampling` seeded by (seed, pass, uid). Images are
decoded in the worker only for kept samples. Every batch carries its worker's position
(pass, unit, block offset, items consumed), so a checkpoint can restart each worker exactly there.
Workers never run dry: after a pass comes the next, so ranks stay in lockstep for DDP (a worker
whose shards yield no usable sample for 3 passes ends its stream instead of spinning).
"""
from __future__ import annotations

import io
import json
import math
import re
import tarfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import braceexpand
import numpy as np
import torch
from PIL import Image
from webdataset.tariterators import group_by_keys

from core import storage
from core.errors import UserError
from core.tars import TarDamaged
from core.tars import members as tar_members
from curation.curated import curated_folder, online_conf, online_curation
from curation.sampling import draw, uid_hash64
from training.tokenizer import TOKEN_CACHE_TEXTS, TokenCache
from training.transforms import train_crop

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
SHUFFLE_BLOCK = 1000
DECODED_CACHE_BYTES = 128 << 20  # per DataLoader worker
RAW_CACHE_BYTES = 256 << 20  # per DataLoader worker


# ---------------------------------------------------------------- shard specs


@dataclass
class Source:
    """One `::`-separated part of --shards: its expanded shard paths and per-shard sampling weight
    (None: no --shards-weights)."""

    urls: list[str]
    weight: float | None = None


def expand_sources(spec: str, weights: str | None = None) -> list[Source]:
    """Brace-expand each `::` part of --shards; UserError for missing files or a bad --shards-weights."""
    parts = [p for p in spec.split("::") if p.strip()]
    if not parts:
        raise UserError("--shards is empty; give e.g. 'CURATED/shards/{00000..00009}.tar'")
    ws: list[float | None] = [None] * len(parts)
    if weights:
        try:
            ws = [float(w) for w in weights.split("::")]
        except ValueError as e:
            raise UserError(f"--shards-weights {weights!r}: give numbers joined with '::', "
                            "one per --shards part") from e
        if len(ws) != len(parts) or not all(0 < w < math.inf for w in ws):
            raise UserError(f"--shards-weights {weights!r}: need {len(parts)} positive finite numbers joined with "
                            "'::' (one per --shards part)")
    sources = []
    for part, w in zip(parts, ws):
        urls = list(braceexpand.braceexpand(part.strip()))
        if storage.is_local(part):
            missing = [u for u in urls if not storage.local_path(u).is_file()]
        else:
            missing = missing_objects(urls)
        if missing:
            raise UserError(f"--shards: {len(missing)} of {len(urls)} shard files not found, first {missing[0]}; "
                            "check the path and the {a..b} range")
        sources.append(Source(urls, w))
    return sources


def missing_objects(urls: list[str]) -> list[str]:
    """The URLs that are not objects in the store (one listing per folder, not one request per shard)."""
    present: set[str] = set()
    for folder in sorted({storage.parent(u) for u in urls}):
        with storage.errors(folder, "--shards"):
            present.update(storage.normalize(f) for f in storage.list_files(folder))
    return [u for u in urls if storage.normalize(u) not in present]


def count_samples(urls: list[str], at_most: int | None = None) -> int:
    """Number of samples (distinct keys) in the shards, from tar headers only (core.tars: a shard cut
    anywhere, also at a member boundary, is a UserError naming it and the byte offset, never a short count);
    with `at_most`, reading stops once that many are found and `at_most` is returned."""
    n = 0
    for url in urls:
        keys = set()
        try:
            with storage.open_input(url) as f:
                for m, _ in tar_members(f, lambda m: False):
                    keys.add(m.name.rsplit("/", 1)[-1].split(".", 1)[0])
                    if at_most is not None and n + len(keys) >= at_most:
                        return at_most
        except TarDamaged as e:
            raise UserError(f"--shards: {url}: {e}; its samples cannot be counted for --epochs: restore the shard "
                            "or leave it out of --shards, or train with --steps (a damaged shard's samples are then "
                            "skipped and counted as corrupt)") from e
        n += len(keys)
    return n


# ---------------------------------------------------------------- online curation


@dataclass
class Curation:
    """Online curation parameters: p_e per entry_id and the draw seed."""

    p_entry: np.ndarray
    seed: int
    source: str = ""

    def decide(self, uids: list[str], texts: list[list], epoch: int,
               keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(keep bool[n], chosen text index int[n]) for images with their matched texts: curation.sampling.draw,
        the draw of `curate balance`, on the texts in the order the sample's .json lists them (canonical)."""
        keys = uid_hash64(uids) if keys is None else keys

        def chosen_entries(choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ents = [list(t[c][2]) if t else [] for t, c in zip(texts, choice)]
            offsets = np.zeros(len(ents) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum([len(e) for e in ents])
            flat = np.fromiter((e for es in ents for e in es), dtype=np.int64, count=int(offsets[-1]))
            valid = flat < len(self.p_entry)
            if not valid.all():
                bad = int(flat[~valid][0])
                raise ValueError(f"entry_id {bad} in {self.source} is beyond the {len(self.p_entry)} entries of "
                                 "curation.json's counts")
            return offsets, flat

        n_texts = np.array([max(len(t), 1) for t in texts], dtype=np.int64)
        choice, keep = draw(keys, n_texts, chosen_entries, self.p_entry, self.seed, epoch)
        return keep, choice


def load_curation(sources: list[Source], seed: int, t: float | None = None) -> Curation | None:
    """Curation from `<shards dir>/../curation.json` when it says online (all sources must agree)."""
    confs = []
    for s in sources:
        folder = curated_folder(s.urls[0])
        confs.append((folder, online_conf(folder)))
    online = [c for c in confs if c[1] is not None]
    if not online:
        if t is not None:
            raise UserError("--curation-t needs a shard set written with `curate balance --online` "
                            "(its curation.json says online)")
        return None
    if len(online) != len(confs) or len({str(c[0]) for c in online}) > 1:
        raise UserError("--shards mixes online-curated and other shard sets; "
                        "train on one `curate balance --online` output")
    found = online_curation(*online[0], t=t)
    return Curation(p_entry=found.p_entry, seed=seed if found.seed is None else found.seed, source=found.folder)


# ---------------------------------------------------------------- the stream


@dataclass
class Unit:
    """A shard, or the `part`-th of `parts` interleaved slices of it."""

    url: str
    part: int = 0
    parts: int = 1


def pass_units(sources: list[Source], seed: int, pass_index: int, n_workers: int) -> list[Unit]:
    """The ordered units of one pass, for n_workers global workers."""
    urls = [u for s in sources for u in s.urls]
    rng = np.random.default_rng([seed, pass_index, 0x5A4D])
    if any(s.weight is not None for s in sources):
        w = np.concatenate([np.full(len(s.urls), s.weight) for s in sources])
        order = rng.choice(len(urls), size=len(urls), replace=True, p=w / w.sum())
    else:
        order = rng.permutation(len(urls))
    parts = -(-n_workers // len(urls))
    return [Unit(urls[i], k, parts) for i in order for k in range(parts)]


_WDS_META = re.compile(r"__[^/]*__($|/)")  # members webdataset's tar reader skips


def read_raw(unit: Unit, on_damage: Callable[[str], None] | None = None,
             flag: str = "--shards") -> Iterator[dict[str, Any]]:
    """Raw samples {__key__, ext: bytes} of a unit, in tar order (webdataset's tar reader and grouping).

    A truncated or corrupt tar ends the unit after its last whole sample: `on_damage(message)` is told
    (the trainer counts it as corrupt), or, without it, a UserError names the shard. A shard that cannot
    be opened at all (gone, unreadable) is always a UserError. `flag` is the flag that named the shard
    (--shards, or --data / --eval-data for evaluation data), for the hint in those errors.
    """
    i = -1
    try:
        f = open(storage.local_path(unit.url), "rb") if storage.is_local(unit.url) else storage.open_input(unit.url)
    except OSError as e:
        raise UserError(f"{unit.url}: cannot open this shard ({e.strerror or e}); "
                        f"restore it or leave it out of {flag}") from e
    except UserError as e:
        raise UserError(f"{e}; restore it or leave it out of {flag}") from e
    try:
        with f:
            files = ({"fname": m.name, "data": data, "__url__": unit.url}
                     for m, data in tar_members(f, lambda m: not _WDS_META.match(m.name)) if data is not None)
            for i, sample in enumerate(group_by_keys(files)):
                if i % unit.parts == unit.part:
                    yield sample
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        message = (f"{unit.url}: cannot read this WebDataset shard "
                   f"(damaged after sample {i + 1}: {type(e).__name__}: {e})")
        if on_damage is None:
            raise UserError(f"{message}; restore it or leave it out of {flag}") from e
        on_damage(message + "; rest of the shard skipped")


@dataclass
class Stats:
    """Per-worker counters since the last batch; summed by the trainer."""

    seen: int = 0
    dropped: int = 0
    corrupt: int = 0
    first_corrupt: str = ""
    caption_fallback: int = 0  # --caption-mix drew a source the sample lacks: alt-text used

    def take(self) -> dict:
        """The counters as a dict, then zeroed (the generator keeps this same object)."""
        out = vars(self).copy()
        self.seen = self.dropped = self.corrupt = self.caption_fallback = 0
        self.first_corrupt = ""
        return out

    def bad(self, where: str) -> None:
        self.corrupt += 1
        self.first_corrupt = self.first_corrupt or where


def _shard_bytes(sources: list[Source]) -> float:
    """Bytes of all shard files, or infinity when one is not a local file (its size is not asked for)."""
    urls = [u for s in sources for u in s.urls]
    if not all(storage.is_local(u) for u in urls):
        return math.inf
    return sum(storage.local_path(u).stat().st_size for u in urls)


class RawSamples:
    """read_raw of units, the samples of a unit read to its end without damage kept (up to `limit` bytes of
    members) for the next pass over it: no tar header is parsed, no .json decoded twice."""

    def __init__(self, limit: int = RAW_CACHE_BYTES):
        self.limit, self.size = limit, 0
        self.units: dict[tuple[str, int, int], list[dict]] = {}

    def read(self, unit: Unit, stats: Stats) -> Iterator[dict[str, Any]]:
        """The raw samples of `unit`; damage is told to `stats` as read_raw tells it."""
        where = (unit.url, unit.part, unit.parts)
        if where in self.units:
            yield from self.units[where]
            return
        damaged, kept, size = [], [], 0

        def on_damage(message: str) -> None:
            damaged.append(message)
            stats.bad(message)

        for raw in read_raw(unit, on_damage):
            size += sum(len(v) for v in raw.values() if isinstance(v, bytes))
            kept.append(raw)
            yield raw
        if not damaged and self.size + size <= self.limit:
            self.units[where], self.size = kept, self.size + size


class DecodedImages:
    """Decoded RGB images (JPEG decoded at the smallest DCT scale that still covers `image_size`) by sample, kept up
    to `limit` bytes of pixels: a later pass over the same shards crops them again without decoding them again."""

    def __init__(self, image_size: int, limit: int = DECODED_CACHE_BYTES):
        self.image_size, self.limit, self.size = image_size, limit, 0
        self.images: dict[tuple[str, str], Image.Image] = {}

    def get(self, where: tuple[str, str], data: bytes) -> Image.Image:
        """The decoded image of the sample at `where` (shard, key) whose image bytes are `data`."""
        image = self.images.get(where)
        if image is None:
            with Image.open(io.BytesIO(data)) as im:
                im.draft("RGB", (self.image_size, self.image_size))
                image = im.convert("RGB")
            size = image.width * image.height * 3
            if self.size + size <= self.limit:
                self.images[where], self.size = image, self.size + size
        return image


@dataclass
class Position:
    """Where a worker resumes: pass, unit index in the pass, block start (in-unit index), items consumed."""

    pass_index: int = 0
    unit: int = 0
    offset: int = 0
    consumed: int = 0


class ShardStream(torch.utils.data.IterableDataset):
    """Infinite stream of collated batches; see the module docstring for the order and determinism.

    A batch: images uint8 [B, H, W, 3] (normalise on the device with transforms.normalize), input_ids and
    attention_mask [B, 77], uids, the producing worker, its position after the batch, and counters.
    """

    def __init__(self, sources: list[Source], tokenizer, batch_size: int, image_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0, curation: Curation | None = None,
                 start: dict | None = None, shuffle_block: int = SHUFFLE_BLOCK, caption_mix=None):
        self.caption_mix = caption_mix  # training.caption_mix.CaptionMix or None
        self.sources, self.tokenizer, self.batch_size, self.image_size = sources, tokenizer, batch_size, image_size
        fits = _shard_bytes(sources) <= RAW_CACHE_BYTES  # only then does a later pass find what was kept
        self.tokenize = TokenCache(tokenizer, limit=TOKEN_CACHE_TEXTS if fits else 0)
        self.decoded = DecodedImages(image_size, DECODED_CACHE_BYTES if fits else 0)
        self.raw_samples = RawSamples(RAW_CACHE_BYTES if fits else 0)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.num_workers = max(num_workers, 1)
        self.curation, self.shuffle_block = curation, shuffle_block
        start = start or {}
        self.batches_done = int(start.get("batches", 0))
        self.positions = {int(k): Position(**v) for k, v in start.get("workers", {}).items()}

    def _logical_worker(self) -> int:
        info = torch.utils.data.get_worker_info()
        local = info.id if info is not None else 0
        return (local + self.batches_done) % self.num_workers

    def __iter__(self) -> Iterator[dict]:
        worker = self._logical_worker()
        pos = self.positions.get(worker, Position())
        items: list[tuple[torch.Tensor, str, str]] = []
        stats = Stats()
        try:
            for item, pos in self._items(worker, pos, stats):
                if item is not None:
                    items.append(item)
                if len(items) == self.batch_size:
                    yield self._collate(items, worker, pos, stats)
                    items = []
        except _NoUsableSample as e:
            yield {"ended": str(e)}  # the loader goes on with the other workers; `checked` reports if all end
        except UserError as e:
            yield {"fatal": str(e)}  # a DataLoader worker's exception would reach the user as a traceback

    def _collate(self, items, worker: int, pos: Position, stats: Stats) -> dict:
        images, texts, uids = zip(*items)
        ids, mask = self.tokenize(list(texts))
        return {"images": torch.from_numpy(np.stack(images)), "input_ids": ids, "attention_mask": mask,
                "uids": list(uids), "worker": worker, "position": vars(pos).copy(), "stats": stats.take()}

    def _items(self, worker: int, pos: Position, stats: Stats):
        """(item or None, position after it) forever, starting at `pos`."""
        global_worker = self.rank * self.num_workers + worker
        n_global = self.world_size * self.num_workers
        pass_index, unit_index, offset, consumed = pos.pass_index, pos.unit, pos.offset, pos.consumed
        empty_passes = 0
        while True:
            units = pass_units(self.sources, self.seed, pass_index, n_global)
            mine = list(range(global_worker, len(units), n_global))
            got_any = False
            for u in [u for u in mine if u >= unit_index]:
                for block_start, block in self._blocks(units[u], offset, stats):
                    order = np.random.default_rng([self.seed, pass_index, u, block_start]).permutation(len(block))
                    decisions = self._decide(block, pass_index)
                    for j in range(consumed, len(block)):
                        raw, keep, text = block[order[j]], *decisions[order[j]]
                        stats.seen += 1
                        item = self._decode(raw, keep, text, pass_index, units[u].url, stats)
                        got_any = got_any or item is not None
                        yield item, Position(pass_index, u, block_start, j + 1)
                    consumed = 0
                offset = 0
            empty_passes = 0 if got_any else empty_passes + 1
            if empty_passes >= 3:
                shards = sorted({units[u].url for u in mine})
                raise _NoUsableSample(
                    f"{', '.join(shards[:3])}{' ...' if len(shards) > 3 else ''}: no usable sample in 3 passes "
                    f"({stats.corrupt} corrupt, first: {stats.first_corrupt or 'none'}); "
                    "fix or leave out these shards (or use a larger --curation-t)")
            pass_index, unit_index, offset, consumed = pass_index + 1, 0, 0, 0

    def _blocks(self, unit: Unit, offset: int, stats: Stats):
        """(block start, raw samples) blocks of a unit from `offset` (earlier samples are read, not decoded)."""
        block, start = [], offset
        for i, raw in enumerate(self.raw_samples.read(unit, stats)):
            if i < offset:
                continue
            block.append(raw)
            if len(block) == self.shuffle_block:
                yield start, block
                block, start = [], i + 1
        if block:
            yield start, block

    def _decide(self, block: list[dict], epoch: int) -> list[tuple[bool, str | None]]:
        """(keep, caption) per raw sample: the online draw, or keep all with their .txt."""
        n_entries = None if self.curation is None else len(self.curation.p_entry)
        metas = [usable_meta(raw, n_entries) for raw in block]
        have = [i for i, m in enumerate(metas) if m is not None]
        keys = uid_hash64([str(metas[i]["uid"]) for i in have])
        for i, k in zip(have, keys):
            block[i]["__uid_key__"] = int(k)
        if self.curation is None:
            return [(True, None)] * len(block)
        ok = [j for j, i in enumerate(have) if metas[i].get("texts")]
        out: list[tuple[bool, str | None]] = [(True, None)] * len(block)
        if ok:
            ok_keys = keys[ok]
            ok = [have[j] for j in ok]
            ok_uids = [str(metas[i]["uid"]) for i in ok]
            keep, choice = self.curation.decide(ok_uids, [metas[i]["texts"] for i in ok], epoch, ok_keys)
            for i, k, c in zip(ok, keep, choice):
                out[i] = (bool(k), str(metas[i]["texts"][c][0]))
        return out

    def _decode(self, raw: dict, keep: bool, text: str | None, epoch: int, url: str, stats: Stats):
        """(uint8 HWC image, caption, uid), or None when dropped by curation or corrupt (counted)."""
        key = raw.get("__key__", "?")
        if not keep:
            stats.dropped += 1
            return None
        meta = raw.get("__meta__")
        if meta is None:
            stats.bad(f"{url} key {key}: {raw.get('__bad__', 'missing .json')}")
            return None
        uid = str(meta["uid"])
        if text is None:
            txt = raw.get("txt")
            try:
                text = txt.decode("utf-8") if isinstance(txt, bytes) else meta.get("text")
            except UnicodeDecodeError as e:
                stats.bad(f"{url} key {key}: .txt is not UTF-8 (bad byte at {e.start})")
                return None
            text = text if isinstance(text, str) else None
        if text is not None and self.caption_mix is not None:
            text, fell_back = self.caption_mix.pick(meta, text, raw["__uid_key__"], epoch)
            stats.caption_fallback += fell_back
        ext = next((e for e in IMAGE_EXTS if e in raw), None)
        if text is None or ext is None:
            stats.bad(f"{url} key {key}: no {'image' if ext is None else 'caption'}")
            return None
        try:
            image = self.decoded.get((url, key), raw[ext])
            rng = np.random.default_rng([self.seed, epoch, raw["__uid_key__"]])
            image = train_crop(image, self.image_size, rng)
        except Exception as e:  # noqa: BLE001  (PIL raises many types for bad bytes)
            stats.bad(f"{url} key {key}: undecodable image ({type(e).__name__})")
            return None
        return image, text, uid


class _NoUsableSample(Exception):
    """A worker's shards yielded no usable sample for 3 passes; the message names them and why."""


def _texts_problem(texts: Any) -> str:
    """Why a .json `texts` value is not [[text, lang, [entry_id >= 0, ...]], ...], or ""."""
    if not isinstance(texts, list):
        return ".json texts is not a list"
    for k, t in enumerate(texts):
        if not (isinstance(t, list) and len(t) == 3 and isinstance(t[0], str) and isinstance(t[2], list)
                and all(isinstance(e, int) and not isinstance(e, bool) for e in t[2])):
            return f".json texts[{k}] is not [text, lang, entry_ids]"
        if any(e < 0 for e in t[2]):
            return f".json texts[{k}] has entry_id {min(t[2])}"
    return ""


def _meta(raw: dict) -> dict | None:
    """The sample's parsed .json (cached on the raw dict), or None with the reason in raw["__bad__"]."""
    if "__meta__" not in raw:
        meta, bad = None, "missing .json"
        if "json" in raw:
            try:
                meta = json.loads(raw["json"])
                bad = "" if isinstance(meta, dict) and "uid" in meta else ".json is not an object with a uid"
                bad = bad or ("texts" in meta and _texts_problem(meta["texts"])) or ""
            except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
                bad = f"invalid .json ({type(e).__name__})"
        raw["__meta__"] = None if bad else meta
        if bad:
            raw["__bad__"] = bad
    return raw["__meta__"]


def usable_meta(raw: dict, n_entries: int | None = None) -> dict | None:
    """_meta, and None (reason in raw["__bad__"]) when an entry_id is not below n_entries (curation's counts)."""
    meta = _meta(raw)
    if meta is None or n_entries is None:
        return meta
    top = max((e for t in meta.get("texts") or [] for e in t[2]), default=-1)
    if top >= n_entries:
        bad = f".json has entry_id {top}, beyond the {n_entries} entries of curation.json's counts"
        raw["__meta__"], raw["__bad__"] = None, bad
    return raw["__meta__"]


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def checked(batches: Iterator[dict]) -> Iterator[dict]:
    """The batches, with a worker's fatal problem raised here as its one-line UserError; a UserError too
    when every worker ended for lack of usable samples (the stream is otherwise endless)."""
    ended = ""
    for b in batches:
        if "fatal" in b:
            raise UserError(b["fatal"])
        if "ended" in b:
            ended = ended or b["ended"]
            continue
        yield b
    if ended:
        raise UserError(ended)


class Loader(torch.utils.data.DataLoader):
    """A DataLoader whose iterator is `checked`: user-data errors from workers arrive as UserErrors."""

    def __iter__(self) -> Iterator[dict]:
        return checked(super().__iter__())


def make_loader(dataset: ShardStream, num_workers: int, pin_memory: bool = False) -> Loader:
    """DataLoader over the stream's ready-made batches; workers decode in parallel, in round-robin order."""
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(prefetch_factor=4, worker_init_fn=_worker_init, persistent_workers=False)
        if any(not storage.is_local(u) for src in dataset.sources for u in src.urls[:1]):
            kwargs["multiprocessing_context"] = "spawn"  # fsspec's async loop (s3fs, gcsfs) does not survive fork
    return Loader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **kwargs)
