"""Local output locks: flock on folder/.lock, so a second concurrent run on one folder is refused, not interleaved.

Object stores have no flock: core.storage.lock uses a lock object with owner and heartbeat there.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from core.errors import UserError

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
