"""Common Crawl WAT files read with FastWARC: image alt-texts of HTML responses, as MetaCLIP's parse_wat.

Records are found by the WARC framing (multi-member gzip, payloads of any length and line count), not by
line prefixes. Each text is an `IMG@/src` link's `alt`, `title` or `data-image-title`, with the link url
resolved against the record's WARC-Target-URI. Records that cannot hold image texts are skipped and
counted by kind (`skipped`: not_metadata, not_response, not_html, malformed_json, no_target_uri).
Damage costs only the rest of the file: a record cut short, a broken gzip member, or members after the
last record read that FastWARC could not frame raise `WatDamaged` with the byte offset, after every text
before it was yielded.
"""
from __future__ import annotations

import json
import zlib
from collections import Counter
from typing import BinaryIO, Iterator
from urllib.parse import urljoin

from fastwarc.warc import ArchiveIterator, WarcRecordType

TEXT_KEYS = ("alt", "title", "data-image-title")
_CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b\x08"


class WatDamaged(Exception):
    """A WAT file is cut off or corrupt from compressed byte `offset` on."""

    def __init__(self, offset: int, what: str):
        super().__init__(f"damaged after byte {offset} ({what}); the records before it were read")
        self.offset = offset


def clean(s: str) -> str:
    """Lone surrogates (from JSON \\ud800 escapes) cannot be stored as UTF-8: each becomes "?"."""
    return s.encode("utf-8", "replace").decode("utf-8") if any(0xD800 <= ord(c) <= 0xDFFF for c in s) else s


def image_links(f: BinaryIO, skipped: Counter, start: int = 0, stop: int | None = None
                ) -> Iterator[tuple[str, str | None]]:
    """(text, resolved image url) of every IMG@/src link text, in file order; url None where the link's
    url cannot be resolved. `skipped` counts records without image texts by kind. Raises WatDamaged after
    the last whole record.

    [start, stop): compressed bytes of a part of the file; its records are those whose gzip member starts
    there (a file that is not one member per record is read whole by the part at 0)."""
    offset, records = 0, 0
    if start:
        offset = next_member(f, start)
        if offset is None or (stop is not None and offset >= stop):
            return
        f.seek(offset)
    try:
        for record in ArchiveIterator(f, parse_http=False):
            offset, records = record.stream_pos, records + 1
            if stop is not None and offset >= stop and _member_at(f, offset):
                return  # the next part's first record
            payload = record.reader.read()
            if len(payload) < record.content_length:
                raise WatDamaged(offset, f"record cut off: {len(payload)} of {record.content_length} bytes")
            if record.record_type != WarcRecordType.metadata:
                skipped["not_metadata"] += 1
                continue
            page = record.headers.get("WARC-Target-URI")
            links = _html_links(payload, skipped)
            if links is None:
                continue
            if not page:
                skipped["no_target_uri"] += 1
                continue
            yield from _link_texts(page.strip(), links)
    except OSError as e:
        raise WatDamaged(offset, f"{type(e).__name__}: {e}") from e
    if problem := "no WARC record found" if not records and not start and f.seek(0, 2) else _unread_tail(f, offset):
        raise WatDamaged(offset, problem)


def next_member(f: BinaryIO, start: int) -> int | None:
    """Offset of the first gzip member at or after `start` that begins a WARC record, or None."""
    pos = start
    while True:
        f.seek(pos)
        chunk = f.read(_CHUNK)
        if len(chunk) < len(_GZIP_MAGIC):
            return None
        i = chunk.find(_GZIP_MAGIC)
        while i != -1:
            if _member_at(f, pos + i):
                return pos + i
            i = chunk.find(_GZIP_MAGIC, i + 1)
        pos += len(chunk) - len(_GZIP_MAGIC) + 1


def _member_at(f: BinaryIO, pos: int) -> bool:
    """Whether a gzip member holding a WARC record starts at `pos` (the read position is kept)."""
    here = f.tell()
    f.seek(pos)
    head = f.read(4096)
    f.seek(here)
    if not head.startswith(_GZIP_MAGIC):
        return False
    try:
        return zlib.decompressobj(31).decompress(head, 8).startswith(b"WARC/")
    except zlib.error:
        return False


def _html_links(payload: bytes, skipped: Counter) -> list | None:
    """The Links of an HTML response's metadata, or None (and the reason counted)."""
    try:
        envelope = json.loads(payload)["Envelope"]
    except (ValueError, KeyError, TypeError):
        skipped["malformed_json"] += 1
        return None
    meta = envelope.get("Payload-Metadata") if isinstance(envelope, dict) else None
    response = meta.get("HTTP-Response-Metadata") if isinstance(meta, dict) else None
    if not isinstance(response, dict):
        skipped["not_response"] += 1
        return None
    html = response.get("HTML-Metadata")
    if not isinstance(html, dict):
        skipped["not_html"] += 1
        return None
    links = html.get("Links") or []
    return links if isinstance(links, list) else []


def _link_texts(page: str, links: list) -> Iterator[tuple[str, str | None]]:
    for link in links:
        if not isinstance(link, dict) or not str(link.get("path") or "").startswith("IMG@/src") \
                or not link.get("url"):
            continue
        try:
            url = clean(urljoin(page, str(link["url"])))
        except ValueError:
            url = None
        for k in TEXT_KEYS:
            if isinstance(link.get(k), str):
                yield clean(link[k]), url


def _unread_tail(f: BinaryIO, pos: int) -> str | None:
    """Why a gzip WAT does not end with the member at `pos` (the last record read), or None if it does.

    FastWARC ends quietly at a member cut short and at members it cannot frame; a whole file ends with
    the last record's member. (A file cut exactly between members cannot be told from a shorter one.)
    """
    f.seek(0)
    if f.read(2) != b"\x1f\x8b":
        return None
    f.seek(pos)
    d, members, fed = zlib.decompressobj(31), 0, False
    try:
        while chunk := f.read(_CHUNK):
            while chunk:
                fed = True
                d.decompress(chunk)
                if not d.eof:
                    break
                members, chunk, fed = members + 1, d.unused_data, False
                d = zlib.decompressobj(31)
                if members > 1:
                    return "gzip members after the last record could not be read as WARC records"
    except zlib.error as e:
        return f"corrupt gzip data ({e})"
    return "gzip member cut off" if fed else None
