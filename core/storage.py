"""One storage layer for every path flag: plain paths, file://, s3://, gs://, hf:// (read-only), memory://.

Paths and URLs are plain strings. A plain path or `file://` URL is LOCAL and behaves exactly as before
this module existed (writes go to a temp name and are renamed; locks are flock; see core.atomic and core.locks).
Anything else is a URL on an fsspec filesystem (an OBJECT STORE: no atomic rename, no flock).

Credentials and endpoints come from the usual places: the AWS/GCS environment variables and config files
(AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ~/.aws/credentials, GOOGLE_APPLICATION_CREDENTIALS, HF_TOKEN …),
fsspec's own config (~/.config/fsspec/*.json, FSSPEC_<PROTOCOL>_<KEY> variables), plus
`curate --storage-options JSON` (`configure`), kept in WORLDCLIP_STORAGE_OPTIONS so that Ray workers
started afterwards see the same options. JSON: {"s3": {"endpoint_url": …, "key": …}, "gs": {…}} (per
protocol) or a flat {"key": …} applied to every protocol.

API (stable; other modules build on it):
  URLs:        is_local(p), local_path(p), normalize(p), join(base, *names), name(p), parent(p)
  filesystem:  configure(options), filesystem(url) -> (fsspec fs, path inside it), fsspec_options(url),
               fsspec_config(url) (the options as fsspec's config, for libraries and their subprocesses)
  read:        open_input(url) (streaming, seekable), read_bytes, read_json, read_parquet(url, columns),
               parquet_file(url) (footer, streamed reads; see "Parquet" below), exists, isdir, isfile,
               info, fingerprint, list_files(url) (recursive, sorted), glob(pattern), content_hash,
               arrow_dataset(urls) (pyarrow.fs-backed Parquet dataset, e.g. for DuckDB), local_copy(folder)
               (a local copy of a small folder, e.g. a model, for libraries that read only local files; older
               copies of the same source that no live process holds are removed)
  write:       open_output(url) (the object appears whole or not at all), write_bytes, write_json,
               write_parquet, remove(url), makedirs
  commit:      Journal(folder, name) (one record per finished unit; append-only), lock(folder) (flock
               locally, a lock object with owner + heartbeat on object stores)
  errors:      errors(url, flag) context manager: any storage failure on a URL becomes one UserError line
               naming the URL and what to do (wrong credentials, missing bucket/object, missing package)

Commit protocol on object stores (docs/reliability.md): every object is written once, whole, under its
final name (a single PUT or a multipart upload that is only visible when completed, aborted on error);
each finished unit of work is then committed by its own journal object; the manifest object is written
last. Readers and resume trust only committed units; objects of a killed run that no journal record
names are ignored, then overwritten or removed.
"""
from __future__ import annotations

import contextlib
import fnmatch
import glob as globlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import atomic_path, json_bytes, write_bytes_atomic
from core.atomic import read_json as local_read_json
from core.errors import UserError
from core.locks import output_lock

ENV_OPTIONS = "WORLDCLIP_STORAGE_OPTIONS"
READ_ONLY = ("hf", "http", "https")
MULTIPART = ("s3", "s3a", "gs", "gcs")  # writes are invisible until close, and can be discarded
LOCK_NAME = ".lock.json"
LOCK_STALE_S = float(os.environ.get("WORLDCLIP_LOCK_STALE_S", "60"))
READ_BLOCK = 8 << 20
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "hf": "huggingface_hub"}


# ---- URLs ---------------------------------------------------------------------------------------------

def protocol(p: str | os.PathLike) -> str | None:
    """The URL scheme ("s3", "file", …) or None for a plain path."""
    s = os.fspath(p)
    return s.split("://", 1)[0].lower() if "://" in s else None


def is_local(p: str | os.PathLike) -> bool:
    return protocol(p) in (None, "file", "local")


def local_path(p: str | os.PathLike) -> Path:
    """A plain path or file:// URL as a Path."""
    s = os.fspath(p)
    return Path(s.split("://", 1)[1]) if "://" in s else Path(s)


