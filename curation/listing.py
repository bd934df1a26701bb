"""Common Crawl path listings as pools: `wat.paths.gz` (or any `*.paths[.gz]`) names one object key per line,
relative to the crawl's bucket; `--pool-base` (e.g. `s3://commoncrawl/` or a local mirror) is put in front.

The listed objects are trusted, not listed or opened here (a crawl names 80,000+ files); one that is gone
is reported when its part is read.
"""
from __future__ import annotations

import gzip

from core import storage
from core.errors import UserError

SUFFIXES = (".paths.gz", ".paths")


def is_listing(arg: str) -> bool:
    return storage.name(arg).endswith(SUFFIXES)


def listing_urls(arg: str, base: str | None) -> list[str]:
    """The files a listing names, joined to `base`; a relative line without a base is a UserError."""
    with storage.errors(arg, "--pool"):
        data = storage.read_bytes(arg)
    try:
        text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise UserError(f"--pool {arg}: not a readable path listing ({type(e).__name__}: {e})") from e
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise UserError(f"--pool {arg}: the listing names no file")
    if base is None:
        relative = next((x for x in lines if storage.is_local(x) and not x.startswith("/")), None)
        if relative is not None:
            raise UserError(f"--pool {arg}: names relative paths such as {relative}; give what they are relative "
                            "to with --pool-base (e.g. --pool-base s3://commoncrawl/)")
        return lines
    return [storage.join(base, x) for x in lines]
