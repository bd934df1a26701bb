"""Language-identify every alt-text of the pool, match it against its language's metadata entries (MetaCLIP 2
substring matching) and count matches per entry. Rerunning the same command resumes an interrupted run.
"""
from __future__ import annotations

import argparse

from core.flags import POSITIVE_INT
from curation.index import PART_SIZE
from matching.matcher import BACKENDS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-index", help="match a pool of alt-texts against metadata entries -> INDEX",
        description=__doc__)
    p.add_argument("--pool", nargs="+", required=True, metavar="PATH",
                   help="Parquet files/folders/globs, img2dataset output folders, WebDataset .tar files, "
                        "Common Crawl .warc.wat.gz files or a wat.paths.gz listing (with --pool-base); local "
                        "paths or URLs (s3://, gs://, hf://, file://), globs allowed")
    p.add_argument("--pool-base", default=None, metavar="URL",
                   help="what the lines of a Common Crawl listing given to --pool (wat.paths.gz) are relative to, "
                        "e.g. s3://commoncrawl/ or a local mirror folder")
    p.add_argument("--metadata", required=True, metavar="META", help="metadata folder holding entries.parquet")
    p.add_argument("--out", required=True, metavar="INDEX", help="output INDEX folder")
    p.add_argument("--lid", default="auto", metavar="auto|fasttext|none|column:NAME",
                   help="language of each text: auto = a 'lang' column when present (nulls detected), else "
                        "fastText lid.176; fasttext = always detect; column:NAME = trust that column only; "
                        "none = one language, match against all entries (MetaCLIP 1) (default: auto)")
    p.add_argument("--compat", choices=["metaclip"], default=None,
                   help="reproduce MetaCLIP 2's reference matching exactly (kana-initial entries padded)")
    p.add_argument("--text-column", default=None,
                   help="alt-text column of Parquet pools (default: text; caption for img2dataset folders)")
    p.add_argument("--uid-column", default=None,
                   help="image id column (default: uid if present, else derived from url or file+row)")
    p.add_argument("--url-column", default=None, help="image URL column (default: url if present)")
    p.add_argument("--image-column", default=None,
                   help="image-bytes column of a Parquet pool (default: image/jpg/png/webp/image_bytes if present)")
    p.add_argument("--workers", type=POSITIVE_INT, default=None,
                   help="workers (1: in this process; more: processes forked from this one, sharing its META and "
                        "matchers, or a local Ray when a path is a URL; with --ray-address: Ray actors on the "
                        "cluster; default: all CPUs of the machine or cluster)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="run the workers on this running Ray cluster (e.g. 10.0.0.1:6379)")
    p.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                   help="substring matcher backend; every backend gives the same matches. auto = ngram: hashed "
                        "n-gram lookups walked by a C kernel built at install (a numpy walk without a compiler); "
                        "pyahocorasick = MetaCLIP's loop; ahocorasick_rs = one batched automaton (default: auto)")
    p.add_argument("--part-size", type=POSITIVE_INT, default=PART_SIZE, metavar="ROWS",
                   help="rows per part of Parquet/img2dataset files, the unit of work and of resume "
                        "(a tar is one part, a WAT file one part per 64 MiB) (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing INDEX in --out and start over")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from curation.build_index_run import build_index, summary_line

    manifest = build_index(args.pool, args.metadata, args.out, lid=args.lid, compat=args.compat == "metaclip",
                           text_column=args.text_column, uid_column=args.uid_column, url_column=args.url_column,
                           image_column=args.image_column, workers=args.workers, ray_address=args.ray_address,
                           backend=args.backend, part_size=args.part_size, overwrite=args.overwrite,
                           pool_base=args.pool_base)
    print(summary_line(manifest, args.out))
    return 0
