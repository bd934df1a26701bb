"""The balance driver: INDEX -> thresholds -> per-image draws -> WebDataset shards, resumable.

Stages (work files under CURATED/.work, each written atomically, so a rerun skips finished ones):
  1. scatter/part-NNNNN.arrow    each INDEX part with uid_hash, rows grouped by bucket (top bits of
                                 the hash), one Arrow IPC record batch per bucket
  2. selected/bucket-BBBBB.*     per bucket (all texts of a uid meet here): choice + keep draws
  3. kept.parquet                kept images in (source, row) order (DuckDB external sort); the
                                 position is the global index: shard = index // shard_size, key = index
  4. shards/NNNNN.tar            one task per run of consecutive sources, each source read once
                                 (curation.shards.write_group); a shard spanning two tasks is joined
                                 from pieces; skipped/ records corrupt, missing or unreadable
                                 images (a damaged pool file costs only what cannot be read)
  5. curated.parquet, thresholds.parquet, stats.json, plots/, curation.json + counts.parquet (--online)
Every draw depends on (seed, uid) only, so the output is the same for any worker count or INDEX
part size; shard bytes are deterministic too.

INDEX and CURATED may be URLs (core.storage): INDEX parts and pool files are streamed from the
store, shards and outputs are uploaded whole under their final names, manifest.json (complete) last.
With an object-store --out the .work files live on local scratch (WORLDCLIP_SCRATCH, default the temp
folder), keyed by the --out URL, so a rerun on the same machine resumes from them.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import duck, storage
from core.atomic import atomic_path, write_parquet_atomic
from core.errors import UserError
from core.outputs import prepare_output
from curation import balance, balance_stats, images, sampling, shards
from curation.curated import SHARD_SIZE
from curation.executor import Executor, fork_safe
from curation.index import MATCH_COLUMNS, Index, open_index
from curation.score import filter_index
from curation.select import SelectStats, select_images

VERSION = 1
WORK = ".work"
ROWS_PER_BUCKET = 1_000_000
DUCKDB_MEMORY = "1GB"  # the external sort of kept images spills beyond this
BUCKETS_KEY = "worldclip.buckets"
OUTPUTS = ("shards", "plots", "curated.parquet", "thresholds.parquet", "stats.json", "curation.json",
           "counts.parquet", "manifest.json", WORK, "captions", "scores.parquet")


# ---- stage 1: scatter INDEX parts by uid-hash bucket -------------------------------------------------

def scatter_part(part: str, out: str, bits: int) -> int:
    """Copy one INDEX part with uid_hash as an Arrow IPC file, one record batch per bucket (top `bits` of
    the hash); the schema metadata lists the buckets in batch order. Uncompressed IPC, read back
    memory-mapped: the scratch copy costs disk (about the INDEX's uncompressed size), not time."""
    t = storage.read_parquet(part, columns=MATCH_COLUMNS)
    h = sampling.uid_hash64(t.column("uid"))
    bucket = (h >> np.uint64(64 - bits)).astype(np.int64) if bits else np.zeros(len(h), np.int64)
    order = np.argsort(bucket, kind="stable")
    t = t.append_column("uid_hash", pa.array(h, pa.uint64())).combine_chunks().take(pa.array(order, pa.int64()))
    b = bucket[order]
    cuts = np.flatnonzero(np.diff(b)) + 1
    spans = list(zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(b)]]).tolist()))
    spans = [(lo, hi) for lo, hi in spans if hi > lo]
    schema = t.schema.with_metadata({BUCKETS_KEY: json.dumps([int(b[lo]) for lo, _ in spans])})
    with atomic_path(out) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as w:
        for lo, hi in spans:
            cols = [c.chunk(0) for c in t.slice(lo, hi - lo).combine_chunks().columns]
            w.write_batch(pa.RecordBatch.from_arrays(cols, schema=schema))
    return t.num_rows


