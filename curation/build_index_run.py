"""The build-index driver: check inputs, plan parts, run them on workers, record, resume, summarise.

INDEX layout (DESIGN.md "INDEX" + the build-index/balance contract):
  matches/part-NNNNN.parquet  matched texts of part NNNNN     (written by a worker, atomically)
  counts/part-NNNNN.npz       sparse per-entry counts of it   (written by a worker, atomically)
  parts.jsonl                 journal: one line per finished part, appended (fsync) by the driver
                              only after both files of the part are in place
  entries.parquet, counts.parquet, manifest.json             (written by the driver, atomically)
On an object store (--out s3://…) the journal is parts.journal/part-NNNNN.json, one object per finished
part (no append there), and the lock is a lock object (core.storage); each file is uploaded whole.
A part is finished when it is in the journal and its files exist; a rerun of the same command skips
finished parts and redoes the rest (a half-written part left only a temp file, which is removed).
manifest.json is written at the start (complete: false, so a changed rerun is recognised) and at the
end; the journal is the record while a run is in progress. The driver never reads pool rows: workers
read their part, and only per-part accounting comes back.

Identity of a run (a rerun into the same INDEX must match it, else it is refused; --overwrite starts
over): metadata fingerprint, input files (path, size, mtime), every option that changes the output
(lid, compat, part size, columns). --workers, --ray-address and --backend do not change the output.

Parts run through curation.executor: --workers 1 (without --ray-address) one after another in the driver's
process, without starting Ray, on the same IndexWorker as an actor, which shares the META table the driver
loaded and fingerprinted (META is read once: its sha256, table and the INDEX's copy come from the same
bytes). --workers N > 1 without --ray-address: every language's matcher is built once, on N threads of the
driver, then N workers are forked that share META and the matchers copy-on-write (curation.fork_pool; the
driver imports no torch and opens no DuckDB, so forking is safe), when the pool, META and --out are local (a
driver holding object-store connections must not fork: a child can take over its connection; seen as the
driver's next S3 call hanging), else Ray as with --ray-address; a worker that dies stops the run with a
one-line error, and a rerun resumes. With --ray-address (or a Ray already initialised in this process): one
IndexWorker actor per worker (1 CPU each), each reading META itself and building a language's automaton on
first use; a killed actor is restarted and its part retried (max_restarts / max_task_retries). Either way at
most IN_FLIGHT_PER_WORKER parts are queued per worker, and parts are written atomically, so a retry or rerun
gives the same files. With --ray-address, the pool, META and --out must be at the same paths on every node
(a shared filesystem), since workers read the pool and write their parts themselves.

Bad input: an unreadable Parquet footer or a missing column stops the run before any work (one-line
error naming the file and the columns found); damage found while reading (a corrupt row group, a
truncated tar or gzip) is recorded in manifest "errors" and counted as rejected "unreadable_file"
(Parquet: the rows not read; tar/WAT: 1 per damaged file, since the lost rows cannot be counted).
Row-level reasons: empty_text, no_metadata_language, download_failed (img2dataset status),
missing_text / undecodable_text (WebDataset sample without a UTF-8 .txt), bad_url (WAT).
"""
from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from core import storage
from core.errors import UserError
from core.outputs import prepare_output
from curation.build_index import PartProcessor
from curation.executor import Executor, fork_safe
from curation.index import INDEX_FILES, PART_SIZE, add_part_counts, match_files, part_name, write_counts, write_part
from curation.lid import ALL_LANGUAGES, parse_lid
from curation.pool import Part, PoolColumns, PoolFile, expand_paths, make_parts, resolve_columns
from matching.matcher import Matcher
from metadata.store import ENTRIES, EntriesFile
from metadata.store import read_entries as store_read

MANIFEST_VERSION = 1
IN_FLIGHT_PER_WORKER = 2
ACTOR_OPTIONS = {"num_cpus": 1, "max_restarts": 3, "max_task_retries": 3}  # a killed worker's part is retried


def load_entries(meta: str | Path) -> tuple[pa.Table, str, EntriesFile]:
    """META's entries (validated by metadata.store: dense int32 ids in file order), read once; returns (table,
    file, what was read: its bytes and sha256, the run's fingerprint and the INDEX's copy)."""
    read = store_read(meta)
    return read.table.select(["entry_id", "lang", "entry"]), storage.join(storage.normalize(meta), ENTRIES), read


