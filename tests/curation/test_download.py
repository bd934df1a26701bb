"""`curate download`: img2dataset fetches a URL-only CURATED from a local http.server, 404s counted."""
import functools
import http.server
import json
import os
import tarfile
import threading

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from core.errors import UserError
from curation.balance_run import run_balance
from curation.download import run_download
from index_factory import Img, entries_table, image_bytes, make_index


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def url_only_index(tmp_path, root, base):
    """A URL-only INDEX of 12 images served from `root` at `base`, one of them a 404."""
    ent = entries_table({"en": 4, "de": 2})
    imgs = []
    for i in range(12):
        url = f"{base}/img{i}.png" if i != 5 else f"{base}/missing.png"  # one 404
        if i != 5:
            (root / f"img{i}.png").write_bytes(image_bytes(i))
        lang = "en" if i % 3 else "de"
        ids = [i % 4] if lang == "en" else [4 + i % 2]
        texts = [(f"a photo {i}", lang, ids)] + ([(f"another {i}", lang, ids)] if i % 4 == 0 else [])
        imgs.append(Img(f"u{i:03d}", texts, None, url))
    return make_index(tmp_path, imgs, ent, kind="url")


@pytest.mark.slow
def test_download_url_only_pool(tmp_path, server):
    root, base = server
    built = url_only_index(tmp_path, root, base)
    cur = tmp_path / "CUR"
    stats = run_balance(built.index, cur, t=1000, shard_size=5, workers=1)  # t above every count: all kept
    assert stats["url_only"] and stats["totals"]["kept"] == 12 and not (cur / "shards").exists()

    stats = run_download(str(cur), processes=1, thread_count=4, timeout=5)
    assert stats["totals"]["failed_downloads"] == 1
    assert stats["download"]["downloaded"] == 11
    curated = pq.read_table(cur / "curated.parquet").to_pylist()
    status = {r["uid"]: r["status"] for r in curated}
    assert status.pop("u005") == "failed_download" and set(status.values()) == {"written"}

    tars = sorted(str(p) for p in (cur / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False).decode())
    assert len(samples) == 11
    assert sum(json.loads((cur / "shards" / "sizes.json").read_text()).values()) == 11
    by_uid = {r["uid"]: r for r in curated}
    for s in samples:
        meta = s["json"]
        row = by_uid[meta["uid"]]
        assert meta["text"] == row["text"] == s["txt"]
        assert meta["lang"] == row["lang"] and meta["entry_ids"] == row["entry_ids"]
        assert meta["texts"] == [[x["text"], x["lang"], x["entry_ids"]] for x in row["texts"]]
        i = int(meta["uid"][1:])
        assert s["png"] == (root / f"img{i}.png").read_bytes()  # original bytes, named by their real format
        assert row["key"] == s["__key__"]


@pytest.mark.slow
def test_download_refuses_a_curated_with_pool_images(tmp_path):
    ent = entries_table({"en": 2})
    built = make_index(tmp_path, [Img("u0", [("a", "en", [0])], image_bytes(0))], ent, kind="webdataset", sources=1)
    run_balance(built.index, tmp_path / "CUR", t=10, workers=1)
    with pytest.raises(UserError, match="URL-only"):
        run_download(str(tmp_path / "CUR"))
    with pytest.raises(UserError, match="not a folder"):
        run_download(str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_download_into_a_bucket_equals_local(tmp_path, server, s3):
    """img2dataset writes the shards straight into the bucket; shards, curated.parquet and totals equal the
    same download on local disk."""
    from core import storage

    root, base = server
    built = url_only_index(tmp_path, root, base)
    local, remote = tmp_path / "CUR", s3.url("CUR")
    for cur in (str(local), remote):
        run_balance(built.index, cur, t=1000, shard_size=5, workers=1)
        stats = run_download(cur, processes=1, thread_count=4, timeout=5)
        assert stats["download"] == {"attempted": 12, "downloaded": 11, "failed_downloads": 1}

    def members(url):  # img2dataset's threads may order a shard's samples differently from run to run
        with tarfile.open(fileobj=storage.open_input(url)) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}

    def state(cur):
        shards = {storage.name(u): members(u) for u in storage.glob(storage.join(cur, "shards", "*.tar"))}
        curated = pq.read_table(storage.open_input(storage.join(cur, "curated.parquet"))).drop_columns(["source"])
        return shards, curated.to_pylist(), storage.read_json(storage.join(cur, "shards", "sizes.json"))

    assert state(remote) == state(str(local))