def bucket_rows(files: list[str], bucket: int) -> pa.Table:
    """All scattered rows of one bucket: one memory-mapped record batch from each scatter file."""
    batches = []
    for f in files:
        reader = pa.ipc.open_file(pa.memory_map(f))
        buckets = json.loads(reader.schema.metadata[BUCKETS_KEY.encode()])
        if bucket in buckets:
            batches.append(reader.get_batch(buckets.index(bucket)))
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches).replace_schema_metadata(None)


# ---- stage 2: per-bucket choice and keep --------------------------------------------------------------

def select_bucket(files: list[str], bucket: int, out: str, seed: int, keep_all: bool,
                  p_entry: np.ndarray) -> None:
    """Draw one bucket's images; writes out.npz (stats) then out.parquet (kept images, done marker)."""
    t = bucket_rows(files, bucket)
    if t.num_rows == 0:
        t = pa.table({c: pa.array([], pa.string()) for c in ("uid", "text", "url", "lang")} | {
            "entry_ids": pa.array([], pa.list_(pa.int32())), "source": pa.array([], pa.string()),
            "row": pa.array([], pa.int64()), "key": pa.array([], pa.string()), "uid_hash": pa.array([], pa.uint64())})
    selected, st = select_images(t, p_entry, seed, keep_all=keep_all)
    nz = np.flatnonzero(st.counts_after)
    with atomic_path(out + ".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, ids=nz, counts=st.counts_after[nz],
                     stats=json.dumps({"texts": st.texts, "images": st.images, "kept": st.kept}))
    write_parquet_atomic(out + ".parquet", selected)


def read_bucket_stats(out: str, n_entries: int) -> SelectStats:
    with np.load(out + ".npz") as z:
        d = json.loads(str(z["stats"]))
        after = np.zeros(n_entries, dtype=np.int64)
        after[z["ids"]] = z["counts"]
    return SelectStats(d["texts"], d["images"], d["kept"], after)


# ---- stage 3: global order ----------------------------------------------------------------------------

def order_kept(work: Path, shard_size: int) -> int:
    """kept.parquet: images in (source, row) order; a row's position is its idx, the global sample
    number (shard = idx // shard_size, key = idx zero-padded). Returns the count."""
    out = work / "kept.parquet"
    if not out.exists():
        tmpdir = work / "duckdb"
        tmpdir.mkdir(exist_ok=True)
        con = duck.connect(temp_directory=tmpdir, preserve_insertion_order=True, memory_limit=DUCKDB_MEMORY)
        selected = duck.files(sorted((work / "selected").glob("*.parquet")))
        duck.copy_parquet(con, 'SELECT * EXCLUDE (uid_hash) FROM read_parquet(?) ORDER BY source, "row"', [selected],
                          out, row_group_size=8192)
        con.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return pq.ParquetFile(out).metadata.num_rows


# ---- driver -------------------------------------------------------------------------------------------

def _image_source(index: Index) -> str | None:
    return (index.manifest.get("pool") or {}).get("image_column")


def _tars_expected(index: Index) -> bool:
    """An img2dataset pool (no plain Parquet sources beside it): every Parquet source has a sibling tar."""
    fmt = str((index.manifest.get("pool") or {}).get("format") or "")
    formats = set(fmt.removeprefix("mixed:").split("+"))
    return "img2dataset" in formats and "parquet" not in formats


def _url_only(index: Index, kept: Path) -> bool:
    """True when no kept image can be read locally (WAT, Parquet without an image column)."""
    con = duck.connect()
    sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM read_parquet(?) LIMIT 1000",
                                         [str(kept)]).fetchall()]
    con.close()
    return all(images.source_kind(s, _image_source(index), _tars_expected(index))[0] == images.KIND_URL
               for s in sources)


def _clean_temps(out: str, work: Path) -> None:
    """Temp files of a killed run (local folders only: object stores never show an unfinished upload)."""
    local = [Path(out), Path(out) / "shards", Path(out) / "plots"] if storage.is_local(out) else []
    for d in [*local, *(work / s for s in ("scatter", "selected", "pieces", "skipped")), work]:
        if d.is_dir():
            for tmp in d.glob(".*.tmp"):
                tmp.unlink()