def normalize(p: str | os.PathLike) -> str:
    """Absolute resolved local path, or the URL as protocol://bucket/key without a trailing slash."""
    if is_local(p):
        return str(local_path(p).resolve())
    proto, rest = os.fspath(p).split("://", 1)
    return f"{proto.lower()}://{rest.rstrip('/')}"


def join(base: str | os.PathLike, *names: str) -> str:
    if is_local(base):
        return str(local_path(base).joinpath(*names))
    return "/".join([os.fspath(base).rstrip("/"), *(n.strip("/") for n in names)])


def name(p: str | os.PathLike) -> str:
    return os.fspath(p).rstrip("/").rsplit("/", 1)[-1]


def parent(p: str | os.PathLike) -> str:
    if is_local(p):
        return str(local_path(p).parent)
    return os.fspath(p).rstrip("/").rsplit("/", 1)[0]


# ---- filesystems --------------------------------------------------------------------------------------

def configure(options: str | dict | None) -> None:
    """Set --storage-options (a JSON string or dict) for this process and the processes it starts."""
    if options is None:
        return
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError as e:
            raise UserError(f"--storage-options: not valid JSON ({e}); e.g. '{{\"s3\": {{\"endpoint_url\": "
                            "\"http://127.0.0.1:9000\"}}}}'") from e
    if not isinstance(options, dict):
        raise UserError("--storage-options: expected a JSON object, e.g. '{\"s3\": {\"anon\": true}}'")
    os.environ[ENV_OPTIONS] = json.dumps(options)


def _options(proto: str) -> dict:
    raw = os.environ.get(ENV_OPTIONS)
    if not raw:
        return {}
    opts = json.loads(raw)
    if any(isinstance(v, dict) for v in opts.values()):
        return dict(opts.get(proto) or opts.get({"s3a": "s3", "gcs": "gs"}.get(proto, proto)) or {})
    return dict(opts)


def fsspec_options(url: str | os.PathLike) -> dict:
    """The fsspec keyword arguments for a URL's filesystem (for libraries that open URLs themselves, e.g.
    torch.distributed.checkpoint's FsspecWriter); {} for local paths."""
    proto = protocol(url) or "file"
    if is_local(url):
        return {}
    opts = _options(proto)
    if proto in MULTIPART:
        opts.setdefault("use_listings_cache", False)  # other processes (Ray workers) write the same prefixes
    if proto in ("s3", "s3a"):  # S3-compatible servers (MinIO, rclone, Ceph) reject botocore's new default checksums
        cfg = opts.setdefault("config_kwargs", {})
        for k in ("response_checksum_validation", "request_checksum_calculation"):
            cfg.setdefault(k, os.environ.get(f"AWS_{k.upper()}", "when_required"))
    if proto in ("s3", "s3a") and "endpoint_url" in opts:
        opts.setdefault("client_kwargs", {})["endpoint_url"] = opts.pop("endpoint_url")
    return opts


@contextlib.contextmanager
def fsspec_config(url: str | os.PathLike) -> Iterator[None]:
    """For the block, `url`'s storage options (--storage-options included) are fsspec's own config for its
    protocol: in this process (fsspec.config.conf) and in processes started meanwhile (FSSPEC_<PROTOCOL>, read
    by fsspec at import), so libraries that open URLs themselves, in subprocesses too (img2dataset), use them."""
    import fsspec.config

    proto = protocol(url)
    if is_local(url) or proto is None:
        yield
        return
    opts, var = fsspec_options(url), f"FSSPEC_{proto.upper()}"
    saved_env, saved_conf = os.environ.get(var), fsspec.config.conf.get(proto)
    os.environ[var] = json.dumps(opts)
    fsspec.config.conf[proto] = {**(saved_conf or {}), **opts}
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = saved_env
        if saved_conf is None:
            fsspec.config.conf.pop(proto, None)
        else:
            fsspec.config.conf[proto] = saved_conf


