"""Evaluation dataset layouts: image folders, WebDataset shards, class-name files."""
from __future__ import annotations

import json

import pytest
import webdataset as wds

from core.errors import UserError
from training.eval_data import expand_shards, open_source, read_classnames


def folder(root, classes: list[str], names: dict[str, list[str]] | None = None, per_class: int = 1):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i}.jpg").write_bytes(b"jpeg bytes are not decoded here")
    for lang, words in (names or {}).items():
        (root / f"classnames.{lang}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return root


def test_numbered_class_folders_index_the_name_lists(tmp_path):
    src = open_source(folder(tmp_path, ["2", "0"], {"en": ["cat", "dog", "car"]}, per_class=2))
    assert (src.kind, src.num_classes) == ("folder", 3)
    assert [(r.key, r.label) for r in src.records()] == [("0/0.jpg", 0), ("0/1.jpg", 0), ("2/0.jpg", 2), ("2/1.jpg", 2)]
    assert [r.key for r in src.records(1, 2)] == ["0/1.jpg", "2/1.jpg"]


def test_named_class_folders_are_sorted_and_matched_in_order(tmp_path):
    src = open_source(folder(tmp_path, ["zebra", "cat"], {"en": ["cat", "zebra"]}))
    assert [(r.key, r.label) for r in src.records()] == [("cat/0.jpg", 0), ("zebra/0.jpg", 1)]


@pytest.mark.parametrize("classes, names, message", [
    (["0", "3"], {"en": ["a", "b"]}, "class folder 3 has no name"),
    (["cat", "dog"], {"en": ["cat"]}, "2 class folders but 1 class names"),
    (["cat"], {}, "no class names"),
])
def test_folder_and_name_mismatches_are_user_errors(tmp_path, classes, names, message):
    with pytest.raises(UserError, match=message):
        open_source(folder(tmp_path, classes, names))


def test_classnames_json_and_txt_files_merge(tmp_path):
    (tmp_path / "classnames.json").write_text(json.dumps({"ja": ["猫", "犬"], "de": ["x", "y"]}), encoding="utf-8")
    (tmp_path / "classnames.de.txt").write_text("Katze\nHund\n\n", encoding="utf-8")
    assert read_classnames(tmp_path) == {"ja": ["猫", "犬"], "de": ["Katze", "Hund"]}
    (tmp_path / "classnames.fr.txt").write_text("chat\n\nchien\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2 is empty"):
        read_classnames(tmp_path)
    (tmp_path / "classnames.fr.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match="list for 'fr' is empty"):
        read_classnames(tmp_path)
    (tmp_path / "classnames.fr.txt").unlink()
    (tmp_path / "classnames.json").write_text(json.dumps({"ja": "猫"}))
    with pytest.raises(UserError, match="expected"):
        read_classnames(tmp_path)


def shard(path, samples):
    with wds.TarWriter(str(path)) as w:
        for s in samples:
            w.write(s)
    return path


def test_webdataset_records_labels_captions_languages(tmp_path):
    shard(tmp_path / "a.tar", [
        {"__key__": "k0", "jpg": b"img", "txt": "a cat", "cls": "1", "json": {"lang": "en"}},
        {"__key__": "k1", "png": b"img", "json": {"class_id": 0, "lang": "de"}},
        {"__key__": "k2", "webp": b"img", "txt": "no label"},
        {"__key__": "k3", "txt": "no image", "json": {"label": 1}},
    ])
    (tmp_path / "classnames.en.txt").write_text("cat\ndog\n")
    src = open_source(tmp_path)
    assert (src.kind, src.num_classes) == ("webdataset", 2)
    got = [(r.key, r.image is not None, r.label, r.text, r.lang) for r in src.records()]
    assert got == [("k0", True, 1, "a cat", "en"), ("k1", True, 0, None, "de"),
                   ("k2", True, None, "no label", None), ("k3", False, 1, "no image", None)]
    assert [[r.key for r in src.records(w, 3)] for w in range(3)] == [["k0", "k3"], ["k1"], ["k2"]]


@pytest.mark.parametrize("sample, message", [
    ({"__key__": "k", "jpg": b"i", "json": {"label": 7}}, "k: class label 7 but the class-name lists have 2"),
    ({"__key__": "k", "jpg": b"i", "cls": "dog"}, "k: class label 'dog' is not an integer"),
    ({"__key__": "k", "jpg": b"i", "json": b"{not json"}, "k: .json is not valid JSON"),
])
def test_bad_webdataset_samples_are_user_errors_naming_shard_and_key(tmp_path, sample, message):
    shard(tmp_path / "a.tar", [sample])
    (tmp_path / "classnames.en.txt").write_text("cat\ndog\n")
    with pytest.raises(UserError, match=message) as e:
        list(open_source(tmp_path / "a.tar").records())
    assert "a.tar" in str(e.value)


def test_shard_specs_and_classnames_override(tmp_path):
    for i in range(3):
        shard(tmp_path / f"{i:05d}.tar", [{"__key__": f"k{i}", "jpg": b"i", "cls": "0"}])
    assert [p.name for p in expand_shards(str(tmp_path))] == ["00000.tar", "00001.tar", "00002.tar"]
    spec = f"{tmp_path}/{{00000..00001}}.tar::{tmp_path}/00002.tar"
    assert [p.name for p in expand_shards(spec)] == ["00000.tar", "00001.tar", "00002.tar"]
    names = tmp_path / "names"
    names.mkdir()
    (names / "classnames.ko.txt").write_text("고양이\n", encoding="utf-8")
    src = open_source(spec, classnames=names)
    assert src.classnames == {"ko": ["고양이"]} and [r.key for r in src.records()] == ["k0", "k1", "k2"]
    assert [[r.key for r in src.records(w, 2)] for w in range(2)] == [["k0", "k2"], ["k1"]]
    with pytest.raises(UserError, match="not a folder"):
        open_source(spec, classnames=names / "classnames.ko.txt")
    with pytest.raises(UserError, match="00003.tar not found"):
        expand_shards(f"{tmp_path}/{{00000..00003}}.tar")


def upload(folder_path, url: str) -> None:
    from core import storage

    for f in sorted(p for p in folder_path.rglob("*") if p.is_file()):
        storage.write_bytes(storage.join(url, f.relative_to(folder_path).as_posix()), f.read_bytes())


def test_every_layout_reads_the_same_from_a_url(tmp_path):
    """memory:// (any fsspec store): an image folder, a shard folder, a brace pattern, --classnames, and
    the CLIP_benchmark layout give the records the local paths give; a missing object is one line naming it."""
    import uuid

    def same(local, url, **kw):
        a, b = open_source(local, **kw), open_source(url, **kw)
        assert (a.kind, a.classnames, a.templates, a.labels) == (b.kind, b.classnames, b.templates, b.labels)
        assert [vars(r) for r in a.records()] == [vars(r) for r in b.records()]
        assert [vars(r) for r in a.records(1, 2)] == [vars(r) for r in b.records(1, 2)]

    base = f"memory://evaldata-{uuid.uuid4().hex[:8]}"
    images = folder(tmp_path / "img", ["zebra", "cat"], {"en": ["cat", "zebra"], "de": ["Katze", "Zebra"]}, per_class=2)
    (images / "cat" / "notes.md").write_text("not an image")
    shards = tmp_path / "wds"
    shards.mkdir()
    for i in range(3):
        shard(shards / f"{i:05d}.tar", [{"__key__": f"k{i}", "jpg": b"i", "txt": f"t{i}", "cls": str(i % 2)}])
    (shards / "classnames.en.txt").write_text("cat\ndog\n")
    bench = tmp_path / "bench"
    (bench / "test").mkdir(parents=True)
    shard(bench / "test" / "0.tar", [{"__key__": "b0", "webp": b"i", "cls": "1"}])
    (bench / "test" / "nshards.txt").write_text("1\n")
    (bench / "classnames.txt").write_text("cat\ndog\n")
    (bench / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\n")
    for name in ("img", "wds", "bench"):
        upload(tmp_path / name, f"{base}/{name}")
    same(images, f"{base}/img")
    assert open_source(f"{base}/img").skipped == {"not_an_image_file": 1}
    same(shards, f"{base}/wds")
    same(f"{shards}/{{00000..00001}}.tar::{shards}/00002.tar", f"{base}/wds/{{00000..00001}}.tar::{base}/wds/00002.tar")
    same(shards / "00001.tar", f"{base}/wds/00001.tar", classnames=f"{base}/img")
    same(f"{shards}/00000.tar::{shards}/00002.tar", f"{shards}/00000.tar::{base}/wds/00002.tar")  # a path and a URL
    same(bench, f"{base}/bench")
    with pytest.raises(UserError, match=f"shard {base}/wds/00003.tar not found"):
        open_source(f"{base}/wds/{{00000..00003}}.tar")
    with pytest.raises(UserError, match=f"--data {base}/nothing: not found"):
        open_source(f"{base}/nothing")
