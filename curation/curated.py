"""CURATED, the output of `curate balance` (DESIGN.md "CURATED"): its layout, stated once, and what training reads.

  shards/NNNNN.tar     WebDataset, --shard-size samples each: KEY.jpg|png|webp, KEY.txt (the chosen
                       alt-text), KEY.json {uid, url, lang, entry_ids, text, texts: [[text, lang,
                       entry_ids] … every matched text of the image, canonical order (text, source, row)],
                       captions?}; written by curation.shards, shards/sizes.json (samples per shard) beside
  curated.parquet      CURATED_SCHEMA: one row per kept image (every matched image with --online, plus
                       `keep`, epoch 0's draw), in shard order, with shard, key and status
  thresholds.parquet, stats.json, plots/        summaries (curation.balance_stats)
  curation.json        --online only: {"online": true, "t", "p", "seed", "thresholds", "counts": COUNTS}
  counts.parquet       --online only: the INDEX's per-entry counts (entry_id, lang, count)
  manifest.json        the run's identity; {"complete": true} is written last and commits the rest

Online curation: training (training.data) finds CURATED as the parent of the shards folder, reads
curation.json + counts.parquet here (`online_curation`), turns them into p_e with the same function
as `curate balance` (curation.balance.probabilities: t when given, else p) and draws each pass with
curation.sampling.draw, so its first pass keeps exactly the images an offline balance with the same
seed and t keeps, with the same chosen texts.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from core import storage
from core.errors import UserError
from curation.balance import probabilities
from curation.select import TEXT_STRUCT

SHARDS = "shards"
SHARD_SIZE = 10_000  # samples per shard (balance --shard-size)
CURATED_PARQUET = "curated.parquet"
CURATION_JSON = "curation.json"
COUNTS_PARQUET = "counts.parquet"
CURATED_SCHEMA = pa.schema([
    ("uid", pa.string()), ("url", pa.string()), ("lang", pa.string()), ("text", pa.string()),
    ("entry_ids", pa.list_(pa.int32())), ("texts", pa.list_(TEXT_STRUCT)), ("shard", pa.int32()),
    ("key", pa.string()), ("status", pa.string()), ("source", pa.string()), ("row", pa.int64())])


def add_curated_model_args(p: argparse.ArgumentParser, curated_note: str, model_help: str) -> None:
    """CURATED and --model DIR of the commands that run a model over a CURATED set's images (`curate score`,
    `curate recaption`); `curated_note` ends CURATED's help, in parentheses."""
    p.add_argument("curated", metavar="CURATED", help=f"output folder of `curate balance` ({curated_note})")
    p.add_argument("--model", required=True, metavar="DIR", help=model_help)


def write_online(out: str, counts: pa.Table, *, t: float | None, p: float, seed: int, thresholds: dict) -> None:
    """counts.parquet and curation.json of a `balance --online` output (what training re-draws from)."""
    storage.write_parquet(storage.join(out, COUNTS_PARQUET), counts.select(["entry_id", "lang", "count"]))
    storage.write_json(storage.join(out, CURATION_JSON), {"online": True, "t": t, "p": p, "seed": seed,
                                                          "thresholds": thresholds, "counts": COUNTS_PARQUET})


def curated_root(curated: str | Path) -> str:
    """CURATED as a string: a local path (plain or file://) or an object-store URL (s3://, gs://, memory://)."""
    return str(storage.local_path(curated)) if storage.is_local(curated) else storage.normalize(curated)


def shard_paths(curated: str) -> list[str]:
    """CURATED/shards/*.tar (paths or URLs) in name order; UserError when there are none."""
    with storage.errors(curated, "CURATED"):
        found = storage.glob_in(storage.join(curated, SHARDS), "*.tar")
    if not found:
        raise UserError(f"{curated} has no {SHARDS}/*.tar: give a CURATED folder written by `curate balance` "
                        "(or `curate download`)")
    return found


def stem(url: str) -> str:
    """A shard's name without its extension (`…/00001.tar` -> `00001`), which also names its per-shard parts
    (`captions/<source>/00001.parquet`, `curate score`'s work files)."""
    return storage.name(url).rsplit(".", 1)[0]


def curated_folder(shard: str) -> str | Path:
    """CURATED of CURATED/shards/NNNNN.tar (a resolved Path locally, else a URL)."""
    if storage.is_local(shard):
        return storage.local_path(shard).resolve().parent.parent
    return storage.parent(storage.parent(shard))


def online_conf(curated: str | Path) -> dict | None:
    """curation.json of CURATED when it says online, else None."""
    path = storage.join(curated, CURATION_JSON)
    conf = storage.read_json(path) if storage.exists(path) else {}
    return conf if conf.get("online") else None


def counts_table(curated: str | Path, conf: dict) -> pa.Table:
    """entry_id / lang / count table named by curation.json (a parquet path or inline per-language dict)."""
    counts = conf.get("counts", conf.get("counts_file"))
    if isinstance(counts, dict):
        ids, langs, cs = [], [], []
        for lang, per in counts.items():
            items = per.items() if isinstance(per, dict) else per
            for e, c in items:
                ids.append(int(e)), langs.append(lang), cs.append(int(c))
        return pa.table({"entry_id": pa.array(ids, pa.int32()), "lang": langs, "count": pa.array(cs, pa.int64())})
    path = storage.join(curated, counts if isinstance(counts, str) else COUNTS_PARQUET)
    if not storage.exists(path):
        raise UserError(f"{storage.join(curated, CURATION_JSON)}: online curation needs per-entry counts, but {path} "
                        "is missing; rerun `curate balance --online`")
    return storage.read_parquet(path)


@dataclass(frozen=True)
class OnlineCuration:
    """What training's online curation draws with: p_e per entry_id and the seed of `curate balance`."""

    p_entry: np.ndarray
    seed: int | None  # None when curation.json names no seed (training's --seed then)
    folder: str


def online_curation(curated: str | Path, conf: dict, t: float | None = None) -> OnlineCuration:
    """p_e from CURATED's counts with curation.json's t (else its p), or with `t` when given (--curation-t)."""
    counts = counts_table(curated, conf)
    t_used = t if t is not None else conf.get("t")
    p_used = None if t is not None else conf.get("p")
    p_entry = np.asarray(probabilities(counts, t_used, p_used).p_entry, dtype=np.float64)
    seed = conf.get("seed")
    return OnlineCuration(p_entry, None if seed is None else int(seed), str(curated))