def filesystem(url: str | os.PathLike):
    """(fsspec filesystem, path inside it) for a URL or local path; options as described above."""
    import fsspec  # lazy: fsspec and its store plugins load only when a URL is used

    s = os.fspath(url)
    proto = protocol(s) or "file"
    if is_local(s):
        return fsspec.filesystem("file"), str(local_path(s).resolve())
    opts = fsspec_options(s)
    try:
        fs = fsspec.filesystem(proto, **opts)
    except (ImportError, ValueError) as e:
        pkg = _PACKAGES.get(proto)
        hint = f"install it with `pip install {pkg}`" if pkg else "use s3://, gs://, hf://, file:// or a plain path"
        raise UserError(f"{s}: cannot open {proto}:// storage ({e}); {hint}") from e
    return fs, fs._strip_protocol(s)


# ---- errors -------------------------------------------------------------------------------------------

def _describe(url: str, e: BaseException) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    low = msg.lower()
    if isinstance(e, PermissionError) or "access denied" in low or "signature" in low or "access key" in low \
            or "forbidden" in low or "credentials" in low:
        return (f"{url}: access denied ({msg}); check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "~/.aws/credentials, GOOGLE_APPLICATION_CREDENTIALS, HF_TOKEN or --storage-options)")
    if "bucket" in low and ("not exist" in low or "nosuchbucket" in low):
        return f"{url}: the bucket does not exist ({msg}); create it or fix the bucket name"
    if isinstance(e, FileNotFoundError):
        return f"{url}: no such object or folder; check the URL (list it with e.g. `rclone ls` or `aws s3 ls`)"
    if isinstance(e, (ConnectionError, TimeoutError)) or "connect" in low or "endpoint" in low:
        return (f"{url}: cannot reach the object store ({msg}); check AWS_ENDPOINT_URL / --storage-options "
                "endpoint_url and the network")
    return f"{url}: storage error ({type(e).__name__}: {msg})"


@contextlib.contextmanager
def errors(url: str | os.PathLike, flag: str = "") -> Iterator[None]:
    """Turn a storage failure on a URL into one UserError line (local paths: exceptions pass unchanged)."""
    if is_local(url):
        yield
        return
    try:
        yield
    except UserError:
        raise
    except Exception as e:  # botocore, aiohttp, gcsfs and fsspec raise many types
        if isinstance(e, (OSError, ConnectionError, TimeoutError)) or type(e).__module__.split(".")[0] in (
                "botocore", "aiobotocore", "aiohttp", "gcsfs", "google", "huggingface_hub", "requests", "fsspec"):
            raise UserError((f"{flag} " if flag else "") + _describe(os.fspath(url), e)) from e
        raise


# ---- reading ------------------------------------------------------------------------------------------

def open_input(url: str | os.PathLike, block_size: int = READ_BLOCK) -> IO[bytes]:
    """A seekable binary file, streamed in blocks (object stores: ranged GETs, read-ahead cache)."""
    if is_local(url):
        return open(local_path(url), "rb")
    fs, path = filesystem(url)
    with errors(url):
        return fs.open(path, "rb", block_size=block_size, cache_type="readahead")


def read_bytes(url: str | os.PathLike) -> bytes:
    with open_input(url) as f, errors(url):
        return f.read()


def read_json(url: str | os.PathLike) -> Any:
    """Parsed JSON; a missing or invalid file is a UserError naming it."""
    if is_local(url):
        return local_read_json(local_path(url))
    if not exists(url):
        raise UserError(f"{url}: file not found")
    try:
        return json.loads(read_bytes(url))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{url}: not valid JSON ({e})") from e


def info(url: str | os.PathLike) -> dict:
    fs, path = filesystem(url)
    with errors(url):
        return fs.info(path)


def _test(url: str | os.PathLike, local_test: str, fs_test: str) -> bool:
    """Path.<local_test>() of a local path, else the file system's <fs_test>(path)."""
    if is_local(url):
        return getattr(local_path(url), local_test)()
    fs, path = filesystem(url)
    with errors(url):
        return getattr(fs, fs_test)(path)


def exists(url: str | os.PathLike) -> bool:
    return _test(url, "exists", "exists")


def isdir(url: str | os.PathLike) -> bool:
    return _test(url, "is_dir", "isdir")


