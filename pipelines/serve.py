"""The URL variant of the demo: the demo images on a local http.server, and a URL-only pool pointing there.

`export_images(pool, www)` writes each downloaded image of an img2dataset pool to `www/<url file name>`;
`serve_folder(www)` is a context manager yielding the base URL (`http://127.0.0.1:PORT`) of a threaded
`http.server` serving it in a background thread (missing files answer 404, as dead links on the web
do); `write_url_pool(pool, out, base_url)` writes the pool's alt-texts as a Parquet pool with only
`url` and `text`, the urls moved to `base_url`. `python -m pipelines.serve DIR [--port P]` serves
in the foreground.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from core.atomic import write_bytes_atomic, write_parquet_atomic
from core.errors import UserError


def export_images(pool: str | Path, www: str | Path) -> int:
    """Write every image of an img2dataset pool folder to `www/<file name of its url>`; returns how many.
    Tars are read with core.tars, so one cut off (even at a member boundary) is an error naming it."""
    import json

    from core.tars import TarDamaged
    from core.tars import members as tar_members

    written = 0
    for tar_path in sorted(Path(pool).glob("*.tar")):
        try:
            with open(tar_path, "rb") as f:
                members = {m.name: data for m, data in tar_members(f, lambda m: True)}
        except TarDamaged as e:
            raise UserError(f"{tar_path}: {e}; rebuild the demo pool") from e
        for name, data in members.items():
            if not name.endswith(".json"):
                continue
            meta = json.loads(data)
            image = members.get(name.removesuffix(".json") + ".jpg")
            if image is None:
                continue
            target = Path(www) / meta["url"].rsplit("/", 1)[1]
            if not target.exists():
                write_bytes_atomic(target, image)
                written += 1
    return written


def write_url_pool(pool: str | Path, out: str | Path, base_url: str) -> Path:
    """A URL-only Parquet pool (`url`, `text`) from an img2dataset pool's rows (all statuses: a url
    whose image was never downloaded has no file to serve and answers 404)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    urls: list[str] = []
    texts: list[str] = []
    for parquet in sorted(Path(pool).glob("*.parquet")):
        for row in pq.read_table(parquet, columns=["url", "caption"]).to_pylist():
            urls.append(f"{base_url.rstrip('/')}/{row['url'].rsplit('/', 1)[1]}")
            texts.append(row["caption"])
    if not urls:
        raise UserError(f"{pool}: no img2dataset *.parquet files to turn into a URL pool")
    write_parquet_atomic(out, pa.table({"url": urls, "text": texts}))
    return Path(out)


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        pass


@contextlib.contextmanager
def serve_folder(folder: str | Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `folder` over HTTP until the block ends; yields the base URL (port 0 = any free port)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; nothing to serve")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="demo-http-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="folder to serve")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 = any free port)")
    args = parser.parse_args(argv)
    try:
        with serve_folder(args.folder, port=args.port) as url:
            print(f"serving {args.folder} at {url}/ (Ctrl-C to stop)")
            threading.Event().wait()
    except UserError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
