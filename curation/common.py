"""Small shared helpers: user-facing errors, atomic writes, output locks, fingerprints.

Every stage writes through these so that no output file is ever half-written (write to a
temporary name in the same folder, fsync, then rename) and two runs never interleave in one
output folder.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


class UserError(Exception):
    """A mistake in the user's input or flags: printed as one line by the CLI, no traceback."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        if e.errno == errno.ENOSPC:
            raise UserError(f"disk full while writing {path}: free space and rerun the same command to resume") from e
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def json_bytes(obj: Any) -> bytes:
    """How every JSON output is written: indent 2, UTF-8, trailing newline."""
    return (json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode()


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_bytes_atomic(path, json_bytes(obj))


def write_parquet_atomic(path: str | os.PathLike, table: pa.Table, **kwargs: Any) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **kwargs)


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise UserError(f"{path}: file not found") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from e


_HELD_LOCK_FDS: set[int] = set()


def _drop_inherited_locks() -> None:
    """In a forked child (e.g. a DataLoader worker) point held lock fds at /dev/null.

    The lock then lives and dies with the process that took it: a child that outlives a killed parent
    for a moment does not keep the output folder locked against the rerun.
    """
    if not _HELD_LOCK_FDS:
        return
    null = os.open(os.devnull, os.O_RDONLY)
    for fd in _HELD_LOCK_FDS:
        os.dup2(null, fd)
    os.close(null)
    _HELD_LOCK_FDS.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, wait_s: float = 3.0) -> Iterator[None]:
    """Hold an exclusive lock on `folder/.lock`; a second concurrent run is refused, not interleaved.

    Waits up to `wait_s` seconds first, so a rerun right after a killed run is not refused while the
    killed processes are still exiting.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / ".lock", "a+")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as e:
                if time.monotonic() >= deadline:
                    raise UserError(f"{folder} is in use by another run (lock {folder / '.lock'}); "
                                    "wait for it or choose another --out") from e
                time.sleep(0.1)
        _HELD_LOCK_FDS.add(f.fileno())
        yield
    finally:
        _HELD_LOCK_FDS.discard(f.fileno())
        f.close()


def file_fingerprint(path: str | os.PathLike) -> dict:
    """Cheap identity of an input file: path, size, mtime_ns (content is not hashed: pools are large)."""
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def content_hash(path: str | os.PathLike, algo: str = "sha256") -> str:
    """Content hash of a (small) file, e.g. entries.parquet, to tie outputs to one metadata version."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _overlaps(a: str, b: str) -> bool:
    """Whether two normalised paths/URLs are the same or one holds the other."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def prepare_output(out: str | os.PathLike, identity: dict, outputs: Iterable[str], overwrite: bool, kind: str,
                   inputs: dict[str, Iterable[str]] | None = None) -> dict | None:
    """Make `out` (a path or URL) ready for a run whose inputs/options are `identity`; returns the old manifest.

    --overwrite removes the previous `outputs`, but only what this tool wrote: never an input of the same
    command (`inputs`: flag -> paths/URLs) or a folder holding one, and only in a folder whose manifest.json
    is one of ours (same identity keys). Without it, a manifest.json made with another identity is refused
    (a rerun must repeat the same arguments to resume), and so is a non-empty folder without one.
    """
    from curation import storage

    out_s = storage.normalize(out)
    manifest = storage.join(out_s, "manifest.json")
    old = storage.read_json(manifest) if storage.exists(manifest) else None
    if overwrite:
        targets = [storage.join(out_s, n) for n in outputs if storage.exists(storage.join(out_s, n))]
        for flag, paths in (inputs or {}).items():
            for i in map(storage.normalize, paths):
                hit = next((t for t in targets if _overlaps(t, i)), None)
                if hit is not None:
                    raise UserError(f"--overwrite would remove {hit}, which is (or holds) the input {flag} {i}; "
                                    "nothing was removed: choose another --out")
        if targets and not (isinstance(old, dict) and set(identity) <= set(old)):
            raise UserError(f"--overwrite: {out_s} has no manifest.json of {kind}, so its files were not written by "
                            "this command; nothing was removed: choose another --out (or empty it yourself)")
        for t in targets:
            storage.remove(t)
        return None
    if old is not None:
        diffs = [k for k in identity if old.get(k) != identity[k]]
        if diffs:
            raise UserError(f"{out_s} holds {kind} with different {', '.join(diffs)}; rerun with the same "
                            "arguments to resume, choose another --out, or pass --overwrite")
        return old
    if storage.is_local(out_s):
        present = Path(out_s).is_dir() and any(p.name != ".lock" for p in Path(out_s).iterdir())
    else:
        present = any(storage.name(u) != ".lock.json" for u in storage.list_files(out_s))
    if present:
        raise UserError(f"{out_s} is not empty and has no manifest.json; choose another --out or pass --overwrite")
    return None


STORAGE_ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCS", "HF_", "FSSPEC_", "WORLDCLIP_STORAGE_OPTIONS")


def storage_env() -> dict[str, str]:
    """The storage credentials/endpoints/options of this process, for Ray workers on other nodes."""
    return {k: v for k, v in os.environ.items() if k.startswith(STORAGE_ENV_PREFIXES)}


def ensure_ray(workers: int | None, address: str | None) -> bool:
    """Join the cluster at `address`, reuse an initialised Ray, or start a local one; True if started here.

    A local start never attaches to another `ray start` on this machine (address="local"); a cluster
    that cannot be joined is a UserError naming --ray-address.
    """
    import ray

    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False,
                     runtime_env={"env_vars": storage_env()})
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise UserError(f"--ray-address {address}: cannot join the Ray cluster ({e})") from e
    else:
        ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False,
                 logging_level="WARNING", log_to_driver=False)
    return True