def isfile(url: str | os.PathLike) -> bool:
    return _test(url, "is_file", "isfile")


def _url(url: str, fs, path: str) -> str:
    proto = protocol(url)
    return f"{proto}://{path.lstrip('/')}" if proto != "memory" else f"memory://{path}"


def list_files(url: str | os.PathLike) -> list[str]:
    """Every file below a folder/prefix, recursively, sorted (local: absolute paths; else URLs)."""
    if is_local(url):
        return sorted(str(p) for p in local_path(url).resolve().rglob("*") if p.is_file())
    fs, path = filesystem(url)
    with errors(url):
        found = fs.find(path)
    return sorted(_url(os.fspath(url), fs, p) for p in found)


def glob(pattern: str) -> list[str]:
    """Files matching a glob (`**` recursive), sorted (local: absolute paths; else URLs)."""
    if is_local(pattern):
        return sorted(str(Path(m).resolve()) for m in globlib.glob(str(local_path(pattern)), recursive=True))
    fs, path = filesystem(pattern)
    with errors(pattern):
        found = fs.glob(path)
    return sorted(_url(pattern, fs, p) for p in found)


def glob_in(folder: str | os.PathLike, pattern: str) -> list[str]:
    """Files directly in `folder` whose name matches `pattern`, sorted. Only the name is a pattern: a folder
    whose own path holds `[`, `*` or `?` is taken literally (glob(join(folder, "*.tar")) would not be)."""
    if is_local(folder):
        d = local_path(folder).resolve()
        return sorted(str(p) for p in d.iterdir() if p.is_file() and fnmatch.fnmatchcase(p.name, pattern)) \
            if d.is_dir() else []
    fs, path = filesystem(folder)
    with errors(folder):
        found = fs.ls(path, detail=True) if fs.isdir(path) else []
    return sorted(_url(os.fspath(folder), fs, d["name"]) for d in found
                  if d.get("type") == "file" and fnmatch.fnmatchcase(name(d["name"]), pattern))


def arrow_dataset(urls: list[str]):
    """A pyarrow Dataset over Parquet files (paths or URLs of one store), scanned lazily and streamed: what
    DuckDB is given as a registered table, so no path becomes SQL and no file is copied first."""
    import pyarrow.dataset as ds  # lazy, as pyarrow.fs below: only `curate stats`/download scan datasets

    if not urls or is_local(urls[0]):
        return ds.dataset([str(local_path(u)) for u in urls], format="parquet")
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, _ = filesystem(urls[0])
    with errors(urls[0]):
        return ds.dataset([filesystem(u)[1] for u in urls], format="parquet",
                          filesystem=PyFileSystem(FSSpecHandler(fs)))


def has_magic(p: str) -> bool:
    return any(c in p for c in "*?[")