def test_normalise_of_a_cut_shard_is_one_line(tmp_path):
    """17.1 in `curate download`: a shard cut at a member boundary was rewritten as a shorter, valid tar."""
    import io
    import tarfile

    from curation.download import normalise_shard

    shard = tmp_path / "00000.tar"
    with tarfile.open(shard, "w") as tar:
        for name in ("a.json", "a.png", "b.json", "b.png"):
            info = tarfile.TarInfo(name)
            data = b"{}" if name.endswith("json") else image_bytes(1)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with tarfile.open(shard) as tar:
        cut = tar.getmembers()[2].offset
    shard.write_bytes(shard.read_bytes()[:cut])
    with pytest.raises(UserError, match=r"00000.tar: damaged after byte \d+ .+ rerun the same `curate download`"):
        normalise_shard(shard)


@pytest.mark.slow
def test_storage_options_alone_reach_img2dataset_processes(tmp_path, server, s3, monkeypatch):
    """`curate download s3://… --storage-options JSON` with no AWS_* variables: img2dataset's spawned processes
    write the shards with the flag's endpoint and keys (they used to get only the environment's)."""
    from core import storage
    from curation.cli import main

    root, base = server
    built = url_only_index(tmp_path, root, base)
    options = ["--storage-options", json.dumps(s3.server.storage_options)]
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_RESPONSE_CHECKSUM_VALIDATION",
              "AWS_REQUEST_CHECKSUM_CALCULATION"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cur = s3.url("CUR")
    assert main(["balance", "--index", str(built.index), "--out", cur, "--t", "1000", "--shard-size", "5",
                 "--workers", "1", *options]) == 0
    assert main(["download", cur, "--processes", "2", "--thread-count", "4", "--timeout", "5", *options]) == 0
    stats = storage.read_json(storage.join(cur, "stats.json"))
    assert stats["download"] == {"attempted": 12, "downloaded": 11, "failed_downloads": 1}
    assert len(storage.glob(storage.join(cur, "shards", "*.tar"))) == 3
    assert "FSSPEC_S3" not in os.environ  # the options were fsspec's config only while img2dataset ran


def _spark_available() -> str | None:
    """Why the pyspark distributor cannot run here, or None."""
    import shutil
    import subprocess

    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install pyspark)"
    if shutil.which("java") is None or subprocess.run(["java", "-version"], capture_output=True).returncode != 0:
        return "no Java runtime (pyspark needs one: apt-get install default-jre-headless)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_spark_available() is not None, reason=str(_spark_available()))
def test_pyspark_distributor_into_a_bucket_equals_multiprocessing(tmp_path, server, s3):
    """`--distributor pyspark` (img2dataset's Spark distributor on a local[2] session it starts) writes the same
    shards into the bucket as the multiprocessing distributor does locally."""
    from core import storage
    from curation.cli import main

    root, base = server
    built = url_only_index(tmp_path, root, base)
    local, remote = str(tmp_path / "CUR"), s3.url("CUR")
    for cur, distributor in ((local, "multiprocessing"), (remote, "pyspark")):
        assert main(["balance", "--index", str(built.index), "--out", cur, "--t", "1000", "--shard-size", "5",
                     "--workers", "1"]) == 0
        assert main(["download", cur, "--processes", "2", "--thread-count", "4", "--timeout", "5",
                     "--distributor", distributor]) == 0
        stats = storage.read_json(storage.join(cur, "stats.json"))
        assert stats["download"] == {"attempted": 12, "downloaded": 11, "failed_downloads": 1}

    def members(url):
        with tarfile.open(fileobj=storage.open_input(url)) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}

    def shards(cur):
        return {storage.name(u): members(u) for u in storage.glob(storage.join(cur, "shards", "*.tar"))}

    assert shards(remote) == shards(local)
