"""Image checks and pool readers: cut-off image bytes are caught without decoding; damaged sources give
every image before the damage, then SourceUnreadable; a source that is not there is an OSError."""
import io
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curation import images


def photo(fmt: str, **kw) -> bytes:
    """A noisy 48x48 image (so the compressed body is most of the file) in a real encoder's bytes."""
    arr = (np.random.default_rng(7).random((48, 48, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


FORMATS = [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("WEBP", {}), ("WEBP", {"lossless": True})]


@pytest.mark.parametrize("fmt,kw", FORMATS)
def test_whole_images_pass_and_every_cut_is_caught(fmt, kw):
    data = photo(fmt, **kw)
    ext = images.image_format(data)
    assert images.checked_image(data) == (data, ext)
    assert images.checked_image(data + b"\0" * 64) is not None  # trailing padding is not damage
    cuts = sorted({1, 2, 12, len(data) // 3, len(data) // 2, len(data) - 40, len(data) - 3, len(data) - 2,
                   len(data) - 1} | set(range(16, len(data), 97)))
    accepted = [n for n in cuts if images.checked_image(data[:n]) is not None]
    assert accepted == [], f"{fmt} {kw}: cut-off bytes accepted at lengths {accepted} of {len(data)}"


def test_jpeg_cut_after_an_exif_thumbnail_is_caught():
    thumb = photo("JPEG")  # ends with its own FFD9, inside the APP1 segment of the outer file
    exif = Image.Exif()
    exif[0x010E] = "with thumbnail"
    outer = io.BytesIO()
    Image.fromarray((np.random.default_rng(3).random((64, 64, 3)) * 255).astype(np.uint8)).save(
        outer, format="JPEG", exif=exif.tobytes() + thumb)
    data = outer.getvalue()
    assert data.find(b"\xff\xd9") < len(data) - 2  # an FFD9 before the scan
    assert images.checked_image(data) == (data, "jpg")
    assert images.checked_image(data[:-300]) is None


def test_jpeg_with_data_appended_after_its_end_is_kept():
    data = photo("JPEG") + b"\x00\x00\x00\x18ftypmp42 appended video bytes"  # e.g. a motion photo
    assert images.checked_image(data) == (data, "jpg")


def test_other_formats_are_decoded_so_their_cut_is_caught():
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)).save(buf, format="BMP")
    assert images.checked_image(buf.getvalue())[1] == "png"
    assert images.checked_image(buf.getvalue()[:-500]) is None


def write_tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def member_spans(path) -> dict[str, tuple[int, int]]:
    """name -> (header offset, data end) of each member."""
    with tarfile.open(path) as tar:
        return {m.name: (m.offset, m.offset_data + m.size) for m in tar}


@pytest.fixture
def pool_tar(tmp_path):
    path = tmp_path / "pool.tar"
    write_tar(path, [(f"k{i}.jpg", bytes([i]) * (700 + i)) for i in range(6)])
    return path


def test_truncated_tar_gives_the_images_before_the_cut(pool_tar, tmp_path):
    spans = member_spans(pool_tar)
    bad = tmp_path / "cut.tar"
    bad.write_bytes(pool_tar.read_bytes()[:spans["k3.jpg"][1] - 100])  # inside k3's data
    got = {}
    with pytest.raises(images.SourceUnreadable, match=f"damaged after byte {spans['k3.jpg'][0]} "):
        for k, data in images.read_tar_images(str(bad), {f"k{i}" for i in range(6)}):
            got[k] = data
    assert got == {f"k{i}": bytes([i]) * (700 + i) for i in range(3)}


def test_tar_cut_at_a_member_boundary_is_damage_not_missing(pool_tar, tmp_path):
    bad = tmp_path / "cut.tar"
    bad.write_bytes(pool_tar.read_bytes()[:member_spans(pool_tar)["k4.jpg"][0]])  # k4's header is gone
    got = []
    with pytest.raises(images.SourceUnreadable, match="end-of-archive"):
        for k, _ in images.read_tar_images(str(bad), {"k1", "k5"}):
            got.append(k)
    assert got == ["k1"]
    assert [k for k, _ in images.read_tar_images(str(bad), {"k1", "k2"})] == ["k1", "k2"]  # all found: fine


def test_tar_without_a_wanted_key_is_not_damage(pool_tar):
    assert [k for k, _ in images.read_tar_images(str(pool_tar), {"k0", "nope"})] == ["k0"]


def test_not_a_tar_and_a_missing_file(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"garbage" * 300)
    with pytest.raises(images.SourceUnreadable, match="not a tar"):
        list(images.read_tar_images(str(junk), {"a"}))
    with pytest.raises(FileNotFoundError):
        list(images.read_tar_images(str(tmp_path / "gone.tar"), {"a"}))
    with pytest.raises(FileNotFoundError):
        list(images.read_parquet_images(str(tmp_path / "gone.parquet"), "image", {0}))


def parquet_pool(path, n=30, group=7):
    data = [bytes([i]) * 300 for i in range(n)]
    pq.write_table(pa.table({"image": pa.array(data, pa.binary())}), path, row_group_size=group,
                   compression="snappy", use_dictionary=False)
    return data


def test_corrupt_parquet_row_group_costs_only_its_rows(tmp_path):
    path = tmp_path / "p.parquet"
    data = parquet_pool(path)
    col = pq.ParquetFile(path).metadata.row_group(1).column(0)  # rows 7-13
    raw = bytearray(path.read_bytes())
    start = col.data_page_offset
    raw[start:start + 24] = b"\xff" * 24  # the page header cannot be parsed
    path.write_bytes(bytes(raw))
    got = dict(images.read_parquet_images(str(path), "image", {0, 5, 8, 13, 14, 29}))
    assert {r: got[r] for r in (0, 5, 14, 29)} == {r: data[r] for r in (0, 5, 14, 29)}
    for r in (8, 13):
        assert isinstance(got[r], images.SourceUnreadable) and "row group 1 (rows 7-13)" in str(got[r])


def test_unreadable_parquet_file_raises(tmp_path):
    path = tmp_path / "p.parquet"
    parquet_pool(path)
    with pytest.raises(images.SourceUnreadable, match="no image column 'pixels'"):
        list(images.read_parquet_images(str(path), "pixels", {0}))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(images.SourceUnreadable, match="not a readable Parquet file"):
        list(images.read_parquet_images(str(path), "image", {0}))
