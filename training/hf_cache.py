"""Local Hugging Face hub cache lookups (never the network): `snapshot("facebook/xlm-v-base")`.

The cache folder is HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
$XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub, read when called (not at import), in the
hub's layout: models--<org>--<name>/refs/<revision> naming a folder of models--<org>--<name>/snapshots/.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_cache() -> Path:
    """The hub cache folder the environment names."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "huggingface" / "hub"


def is_repo_id(name: str) -> bool:
    """True for an `org/name` model id (which is not an existing path)."""
    return bool(REPO_ID.match(name)) and not Path(name).exists()


def snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The cached snapshot folder of a model repo at `revision` (a ref or a commit hash), or None if not cached.

    Without the ref file (a cache copied by hand), the only snapshot is taken.
    """
    repo = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    ref = repo / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    folder = repo / "snapshots" / commit
    if folder.is_dir():
        return folder
    snapshots = [d for d in (repo / "snapshots").glob("*") if d.is_dir()] if not ref.is_file() else []
    return snapshots[0] if len(snapshots) == 1 else None
