"""The one executor of curation, and the only module that imports Ray.

`Executor(workers, address, fork=)` runs work
- in this process when workers == 1 and no --ray-address is given (Ray is not even imported);
- with `fork=True` (the caller's driver is fork-safe, see curation.fork_pool, and `fork_safe` of its paths),
  more than one worker, no address and no Ray initialised in this process: on worker processes forked from this one
  (curation.fork_pool), which share what the driver built before forking (META, matchers, arrays)
  copy-on-write, so a local run pays no Ray start and no per-worker load or build;
- otherwise on Ray: it joins the cluster at `address`, reuses an initialised Ray, or starts a local
  one (and shuts down only what it started, on close), and runs either
  - `map`: a function over argument tuples as Ray tasks (1 CPU each), results in input order, or
  - `map_actors`: argument tuples streamed to a pool of long-lived actors (one per worker, at most
    `in_flight` calls queued per actor), each result handed to `on_result` as it arrives; an actor
    holds what is costly to build (matchers, models) across calls.
The same `map` and `map_actors` run in every mode. Errors take one path: a UserError raised in a task,
actor or forked worker reaches the caller as that UserError (one line, not a remote traceback); a worker
that died (and, on Ray, could not be restarted) is a UserError naming the item and saying that a rerun
resumes; anything else propagates as it is.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable

from tqdm import tqdm

from core import storage
from core.errors import UserError
from curation import fork_pool

STORAGE_ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCS", "HF_", "FSSPEC_", "WORLDCLIP_STORAGE_OPTIONS")


def storage_env() -> dict[str, str]:
    """The storage credentials/endpoints/options of this process, for Ray workers on other nodes."""
    return {k: v for k, v in os.environ.items() if k.startswith(STORAGE_ENV_PREFIXES)}


def _ray():
    import ray  # lazy: importing Ray costs seconds and an in-process run (--workers 1) never needs it

    return ray


def ensure_ray(workers: int | None, address: str | None) -> bool:
    """Join the cluster at `address`, reuse an initialised Ray, or start a local one; True if started here.

    A local start never attaches to another `ray start` on this machine (address="local"); a cluster
    that cannot be joined is a UserError naming --ray-address.
    """
    ray = _ray()
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


def fork_safe(paths: Iterable[str]) -> bool:
    """Whether a driver that read and writes `paths` may fork: only when all are local. A driver holding
    object-store connections must not fork: a child can take one over (seen as the driver's next S3 call
    hanging)."""
    return all(storage.is_local(p) for p in paths)


def _ray_initialized() -> bool:
    ray = sys.modules.get("ray")  # not imported: not initialised either (and importing it costs seconds)
    return ray is not None and ray.is_initialized()


def _raise_one_line(e: Exception, what: str) -> None:
    """Re-raise a Ray error the one way: the remote UserError itself, a dead worker as a UserError, else as is."""
    ray = _ray()
    cause = getattr(e, "cause", None)
    if isinstance(cause, UserError):
        raise UserError(str(cause)) from None
    if isinstance(e, ray.exceptions.RayActorError):
        raise UserError(f"a worker died while processing {what} and could not be restarted; rerun the same command "
                        f"to resume ({e})") from e
    raise e


class Executor:
    """Runs work in this process (workers == 1, no address), on forked workers, as Ray tasks or on long-lived
    Ray actors."""

    def __init__(self, workers: int | None, address: str | None, *, fork: bool = False) -> None:
        self.in_process = workers == 1 and address is None
        self.forked = (fork and not self.in_process and address is None and fork_pool.available()
                       and not _ray_initialized())
        self.own = False
        self.workers = 1
        if self.forked:
            self.workers = workers or os.cpu_count() or 1
        elif not self.in_process:
            self.own = ensure_ray(workers, address)
            self.workers = workers or max(int(_ray().cluster_resources().get("CPU", 1)), 1)

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Shut Ray down when this executor started it."""
        if self.own:
            _ray().shutdown()
            self.own = False

    def gpus(self) -> int:
        """GPUs of the Ray cluster (0 in process or forked)."""
        return 0 if self.in_process or self.forked else int(_ray().cluster_resources().get("GPU", 0))

    def map(self, fn: Callable, items: list[tuple], desc: str, shared: dict[str, Any] | None = None) -> list:
        """fn(*item, **shared) for every item, results in input order; `shared` is put in Ray's store once."""
        shared = shared or {}
        if not items:
            return []
        with tqdm(total=len(items), desc=desc, unit="task", leave=False) as bar:  # closed on errors too
            if self.in_process:
                out = []
                for item in items:
                    out.append(fn(*item, **shared))
                    bar.update()
                return out
            if self.forked:
                return self._map_forked(fn, items, shared, desc, bar)
            ray = _ray()
            remote = ray.remote(num_cpus=1)(fn)
            refs = {k: ray.put(v) for k, v in shared.items()}
            futures = [remote.remote(*item, **refs) for item in items]
            pending = list(futures)
            try:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    ray.get(done)  # a failed task stops the run here, not after all the others
                    bar.update(len(done))
                return ray.get(futures)
            except ray.exceptions.RayError as e:
                _raise_one_line(e, desc)

    def _map_forked(self, fn: Callable, items: list[tuple], shared: dict[str, Any], desc: str, bar) -> list:
        out: list = [None] * len(items)

        def done(item: tuple, result: Any) -> None:
            out[item[0]] = result
            bar.update()

        fork_pool.run(lambda i, item: fn(*item, **shared), list(enumerate(items)), done, in_flight=1,
                      n=min(self.workers, len(items)), describe=lambda it: f"{desc} task {it[0] + 1} of {len(items)}")
        return out

    def map_actors(self, cls: type, args: tuple, method: str, items: Iterable[tuple],
                   on_result: Callable[[tuple, Any], None], *, n: int | None = None, in_flight: int = 2,
                   options: dict | None = None, probe: str | None = None, warm: str | None = None,
                   describe: Callable[[tuple], str] = repr) -> Any:
        """Call `method(*item)` for every item on min(n or workers, items) actors `cls(*args)`; on_result(item,
        result) as each finishes. `options`: Ray actor options (resources, restarts); `probe`: a method
        called once on the first actor, whose result is returned (e.g. what the actors run); `warm`: a method
        called once before forking (forked mode only) with the number of workers, to build (on as many threads)
        what every worker then inherits; its threads must end before it returns."""
        items = list(items)
        n = max(1, min(n or self.workers, len(items)))
        if self.in_process or self.forked:
            obj = cls(*args)
            if self.forked and warm:
                getattr(obj, warm)(n)
            found = getattr(obj, probe)() if probe else None
            if self.in_process:
                for item in items:
                    on_result(item, getattr(obj, method)(*item))
            elif items:
                fork_pool.run(getattr(obj, method), items, on_result, n=n, in_flight=in_flight, describe=describe)
            return found
        ray = _ray()
        actor_cls = ray.remote(**(options or {"num_cpus": 1}))(cls)
        actors = [actor_cls.remote(*args) for _ in range(n)]
        queue, pending = iter(items), {}

        def submit(actor) -> None:
            item = next(queue, None)
            if item is not None:
                pending[getattr(actor, method).remote(*item)] = (item, actor)

        try:
            try:
                found = ray.get(getattr(actors[0], probe).remote()) if probe else None
            except ray.exceptions.RayError as e:
                _raise_one_line(e, "its first call")
            for actor in actors:
                for _ in range(in_flight):
                    submit(actor)
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                item, actor = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as e:
                    _raise_one_line(e, describe(item))
                on_result(item, result)
                submit(actor)
            return found
        finally:
            for a in actors:
                ray.kill(a)
