"""Ray for curation: join a cluster, reuse an initialised Ray, or start a local one, with storage credentials."""
from __future__ import annotations

import os

from core.errors import UserError


STORAGE_ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCS", "HF_", "FSSPEC_", "WORLDCLIP_STORAGE_OPTIONS")


def storage_env() -> dict[str, str]:
    """The storage credentials/endpoints/options of this process, for Ray workers on other nodes."""
    return {k: v for k, v in os.environ.items() if k.startswith(STORAGE_ENV_PREFIXES)}


def ensure_ray(workers: int | None, address: str | None) -> bool:
    """Join the cluster at `address`, reuse an initialised Ray, or start a local one; True if started here.

    A local start never attaches to another `ray start` on this machine (address="local"); a cluster
    that cannot be joined is a UserError naming --ray-address.
    """
    import ray

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
