"""CLIP-score filtering (DataComp / DFN baseline): score images against their alt-text, filter an INDEX.

`score_curated` writes CURATED/scores.parquet (uid, score: the cosine of the L2-normalised image and
KEY.txt embeddings) with any CLIP-style Hugging Face folder (`MetaClip2Model`, `CLIPModel`: what
`train` exports to RUN/hf). Each shard is scored into `.scores/<shard>.parquet` first, so a rerun
skips finished shards. Score a CURATED made with `balance --online` (every matched image is written)
to have a score for every image of the INDEX.

`filter_index` is what `balance --min-score / --score-top-fraction` run before balancing: it keeps
the INDEX rows of the uids that pass and recomputes the counts from them (so thresholds are those of
the filtered pool), writing a filtered INDEX under the balance's work folder. A uid without a score
does not pass, and is counted. `--score-top-fraction F` keeps the ceil(F * scored) best scores (ties
broken by uid hash, so the set is deterministic).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from core import storage
from core.atomic import write_bytes_atomic, write_json_atomic, write_parquet_atomic
from core.errors import UserError
from core.outputs import content_hash
from curation.captions import shard_samples
from curation.curated import curated_root, shard_paths, stem
from curation.index import FINGERPRINT_KEY, open_index, write_counts
from curation.recaption import open_image, pick_device
from curation.sampling import uid_hash64

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
WORK = ".scores"


def _shard_rows(shard: str):
    """(uid, alt-text, image bytes) of a shard's samples that have an image."""
    for _, members in shard_samples(shard):
        image = next((members[e] for e in IMAGE_EXTS if e in members), None)
        try:
            meta = json.loads(members["json"])
            uid = str(meta["uid"])
        except (KeyError, TypeError, ValueError):
            continue  # no usable .json: nothing to name the score by
        if image is not None:
            text = members["txt"].decode("utf-8", "replace") if "txt" in members else str(meta.get("text", ""))
            yield uid, text, image


def score_shard(model, tokenizer, processor, shard: str, batch_size: int, device: str) -> pa.Table:
    """(uid, score) of one shard's samples; images that do not decode get no row."""
    import torch  # lazy, as curation.clip: torch and transformers only where a model scores

    from curation.clip import embed_texts, features

    uids, texts, scores, batch = [], [], [], []

    def flush() -> None:
        if not batch:
            return
        pixels = processor(images=batch, return_tensors="pt")["pixel_values"].to(device)
        with torch.inference_mode():
            img = features(model.get_image_features(pixel_values=pixels)).float()
            img = torch.nn.functional.normalize(img, dim=-1).cpu()
        txt = embed_texts(model, tokenizer, texts[-len(batch):], batch_size, device)
        scores.extend((img * txt).sum(-1).tolist())
        batch.clear()

    for uid, text, data in _shard_rows(shard):
        try:
            image = open_image(data)
        except Exception:  # noqa: BLE001  (PIL raises many types for bad bytes)
            continue
        uids.append(uid), texts.append(text), batch.append(image)
        if len(batch) == batch_size:
            flush()
    flush()
    return pa.table({"uid": pa.array(uids, pa.string()), "score": pa.array(scores, pa.float32())})


def score_curated(curated: str | Path, model_dir: str, batch_size: int = 64, device: str | None = None) -> dict:
    """Write CURATED/scores.parquet (resuming per shard); returns a summary. CURATED and the model folder
    may be URLs: the model is copied to local scratch first (storage.local_copy), shards are streamed."""
    from curation.clip import load_model  # lazy: torch (see score_shard)

    curated, device = curated_root(curated), pick_device(device)
    shards = shard_paths(curated)
    with storage.errors(model_dir, "--model"):
        identity = {"model": storage.normalize(model_dir), "weights": _weights_fingerprint(model_dir)}
        model, tokenizer, processor = load_model(storage.local_copy(model_dir), device)
    work = storage.join(curated, WORK)
    with storage.errors(curated, "CURATED"), storage.lock(curated):
        _open_work(work, identity)
        done = {storage.name(u) for u in storage.glob_in(work, "*.parquet")}  # each part is one whole object
        for shard in tqdm(shards, desc="score", unit="shard", leave=False):
            if f"{stem(shard)}.parquet" not in done:
                storage.write_parquet(storage.join(work, f"{stem(shard)}.parquet"),
                                      score_shard(model, tokenizer, processor, shard, batch_size, device))
        table = pa.concat_tables([storage.read_parquet(storage.join(work, f"{stem(s)}.parquet")) for s in shards])
        storage.write_parquet(storage.join(curated, "scores.parquet"), table.replace_schema_metadata(
            {b"worldclip.score_model": identity["model"].encode()}))
        storage.remove(work)
    s = table.column("score").to_numpy()
    return {"images": table.num_rows, "mean": float(s.mean()) if len(s) else 0.0, "model": identity["model"]}


