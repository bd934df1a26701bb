"""Where a run's files live when `--out` is a URL (s3://, gs://): a local staging folder mirrored to the store.

Checkpoints go to the store directly (training.checkpoint, training.dcp_checkpoint). The append-only logs
(metrics.jsonl, samples/rank*.jsonl) and config.json are written locally and uploaded, each as one whole
object, after every checkpoint, so the store always holds logs that agree with a committed step; plots, the
exported `hf/` folder and eval.json are uploaded at the end. A resumed run first downloads the logs.
For a local `--out` the staging folder is the run folder itself and nothing is copied.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from core import storage

SAMPLES = "samples"


class RunDir:
    """`local`: the folder the trainer writes; `url`: the store folder it mirrors (None for a local run)."""

    def __init__(self, out: str, rank: int):
        self.url = None if storage.is_local(out) else storage.normalize(out)
        self.local = (storage.local_path(out) if self.url is None
                      else Path(tempfile.mkdtemp(prefix=f"worldclip-run-rank{rank}-")))
        self.rank = rank

    @property
    def root(self) -> str:
        """The run folder as checkpoints see it: the URL, or the local path."""
        return self.url or str(self.local)

    def _mine(self, rel: str, world: int) -> bool:
        """Whether this rank uploads `rel`: its own sample log; rank 0 everything else (and logs of ranks >= world)."""
        if rel.startswith(f"{SAMPLES}/rank"):
            owner = int(rel[len(SAMPLES) + 5:].split(".")[0])
            return owner == self.rank or (self.rank == 0 and owner >= world)
        return self.rank == 0

    def pull_logs(self) -> None:
        """Download metrics.jsonl and the sample logs this rank keeps (rank 0: all of them)."""
        if self.url is None:
            return
        for url in storage.list_files(self.url):
            rel = url[len(self.url) + 1:]
            wanted = rel == "metrics.jsonl" or (rel.startswith(f"{SAMPLES}/rank")
                                                and (self.rank == 0 or rel == f"{SAMPLES}/rank{self.rank}.jsonl"))
            if wanted:
                target = self.local / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(storage.read_bytes(url))

    def push(self, world: int, names: tuple[str, ...] = ("metrics.jsonl", "config.json", SAMPLES)) -> None:
        """Upload these local files or folders (relative names) that this rank owns, each as one whole object."""
        if self.url is None:
            return
        for name in names:
            path = self.local / name
            files = (sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir()
                     else [path] if path.is_file() else [])
            for f in files:
                rel = f.relative_to(self.local).as_posix()
                if self._mine(rel, world):
                    storage.write_bytes(storage.join(self.url, rel), f.read_bytes())

    def cleanup(self) -> None:
        if self.url is not None:
            shutil.rmtree(self.local, ignore_errors=True)

