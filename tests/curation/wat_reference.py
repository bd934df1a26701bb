"""The line-scanning WAT parser worldclip used before FastWARC (curation/pool.py at 2026-11-29), kept
verbatim as the oracle: on valid WAT files the FastWARC reader must give the same texts, urls and rows."""
from __future__ import annotations

import gzip
import io
import json
from urllib.parse import urljoin

WAT_TEXT_KEYS = ("alt", "title", "data-image-title")


def _clean(s: str) -> str:
    return s.encode("utf-8", "replace").decode("utf-8") if any(0xD800 <= ord(c) <= 0xDFFF for c in s) else s


def reference_wat_rows(path) -> list[dict]:
    """[{text, url, row}] as the old `_read_wat` produced them (bad urls skipped, as it counted them)."""
    rows, row, target = [], 0, None
    with gzip.open(path, "rb") as f:
        for raw in io.BufferedReader(f, 1 << 20):
            line = raw.strip()
            if line.startswith(b"WARC-Target-URI:"):
                target = line[len(b"WARC-Target-URI:"):].strip().decode("utf-8", "replace")
                continue
            if target is None or not line.startswith(b"{"):
                continue
            page, target = target, None
            try:
                links = json.loads(line)["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"][
                    "HTML-Metadata"].get("Links") or []
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            for link in links:
                if not isinstance(link, dict) or not str(link.get("path") or "").startswith("IMG@/src") \
                        or not link.get("url"):
                    continue
                try:
                    url = _clean(urljoin(page, str(link["url"])))
                except ValueError:
                    continue
                for k in WAT_TEXT_KEYS:
                    if isinstance(link.get(k), str):
                        rows.append({"text": _clean(link[k]), "url": url, "row": row})
                        row += 1
    return rows