def _open_work(work: str, identity: dict) -> None:
    """CURATED/.scores/ for `identity`: parts of another model are removed, the manifest (re)written."""
    manifest = storage.join(work, "manifest.json")
    if storage.exists(manifest) and storage.read_json(manifest) != identity:
        storage.remove(work)
    storage.makedirs(work)
    storage.write_json(manifest, identity)


def _weights_fingerprint(folder: str) -> str:
    """Names, sizes and mtimes (object stores: ETags) of a model folder's weight files."""
    files = storage.glob_in(folder, "*.safetensors") or storage.glob_in(folder, "*.bin")
    if storage.is_local(folder):
        return "+".join(f"{Path(p).name}:{Path(p).stat().st_size}:{Path(p).stat().st_mtime_ns}" for p in files)
    return "+".join(f"{storage.name(u)}:{fp['size']}:{fp['etag'] or fp['mtime']}" for u in files
                    for fp in [storage.fingerprint(u)])


# ---- filtering before balance -------------------------------------------------------------------------

def passing_uids(scores: str | Path, min_score: float | None, top_fraction: float | None) -> tuple[set[str], dict]:
    """The uids whose score passes (>= min_score, and/or among the top fraction); with counters."""
    path = Path(scores)
    try:
        t = pq.read_table(path, columns=["uid", "score"])
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"--scores {path}: not a scores.parquet with uid and score ({e}); "
                        "make it with `curate score`") from e
    t = t.filter(pc.is_valid(t.column("score")))
    uids = np.asarray(t.column("uid").to_pylist(), dtype=object)
    s = t.column("score").to_numpy().astype(np.float64)
    keep = np.ones(len(s), dtype=bool)
    if min_score is not None:
        keep &= s >= min_score
    if top_fraction is not None:
        k = math.ceil(top_fraction * len(s))
        order = np.lexsort((uid_hash64(list(uids)) if len(uids) else np.zeros(0, np.uint64), -s))
        top = np.zeros(len(s), dtype=bool)
        top[order[:k]] = True
        keep &= top
    return set(uids[keep].tolist()), {"scored_images": len(s), "passed_images": int(keep.sum())}


def filter_index(index, scores: str | Path, min_score: float | None, top_fraction: float | None, out: Path):
    """A filtered copy of `index` (curation.index.Index) in the local folder `out`: rows of passing uids,
    counts recomputed."""
    passed, stats = passing_uids(scores, min_score, top_fraction)
    entries = storage.read_parquet(storage.join(index.path, "entries.parquet"))
    counts = np.zeros(entries.num_rows, dtype=np.int64)
    dropped_texts = 0
    uids_seen, uids_kept = set(), set()
    (out / "matches").mkdir(parents=True, exist_ok=True)
    for part in index.parts:
        t = storage.read_parquet(part)
        ok = np.fromiter((u in passed for u in t.column("uid").to_pylist()), dtype=bool, count=t.num_rows)
        uids_seen.update(t.column("uid").to_pylist())
        kept = t.filter(pa.array(ok))
        uids_kept.update(kept.column("uid").to_pylist())
        dropped_texts += t.num_rows - kept.num_rows
        flat = pc.list_flatten(kept.column("entry_ids")).to_numpy(zero_copy_only=False)
        counts += np.bincount(flat, minlength=len(counts))[:len(counts)]
        meta = {FINGERPRINT_KEY: (t.schema.metadata or {}).get(FINGERPRINT_KEY, b"")}
        write_parquet_atomic(out / "matches" / storage.name(part), kept.replace_schema_metadata(meta))
    write_bytes_atomic(out / "entries.parquet", storage.read_bytes(storage.join(index.path, "entries.parquet")))
    write_counts(out, entries, counts)
    write_json_atomic(out / "manifest.json", {**index.manifest, "complete": True, "filtered_from": str(index.path),
                                              "parts": [storage.name(p) for p in index.parts]})
    stats |= {"index_images": len(uids_seen), "kept_images": len(uids_kept),
              "unscored_images": len(uids_seen - passed - _scored(scores)), "dropped_texts": dropped_texts,
              "min_score": min_score, "top_fraction": top_fraction, "scores": str(scores),
              "scores_sha256": content_hash(scores)}
    return open_index(str(out)), stats


def _scored(scores: str | Path) -> set[str]:
    return set(pq.read_table(scores, columns=["uid"]).column("uid").to_pylist())