def plan(pool: list[str], metadata: str, *, lid: str, compat: bool, text_column: str | None,
         uid_column: str | None, url_column: str | None, image_column: str | None, backend: str,
         part_size: int, workers: int | None = None, pool_base: str | None = None) -> dict:
    """Everything a run needs, checked before any work: entries, parts, columns, manifest identity."""
    if part_size < 1:
        raise UserError(f"--part-size must be >= 1, not {part_size}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, not {workers}")
    try:
        lid_mode = parse_lid(lid)
    except ValueError as e:
        raise UserError(str(e)) from e
    entries, entries_path, read = load_entries(metadata)
    files = expand_paths(pool, pool_base)
    lang_col = {"auto": "lang", "column": lid_mode.column}.get(lid_mode.mode)
    pool_files, cols = resolve_columns(files, text=text_column, uid=uid_column, url=url_column, image=image_column,
                                       lang=lang_col, lang_required=lid_mode.mode == "column")
    formats = sorted({f.format for f in pool_files})
    text_col = cols.text_for(formats[0]) if len(formats) == 1 else cols.text
    options = {"lid": str(lid_mode), "compat": bool(compat), "part_size": part_size, "text_column": text_col,
               "img2dataset_text_column": cols.text_for("img2dataset"), "uid_column": cols.uid,
               "url_column": cols.url, "image_column": cols.image, "lang_column": cols.lang}
    return {
        "entries": entries, "entries_path": entries_path, "entries_bytes": read.data,
        "meta_dir": storage.normalize(metadata), "lid": lid_mode,
        "cols": cols, "pool_files": [f.path for f in pool_files],
        "parts": make_parts(pool_files, part_size), "backend": backend,
        "identity": {
            "version": MANIFEST_VERSION,
            "metadata": {"path": entries_path, "fingerprint": read.sha256},
            "inputs": [storage.fingerprint(f.path) for f in pool_files],
            "image_files": [storage.fingerprint(t) for t in image_files(pool_files)],
            "options": options,
            "pool": {"format": formats[0] if len(formats) == 1 else "mixed:" + "+".join(formats),
                     "text_column": text_col, "uid_column": cols.uid, "url_column": cols.url,
                     "image_column": cols.image},
        },
    }


def image_files(pool_files: list[PoolFile]) -> list[str]:
    """The tars an img2dataset pool keeps its images in (balance reads them; build-index does not)."""
    tars = [f.path[: -len(".parquet")] + ".tar" for f in pool_files if f.format == "img2dataset"]
    return [t for t in tars if storage.exists(t)]


def _remove_temp_files(out: str) -> None:
    """Temp files of parts whose writer died (a killed run or a killed, retried worker); local only: object
    stores never show an unfinished upload."""
    if not storage.is_local(out):
        return
    out = Path(out)
    for sub in ("matches", "counts"):
        for tmp in (out / sub).glob(".part-*.tmp"):
            tmp.unlink(missing_ok=True)


def _finished_parts(out: str, parts: list[Part]) -> dict[int, dict]:
    """Journal records of parts whose files are in place (the rest is redone; a torn record is ignored)."""
    _remove_temp_files(out)
    done = {rec["part"]: rec for rec in storage.Journal(out, "parts").records()}
    present = {storage.name(u) for sub in ("matches", "counts") if storage.isdir(storage.join(out, sub))
               for u in storage.list_files(storage.join(out, sub))}
    by_id = {p.part: p for p in parts}
    return {i: r for i, r in done.items()
            if i in by_id and (r["source"], r["start"], r["stop"]) == (by_id[i].path, by_id[i].start, by_id[i].stop)
            and f"{part_name(i)}.parquet" in present and f"{part_name(i)}.npz" in present}


def _totals(records: list[dict]) -> tuple[dict, dict, list]:
    rejected, skipped, per_lang, errors = Counter(), Counter(), {}, []
    totals = {"rows_in": 0, "matched": 0, "unmatched": 0}
    for r in records:
        for k in totals:
            totals[k] += r[k]
        rejected.update(r["rejected"])
        skipped.update(r.get("skipped_records", {}))
        for lang, s in r["per_lang"].items():
            d = per_lang.setdefault(lang, {"texts": 0, "matched": 0})
            d["texts"] += s["texts"]
            d["matched"] += s["matched"]
        errors += r["errors"]
    totals["rejected"] = dict(sorted(rejected.items()))
    if skipped:
        totals["skipped_wat_records"] = dict(sorted(skipped.items()))
    return totals, dict(sorted(per_lang.items())), errors


