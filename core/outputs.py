"""Output folders: identity of inputs (fingerprints), and what --overwrite may remove.

Every stage prepares its --out through prepare_output so a rerun resumes, a changed run is refused and an
input is never deleted.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

from core import storage
from core.errors import UserError


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
