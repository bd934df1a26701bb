"""Fixtures of the reliability suite: one local Ray instance shared by every test that needs it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Subprocess drivers join the shared instance without a token. Set at collection time, before any test
# starts Ray in this process: Ray keeps the auth mode of a process's first session, and a later session
# started with another mode cannot lease workers for its actors.
os.environ["RAY_AUTH_MODE"] = "disabled"


@pytest.fixture(scope="session")
def ray_address() -> str:
    """A local 2-CPU Ray instance (in this process) that subprocess drivers join with --ray-address.
    tests/reliability is put on the workers' PYTHONPATH so fault-injection wrappers can be imported there."""
    import ray

    here = str(Path(__file__).resolve().parent)
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
