"""Benchmark `curate metadata build --langs all` (issue 3 target: < 2 minutes on 2 cores) and
`load_entries` (what build-index pays to read and validate META).

    .venv/bin/python benchmarks/metadata_build.py [--langs all] [--out DIR]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="all", help="languages to build (default all)")
    parser.add_argument("--out", default=None, help="META folder (default: a temporary folder, removed after)")
    args = parser.parse_args()

    from metadata.packaged import build
    from metadata.store import load_entries

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-meta-")) / "META"
    try:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        result = build(args.langs, str(out), progress=False)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        t1 = time.perf_counter()
        table = load_entries(out)
        load_s = time.perf_counter() - t1
        size_mb = (out / "entries.parquet").stat().st_size / 2**20
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"build --langs {args.langs}: {len(result['langs'])} languages, {table.num_rows} entries, "
              f"{build_s:.1f} s wall ({build_cpu:.1f} s CPU), entries.parquet {size_mb:.1f} MiB, peak RSS {peak_mb:.0f} MiB")
        print(f"load_entries (read + validate): {load_s:.2f} s")
    finally:
        if not args.out:
            shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