def work_dir(out: str, identity: dict) -> Path:
    """CURATED/.work for a local --out; for an object store, local scratch keyed by the URL and identity."""
    if storage.is_local(out):
        return Path(out) / WORK
    key = hashlib.sha256(json.dumps([out, identity], sort_keys=True).encode()).hexdigest()[:16]
    return Path(os.environ.get("WORLDCLIP_SCRATCH") or tempfile.gettempdir()) / f"worldclip-balance-{key}"


def check_pool(idx: Index) -> None:
    """Refuse, before any work, when a pool file balance reads images from changed since build-index recorded
    it (size + mtime_ns locally, size + ETag on object stores, whose listed and HEAD times differ in
    precision): balance would pair the INDEX's texts with other images."""
    image_column = _image_source(idx)
    recorded = (idx.manifest.get("inputs") or []) + (idx.manifest.get("image_files") or [])
    for fp in recorded:
        path = fp.get("path") if isinstance(fp, dict) else None
        if not path or not (path.endswith(".tar") or (image_column and path.endswith(".parquet"))):
            continue  # not read by balance (WAT, Parquet without images, img2dataset metadata)
        if not storage.exists(path):
            raise UserError(f"pool file {path} is gone since build-index made INDEX {idx.path}: restore or mount "
                            "it and rerun the same command")
        now = storage.fingerprint(path)
        changed = [k for k in ("size", "mtime_ns", "etag") if k in fp and fp[k] != now.get(k)]
        if changed:
            raise UserError(f"pool file {path} changed since build-index made INDEX {idx.path} ({', '.join(changed)} "
                            "differ): its images may no longer match the INDEX's texts; restore it, or rebuild the "
                            "INDEX with `curate build-index … --overwrite` on the current pool")


def _probabilities(idx: Index, t: float | None, p: float | None):
    """(counts by language, thresholds, p_e per entry_id, number of entries) of an INDEX (balance.probabilities)."""
    probs = balance.probabilities(idx.counts, t, p)
    return probs.by_lang, probs.thresholds, probs.p_entry, len(probs.p_entry)


