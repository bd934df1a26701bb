import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import UserError
from metadata import store
from metadata.store import Block, append, entry_problem, load_entries, read_manifest


def _rows(meta):
    return [(r["entry_id"], r["lang"], r["entry"], r["source"]) for r in load_entries(meta).to_pylist()]


def test_round_trip_and_manifest(tmp_path):
    meta = tmp_path / "META"
    s = append(meta, [Block("en", "user", ["dog", "cat"]), Block("de", "user", ["Hund"])], {"command": "test"})
    assert s.n_added == 3 and s.total_after == 3
    assert _rows(meta) == [(0, "en", "dog", "user"), (1, "en", "cat", "user"), (2, "de", "Hund", "user")]
    table = pq.read_table(meta / "entries.parquet")
    assert table.schema.field("entry_id").type == pa.int32()
    manifest = read_manifest(meta)
    assert manifest["entries"] == 3
    assert manifest["languages"]["en"] == {"entries": 2, "sources": {"user": 2}}
    assert manifest["worldclip_version"] and manifest["created"] and manifest["history"][0]["command"] == "test"
    assert not list(meta.glob(".tmp-*"))


def test_append_keeps_ids_and_dedups(tmp_path):
    meta = tmp_path / "META"
    append(meta, [Block("en", "a", ["x", "y"])], {"command": "one"})
    s = append(meta, [Block("en", "b", ["y", "z", "z"]), Block("fr", "b", ["y"])], {"command": "two"})
    assert s.added == {("en", "b"): 1, ("fr", "b"): 1}
    assert s.duplicates == {("en", "b"): 2, ("fr", "b"): 0}
    assert _rows(meta) == [(0, "en", "x", "a"), (1, "en", "y", "a"), (2, "en", "z", "b"), (3, "fr", "y", "b")]
    assert [h["command"] for h in read_manifest(meta)["history"]] == ["one", "two"]


@pytest.mark.parametrize("entry,problem", [
    ("", "blank"), ("   ", "blank"),
    (" dog", "leading/trailing whitespace"), ("dog\u00a0", "leading/trailing whitespace"),
    ("do\tg", "control character"), ("a\x85b", "control character"), ("hot dog", None), ("北京", None),
])
def test_entry_problem(entry, problem):
    assert entry_problem(entry) == problem


def test_load_entries_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_entries(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="entries.parquet: not found"):
        load_entries(tmp_path / "empty")
    meta = tmp_path / "META"
    append(meta, [Block("en", "a", ["x"])], {})
    (meta / "entries.parquet").write_bytes(b"garbage")
    with pytest.raises(UserError, match="does not match"):
        load_entries(meta)


def test_load_entries_rejects_bad_content(tmp_path):
    meta = tmp_path / "META"
    append(meta, [Block("en", "a", ["x", "y"])], {})
    bad = pa.table({"entry_id": pa.array([0, 2], pa.int32()), "lang": ["en", "en"], "entry": ["x", "y"],
                    "source": ["a", "a"]})
    pq.write_table(bad, meta / "entries.parquet")
    manifest = json.loads((meta / "manifest.json").read_text())
    manifest["entries_sha256"] = store.content_hash(meta / "entries.parquet")
    (meta / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="not dense"):
        load_entries(meta)
    dup = pa.table({"entry_id": pa.array([0, 1], pa.int32()), "lang": ["en", "en"], "entry": ["x", "x"],
                    "source": ["a", "a"]})
    pq.write_table(dup, meta / "entries.parquet")
    manifest["entries_sha256"] = store.content_hash(meta / "entries.parquet")
    (meta / "manifest.json").write_text(json.dumps(manifest))
    assert load_entries(meta).num_rows == 2  # the default trusts what append wrote and checked
    with pytest.raises(UserError, match="not unique"):
        load_entries(meta, verify=True)
    wrong = pa.table({"entry_id": pa.array([0, 1], pa.int64()), "lang": ["en", "en"], "entry": ["x", "y"],
                      "source": ["a", "a"]})
    pq.write_table(wrong, meta / "entries.parquet")
    manifest["entries_sha256"] = store.content_hash(meta / "entries.parquet")
    (meta / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="expected entry_id int32"):
        load_entries(meta)


