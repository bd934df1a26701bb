"""The recaption driver: CURATED shards -> captions/NAME/*.parquet -> (fusion) -> attached captions.

One part per shard: `captions/<source>/<shard stem>.parquet` (uid, caption, alt), written atomically,
so a rerun skips finished parts. Images that do not decode are left out of the part (counted in its
schema metadata, and as uncaptioned by the attach). With `--fuse-with`, each caption part is fused
with its alt-texts into `captions/<fuse source>/<shard stem>.parquet` (uid, caption). Work runs in
this process (`workers=1`) or on Ray actors that load the model once: one GPU per actor when the
cluster has GPUs, one CPU (and one torch thread) otherwise. `captions/<source>/manifest.json`
records the model and options; a rerun with others is refused (another --source, or --overwrite).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from core import storage
from core.errors import UserError
from curation.captions import attach_locked, check_source, shard_samples
from curation.curated import curated_root, shard_paths, stem
from curation.executor import Executor
from curation.recaption import FUSE_PROMPT, Captioner, Decoding, Fuser, open_image

UNDECODABLE_KEY = b"worldclip.undecodable_images"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def _part_seed(seed: int, part: str) -> int:
    return seed * 1_000_003 + int(stem(part)) if stem(part).isdigit() else seed


def _samples(shard: str):
    """(uid, alt-text, image bytes or None) per sample of a shard."""
    for _, members in shard_samples(shard):
        try:
            meta = json.loads(members["json"])
            uid = str(meta["uid"])
        except (KeyError, TypeError, ValueError):
            continue  # no usable .json: no uid to caption it under (the attach counts nothing for it)
        alt = members["txt"].decode("utf-8", "replace") if "txt" in members else str(meta.get("text", ""))
        image = next((members[e] for e in IMAGE_EXTS if e in members), None)
        yield uid, alt, image


class Worker:
    """Loads one model (captioner or fuser) and turns input parts into output parts."""

    def __init__(self, kind: str, folder: str, prompt: str | None, decoding: Decoding, threads: int = 0):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.kind, self.decoding = kind, decoding
        folder = storage.local_copy(folder)
        self.model = Captioner(folder, prompt, decoding) if kind == "caption" else Fuser(folder, prompt, decoding)

    def run(self, src: str, out: str, batch_size: int) -> int:
        """Write the output part for `src` (a shard or a caption part); returns the number of rows."""
        seed = _part_seed(self.decoding.seed, src)
        return self._caption(src, out, batch_size, seed) if self.kind == "caption" else \
            self._fuse(src, out, batch_size, seed)

    def _caption(self, shard: str, out: str, batch_size: int, seed: int) -> int:
        uids, alts, caps, batch, bad = [], [], [], [], 0
        for uid, alt, data in _samples(shard):
            try:
                image = open_image(data) if data is not None else None
            except Exception:  # noqa: BLE001  (PIL raises many types for bad bytes)
                image = None
            if image is None:
                bad += 1
                continue
            uids.append(uid), alts.append(alt), batch.append(image)
            if len(batch) == batch_size:
                caps += self.model.caption(batch, seed + len(caps))
                batch = []
        if batch:
            caps += self.model.caption(batch, seed + len(caps))
        table = pa.table({"uid": pa.array(uids, pa.string()), "caption": pa.array(caps, pa.string()),
                          "alt": pa.array(alts, pa.string())})
        storage.write_parquet(out, table.replace_schema_metadata({UNDECODABLE_KEY: str(bad)}))
        return len(uids)

    def _fuse(self, part: str, out: str, batch_size: int, seed: int) -> int:
        t = storage.read_parquet(part)
        alts, caps, fused = t.column("alt").to_pylist(), t.column("caption").to_pylist(), []
        for lo in range(0, t.num_rows, batch_size):
            fused += self.model.fuse(alts[lo:lo + batch_size], caps[lo:lo + batch_size], seed + lo)
        storage.write_parquet(out, pa.table({"uid": t.column("uid"), "caption": pa.array(fused, pa.string())}))
        return t.num_rows


def _precheck(kind: str, folder: str) -> None:
    """Refuse a folder the Auto class cannot load before any worker starts (config only: cheap)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    from curation.recaption import _check_folder, _not_loadable

    flag, auto = (("--model", AutoModelForImageTextToText) if kind == "caption"
                  else ("--fuse-with", AutoModelForCausalLM))
    with storage.errors(folder, flag):
        folder = storage.local_copy(folder)
    _check_folder(flag, folder)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise _not_loadable(flag, folder, "image-to-text" if kind == "caption" else "causal language model", e) from e
    if type(config) not in auto._model_mapping:
        what = ("image-to-text (AutoModelForImageTextToText)" if kind == "caption"
                else "causal LM (AutoModelForCausalLM)")
        raise UserError(f"{flag} {folder}: a {config.model_type} checkpoint is not an {what} model; give e.g. a "
                        "BLIP, Florence-2, LLaVA or VisionEncoderDecoder folder" if kind == "caption" else
                        f"{flag} {folder}: a {config.model_type} checkpoint is not a {what}; give e.g. a GPT-2, "
                        "Llama, Qwen or Mistral folder")


