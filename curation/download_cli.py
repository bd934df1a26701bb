"""Runs img2dataset over CURATED/curated.parquet (url, text as caption; uid, lang, entry_ids, text and texts
saved in each sample's json) into WebDataset shards in CURATED/shards. Failed downloads are counted in
stats.json and marked in curated.parquet. Rerunning resumes.
"""
from __future__ import annotations

import argparse

from core.flags import COUNT, POSITIVE_INT


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "download", help="download the images of a URL-only CURATED with img2dataset -> CURATED/shards",
        description=__doc__)
    p.add_argument("curated", metavar="CURATED",
                   help="folder (or s3://, gs:// URL) written by `curate balance` for a URL-only pool")
    p.add_argument("--processes", type=POSITIVE_INT, default=1, help="img2dataset processes (default: 1)")
    p.add_argument("--thread-count", type=POSITIVE_INT, default=32, help="download threads per process (default: 32)")
    p.add_argument("--image-size", type=POSITIVE_INT, default=256,
                   help="target image size when resizing (default: 256)")
    p.add_argument("--resize-mode", default="no",
                   choices=["no", "border", "keep_ratio", "keep_ratio_largest", "center_crop"],
                   help="img2dataset resize mode; 'no' keeps the downloaded bytes as they are (default: no)")
    p.add_argument("--encode-format", default="jpg", choices=["jpg", "png", "webp"],
                   help="format of re-encoded images when resizing (default: jpg)")
    p.add_argument("--timeout", type=POSITIVE_INT, default=10, help="seconds per download (default: 10)")
    p.add_argument("--retries", type=COUNT, default=0, help="retries per failed download (default: 0)")
    p.add_argument("--shard-size", type=POSITIVE_INT, default=None,
                   help="samples per shard (default: balance's --shard-size)")
    p.add_argument("--distributor", default="multiprocessing", choices=["multiprocessing", "pyspark"],
                   help="img2dataset distributor: multiprocessing (--processes on this machine) or pyspark "
                        "(the active Spark session's executors; needs pyspark) (default: multiprocessing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from curation.download import run_download

    stats = run_download(args.curated, processes=args.processes, thread_count=args.thread_count,
                         image_size=args.image_size, resize_mode=args.resize_mode, timeout=args.timeout,
                         retries=args.retries, encode_format=args.encode_format, shard_size=args.shard_size,
                         distributor=args.distributor)
    d = stats["download"]
    print(f"download: {d['attempted']} urls -> {d['downloaded']} images in {stats['totals']['shards']} shards, "
          f"{d['failed_downloads']} failed -> {args.curated}/shards")
    return 0
