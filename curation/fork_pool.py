"""Worker processes forked from the driver: what the driver built before forking (META, matchers, shared
arrays) is theirs copy-on-write, and only the items and results cross a pipe (pickled).

`run(call, items, on_result, n=, in_flight=, describe=)` forks n workers, streams the items to them (at
most `in_flight` queued per worker), and calls on_result(item, call(*item)) in the driver as each result
arrives. Errors (curation.executor's one path): a UserError raised in a worker reaches the caller as that
UserError (one line); any other exception is re-raised as it is, with the worker's traceback as a note; a
worker that dies (killed, out of memory) is a UserError naming its item and saying that a rerun resumes.
On an error or an interrupt the other workers are killed; on success they exit when their pipe closes.

Forking is safe only when no other thread of the driver holds a lock the work needs: callers fork before
torch/OpenMP, CUDA or DuckDB threads exist (Arrow and jemalloc reset their thread pools in a child). Workers
ignore SIGINT (the driver stops them) and exit when the driver is gone (their pipe reaches end of file).
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import pickle
import signal
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable

import pyarrow as pa

from core.errors import UserError


def available() -> bool:
    """Whether this platform can fork (Linux, macOS), the only start method that shares the driver's state."""
    return "fork" in mp.get_all_start_methods()


@dataclass
class _Worker:
    proc: Any  # multiprocessing.Process of the fork context
    conn: Connection
    queued: deque = field(default_factory=deque)  # items sent and not answered, oldest (running) first


def _outcome(call: Callable, item: tuple) -> tuple:
    """("ok", result), ("user", message) or ("error", exception, traceback) of call(*item)."""
    try:
        return ("ok", call(*item))
    except UserError as e:
        return ("user", str(e))
    except Exception as e:
        return ("error", _picklable(e), traceback.format_exc())


def _picklable(e: Exception) -> Exception:
    try:
        pickle.dumps(e)
        return e
    except Exception:
        return RuntimeError(repr(e))


def _serve(call: Callable, conn: Connection, others: list[Connection]) -> None:
    """A worker's loop: receive an item, send its outcome, until the driver closes the pipe or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for c in others:  # the driver's ends: a sibling holding them would hide the driver's exit from a worker
        c.close()
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        out = _outcome(call, item)
        try:
            conn.send(out)
        except Exception as e:  # an unpicklable result
            conn.send(("error", RuntimeError(f"cannot send the result back: {e!r}"), traceback.format_exc()))


def _release_free_memory() -> None:
    """Hand the driver's freed memory back to the system before forking (at 3M rows of build-index: 600 -> 350
    MiB): workers would copy those pages of garbage on first write, and each fork copies fewer page tables."""
    pa.default_memory_pool().release_unused()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
    if trim is not None:
        trim(0)


def _start(call: Callable, n: int) -> list[_Worker]:
    _release_free_memory()
    ctx = mp.get_context("fork")
    workers: list[_Worker] = []
    for _ in range(n):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(call, theirs, [w.conn for w in workers] + [mine]), daemon=True)
        proc.start()
        theirs.close()  # the worker holds the only copy: its death is end of file here
        workers.append(_Worker(proc, mine))
    return workers


def _stop(workers: list[_Worker], kill: bool) -> None:
    for w in workers:
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.conn.close()
    for w in workers:
        w.proc.join()


def _died(w: _Worker, what: str) -> UserError:
    w.proc.join(timeout=5)
    code = w.proc.exitcode
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return UserError(f"a worker died while processing {what} ({how}); rerun the same command to resume")


def _result(msg: tuple) -> Any:
    """The result a worker sent, or its error raised here (a UserError as one line)."""
    if msg[0] == "ok":
        return msg[1]
    if msg[0] == "user":
        raise UserError(msg[1])
    err, tb = msg[1], msg[2]
    err.add_note(f"raised in a forked worker:\n{tb}")
    raise err


def run(call: Callable, items: Iterable[tuple], on_result: Callable[[tuple, Any], None], *, n: int,
        in_flight: int = 2, describe: Callable[[tuple], str] = repr) -> None:
    """call(*item) for every item on n forked workers; on_result(item, result) in the driver as each arrives."""
    queue = iter(items)
    workers = _start(call, n)
    ok = False

    def submit(w: _Worker) -> None:
        item = next(queue, None)
        if item is None:
            return
        w.queued.append(item)
        try:
            w.conn.send(item)
        except OSError:  # the worker is gone
            raise _died(w, describe(w.queued[0])) from None

    try:
        for w in workers:
            for _ in range(in_flight):
                submit(w)
        while busy := {w.conn: w for w in workers if w.queued}:
            for conn in wait(list(busy)):
                w = busy[conn]
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # end of file, or a reset when it died with items unread
                    raise _died(w, describe(w.queued[0])) from None
                on_result(w.queued.popleft(), _result(msg))
                submit(w)
        ok = True
    finally:
        _stop(workers, kill=not ok)