def run_parts(kind: str, folder: str, prompt: str | None, decoding: Decoding, jobs: list[tuple[str, str]],
              batch_size: int, workers: int, ray_address: str | None, progress: Callable[[int], None]) -> int:
    """Run the (src, out) jobs on Workers (curation.executor: this process for --workers 1, else Ray actors,
    one GPU each when the cluster has GPUs, else one CPU and one torch thread); returns the rows written."""
    if not jobs:
        return 0
    rows = [0]

    def done(_, n: int) -> None:
        progress(n)
        rows[0] += n

    with Executor(workers, ray_address) as ex:  # never forked: torch's OpenMP threads and CUDA do not survive fork
        gpus = ex.gpus()
        args = (kind, folder, prompt, decoding) if ex.in_process else (kind, folder, prompt, decoding, 0 if gpus else 1)
        ex.map_actors(Worker, args, "run", [(str(src), str(out), batch_size) for src, out in jobs], done,
                      n=min(workers, gpus) if gpus else workers, in_flight=1,
                      options={"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1},
                      describe=lambda job: job[0])
    return rows[0]


def _prepare(folder: str, identity: dict, overwrite: bool, source: str) -> None:
    """captions/<source>/ with a manifest for `identity`; another identity is refused unless overwrite."""
    manifest = storage.join(folder, "manifest.json")
    if overwrite:
        storage.remove(folder)
    if storage.exists(manifest) and storage.read_json(manifest) != identity:
        raise UserError(f"{folder} was made with another model or options; rerun with the same ones to resume, "
                        f"choose another --source than {source}, or pass --overwrite")
    storage.makedirs(folder)
    storage.write_json(manifest, identity)


def _schema(url: str):
    """The Parquet schema of a part (path or URL)."""
    if storage.is_local(url):
        return pq.read_schema(url)
    with storage.open_input(url) as f, storage.errors(url):
        return pq.read_schema(f)


def _stage(curated: str, kind: str, folder: str, prompt: str | None, decoding: Decoding, srcs: list[str],
           source: str, batch_size: int, workers: int, ray_address: str | None, overwrite: bool) -> dict:
    """One stage (caption or fuse) over all parts, resuming; returns its counters."""
    from tqdm import tqdm

    out_dir = storage.join(curated, "captions", source)
    _precheck(kind, folder)
    _prepare(out_dir, {"kind": kind, "model": storage.normalize(folder), "prompt": prompt,
                       "decoding": asdict(decoding)}, overwrite, source)
    jobs = [(s, storage.join(out_dir, f"{stem(s)}.parquet")) for s in srcs]
    written = {storage.name(u) for u in storage.glob_in(out_dir, "*.parquet")}  # each part is one whole object
    todo = [(s, o) for s, o in jobs if storage.name(o) not in written]
    t0 = time.time()
    with tqdm(desc=f"{kind} {source}", unit="img", leave=False) as bar:
        rows = run_parts(kind, folder, prompt, decoding, todo, batch_size, workers, ray_address, bar.update)
    seconds = time.time() - t0
    undecodable = sum(int((_schema(o).metadata or {}).get(UNDECODABLE_KEY, b"0")) for _, o in jobs)
    return {"source": source, "parts": len(jobs), "resumed": len(jobs) - len(todo), "rows": rows,
            "undecodable": undecodable,
            "seconds": round(seconds, 3), "per_s": rows / seconds if seconds > 0 and rows else 0.0,
            "outputs": [o for _, o in jobs]}


def run_recaption(curated: str, model: str, source: str, *, prompt: str | None = None,
                  decoding: Decoding | None = None, batch_size: int = 16, workers: int = 1,
                  ray_address: str | None = None, fuse_with: str | None = None, fuse_source: str = "vecap",
                  fuse_prompt: str = FUSE_PROMPT, overwrite: bool = False) -> list[dict]:
    """Caption every shard's images (then fuse, if asked) and attach the source(s); one report per stage."""
    cur, decoding = curated_root(curated), decoding or Decoding()
    check_source(source)
    if fuse_with is not None and check_source(fuse_source) == source:
        raise UserError(f"--fuse-source {fuse_source}: must differ from --source {source}")
    if batch_size < 1 or workers < 1:
        raise UserError(f"--batch-size and --workers must be >= 1, not {batch_size} and {workers}")
    shards = shard_paths(cur)
    reports = []
    with storage.errors(cur, "CURATED"), storage.lock(cur):
        st = _stage(cur, "caption", model, prompt, decoding, shards, source, batch_size, workers, ray_address,
                    overwrite)
        reports.append(st | {"attach": attach_locked(cur, source, st["outputs"], by_shard=True)})
        if fuse_with is not None:
            fu = _stage(cur, "fuse", fuse_with, fuse_prompt, decoding, st["outputs"], fuse_source, batch_size,
                        workers, ray_address, overwrite)
            reports.append(fu | {"attach": attach_locked(cur, fuse_source, fu["outputs"], by_shard=True)})
    return reports


def summary_line(report: dict, workers: int) -> str:
    a = report["attach"]
    return (f"recaption {report['source']}: {report['rows']} images in {report['parts']} parts "
            f"({report['resumed']} resumed) in {report['seconds']:.1f}s, {report['per_s']:.2f} images/s "
            f"({report['per_s'] / workers:.2f} per worker); attached to {a['captioned']} images, "
            f"{a['uncaptioned']} without a caption "
            f"({report['undecodable']} undecodable images)")