def _finish(out: str, p: dict, records: dict[int, dict], backend: str) -> dict:
    """Sum per-part counts into counts.parquet and write the complete manifest."""
    entries = p["entries"]
    counts = np.zeros(entries.num_rows, dtype=np.int64)
    for i in records:
        add_part_counts(out, i, counts)
    write_counts(out, entries, counts)
    totals, per_lang, errors = _totals([records[i] for i in sorted(records)])
    parts = {part_name(i): {k: records[i][k] for k in ("source", "start", "stop", "rows_in", "matched")}
             for i in sorted(records)}
    manifest = {**p["identity"], "backend": backend, "totals": totals, "per_lang": per_lang, "errors": errors,
                "parts": parts, "complete": True}
    storage.write_json(storage.join(out, "manifest.json"), manifest)
    return manifest


def process_and_write(proc: PartProcessor, out: str, part: Part) -> dict:
    """Process one part, put its files in place and return its journal record (a worker's whole job)."""
    started, cpu, built = time.time(), time.process_time(), proc.build_seconds
    result = proc.process_part(part)
    write_part(out, part.part, result.matches, result.counts)
    # started_at, cpu_at_start (this process's CPU seconds so far), cpu_s (its CPU seconds in this part),
    # build_s (matcher builds inside this part) and pid (which worker): journal only, for benchmarks
    return {"part": part.part, "source": part.path, "start": part.start, "stop": part.stop, **result.summary(),
            "started_at": started, "cpu_at_start": cpu, "cpu_s": time.process_time() - cpu,
            "build_s": proc.build_seconds - built, "pid": os.getpid()}


def _journal(out: str, part: Part, rec: dict, records: dict[int, dict], bar) -> None:
    """Record a finished part (its files are in place) in the journal, the records and the progress bar."""
    rec["finished_at"] = time.time()  # journal only (benchmarks); never in manifest or outputs
    storage.Journal(out, "parts").append(part_name(part.part), rec)
    records[part.part] = rec
    bar.update(rec["rows_in"])


def _progress(todo: list[Part]) -> tqdm:
    known = [x.num_rows for x in todo]
    total = sum(known) if all(k is not None for k in known) else None
    return tqdm(total=total, unit="text", unit_scale=True, desc="build-index", dynamic_ncols=True)


class IndexWorker:
    """One per worker (a Ray actor), or one in the driver (--workers 1, or forked workers sharing it): META,
    its matchers (each language's built once, on first use, or all before forking) and the LID model."""

    def __init__(self, meta: str, lid, compat: bool, backend: str, cols: PoolColumns, fingerprint: str,
                 out: str, entries: pa.Table | None = None) -> None:
        """`entries`: the driver's META table (in process or forked), already loaded and fingerprinted by
        `plan`; a Ray actor gets None and reads META itself (a restarted actor needs no driver object)."""
        if entries is None:
            entries, path, read = load_entries(meta)
            if read.sha256 != fingerprint:
                raise UserError(f"{path} changed during the run; rerun the same command to resume")
        self.proc = PartProcessor(entries, lid, compat=compat, backend=backend, cols=cols, fingerprint=fingerprint)
        self.out = out

    def process(self, part: Part) -> dict:
        return process_and_write(self.proc, self.out, part)

    def backend_name(self) -> str:
        return self.proc.matcher_backend()

    def build_matchers(self, threads: int) -> None:
        """Build every language's matcher before forking, so the part workers share them: on `threads` threads
        (a build's numpy work releases the GIL; the threads end before the fork), the biggest language first."""
        langs = self.proc.labels_by_size()
        with ThreadPoolExecutor(threads) as pool:
            self.proc.add_matchers(dict(zip(langs, pool.map(self.proc.build_matcher, langs))))
        self.proc.load_detector()