def test_crash_between_renames_rolls_forward(tmp_path, monkeypatch):
    meta = tmp_path / "META"
    append(meta, [Block("en", "a", ["x"])], {})
    real_replace = os.replace
    calls = []

    def dying_replace(src, dst):
        calls.append(dst)
        if str(dst).endswith("manifest.json"):
            raise KeyboardInterrupt("killed between the renames")
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", dying_replace)
    monkeypatch.setattr(store.shutil, "rmtree", lambda *a, **k: None)  # a killed process cleans nothing
    with pytest.raises(KeyboardInterrupt):
        append(meta, [Block("en", "a", ["y"])], {})
    monkeypatch.undo()
    assert [r[2] for r in _rows(meta)] == ["x", "y"]  # reader uses the pending manifest
    append(meta, [Block("en", "a", ["z"])], {})  # writer finishes the commit, then appends
    assert [r[2] for r in _rows(meta)] == ["x", "y", "z"]
    assert read_manifest(meta)["entries"] == 3 and not list(meta.glob(".tmp-*"))


def test_crash_before_renames_leaves_old_meta(tmp_path, monkeypatch):
    meta = tmp_path / "META"
    append(meta, [Block("en", "a", ["x"])], {})

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.pq, "write_table", boom)
    with pytest.raises(UserError, match="disk full"):
        append(meta, [Block("en", "a", ["y"])], {})
    monkeypatch.undo()
    assert [r[2] for r in _rows(meta)] == ["x"]
    assert not list(meta.glob(".tmp-*"))


def test_out_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        append(tmp_path / "f", [Block("en", "a", ["x"])], {})


_blocks = st.lists(st.tuples(st.sampled_from(["en", "zh", "th"]),
                             st.lists(st.sampled_from(["a", "b", "c", "北京", "ก"]), max_size=5)),
                   min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(_blocks, min_size=1, max_size=3))
def test_appends_keep_ids_dense_stable_unique(tmp_path_factory, batches):
    meta = tmp_path_factory.mktemp("prop") / "META"
    expected: list[tuple[str, str]] = []
    for batch in batches:
        before = _rows(meta) if (meta / "entries.parquet").exists() else []
        append(meta, [Block(lang, "user", entries) for lang, entries in batch], {})
        for lang, entries in batch:
            for e in entries:
                if (lang, e) not in expected:
                    expected.append((lang, e))
        after = _rows(meta)
        assert after[: len(before)] == before  # existing ids never change
        assert [(lang, e) for _, lang, e, _ in after] == expected  # new ones follow in given order
        assert [i for i, *_ in after] == list(range(len(after)))


def test_meta_in_a_bucket_equals_local(tmp_path, s3):
    """META on a real S3 server: same entries as a local META, appends keep ids, a commit cut after the
    entries were uploaded rolls forward from the pending manifest."""
    from core import storage

    blocks = [Block("en", "user", ["cat", "dog"]), Block("de", "user", ["Hund"])]
    url = s3.url("META")
    append(tmp_path / "M", blocks, {"command": "t"})
    append(url, blocks, {"command": "t"})
    assert load_entries(url).equals(load_entries(tmp_path / "M"))
    assert append(url, [Block("en", "user", ["cat", "bird"])], {"command": "t"}).n_added == 1
    assert load_entries(url).column("entry").to_pylist() == ["cat", "dog", "Hund", "bird"]
    manifest = read_manifest(url)
    # a writer killed between uploading entries.parquet and manifest.json: the pending manifest describes them
    table = pa.table({"entry_id": pa.array([0], pa.int32()), "lang": ["en"], "entry": ["x"], "source": ["user"]})
    store._commit_url(url, table, {**manifest, "entries": 1})
    storage.write_json(storage.join(url, ".pending", f"{read_manifest(url)['entries_sha256']}.json"),
                       read_manifest(url))
    storage.write_json(storage.join(url, "manifest.json"), manifest)  # the old manifest: not the entries' one
    assert read_manifest(url)["entries"] == 1 and load_entries(url).num_rows == 1
    append(url, [Block("en", "user", ["y"])], {"command": "t"})
    assert load_entries(url).column("entry").to_pylist() == ["x", "y"]
    assert not storage.exists(storage.join(url, ".pending"))