def fingerprint(url: str | os.PathLike) -> dict:
    """Identity of an input file without reading it: local {path, size, mtime_ns} (as core.outputs.file_fingerprint);
    object stores {path, size, etag, mtime} (whatever the store reports)."""
    if is_local(url):
        st = os.stat(local_path(url))
        return {"path": str(local_path(url).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    d = info(url)
    mtime = d.get("LastModified") or d.get("mtime") or d.get("created") or d.get("updated")
    etag = d.get("ETag") or d.get("etag") or d.get("md5Hash") or d.get("lfs", {}) and d["lfs"].get("sha256")
    return {"path": normalize(url), "size": int(d.get("size") or 0), "etag": str(etag).strip('"') if etag else None,
            "mtime": str(mtime) if mtime is not None else None}


def content_hash(url: str | os.PathLike, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open_input(url) as f, errors(url):
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


COPY_IN_USE = ".worldclip-in-use"  # in every local_copy folder: flock'ed shared by each process using it
_CLAIMED: list[int] = []  # fds of those locks, held for the life of this process


def _claim(folder: Path) -> bool:
    """Mark `folder` as used by this process until it exits (a shared flock on its COPY_IN_USE); False when the
    folder is gone or was being removed."""
    import fcntl

    try:
        fd = os.open(folder / COPY_IN_USE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    fcntl.flock(fd, fcntl.LOCK_SH)
    if not (folder / COPY_IN_USE).exists():  # removed while we waited for the lock
        os.close(fd)
        return False
    _CLAIMED.append(fd)
    return True


def _remove_unused(folder: Path) -> bool:
    """Remove a copy (or a killed copy's temp folder) that no live process holds; False when one does."""
    import fcntl
    import shutil

    marker = folder / COPY_IN_USE
    try:
        fd = os.open(marker, os.O_RDONLY)
    except FileNotFoundError:  # a temp folder cut before its marker: only once it is clearly abandoned
        if folder.name.startswith(".") and time.time() - folder.stat().st_mtime > 600:
            shutil.rmtree(folder, ignore_errors=True)
            return True
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    try:
        trash = folder.with_name(f".{folder.name}.trash-{uuid.uuid4().hex[:8]}")  # a killed removal: found again
        os.rename(folder, trash)  # at once: a process waiting to claim it finds its marker gone and copies anew
        shutil.rmtree(trash, ignore_errors=True)
    finally:
        os.close(fd)
    return True


def local_copy(url: str | os.PathLike, flag: str = "") -> str:
    """A local folder with the files below `url`, for libraries that read only local files (transformers'
    from_pretrained): a local path as it is; a URL copied once per machine into WORLDCLIP_SCRATCH (default
    the temp folder)/worldclip-copies/<source>-<version>, keyed by the URL and its objects' fingerprints, so a
    changed folder is copied anew. Each process using a copy holds it (a shared flock) until it exits; making a
    newer copy of a source removes its older copies (and temp folders of killed copies) that no live process
    holds, so scratch keeps one copy per source plus those in use.
    `flag` (e.g. "--model") starts the error line when nothing is there or a read fails."""
    if is_local(url):
        return str(local_path(url))
    prefix = f"{flag} " if flag else ""
    with errors(url, flag):
        if isfile(url):
            raise UserError(f"{prefix}{url}: a file, but a folder is needed; pass the folder that holds it "
                            f"({parent(url)})")
        base, files = normalize(url), list_files(url)
    if not files:
        raise UserError(f"{prefix}{url}: no such object or folder; "
                        "check the URL (list it with e.g. `rclone ls` or `aws s3 ls`)")
    source = hashlib.sha256(base.encode()).hexdigest()[:12]
    version = hashlib.sha256(json.dumps([base, [fingerprint(u) for u in files]]).encode()).hexdigest()[:16]
    key = f"{source}-{version}"
    root = Path(os.environ.get("WORLDCLIP_SCRATCH") or tempfile.gettempdir()) / "worldclip-copies"
    dest = root / key
    while not (dest.is_dir() and _claim(dest)):
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        (tmp / COPY_IN_USE).touch()
        _claim(tmp)  # held across the rename: the folder keeps its inode, the flock stays ours
        try:
            for u in files:
                target = tmp / normalize(u)[len(base):].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                with errors(u, flag), open_input(u) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.rename(tmp, dest)
        except OSError:  # another process copied it first
            shutil.rmtree(tmp, ignore_errors=True)
            continue
        break
    for old in root.iterdir():
        if old.is_dir() and old.name != key and old.name.lstrip(".").startswith(f"{source}-"):
            with contextlib.suppress(OSError):  # e.g. removed by another process meanwhile
                _remove_unused(old)
    return str(dest)


# ---- Parquet ------------------------------------------------------------------------------------------
# Arrow opens a local file itself. A URL's file is an fsspec (Python) object, and Arrow must then read it on
# the calling thread only: its thread pools release the Python-backed buffers of such a file after a read has
# returned, and one released while the interpreter exits aborts the process ("terminate called without an
# active exception"; a `train` that stopped on an error right after reading counts.parquet aborted 1 run in 3).
# ParquetFile, not pq.read_table: read_table imports pyarrow.dataset and pandas (~0.5-0.9 s).


class _CallingThreadParquetFile(pq.ParquetFile):
    """A ParquetFile over a URL's fsspec file, opened here and closed by close() or `with`, whose reads never run
    on Arrow's thread pools (see above)."""

    def __init__(self, url: str):
        super().__init__(open_input(url), pre_buffer=False)
        self._close_source = True

    def read(self, *args: Any, **kwargs: Any) -> pa.Table:
        return super().read(*args, **{**kwargs, "use_threads": False})

    def read_row_group(self, *args: Any, **kwargs: Any) -> pa.Table:
        return super().read_row_group(*args, **{**kwargs, "use_threads": False})

    def read_row_groups(self, *args: Any, **kwargs: Any) -> pa.Table:
        return super().read_row_groups(*args, **{**kwargs, "use_threads": False})

    def iter_batches(self, *args: Any, **kwargs: Any) -> Iterator[pa.RecordBatch]:
        return super().iter_batches(*args, **{**kwargs, "use_threads": False})


def parquet_file(url: str | os.PathLike) -> pq.ParquetFile:
    """A Parquet file by local path or URL, for its footer and streamed reads (object stores: ranged reads of
    the footer and of the columns read); use it with `with` to close it."""
    if is_local(url):
        return pq.ParquetFile(str(local_path(url)))
    with errors(url):
        return _CallingThreadParquetFile(os.fspath(url))


def read_parquet(url: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """A whole Parquet file, or some of its columns, by local path or URL."""
    with errors(url), parquet_file(url) as f:
        return f.read(columns=columns)


# ---- writing ------------------------------------------------------------------------------------------

def _writable(url: str) -> None:
    if protocol(url) in READ_ONLY:
        raise UserError(f"{url}: {protocol(url)}:// is read-only here; write outputs to a local path, s3:// or gs://")


@contextlib.contextmanager
def open_output(url: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file for writing; `url` appears whole when the block succeeds, and not at all otherwise.

    Local: a temp file in the same folder, fsynced and renamed. s3/gs: one upload (single PUT or multipart)
    that the store makes visible only on completion, aborted on error. Other stores: staged in a spooled
    temp file and put in one call.
    """
    s = os.fspath(url)
    if is_local(s):
        with atomic_path(local_path(s)) as tmp, open(tmp, "wb") as f:
            yield f
        return
    _writable(s)
    fs, path = filesystem(s)
    if protocol(s) in MULTIPART:
        with errors(s):
            f = fs.open(path, "wb")
        try:
            yield f
        except BaseException:
            with contextlib.suppress(Exception):
                f.discard()
            f.closed = True
            raise
        with errors(s):
            f.close()
        return
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as tmp:
        yield tmp
        tmp.seek(0)
        with errors(s):
            fs.makedirs(fs._parent(path), exist_ok=True)
            fs.pipe_file(path, tmp.read())


def write_bytes(url: str | os.PathLike, data: bytes) -> None:
    if is_local(url):
        write_bytes_atomic(local_path(url), data)
        return
    with open_output(url) as f:
        f.write(data)


def write_json(url: str | os.PathLike, obj: Any) -> None:
    """JSON as core.atomic.write_json_atomic writes it."""
    write_bytes(url, json_bytes(obj))


def write_parquet(url: str | os.PathLike, table: pa.Table, **kwargs: Any) -> None:
    with open_output(url) as f:
        pq.write_table(table, f, **kwargs)


def remove(url: str | os.PathLike, recursive: bool = True) -> None:
    """Remove a file or folder/prefix if it is there."""
    if is_local(url):
        p = local_path(url)
        if p.is_dir():
            shutil.rmtree(p) if recursive else p.rmdir()
        else:
            p.unlink(missing_ok=True)
        return
    fs, path = filesystem(url)
    with errors(url):
        if fs.exists(path):
            fs.rm(path, recursive=recursive)


def makedirs(url: str | os.PathLike) -> None:
    """Local folders are created; object stores have no folders (a no-op there)."""
    if is_local(url):
        local_path(url).mkdir(parents=True, exist_ok=True)


# ---- commit protocol ------------------------------------------------------------------------------------

class Journal:
    """Append-only records of finished units of work in `folder`, the commit marker of each unit.

    Local: `folder/<name>.jsonl`, one fsynced line per record (a line torn by a crash is ignored).
    Object stores: one object `folder/<name>.journal/<key>.json` per record (no append there).
    """

    def __init__(self, folder: str | os.PathLike, name: str) -> None:
        self.folder, self.name = os.fspath(folder), name
        self.local = is_local(folder)

    @property
    def location(self) -> str:
        return join(self.folder, f"{self.name}.jsonl" if self.local else f"{self.name}.journal")

    def append(self, key: str, record: dict) -> None:
        if self.local:
            path = local_path(self.location)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
        else:
            write_bytes(join(self.location, f"{key}.json"), json.dumps(record, ensure_ascii=False).encode())

    def records(self) -> list[dict]:
        """Every committed record, in append order locally and key order on object stores."""
        out: list[dict] = []
        if self.local:
            path = local_path(self.location)
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        else:
            lines = [read_bytes(u).decode() for u in list_files(self.location) if u.endswith(".json")] \
                if exists(self.location) else []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def clear(self) -> None:
        remove(self.location)


def _owner() -> dict:
    return {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with this pid exists (a stale lock or scratch file's owner does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_is_stale(held: dict, stale_s: float) -> bool:
    if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int) and not pid_alive(held["pid"]):
        return True
    return time.time() - float(held.get("heartbeat", 0)) > stale_s


class _LockObject:
    """A lock object `folder/.lock.json` {owner, host, pid, started, heartbeat}, refreshed by a thread."""

    def __init__(self, folder: str, stale_s: float) -> None:
        self.url, self.stale_s = join(folder, LOCK_NAME), stale_s
        self.me = {**_owner(), "started": time.time()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        write_bytes(self.url, json.dumps({**self.me, "heartbeat": time.time()}).encode())

    def _held(self) -> dict | None:
        try:
            return json.loads(read_bytes(self.url)) if exists(self.url) else None
        except (ValueError, UserError):
            return None

    def acquire(self) -> None:
        held = self._held()
        if held and held.get("owner") != self.me["owner"] and not _lock_is_stale(held, self.stale_s):
            raise UserError(f"{parent(self.url)} is in use by another run (lock object {self.url}: {held.get('host')} "
                            f"pid {held.get('pid')}, heartbeat {time.time() - float(held.get('heartbeat', 0)):.0f}s "
                            f"ago); wait for it, or if that run is dead rerun after {self.stale_s:.0f}s without "
                            "a heartbeat, or choose another --out")
        self._write()
        time.sleep(min(0.25, self.stale_s / 10))  # longer than one request: a racing writer shows by then
        now = self._held()
        if not now or now.get("owner") != self.me["owner"]:
            raise UserError(f"{parent(self.url)}: another run took the lock object {self.url} at the same time; "
                            "wait for it or choose another --out")
        self._thread = threading.Thread(target=self._beat, daemon=True, name="worldclip-lock-heartbeat")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.stale_s / 4):
            with contextlib.suppress(Exception):
                self._write()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = self._held()
        if held and held.get("owner") == self.me["owner"]:
            with contextlib.suppress(UserError):
                remove(self.url)


@contextlib.contextmanager
def lock(folder: str | os.PathLike, wait_s: float = 3.0, stale_s: float | None = None) -> Iterator[None]:
    """Exclusive use of an output folder for one run; a second concurrent run is refused in one line.

    Local: core.locks.output_lock (flock on folder/.lock). Object stores: a lock object with owner and
    heartbeat, refused while fresh; stale when its heartbeat is older than `stale_s` (default
    WORLDCLIP_LOCK_STALE_S, 60 s) or its owner was a process of this host that no longer exists.
    """
    if is_local(folder):
        with output_lock(local_path(folder), wait_s=wait_s):
            yield
        return
    _writable(os.fspath(folder))
    obj = _LockObject(os.fspath(folder), LOCK_STALE_S if stale_s is None else stale_s)
    obj.acquire()
    try:
        yield
    finally:
        obj.release()