def _run_parts(out: str, p: dict, todo: list[Part], workers: int | None, ray_address: str | None, compat: bool,
               backend: str, records: dict[int, dict]) -> str:
    """Stream parts to IndexWorkers (curation.executor: in this process for --workers 1, on forked workers
    sharing the driver's META and matchers for more, Ray actors with --ray-address); journal each finished
    part. Returns the matcher backend the workers run."""
    fingerprint = p["identity"]["metadata"]["fingerprint"]
    args = (str(p["meta_dir"]), p["lid"], compat, backend, p["cols"], fingerprint, str(out))
    fork = fork_safe([out, p["meta_dir"], *p["pool_files"]])
    with Executor(workers, ray_address, fork=fork) as ex, _progress(todo) as bar:
        if ex.in_process or ex.forked:  # the driver's META, not a second load and sha256 of it
            args += (p["entries"],)
        return ex.map_actors(IndexWorker, args, "process", [(part,) for part in todo],
                             lambda item, rec: _journal(out, item[0], rec, records, bar),
                             in_flight=IN_FLIGHT_PER_WORKER, options=ACTOR_OPTIONS, probe="backend_name",
                             warm="build_matchers", describe=lambda item: f"part {item[0].part} ({item[0].path})")


def build_index(pool: list[str], metadata: str, out: str, *, lid: str = "auto", compat: bool = False,
                text_column: str | None = None, uid_column: str | None = None, url_column: str | None = None,
                image_column: str | None = None, workers: int | None = None, ray_address: str | None = None,
                backend: str = "auto", part_size: int = PART_SIZE, overwrite: bool = False,
                pool_base: str | None = None) -> dict:
    """Run (or resume) build-index; returns the final manifest."""
    t0 = time.time()
    p = plan(pool, metadata, lid=lid, compat=compat, text_column=text_column, uid_column=uid_column,
             url_column=url_column, image_column=image_column, backend=backend, part_size=part_size,
             workers=workers, pool_base=pool_base)
    out_path = storage.normalize(out)
    with storage.errors(out, "--out"), storage.lock(out_path):
        prepare_output(out_path, p["identity"], INDEX_FILES, overwrite, "an INDEX built",
                       inputs={"--pool": p["pool_files"], "--metadata": [p["meta_dir"]]})
        storage.write_bytes(storage.join(out_path, "entries.parquet"), p.pop("entries_bytes"))
        storage.write_json(storage.join(out_path, "manifest.json"), {**p["identity"], "complete": False})
        records = _finished_parts(out_path, p["parts"])
        todo = [x for x in p["parts"] if x.part not in records]
        backend_name = Matcher([], [], compat=compat, backend=backend).implementation  # also when all parts resume
        if todo:
            backend_name = _run_parts(out_path, p, todo, workers, ray_address, compat, backend, records)
        _remove_temp_files(out_path)
        stale = {storage.name(f) for f in match_files(out_path)} - {f"{part_name(i)}.parquet" for i in records}
        if stale:
            raise UserError(f"{out_path}/matches has files of no finished part ({sorted(stale)[:3]}…); "
                            "rerun with --overwrite")
        manifest = _finish(out_path, p, records, backend_name)
    manifest["seconds"] = time.time() - t0
    manifest["resumed_parts"] = len(p["parts"]) - len(todo)
    return manifest


def summary_line(manifest: dict, out: str) -> str:
    t = manifest["totals"]
    secs = manifest.get("seconds", 0.0)
    rej = ", ".join(f"{k} {v}" for k, v in t["rejected"].items()) or "none"
    lang_note = "" if ALL_LANGUAGES not in manifest["per_lang"] else " (lid none: one language)"
    if manifest.get("errors"):
        lang_note += f"; {len(manifest['errors'])} damaged file(s), see manifest.json errors"
    if t.get("skipped_wat_records"):
        lang_note += f"; {sum(t['skipped_wat_records'].values())} WAT records without image texts"
    return (f"build-index: {t['rows_in']} texts in {len(manifest['parts'])} parts "
            f"({manifest.get('resumed_parts', 0)} resumed): {t['matched']} matched, {t['unmatched']} unmatched, "
            f"rejected: {rej}; {len(manifest['per_lang'])} languages{lang_note}; "
            f"{t['rows_in'] / max(secs, 1e-9):,.0f} texts/s; backend {manifest['backend']} -> {out}")
