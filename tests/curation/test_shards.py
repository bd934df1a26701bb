"""Shard writing: valid tars, deterministic bytes, pieces join to the same archive, webdataset reads it."""
import io
import json
import tarfile

import webdataset as wds

from curation import images, shards
from index_factory import image_bytes


def samples(n):
    return [(shards.sample_key(i), image_bytes(i), "png", f"text {i} ü", {"uid": f"u{i}", "texts": [["a", "en", [1]]]})
            for i in range(n)]


def test_tar_is_deterministic_and_readable(tmp_path):
    chunks = [shards.sample_members(*s) for s in samples(5)]
    a, b = tmp_path / "00000.tar", tmp_path / "00001.tar"
    size = shards.write_tar(a, chunks)
    shards.write_tar(b, chunks)
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size == size and size % shards.RECORD == 0
    with tarfile.open(a) as tar:
        names = tar.getnames()
        assert names[:3] == ["000000000.png", "000000000.json", "000000000.txt"]
        assert tar.extractfile("000000003.png").read() == image_bytes(3)
        assert json.loads(tar.extractfile("000000003.json").read())["uid"] == "u3"
    got = list(wds.WebDataset(str(a), shardshuffle=False).decode())
    assert [s["__key__"] for s in got] == [shards.sample_key(i) for i in range(5)]
    assert got[2]["txt"] == "text 2 ü" and got[2]["json"]["texts"] == [["a", "en", [1]]]
    assert got[4]["png"] is not None


def test_pieces_join_to_the_same_tar(tmp_path):
    chunks = [shards.sample_members(*s) for s in samples(7)]
    shards.write_tar(tmp_path / "whole.tar", chunks)
    shards.write_piece(tmp_path / "p1", chunks[:3])
    shards.write_piece(tmp_path / "p2", chunks[3:])
    shards.join_pieces(tmp_path / "joined.tar", [tmp_path / "p1", tmp_path / "p2"])
    assert (tmp_path / "joined.tar").read_bytes() == (tmp_path / "whole.tar").read_bytes()


def test_empty_shard_is_a_valid_tar(tmp_path):
    shards.write_tar(tmp_path / "e.tar", [])
    with tarfile.open(tmp_path / "e.tar") as tar:
        assert tar.getnames() == []


def test_image_checks():
    png, jpg = image_bytes(1), image_bytes(2, "JPEG")
    assert images.checked_image(png) == (png, "png")
    assert images.checked_image(jpg) == (jpg, "jpg")
    assert images.checked_image(b"not an image") is None
    assert images.checked_image(png[:40]) is None
    assert images.checked_image(None) is None
    gif = image_bytes(3, "GIF")
    data, ext = images.checked_image(gif)  # other formats PIL reads become PNG
    assert ext == "png" and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_tar_images_stops_at_wanted_keys(tmp_path):
    path = tmp_path / "w.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in [("a.jpg", b"A"), ("a.txt", b"t"), ("dir/b.PNG", b"B"), ("d.x.png", b"D"), ("c.webp", b"C")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert dict(images.read_tar_images(str(path), {"a", "dir/b", "d", "zz"})) == {"a": b"A", "dir/b": b"B"}


def test_read_parquet_images_binary_and_struct_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = [image_bytes(i) for i in range(30)]
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"image": pa.array(data, pa.binary()),
                             "hf": pa.array([{"bytes": d, "path": None} for d in data],
                                            pa.struct([("bytes", pa.binary()), ("path", pa.string())]))}),
                   path, row_group_size=7)
    want = {0, 8, 9, 29}
    assert dict(images.read_parquet_images(str(path), "image", want, batch_rows=4)) == {r: data[r] for r in want}
    assert dict(images.read_parquet_images(str(path), "hf", want)) == {r: data[r] for r in want}