def run_balance(index: str, out: str, *, t: float | None = None, p: float | None = None, seed: int = 0,
                shard_size: int = SHARD_SIZE, online: bool = False, workers: int | None = None,
                ray_address: str | None = None, overwrite: bool = False,
                rows_per_bucket: int = ROWS_PER_BUCKET, score_filter: dict | None = None) -> dict:
    """Run (or resume) balance; returns stats.json's content. `score_filter` (scores, min_score,
    top_fraction) keeps only the images that pass curation.score's filter, before balancing."""
    t0 = time.time()
    if shard_size < 1:
        raise UserError(f"--shard-size must be >= 1, not {shard_size}")
    idx = open_index(index)
    check_pool(idx)
    by_lang, th, p_entry, n_entries = _probabilities(idx, t, p)
    out_p = storage.normalize(out)
    identity = {"version": VERSION,
                "index": {"path": idx.path, "metadata_fingerprint": idx.fingerprint,
                          "manifest": storage.content_hash(storage.join(idx.path, "manifest.json"))},
                "options": {"t": t, "p": p, "seed": seed, "shard_size": shard_size, "online": online}}
    if score_filter:
        identity["options"]["score_filter"] = {**score_filter, "scores": storage.content_hash(score_filter["scores"])}
    with storage.errors(out_p, "--out"), storage.lock(out_p):
        inputs = {"--index": [idx.path]} | ({"--scores": [score_filter["scores"]]} if score_filter else {})
        old = prepare_output(out_p, identity, OUTPUTS, overwrite, "a CURATED made", inputs=inputs)
        if old is not None and old.get("complete"):
            return storage.read_json(storage.join(out_p, "stats.json"))
        work = work_dir(out_p, identity)
        if old is None and not storage.is_local(out_p):
            shutil.rmtree(work, ignore_errors=True)
        storage.write_json(storage.join(out_p, "manifest.json"), {**identity, "complete": False})
        _clean_temps(out_p, work)
        for d in ("scatter", "selected", "pieces", "skipped"):
            (work / d).mkdir(parents=True, exist_ok=True)
        if score_filter:
            idx, score_stats = filter_index(idx, out=work / "index", **score_filter)
            by_lang, th, p_entry, n_entries = _probabilities(idx, t, p)
        fork = fork_safe([idx.path, out_p, *(i["path"] for i in idx.manifest["inputs"])])
        ex = Executor(workers if workers or ray_address else 1, ray_address, fork=fork)  # workers None: in process
        try:
            bits = max(0, math.ceil(math.log2(max(idx.rows, 1) / rows_per_bucket))) if idx.rows > rows_per_bucket else 0
            scat = [str(work / "scatter" / f"{storage.name(pth).rsplit('.', 1)[0]}.arrow") for pth in idx.parts]
            todo = [(str(pth), s, bits) for pth, s in zip(idx.parts, scat) if not Path(s).exists()]
            ex.map(scatter_part, todo, "scatter")
            outs = [str(work / "selected" / f"bucket-{b:05d}") for b in range(1 << bits)]
            todo = [(scat, b, o, seed, online) for b, o in enumerate(outs) if not Path(o + ".parquet").exists()]
            ex.map(select_bucket, todo, "select", shared={"p_entry": p_entry})
            st = SelectStats()
            for o in outs:
                st.merge(read_bucket_stats(o, n_entries))
            total = order_kept(work, shard_size)
            url_only = total == 0 or _url_only(idx, work / "kept.parquet")
            if not url_only:
                storage.makedirs(storage.join(out_p, "shards"))
                groups = shards.source_groups(work / "kept.parquet", shard_size)
                todo = [(str(out_p), str(work), lo, hi, total, shard_size, _image_source(idx), _tars_expected(idx))
                        for lo, hi, _ in groups if not (work / "skipped" / f"group-{lo:012d}.parquet").exists()]
                ex.map(shards.write_group, todo, "shards")
                shards.finish_pieces(out_p, work)
        finally:
            ex.close()
        stats = balance_stats.write_outputs(out_p, idx, th, by_lang, st, total, url_only, identity, time.time() - t0,
                                            work=work)
        if score_filter:
            stats["score_filter"] = score_stats
            storage.write_json(storage.join(out_p, "stats.json"), stats)
        storage.write_json(storage.join(out_p, "manifest.json"), {**identity, "complete": True})
        shutil.rmtree(work, ignore_errors=True)
    return stats


def summary_line(stats: dict, out: str) -> str:
    """The one-line summary; a second line names damaged pool files (if any) and what to do about them."""
    tot = stats["totals"]
    lost = tot.get("source_unreadable_images", 0)
    shards_note = (f"{tot['written']} written to {tot['shards']} shards, {tot['corrupt_images']} corrupt, "
                   f"{tot['missing_images']} missing" + (f", {lost} in unreadable pool files" if lost else "")
                   if not stats["url_only"] else "URL-only pool: run `curate download` to fetch them")
    line = (f"balance: {tot['matched_texts']} matched texts, {tot['images']} images -> {tot['kept']} kept "
            f"({'online: all written, ' if stats['online'] else ''}{shards_note}); {len(stats['per_lang'])} languages; "
            f"{stats['seconds']:.1f}s -> {out}")
    bad = stats.get("unreadable_sources") or []
    if not bad:
        return line
    named = "; ".join(f"{d['file']} ({d['images']} images: {d['error']})" for d in bad[:3])
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (f"{line}\nwarning: {lost} kept images are not in the shards because {len(bad)} pool file(s) are damaged: "
            f"{named}{more} (all listed in stats.json unreadable_sources; status source_unreadable in "
            f"curated.parquet). Re-fetch or repair those files and rerun with --overwrite to include them, "
            f"or use the shards as they are.")
